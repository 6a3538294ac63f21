//! Compiled kernels for every model in `derivations/`, generated when this
//! crate is built (`build.rs` → `hessforge_build::compile`): for each model a
//! module `hessforge_kernels::<model>` with a zero-sized type implementing
//! [`Kernel`] — loss, gradient, Hessian and Hessian–vector products over a
//! data set, with no heap allocation once warm. A model with scalar
//! parameters only gets straight-line code specialised to its parameter
//! count; a model with a vector or matrix parameter gets its kernel in index
//! form (loops whose length does not depend on the tensors' lengths, run by
//! [`runtime::loops`]).
//!
//! ```
//! use hessforge_kernels::{Kernel, Rows, rosenbrock::Rosenbrock};
//! let (mut g, mut h) = ([0.0; 2], [0.0; 4]);
//! let f = Rosenbrock.loss_grad_hess(&[1.0, 1.0], Rosenbrock::DEFAULT_CONSTANTS, Rows::All(&[]), &mut g, &mut h);
//! assert_eq!((f, g), (0.0, [0.0, 0.0]));
//! ```
//!
//! The same code is committed, formatted, in `generated/<model>.rs` (or
//! `generated/<model>.loops.rs` in index form).
#![warn(missing_docs)]

// Generated code names `::hessforge_kernels::…` paths, in this crate as in
// any crate that depends on it.
extern crate self as hessforge_kernels;

pub use hessforge_ir as ir;
pub mod linearization;
mod loop_kernel;
mod objective;
pub mod runtime;

pub use linearization::{Linearization, LinearizationCache};
pub use loop_kernel::{LANES, LoopModel, LoopTangent};
pub use objective::{KernelObjective, PARALLEL_ROWS};

/// Brings in the kernels a build script generated with
/// `hessforge_build::compile`: one module per derivation file (named after
/// the model, holding its kernel type) and the `REGISTRY` (and
/// `LOOP_REGISTRY`) of `&dyn DynKernel`s. Put it at the root of the crate
/// whose `build.rs` calls `compile`, or in any module of it:
///
/// ```ignore
/// // build.rs
/// fn main() { hessforge_build::compile("derivations"); }
///
/// // src/main.rs
/// hessforge_kernels::include_kernels!();
/// use hessforge_kernels::{Kernel, Rows};
/// let f = my_model::MyModel.loss(&theta, my_model::MyModel::DEFAULT_CONSTANTS, Rows::All(&data));
/// ```
///
/// The generated code names only `::hessforge_kernels::…` paths, so the crate
/// needs nothing but `hessforge-kernels` as a dependency (and
/// `hessforge-build` as a build dependency).
#[macro_export]
macro_rules! include_kernels {
    () => {
        include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
    };
}

/// Which rows of a data set a pass reads (row-major, `N_DATA` columns).
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// Every row.
    All(&'a [f64]),
    /// The rows at these indices (a mini-batch).
    Selected(&'a [f64], &'a [usize]),
    /// Every row, in parallel (rayon) over fixed chunks of
    /// [`runtime::PARALLEL_CHUNK_ROWS`] rows summed in order: the same bits
    /// on every run, whatever the number of threads.
    Parallel(&'a [f64]),
}

/// The compiled kernels of one model. The objective is
/// L(θ) = (1/N) Σᵢ ℓ(θ; xᵢ) + R(θ) over the selected rows (just the θ-only
/// part for a model without data).
pub trait Kernel: Sync {
    /// The model's name.
    const NAME: &'static str;
    /// Number of parameters P.
    const N_PARAMS: usize;
    /// Columns per data row.
    const N_DATA: usize;
    /// Number of constants.
    const N_CONSTANTS: usize;
    /// Parameter ids, in θ order.
    fn param_names() -> &'static [&'static str];
    /// Data column ids.
    fn data_names() -> &'static [&'static str];
    /// Constant ids.
    fn constant_names() -> &'static [&'static str];
    /// The constants' default values.
    const DEFAULT_CONSTANTS: &'static [f64];

    /// L(θ).
    fn loss(&self, theta: &[f64], constants: &[f64], rows: Rows<'_>) -> f64;
    /// L(θ); writes ∇L into `grad[..P]`.
    fn loss_grad(&self, theta: &[f64], constants: &[f64], rows: Rows<'_>, grad: &mut [f64]) -> f64;
    /// L(θ); writes ∇L into `grad[..P]` and ∇²L, row-major P×P, into `hess`.
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64;
    /// L(θ); writes ∇²L·v into `out[..P]`. Kernels in index form contract
    /// their Hessian terms with v and never form ∇²L; the default forms it.
    fn hess_vec(
        &self,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'_>,
        v: &[f64],
        out: &mut [f64],
    ) -> f64 {
        let p = Self::N_PARAMS;
        let (mut grad, mut hess) = (vec![0.0; p], vec![0.0; p * p]);
        let loss = self.loss_grad_hess(theta, constants, rows, &mut grad, &mut hess);
        for (i, o) in out[..p].iter_mut().enumerate() {
            *o = hess[i * p..(i + 1) * p]
                .iter()
                .zip(v)
                .map(|(h, x)| h * x)
                .sum();
        }
        loss
    }
    /// What every product ∇²L(θ)·v at this θ over these rows shares: the
    /// values of the per-sample steps that do not read v, recorded once
    /// ([`linearization`]). `None` (the default) when the kernel has
    /// nothing to share, or when they would take more than
    /// [`linearization::MAX_BYTES`].
    fn linearize<'d>(
        &self,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'d>,
    ) -> Option<Linearization<'d>> {
        let _ = (theta, constants, rows);
        None
    }
    /// [`Kernel::hess_vec`] through `linearization`: only the steps that
    /// read v run, the rest are read back — the same bits. A
    /// linearization made at another θ, other constants or other rows is
    /// not read (the product then runs whole).
    fn hess_vec_linearized(
        &self,
        linearization: &Linearization<'_>,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'_>,
        v: &[f64],
        out: &mut [f64],
    ) -> f64 {
        let _ = linearization;
        self.hess_vec(theta, constants, rows, v, out)
    }
    /// L(θ); writes the diagonal of ∇²L into `out[..P]`. Kernels in index
    /// form add only the diagonal entries of their Hessian terms; the
    /// default forms ∇²L.
    fn hess_diag(&self, theta: &[f64], constants: &[f64], rows: Rows<'_>, out: &mut [f64]) -> f64 {
        let p = Self::N_PARAMS;
        let (mut grad, mut hess) = (vec![0.0; p], vec![0.0; p * p]);
        let loss = self.loss_grad_hess(theta, constants, rows, &mut grad, &mut hess);
        for (i, d) in out[..p].iter_mut().enumerate() {
            *d = hess[i * p + i];
        }
        loss
    }
}

/// A kernel behind a pointer: what the registry hands out.
pub trait DynKernel: Sync {
    /// The model's name.
    fn name(&self) -> &'static str;
    /// Number of parameters.
    fn n_params(&self) -> usize;
    /// Columns per data row.
    fn n_data(&self) -> usize;
    /// Parameter ids.
    fn param_names(&self) -> &'static [&'static str];
    /// Default constants.
    fn default_constants(&self) -> &'static [f64];
    /// See [`Kernel::loss`].
    fn loss(&self, theta: &[f64], constants: &[f64], rows: Rows<'_>) -> f64;
    /// See [`Kernel::loss_grad`].
    fn loss_grad(&self, theta: &[f64], constants: &[f64], rows: Rows<'_>, grad: &mut [f64]) -> f64;
    /// See [`Kernel::loss_grad_hess`].
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64;
    /// See [`Kernel::hess_vec`].
    fn hess_vec(
        &self,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'_>,
        v: &[f64],
        out: &mut [f64],
    ) -> f64;
    /// See [`Kernel::linearize`].
    fn linearize<'d>(
        &self,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'d>,
    ) -> Option<Linearization<'d>>;
    /// See [`Kernel::hess_vec_linearized`].
    fn hess_vec_linearized(
        &self,
        linearization: &Linearization<'_>,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'_>,
        v: &[f64],
        out: &mut [f64],
    ) -> f64;
    /// See [`Kernel::hess_diag`].
    fn hess_diag(&self, theta: &[f64], constants: &[f64], rows: Rows<'_>, out: &mut [f64]) -> f64;
}

impl<K: Kernel> DynKernel for K {
    fn name(&self) -> &'static str {
        K::NAME
    }
    fn n_params(&self) -> usize {
        K::N_PARAMS
    }
    fn n_data(&self) -> usize {
        K::N_DATA
    }
    fn param_names(&self) -> &'static [&'static str] {
        K::param_names()
    }
    fn default_constants(&self) -> &'static [f64] {
        K::DEFAULT_CONSTANTS
    }
    fn loss(&self, theta: &[f64], constants: &[f64], rows: Rows<'_>) -> f64 {
        Kernel::loss(self, theta, constants, rows)
    }
    fn loss_grad(&self, theta: &[f64], constants: &[f64], rows: Rows<'_>, grad: &mut [f64]) -> f64 {
        Kernel::loss_grad(self, theta, constants, rows, grad)
    }
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        Kernel::loss_grad_hess(self, theta, constants, rows, grad, hess)
    }
    fn hess_vec(
        &self,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'_>,
        v: &[f64],
        out: &mut [f64],
    ) -> f64 {
        Kernel::hess_vec(self, theta, constants, rows, v, out)
    }
    fn hess_diag(&self, theta: &[f64], constants: &[f64], rows: Rows<'_>, out: &mut [f64]) -> f64 {
        Kernel::hess_diag(self, theta, constants, rows, out)
    }
    fn linearize<'d>(
        &self,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'d>,
    ) -> Option<Linearization<'d>> {
        Kernel::linearize(self, theta, constants, rows)
    }
    fn hess_vec_linearized(
        &self,
        linearization: &Linearization<'_>,
        theta: &[f64],
        constants: &[f64],
        rows: Rows<'_>,
        v: &[f64],
        out: &mut [f64],
    ) -> f64 {
        Kernel::hess_vec_linearized(self, linearization, theta, constants, rows, v, out)
    }
}

include_kernels!();

/// The compiled kernel of a model, by name.
pub fn kernel(name: &str) -> Option<&'static dyn DynKernel> {
    REGISTRY.iter().copied().find(|k| k.name() == name)
}

/// The compiled kernel of a model in index form (loops, Hessian–vector
/// products without the Hessian), by name: the kernel of every model with a
/// vector or matrix parameter ([`kernel`] returns the same one).
pub fn loop_kernel(name: &str) -> Option<&'static dyn DynKernel> {
    LOOP_REGISTRY.iter().copied().find(|k| k.name() == name)
}
