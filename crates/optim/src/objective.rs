//! What an optimizer minimises: the [`Objective`] trait (loss, gradient and
//! Hessian over all rows or a mini-batch of row indices, [`Rows`]), and [`Counted`],
//! which counts the passes a run makes.

use std::cell::Cell;

pub use hessforge_ir::Rows;

/// A twice-differentiable objective over a data set. Implemented by the
/// compiled kernels and by the IR interpreter (in the `hessforge` binary);
/// the optimizers know nothing else about where the numbers come from.
pub trait Objective {
    /// Number of parameters P.
    fn n_params(&self) -> usize;
    /// Number of data rows N (0 for a model without data).
    fn n_rows(&self) -> usize;
    /// L(θ).
    fn loss(&self, theta: &[f64], batch: Rows<'_>) -> f64;
    /// L(θ); writes ∇L into `grad` (length P).
    fn loss_grad(&self, theta: &[f64], batch: Rows<'_>, grad: &mut [f64]) -> f64;
    /// L(θ); writes ∇L into `grad` and ∇²L, row-major P×P, into `hess`.
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        batch: Rows<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64;
    /// L(θ); writes ∇²L(θ)·v into `out` (length P) over the batch. A
    /// Hessian-free method's only second-order call: the compiled kernels
    /// and the loop IR contract their Hessian terms with v and never form
    /// ∇²L (about the cost of a gradient, Pearlmutter 1994); this default
    /// forms ∇²L and multiplies.
    fn hess_vec(&self, theta: &[f64], batch: Rows<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        let p = theta.len();
        let (mut grad, mut hess) = (vec![0.0; p], vec![0.0; p * p]);
        let loss = self.loss_grad_hess(theta, batch, &mut grad, &mut hess);
        dense_hess_vec(&hess, v, out);
        loss
    }
    /// L(θ); writes the diagonal of ∇²L(θ) into `out` (length P), over all
    /// rows: what a Jacobi (diagonal) preconditioner needs. The compiled
    /// loop kernels and the loop IR add only the diagonal entries of their
    /// Hessian terms (about the cost of a gradient); this default forms
    /// ∇²L.
    fn hess_diag(&self, theta: &[f64], out: &mut [f64]) -> f64 {
        let p = theta.len();
        let (mut grad, mut hess) = (vec![0.0; p], vec![0.0; p * p]);
        let loss = self.loss_grad_hess(theta, Rows::All, &mut grad, &mut hess);
        for (i, d) in out[..p].iter_mut().enumerate() {
            *d = hess[i * p + i];
        }
        loss
    }
    /// For a loss that is a square per row, ℓᵢ = c·rᵢ(θ)² with c > 0: L(θ)
    /// and the Gauss–Newton matrix times v into `out` (length P) — what
    /// Hessian-free Gauss–Newton's CG needs; `None` when the loss is not of
    /// that form. This default forms the matrix by
    /// [`Objective::loss_grad_gauss_newton`] and multiplies.
    fn gauss_newton_vec(&self, theta: &[f64], v: &[f64], out: &mut [f64]) -> Option<f64> {
        let p = theta.len();
        let (mut grad, mut gn) = (vec![0.0; p], vec![0.0; p * p]);
        let loss = self.loss_grad_gauss_newton(theta, &mut grad, &mut gn)?;
        dense_hess_vec(&gn, v, out);
        Some(loss)
    }
    /// For a loss that is a square per row, ℓᵢ = c·rᵢ(θ)² with c > 0:
    /// L(θ), ∇L into `grad`, and the Gauss–Newton matrix
    /// (1/N) Σᵢ 2c ∇rᵢ∇rᵢᵀ + ∇²R (row-major P×P) into `gn`. `None` when the
    /// objective's loss is not of that form (the default).
    fn loss_grad_gauss_newton(
        &self,
        theta: &[f64],
        grad: &mut [f64],
        gn: &mut [f64],
    ) -> Option<f64> {
        let _ = (theta, grad, gn);
        None
    }
}

/// `out = H v` for a dense row-major P × P `hess` (P = `v.len()`): the
/// Hessian–vector product of a back-end that can only form ∇²L.
pub fn dense_hess_vec(hess: &[f64], v: &[f64], out: &mut [f64]) {
    let p = v.len();
    for (i, o) in out.iter_mut().enumerate().take(p) {
        *o = hess[i * p..(i + 1) * p]
            .iter()
            .zip(v)
            .map(|(h, x)| h * x)
            .sum();
    }
}

/// How many passes a run made, by kind (a mini-batch pass counts as one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Evaluations {
    /// Loss-only passes.
    pub loss: u64,
    /// Loss + gradient passes.
    pub gradient: u64,
    /// Loss + gradient + Hessian (or Gauss–Newton matrix) passes.
    pub hessian: u64,
    /// Hessian–vector product passes (∇²L·v, without ∇²L), and
    /// Gauss–Newton–vector products.
    pub hess_vec: u64,
    /// Passes for the diagonal of ∇²L (a preconditioner's).
    pub hess_diag: u64,
}

/// An objective that counts its evaluations.
pub struct Counted<'o> {
    inner: &'o dyn Objective,
    loss: Cell<u64>,
    gradient: Cell<u64>,
    hessian: Cell<u64>,
    hess_vec: Cell<u64>,
    hess_diag: Cell<u64>,
}

impl<'o> Counted<'o> {
    /// Wrap `inner`, with all counts at zero.
    pub fn new(inner: &'o dyn Objective) -> Self {
        Counted {
            inner,
            loss: Cell::new(0),
            gradient: Cell::new(0),
            hessian: Cell::new(0),
            hess_vec: Cell::new(0),
            hess_diag: Cell::new(0),
        }
    }

    /// The counts so far.
    pub fn evaluations(&self) -> Evaluations {
        Evaluations {
            loss: self.loss.get(),
            gradient: self.gradient.get(),
            hessian: self.hessian.get(),
            hess_vec: self.hess_vec.get(),
            hess_diag: self.hess_diag.get(),
        }
    }
}

impl Objective for Counted<'_> {
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }
    fn n_rows(&self) -> usize {
        self.inner.n_rows()
    }
    fn loss(&self, theta: &[f64], batch: Rows<'_>) -> f64 {
        self.loss.set(self.loss.get() + 1);
        self.inner.loss(theta, batch)
    }
    fn loss_grad(&self, theta: &[f64], batch: Rows<'_>, grad: &mut [f64]) -> f64 {
        self.gradient.set(self.gradient.get() + 1);
        self.inner.loss_grad(theta, batch, grad)
    }
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        batch: Rows<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        self.hessian.set(self.hessian.get() + 1);
        self.inner.loss_grad_hess(theta, batch, grad, hess)
    }
    fn hess_vec(&self, theta: &[f64], batch: Rows<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        self.hess_vec.set(self.hess_vec.get() + 1);
        self.inner.hess_vec(theta, batch, v, out)
    }
    fn hess_diag(&self, theta: &[f64], out: &mut [f64]) -> f64 {
        self.hess_diag.set(self.hess_diag.get() + 1);
        self.inner.hess_diag(theta, out)
    }
    fn loss_grad_gauss_newton(
        &self,
        theta: &[f64],
        grad: &mut [f64],
        gn: &mut [f64],
    ) -> Option<f64> {
        self.hessian.set(self.hessian.get() + 1);
        self.inner.loss_grad_gauss_newton(theta, grad, gn)
    }
    fn gauss_newton_vec(&self, theta: &[f64], v: &[f64], out: &mut [f64]) -> Option<f64> {
        self.hess_vec.set(self.hess_vec.get() + 1);
        self.inner.gauss_newton_vec(theta, v, out)
    }
}

/// A data-free objective from closures — for tests and examples.
pub struct FnObjective<F, G, H>
where
    F: Fn(&[f64]) -> f64,
    G: Fn(&[f64], &mut [f64]),
    H: Fn(&[f64], &mut [f64]),
{
    /// Number of parameters.
    pub n_params: usize,
    /// L(θ).
    pub loss: F,
    /// ∇L(θ) into the slice.
    pub grad: G,
    /// ∇²L(θ), row-major, into the slice.
    pub hess: H,
}

impl<F, G, H> Objective for FnObjective<F, G, H>
where
    F: Fn(&[f64]) -> f64,
    G: Fn(&[f64], &mut [f64]),
    H: Fn(&[f64], &mut [f64]),
{
    fn n_params(&self) -> usize {
        self.n_params
    }
    fn n_rows(&self) -> usize {
        0
    }
    fn loss(&self, theta: &[f64], _: Rows<'_>) -> f64 {
        (self.loss)(theta)
    }
    fn loss_grad(&self, theta: &[f64], _: Rows<'_>, grad: &mut [f64]) -> f64 {
        (self.grad)(theta, grad);
        (self.loss)(theta)
    }
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        _: Rows<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        (self.grad)(theta, grad);
        (self.hess)(theta, hess);
        (self.loss)(theta)
    }
}
