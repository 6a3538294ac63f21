//! Back-propagation as a lecture note tells it, in index form: the error
//! signal δ⁽ᵘ⁾ = ∂ℓ/∂u of every intermediate u, from the loss backwards,
//! each written through the signals of the quantities that use u
//! (δ⁽ᵃ⁾_j = δ⁽ʰ⁾_j (1 − h_j²)); each parameter tensor's gradient through
//! the signal of what it enters (∂ℓ/∂W_jl = δ⁽ᵃ⁾_j x_l); and, where the loss
//! reaches every parameter through one quantity u (the score z of a linear
//! model, the output ŷ of a network), the split of the Hessian that explains
//! its shape: ∇²ℓ = ∇u (∂²ℓ/∂u²) ∇uᵀ + (∂ℓ/∂u) ∇²u — convex when u is
//! affine and ∂²ℓ/∂u² ⪰ 0, Gauss–Newton plus a residual term otherwise.
//!
//! Everything is computed with the index calculus on *cut* models: the
//! quantity u made the only parameter, the definitions that use it kept,
//! the others frozen; the signals of the users appear as data tensors
//! `δ(name)`. Nothing here touches Symbolica; the engine simplifies.

use crate::index_calculus::{HessianBlock, TensorGradient, differentiate};
use hessforge_spec::Role;
use hessforge_spec::index::{IExpr, IndexDefinition, IndexModel, IndexTensor, Ix};
use serde::Serialize;

/// The name of the loss among the users of a quantity.
pub const LOSS_USER: &str = "#loss";

/// δ⁽ᵘ⁾ = ∂ℓ/∂u for one intermediate u.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorSignal {
    /// The intermediate u.
    pub quantity: String,
    /// Its index variables (none for a scalar).
    pub indices: Vec<String>,
    /// What uses u directly: definitions, or [`LOSS_USER`].
    pub users: Vec<String>,
    /// δ⁽ᵘ⁾ through the users' signals and the local derivatives
    /// (∂ℓ/∂u itself where only the loss uses u).
    pub local: IExpr,
    /// δ⁽ᵘ⁾ written out.
    pub value: IExpr,
}

/// ∂ℓ/∂T for a parameter tensor T, through the signals of what T enters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorInput {
    /// The parameter tensor.
    pub tensor: String,
    /// Its index variables (those of the gradient).
    pub indices: Vec<String>,
    /// What uses T directly.
    pub users: Vec<String>,
    /// ∂ℓ/∂T through the users' signals.
    pub local: IExpr,
}

/// One quantity u through which the loss reaches every parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bottleneck {
    /// The quantity u.
    pub quantity: String,
    /// The index variables of ∂ℓ/∂u (none for a scalar u).
    pub indices: Vec<String>,
    /// The second index variables of ∂²ℓ/∂u∂u.
    pub second_indices: Vec<String>,
    /// ∂ℓ/∂u.
    pub first: IExpr,
    /// ∂²ℓ/∂u∂u (a matrix over u's entries for a vector u).
    pub second: IExpr,
    /// ∇u per parameter tensor (for a scalar u; for a vector u, Σ δ⁽ᵘ⁾·∇u).
    pub jacobian: Vec<TensorGradient>,
    /// The blocks of ∇²u over the parameter tensors, upper triangle (for a
    /// vector u, of Σ δ⁽ᵘ⁾·∇²u); all zero when u is affine in the parameters.
    pub curvature: Vec<HessianBlock>,
}

impl Bottleneck {
    /// Whether u is affine in the parameters (∇²u = 0).
    pub fn is_affine(&self) -> bool {
        self.curvature
            .iter()
            .all(|b| b.loss.is_int(0) && b.regularizer.is_int(0))
    }
}

/// The back-propagation of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backpropagation {
    /// The signals, from the loss backwards (the reverse of the forward pass).
    pub signals: Vec<ErrorSignal>,
    /// One per parameter tensor, in file order.
    pub inputs: Vec<TensorInput>,
    /// The single quantity the loss reaches the parameters through, if any.
    pub bottleneck: Option<Bottleneck>,
    /// The signal tensors `δ(u)`, for display (u's shape).
    pub tensors: Vec<IndexTensor>,
}

/// The name of u's signal as a tensor.
pub fn signal_tensor(quantity: &str) -> String {
    format!("δ({quantity})")
}

/// The back-propagation of a model, unsimplified.
pub fn backpropagate(model: &IndexModel) -> Result<Backpropagation, String> {
    let live = live_definitions(model);
    let params: Vec<&IndexTensor> = model.parameters().collect();
    let mut tensors = Vec::new();
    for d in &live {
        let t = model
            .tensor(&d.name)
            .ok_or_else(|| format!("no tensor for the definition `{}`", d.name))?;
        tensors.push(IndexTensor {
            name: signal_tensor(&d.name),
            latex: format!("\\delta^{{({})}}", t.latex),
            // Constant in every cut model (no definition); written before
            // the data in a product: δ⁽ᶻ⁾ x_j.
            role: Role::Intermediate,
            shape: t.shape.clone(),
            ids: Vec::new(),
        });
    }
    let mut signals = Vec::new();
    for d in live.iter().rev() {
        let users = users_of(model, &live, &d.name);
        let local = through_users(model, &live, &tensors, &d.name, &users)?;
        let cut_model = cut(model, &d.name, other_definitions(&live, &d.name), None, &[]);
        let derived = differentiate(&cut_model)?;
        let g = derived
            .gradient
            .into_iter()
            .next()
            .ok_or("a cut model has one parameter")?;
        signals.push(ErrorSignal {
            quantity: d.name.clone(),
            indices: g.indices,
            users,
            local: local.loss,
            value: g.loss,
        });
    }
    let mut inputs = Vec::new();
    for t in &params {
        let users = users_of(model, &live, &t.name);
        let local = through_users(model, &live, &tensors, &t.name, &users)?;
        inputs.push(TensorInput {
            tensor: t.name.clone(),
            indices: local.indices,
            users,
            local: local.loss,
        });
    }
    let bottleneck = match bottleneck_of(model, &live, &inputs) {
        Some(u) => Some(bottleneck(model, &live, &tensors, &u)?),
        None => None,
    };
    Ok(Backpropagation {
        signals,
        inputs,
        bottleneck,
        tensors,
    })
}

/// The definitions the loss depends on, in forward order.
fn live_definitions(model: &IndexModel) -> Vec<IndexDefinition> {
    let mut needed: Vec<String> = model.loss.tensors();
    for d in model.definitions.iter().rev() {
        if needed.contains(&d.name) {
            needed.extend(d.expr.tensors());
        }
    }
    model
        .definitions
        .iter()
        .filter(|d| needed.contains(&d.name))
        .cloned()
        .collect()
}

/// The live definitions (and the loss) whose expressions mention `name`.
fn users_of(model: &IndexModel, live: &[IndexDefinition], name: &str) -> Vec<String> {
    let mut out: Vec<String> = live
        .iter()
        .filter(|d| d.expr.mentions_tensor(name))
        .map(|d| d.name.clone())
        .collect();
    if model.loss.mentions_tensor(name) {
        out.push(LOSS_USER.to_string());
    }
    out
}

fn other_definitions(live: &[IndexDefinition], name: &str) -> Vec<IndexDefinition> {
    live.iter().filter(|d| d.name != name).cloned().collect()
}

/// The model with `target` as its only parameter, `definitions` as its
/// only definitions (every other intermediate is a constant), `loss` (the
/// model's loss by default), no regularizer, and the signal tensors.
fn cut(
    model: &IndexModel,
    target: &str,
    definitions: Vec<IndexDefinition>,
    loss: Option<IExpr>,
    signals: &[IndexTensor],
) -> IndexModel {
    let mut tensors: Vec<IndexTensor> = model
        .tensors
        .iter()
        .map(|t| IndexTensor {
            name: t.name.clone(),
            latex: t.latex.clone(),
            role: match t.role {
                _ if t.name == target => Role::Parameter,
                Role::Parameter => Role::Data,
                r => r,
            },
            shape: t.shape.clone(),
            // The calculus needs shapes, not the scalar ids.
            ids: Vec::new(),
        })
        .collect();
    tensors.extend(signals.iter().cloned());
    IndexModel {
        tensors,
        definitions,
        loss: loss.unwrap_or_else(|| model.loss.clone()),
        regularizer: None,
    }
}

/// Σ over u's entries of δ⁽ᵘ⁾·u: the loss whose derivative by a quantity
/// is that quantity's share of u's signal.
fn weighted_by_signal(model: &IndexModel, quantity: &str, tag: &str) -> IExpr {
    let shape = model
        .tensor(quantity)
        .map(|t| t.shape.clone())
        .unwrap_or_default();
    let vars: Vec<String> = (0..shape.len())
        .map(|a| format!("{}#u{tag}{a}", ["i", "r"][a.min(1)]))
        .collect();
    let ix: Vec<Ix> = vars.iter().map(|v| Ix::Var(v.clone())).collect();
    let mut e = IExpr::Mul(vec![
        IExpr::entry(&signal_tensor(quantity), ix.clone()),
        IExpr::entry(quantity, ix),
    ]);
    for (v, n) in vars.iter().zip(&shape).rev() {
        e = IExpr::Sum {
            var: v.clone(),
            from: 1,
            to: *n,
            body: Box::new(e),
        };
    }
    e
}

/// ∂ℓ/∂target through the signals of its users: Σ over each using
/// definition u of δ⁽ᵘ⁾·∂u/∂target, plus the loss's own partial where the
/// loss uses the target directly.
fn through_users(
    model: &IndexModel,
    live: &[IndexDefinition],
    signals: &[IndexTensor],
    target: &str,
    users: &[String],
) -> Result<crate::index_calculus::TensorGradient, String> {
    let defs: Vec<IndexDefinition> = live
        .iter()
        .filter(|d| users.contains(&d.name))
        .cloned()
        .collect();
    // A user that uses another user would be counted twice.
    if defs.iter().any(|d| {
        defs.iter()
            .any(|e| e.name != d.name && d.expr.mentions_tensor(&e.name))
    }) {
        return Err(format!("the users of `{target}` use each other"));
    }
    let mut terms: Vec<IExpr> = defs
        .iter()
        .enumerate()
        .map(|(k, d)| weighted_by_signal(model, &d.name, &k.to_string()))
        .collect();
    let mut gradient = None;
    if !terms.is_empty() {
        let loss = if terms.len() == 1 {
            terms.remove(0)
        } else {
            IExpr::Add(terms)
        };
        let derived = differentiate(&cut(model, target, defs, Some(loss), signals))?;
        gradient = derived.gradient.into_iter().next();
    }
    if users.iter().any(|u| u == LOSS_USER) {
        let derived = differentiate(&cut(model, target, Vec::new(), None, signals))?;
        let own = derived.gradient.into_iter().next();
        gradient = match (gradient, own) {
            (Some(mut g), Some(o)) => {
                g.loss = IExpr::Add(vec![g.loss, o.loss]);
                Some(g)
            }
            (g, o) => g.or(o),
        };
    }
    gradient.ok_or_else(|| format!("`{target}` is not used by the loss"))
}

/// The quantity the loss reaches every parameter through: the one every
/// parameter tensor enters (the score of a linear model), else the one
/// quantity the loss uses (a network's output).
fn bottleneck_of(
    model: &IndexModel,
    live: &[IndexDefinition],
    inputs: &[TensorInput],
) -> Option<String> {
    if let Some(first) = inputs.first()
        && let [u] = first.users.as_slice()
        && u != LOSS_USER
        && inputs.iter().all(|i| i.users == first.users)
    {
        return Some(u.clone());
    }
    let used: Vec<String> = model
        .loss
        .tensors()
        .into_iter()
        .filter(|t| {
            matches!(
                model.tensor(t).map(|t| t.role),
                Some(Role::Parameter | Role::Intermediate)
            )
        })
        .collect();
    match used.as_slice() {
        [u] if live.iter().any(|d| &d.name == u) => Some(u.clone()),
        _ => None,
    }
}

fn bottleneck(
    model: &IndexModel,
    live: &[IndexDefinition],
    signals: &[IndexTensor],
    quantity: &str,
) -> Result<Bottleneck, String> {
    // ∂ℓ/∂u and ∂²ℓ/∂u²: u the parameter, what comes after it kept.
    let after = cut(
        model,
        quantity,
        other_definitions(live, quantity),
        None,
        &[],
    );
    let derived = differentiate(&after)?;
    let (Some(g), Some(h)) = (derived.gradient.first(), derived.hessian.first()) else {
        return Err("a cut model has one parameter".into());
    };
    // Σ δ⁽ᵘ⁾·∇²u: the parameters, what comes before u kept.
    let before: Vec<IndexDefinition> = live
        .iter()
        .take_while(|d| d.name != quantity)
        .chain(live.iter().filter(|d| d.name == quantity))
        .cloned()
        .collect();
    let mut tensors = model.tensors.clone();
    tensors.extend(signals.iter().cloned());
    let scalar = model.tensor(quantity).is_some_and(|t| t.shape.is_empty());
    let inner = IndexModel {
        tensors,
        definitions: before,
        loss: if scalar {
            IExpr::entry(quantity, Vec::new())
        } else {
            weighted_by_signal(model, quantity, "b")
        },
        regularizer: None,
    };
    let inner = differentiate(&inner)?;
    Ok(Bottleneck {
        quantity: quantity.to_string(),
        indices: g.indices.clone(),
        second_indices: h.col_indices.clone(),
        first: g.loss.clone(),
        second: h.loss.clone(),
        jacobian: inner.gradient,
        curvature: inner.hessian,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> IndexModel {
        hessforge_spec::load_str("t.toml", text)
            .unwrap_or_else(|e| panic!("{}", e.one_line()))
            .index
            .unwrap()
    }

    #[test]
    fn the_network_signals_run_backwards_and_the_output_is_the_bottleneck() {
        let m = load(
            "name = \"m\"\ntitle = \"m\"\ndescription = \"m\"\nloss = \"(yhat - y)^2 / 2\"\n\
             [parameters]\nW = { shape = [3, 2] }\nc = { shape = [3] }\nv = { shape = [3] }\nd = {}\n\
             [data]\nx = { shape = [2] }\ny = {}\n\
             [[define]]\nname = \"a\"\nexpr = \"W @ x + c\"\n\
             [[define]]\nname = \"h\"\nexpr = \"tanh(a)\"\n\
             [[define]]\nname = \"yhat\"\nexpr = \"dot(v, h) + d\"\n",
        );
        let b = backpropagate(&m).unwrap();
        let order: Vec<&str> = b.signals.iter().map(|s| s.quantity.as_str()).collect();
        assert_eq!(order, ["yhat", "h", "a"]);
        assert_eq!(b.signals[1].users, ["yhat"]);
        assert!(
            b.signals[2].local.mentions_tensor("δ(h)"),
            "{}",
            b.signals[2].local
        );
        let w = &b.inputs[0];
        assert_eq!(
            (w.tensor.as_str(), w.users.as_slice()),
            ("W", &["a".to_string()][..])
        );
        assert!(w.local.mentions_tensor("δ(a)") && w.local.mentions_tensor("x"));
        let out = b.bottleneck.as_ref().unwrap();
        assert_eq!(out.quantity, "yhat");
        assert!(!out.is_affine(), "ŷ is not affine in W");
    }

    #[test]
    fn the_logistic_score_is_an_affine_bottleneck() {
        let m = load(
            "name = \"l\"\ntitle = \"l\"\ndescription = \"l\"\n\
             loss = \"-(y * log(p) + (1 - y) * log(1 - p))\"\n\
             [parameters]\nw = { shape = [4] }\nb = {}\n[data]\nx = { shape = [4] }\ny = {}\n\
             [[define]]\nname = \"z\"\nexpr = \"dot(w, x) + b\"\n\
             [[define]]\nname = \"p\"\nexpr = \"sigmoid(z)\"\n",
        );
        let b = backpropagate(&m).unwrap();
        let out = b.bottleneck.as_ref().unwrap();
        assert_eq!(out.quantity, "z");
        assert!(out.is_affine());
    }
}
