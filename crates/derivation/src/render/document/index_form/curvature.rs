//! What can be said about the curvature, apart from how it is said: the
//! [`CurvatureFacts`] of a model (how the loss reaches the parameters and
//! what follows for ∇²L), and the predicates they are found with — which
//! index-form expressions are nonnegative (and why), which are 1 − a
//! probability, which tensors a function defines, whether a softmax block
//! is a covariance, whether the regularizer's Hessian is positive
//! semi-definite, and a product's factors and terms.

use super::*;

/// What the document could establish about the Hessian of the objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curvature {
    /// Nothing is claimed.
    Unknown,
    /// ∇²L ⪰ 0 everywhere.
    Convex,
    /// ∇²L ⪰ 0 but singular at every θ (a null direction).
    ConvexSingular,
    /// A Gauss–Newton term plus a residual term that can be indefinite.
    Indefinite,
}

pub(super) fn factors(e: &IExpr) -> Vec<IExpr> {
    match e {
        IExpr::Mul(xs) => xs.clone(),
        other => vec![other.clone()],
    }
}

/// A definition's right-hand side applies `f` directly.
pub(super) fn defined_by(model: &IndexModel, tensor: &str, f: &[Func]) -> bool {
    model
        .definition(tensor)
        .is_some_and(|d| matches!(&d.expr, IExpr::Call(g, _) if f.contains(g)))
}

/// Provably ≥ 0: positive numbers and constants, σ-valued quantities p and
/// their complements 1 − p, exponentials, even powers, and products of these.
pub(super) fn nonnegative(model: &IndexModel, e: &IExpr) -> bool {
    match e {
        IExpr::Num(r) => !r.is_negative(),
        IExpr::Entry { tensor, .. } => {
            (model
                .tensor(tensor)
                .is_some_and(|t| t.role == Role::Constant)
                && !tensor.starts_with('δ'))
                || defined_by(model, tensor, &[Func::Sigmoid, Func::Exp, Func::Softplus])
        }
        IExpr::Mul(xs) => {
            // Pairs of negative factors are fine only when recognised below.
            let negatives = xs
                .iter()
                .filter(|x| matches!(x, IExpr::Num(r) if r.is_negative()))
                .count();
            if negatives == 1 {
                // −(p − 1)·… = (1 − p)·…
                let rest: Vec<IExpr> = xs
                    .iter()
                    .filter(|x| !matches!(x, IExpr::Num(_)))
                    .cloned()
                    .collect();
                return rest
                    .iter()
                    .filter(|x| complement_of_probability(model, x, true))
                    .count()
                    == 1
                    && rest.iter().all(|x| {
                        complement_of_probability(model, x, true) || nonnegative(model, x)
                    });
            }
            negatives == 0 && xs.iter().all(|x| nonnegative(model, x))
        }
        IExpr::Add(_) => complement_of_probability(model, e, false),
        IExpr::Pow(b, x) => match &**x {
            IExpr::Num(r) if r.is(2, 1) || r.is(4, 1) => true,
            _ => nonnegative(model, b),
        },
        IExpr::Call(Func::Exp | Func::Sigmoid | Func::Softplus, _) => true,
        _ => false,
    }
}

/// 1 − p (or, `negated`, p − 1) for a σ-valued p.
pub(super) fn complement_of_probability(model: &IndexModel, e: &IExpr, negated: bool) -> bool {
    let IExpr::Add(t) = e else {
        return false;
    };
    let [a, b] = t.as_slice() else {
        return false;
    };
    let (c, x) = match (a, b) {
        (IExpr::Num(_), x) => (a, x),
        (x, IExpr::Num(_)) => (b, x),
        _ => return false,
    };
    let is_p = |x: &IExpr| matches!(x, IExpr::Entry { tensor, .. } if defined_by(model, tensor, &[Func::Sigmoid]));
    if negated {
        c.is_int(-1) && is_p(x)
    } else {
        c.is_int(1) && matches!(x, IExpr::Mul(m) if m.len() == 2 && m[0].is_int(-1) && is_p(&m[1]))
    }
}

/// Why the weight is ≥ 0, as mathematics (0 < p < 1 for a sigmoid p).
pub(super) fn positivity_reason(model: &IndexModel, e: &IExpr) -> Math {
    let mut sigma = Vec::new();
    fn walk(model: &IndexModel, e: &IExpr, out: &mut Vec<String>) {
        match e {
            IExpr::Entry { tensor, .. }
                if defined_by(model, tensor, &[Func::Sigmoid]) && !out.contains(tensor) =>
            {
                out.push(tensor.clone());
            }
            IExpr::Add(xs) | IExpr::Mul(xs) => xs.iter().for_each(|x| walk(model, x, out)),
            IExpr::Pow(a, _) => walk(model, a, out),
            _ => {}
        }
    }
    walk(model, e, &mut sigma);
    match sigma.as_slice() {
        [p] => {
            let latex = model
                .tensor(p)
                .map(|t| t.latex.clone())
                .unwrap_or_else(|| p.clone());
            Math::raw(
                format!("0 < {latex} = \\sigma(\\cdot) < 1"),
                format!("0 < {p} = σ(·) < 1"),
            )
        }
        _ if e.is_int(1) => Math::raw("S = I", "S = I"),
        _ => Math::raw("S_{ii} \\geq 0", "Sᵢᵢ ≥ 0"),
    }
}

/// `s_j (δ_jk − s_k)` with s the softmax of the score: the covariance
/// of a one-hot draw from s. Returns s. The form is recognised whether the
/// engine left it factored or expanded (s_j δ_jk − s_j s_k).
pub(super) fn softmax_covariance(model: &IndexModel, u: &Bottleneck) -> Option<String> {
    let [j] = u.indices.as_slice() else {
        return None;
    };
    let [k] = u.second_indices.as_slice() else {
        return None;
    };
    let (vj, vk) = (Ix::Var(j.clone()), Ix::Var(k.clone()));
    let mut terms = expanded_terms(&u.second);
    if terms.len() != 2 {
        return None;
    }
    // The term with the δ first.
    terms.sort_by_key(|t| !t.iter().any(|f| matches!(f, IExpr::Delta(..))));
    // s_j δ_jk, or s_k δ_jk (the same, by the δ).
    let (s, at) = terms[0].iter().find_map(|f| match f {
        IExpr::Entry { tensor, indices } if indices.len() == 1 => {
            Some((tensor.clone(), indices[0].clone()))
        }
        _ => None,
    })?;
    let same = |mut got: Vec<IExpr>, mut want: Vec<IExpr>| {
        let key = |e: &IExpr| format!("{e:?}");
        got.sort_by_key(key);
        want.sort_by_key(key);
        got == want
    };
    let delta_ok = terms[0].iter().any(|f| {
        *f == IExpr::Delta(vj.clone(), vk.clone()) || *f == IExpr::Delta(vk.clone(), vj.clone())
    }) && terms[0].len() == 2
        && (at == vj || at == vk);
    let product_ok = same(
        terms[1].clone(),
        vec![
            IExpr::int(-1),
            IExpr::entry(&s, vec![vj.clone()]),
            IExpr::entry(&s, vec![vk.clone()]),
        ],
    );
    // s_i = exp(z_i) / Σ exp(z): exp of the score over a sum.
    let def = model.definition(&s)?;
    let softmax = match &def.expr {
        IExpr::Mul(xs) => {
            xs.iter()
                .any(|x| matches!(x, IExpr::Call(Func::Exp, a) if a.mentions_tensor(&u.quantity)))
                && xs.iter().any(|x| {
                    matches!(x, IExpr::Pow(b, p) if p.is_int(-1) && matches!(&**b, IExpr::Sum { .. }))
                })
        }
        _ => false,
    };
    (delta_ok && product_ok && softmax).then_some(s)
}

/// A product of sums as a sum of products, each a list of factors (numbers
/// kept as factors; nested products flattened).
pub(super) fn expanded_terms(e: &IExpr) -> Vec<Vec<IExpr>> {
    match e {
        IExpr::Add(xs) => xs.iter().flat_map(expanded_terms).collect(),
        IExpr::Mul(xs) => {
            let mut out: Vec<Vec<IExpr>> = vec![Vec::new()];
            for x in xs {
                let parts = expanded_terms(x);
                out = out
                    .iter()
                    .flat_map(|prefix| {
                        parts.iter().map(move |p| {
                            let mut t = prefix.clone();
                            t.extend(p.iter().cloned());
                            t
                        })
                    })
                    .collect();
            }
            out
        }
        other => vec![vec![other.clone()]],
    }
    .into_iter()
    .map(|t| {
        // The numbers of a term folded into one coefficient (none if 1).
        let mut c = hessforge_spec::Rational::int(1);
        let mut rest = Vec::new();
        for f in t {
            match f {
                IExpr::Num(r) => c = &c * &r,
                other => rest.push(other),
            }
        }
        if !c.is(1, 1) {
            rest.insert(0, IExpr::Num(c));
        }
        rest
    })
    .collect()
}

/// Every regularizer block is zero or a non-negative multiple of δ.
pub(super) fn regularizer_psd(t: &Tensors) -> bool {
    t.derived.hessian.iter().all(|b| {
        b.regularizer.is_int(0)
            || (b.row == b.col && {
                let mut deltas = 0;
                let ok = factors(&b.regularizer).iter().all(|f| match f {
                    IExpr::Delta(..) => {
                        deltas += 1;
                        true
                    }
                    other => nonnegative(&t.display, other),
                });
                ok && deltas == b.row_indices.len()
            })
    })
}

/// What the algebra establishes about ∇²L, found before any of it is said:
/// how the loss reaches the parameters and what is shown of each factor.
/// The prose of the Hessian and of the updates says these facts and
/// decides nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CurvatureFacts {
    /// What follows for ∇²L.
    pub verdict: Curvature,
    /// How the loss reaches the parameters.
    pub route: Route,
}

/// How the loss reaches the parameters, for the Hessian's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// Through no single quantity (or one with indices that is not
    /// affine): only the blocks are shown.
    Blocks,
    /// Through a scalar score affine in θ with a design matrix X̃:
    /// ∇²L = X̃ᵀSX̃/N (+ ∇²R).
    Design {
        /// S = ∂²ℓ/∂z² ≥ 0 is proved.
        weight_nonnegative: bool,
        /// Every block of ∇²R is 0 or a non-negative multiple of δ.
        regularizer_psd: bool,
    },
    /// Through an affine score without a design matrix (a vector score):
    /// ∇²ℓ = Jᵀ (∂²ℓ/∂z∂zᵀ) J.
    AffineScore {
        /// The softmax s whose covariance diag(s) − s sᵀ the middle
        /// factor is, when it is recognised.
        softmax: Option<String>,
        /// A bias that enters every score directly and is not penalised:
        /// a null direction of ∇²L.
        null_bias: Option<String>,
    },
    /// Through a scalar that is not affine in θ: a Gauss–Newton term plus
    /// a residual term.
    GaussNewton {
        /// The Gauss–Newton weight ∂²ℓ/∂u² ≥ 0 is proved.
        weight_nonnegative: bool,
    },
}

impl CurvatureFacts {
    /// The facts of the model `t`.
    pub(super) fn of(t: &Tensors) -> CurvatureFacts {
        let Some(u) = t.backprop.bottleneck.as_ref() else {
            return CurvatureFacts::unknown(Route::Blocks);
        };
        if !u.is_affine() {
            if !u.indices.is_empty() {
                return CurvatureFacts::unknown(Route::Blocks);
            }
            return CurvatureFacts {
                verdict: Curvature::Indefinite,
                route: Route::GaussNewton {
                    weight_nonnegative: nonnegative(&t.display, &u.second),
                },
            };
        }
        if design(t).is_some() {
            let weight_nonnegative = nonnegative(&t.display, &u.second);
            let regularizer_psd = regularizer_psd(t);
            return CurvatureFacts {
                verdict: if weight_nonnegative && regularizer_psd {
                    Curvature::Convex
                } else {
                    Curvature::Unknown
                },
                route: Route::Design {
                    weight_nonnegative,
                    regularizer_psd,
                },
            };
        }
        let softmax = softmax_covariance(&t.display, u);
        let null_bias = softmax
            .as_ref()
            .and_then(|_| unpenalised_bias(t, &u.quantity));
        CurvatureFacts {
            verdict: match (&softmax, &null_bias) {
                (None, _) => Curvature::Unknown,
                (Some(_), None) => Curvature::Convex,
                (Some(_), Some(_)) => Curvature::ConvexSingular,
            },
            route: Route::AffineScore { softmax, null_bias },
        }
    }

    fn unknown(route: Route) -> CurvatureFacts {
        CurvatureFacts {
            verdict: Curvature::Unknown,
            route,
        }
    }
}

/// A bias that enters the score `quantity` directly and is not penalised:
/// it moves every score together, a null direction of ∇²L.
fn unpenalised_bias(t: &Tensors, quantity: &str) -> Option<String> {
    let bias = t.backprop.inputs.iter().find(|i| {
        let direct = matches!(&i.local, IExpr::Entry { tensor, indices }
            if *tensor == signal_tensor(quantity) && indices.len() == 1 && i.indices.len() == 1
                && indices[0] == Ix::Var(i.indices[0].clone()));
        let free = t
            .derived
            .hessian
            .iter()
            .filter(|b| b.row == i.tensor || b.col == i.tensor)
            .all(|b| b.regularizer.is_int(0));
        direct && free
    })?;
    Some(bias.tensor.clone())
}
