//! The evaluation back-ends behind one face: the compiled kernels of the
//! built-in models, and the IR interpreter for a derivation file given at run
//! time (derived and lowered on the spot, no rebuild) — the loop IR of the
//! index form for a model with a vector or matrix parameter (prepared in
//! milliseconds whatever its size), the straight-line programs of the
//! scalar derivation otherwise. [`ModelObjective`]
//! binds a back-end to constants and data as the optimizers'
//! [`Objective`].

use hessforge_ir::tensor::{At, TensorModel};
use hessforge_ir::{ModelPrograms, Outputs};
use hessforge_kernels::{DynKernel, LinearizationCache, PARALLEL_ROWS, Rows};
use hessforge_optim::{Batch, Objective};
use hessforge_spec::Model;
use hessforge_symbolic::EngineError;

/// Where loss, gradient and Hessian come from.
pub enum Backend {
    /// A kernel compiled into this binary.
    Compiled(&'static dyn DynKernel),
    /// The IR interpreter on the scalar programs.
    Interpreted(Box<ModelPrograms>),
    /// The IR interpreter on the loop IR of the index form.
    Loops(Box<TensorModel>),
}

impl Backend {
    /// The compiled kernel when `arg` names a built-in model, else the
    /// interpreter over the lowered derivation: the loop IR where a
    /// parameter is a vector or a matrix, the scalar programs otherwise.
    pub fn resolve(arg: &str, model: &Model) -> Result<Backend, EngineError> {
        if crate::models::is_builtin(arg)
            && let Some(k) = hessforge_kernels::kernel(arg)
        {
            return Ok(Backend::Compiled(k));
        }
        let has_tensor_parameter = model
            .index
            .as_ref()
            .is_some_and(|ix| ix.parameters().any(|t| !t.shape.is_empty()));
        if has_tensor_parameter {
            return Ok(Backend::Loops(Box::new(hessforge_symbolic::lower_tensor(
                model,
            )?)));
        }
        let derivation = hessforge_symbolic::derive_scalar(model)?;
        Ok(Backend::Interpreted(Box::new(hessforge_symbolic::lower(
            &derivation,
        )?)))
    }

    /// "compiled" or "interpreter".
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Compiled(_) => "compiled",
            Backend::Interpreted(_) | Backend::Loops(_) => "interpreter",
        }
    }

    /// The kernel's view of the rows: the selection, or all of them (in
    /// parallel from [`PARALLEL_ROWS`] rows).
    fn rows<'a>(k: &dyn DynKernel, data: &'a [f64], rows: Option<&'a [usize]>) -> Rows<'a> {
        match rows {
            Some(r) => Rows::Selected(data, r),
            None if data.len() / k.n_data().max(1) >= PARALLEL_ROWS => Rows::Parallel(data),
            None => Rows::All(data),
        }
    }

    /// Run the interpreter at `level` into a fresh output vector.
    fn interpret(
        p: &ModelPrograms,
        level: Outputs,
        theta: &[f64],
        constants: &[f64],
        data: &[f64],
        rows: Option<&[usize]>,
    ) -> Vec<f64> {
        let mut out = vec![0.0; level.len(theta.len())];
        p.evaluate(level, theta, constants, data, rows, &mut out);
        out
    }

    /// L(θ) over the rows (all when `rows` is None).
    pub fn loss(
        &self,
        theta: &[f64],
        constants: &[f64],
        data: &[f64],
        rows: Option<&[usize]>,
    ) -> f64 {
        match self {
            Backend::Compiled(k) => k.loss(theta, constants, Self::rows(*k, data, rows)),
            Backend::Interpreted(p) => {
                Self::interpret(p, Outputs::Loss, theta, constants, data, rows)[0]
            }
            Backend::Loops(m) => {
                let at = At {
                    theta,
                    constants,
                    data,
                    rows,
                };
                m.evaluate(Outputs::Loss, at, &mut [], &mut [])
            }
        }
    }

    /// L(θ) and ∇L.
    pub fn loss_grad(
        &self,
        theta: &[f64],
        constants: &[f64],
        data: &[f64],
        rows: Option<&[usize]>,
        grad: &mut [f64],
    ) -> f64 {
        match self {
            Backend::Compiled(k) => k.loss_grad(theta, constants, Self::rows(*k, data, rows), grad),
            Backend::Interpreted(p) => {
                let out = Self::interpret(p, Outputs::LossGrad, theta, constants, data, rows);
                grad.copy_from_slice(&out[1..]);
                out[0]
            }
            Backend::Loops(m) => {
                let at = At {
                    theta,
                    constants,
                    data,
                    rows,
                };
                m.evaluate(Outputs::LossGrad, at, grad, &mut [])
            }
        }
    }

    /// L(θ), ∇L and ∇²L (row-major P×P).
    pub fn loss_grad_hess(
        &self,
        theta: &[f64],
        constants: &[f64],
        data: &[f64],
        rows: Option<&[usize]>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        match self {
            Backend::Compiled(k) => {
                k.loss_grad_hess(theta, constants, Self::rows(*k, data, rows), grad, hess)
            }
            Backend::Interpreted(p) => {
                let n = theta.len();
                let out = Self::interpret(p, Outputs::LossGradHess, theta, constants, data, rows);
                grad.copy_from_slice(&out[1..=n]);
                hessforge_ir::unpack_upper(n, &out[1 + n..], hess);
                out[0]
            }
            Backend::Loops(m) => {
                let at = At {
                    theta,
                    constants,
                    data,
                    rows,
                };
                m.evaluate(Outputs::LossGradHess, at, grad, hess)
            }
        }
    }
}

impl Backend {
    /// L(θ) and ∇²L(θ)·v: the compiled kernel's and the loop IR's contract
    /// their Hessian terms with v and never form ∇²L; the scalar programs
    /// form it and multiply.
    pub fn hess_vec(
        &self,
        theta: &[f64],
        constants: &[f64],
        data: &[f64],
        rows: Option<&[usize]>,
        v: &[f64],
        out: &mut [f64],
    ) -> f64 {
        match self {
            Backend::Compiled(k) => {
                k.hess_vec(theta, constants, Self::rows(*k, data, rows), v, out)
            }
            Backend::Loops(m) => {
                let at = At {
                    theta,
                    constants,
                    data,
                    rows,
                };
                m.hess_vec(at, v, out)
            }
            Backend::Interpreted(_) => {
                let p = theta.len();
                let (mut grad, mut hess) = (vec![0.0; p], vec![0.0; p * p]);
                let loss = self.loss_grad_hess(theta, constants, data, rows, &mut grad, &mut hess);
                hessforge_optim::objective::dense_hess_vec(&hess, v, out);
                loss
            }
        }
    }
}

impl Backend {
    /// L(θ) and the diagonal of ∇²L(θ) over all rows: the compiled
    /// kernel's and the loop IR's add only the diagonal entries of their
    /// Hessian terms; the scalar programs form ∇²L.
    pub fn hess_diag(
        &self,
        theta: &[f64],
        constants: &[f64],
        data: &[f64],
        out: &mut [f64],
    ) -> f64 {
        match self {
            Backend::Compiled(k) => k.hess_diag(theta, constants, Self::rows(*k, data, None), out),
            Backend::Loops(m) => {
                let at = At {
                    theta,
                    constants,
                    data,
                    rows: None,
                };
                m.hess_diag(at, out)
            }
            Backend::Interpreted(_) => {
                let p = theta.len();
                let (mut grad, mut hess) = (vec![0.0; p], vec![0.0; p * p]);
                let loss = self.loss_grad_hess(theta, constants, data, None, &mut grad, &mut hess);
                for (i, d) in out[..p].iter_mut().enumerate() {
                    *d = hess[i * p + i];
                }
                loss
            }
        }
    }
}

/// A back-end bound to constants and data: what the optimizers minimise.
pub struct ModelObjective<'a> {
    /// The back-end.
    pub backend: &'a Backend,
    /// Values of the model's constants.
    pub constants: Vec<f64>,
    /// Row-major data.
    pub data: &'a [f64],
    /// Number of rows.
    pub rows: usize,
    /// Number of parameters.
    pub n_params: usize,
    /// Whether Gauss–Newton applies ([`loss_is_square`]).
    pub square_loss: bool,
    /// The compiled kernel's last linearization: its products at one θ
    /// over all rows share their primal values.
    pub linearized: LinearizationCache<'a>,
}

impl ModelObjective<'_> {
    fn batch(batch: Batch<'_>) -> Option<&[usize]> {
        match batch {
            Batch::Full => None,
            Batch::Rows(r) => Some(r),
        }
    }
}

impl Objective for ModelObjective<'_> {
    fn n_params(&self) -> usize {
        self.n_params
    }
    fn n_rows(&self) -> usize {
        self.rows
    }
    fn loss(&self, theta: &[f64], batch: Batch<'_>) -> f64 {
        self.backend
            .loss(theta, &self.constants, self.data, Self::batch(batch))
    }
    fn loss_grad(&self, theta: &[f64], batch: Batch<'_>, grad: &mut [f64]) -> f64 {
        self.backend
            .loss_grad(theta, &self.constants, self.data, Self::batch(batch), grad)
    }
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        batch: Batch<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        self.backend.loss_grad_hess(
            theta,
            &self.constants,
            self.data,
            Self::batch(batch),
            grad,
            hess,
        )
    }
    fn hess_vec(&self, theta: &[f64], batch: Batch<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        if let (Backend::Compiled(k), Batch::Full) = (self.backend, batch) {
            let parallel = matches!(Backend::rows(*k, self.data, None), Rows::Parallel(_));
            return self.linearized.hess_vec(
                *k,
                theta,
                &self.constants,
                self.data,
                parallel,
                v,
                out,
            );
        }
        self.backend.hess_vec(
            theta,
            &self.constants,
            self.data,
            Self::batch(batch),
            v,
            out,
        )
    }
    fn hess_diag(&self, theta: &[f64], out: &mut [f64]) -> f64 {
        self.backend
            .hess_diag(theta, &self.constants, self.data, out)
    }

    /// For ℓᵢ = c·rᵢ² and no regularizer: each row's gradient
    /// gᵢ = 2c rᵢ∇rᵢ gives the Gauss–Newton term 2c∇rᵢ∇rᵢᵀ = gᵢgᵢᵀ/(2ℓᵢ) —
    /// no residual Jacobian needed.
    fn loss_grad_gauss_newton(
        &self,
        theta: &[f64],
        grad: &mut [f64],
        gn: &mut [f64],
    ) -> Option<f64> {
        if !self.square_loss {
            return None;
        }
        let p = self.n_params;
        let n = self.rows.max(1) as f64;
        grad.fill(0.0);
        gn.fill(0.0);
        let loss = self.each_row_gradient(theta, |l, row_grad| {
            for (a, g) in grad.iter_mut().zip(row_grad) {
                *a += g / n;
            }
            if l > 0.0 {
                for a in 0..p {
                    for b in 0..p {
                        gn[a * p + b] += row_grad[a] * row_grad[b] / (2.0 * l * n);
                    }
                }
            }
        });
        Some(loss / n)
    }

    /// The same Gauss–Newton matrix times v, never formed: the sum over the
    /// rows of gᵢ (gᵢ·v) / (2ℓᵢ N), one gradient per row.
    fn gauss_newton_vec(&self, theta: &[f64], v: &[f64], out: &mut [f64]) -> Option<f64> {
        if !self.square_loss {
            return None;
        }
        let n = self.rows.max(1) as f64;
        out.fill(0.0);
        let loss = self.each_row_gradient(theta, |l, row_grad| {
            if l > 0.0 {
                let c = row_grad.iter().zip(v).map(|(g, x)| g * x).sum::<f64>() / (2.0 * l * n);
                for (o, g) in out.iter_mut().zip(row_grad) {
                    *o += c * g;
                }
            }
        });
        Some(loss / n)
    }
}

impl ModelObjective<'_> {
    /// Each row's loss and gradient in turn, to `f`; the sum of the losses.
    fn each_row_gradient(&self, theta: &[f64], mut f: impl FnMut(f64, &[f64])) -> f64 {
        let mut row_grad = vec![0.0; self.n_params];
        let mut loss = 0.0;
        for i in 0..self.rows {
            let l = self.backend.loss_grad(
                theta,
                &self.constants,
                self.data,
                Some(&[i]),
                &mut row_grad,
            );
            loss += l;
            f(l, &row_grad);
        }
        loss
    }
}

/// Whether Gauss–Newton applies: the per-row loss is c·r² with a positive
/// number c — a square, or a product of one square and positive numbers
/// (`(yhat - y)^2 / 2`) — and there is no regularizer.
pub fn loss_is_square(model: &Model) -> bool {
    use hessforge_spec::Expr;
    fn positive_number(e: &Expr) -> bool {
        match e {
            Expr::Num(r) => !r.is_negative() && !r.is_zero(),
            Expr::Pow(b, x) => {
                matches!(**b, Expr::Num(ref r) if !r.is_negative() && !r.is_zero())
                    && matches!(**x, Expr::Num(_))
            }
            _ => false,
        }
    }
    fn square(e: &Expr) -> bool {
        matches!(e, Expr::Pow(_, x) if matches!(**x, Expr::Num(ref r) if r.is(2, 1)))
    }
    !model.data.is_empty()
        && model.regularizer.is_none()
        && match &model.loss {
            e if square(e) => true,
            Expr::Mul(factors) => {
                factors.iter().filter(|f| square(f)).count() == 1
                    && factors.iter().all(|f| square(f) || positive_number(f))
            }
            _ => false,
        }
}
