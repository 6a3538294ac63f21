//! Index form: the model as the file writes it, tensors kept whole. Where the
//! scalarized [`Model`](crate::Model) has `w_1 … w_10`, the index form has one
//! entry `w[j]` with a symbolic index `j`; `dot(w, x)` is `Σ_j w[j] x[j]`
//! whatever the length, and `h = tanh(W x + c)`-style element-wise
//! definitions are one definition `h[i] = tanh(a[i])` with a free index.
//!
//! This module owns the tree ([`IExpr`]), the conversion from the parsed
//! syntax (done by the loader next to scalarization, from the same checked
//! syntax trees), evaluation at a point, and expansion back to scalars (the
//! bridge to the scalarized engine, which stays the oracle).
//!
//! Index variables are unique within a model: every variable the loader
//! introduces (a `for` or `sum` variable of the file, or the axis of a
//! slice, a vector or an element-wise operation) is named `hint#n`, with the
//! letter the file used (or a default) as the hint and a counter that makes
//! it unique, so substitution never captures.

use crate::expr::{Ast, AstKind, BinOp, Index};
use crate::model::{Expr, Func, Rational, Role};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// One index of an entry or of a Kronecker delta.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Ix {
    /// A symbolic index, bound by a sum, a definition or a derivative.
    Var(String),
    /// A 1-based literal position.
    Fixed(usize),
}

impl fmt::Display for Ix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ix::Var(v) => write!(f, "{v}"),
            Ix::Fixed(k) => write!(f, "{k}"),
        }
    }
}

/// An expression with symbolic indices. Subtraction is `Add` with a `-1`
/// factor and division is `Pow(_, -1)`, as in [`Expr`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum IExpr {
    /// An exact number.
    Num(Rational),
    /// An entry of a named tensor (parameter, data, constant or
    /// definition): `w[j]`, `W[i, j]`, or a scalar with no indices.
    Entry {
        /// The tensor's name in the file.
        tensor: String,
        /// One index per axis.
        indices: Vec<Ix>,
    },
    /// The value of an index variable used as a number (`sum(j = 1..3, j * w[j])`).
    Index(String),
    /// A sum.
    Add(Vec<IExpr>),
    /// A product.
    Mul(Vec<IExpr>),
    /// base ^ exponent
    Pow(Box<IExpr>, Box<IExpr>),
    /// f(argument)
    Call(Func, Box<IExpr>),
    /// Σ_{var = from..to} body (bounds inclusive).
    Sum {
        /// The bound index variable.
        var: String,
        /// First value.
        from: usize,
        /// Last value.
        to: usize,
        /// The summand.
        body: Box<IExpr>,
    },
    /// The Kronecker delta δ_ab: 1 where the indices are equal, else 0.
    Delta(Ix, Ix),
    /// The `index`-th item of a vector literal (1-based).
    Pick {
        /// Which item.
        index: Ix,
        /// The literal's items.
        items: Vec<IExpr>,
    },
}

impl IExpr {
    /// The number n.
    pub fn int(n: i64) -> IExpr {
        IExpr::Num(Rational::int(n))
    }

    /// A scalar tensor, or an entry.
    pub fn entry(tensor: &str, indices: Vec<Ix>) -> IExpr {
        IExpr::Entry {
            tensor: tensor.to_string(),
            indices,
        }
    }

    /// Whether this is the number `n`.
    pub fn is_int(&self, n: i64) -> bool {
        matches!(self, IExpr::Num(r) if r.is(n, 1))
    }

    /// Call `f` on each direct sub-expression, in order (egg's
    /// `Language::for_each`).
    pub fn for_each_child<'a>(&'a self, mut f: impl FnMut(&'a IExpr)) {
        match self {
            IExpr::Num(_) | IExpr::Entry { .. } | IExpr::Index(_) | IExpr::Delta(..) => {}
            IExpr::Add(xs) | IExpr::Mul(xs) | IExpr::Pick { items: xs, .. } => {
                xs.iter().for_each(f)
            }
            IExpr::Pow(a, b) => {
                f(a);
                f(b);
            }
            IExpr::Call(_, a) | IExpr::Sum { body: a, .. } => f(a),
        }
    }

    /// This node with each direct sub-expression replaced by `f` of it
    /// (egg's `Language::map_children`); the node's own data (a function,
    /// a bound variable, an index) is kept.
    pub fn map_children(&self, mut f: impl FnMut(&IExpr) -> IExpr) -> IExpr {
        let Ok(mapped) = self.try_map_children(|x| Ok::<_, std::convert::Infallible>(f(x)));
        mapped
    }

    /// [`IExpr::map_children`] with an `f` that may fail: the first error.
    pub fn try_map_children<E>(
        &self,
        mut f: impl FnMut(&IExpr) -> Result<IExpr, E>,
    ) -> Result<IExpr, E> {
        let mut all = |xs: &[IExpr]| xs.iter().map(&mut f).collect::<Result<Vec<_>, E>>();
        Ok(match self {
            IExpr::Num(_) | IExpr::Entry { .. } | IExpr::Index(_) | IExpr::Delta(..) => {
                self.clone()
            }
            IExpr::Add(xs) => IExpr::Add(all(xs)?),
            IExpr::Mul(xs) => IExpr::Mul(all(xs)?),
            IExpr::Pick { index, items } => IExpr::Pick {
                index: index.clone(),
                items: all(items)?,
            },
            IExpr::Pow(a, b) => IExpr::Pow(Box::new(f(a)?), Box::new(f(b)?)),
            IExpr::Call(func, a) => IExpr::Call(*func, Box::new(f(a)?)),
            IExpr::Sum {
                var,
                from,
                to,
                body,
            } => IExpr::Sum {
                var: var.clone(),
                from: *from,
                to: *to,
                body: Box::new(f(body)?),
            },
        })
    }

    /// [`IExpr::map_children`] on an expression that is given away: the
    /// children are moved into `f`, not cloned.
    pub fn into_map_children(self, mut f: impl FnMut(IExpr) -> IExpr) -> IExpr {
        match self {
            IExpr::Num(_) | IExpr::Entry { .. } | IExpr::Index(_) | IExpr::Delta(..) => self,
            IExpr::Add(xs) => IExpr::Add(xs.into_iter().map(f).collect()),
            IExpr::Mul(xs) => IExpr::Mul(xs.into_iter().map(f).collect()),
            IExpr::Pow(a, b) => IExpr::Pow(Box::new(f(*a)), Box::new(f(*b))),
            IExpr::Call(func, a) => IExpr::Call(func, Box::new(f(*a))),
            IExpr::Sum {
                var,
                from,
                to,
                body,
            } => IExpr::Sum {
                var,
                from,
                to,
                body: Box::new(f(*body)),
            },
            IExpr::Pick { index, items } => IExpr::Pick {
                index,
                items: items.into_iter().map(f).collect(),
            },
        }
    }

    /// Fold `f` over every node, this one first, then its sub-expressions
    /// left to right (pre-order).
    pub fn fold<T>(&self, init: T, f: &mut impl FnMut(T, &IExpr) -> T) -> T {
        let mut children = Vec::new();
        self.for_each_child(|child| children.push(child));
        let here = f(init, self);
        children
            .into_iter()
            .fold(here, |acc, child| child.fold(acc, f))
    }

    /// Whether some node (this one or one below it) satisfies `pred`.
    pub fn any(&self, pred: &mut impl FnMut(&IExpr) -> bool) -> bool {
        if pred(self) {
            return true;
        }
        let mut found = false;
        self.for_each_child(|child| found = found || child.any(pred));
        found
    }

    /// The index variables of this node itself (not of its
    /// sub-expressions): an entry's indices, an index used as a number, a
    /// sum's bound variable, a δ's indices, a pick's index.
    fn own_indices(&self) -> Vec<&Ix> {
        match self {
            IExpr::Entry { indices, .. } => indices.iter().collect(),
            IExpr::Delta(a, b) => vec![a, b],
            IExpr::Pick { index, .. } => vec![index],
            _ => Vec::new(),
        }
    }

    /// Replace index variables (free occurrences; bound variables are unique,
    /// so nothing is captured).
    pub fn rename(&self, map: &HashMap<String, Ix>) -> IExpr {
        let ix = |i: &Ix| match i {
            Ix::Var(v) => map.get(v).cloned().unwrap_or_else(|| i.clone()),
            Ix::Fixed(_) => i.clone(),
        };
        match self {
            IExpr::Entry { tensor, indices } => IExpr::Entry {
                tensor: tensor.clone(),
                indices: indices.iter().map(ix).collect(),
            },
            IExpr::Index(v) => match map.get(v) {
                Some(Ix::Var(w)) => IExpr::Index(w.clone()),
                Some(Ix::Fixed(k)) => IExpr::int(*k as i64),
                None => self.clone(),
            },
            IExpr::Delta(a, b) => IExpr::Delta(ix(a), ix(b)),
            IExpr::Pick { index, items } => IExpr::Pick {
                index: ix(index),
                items: items.iter().map(|x| x.rename(map)).collect(),
            },
            _ => self.map_children(|x| x.rename(map)),
        }
    }

    /// This expression with every sum's bound variable renamed to
    /// `fresh(old name)`, so that two copies of one expression never share a
    /// bound name.
    pub fn rename_bound(&self, fresh: &mut impl FnMut(&str) -> String) -> IExpr {
        match self {
            IExpr::Sum {
                var,
                from,
                to,
                body,
            } => {
                let v = fresh(var);
                let body = body.rename(&HashMap::from([(var.clone(), Ix::Var(v.clone()))]));
                IExpr::Sum {
                    var: v,
                    from: *from,
                    to: *to,
                    body: Box::new(body.rename_bound(fresh)),
                }
            }
            _ => self.map_children(|x| x.rename_bound(fresh)),
        }
    }

    /// The index variables that no sum inside this expression binds, once
    /// each, in order of first occurrence.
    pub fn free_indices(&self) -> Vec<String> {
        fn walk(e: &IExpr, bound: &mut Vec<String>, out: &mut Vec<String>) {
            let mut own: Vec<Ix> = e.own_indices().into_iter().cloned().collect();
            if let IExpr::Index(v) = e {
                own.push(Ix::Var(v.clone()));
            }
            for i in own {
                if let Ix::Var(v) = i
                    && !bound.contains(&v)
                    && !out.contains(&v)
                {
                    out.push(v);
                }
            }
            if let IExpr::Sum { var, body, .. } = e {
                bound.push(var.clone());
                walk(body, bound, out);
                bound.pop();
            } else {
                e.for_each_child(|x| walk(x, bound, out));
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    /// Whether the index variable `v` occurs (free or bound).
    pub fn mentions_index(&self, v: &str) -> bool {
        self.any(&mut |e| match e {
            IExpr::Index(w) | IExpr::Sum { var: w, .. } => w == v,
            _ => e
                .own_indices()
                .into_iter()
                .any(|i| matches!(i, Ix::Var(w) if w == v)),
        })
    }

    /// Whether an entry of `tensor` occurs.
    pub fn mentions_tensor(&self, tensor: &str) -> bool {
        self.any(&mut |e| matches!(e, IExpr::Entry { tensor: t, .. } if t == tensor))
    }

    /// Every tensor name an entry of which occurs, once each, in order of
    /// first occurrence.
    pub fn tensors(&self) -> Vec<String> {
        self.fold(Vec::new(), &mut |mut out: Vec<String>, e| {
            if let IExpr::Entry { tensor, .. } = e
                && !out.contains(tensor)
            {
                out.push(tensor.clone());
            }
            out
        })
    }

    /// Number of nodes (a size measure for tests and benchmarks).
    pub fn size(&self) -> usize {
        self.fold(0, &mut |n, _| n + 1)
    }

    /// Every index variable that occurs (free or bound), once each, in
    /// order of first occurrence.
    pub fn index_variables(&self) -> Vec<String> {
        self.fold(Vec::new(), &mut |mut out: Vec<String>, e| {
            let mut push = |v: &String| {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            };
            match e {
                IExpr::Index(v) | IExpr::Sum { var: v, .. } => push(v),
                _ => e.own_indices().into_iter().for_each(|i| {
                    if let Ix::Var(v) = i {
                        push(v)
                    }
                }),
            }
            out
        })
    }
}

/// A tensor of the index-form model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexTensor {
    /// Name in the file.
    pub name: String,
    /// Display name in LaTeX, before subscripts (`w`, `\lambda`).
    pub latex: String,
    /// What it is.
    pub role: Role,
    /// `[]`, `[n]` or `[r, c]`.
    pub shape: Vec<usize>,
    /// The scalar ids of its entries, row-major (as in the scalarized model).
    pub ids: Vec<String>,
}

impl IndexTensor {
    /// The scalar id of the entry at 1-based `position`, if it is in range.
    pub fn id_at(&self, position: &[usize]) -> Option<&str> {
        if position.len() != self.shape.len() {
            return None;
        }
        let mut flat = 0;
        for (&p, &n) in position.iter().zip(&self.shape) {
            if p == 0 || p > n {
                return None;
            }
            flat = flat * n + (p - 1);
        }
        self.ids.get(flat).map(String::as_str)
    }
}

/// `name[indices] = expr`, with one free index variable per axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexDefinition {
    /// The tensor being defined.
    pub name: String,
    /// Its index variables, one per axis (none for a scalar).
    pub indices: Vec<String>,
    /// The right-hand side, in which `indices` are free.
    pub expr: IExpr,
}

/// The model in index form: every tensor once, definitions in dependency
/// order, loss and regularizer as scalar expressions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexModel {
    /// Parameters, data fields, constants and definitions, by name.
    pub tensors: Vec<IndexTensor>,
    /// Definitions in dependency order.
    pub definitions: Vec<IndexDefinition>,
    /// The per-sample loss.
    pub loss: IExpr,
    /// The regularizer, if any.
    pub regularizer: Option<IExpr>,
}

/// Why an index-form expression could not be evaluated or expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexError(pub String);

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IndexError {}

impl IndexModel {
    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&IndexTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The definition of `name`, if it is an intermediate.
    pub fn definition(&self, name: &str) -> Option<&IndexDefinition> {
        self.definitions.iter().find(|d| d.name == name)
    }

    /// The parameter tensors in file order.
    pub fn parameters(&self) -> impl Iterator<Item = &IndexTensor> {
        self.tensors.iter().filter(|t| t.role == Role::Parameter)
    }

    fn position(
        &self,
        indices: &[Ix],
        at: &HashMap<String, usize>,
    ) -> Result<Vec<usize>, IndexError> {
        indices
            .iter()
            .map(|i| match i {
                Ix::Fixed(k) => Ok(*k),
                Ix::Var(v) => at
                    .get(v)
                    .copied()
                    .ok_or_else(|| IndexError(format!("the index `{v}` has no value"))),
            })
            .collect()
    }

    fn scalar_id(
        &self,
        tensor: &str,
        indices: &[Ix],
        at: &HashMap<String, usize>,
    ) -> Result<&str, IndexError> {
        let t = self
            .tensor(tensor)
            .ok_or_else(|| IndexError(format!("unknown tensor `{tensor}`")))?;
        let pos = self.position(indices, at)?;
        t.id_at(&pos)
            .ok_or_else(|| IndexError(format!("{tensor}{pos:?} is out of range")))
    }

    /// Evaluate with the scalars' values in `env` (by scalar id, as
    /// [`Model::environment`](crate::Model::environment) gives them) and
    /// the free index variables' values in `at`: the expansion, evaluated.
    pub fn eval(
        &self,
        e: &IExpr,
        env: &HashMap<String, f64>,
        at: &mut HashMap<String, usize>,
    ) -> Result<f64, IndexError> {
        self.expand(e, at)?
            .eval(env)
            .ok_or_else(|| IndexError("a scalar of the expression has no value".into()))
    }

    /// The scalar expression an index-form expression stands for when its
    /// free index variables take the values in `at`: sums written out,
    /// deltas decided, entries named by their scalar ids.
    pub fn expand(&self, e: &IExpr, at: &mut HashMap<String, usize>) -> Result<Expr, IndexError> {
        Ok(match e {
            IExpr::Num(r) => Expr::Num(r.clone()),
            IExpr::Entry { tensor, indices } => {
                Expr::Var(self.scalar_id(tensor, indices, at)?.to_string())
            }
            IExpr::Index(v) => Expr::int(
                *at.get(v)
                    .ok_or_else(|| IndexError(format!("the index `{v}` has no value")))?
                    as i64,
            ),
            IExpr::Add(xs) => Expr::Add(
                xs.iter()
                    .map(|x| self.expand(x, at))
                    .collect::<Result<_, _>>()?,
            ),
            IExpr::Mul(xs) => Expr::Mul(
                xs.iter()
                    .map(|x| self.expand(x, at))
                    .collect::<Result<_, _>>()?,
            ),
            IExpr::Pow(a, b) => {
                Expr::Pow(Box::new(self.expand(a, at)?), Box::new(self.expand(b, at)?))
            }
            IExpr::Call(f, a) => Expr::Call(*f, Box::new(self.expand(a, at)?)),
            IExpr::Sum {
                var,
                from,
                to,
                body,
            } => {
                let mut terms = Vec::new();
                for v in *from..=*to {
                    at.insert(var.clone(), v);
                    terms.push(self.expand(body, at)?);
                }
                at.remove(var);
                Expr::Add(terms)
            }
            IExpr::Delta(a, b) => {
                let pos = self.position(&[a.clone(), b.clone()], at)?;
                Expr::int(i64::from(pos[0] == pos[1]))
            }
            IExpr::Pick { index, items } => {
                let k = self.position(std::slice::from_ref(index), at)?[0];
                let item = k.checked_sub(1).and_then(|k| items.get(k)).ok_or_else(|| {
                    IndexError(format!("item {k} of a vector of {}", items.len()))
                })?;
                self.expand(item, at)?
            }
        })
    }
}

/// The free index variables of a tensor-valued expression, one per axis,
/// with the axis lengths.
type Axes = Vec<(String, usize)>;

/// A value of the conversion: an expression with one free index variable
/// per axis (none for a scalar).
pub(crate) struct Shaped {
    pub(crate) axes: Axes,
    pub(crate) body: IExpr,
}

/// Converts checked syntax trees to index form. The loader runs it after
/// scalarization has accepted the same trees, so a shape error here is an
/// inconsistency, reported as `None` (the model then has no index form).
pub(crate) struct IndexScope<'a> {
    /// Shapes of the declared names.
    pub(crate) shapes: &'a HashMap<String, Vec<usize>>,
    /// Index variables in scope: the file's name → the unique name.
    pub(crate) bound: Vec<(String, String)>,
    /// Counter for unique names.
    pub(crate) fresh: &'a mut usize,
}

impl IndexScope<'_> {
    /// A unique index variable, `hint#n`.
    pub(crate) fn fresh(&mut self, hint: &str) -> String {
        *self.fresh += 1;
        format!("{hint}#{}", self.fresh)
    }

    fn bound(&self, name: &str) -> Option<&str> {
        self.bound
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn axis_hint(axis: usize) -> &'static str {
        ["i", "j", "k", "l"].get(axis).copied().unwrap_or("m")
    }

    pub(crate) fn convert(&mut self, ast: &Ast) -> Option<Shaped> {
        let scalar = |body| Shaped { axes: vec![], body };
        Some(match &ast.kind {
            AstKind::Number(text) => scalar(IExpr::Num(crate::load::parse_number(text)?)),
            AstKind::Name(name) => {
                if let Some(v) = self.bound(name) {
                    return Some(scalar(IExpr::Index(v.to_string())));
                }
                let shape = self.shapes.get(name)?.clone();
                let axes: Vec<(String, usize)> = shape
                    .iter()
                    .enumerate()
                    .map(|(a, &n)| (self.fresh(Self::axis_hint(a)), n))
                    .collect();
                let indices = axes.iter().map(|(v, _)| Ix::Var(v.clone())).collect();
                Shaped {
                    body: IExpr::entry(name, indices),
                    axes,
                }
            }
            AstKind::Indexed { name, indices, .. } => {
                let shape = self.shapes.get(name)?.clone();
                if shape.len() != indices.len() {
                    return None;
                }
                let mut axes = Vec::new();
                let mut ixs = Vec::new();
                for (a, ((index, _), &n)) in indices.iter().zip(&shape).enumerate() {
                    ixs.push(match index {
                        Index::Fixed(k) => Ix::Fixed(*k),
                        Index::Var(v) => Ix::Var(self.bound(v)?.to_string()),
                        Index::All => {
                            let v = self.fresh(Self::axis_hint(a));
                            axes.push((v.clone(), n));
                            Ix::Var(v)
                        }
                    });
                }
                Shaped {
                    axes,
                    body: IExpr::entry(name, ixs),
                }
            }
            AstKind::Neg(inner) => {
                let t = self.convert(inner)?;
                Shaped {
                    axes: t.axes,
                    body: IExpr::Mul(vec![IExpr::int(-1), t.body]),
                }
            }
            AstKind::Binary(BinOp::MatMul, lhs, rhs) => {
                let a = self.convert(lhs)?;
                let b = self.convert(rhs)?;
                matmul(a, b)?
            }
            AstKind::Binary(op, lhs, rhs) => {
                let a = self.convert(lhs)?;
                let b = self.convert(rhs)?;
                let (axes, x, y) = unify(a, b)?;
                let body = match op {
                    BinOp::Add => IExpr::Add(vec![x, y]),
                    BinOp::Sub => IExpr::Add(vec![x, IExpr::Mul(vec![IExpr::int(-1), y])]),
                    BinOp::Mul => IExpr::Mul(vec![x, y]),
                    BinOp::Div => {
                        IExpr::Mul(vec![x, IExpr::Pow(Box::new(y), Box::new(IExpr::int(-1)))])
                    }
                    BinOp::Pow => IExpr::Pow(Box::new(x), Box::new(y)),
                    BinOp::MatMul => return None,
                };
                Shaped { axes, body }
            }
            AstKind::Call { name, args, .. } => match (name.as_str(), args.as_slice()) {
                ("dot", [a, b]) => {
                    let a = self.convert(a)?;
                    let b = self.convert(b)?;
                    if a.axes.len() != 1 || b.axes.len() != 1 || a.axes[0].1 != b.axes[0].1 {
                        return None;
                    }
                    let (var, n) = a.axes[0].clone();
                    let rename = HashMap::from([(b.axes[0].0.clone(), Ix::Var(var.clone()))]);
                    scalar(IExpr::Sum {
                        var,
                        from: 1,
                        to: n,
                        body: Box::new(IExpr::Mul(vec![a.body, b.body.rename(&rename)])),
                    })
                }
                ("transpose", [m]) => {
                    let mut t = self.convert(m)?;
                    if t.axes.len() != 2 {
                        return None;
                    }
                    t.axes.swap(0, 1);
                    t
                }
                ("sum", [v]) => {
                    let t = self.convert(v)?;
                    let body = t
                        .axes
                        .into_iter()
                        .rev()
                        .fold(t.body, |body, (var, n)| IExpr::Sum {
                            var,
                            from: 1,
                            to: n,
                            body: Box::new(body),
                        });
                    scalar(body)
                }
                (_, [u]) => {
                    let func = Func::from_name(name)?;
                    let t = self.convert(u)?;
                    Shaped {
                        axes: t.axes,
                        body: IExpr::Call(func, Box::new(t.body)),
                    }
                }
                _ => return None,
            },
            AstKind::Sum {
                var,
                from,
                to,
                body,
            } => {
                let unique = self.fresh(var);
                self.bound.push((var.clone(), unique.clone()));
                let t = self.convert(body);
                self.bound.pop();
                let t = t?;
                if !t.axes.is_empty() {
                    return None;
                }
                scalar(IExpr::Sum {
                    var: unique,
                    from: *from,
                    to: *to,
                    body: Box::new(t.body),
                })
            }
            AstKind::Vector(items) => {
                let mut out = Vec::new();
                for item in items {
                    let t = self.convert(item)?;
                    if !t.axes.is_empty() {
                        return None;
                    }
                    out.push(t.body);
                }
                let v = self.fresh("i");
                Shaped {
                    axes: vec![(v.clone(), out.len())],
                    body: IExpr::Pick {
                        index: Ix::Var(v),
                        items: out,
                    },
                }
            }
        })
    }
}

/// `a @ b` in index form: the inner axes share one variable, summed over.
fn matmul(a: Shaped, b: Shaped) -> Option<Shaped> {
    let (inner_a, inner_b) = (a.axes.last()?.clone(), b.axes.first()?.clone());
    if inner_a.1 != inner_b.1 || (a.axes.len() == 1 && b.axes.len() == 1) {
        return None;
    }
    let rename = HashMap::from([(inner_b.0.clone(), Ix::Var(inner_a.0.clone()))]);
    let mut axes: Axes = a.axes[..a.axes.len() - 1].to_vec();
    axes.extend(b.axes[1..].iter().cloned());
    Some(Shaped {
        axes,
        body: IExpr::Sum {
            var: inner_a.0,
            from: 1,
            to: inner_a.1,
            body: Box::new(IExpr::Mul(vec![a.body, b.body.rename(&rename)])),
        },
    })
}

/// Bring two operands of an element-wise operation to the same index
/// variables: the right side's axes are renamed to the left side's (or a
/// scalar is broadcast).
fn unify(a: Shaped, b: Shaped) -> Option<(Axes, IExpr, IExpr)> {
    if b.axes.is_empty() {
        return Some((a.axes, a.body, b.body));
    }
    if a.axes.is_empty() {
        return Some((b.axes, a.body, b.body));
    }
    if a.axes.len() != b.axes.len() || a.axes.iter().zip(&b.axes).any(|(x, y)| x.1 != y.1) {
        return None;
    }
    let rename: HashMap<String, Ix> = b
        .axes
        .iter()
        .zip(&a.axes)
        .map(|((from, _), (to, _))| (from.clone(), Ix::Var(to.clone())))
        .collect();
    Some((a.axes, a.body, b.body.rename(&rename)))
}

/// Plain-text form with readable index names: each index variable is shown
/// by its letter (`j` for `j#3`), primed when two different variables of
/// one expression share a letter. `Σ_j`, `δ_jk`, `w[j]`, `W[i, j]`.
impl fmt::Display for IExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = display_names(self);
        let mut out = String::new();
        write_text(self, &names, &mut out, 0);
        f.write_str(&out)
    }
}

/// Display names for the index variables of `e`, in order of appearance.
pub fn display_names(e: &IExpr) -> HashMap<String, String> {
    let mut order = e.index_variables();
    // Derivative indices (`j#d1w`: ∂/∂w_j) keep their letter; a sum's
    // variable that meets one is primed instead.
    order.sort_by_key(|v| !v.contains("#d"));
    let mut names: HashMap<String, String> = HashMap::new();
    let mut taken: Vec<String> = Vec::new();
    for v in order {
        let letter = v.split('#').next().unwrap_or(&v).to_string();
        let mut name = letter.clone();
        while taken.contains(&name) {
            name.push('\'');
        }
        taken.push(name.clone());
        names.insert(v, name);
    }
    names
}

fn show_ix(i: &Ix, names: &HashMap<String, String>) -> String {
    match i {
        Ix::Var(v) => names.get(v).cloned().unwrap_or_else(|| v.clone()),
        Ix::Fixed(k) => k.to_string(),
    }
}

/// Precedence: 1 sum, 2 product, 3 power, 4 atom.
fn write_text(e: &IExpr, names: &HashMap<String, String>, out: &mut String, parent: u8) {
    let (mine, text): (u8, String) = match e {
        IExpr::Num(r) => {
            let s = r.to_string();
            (
                if r.is_negative() || !r.is_integer() {
                    1
                } else {
                    4
                },
                s,
            )
        }
        IExpr::Entry { tensor, indices } => {
            let s = if indices.is_empty() {
                tensor.clone()
            } else {
                let ix: Vec<String> = indices.iter().map(|i| show_ix(i, names)).collect();
                format!("{tensor}[{}]", ix.join(", "))
            };
            (4, s)
        }
        IExpr::Index(v) => (4, show_ix(&Ix::Var(v.clone()), names)),
        IExpr::Add(xs) => {
            let mut s = String::new();
            for (i, x) in xs.iter().enumerate() {
                let mut t = String::new();
                write_text(x, names, &mut t, 1);
                if i > 0 {
                    match t.strip_prefix('-') {
                        Some(rest) => {
                            s.push_str(" - ");
                            s.push_str(rest);
                        }
                        None => {
                            s.push_str(" + ");
                            s.push_str(&t);
                        }
                    }
                } else {
                    s.push_str(&t);
                }
            }
            (1, s)
        }
        IExpr::Mul(xs) => {
            let mut s = String::new();
            let mut rest = xs.as_slice();
            if let Some(IExpr::Num(r)) = xs.first()
                && r.is(-1, 1)
                && xs.len() > 1
            {
                s.push('-');
                rest = &xs[1..];
            }
            for (i, x) in rest.iter().enumerate() {
                if i > 0 {
                    s.push_str(" * ");
                }
                write_text(x, names, &mut s, 2);
            }
            (2, s)
        }
        IExpr::Pow(a, b) => {
            let mut s = String::new();
            write_text(a, names, &mut s, 4);
            s.push('^');
            write_text(b, names, &mut s, 4);
            (3, s)
        }
        IExpr::Call(f, a) => {
            let mut s = format!("{}(", f.name());
            write_text(a, names, &mut s, 0);
            s.push(')');
            (4, s)
        }
        IExpr::Sum {
            var,
            from,
            to,
            body,
        } => {
            let mut s = format!("Σ_{}={from}..{to} ", show_ix(&Ix::Var(var.clone()), names));
            write_text(body, names, &mut s, 2);
            (1, s)
        }
        IExpr::Delta(a, b) => (
            4,
            format!("δ({}, {})", show_ix(a, names), show_ix(b, names)),
        ),
        IExpr::Pick { index, items } => {
            let mut s = String::from("[");
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write_text(x, names, &mut s, 0);
            }
            s.push_str(&format!("][{}]", show_ix(index, names)));
            (4, s)
        }
    };
    if mine < parent {
        out.push('(');
        out.push_str(&text);
        out.push(')');
    } else {
        out.push_str(&text);
    }
}
