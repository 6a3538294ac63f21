//! Where a model's numbers come from: the compiled kernel of a built-in
//! model, or an interpreter of a derivation file given at run time
//! (derived and lowered on the spot, no rebuild) — the loop IR of the
//! index form for a model with a vector or matrix parameter (prepared in
//! milliseconds whatever its size), the straight-line programs of the
//! scalar derivation otherwise. Either is a [`Kernel`];
//! [`hessforge_kernels::KernelObjective`] binds it to constants and data as
//! the optimizers' objective.

use hessforge_kernels::Kernel;
use hessforge_spec::Model;
use hessforge_symbolic::EngineError;

/// A model's [`Kernel`]: compiled into this binary, or an interpreter.
pub enum Backend {
    /// A kernel compiled into this binary.
    Compiled(&'static dyn Kernel),
    /// An interpreter of the lowered derivation (the scalar programs or
    /// the loop IR).
    Interpreted(Box<dyn Kernel>),
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
            return Ok(Backend::Interpreted(Box::new(
                hessforge_symbolic::lower_loop_ir(model)?,
            )));
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
            Backend::Interpreted(_) => "interpreter",
        }
    }

    /// The kernel.
    pub fn kernel(&self) -> &dyn Kernel {
        match self {
            Backend::Compiled(k) => *k,
            Backend::Interpreted(k) => k.as_ref(),
        }
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
