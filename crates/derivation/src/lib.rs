//! A derivation, without Symbolica: what hessforge derives for a model
//! (plain data: [`Derivation`]), the index calculus that differentiates
//! the index form ([`index_calculus`]) and its back-propagation
//! ([`backprop`]), and how a derivation reads ([`render`]: text, LaTeX,
//! beamer slides, Markdown, JSON). `hessforge-symbolic` fills a
//! [`Derivation`] with Symbolica's help and simplifies the index calculus'
//! terms; nothing here needs it.
#![warn(missing_docs)]

pub mod backprop;
mod derivation;
pub mod index_calculus;
pub mod render;

pub use derivation::{
    Derivation, GradientEntry, LOSS, LocalPartial, NormalForms, REGULARIZER, Rewrite,
    SymbolicaForms,
};
