//! The two evaluation back-ends behind one face: the compiled kernels of the
//! built-in models, and the IR interpreter for a derivation file given at run
//! time (derived and lowered on the spot, no rebuild).

use hessforge_ir::{ModelPrograms, Outputs};
use hessforge_kernels::{DynKernel, Rows};
use hessforge_spec::Model;
use hessforge_symbolic::EngineError;

/// Where loss, gradient and Hessian come from.
pub enum Backend {
    /// A kernel compiled into this binary.
    Compiled(&'static dyn DynKernel),
    /// The IR interpreter.
    Interpreted(Box<ModelPrograms>),
}

impl Backend {
    /// The compiled kernel when `arg` names a built-in model, else the
    /// interpreter over the lowered derivation.
    pub fn resolve(arg: &str, model: &Model) -> Result<Backend, EngineError> {
        if crate::models::is_builtin(arg)
            && let Some(k) = hessforge_kernels::kernel(arg)
        {
            return Ok(Backend::Compiled(k));
        }
        let derivation = hessforge_symbolic::derive(model)?;
        Ok(Backend::Interpreted(Box::new(hessforge_symbolic::lower(
            &derivation,
        )?)))
    }

    /// "compiled" or "interpreter".
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Compiled(_) => "compiled",
            Backend::Interpreted(_) => "interpreter",
        }
    }

    /// L(θ) over all rows.
    pub fn loss(&self, theta: &[f64], constants: &[f64], data: &[f64]) -> f64 {
        match self {
            Backend::Compiled(k) => k.loss(theta, constants, Rows::All(data)),
            Backend::Interpreted(p) => {
                let mut out = [0.0];
                p.evaluate(Outputs::Loss, theta, constants, data, None, &mut out);
                out[0]
            }
        }
    }

    /// L(θ) and ∇L.
    pub fn loss_grad(
        &self,
        theta: &[f64],
        constants: &[f64],
        data: &[f64],
        grad: &mut [f64],
    ) -> f64 {
        match self {
            Backend::Compiled(k) => k.loss_grad(theta, constants, Rows::All(data), grad),
            Backend::Interpreted(p) => {
                let mut out = vec![0.0; Outputs::LossGrad.len(theta.len())];
                p.evaluate(Outputs::LossGrad, theta, constants, data, None, &mut out);
                grad.copy_from_slice(&out[1..]);
                out[0]
            }
        }
    }

    /// L(θ), ∇L and ∇²L (row-major P×P).
    pub fn loss_grad_hess(
        &self,
        theta: &[f64],
        constants: &[f64],
        data: &[f64],
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        match self {
            Backend::Compiled(k) => k.loss_grad_hess(theta, constants, Rows::All(data), grad, hess),
            Backend::Interpreted(p) => {
                let n = theta.len();
                let mut out = vec![0.0; Outputs::LossGradHess.len(n)];
                p.evaluate(
                    Outputs::LossGradHess,
                    theta,
                    constants,
                    data,
                    None,
                    &mut out,
                );
                grad.copy_from_slice(&out[1..=n]);
                hessforge_ir::unpack_upper(n, &out[1 + n..], hess);
                out[0]
            }
        }
    }
}
