//! Many Hessian–vector products at one θ: what they share, recorded once.
//!
//! A Hessian-free Newton step multiplies ∇²L(θ) by a dozen directions at
//! the same θ (conjugate gradients, a Lanczos check), and the forward pass
//! of the loss (z = Wx, the softmax, the log-sum-exp) is the same for all
//! of them. A kernel in index form splits its tangent model's per-sample
//! steps into the primal ones, which do not read the direction v, and the
//! tangent ones ([`crate::ir::tangent::primal_prefix`]):
//! [`crate::Kernel::linearize`] runs the primal steps over the rows once and
//! keeps, row by row, the few scratch entries they write (a
//! [`Linearization`], what `jax.linearize` keeps); each
//! [`crate::Kernel::hess_vec_linearized`] then puts them back and runs only
//! the tangent steps. The same instructions run on the same values: the
//! products are bit for bit those of [`crate::Kernel::hess_vec`].
//!
//! [`LinearizationCache`] is the objective's memo: it keeps the last
//! linearization and makes a new one when θ moves.

use crate::{At, Kernel, Rows};
use hessforge_ir::loop_ir::LoopProgram;
use std::sync::{Mutex, PoisonError};

/// A linearization holds at most this many bytes of primal values (above,
/// [`crate::Kernel::linearize`] declines and every product runs whole).
pub const MAX_BYTES: usize = 1 << 30;

/// The primal values of a kernel's per-sample steps at one θ, for its
/// products ∇²L(θ)·v: what they were recorded for, and the values, one
/// block per chunk of a pass (one block for a pass on the calling thread;
/// one per [`crate::runtime::PARALLEL_CHUNK_ROWS`] rows for
/// [`Rows::Parallel`]), in the order the pass visits the rows.
#[derive(Debug, Clone)]
pub struct Linearization {
    model: String,
    /// The address of the tangent model that recorded it (each generated
    /// kernel's is a static of its own).
    plan: usize,
    theta: Vec<f64>,
    constants: Vec<f64>,
    /// The data set's address and length: only compared, never read.
    data: (usize, usize),
    rows: Rows<'static>,
    selected: Option<Vec<usize>>,
    /// Scratch entries recorded per row.
    pub(crate) prefix: usize,
    /// The recorded values, chunk by chunk.
    pub(crate) chunks: Vec<Vec<f64>>,
}

impl Linearization {
    /// An empty linearization by the tangent model `model` at `at`, for
    /// `prefix` scratch entries per row.
    pub(crate) fn new(model: &LoopProgram, at: At<'_>, prefix: usize) -> Linearization {
        Linearization {
            model: model.name.clone(),
            plan: std::ptr::from_ref(model) as usize,
            theta: at.theta.to_vec(),
            constants: at.constants.to_vec(),
            data: address(at.data),
            rows: without_indices(at.rows),
            selected: at.rows.selected().map(<[usize]>::to_vec),
            prefix,
            chunks: Vec::new(),
        }
    }

    /// Whether it was recorded by `model` at exactly this θ (bit for bit),
    /// these constants and these rows of this data (the same slice).
    pub fn matches(&self, model: &str, at: At<'_>) -> bool {
        let same = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        self.model == model
            && same(&self.theta, at.theta)
            && same(&self.constants, at.constants)
            && self.data == address(at.data)
            && self.rows == without_indices(at.rows)
            && self.selected.as_deref() == at.rows.selected()
    }

    /// Whether this tangent model recorded it, `prefix` entries per row.
    pub(crate) fn made_by(&self, model: &LoopProgram, prefix: usize) -> bool {
        self.plan == std::ptr::from_ref(model) as usize && self.prefix == prefix
    }

    /// The bytes its values take.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum::<usize>() * std::mem::size_of::<f64>()
    }
}

/// Where a data set is, to tell it from another without reading it.
fn address(data: &[f64]) -> (usize, usize) {
    (data.as_ptr() as usize, data.len())
}

/// The kind of `rows`, its indices left out (kept apart, owned).
fn without_indices(rows: Rows<'_>) -> Rows<'static> {
    match rows {
        Rows::All => Rows::All,
        Rows::Selected(_) => Rows::Selected(&[]),
        Rows::Parallel => Rows::Parallel,
    }
}

/// An objective's last [`Linearization`]: products at the θ it was made at
/// read it, a product at another θ replaces it. Safe to share between
/// threads (a product takes it out while it runs; another thread meanwhile
/// makes its own).
#[derive(Debug, Default)]
pub struct LinearizationCache(Mutex<Option<Linearization>>);

impl LinearizationCache {
    /// L(θ) and ∇²L(θ)·v into `out` by `kernel` at `at`, through the
    /// cached linearization when it is of this point, else through a new
    /// one (or none, when the kernel has nothing to share).
    pub fn hess_vec(&self, kernel: &dyn Kernel, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        let held = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let linearization = match held {
            Some(l) if l.matches(kernel.name(), at) => Some(l),
            _ => kernel.linearize(at),
        };
        let Some(linearization) = linearization else {
            return kernel.hess_vec(at, v, out);
        };
        let loss = kernel.hess_vec_linearized(&linearization, at, v, out);
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(linearization);
        loss
    }
}
