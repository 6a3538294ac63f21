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
//! use hessforge_kernels::{At, Kernel, rosenbrock::Rosenbrock};
//! let (mut g, mut h) = ([0.0; 2], [0.0; 4]);
//! let at = At::new(&[1.0, 1.0], Rosenbrock::DEFAULT_CONSTANTS, &[]);
//! let f = Rosenbrock.loss_grad_hess(at, &mut g, &mut h);
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
pub use hessforge_ir::{At, Rows};
mod interpreted;
pub mod linearization;
mod loop_kernel;
mod objective;
mod run_time_kernel;
pub mod runtime;

pub use linearization::{Linearization, LinearizationCache};

/// What a generated loop kernel (`generated/*.loops.rs`) names, brought in
/// by one `use` at its top.
pub mod loop_prelude {
    pub use crate::ir::Outputs;
    pub use crate::ir::lanes::Lanes;
    pub use crate::ir::loop_ir::{LoopProgram, Phase, Source};
    pub use crate::runtime::loops;
    pub use crate::{LoopModel, LoopTangent};
    pub use std::sync::LazyLock;
}
pub use hessforge_jit::{CompiledStraightLine, TIER_UP_RUNS};
pub use loop_kernel::{LANES, LoopModel, LoopTangent};
pub use objective::{KernelObjective, PARALLEL_ROWS, offers_gauss_newton};
pub use run_time_kernel::{JitError, RunTimeKernel};

/// Brings in the kernels a build script generated with
/// `hessforge_build::compile`: one module per derivation file (named after
/// the model, holding its kernel type) and the `REGISTRY` (and
/// `LOOP_REGISTRY`) of `&dyn Kernel`s. Put it at the root of the crate
/// whose `build.rs` calls `compile`, or in any module of it:
///
/// ```ignore
/// // build.rs
/// fn main() { hessforge_build::compile("derivations"); }
///
/// // src/main.rs
/// hessforge_kernels::include_kernels!();
/// use hessforge_kernels::{At, Kernel};
/// let f = my_model::MyModel.loss(At::new(&theta, my_model::MyModel::DEFAULT_CONSTANTS, &data));
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

/// A model that can be evaluated: loss, gradient, Hessian, Hessian–vector
/// product, Gauss–Newton–vector product and the Hessian's diagonal at a
/// point [`At`] (θ, constants, data, which [`Rows`]). The objective is
/// L(θ) = (1/N) Σᵢ ℓ(θ; xᵢ) + R(θ) over the selected rows (just the θ-only
/// part for a model without data).
///
/// The one evaluation face of hessforge, implemented by the kernels a
/// build script generated (straight-line code, or loops through
/// [`LoopModel`]) and by the two interpreters of a model derived at run
/// time, the straight-line programs ([`ir::ModelPrograms`]) and the loop
/// IR ([`ir::loop_ir::LoopProgram`]). [`KernelObjective`] binds one to its
/// constants and data as the optimizers' objective.
pub trait Kernel: Send + Sync {
    /// The model's name.
    fn name(&self) -> &str;
    /// Number of parameters P.
    fn n_params(&self) -> usize;
    /// Columns per data row.
    fn n_data(&self) -> usize;
    /// Parameter ids, in θ order.
    fn param_names(&self) -> Vec<&str>;
    /// The constants' default values (one per constant).
    fn default_constants(&self) -> &[f64];

    /// L(θ).
    fn loss(&self, at: At<'_>) -> f64;
    /// L(θ); writes ∇L into `grad[..P]`.
    fn loss_grad(&self, at: At<'_>, grad: &mut [f64]) -> f64;
    /// L(θ); writes ∇L into `grad[..P]` and ∇²L, row-major P×P, into `hess`.
    fn loss_grad_hess(&self, at: At<'_>, grad: &mut [f64], hess: &mut [f64]) -> f64;
    /// L(θ); writes ∇²L·v into `out[..P]`. Kernels in index form contract
    /// their Hessian terms with v and never form ∇²L; the default forms it.
    fn hess_vec(&self, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        let p = self.n_params();
        let (mut grad, mut hess) = (vec![0.0; p], vec![0.0; p * p]);
        let loss = self.loss_grad_hess(at, &mut grad, &mut hess);
        hessforge_optim::objective::dense_hess_vec(&hess, &v[..p], &mut out[..p]);
        loss
    }
    /// L(θ); writes the diagonal of ∇²L into `out[..P]`. Kernels in index
    /// form add only the diagonal entries of their Hessian terms; the
    /// default forms ∇²L.
    fn hess_diag(&self, at: At<'_>, out: &mut [f64]) -> f64 {
        let p = self.n_params();
        let (mut grad, mut hess) = (vec![0.0; p], vec![0.0; p * p]);
        let loss = self.loss_grad_hess(at, &mut grad, &mut hess);
        for (i, d) in out[..p].iter_mut().enumerate() {
            *d = hess[i * p + i];
        }
        loss
    }
    /// Whether a pass over no rows evaluates the regularizer alone: R, ∇R
    /// and ∇²R (the kernels in index form: the generated loop kernels, the
    /// loop IR's interpreter and its run-time compiled form). The
    /// straight-line kernels say no: they evaluate the per-sample terms
    /// that do not depend on the data row once per pass, rows or none.
    fn regularizer_alone(&self) -> bool {
        false
    }
    /// For a loss that is a square per row, ℓᵢ = c·rᵢ(θ)² with c > 0 (the
    /// caller knows; [`KernelObjective::gauss_newton`]): L(θ), ∇L into
    /// `grad` and the Gauss–Newton matrix (1/N) Σᵢ 2c ∇rᵢ∇rᵢᵀ + ∇²R,
    /// row-major P×P, into `gn`. Each row's gradient gᵢ = 2c rᵢ∇rᵢ gives the
    /// term 2c∇rᵢ∇rᵢᵀ = gᵢgᵢᵀ/(2ℓᵢ): no residual Jacobian needed. Where
    /// [`Kernel::regularizer_alone`], R, ∇R and ∇²R come from a pass over no
    /// rows and each row's ℓᵢ and gᵢ are its one-row pass less them (a row
    /// whose ℓᵢ is then not positive adds nothing); elsewhere the model
    /// must have no regularizer.
    fn loss_grad_gauss_newton(&self, at: At<'_>, grad: &mut [f64], gn: &mut [f64]) -> f64 {
        let p = self.n_params();
        grad[..p].fill(0.0);
        gn[..p * p].fill(0.0);
        let (regularizer, regularizer_grad) = if self.regularizer_alone() {
            let r = self.loss_grad_hess(at.rows(Rows::Selected(&[])), grad, gn);
            (r, grad[..p].to_vec())
        } else {
            (0.0, vec![0.0; p])
        };
        let mut sample_grad = vec![0.0; p];
        let (loss, n) = each_row_gradient(self, at, |l, row_grad, n| {
            let l = l - regularizer;
            for ((g, r), a) in sample_grad.iter_mut().zip(row_grad).zip(&regularizer_grad) {
                *g = r - a;
            }
            for (a, g) in grad.iter_mut().zip(&sample_grad) {
                *a += g / n;
            }
            if l > 0.0 {
                for a in 0..p {
                    for b in 0..p {
                        gn[a * p + b] += sample_grad[a] * sample_grad[b] / (2.0 * l * n);
                    }
                }
            }
        });
        (loss - n * regularizer) / n + regularizer
    }
    /// The same Gauss–Newton matrix times v into `out[..P]`, never formed:
    /// ∇²R·v (where [`Kernel::regularizer_alone`]) plus the sum over the
    /// rows of gᵢ (gᵢ·v) / (2ℓᵢ N), one gradient per row.
    fn gauss_newton_vec(&self, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        let p = self.n_params();
        out[..p].fill(0.0);
        let mut regularizer_grad = vec![0.0; p];
        let regularizer = if self.regularizer_alone() {
            let none = at.rows(Rows::Selected(&[]));
            self.hess_vec(none, v, out);
            self.loss_grad(none, &mut regularizer_grad)
        } else {
            0.0
        };
        let mut sample_grad = vec![0.0; p];
        let (loss, n) = each_row_gradient(self, at, |l, row_grad, n| {
            let l = l - regularizer;
            if l > 0.0 {
                for ((g, r), a) in sample_grad.iter_mut().zip(row_grad).zip(&regularizer_grad) {
                    *g = r - a;
                }
                let c = sample_grad.iter().zip(v).map(|(g, x)| g * x).sum::<f64>() / (2.0 * l * n);
                for (o, g) in out.iter_mut().zip(&sample_grad) {
                    *o += c * g;
                }
            }
        });
        (loss - n * regularizer) / n + regularizer
    }
    /// What every product ∇²L(θ)·v at this point shares: the values of the
    /// per-sample steps that do not read v, recorded once
    /// ([`linearization`]). `None` (the default) when the kernel has
    /// nothing to share, or when they would take more than
    /// [`linearization::MAX_BYTES`].
    fn linearize(&self, at: At<'_>) -> Option<Linearization> {
        let _ = at;
        None
    }
    /// [`Kernel::hess_vec`] through `linearization`: only the steps that
    /// read v run, the rest are read back — the same bits. A
    /// linearization made at another point is not read (the product then
    /// runs whole).
    fn hess_vec_linearized(
        &self,
        linearization: &Linearization,
        at: At<'_>,
        v: &[f64],
        out: &mut [f64],
    ) -> f64 {
        let _ = linearization;
        self.hess_vec(at, v, out)
    }
}

/// Each selected row's loss and gradient in turn, to `f` (with the number
/// of rows N); the sum of the losses and N. A model without data is its
/// own one row.
fn each_row_gradient<K: Kernel + ?Sized>(
    kernel: &K,
    at: At<'_>,
    mut f: impl FnMut(f64, &[f64], f64),
) -> (f64, f64) {
    let all: Vec<usize>;
    let rows = match at.rows.selected() {
        Some(rows) => rows,
        None => {
            all = (0..at.data.len().checked_div(kernel.n_data()).unwrap_or(0)).collect();
            &all
        }
    };
    let n = rows.len().max(1) as f64;
    let mut row_grad = vec![0.0; kernel.n_params()];
    let mut loss = 0.0;
    for i in rows {
        let l = kernel.loss_grad(
            at.rows(Rows::Selected(std::slice::from_ref(i))),
            &mut row_grad,
        );
        loss += l;
        f(l, &row_grad, n);
    }
    (loss, n)
}

include_kernels!();

/// The compiled kernel of a model, by name.
pub fn kernel(name: &str) -> Option<&'static dyn Kernel> {
    REGISTRY.iter().copied().find(|k| k.name() == name)
}

/// The compiled kernel of a model in index form (loops, Hessian–vector
/// products without the Hessian), by name: the kernel of every model with a
/// vector or matrix parameter ([`kernel`] returns the same one).
pub fn loop_kernel(name: &str) -> Option<&'static dyn Kernel> {
    LOOP_REGISTRY.iter().copied().find(|k| k.name() == name)
}
