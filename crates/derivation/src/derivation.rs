//! The result of deriving a model: plain data, free of Symbolica types, that
//! the renderers (and later the code generator) read.

use hessforge_spec::{Expr, Model};
use serde::Serialize;

/// The id under which the per-sample loss appears in chains and partials.
pub const LOSS: &str = "#loss";
/// The id under which the regularizer appears in chains and partials.
pub const REGULARIZER: &str = "#regularizer";

/// One local partial derivative ∂`of`/∂`wrt`, where `of` is an intermediate,
/// [`LOSS`] or [`REGULARIZER`], and `wrt` a direct dependency of it (an
/// intermediate or a parameter), simplified and written through intermediates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalPartial {
    /// The expression being differentiated.
    pub of: String,
    /// The variable.
    pub wrt: String,
    /// The partial derivative.
    pub expr: Expr,
}

/// ∂ℓ/∂θ_j with the chains of the chain rule that lead to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradientEntry {
    /// The parameter id θ_j.
    pub param: String,
    /// Each chain ℓ → u → … → θ_j whose local partials multiply to a term.
    pub paths: Vec<Vec<String>>,
    /// The simplified result.
    pub expr: Expr,
}

/// A rewrite the lowering applied to the kernel's expressions: a form that
/// overflows or cancels replaced by one that does not (see
/// `hessforge_symbolic::rewrites`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rewrite {
    /// The rule (`softplus`, `ratio-in-log-space`, `log-of-positive-sum`, …).
    pub rule: String,
    /// The expression before, in Symbolica's syntax.
    pub from: String,
    /// The expression after.
    pub to: String,
}

/// The same results printed by Symbolica, in its input syntax.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SymbolicaForms {
    /// Each intermediate: (id, right-hand side).
    pub definitions: Vec<(String, String)>,
    /// The per-sample loss.
    pub loss: String,
    /// The regularizer.
    pub regularizer: Option<String>,
    /// ∂ℓ/∂θ_j.
    pub gradient: Vec<String>,
    /// ∂²ℓ/∂θ_j∂θ_k.
    pub hessian: Vec<Vec<String>>,
    /// ∂R/∂θ_j (empty without a regularizer).
    pub regularizer_gradient: Vec<String>,
    /// ∂²R/∂θ_j∂θ_k (empty without a regularizer).
    pub regularizer_hessian: Vec<Vec<String>>,
}

/// The model's own expressions in the CAS's normal form (like terms
/// collected: `w_1 w_1` becomes `w_1^2`), for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalForms {
    /// Each intermediate's right-hand side, in the model's order.
    pub definitions: Vec<Expr>,
    /// The per-sample loss.
    pub loss: Expr,
    /// The regularizer.
    pub regularizer: Option<Expr>,
}

/// A derived model: loss, gradient and Hessian (per sample and of the
/// regularizer), with the local partials the chain rule multiplies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Derivation {
    /// The model it was derived from.
    pub model: Model,
    /// The model's expressions, normalised; `None` where `expanded` is
    /// false (the scalar forms belong to the expansion).
    pub forms: Option<NormalForms>,
    /// ∂u/∂v for every intermediate, the loss and the regularizer.
    pub local_partials: Vec<LocalPartial>,
    /// ∇ℓ, one entry per parameter.
    pub gradient: Vec<GradientEntry>,
    /// ∇²ℓ, P × P, symmetric.
    pub hessian: Vec<Vec<Expr>>,
    /// ∇R (empty without a regularizer).
    pub regularizer_gradient: Vec<Expr>,
    /// ∇²R (empty without a regularizer).
    pub regularizer_hessian: Vec<Vec<Expr>>,
    /// For a model without data and P ≤ 2: the Newton step d = −H⁻¹∇L in
    /// closed form, one entry per parameter.
    pub newton_step: Option<Vec<Expr>>,
    /// The same derivation in index form (gradient per parameter tensor,
    /// Hessian per pair of tensors), for a model with a vector or matrix
    /// parameter; `None` when every parameter is a scalar (the index form
    /// is then the scalar one).
    pub index: Option<crate::index_calculus::IndexDerivation>,
    /// Back-propagation in index form (signals, the chain rule per tensor,
    /// the Hessian's split through one quantity); `None` where `index` is.
    pub backprop: Option<crate::backprop::Backpropagation>,
    /// Whether the scalar lists (every entry of the gradient and Hessian)
    /// were derived; `false` for `hessforge_symbolic::derive_unexpanded` of a model
    /// with tensor parameters, whose lists are empty.
    pub expanded: bool,
    /// The results in Symbolica's syntax.
    pub symbolica: SymbolicaForms,
    /// The rewrites the lowering applies to the kernel's expressions;
    /// empty unless asked for (`hessforge_symbolic::rewrites`, which
    /// `derive --format json` fills in).
    pub rewrites: Vec<Rewrite>,
    /// Wall time of the derivation on the worker, in seconds.
    pub seconds: f64,
}

impl Derivation {
    /// The local partial ∂of/∂wrt, if it is not zero.
    pub fn partial(&self, of: &str, wrt: &str) -> Option<&Expr> {
        self.local_partials
            .iter()
            .find(|lp| lp.of == of && lp.wrt == wrt)
            .map(|lp| &lp.expr)
    }
}
