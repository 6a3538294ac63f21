//! The symbolic engine of hessforge, and the only crate that uses Symbolica.
//!
//! [`derive()`] turns a validated [`Model`] into a [`Derivation`]: every partial
//! derivative of the per-sample loss and of the regularizer, and the Hessian,
//! written through the model's named intermediates and simplified.
//! The [`Derivation`] type, the index calculus and the renderer that prints
//! a derivation are `hessforge-derivation`'s, which needs no Symbolica; this
//! crate simplifies their terms and lowers a derivation to the IR.
//!
//! All Symbolica work runs on one dedicated worker thread (Symbolica's
//! restricted mode allows one thread per user); the functions here take and
//! return plain Rust data and may be called from any thread.
#![warn(missing_docs)]

mod engine;
mod index_simplify;
pub mod lock;
mod lower;
mod lower_index;
mod range_safe;
mod worker;

use hessforge_derivation::index_calculus;
pub use hessforge_derivation::{
    Derivation, GradientEntry, LOSS, LocalPartial, NormalForms, REGULARIZER, SymbolicaForms,
};

/// Why the symbolic engine could not finish with a model.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum EngineError {
    /// The model is well-formed, but a derivative is not a real number
    /// everywhere: a division by zero, an undefined value, or a complex
    /// constant (e.g. `log(-1)`, `1/(x - x)`). This is bad input.
    #[error("{file}: the model cannot be derived: {reason}")]
    #[diagnostic(help(
        "look for a division by an expression that is identically zero, or a root or \
         logarithm of a negative constant, in the definitions this derivative uses"
    ))]
    Undefined {
        /// The derivation file.
        file: String,
        /// Which derivative, and what it contains.
        reason: String,
    },
    /// Symbolica could not be started: another process kept it past the
    /// time limit (Symbolica allows one process per user at a time).
    #[error("{file}: {message}")]
    #[diagnostic(help(
        "another hessforge (or a build of its kernels) is running; wait for it, or set \
         HESSFORGE_LOCK_TIMEOUT=SECONDS to wait longer"
    ))]
    Busy {
        /// The derivation file.
        file: String,
        /// Which process held the lock, and for how long it was waited for.
        message: String,
    },
    /// A panic or another failure inside the engine: a bug in hessforge.
    #[error("{file}: internal error in the symbolic engine: {message}")]
    #[diagnostic(help("this is a bug in hessforge; please report it with the derivation file"))]
    Internal {
        /// The derivation file.
        file: String,
        /// What failed.
        message: String,
    },
}

impl EngineError {
    /// Whether the input is to blame (exit code 2) rather than hessforge.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, EngineError::Undefined { .. })
    }

    /// Whether this is a bug in hessforge (a panic inside the engine).
    pub fn is_internal(&self) -> bool {
        matches!(self, EngineError::Internal { .. })
    }

    /// An internal error about the model read from `file`.
    fn internal(file: &str) -> impl FnOnce(String) -> EngineError + '_ {
        |message| EngineError::Internal {
            file: file.to_string(),
            message,
        }
    }

    /// The worker's failure on the model read from `file`.
    fn worker(file: &str) -> impl FnOnce(WorkerError) -> EngineError + '_ {
        |e| match e {
            WorkerError::Unavailable(message) => EngineError::Busy {
                file: file.to_string(),
                message,
            },
            WorkerError::Panic(message) => EngineError::internal(file)(message),
        }
    }
}

use hessforge_derivation::Rewrite;
use hessforge_spec::{Expr, Model};
use worker::WorkerError;

/// Derive the loss, gradient and Hessian of a model: every scalar entry,
/// and for a model with tensor parameters the index form with its
/// back-propagation (what every document format needs).
pub fn derive(model: &Model) -> Result<Derivation, EngineError> {
    derive_with(model, true)
}

/// The scalar derivation alone (`index` and `backprop` are `None`): what
/// [`lower`] and the kernels need, without the cost of the index form.
pub fn derive_scalar(model: &Model) -> Result<Derivation, EngineError> {
    derive_with(model, false)
}

fn derive_with(model: &Model, with_index: bool) -> Result<Derivation, EngineError> {
    let owned = model.clone();
    worker::run(move |engine| engine.derive(&owned, with_index))
        .map_err(EngineError::worker(&model.source))?
        .map_err(|reason| EngineError::Undefined {
            file: model.source.clone(),
            reason,
        })
}

/// Derive a model for reading: in index form only where it has tensor
/// parameters (milliseconds whatever the tensors' lengths; the scalar lists
/// stay empty and `expanded` is false), in full otherwise. Enough for every
/// format of `hessforge_derivation::render::render`; `render_expanded` and the
/// kernels need [`derive()`].
///
/// It takes the model (the derivation holds it): a model with 10 000-entry
/// tensors is not copied to reach the engine's thread.
pub fn derive_unexpanded(model: Model) -> Result<Derivation, EngineError> {
    let file = model.source.clone();
    let quick = worker::run(move |engine| engine.derive_unexpanded(model))
        .map_err(EngineError::worker(&file))?;
    match quick {
        Ok(d) => Ok(d),
        Err(model) => derive(&model),
    }
}

/// Derive a model in index form: the gradient once per parameter tensor and
/// the Hessian once per pair of parameter tensors, with symbolic indices,
/// whatever the tensors' lengths; coefficients simplified by Symbolica.
pub fn derive_index(model: &Model) -> Result<index_calculus::IndexDerivation, EngineError> {
    let Some(index) = &model.index else {
        return Err(EngineError::internal(&model.source)(
            "the model has no index form".to_string(),
        ));
    };
    let derived =
        index_calculus::differentiate(index).map_err(EngineError::internal(&model.source))?;
    let index = index.clone();
    worker::run(move |engine| engine.simplify_index_derivation(&index, &derived))
        .map_err(EngineError::worker(&model.source))?
        .map_err(|reason| EngineError::Undefined {
            file: model.source.clone(),
            reason,
        })
}

/// Lower a derivation to IR programs (loss; loss and gradient; loss, gradient
/// and Hessian — each split into per-row and θ-only parts), optimised by
/// Symbolica's evaluator and rewritten into numerically stable and
/// range-safe forms (see [`rewrites`]).
pub fn lower(derivation: &Derivation) -> Result<hessforge_ir::ModelPrograms, EngineError> {
    lower_recording(derivation).map(|(programs, _)| programs)
}

fn lower_recording(
    derivation: &Derivation,
) -> Result<(hessforge_ir::ModelPrograms, Vec<range_safe::Applied>), EngineError> {
    let d = derivation.clone();
    let model = &derivation.model;
    worker::run(move |engine| engine.lower(&d))
        .map_err(EngineError::worker(&model.source))?
        .map_err(lower_failure(model))
}

fn lower_failure(model: &Model) -> impl Fn(lower::LowerFailure) -> EngineError + '_ {
    move |e| match e {
        lower::LowerFailure::Undefined(reason) => EngineError::Undefined {
            file: model.source.clone(),
            reason,
        },
        lower::LowerFailure::Internal(message) => EngineError::internal(&model.source)(message),
    }
}

/// Lower a model in index form into the loop IR: steps over index ranges,
/// gradient buffers per parameter tensor, Hessian terms per pair of tensors
/// (rank-1 products, Kronecker-delta patterns, dense blocks) — a program
/// whose size does not depend on the tensors' lengths, with Hessian–vector
/// products that never form the Hessian.
pub fn lower_loop_ir(model: &Model) -> Result<hessforge_ir::loop_ir::LoopProgram, EngineError> {
    lower_loop_ir_recording(model).map(|(program, _)| program)
}

fn lower_loop_ir_recording(
    model: &Model,
) -> Result<(hessforge_ir::loop_ir::LoopProgram, Vec<range_safe::Applied>), EngineError> {
    let Some(index) = &model.index else {
        return Err(EngineError::internal(&model.source)(
            "the model has no index form".to_string(),
        ));
    };
    let derived =
        index_calculus::differentiate(index).map_err(EngineError::internal(&model.source))?;
    let (index, layout) = (index.clone(), lower_index::ScalarLayout::of(model));
    worker::run(move |engine| {
        let simplified = engine
            .simplify_index_derivation(&index, &derived)
            .map_err(lower::LowerFailure::Undefined)?;
        engine.lower_index(layout, &index, &simplified)
    })
    .map_err(EngineError::worker(&model.source))?
    .map_err(lower_failure(model))
}

/// The rewrites the lowering applies to the expressions of the model's
/// kernel, each once, in order: for a model with tensor parameters the
/// loop IR's (the stable rewrites: log(1 + eᵘ) → softplus, …), for a model
/// of scalars the programs' (the stable and the range-safe rewrites:
/// products in log space, log-sum-exp, σ(−u) for 1 − σ(u)). What
/// `hessforge derive --format json` lists as `rewrites`. A model of
/// scalars needs the expanded derivation ([`derive()`]).
pub fn rewrites(derivation: &Derivation) -> Result<Vec<Rewrite>, EngineError> {
    let applied = if derivation.index.is_some() {
        lower_loop_ir_recording(&derivation.model)?.1
    } else {
        lower_recording(derivation)?.1
    };
    let mut seen = std::collections::HashSet::new();
    Ok(applied
        .into_iter()
        .filter(|a| seen.insert((a.rule, a.from.clone())))
        .map(|a| Rewrite {
            rule: a.rule.to_string(),
            from: a.from,
            to: a.to,
        })
        .collect())
}

/// Whether two expressions over the model's names are equal as functions:
/// every intermediate is inlined and the difference simplified to zero.
pub fn equivalent(model: &Model, a: &Expr, b: &Expr) -> Result<bool, EngineError> {
    let (owned, a, b) = (model.clone(), a.clone(), b.clone());
    worker::run(move |engine| engine.equivalent(&owned, &a, &b))
        .map_err(EngineError::worker(&model.source))
}
