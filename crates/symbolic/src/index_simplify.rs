//! Symbolica simplifies the index-free coefficients of index-form
//! expressions: every part it cannot see into — an indexed entry `x[j]`, a
//! Kronecker delta, a sum (whose body is simplified first), a vector
//! literal's item — stands in as an opaque symbol, the rest (p⁻¹·p(1 − p),
//! 2·½, w_j + w_j) is simplified with the engine's choice of the simplest
//! form, and the stand-ins are put back: (p − y)·x[j].

use crate::engine::Engine;
use hessforge_derivation::backprop::Backpropagation;
use hessforge_derivation::index_calculus::IndexDerivation;
use hessforge_spec::Expr;
use hessforge_spec::index::{IExpr, IndexModel, Ix};
use std::collections::HashMap;
use symbolica::atom::{Atom, AtomCore};

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
    /// Stand-ins named for this simplification alone, asked for in the order
    /// of the expression; their symbols come from the job's pool
    /// (`engine/pool.rs`), so the chosen form does not depend on what the
    /// process simplified before.
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
        model: &IndexModel,
        d: &IndexDerivation,
    ) -> Result<IndexDerivation, String> {
        let mut out = d.clone();
        let model = Some(model);
        for g in &mut out.gradient {
            g.loss = self.simplify_index(&g.loss, model)?;
            g.regularizer = self.simplify_index(&g.regularizer, model)?;
        }
        for b in &mut out.hessian {
            b.loss = self.simplify_index(&b.loss, model)?;
            b.regularizer = self.simplify_index(&b.regularizer, model)?;
        }
        Ok(out)
    }

    /// Every expression of a back-propagation, simplified.
    pub(crate) fn simplify_backpropagation(
        &self,
        model: &IndexModel,
        b: &Backpropagation,
    ) -> Result<Backpropagation, String> {
        let mut out = b.clone();
        let model = Some(model);
        for s in &mut out.signals {
            s.local = self.simplify_index(&s.local, model)?;
            s.value = self.simplify_index(&s.value, model)?;
        }
        for i in &mut out.inputs {
            i.local = self.simplify_index(&i.local, model)?;
        }
        if let Some(u) = &mut out.bottleneck {
            u.first = self.simplify_index(&u.first, model)?;
            u.second = self.simplify_index(&u.second, model)?;
            for g in &mut u.jacobian {
                g.loss = self.simplify_index(&g.loss, model)?;
            }
            for c in &mut u.curvature {
                c.loss = self.simplify_index(&c.loss, model)?;
                c.regularizer = self.simplify_index(&c.regularizer, model)?;
            }
        }
        Ok(out)
    }

    /// One index-form expression, its coefficients simplified; with the
    /// model, right-hand sides of its definitions are written by their
    /// names again (e^{z_j}/Σ_i e^{z_i} → s_j), as the scalar engine does.
    pub(crate) fn simplify_index(
        &self,
        e: &IExpr,
        model: Option<&IndexModel>,
    ) -> Result<IExpr, String> {
        let serial = self.index_simplifications.get() + 1;
        self.index_simplifications.set(serial);
        let mut stand_ins = StandIns::new(serial);
        let scalar = self.to_scalar(e, &mut stand_ins)?;
        let mut atom = self.to_atom(&scalar);
        if let Some(model) = model {
            for (pattern, name) in self.resubstitutions(e, model, &mut stand_ins)? {
                atom = atom.replace(pattern.to_pattern()).with(name.to_pattern());
            }
        }
        let simplified = self.simplest(&atom);
        let back = self.to_expr(simplified.as_view())?;
        Ok(canonical(from_scalar(&back, &stand_ins.parts)))
    }

    /// For each definition t[i] = rhs(i) of the model and each index X at
    /// which the expression uses an entry that rhs(i) uses at i: rhs(X) →
    /// t[X], and the squares and pairwise products (s_j s_k for the
    /// softmax Hessian), as atoms over this expression's stand-ins.
    fn resubstitutions(
        &self,
        e: &IExpr,
        model: &IndexModel,
        stand_ins: &mut StandIns,
    ) -> Result<Vec<(Atom, Atom)>, String> {
        let mut entries = Vec::new();
        collect_entries(e, &mut entries);
        let mut out = Vec::new();
        for def in model.definitions.iter().rev() {
            let [own] = def.indices.as_slice() else {
                continue;
            };
            // Where the expression could hold rhs(X): X from its entries of
            // a tensor that rhs indexes by the definition's own index.
            let mut at: Vec<Ix> = Vec::new();
            for (tensor, indices) in &entries {
                if let [x] = indices.as_slice()
                    && uses_at(&def.expr, tensor, own)
                    && !at.contains(x)
                {
                    at.push(x.clone());
                }
            }
            let mut singles = Vec::new();
            for x in &at {
                let rhs = def.expr.rename(&HashMap::from([(own.clone(), x.clone())]));
                let rhs = self.to_atom(&self.to_scalar(&rhs, stand_ins)?);
                let name = Atom::var(
                    self.var(&stand_ins.id_for(IExpr::entry(&def.name, vec![x.clone()]))),
                );
                singles.push((rhs, name));
            }
            for (a, (ra, na)) in singles.iter().enumerate() {
                for (rb, nb) in &singles[a + 1..] {
                    out.push((ra.clone() * rb, na.clone() * nb));
                }
                out.push((ra.clone().pow(Atom::num(2)), na.clone().pow(Atom::num(2))));
            }
            out.extend(singles);
        }
        Ok(out)
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
                let body = self.simplify_index(body, None)?;
                // Named by its nesting height, so that the same sum written
                // with another letter is the same stand-in (Σ_k e^{z_k} of
                // the model and Σ_j e^{z_j} of a derivative).
                let name = format!("i#b{}", sum_height(&body));
                let body = body.rename(&HashMap::from([(var.clone(), Ix::Var(name.clone()))]));
                Expr::Var(stand_ins.id_for(IExpr::Sum {
                    var: name,
                    from: *from,
                    to: *to,
                    body: Box::new(body),
                }))
            }
            IExpr::Pick { index, items } => {
                let items = items
                    .iter()
                    .map(|x| self.simplify_index(x, None))
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

/// Every indexed entry of `e` outside sums: (tensor, indices).
fn collect_entries(e: &IExpr, out: &mut Vec<(String, Vec<Ix>)>) {
    match e {
        IExpr::Entry { tensor, indices } if !indices.is_empty() => {
            let entry = (tensor.clone(), indices.clone());
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
        IExpr::Sum { .. } | IExpr::Pick { .. } => {}
        _ => e.for_each_child(|x| collect_entries(x, out)),
    }
}

/// Whether `e` holds `tensor[v]` (a vector entry at the index variable v).
fn uses_at(e: &IExpr, tensor: &str, v: &str) -> bool {
    match e {
        IExpr::Entry { tensor: t, indices } => {
            t == tensor && matches!(indices.as_slice(), [Ix::Var(w)] if w == v)
        }
        // A vector literal's items are not searched.
        IExpr::Pick { .. } => false,
        _ => {
            let mut found = false;
            e.for_each_child(|x| found = found || uses_at(x, tensor, v));
            found
        }
    }
}

/// How deeply sums nest inside `e` (0 without a sum).
fn sum_height(e: &IExpr) -> usize {
    let mut below = 0;
    e.for_each_child(|x| below = below.max(sum_height(x)));
    below + usize::from(matches!(e, IExpr::Sum { .. }))
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
        other => other.into_map_children(canonical),
    }
}
