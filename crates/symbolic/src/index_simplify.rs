//! Symbolica simplifies the index-free coefficients of index-form
//! expressions: every part it cannot see into — an indexed entry `x[j]`, a
//! Kronecker delta, a sum (whose body is simplified first), a vector
//! literal's item — stands in as an opaque symbol, the rest (p⁻¹·p(1 − p),
//! 2·½, w_j + w_j) is simplified with the engine's choice of the simplest
//! form, and the stand-ins are put back: (p − y)·x[j].

use crate::engine::Engine;
use crate::index_calculus::IndexDerivation;
use hessforge_spec::Expr;
use hessforge_spec::index::IExpr;
use std::collections::HashMap;

/// Stand-ins for the opaque parts of one expression.
struct StandIns {
    /// Stand-in id → the part it replaces.
    parts: HashMap<String, IExpr>,
    /// The same part seen again gets the same stand-in.
    ids: Vec<(IExpr, String)>,
    /// Prefix of this expression's stand-ins.
    prefix: String,
}

impl StandIns {
    /// Fresh stand-ins: Symbolica orders symbols by when it first saw them,
    /// so symbols shared with earlier work would make the chosen form depend
    /// on what was simplified before. Every symbol of one simplification is
    /// new and created in the order of the expression: the same expression
    /// always gives the same form.
    fn new(serial: u64) -> StandIns {
        StandIns {
            parts: HashMap::new(),
            ids: Vec::new(),
            // Not a name a derivation file can declare (those are ASCII).
            prefix: format!("ι{serial}_"),
        }
    }

    fn id_for(&mut self, part: IExpr) -> String {
        if let Some((_, id)) = self.ids.iter().find(|(p, _)| *p == part) {
            return id.clone();
        }
        let id = format!("{}{}", self.prefix, self.ids.len() + 1);
        self.parts.insert(id.clone(), part.clone());
        self.ids.push((part, id.clone()));
        id
    }
}

impl Engine {
    /// Every expression of an index-form derivation, simplified.
    pub(crate) fn simplify_index_derivation(
        &self,
        d: &IndexDerivation,
    ) -> Result<IndexDerivation, String> {
        let mut out = d.clone();
        for g in &mut out.gradient {
            g.loss = self.simplify_index(&g.loss)?;
            g.regularizer = self.simplify_index(&g.regularizer)?;
        }
        for b in &mut out.hessian {
            b.loss = self.simplify_index(&b.loss)?;
            b.regularizer = self.simplify_index(&b.regularizer)?;
        }
        Ok(out)
    }

    /// One index-form expression, its coefficients simplified.
    pub(crate) fn simplify_index(&self, e: &IExpr) -> Result<IExpr, String> {
        let serial = self.index_simplifications.get() + 1;
        self.index_simplifications.set(serial);
        let mut stand_ins = StandIns::new(serial);
        let scalar = self.to_scalar(e, &mut stand_ins)?;
        let atom = self.to_atom(&scalar);
        let simplified = self.simplest(&atom);
        let back = self.to_expr(simplified.as_view())?;
        Ok(canonical(from_scalar(&back, &stand_ins.parts)))
    }

    /// The expression with its opaque parts replaced by stand-in variables.
    fn to_scalar(&self, e: &IExpr, stand_ins: &mut StandIns) -> Result<Expr, String> {
        Ok(match e {
            IExpr::Num(r) => Expr::Num(r.clone()),
            IExpr::Add(xs) => Expr::Add(
                xs.iter()
                    .map(|x| self.to_scalar(x, stand_ins))
                    .collect::<Result<_, _>>()?,
            ),
            IExpr::Mul(xs) => Expr::Mul(
                xs.iter()
                    .map(|x| self.to_scalar(x, stand_ins))
                    .collect::<Result<_, _>>()?,
            ),
            IExpr::Pow(a, b) => Expr::Pow(
                Box::new(self.to_scalar(a, stand_ins)?),
                Box::new(self.to_scalar(b, stand_ins)?),
            ),
            IExpr::Call(f, a) => Expr::Call(*f, Box::new(self.to_scalar(a, stand_ins)?)),
            IExpr::Sum {
                var,
                from,
                to,
                body,
            } => {
                let body = self.simplify_index(body)?;
                Expr::Var(stand_ins.id_for(IExpr::Sum {
                    var: var.clone(),
                    from: *from,
                    to: *to,
                    body: Box::new(body),
                }))
            }
            IExpr::Pick { index, items } => {
                let items = items
                    .iter()
                    .map(|x| self.simplify_index(x))
                    .collect::<Result<_, _>>()?;
                Expr::Var(stand_ins.id_for(IExpr::Pick {
                    index: index.clone(),
                    items,
                }))
            }
            IExpr::Entry { .. } | IExpr::Delta(..) | IExpr::Index(_) => {
                Expr::Var(stand_ins.id_for(e.clone()))
            }
        })
    }
}

/// Put the opaque parts back.
fn from_scalar(e: &Expr, parts: &HashMap<String, IExpr>) -> IExpr {
    match e {
        Expr::Num(r) => IExpr::Num(r.clone()),
        Expr::Var(v) => parts
            .get(v)
            .cloned()
            .unwrap_or_else(|| IExpr::entry(v, vec![])),
        Expr::Add(xs) => IExpr::Add(xs.iter().map(|x| from_scalar(x, parts)).collect()),
        Expr::Mul(xs) => IExpr::Mul(xs.iter().map(|x| from_scalar(x, parts)).collect()),
        Expr::Pow(a, b) => IExpr::Pow(
            Box::new(from_scalar(a, parts)),
            Box::new(from_scalar(b, parts)),
        ),
        Expr::Call(f, a) => IExpr::Call(*f, Box::new(from_scalar(a, parts))),
    }
}

/// Terms and factors in a fixed order (numbers first, then by their text),
/// independent of the order Symbolica keeps internally.
fn canonical(e: IExpr) -> IExpr {
    let key = |x: &IExpr| (!matches!(x, IExpr::Num(_)), x.to_string());
    match e {
        IExpr::Add(xs) => {
            let mut xs: Vec<IExpr> = xs.into_iter().map(canonical).collect();
            xs.sort_by_cached_key(key);
            IExpr::Add(xs)
        }
        IExpr::Mul(xs) => {
            let mut xs: Vec<IExpr> = xs.into_iter().map(canonical).collect();
            xs.sort_by_cached_key(key);
            IExpr::Mul(xs)
        }
        IExpr::Pow(a, b) => IExpr::Pow(Box::new(canonical(*a)), Box::new(canonical(*b))),
        IExpr::Call(f, a) => IExpr::Call(f, Box::new(canonical(*a))),
        IExpr::Sum {
            var,
            from,
            to,
            body,
        } => IExpr::Sum {
            var,
            from,
            to,
            body: Box::new(canonical(*body)),
        },
        IExpr::Pick { index, items } => IExpr::Pick {
            index,
            items: items.into_iter().map(canonical).collect(),
        },
        other => other,
    }
}
