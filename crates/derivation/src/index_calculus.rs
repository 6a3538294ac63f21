//! Differentiation in index form: ∂ℓ/∂w_j with a symbolic index j, once per
//! parameter tensor, and one Hessian block per pair of parameter tensors,
//! whatever the tensors' lengths.
//!
//! The rules are ours (Laue, Mitterreiter & Giesen 2018 use the same):
//! ∂w_i/∂w_j = δ_ij; sums and products by linearity and Leibniz; the chain
//! rule through every named definition, whose derivative is taken once and
//! instantiated at each use; and simplification with δ-contraction
//! (Σ_i f(i) δ_ij = f(j)), factors pulled out of sums, and sums over a body
//! free of the index becoming a multiple. A definition that applies a
//! function directly (`p = sigmoid(z)`, `h = tanh(a)`) has its local
//! derivative written through its own name: p(1 − p), 1 − h².
//!
//! Nothing here touches Symbolica: the coefficients are simplified further
//! by the engine; the scalarized derivation is the oracle in the tests.

use hessforge_ir::Algebra;
use hessforge_spec::index::{IExpr, IndexModel, Ix};
use hessforge_spec::{Func, Rational, Role};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// ∂ℓ/∂T and ∂R/∂T for one parameter tensor T, at the symbolic entry
/// `T[indices]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorGradient {
    /// The parameter tensor.
    pub tensor: String,
    /// Its index variables, one per axis (none for a scalar).
    pub indices: Vec<String>,
    /// Derivative of the per-sample loss.
    pub loss: IExpr,
    /// Derivative of the regularizer (0 without one).
    pub regularizer: IExpr,
}

/// ∂²/∂T\[row\]∂U\[col\] for a pair of parameter tensors (T before or equal to U
/// in file order: the upper triangle of the block matrix).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HessianBlock {
    /// The row tensor T.
    pub row: String,
    /// Its index variables.
    pub row_indices: Vec<String>,
    /// The column tensor U.
    pub col: String,
    /// Its index variables (distinct from the row's).
    pub col_indices: Vec<String>,
    /// The block of the per-sample loss.
    pub loss: IExpr,
    /// The block of the regularizer.
    pub regularizer: IExpr,
}

/// The gradient per parameter tensor and the upper triangle of the Hessian
/// block matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexDerivation {
    /// One entry per parameter tensor, in file order.
    pub gradient: Vec<TensorGradient>,
    /// One block per pair (T, U) with T not after U, row-major.
    pub hessian: Vec<HessianBlock>,
}

/// Differentiate a model in index form (our rules only; the coefficients
/// are simplified by `hessforge_symbolic::derive_index`).
pub fn differentiate(model: &IndexModel) -> Result<IndexDerivation, String> {
    let mut calculus = Calculus::new(model);
    let params: Vec<(String, Vec<usize>)> = model
        .parameters()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let first: Vec<Vec<String>> = params
        .iter()
        .map(|(name, shape)| calculus.wrt_indices(name, shape, &["j", "l"], 1))
        .collect();
    let second: Vec<Vec<String>> = params
        .iter()
        .map(|(name, shape)| calculus.wrt_indices(name, shape, &["k", "m"], 2))
        .collect();
    let zero = IExpr::int(0);
    let regularizer = model.regularizer.clone().unwrap_or_else(|| zero.clone());
    let mut gradient = Vec::new();
    for ((name, _), ks) in params.iter().zip(&first) {
        let loss = calculus.derivative(&model.loss, name, ks)?;
        let reg = calculus.derivative(&regularizer, name, ks)?;
        gradient.push(TensorGradient {
            tensor: name.clone(),
            indices: ks.clone(),
            loss,
            regularizer: reg,
        });
    }
    let mut hessian = Vec::new();
    for (a, g) in gradient.iter().enumerate() {
        for (b, (col, _)) in params.iter().enumerate().skip(a) {
            let loss = calculus.derivative(&g.loss, col, &second[b])?;
            let reg = calculus.derivative(&g.regularizer, col, &second[b])?;
            hessian.push(HessianBlock {
                row: g.tensor.clone(),
                row_indices: g.indices.clone(),
                col: col.clone(),
                col_indices: second[b].clone(),
                loss,
                regularizer: reg,
            });
        }
    }
    Ok(IndexDerivation { gradient, hessian })
}

/// The state of one derivation: index ranges, a counter for fresh names,
/// and each definition's derivative per parameter tensor, taken once.
struct Calculus<'a> {
    model: &'a IndexModel,
    /// Range of every free index variable that is not bound by a sum
    /// (definition indices and derivative indices).
    ranges: HashMap<String, (usize, usize)>,
    /// Parameter tensors each definition depends on (through others).
    depends: HashMap<String, HashSet<String>>,
    /// (definition, parameter tensor, derivative indices) → the derivative
    /// of the definition's right-hand side, in its own indices.
    memo: HashMap<(String, String, Vec<String>), IExpr>,
    fresh: usize,
}

impl<'a> Calculus<'a> {
    fn new(model: &'a IndexModel) -> Calculus<'a> {
        let mut ranges = HashMap::new();
        let mut depends: HashMap<String, HashSet<String>> = HashMap::new();
        for d in &model.definitions {
            if let Some(t) = model.tensor(&d.name) {
                for (v, &n) in d.indices.iter().zip(&t.shape) {
                    ranges.insert(v.clone(), (1, n));
                }
            }
            let mut on = HashSet::new();
            for name in d.expr.tensors() {
                match model.tensor(&name).map(|t| t.role) {
                    Some(Role::Parameter) => {
                        on.insert(name);
                    }
                    Some(Role::Intermediate) => {
                        on.extend(depends.get(&name).cloned().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            depends.insert(d.name.clone(), on);
        }
        Calculus {
            model,
            ranges,
            depends,
            memo: HashMap::new(),
            fresh: 0,
        }
    }

    /// Index variables for differentiating by `tensor` (order 1 or 2).
    fn wrt_indices(
        &mut self,
        tensor: &str,
        shape: &[usize],
        hints: &[&str],
        order: u8,
    ) -> Vec<String> {
        shape
            .iter()
            .enumerate()
            .map(|(a, &n)| {
                let v = format!("{}#d{order}{tensor}", hints.get(a).copied().unwrap_or("n"));
                self.ranges.insert(v.clone(), (1, n));
                v
            })
            .collect()
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.fresh += 1;
        let base = hint.split('#').next().unwrap_or(hint);
        format!("{base}#c{}", self.fresh)
    }

    /// Whether `e` depends on the parameter tensor `wrt`.
    fn depends_on(&self, e: &IExpr, wrt: &str) -> bool {
        e.tensors()
            .iter()
            .any(|t| t == wrt || self.depends.get(t).is_some_and(|on| on.contains(wrt)))
    }

    /// ∂e/∂wrt[ks], simplified.
    fn derivative(&mut self, e: &IExpr, wrt: &str, ks: &[String]) -> Result<IExpr, String> {
        let d = self.d(e, wrt, ks)?;
        Ok(self.simplify(&d, &mut Vec::new()))
    }

    fn d(&mut self, e: &IExpr, wrt: &str, ks: &[String]) -> Result<IExpr, String> {
        if !self.depends_on(e, wrt) {
            return Ok(IExpr::int(0));
        }
        Ok(match e {
            IExpr::Num(_) | IExpr::Index(_) | IExpr::Delta(..) => IExpr::int(0),
            IExpr::Entry { tensor, indices } => {
                if tensor == wrt {
                    mul(indices
                        .iter()
                        .zip(ks)
                        .map(|(i, k)| IExpr::Delta(i.clone(), Ix::Var(k.clone())))
                        .collect())
                } else {
                    self.through_definition(tensor, indices, wrt, ks)?
                }
            }
            IExpr::Add(xs) => {
                let mut terms = Vec::new();
                for x in xs {
                    terms.push(self.d(x, wrt, ks)?);
                }
                add(terms)
            }
            IExpr::Mul(xs) => {
                let mut terms = Vec::new();
                for (i, x) in xs.iter().enumerate() {
                    let dx = self.d(x, wrt, ks)?;
                    if is_zero(&dx) {
                        continue;
                    }
                    let mut factors: Vec<IExpr> = xs
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, y)| y.clone())
                        .collect();
                    factors.push(dx);
                    terms.push(mul(factors));
                }
                add(terms)
            }
            IExpr::Pow(a, b) => {
                let da = self.d(a, wrt, ks)?;
                if self.depends_on(b, wrt) {
                    // a^b (b' log a + b a'/a)
                    let db = self.d(b, wrt, ks)?;
                    mul(vec![
                        e.clone(),
                        add(vec![
                            mul(vec![db, IExpr::Call(Func::Log, a.clone())]),
                            mul(vec![(**b).clone(), da, pow((**a).clone(), IExpr::int(-1))]),
                        ]),
                    ])
                } else {
                    // b a^(b − 1) a'
                    let exponent = match &**b {
                        IExpr::Num(r) => IExpr::Num(r + &Rational::int(-1)),
                        other => add(vec![other.clone(), IExpr::int(-1)]),
                    };
                    mul(vec![(**b).clone(), pow((**a).clone(), exponent), da])
                }
            }
            IExpr::Call(f, u) => {
                let du = self.d(u, wrt, ks)?;
                chain(*f, u, None, du)
            }
            // Linear: the sum of the derivatives, the derivative of the item.
            IExpr::Sum { .. } | IExpr::Pick { .. } => e.try_map_children(|x| self.d(x, wrt, ks))?,
        })
    }

    /// ∂t[indices]/∂wrt[ks] for a definition t: its right-hand side's
    /// derivative, taken once, at these indices (bound variables renamed
    /// apart).
    fn through_definition(
        &mut self,
        tensor: &str,
        indices: &[Ix],
        wrt: &str,
        ks: &[String],
    ) -> Result<IExpr, String> {
        let Some(def) = self.model.definition(tensor) else {
            // Data and constants do not change with θ.
            return Ok(IExpr::int(0));
        };
        let key = (tensor.to_string(), wrt.to_string(), ks.to_vec());
        let own = match self.memo.get(&key) {
            Some(d) => d.clone(),
            None => {
                let own_entry = IExpr::entry(
                    tensor,
                    def.indices.iter().map(|v| Ix::Var(v.clone())).collect(),
                );
                let d = match &def.expr {
                    IExpr::Call(f, u) => {
                        let du = self.d(u, wrt, ks)?;
                        chain(*f, u, Some(&own_entry), du)
                    }
                    other => self.d(other, wrt, ks)?,
                };
                let d = self.simplify(&d, &mut Vec::new());
                self.memo.insert(key.clone(), d.clone());
                d
            }
        };
        let rename: HashMap<String, Ix> = def
            .indices
            .iter()
            .cloned()
            .zip(indices.iter().cloned())
            .collect();
        let renamed = own.rename(&rename);
        Ok(self.freshen(&renamed))
    }

    /// Give every sum inside `e` a fresh variable, so that two uses of one
    /// definition's derivative never share a bound name.
    fn freshen(&mut self, e: &IExpr) -> IExpr {
        e.rename_bound(&mut |var| self.fresh(var))
    }

    /// The range of an index variable: a sum's (innermost binding first),
    /// or a definition's or a derivative's.
    fn range(&self, v: &str, bound: &[(String, usize, usize)]) -> Option<(usize, usize)> {
        bound
            .iter()
            .rev()
            .find(|(w, _, _)| w == v)
            .map(|(_, a, b)| (*a, *b))
            .or_else(|| self.ranges.get(v).copied())
    }

    /// Flatten, fold numbers, decide deltas, contract sums with deltas,
    /// pull factors out of sums. `bound` holds the enclosing sums.
    fn simplify(&mut self, e: &IExpr, bound: &mut Vec<(String, usize, usize)>) -> IExpr {
        match e {
            IExpr::Num(_) | IExpr::Entry { .. } | IExpr::Index(_) => e.clone(),
            IExpr::Delta(a, b) => match (a, b) {
                _ if a == b => IExpr::int(1),
                (Ix::Fixed(_), Ix::Fixed(_)) => IExpr::int(0),
                _ => e.clone(),
            },
            IExpr::Add(xs) => add(xs.iter().map(|x| self.simplify(x, bound)).collect()),
            IExpr::Mul(xs) => mul(xs.iter().map(|x| self.simplify(x, bound)).collect()),
            IExpr::Pow(a, b) => pow(self.simplify(a, bound), self.simplify(b, bound)),
            IExpr::Call(f, a) => IExpr::Call(*f, Box::new(self.simplify(a, bound))),
            IExpr::Pick { index, items } => {
                if let Ix::Fixed(k) = index
                    && let Some(item) = k.checked_sub(1).and_then(|k| items.get(k))
                {
                    return self.simplify(item, bound);
                }
                let items: Vec<IExpr> = items.iter().map(|x| self.simplify(x, bound)).collect();
                if items.iter().all(is_zero) {
                    return IExpr::int(0);
                }
                IExpr::Pick {
                    index: index.clone(),
                    items,
                }
            }
            IExpr::Sum {
                var,
                from,
                to,
                body,
            } => {
                bound.push((var.clone(), *from, *to));
                let body = self.simplify(body, bound);
                let out = self.sum(var, *from, *to, body, bound);
                bound.pop();
                out
            }
        }
    }

    /// Σ_{var = from..to} body, with `body` simplified and `var` in `bound`.
    fn sum(
        &mut self,
        var: &str,
        from: usize,
        to: usize,
        body: IExpr,
        bound: &mut Vec<(String, usize, usize)>,
    ) -> IExpr {
        let count = (to + 1).saturating_sub(from) as i64;
        if !body.mentions_index(var) {
            return mul(vec![IExpr::int(count), body]);
        }
        match body {
            IExpr::Add(terms) => {
                let parts = terms
                    .into_iter()
                    .map(|t| self.sum(var, from, to, t, bound))
                    .collect();
                add(parts)
            }
            IExpr::Mul(factors) => {
                // δ-contraction: Σ_v f(v) δ_{v,x} = f(x) when x lies in the range.
                let position = factors.iter().position(|f| match f {
                    IExpr::Delta(a, b) => {
                        let other = match (a, b) {
                            (Ix::Var(v), x) | (x, Ix::Var(v)) if v == var => Some(x),
                            _ => None,
                        };
                        other.is_some_and(|x| {
                            x != &Ix::Var(var.to_string()) && self.covers(x, from, to, bound)
                        })
                    }
                    _ => false,
                });
                if let Some(p) = position {
                    let IExpr::Delta(a, b) = &factors[p] else {
                        unreachable!("position found a delta")
                    };
                    let x = if *a == Ix::Var(var.to_string()) {
                        b.clone()
                    } else {
                        a.clone()
                    };
                    let rest: Vec<IExpr> = factors
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != p)
                        .map(|(_, f)| f.clone())
                        .collect();
                    let replaced = mul(rest).rename(&HashMap::from([(var.to_string(), x)]));
                    return self.simplify(&replaced, bound);
                }
                let (outside, inside): (Vec<IExpr>, Vec<IExpr>) =
                    factors.into_iter().partition(|f| !f.mentions_index(var));
                if outside.is_empty() {
                    return IExpr::Sum {
                        var: var.to_string(),
                        from,
                        to,
                        body: Box::new(mul(inside)),
                    };
                }
                let inner = self.sum(var, from, to, mul(inside), bound);
                mul(outside.into_iter().chain([inner]).collect())
            }
            IExpr::Delta(a, b) => {
                let other = if a == Ix::Var(var.to_string()) { b } else { a };
                if self.covers(&other, from, to, bound) {
                    IExpr::int(1)
                } else {
                    IExpr::Sum {
                        var: var.to_string(),
                        from,
                        to,
                        body: Box::new(IExpr::Delta(Ix::Var(var.to_string()), other)),
                    }
                }
            }
            body => IExpr::Sum {
                var: var.to_string(),
                from,
                to,
                body: Box::new(body),
            },
        }
    }

    /// Whether the index `x` always lies in `from..=to`.
    fn covers(&self, x: &Ix, from: usize, to: usize, bound: &[(String, usize, usize)]) -> bool {
        match x {
            Ix::Fixed(k) => (from..=to).contains(k),
            Ix::Var(v) => self
                .range(v, bound)
                .is_some_and(|(a, b)| from <= a && b <= to),
        }
    }
}

/// f′(u)·du by the function table's rule ([`Func::chain`]), with f(u) given
/// (a definition's own entry) or written out as the call.
fn chain(f: Func, u: &IExpr, value: Option<&IExpr>, du: IExpr) -> IExpr {
    let value = value
        .cloned()
        .unwrap_or_else(|| IExpr::Call(f, Box::new(u.clone())));
    f.chain(&mut IndexTerms, u.clone(), value, du)
        .unwrap_or_else(|| IExpr::int(0))
}

/// The derivative rules' terms as index-form expressions, built with this
/// module's flattening `add`, `mul` and `pow`.
struct IndexTerms;

impl Algebra for IndexTerms {
    type Term = IExpr;

    fn int(&mut self, n: i64) -> IExpr {
        IExpr::int(n)
    }

    fn half(&mut self) -> IExpr {
        IExpr::Num(Rational::ratio(1, 2))
    }

    fn add(&mut self, a: IExpr, b: IExpr) -> IExpr {
        add(vec![a, b])
    }

    fn mul(&mut self, a: IExpr, b: IExpr) -> IExpr {
        mul(vec![a, b])
    }

    fn neg(&mut self, a: IExpr) -> IExpr {
        mul(vec![IExpr::int(-1), a])
    }

    /// a/b as b⁻¹·a.
    fn div(&mut self, a: IExpr, b: IExpr) -> IExpr {
        mul(vec![pow(b, IExpr::int(-1)), a])
    }

    fn square(&mut self, a: IExpr) -> IExpr {
        pow(a, IExpr::int(2))
    }

    fn call(&mut self, f: Func, u: IExpr) -> IExpr {
        IExpr::Call(f, Box::new(u))
    }
}

fn is_zero(e: &IExpr) -> bool {
    matches!(e, IExpr::Num(r) if r.is_zero())
}

/// A flat sum without zero terms; numbers folded.
fn add(terms: Vec<IExpr>) -> IExpr {
    let mut out = Vec::new();
    let mut constant = Rational::int(0);
    for t in terms {
        match t {
            IExpr::Add(inner) => {
                for x in inner {
                    match x {
                        IExpr::Num(r) => constant = &constant + &r,
                        x => out.push(x),
                    }
                }
            }
            IExpr::Num(r) => constant = &constant + &r,
            t => out.push(t),
        }
    }
    if !constant.is_zero() {
        out.push(IExpr::Num(constant));
    }
    match out.len() {
        0 => IExpr::int(0),
        1 => out.pop().unwrap_or_else(|| IExpr::int(0)),
        _ => IExpr::Add(out),
    }
}

/// A flat product: numbers folded in front, a zero factor makes zero.
fn mul(factors: Vec<IExpr>) -> IExpr {
    let mut out = Vec::new();
    let mut coefficient = Rational::int(1);
    let push = |x: IExpr, out: &mut Vec<IExpr>, c: &mut Rational| match x {
        IExpr::Num(r) => *c = &*c * &r,
        x => out.push(x),
    };
    for f in factors {
        match f {
            IExpr::Mul(inner) => inner
                .into_iter()
                .for_each(|x| push(x, &mut out, &mut coefficient)),
            f => push(f, &mut out, &mut coefficient),
        }
    }
    if coefficient.is_zero() {
        return IExpr::int(0);
    }
    if !coefficient.is(1, 1) {
        out.insert(0, IExpr::Num(coefficient));
    }
    match out.len() {
        0 => IExpr::int(1),
        1 => out.pop().unwrap_or_else(|| IExpr::int(1)),
        _ => IExpr::Mul(out),
    }
}

/// a^b with x^1 = x, x^0 = 1.
fn pow(a: IExpr, b: IExpr) -> IExpr {
    if b.is_int(1) {
        a
    } else if b.is_int(0) {
        IExpr::int(1)
    } else {
        IExpr::Pow(Box::new(a), Box::new(b))
    }
}
