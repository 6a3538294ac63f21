//! Where a model's numbers come from: the compiled kernel of a built-in
//! model, or for a derivation file given at run time (derived and lowered
//! on the spot, no rebuild) its IR compiled to machine code — the loop IR
//! of the index form ([`RunTimeKernel`], for a model with a vector or
//! matrix parameter), else the straight-line programs of the scalar
//! derivation ([`CompiledStraightLine`]) —, or when asked for
//! ([`BackendChoice::Interpreter`], the oracle) an interpreter of the same
//! IR. Each is a [`Kernel`];
//! [`hessforge_kernels::KernelObjective`] binds it to constants and data as
//! the optimizers' objective.

use hessforge_kernels::{CompiledStraightLine, JitError, Kernel, RunTimeKernel};
use hessforge_spec::Model;
use hessforge_symbolic::EngineError;
use std::sync::Arc;

/// A model's [`Kernel`]: compiled into this binary, compiled at run time,
/// or an interpreter. Cloning shares the kernel (a DataFusion function
/// carries one into every partition's accumulator).
#[derive(Clone)]
pub enum Backend {
    /// A kernel compiled into this binary.
    Compiled(&'static dyn Kernel),
    /// The loop IR compiled to machine code when the model was loaded.
    RunTimeCompiled(Arc<RunTimeKernel>),
    /// The straight-line programs (a model whose parameters are all
    /// scalars), each compiled to machine code once it has run often
    /// enough to repay it ([`hessforge_kernels::TIER_UP_RUNS`]).
    RunTimeCompiledStraightLine(Arc<CompiledStraightLine>),
    /// An interpreter of the lowered derivation (the scalar programs or
    /// the loop IR).
    Interpreted(Arc<dyn Kernel>),
}

/// Which back-end a model runs on (`--backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// The fastest there is: the compiled kernel of a built-in, else the
    /// model's IR compiled at run time (its loop IR, or its straight-line
    /// programs).
    #[default]
    Auto,
    /// The interpreter of the lowered derivation, for every model: the
    /// oracle the compiled kernels are tested against.
    Interpreter,
}

impl Backend {
    /// The back-end `choice` names for `model` (a built-in when `arg` names
    /// one): see [`BackendChoice`].
    pub fn resolve(
        arg: &str,
        model: &Model,
        choice: BackendChoice,
    ) -> Result<Backend, EngineError> {
        if choice == BackendChoice::Auto
            && crate::models::is_builtin(arg)
            && let Some(k) = hessforge_kernels::kernel(arg)
        {
            return Ok(Backend::Compiled(k));
        }
        let failed = |e: JitError| EngineError::Internal {
            file: model.name.clone(),
            message: format!("{e} (`--backend interpreter` runs the model on the interpreter)"),
        };
        let auto = choice == BackendChoice::Auto;
        if model.has_tensor_parameter() {
            let program = hessforge_symbolic::lower_loop_ir(model)?;
            if auto {
                let compiled = RunTimeKernel::compile(program).map_err(failed)?;
                return Ok(Backend::RunTimeCompiled(Arc::new(compiled)));
            }
            return Ok(Backend::Interpreted(Arc::new(program)));
        }
        let derivation = hessforge_symbolic::derive_scalar(model)?;
        let programs = hessforge_symbolic::lower(&derivation)?;
        if auto {
            let compiled = CompiledStraightLine::tiered(programs).map_err(failed)?;
            return Ok(Backend::RunTimeCompiledStraightLine(Arc::new(compiled)));
        }
        Ok(Backend::Interpreted(Arc::new(programs)))
    }

    /// "compiled", "run-time compiled" or "interpreter".
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Compiled(_) => "compiled",
            Backend::RunTimeCompiled(_) | Backend::RunTimeCompiledStraightLine(_) => {
                "run-time compiled"
            }
            Backend::Interpreted(_) => "interpreter",
        }
    }

    /// The kernel.
    pub fn kernel(&self) -> &dyn Kernel {
        match self {
            Backend::Compiled(k) => *k,
            Backend::RunTimeCompiled(k) => k.as_ref(),
            Backend::RunTimeCompiledStraightLine(k) => k.as_ref(),
            Backend::Interpreted(k) => k.as_ref(),
        }
    }
}

/// Whether Gauss–Newton applies: the per-row loss is c·r² with a positive
/// number c — a square, or a product of one square and positive numbers
/// (`(yhat - y)^2 / 2`). A regularizer's own Hessian is added to the
/// Gauss–Newton matrix where the kernel evaluates the regularizer alone
/// ([`hessforge_kernels::Kernel::regularizer_alone`]: a model in index form).
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
        && match model.loss() {
            e if square(e) => true,
            Expr::Mul(factors) => {
                factors.iter().filter(|f| square(f)).count() == 1
                    && factors.iter().all(|f| square(f) || positive_number(f))
            }
            _ => false,
        }
}
