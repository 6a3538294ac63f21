//! Index-form expressions in vector and matrix notation, where a pattern is
//! recognised: `Σ_j w_j x_j` is wᵀx, `Σ_l W_jl x_l` is (W x)_j, `Σ_j w_j²`
//! is ‖w‖², a product of entries over one free index is element-wise (⊙),
//! over two free indices an outer product (u vᵀ), with a Kronecker delta a
//! diagonal matrix (diag(s), I); a Hessian block over a matrix parameter is
//! a Kronecker product (A ⊗ B) for W's entries in row-major order.
//! Where no pattern applies there is no vector form, and the document shows
//! the index form alone.
//!
//! Built on the index printer's stand-ins: each vector-valued part becomes
//! a name displayed in matrix notation, and the scalar printer tidies the
//! rest (signs, order, parentheses) as it does everywhere.

use super::index::StandIns;
use super::math::{Names, Printer, Style, tidy};
use hessforge_spec::index::{IExpr, IndexModel, Ix, display_names};
use hessforge_spec::{Expr, Model};

/// What an expression is in matrix notation: a scalar, a column vector over
/// one free index, or a matrix over two (rows, columns).
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Scalar,
    Col(String),
    Mat(String, String),
}

/// The vector form of `e`, whose free indices are `rows` (the first tensor's)
/// and `cols` (the second's, for a Hessian block), in `style`.
pub(crate) fn print(
    model: &Model,
    index: &IndexModel,
    e: &IExpr,
    rows: &[String],
    cols: &[String],
    style: Style,
) -> Option<String> {
    if e.is_int(0) {
        return Some("0".into());
    }
    let e = &absorb_sign(&super::index::paired_differences(e));
    let letters = display_names(e);
    let mut names = Names::for_index_form(model);
    let mut v = Vectorizer {
        ins: StandIns {
            index,
            letters: &letters,
            count: 0,
        },
        order: rows.iter().chain(cols).cloned().collect(),
        style,
        compound: Vec::new(),
    };
    let printed = match (rows, cols) {
        ([_, _], [_, ..]) | ([_, ..], [_, _]) => v.kronecker(e, rows, cols, &mut names)?,
        _ => {
            let (x, shape) = v.form(e, &mut names)?;
            let want = match (rows, cols) {
                ([], []) => Shape::Scalar,
                ([r], []) | ([], [r]) => Shape::Col(r.clone()),
                ([r], [c]) => Shape::Mat(r.clone(), c.clone()),
                ([r, c], []) => Shape::Mat(r.clone(), c.clone()),
                _ => return None,
            };
            if shape != want {
                return None;
            }
            if rows.is_empty() && !cols.is_empty() {
                // A row vector: the scalars stay, the vector is transposed.
                let (mut scalars, last) = match x {
                    Expr::Mul(mut fs) => {
                        let last = fs.pop()?;
                        (fs, last)
                    }
                    other => (Vec::new(), other),
                };
                let shown = v.show(&last, &names);
                let t = v.transposed(&shown, &last);
                scalars.push(v.name(t, &mut names));
                v.show(&Expr::Mul(scalars), &names)
            } else {
                v.show(&x, &names)
            }
        }
    };
    Some(printed)
}

struct Vectorizer<'a> {
    ins: StandIns<'a>,
    /// Free indices in the order rows, then columns.
    order: Vec<String>,
    style: Style,
    /// Stand-ins for operator expressions, parenthesised inside others.
    compound: Vec<String>,
}

impl Vectorizer<'_> {
    fn latex(&self) -> bool {
        self.style == Style::Latex
    }

    fn show(&self, e: &Expr, names: &Names) -> String {
        Printer {
            names,
            style: self.style,
        }
        .print(&tidy(e, names))
    }

    /// `s` in parentheses unless it is a single name.
    fn grouped(&self, s: &str, e: &Expr) -> String {
        let compound = matches!(e, Expr::Var(id) if self.compound.contains(id));
        if matches!(e, Expr::Var(_) | Expr::Call(..)) && !compound {
            s.to_string()
        } else if self.latex() {
            format!("\\left({s}\\right)")
        } else {
            format!("({s})")
        }
    }

    fn transposed(&self, s: &str, e: &Expr) -> String {
        let g = self.grouped(s, e);
        if self.latex() {
            format!("{g}^\\top")
        } else {
            format!("{g}ᵀ")
        }
    }

    /// A name displayed as `shown`, an operator expression (`u ⊙ v`).
    fn compound(&mut self, shown: String, names: &mut Names) -> Expr {
        let e = self.name(shown, names);
        if let Expr::Var(id) = &e {
            self.compound.push(id.clone());
        }
        e
    }

    /// A name displayed as `shown`.
    fn name(&mut self, shown: String, names: &mut Names) -> Expr {
        self.name_of(shown, &[], names)
    }

    /// A name displayed as `shown`, made of `tensors` (and placed in a sum
    /// where the first of them is in the model: wᵀx + b).
    fn name_of(&mut self, shown: String, tensors: &[&str], names: &mut Names) -> Expr {
        let position = tensors
            .iter()
            .map(|t| self.ins.position(t, names))
            .min()
            .unwrap_or(usize::MAX);
        let id = self.ins.fresh();
        names.add_trailing(&id, shown.clone(), shown, position);
        Expr::Var(id)
    }

    fn tensor_name(&self, tensor: &str) -> String {
        match self.ins.index.tensor(tensor) {
            Some(t) if self.latex() => t.latex.clone(),
            _ => tensor.to_string(),
        }
    }

    fn form(&mut self, e: &IExpr, names: &mut Names) -> Option<(Expr, Shape)> {
        if e.free_indices().is_empty() && !has_sum(e) {
            return Some((self.ins.convert(e, names), Shape::Scalar));
        }
        match e {
            IExpr::Entry { tensor, indices } => {
                let t = self.ins.index.tensor(tensor)?;
                let base = self.tensor_name(tensor);
                match (indices.as_slice(), t.shape.len()) {
                    ([Ix::Var(a)], 1) => {
                        Some((self.name_of(base, &[tensor], names), Shape::Col(a.clone())))
                    }
                    ([Ix::Var(a), Ix::Var(b)], 2) if a != b => Some((
                        self.name_of(base, &[tensor], names),
                        Shape::Mat(a.clone(), b.clone()),
                    )),
                    _ => None,
                }
            }
            IExpr::Delta(Ix::Var(a), Ix::Var(b)) if a != b => {
                let (a, b) = self.ordered(a, b);
                Some((self.name("I".into(), names), Shape::Mat(a, b)))
            }
            IExpr::Add(xs) => {
                // Scalars broadcast over a vector (1 − h², element-wise),
                // never over a matrix.
                let mut terms = Vec::new();
                let mut shape = Shape::Scalar;
                for x in xs {
                    let (t, s) = self.form(x, names)?;
                    match (&shape, &s) {
                        (_, Shape::Scalar) => {}
                        (Shape::Scalar, _) => shape = s,
                        (a, b) if a == b => {}
                        _ => return None,
                    }
                    terms.push(t);
                }
                let scalars = xs.iter().filter(|x| x.free_indices().is_empty()).count();
                if matches!(shape, Shape::Mat(..)) && scalars > 0 {
                    return None;
                }
                Some((Expr::Add(terms), shape))
            }
            IExpr::Mul(xs) => {
                let parts: Option<Vec<(Expr, Shape)>> =
                    xs.iter().map(|x| self.form(x, names)).collect();
                match parts.and_then(|p| self.product(p, names)) {
                    Some(r) => Some(r),
                    None => self.distributed(xs, names),
                }
            }
            // log(Σ_i e^{z_i}) and 1/Σ_i e^{z_i}, sums with no pattern: the
            // index printer writes them without extra brackets.
            IExpr::Call(_, a) | IExpr::Pow(a, _)
                if matches!(**a, IExpr::Sum { .. })
                    && e.free_indices().is_empty()
                    && self.contraction(a, names).is_none() =>
            {
                Some((self.ins.convert(e, names), Shape::Scalar))
            }
            IExpr::Pow(b, x) if x.free_indices().is_empty() => {
                let (base, shape) = self.form(b, names)?;
                let x = self.ins.convert(x, names);
                Some((Expr::Pow(Box::new(base), Box::new(x)), shape))
            }
            IExpr::Call(f, a) => {
                let (a, shape) = self.form(a, names)?;
                Some((Expr::Call(*f, Box::new(a)), shape))
            }
            IExpr::Sum { .. } => self.contraction(e, names).or_else(|| {
                // No pattern: a sum with no free index stays in index form.
                e.free_indices()
                    .is_empty()
                    .then(|| (self.ins.convert(e, names), Shape::Scalar))
            }),
            _ => None,
        }
    }

    /// Two indices in the order of the free indices (rows first).
    fn ordered(&self, a: &str, b: &str) -> (String, String) {
        let at = |v: &str| self.order.iter().position(|o| o == v).unwrap_or(usize::MAX);
        if at(a) <= at(b) {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        }
    }

    /// a·(b + c) as a·b + a·c, where the factors' shapes differ term by term
    /// (s_j (δ_jk − s_k) = diag(s) − s sᵀ).
    fn distributed(&mut self, xs: &[IExpr], names: &mut Names) -> Option<(Expr, Shape)> {
        let at = xs.iter().position(|x| matches!(x, IExpr::Add(_)))?;
        let IExpr::Add(terms) = &xs[at] else {
            return None;
        };
        let expanded = IExpr::Add(
            terms
                .iter()
                .map(|t| {
                    let mut f = xs.to_vec();
                    f[at] = t.clone();
                    IExpr::Mul(f)
                })
                .collect(),
        );
        self.form(&expanded, names)
    }

    /// One element-wise product of same-index vectors: `u ⊙ v`.
    fn elementwise(&mut self, mut factors: Vec<Expr>, names: &mut Names) -> Expr {
        // Names first, then sums: v ⊙ (1 − h²).
        factors.sort_by_key(|f| !matches!(f, Expr::Var(_)));
        if factors.len() == 1 {
            return factors.into_iter().next().unwrap_or(Expr::int(1));
        }
        let op = if self.latex() { " \\odot " } else { " ⊙ " };
        let shown: Vec<String> = factors
            .iter()
            .map(|f| {
                let s = self.show(f, names);
                self.grouped(&s, f)
            })
            .collect();
        self.compound(shown.join(op), names)
    }

    fn product(&mut self, parts: Vec<(Expr, Shape)>, names: &mut Names) -> Option<(Expr, Shape)> {
        let mut scalars = Vec::new();
        let mut cols: Vec<(String, Vec<Expr>)> = Vec::new();
        let mut mats = Vec::new();
        for (e, s) in parts {
            // A vector part built here is (scalars…, vector): its scalars
            // join this product's, so that −(s)ᵀ is written − s sᵀ.
            let e = match (e, &s) {
                (Expr::Mul(mut fs), Shape::Col(_) | Shape::Mat(..)) if !fs.is_empty() => {
                    let last = fs.pop().unwrap_or(Expr::int(1));
                    scalars.extend(fs);
                    last
                }
                (e, _) => e,
            };
            match s {
                Shape::Scalar => scalars.push(e),
                Shape::Col(a) => match cols.iter_mut().find(|(b, _)| *b == a) {
                    Some((_, fs)) => fs.push(e),
                    None => cols.push((a, vec![e])),
                },
                Shape::Mat(a, b) => mats.push((e, a, b)),
            }
        }
        let mut cols: Vec<(String, Expr)> = cols
            .into_iter()
            .map(|(a, fs)| (a, self.elementwise(fs, names)))
            .collect();
        let (value, shape) = match (mats.len(), cols.len()) {
            (0, 0) => return Some((Expr::Mul(scalars), Shape::Scalar)),
            (0, 1) => {
                let (a, u) = cols.remove(0);
                (u, Shape::Col(a))
            }
            (0, 2) => {
                let (a, b) = self.ordered(&cols[0].0, &cols[1].0);
                if cols[0].0 != a {
                    cols.swap(0, 1);
                }
                let (u, v) = (&cols[0].1, &cols[1].1);
                let (su, sv) = (self.show(u, names), self.show(v, names));
                let shown = format!("{} {}", self.grouped(&su, u), self.transposed(&sv, v));
                (self.name(shown, names), Shape::Mat(a, b))
            }
            (1, _) => {
                let (m, a, b) = mats.remove(0);
                let sm = self.show(&m, names);
                let identity = sm == "I";
                let mut left = None;
                let mut right = None;
                for (ix, u) in &cols {
                    if *ix == a {
                        left = Some(u.clone());
                    } else if *ix == b {
                        right = Some(u.clone());
                    } else {
                        return None;
                    }
                }
                let diag = |this: &Self, u: &Expr, names: &Names| {
                    let s = this.show(u, names);
                    if this.latex() {
                        format!("\\operatorname{{diag}}\\left({s}\\right)")
                    } else {
                        format!("diag({s})")
                    }
                };
                let shown = match (left, right) {
                    (None, None) => {
                        return Some((Expr::Mul([scalars, vec![m]].concat()), Shape::Mat(a, b)));
                    }
                    (Some(u), None) | (None, Some(u)) if identity => diag(self, &u, names),
                    (Some(u), Some(v)) if identity => {
                        let uv = self.elementwise(vec![u, v], names);
                        diag(self, &uv, names)
                    }
                    (l, r) => {
                        let mut s = String::new();
                        if let Some(u) = l {
                            s.push_str(&diag(self, &u, names));
                            s.push(' ');
                        }
                        s.push_str(&self.grouped(&sm, &m));
                        if let Some(v) = r {
                            s.push(' ');
                            s.push_str(&diag(self, &v, names));
                        }
                        s
                    }
                };
                (self.name(shown, names), Shape::Mat(a, b))
            }
            _ => return None,
        };
        scalars.push(value);
        Some((Expr::Mul(scalars), shape))
    }

    /// Sums that are products of vectors and matrices: uᵀv, ‖u‖², W x, Wᵀx,
    /// ‖W‖²_F; a sum with no free index stays in index form.
    fn contraction(&mut self, e: &IExpr, names: &mut Names) -> Option<(Expr, Shape)> {
        let IExpr::Sum { var, body, .. } = e else {
            return None;
        };
        let factors: Vec<IExpr> = match &**body {
            IExpr::Mul(xs) => xs.clone(),
            other => vec![other.clone()],
        };
        let (with, without): (Vec<IExpr>, Vec<IExpr>) =
            factors.into_iter().partition(|f| f.mentions_index(var));
        let k = Ix::Var(var.clone());
        let vector = |f: &IExpr| match f {
            IExpr::Entry { tensor, indices } if indices.as_slice() == [k.clone()] => {
                Some(tensor.clone())
            }
            _ => None,
        };
        let latex = self.latex();
        let tensors: Vec<String> = with.iter().flat_map(|f| f.tensors()).collect();
        let found: Option<(String, Shape)> = match with.as_slice() {
            [a, b] => match (vector(a), vector(b), a, b) {
                (Some(u), Some(v), _, _) => Some((self.dot(&u, &v), Shape::Scalar)),
                (None, Some(x), IExpr::Entry { tensor, indices }, _)
                | (Some(x), None, _, IExpr::Entry { tensor, indices }) => {
                    match indices.as_slice() {
                        [Ix::Var(r), c] if *c == k && *r != *var => {
                            let w = self.tensor_name(tensor);
                            let x = self.tensor_name(&x);
                            Some((format!("{w} {x}"), Shape::Col(r.clone())))
                        }
                        [c, Ix::Var(r)] if *c == k && *r != *var => {
                            let w = self.tensor_name(tensor);
                            let x = self.tensor_name(&x);
                            let t = if latex { "^\\top" } else { "ᵀ" };
                            Some((format!("{w}{t} {x}"), Shape::Col(r.clone())))
                        }
                        _ => None,
                    }
                }
                _ => None,
            },
            [IExpr::Pow(b, two)] if two.is_int(2) => {
                vector(b).map(|u| (self.dot(&u, &u), Shape::Scalar))
            }
            [
                IExpr::Sum {
                    var: inner, body, ..
                },
            ] => match &*square_of(body) {
                IExpr::Pow(b, two) if two.is_int(2) => match &**b {
                    IExpr::Entry { tensor, indices }
                        if indices.len() == 2
                            && indices.contains(&k)
                            && indices.contains(&Ix::Var(inner.clone())) =>
                    {
                        let w = self.tensor_name(tensor);
                        let shown = if latex {
                            format!("\\|{w}\\|_F^{{2}}")
                        } else {
                            format!("‖{w}‖_F²")
                        };
                        Some((shown, Shape::Scalar))
                    }
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        let (shown, shape) = found?;
        let at: Vec<&str> = tensors.iter().map(String::as_str).collect();
        let mut parts = vec![(self.name_of(shown, &at, names), shape)];
        for f in &without {
            parts.push(self.form(f, names)?);
        }
        self.product(parts, names)
    }

    fn dot(&self, u: &str, v: &str) -> String {
        let (a, b) = (self.tensor_name(u), self.tensor_name(v));
        match (u == v, self.latex()) {
            (true, true) => format!("\\|{a}\\|^{{2}}"),
            (true, false) => format!("‖{a}‖²"),
            (false, true) => format!("{a}^\\top {b}"),
            (false, false) => format!("{a}ᵀ{b}"),
        }
    }

    /// A Hessian block over a matrix parameter: the factors over (row₁, col₁)
    /// form A, those over (row₂, col₂) form B, and the block is A ⊗ B.
    fn kronecker(
        &mut self,
        e: &IExpr,
        rows: &[String],
        cols: &[String],
        names: &mut Names,
    ) -> Option<String> {
        let first: Vec<String> = [rows.first(), cols.first()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let second: Vec<String> = [rows.get(1), cols.get(1)]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let factors: Vec<IExpr> = match e {
            IExpr::Mul(xs) => xs.clone(),
            other => vec![other.clone()],
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for f in factors {
            let free = f.free_indices();
            if free.iter().all(|v| first.contains(v)) {
                a.push(f);
            } else if free.iter().all(|v| second.contains(v)) {
                b.push(f);
            } else {
                return None;
            }
        }
        let (ea, sa) = self.form(&IExpr::Mul(a), names)?;
        let (eb, sb) = self.form(&IExpr::Mul(b), names)?;
        let expect = |ix: &[String]| match ix {
            [r, c] => Shape::Mat(r.clone(), c.clone()),
            [r] => Shape::Col(r.clone()),
            _ => Shape::Scalar,
        };
        if sa != expect(&first) || sb != expect(&second) {
            return None;
        }
        let (pa, pb) = (self.show(&ea, names), self.show(&eb, names));
        if pb == "I" && pa.ends_with('I') {
            // I ⊗ I is the identity over W's entries.
            return Some(pa);
        }
        let op = if self.latex() { " \\otimes " } else { " ⊗ " };
        let ga = match &ea {
            Expr::Add(_) => self.grouped(&pa, &ea),
            _ => pa,
        };
        let gb = match &eb {
            Expr::Add(_) => self.grouped(&pb, &eb),
            _ => pb,
        };
        Some(format!("{ga}{op}{gb}"))
    }
}

/// u·u as u².
fn square_of(e: &IExpr) -> Box<IExpr> {
    match e {
        IExpr::Mul(xs) if xs.len() == 2 && xs[0] == xs[1] => {
            Box::new(IExpr::Pow(Box::new(xs[0].clone()), Box::new(IExpr::int(2))))
        }
        other => Box::new(other.clone()),
    }
}

/// A −1 factor moved into a difference: −(y − s)·x is (s − y)·x, so that
/// the sign never sits outside a vector's parentheses.
fn absorb_sign(e: &IExpr) -> IExpr {
    let IExpr::Mul(xs) = e else {
        return e.clone();
    };
    let minus = xs.iter().position(|x| x.is_int(-1));
    let sum = xs.iter().position(|x| matches!(x, IExpr::Add(_)));
    let (Some(m), Some(s)) = (minus, sum) else {
        return e.clone();
    };
    let IExpr::Add(terms) = &xs[s] else {
        return e.clone();
    };
    let negated: Vec<IExpr> = terms
        .iter()
        .map(|t| match t {
            IExpr::Mul(f) if f.first().is_some_and(|x| x.is_int(-1)) => {
                if f.len() == 2 {
                    f[1].clone()
                } else {
                    IExpr::Mul(f[1..].to_vec())
                }
            }
            other => IExpr::Mul(vec![IExpr::int(-1), other.clone()]),
        })
        .collect();
    let mut out: Vec<IExpr> = xs.clone();
    out[s] = IExpr::Add(negated);
    out.remove(m);
    IExpr::Mul(out)
}

fn has_sum(e: &IExpr) -> bool {
    e.any(&mut |x| matches!(x, IExpr::Sum { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        hessforge_spec::load_str(
            "m.toml",
            "name = \"m\"\ntitle = \"m\"\ndescription = \"m\"\nloss = \"(yhat - y)^2 / 2\"\n\
             regularizer = \"lambda / 2 * dot(v, v)\"\n\
             [parameters]\nW = { shape = [3, 2] }\nc = { shape = [3] }\nv = { shape = [3] }\nd = {}\n\
             [data]\nx = { shape = [2] }\ny = {}\n[constants]\nlambda = 0.1\n\
             [[define]]\nname = \"a\"\nexpr = \"W @ x + c\"\n\
             [[define]]\nname = \"h\"\nexpr = \"tanh(a)\"\n\
             [[define]]\nname = \"yhat\"\nexpr = \"dot(v, h) + d\"\n",
        )
        .unwrap_or_else(|e| panic!("{}", e.one_line()))
    }

    fn entry(t: &str, ix: &[&str]) -> IExpr {
        IExpr::entry(t, ix.iter().map(|v| Ix::Var(v.to_string())).collect())
    }

    fn text(e: &IExpr, rows: &[&str], cols: &[&str]) -> Option<String> {
        let m = model();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        print(
            &m,
            m.index.as_ref().unwrap(),
            e,
            &s(rows),
            &s(cols),
            Style::Text,
        )
    }

    #[test]
    fn definitions_read_as_matrix_products() {
        let a = IExpr::Add(vec![
            IExpr::Sum {
                var: "l#1".into(),
                from: 1,
                to: 2,
                body: Box::new(IExpr::Mul(vec![
                    entry("W", &["i", "l#1"]),
                    entry("x", &["l#1"]),
                ])),
            },
            entry("c", &["i"]),
        ]);
        assert_eq!(text(&a, &["i"], &[]).as_deref(), Some("W x + c"));
        let h = IExpr::Call(hessforge_spec::Func::Tanh, Box::new(entry("a", &["i"])));
        assert_eq!(text(&h, &["i"], &[]).as_deref(), Some("tanh(a)"));
        let norm = IExpr::Sum {
            var: "j#1".into(),
            from: 1,
            to: 3,
            body: Box::new(IExpr::Pow(
                Box::new(entry("v", &["j#1"])),
                Box::new(IExpr::int(2)),
            )),
        };
        assert_eq!(text(&norm, &[], &[]).as_deref(), Some("‖v‖²"));
    }

    #[test]
    fn gradients_and_blocks_read_as_outer_and_kronecker_products() {
        // v_j (1 − h_j²) x_l: an outer product over (j, l).
        let g = IExpr::Mul(vec![
            entry("v", &["j"]),
            IExpr::Add(vec![
                IExpr::int(1),
                IExpr::Mul(vec![
                    IExpr::int(-1),
                    IExpr::Pow(Box::new(entry("h", &["j"])), Box::new(IExpr::int(2))),
                ]),
            ]),
            entry("x", &["l"]),
        ]);
        assert_eq!(
            text(&g, &["j", "l"], &[]).as_deref(),
            Some("(v ⊙ (1 - h^2)) xᵀ")
        );
        // s_j (δ_jk − s_k) x_l x_m = (diag(s) − s sᵀ) ⊗ x xᵀ.
        let s = |i: &str| entry("h", &[i]);
        let block = IExpr::Mul(vec![
            s("j"),
            IExpr::Add(vec![
                IExpr::Delta(Ix::Var("j".into()), Ix::Var("k".into())),
                IExpr::Mul(vec![IExpr::int(-1), s("k")]),
            ]),
            entry("x", &["l"]),
            entry("x", &["m"]),
        ]);
        assert_eq!(
            text(&block, &["j", "l"], &["k", "m"]).as_deref(),
            Some("(diag(h) - h hᵀ) ⊗ x xᵀ")
        );
        let penalty = IExpr::Mul(vec![
            IExpr::entry("lambda", vec![]),
            IExpr::Delta(Ix::Var("j".into()), Ix::Var("k".into())),
        ]);
        assert_eq!(text(&penalty, &["j"], &["k"]).as_deref(), Some("lambda·I"));
        // A factor with an index of neither kind has no vector form.
        let mixed = IExpr::Mul(vec![
            entry("W", &["j", "k"]),
            entry("x", &["j"]),
            entry("x", &["k"]),
        ]);
        assert_eq!(text(&mixed, &["j"], &[]), None);
    }
}
