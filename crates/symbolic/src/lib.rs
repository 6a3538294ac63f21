//! The symbolic engine of hessforge, and the only crate that uses Symbolica.
//!
//! [`derive`] turns a validated [`Model`] into a [`Derivation`]: every partial
//! derivative of the per-sample loss and of the regularizer, and the Hessian,
//! written through the model's named intermediates and simplified.
//! [`render`] prints a derivation as LaTeX, Markdown, plain text or JSON.
//!
//! All Symbolica work runs on one dedicated worker thread (Symbolica's
//! restricted mode allows one thread per user); the functions here take and
//! return plain Rust data and may be called from any thread.
#![warn(missing_docs)]

mod derivation;
mod engine;
mod lower;
pub mod render;
mod worker;

pub use derivation::{
    Derivation, GradientEntry, LOSS, LocalPartial, NormalForms, REGULARIZER, SymbolicaForms,
};
pub use worker::EngineError;

use hessforge_spec::{Expr, Model};

/// Derive the loss, gradient and Hessian of a model.
pub fn derive(model: &Model) -> Result<Derivation, EngineError> {
    let model = model.clone();
    worker::run(move |engine| engine.derive(&model))
}

/// Lower a derivation to IR programs (loss; loss and gradient; loss, gradient
/// and Hessian — each split into per-row and θ-only parts), optimised by
/// Symbolica's evaluator and rewritten into numerically stable forms.
pub fn lower(derivation: &Derivation) -> Result<hessforge_ir::ModelPrograms, EngineError> {
    let d = derivation.clone();
    worker::run(move |engine| engine.lower(&d))?.map_err(EngineError)
}

/// Whether two expressions over the model's names are equal as functions:
/// every intermediate is inlined and the difference simplified to zero.
pub fn equivalent(model: &Model, a: &Expr, b: &Expr) -> Result<bool, EngineError> {
    let (model, a, b) = (model.clone(), a.clone(), b.clone());
    worker::run(move |engine| engine.equivalent(&model, &a, &b))
}
