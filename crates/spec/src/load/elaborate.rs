//! Elaboration: an expression's syntax tree, in the scope of the declared
//! names, to a tensor of entries ([`Scope::eval`]) — shapes checked,
//! indices and matrix products expanded — with its errors. An entry is an
//! [`Entry`]: a scalar expression ([`Expr`]), or only what it depends on
//! ([`Reach`]), which is all the loader's checks need, so a file is
//! validated without building its scalar expressions (a 10 000-feature
//! loss is a sum of 10 000 products, which the index-form track never
//! reads); the [`Model`] builds them the first time they are asked for.

use super::*;

/// A located error inside one expression string, before it is mapped to the file.
pub(super) struct ExprError {
    pub(super) kind: ErrorKind,
    pub(super) message: String,
    pub(super) span: Span,
    pub(super) label: String,
    pub(super) help: String,
}

impl ExprError {
    pub(super) fn new(
        kind: ErrorKind,
        span: Span,
        message: String,
        label: &str,
        help: String,
    ) -> Self {
        ExprError {
            kind,
            message,
            span,
            label: label.to_string(),
            help,
        }
    }
}

/// A tensor of entries, row-major.
#[derive(Clone)]
pub(super) struct Tensor<E> {
    pub(super) shape: Vec<usize>,
    pub(super) items: Vec<E>,
}

impl<E> Tensor<E> {
    pub(super) fn scalar(e: E) -> Tensor<E> {
        Tensor {
            shape: vec![],
            items: vec![e],
        }
    }
}

/// What the elaboration computes for each entry of a tensor: the
/// arithmetic of the expression language over entries.
pub(super) trait Entry: Clone {
    /// Entry `k` (row-major) of a declared name.
    fn of(symbol: &Symbol, k: usize) -> Self;
    fn number(r: Rational) -> Self;
    fn add(a: Self, b: Self) -> Self;
    fn neg(a: Self) -> Self;
    fn mul(a: Self, b: Self) -> Self;
    fn div(a: Self, b: Self) -> Self;
    fn pow(a: Self, b: Self) -> Self;
    fn call(f: Func, a: Self) -> Self;
    /// The sum of the items (none is 0).
    fn sum_of(items: Vec<Self>) -> Self;
}

impl Entry for Expr {
    fn of(symbol: &Symbol, k: usize) -> Expr {
        Expr::Var(symbol.ids[k].clone())
    }
    fn number(r: Rational) -> Expr {
        Expr::Num(r)
    }
    fn add(a: Expr, b: Expr) -> Expr {
        add(a, b)
    }
    fn neg(a: Expr) -> Expr {
        neg(a)
    }
    fn mul(a: Expr, b: Expr) -> Expr {
        mul(a, b)
    }
    fn div(a: Expr, b: Expr) -> Expr {
        mul(a, Expr::Pow(Box::new(b), Box::new(Expr::int(-1))))
    }
    fn pow(a: Expr, b: Expr) -> Expr {
        Expr::Pow(Box::new(a), Box::new(b))
    }
    fn call(f: Func, a: Expr) -> Expr {
        Expr::Call(f, Box::new(a))
    }
    fn sum_of(items: Vec<Expr>) -> Expr {
        sum_of(items)
    }
}

/// What a scalar entry depends on, through the definitions: whether any
/// parameter, and the first data entry it meets (its position among the
/// model's data entries), in the order the expression names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Reach {
    pub(super) parameter: bool,
    pub(super) data: Option<usize>,
}

impl Reach {
    fn join(self, other: Reach) -> Reach {
        Reach {
            parameter: self.parameter || other.parameter,
            data: self.data.or(other.data),
        }
    }
}

impl Entry for Reach {
    fn of(symbol: &Symbol, k: usize) -> Reach {
        match symbol.role {
            Role::Parameter => Reach {
                parameter: true,
                data: None,
            },
            Role::Data => Reach {
                parameter: false,
                data: Some(symbol.first + k),
            },
            Role::Constant => Reach::default(),
            Role::Intermediate => symbol.reach.get(k).copied().unwrap_or_default(),
        }
    }
    fn number(_: Rational) -> Reach {
        Reach::default()
    }
    fn add(a: Reach, b: Reach) -> Reach {
        a.join(b)
    }
    fn neg(a: Reach) -> Reach {
        a
    }
    fn mul(a: Reach, b: Reach) -> Reach {
        a.join(b)
    }
    fn div(a: Reach, b: Reach) -> Reach {
        a.join(b)
    }
    fn pow(a: Reach, b: Reach) -> Reach {
        a.join(b)
    }
    fn call(_: Func, a: Reach) -> Reach {
        a
    }
    fn sum_of(items: Vec<Reach>) -> Reach {
        items.into_iter().fold(Reach::default(), Reach::join)
    }
}

pub(super) fn describe(shape: &[usize]) -> String {
    match shape {
        [] => "a scalar".into(),
        [n] => format!("a vector of length {n}"),
        [r, c] => format!("a {r}×{c} matrix"),
        _ => format!("a tensor of shape {shape:?}"),
    }
}

#[derive(Clone)]
pub(super) struct Symbol {
    pub(super) role: Role,
    pub(super) shape: Vec<usize>,
    pub(super) ids: Vec<String>,
    /// For data: the position of its first entry among the model's data
    /// entries ([`Reach::data`]).
    pub(super) first: usize,
    /// For an intermediate, once its definition is checked: what each
    /// entry depends on.
    pub(super) reach: Vec<Reach>,
}

impl Symbol {
    pub(super) fn new(role: Role, shape: Vec<usize>, ids: Vec<String>) -> Symbol {
        Symbol {
            role,
            shape,
            ids,
            first: 0,
            reach: Vec::new(),
        }
    }
}

/// A decimal literal (`12`, `0.1957`, `2.5e-3`, `.5`) as an exact rational
/// of any size. `None` for text that is not one, or for an exponent beyond
/// ±10 000 (a number written so has no place in a model, and its exact value
/// would take megabytes).
pub(crate) fn parse_number(text: &str) -> Option<Rational> {
    const MAX_EXPONENT: i64 = 10_000;
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int_part}{frac_part}");
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let num: BigInt = digits.parse().ok()?;
    let scale = exponent.checked_sub(i64::try_from(frac_part.len()).ok()?)?;
    if scale.abs() > MAX_EXPONENT {
        return None;
    }
    let power = BigInt::from(10u32).pow(scale.unsigned_abs() as u32);
    Some(if scale >= 0 {
        Rational::new(num * power, BigInt::from(1))
    } else {
        Rational::new(num, power)
    })
}

/// Arithmetic that keeps the tree flat.
/// `a + b`, flattened; `a`'s terms are extended in place, so that a sum
/// built term by term (`a + b + c + …` in a file) takes linear time.
pub(super) fn add(a: Expr, b: Expr) -> Expr {
    let mut terms = match a {
        Expr::Add(xs) => xs,
        x => {
            let mut terms = Vec::with_capacity(2);
            terms.push(x);
            terms
        }
    };
    push_term(&mut terms, b);
    Expr::Add(terms)
}

/// `x` into a sum's terms: a sum's own terms one by one, anything else
/// whole.
fn push_term(terms: &mut Vec<Expr>, x: Expr) {
    match x {
        Expr::Add(xs) => terms.extend(xs),
        x => terms.push(x),
    }
}

/// `a · b`, flattened (as [`add`]).
pub(super) fn mul(a: Expr, b: Expr) -> Expr {
    let mut factors = match a {
        Expr::Mul(xs) => xs,
        x => {
            let mut factors = Vec::with_capacity(2);
            factors.push(x);
            factors
        }
    };
    match b {
        Expr::Mul(xs) => factors.extend(xs),
        x => factors.push(x),
    }
    Expr::Mul(factors)
}

pub(super) fn neg(a: Expr) -> Expr {
    mul(Expr::int(-1), a)
}

/// The sum of the items, a sum among them flattened into it; one item is
/// itself, none is 0 (as [`add`] from the first to the last, in one
/// vector: a long `dot` is one sum of thousands of terms).
pub(super) fn sum_of(items: Vec<Expr>) -> Expr {
    if items.len() < 2 {
        return items.into_iter().next().unwrap_or_else(|| Expr::int(0));
    }
    let mut terms = Vec::with_capacity(items.len());
    for item in items {
        push_term(&mut terms, item);
    }
    Expr::Add(terms)
}

pub(super) struct Scope<'a> {
    pub(super) symbols: &'a HashMap<String, Symbol>,
    pub(super) bound: Vec<(String, usize)>,
}

impl Scope<'_> {
    pub(super) fn bound(&self, name: &str) -> Option<usize> {
        self.bound
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    pub(super) fn unknown(&self, name: &str, span: Span) -> ExprError {
        let mut candidates: Vec<&str> = self.symbols.keys().map(String::as_str).collect();
        candidates.extend(self.bound.iter().map(|(n, _)| n.as_str()));
        candidates.sort();
        let help = match suggestion(name, candidates.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("known names here: {}", candidates.join(", ")),
        };
        ExprError::new(
            ErrorKind::UnknownName,
            span,
            format!("unknown name `{name}`"),
            "not declared",
            help,
        )
    }

    pub(super) fn eval<E: Entry>(&mut self, ast: &Ast) -> Result<Tensor<E>, ExprError> {
        match &ast.kind {
            AstKind::Number(text) => parse_number(text)
                .map(|r| Tensor::scalar(E::number(r)))
                .ok_or_else(|| {
                    ExprError::new(
                        ErrorKind::Syntax,
                        ast.span,
                        format!("number `{text}` is out of range"),
                        "exponent too large",
                        "a number's power of ten may be at most ±10000 (`1.5e-300` is fine)".into(),
                    )
                }),
            AstKind::Name(name) => {
                if let Some(v) = self.bound(name) {
                    return Ok(Tensor::scalar(E::number(Rational::int(v as i64))));
                }
                let sym = self
                    .symbols
                    .get(name)
                    .ok_or_else(|| self.unknown(name, ast.span))?;
                Ok(Tensor {
                    shape: sym.shape.clone(),
                    items: (0..sym.ids.len()).map(|k| E::of(sym, k)).collect(),
                })
            }
            AstKind::Indexed {
                name,
                name_span,
                indices,
            } => self.index(name, *name_span, indices),
            AstKind::Neg(inner) => {
                let t = self.eval::<E>(inner)?;
                Ok(Tensor {
                    shape: t.shape,
                    items: t.items.into_iter().map(E::neg).collect(),
                })
            }
            AstKind::Binary(op, lhs, rhs) => {
                let a = self.eval(lhs)?;
                let b = self.eval(rhs)?;
                self.binary(*op, a, b, ast.span, rhs.span)
            }
            AstKind::Call {
                name,
                name_span,
                args,
            } => self.call(name, *name_span, args, ast.span),
            AstKind::Sum {
                var,
                from,
                to,
                body,
            } => {
                if self.symbols.contains_key(var) {
                    return Err(ExprError::new(
                        ErrorKind::Duplicate,
                        ast.span,
                        format!("the index variable `{var}` hides a declared name"),
                        "here",
                        "choose another index letter, e.g. `j` or `k`".into(),
                    ));
                }
                let mut terms = Vec::new();
                for v in *from..=*to {
                    self.bound.push((var.clone(), v));
                    let t = self.eval::<E>(body);
                    self.bound.pop();
                    let t = t?;
                    if !t.shape.is_empty() {
                        return Err(ExprError::new(
                            ErrorKind::Shape,
                            body.span,
                            format!(
                                "the summand of `sum` must be a scalar, but it is {}",
                                describe(&t.shape)
                            ),
                            "not a scalar",
                            "index the vector with the sum's variable, e.g. `w[j] * x[j]`".into(),
                        ));
                    }
                    terms.extend(t.items);
                }
                Ok(Tensor::scalar(E::sum_of(terms)))
            }
            AstKind::Vector(items) => {
                let mut out = Vec::new();
                for item in items {
                    let t = self.eval::<E>(item)?;
                    if !t.shape.is_empty() {
                        return Err(ExprError::new(
                            ErrorKind::Shape,
                            item.span,
                            format!(
                                "entries of a vector literal must be scalars, this one is {}",
                                describe(&t.shape)
                            ),
                            "not a scalar",
                            String::new(),
                        ));
                    }
                    out.extend(t.items);
                }
                Ok(Tensor {
                    shape: vec![out.len()],
                    items: out,
                })
            }
        }
    }

    pub(super) fn index<E: Entry>(
        &self,
        name: &str,
        name_span: Span,
        indices: &[(Index, Span)],
    ) -> Result<Tensor<E>, ExprError> {
        let sym = self
            .symbols
            .get(name)
            .ok_or_else(|| self.unknown(name, name_span))?;
        if sym.shape.len() != indices.len() {
            return Err(ExprError::new(
                ErrorKind::Shape,
                name_span,
                format!(
                    "`{name}` is {} but is indexed with {} {}",
                    describe(&sym.shape),
                    indices.len(),
                    if indices.len() == 1 {
                        "index"
                    } else {
                        "indices"
                    }
                ),
                "wrong number of indices",
                match sym.shape.len() {
                    0 => format!("`{name}` is a scalar: write `{name}` without brackets"),
                    1 => format!("write `{name}[i]`"),
                    _ => format!("write `{name}[i, j]` or a row `{name}[i, :]`"),
                },
            ));
        }
        // Positions along each axis that the selection keeps.
        let mut axes: Vec<Vec<usize>> = Vec::new();
        let mut out_shape = Vec::new();
        for ((index, span), &len) in indices.iter().zip(&sym.shape) {
            let pos = match index {
                Index::Fixed(k) => *k,
                Index::Var(v) => match self.bound(v) {
                    Some(k) => k,
                    None => return Err(self.unknown(v, *span)),
                },
                Index::All => {
                    axes.push((1..=len).collect());
                    out_shape.push(len);
                    continue;
                }
            };
            if pos == 0 || pos > len {
                return Err(ExprError::new(
                    ErrorKind::Shape,
                    *span,
                    format!(
                        "index {pos} is out of range for `{name}`, which has length {len} on this axis"
                    ),
                    "out of range",
                    format!("indices are 1-based: 1..{len}"),
                ));
            }
            axes.push(vec![pos]);
        }
        let mut items = Vec::new();
        let cols = sym.shape.get(1).copied().unwrap_or(1);
        match axes.as_slice() {
            [a] => items.extend(a.iter().map(|i| E::of(sym, i - 1))),
            [a, b] => {
                for i in a {
                    for j in b {
                        items.push(E::of(sym, (i - 1) * cols + (j - 1)));
                    }
                }
            }
            _ => {}
        }
        Ok(Tensor {
            shape: out_shape,
            items,
        })
    }

    pub(super) fn binary<E: Entry>(
        &self,
        op: BinOp,
        a: Tensor<E>,
        b: Tensor<E>,
        span: Span,
        rspan: Span,
    ) -> Result<Tensor<E>, ExprError> {
        if op == BinOp::MatMul {
            return matmul(a, b, span);
        }
        let shape = if a.shape == b.shape || b.shape.is_empty() {
            a.shape.clone()
        } else if a.shape.is_empty() {
            b.shape.clone()
        } else {
            return Err(ExprError::new(
                ErrorKind::Shape,
                span,
                format!(
                    "shape mismatch: the left side is {}, the right side is {}",
                    describe(&a.shape),
                    describe(&b.shape)
                ),
                "operands of different shapes",
                match (&a.shape[..], &b.shape[..]) {
                    ([_, c], [n]) | ([n], [c, _]) if c == n && op == BinOp::Mul => {
                        "`*` is element-wise; a matrix times a vector is written `W @ x`".into()
                    }
                    _ => "element-wise operators need equal shapes or a scalar on one side; \
                          use dot(a, b) for an inner product and `W @ x` for a matrix product"
                        .into(),
                },
            ));
        };
        if op == BinOp::Pow && !b.shape.is_empty() {
            return Err(ExprError::new(
                ErrorKind::Shape,
                rspan,
                "an exponent must be a scalar".into(),
                "not a scalar",
                String::new(),
            ));
        }
        let n = shape.iter().product::<usize>().max(1);
        let pick = |t: &Tensor<E>, i: usize| {
            if t.shape.is_empty() {
                t.items[0].clone()
            } else {
                t.items[i].clone()
            }
        };
        let items = (0..n)
            .map(|i| {
                let (x, y) = (pick(&a, i), pick(&b, i));
                match op {
                    BinOp::Add => E::add(x, y),
                    BinOp::Sub => E::add(x, E::neg(y)),
                    BinOp::Mul => E::mul(x, y),
                    BinOp::Div => E::div(x, y),
                    BinOp::Pow => E::pow(x, y),
                    BinOp::MatMul => unreachable!("matrix products return above"),
                }
            })
            .collect();
        Ok(Tensor { shape, items })
    }

    pub(super) fn call<E: Entry>(
        &mut self,
        name: &str,
        name_span: Span,
        args: &[Ast],
        span: Span,
    ) -> Result<Tensor<E>, ExprError> {
        let arity = |n: usize, usage: &str| -> Result<(), ExprError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(ExprError::new(
                    ErrorKind::Shape,
                    span,
                    format!(
                        "`{name}` takes {n} argument{}, found {}",
                        if n == 1 { "" } else { "s" },
                        args.len()
                    ),
                    "wrong number of arguments",
                    format!("write `{usage}`"),
                ))
            }
        };
        match name {
            "dot" => {
                arity(2, "dot(a, b)")?;
                let a = self.eval::<E>(&args[0])?;
                let b = self.eval::<E>(&args[1])?;
                if a.shape.len() != 1 || b.shape.len() != 1 || a.shape != b.shape {
                    return Err(ExprError::new(
                        ErrorKind::Shape,
                        span,
                        format!(
                            "dot needs two vectors of the same length; here the first is {} and the second is {}",
                            describe(&a.shape),
                            describe(&b.shape)
                        ),
                        "shape mismatch",
                        "check the declared shapes in [parameters] and [data]; \
                         a matrix row is written `W[i, :]`"
                            .into(),
                    ));
                }
                let terms = a.items.into_iter().zip(b.items).map(|(x, y)| E::mul(x, y));
                Ok(Tensor::scalar(E::sum_of(terms.collect())))
            }
            "transpose" => {
                arity(1, "transpose(W)")?;
                let t = self.eval::<E>(&args[0])?;
                let [r, c] = t.shape[..] else {
                    return Err(ExprError::new(
                        ErrorKind::Shape,
                        span,
                        format!(
                            "transpose needs a matrix, but this is {}",
                            describe(&t.shape)
                        ),
                        "not a matrix",
                        "a vector needs no transpose: `dot(w, x)` is wᵀx".into(),
                    ));
                };
                let items = (0..c)
                    .flat_map(|j| (0..r).map(move |i| (i, j)))
                    .map(|(i, j)| t.items[i * c + j].clone())
                    .collect();
                Ok(Tensor {
                    shape: vec![c, r],
                    items,
                })
            }
            "sum" => {
                arity(1, "sum(v) or sum(j = 1..n, expression)")?;
                let t = self.eval::<E>(&args[0])?;
                Ok(Tensor::scalar(E::sum_of(t.items)))
            }
            _ => {
                let Some(func) = Func::from_name(name) else {
                    let known = || {
                        Func::in_files()
                            .map(|f| f.name())
                            .chain(["dot", "sum", "transpose"])
                    };
                    let mut help = match suggestion(name, known()) {
                        Some(s) => format!("did you mean `{s}`? "),
                        None => String::new(),
                    };
                    if self.symbols.contains_key(name) {
                        help = format!(
                            "`{name}` is a declared name, not a function: index it with `{name}[i]`"
                        );
                    } else {
                        help.push_str("supported: ");
                        help.push_str(&known().collect::<Vec<_>>().join(", "));
                    }
                    return Err(ExprError::new(
                        ErrorKind::UnsupportedFunction,
                        name_span,
                        format!("unsupported function `{name}`"),
                        "not a function hessforge knows",
                        help,
                    ));
                };
                arity(1, &format!("{name}(u)"))?;
                let t = self.eval::<E>(&args[0])?;
                Ok(Tensor {
                    shape: t.shape,
                    items: t.items.into_iter().map(|x| E::call(func, x)).collect(),
                })
            }
        }
    }
}

/// `a @ b`: matrix × vector, vector × matrix or matrix × matrix.
pub(super) fn matmul<E: Entry>(
    a: Tensor<E>,
    b: Tensor<E>,
    span: Span,
) -> Result<Tensor<E>, ExprError> {
    // Both as matrices: a vector on the left is a row, on the right a column.
    let (r, c, as_row) = match a.shape[..] {
        [r, c] => (r, c, false),
        [c] => (1, c, true),
        _ => (0, 0, false),
    };
    let (c2, k, as_column) = match b.shape[..] {
        [c2, k] => (c2, k, false),
        [c2] => (c2, 1, true),
        _ => (0, 0, false),
    };
    let vectors = as_row && as_column;
    if r == 0 || k == 0 || c != c2 || vectors {
        return Err(ExprError::new(
            ErrorKind::Shape,
            span,
            format!(
                "`@` needs a matrix on one side and matching inner lengths; here the left side is {} and the right side is {}",
                describe(&a.shape),
                describe(&b.shape)
            ),
            "shape mismatch",
            if vectors {
                "the inner product of two vectors is `dot(a, b)`".into()
            } else {
                "`W @ x` multiplies a [rows, cols] matrix by a vector of length cols".into()
            },
        ));
    }
    let mut items = Vec::with_capacity(r * k);
    for i in 0..r {
        for j in 0..k {
            let terms = (0..c)
                .map(|l| E::mul(a.items[i * c + l].clone(), b.items[l * k + j].clone()))
                .collect();
            items.push(E::sum_of(terms));
        }
    }
    let shape = match (as_row, as_column) {
        (true, _) => vec![k],
        (_, true) => vec![r],
        _ => vec![r, k],
    };
    Ok(Tensor { shape, items })
}

/// The first `X @ …` with X a data matrix and a parameter on the right:
/// (name, span, columns).
pub(super) fn data_matrix_products(
    ast: &Ast,
    symbols: &HashMap<String, Symbol>,
    found: &mut Option<(String, Span, usize)>,
) {
    if found.is_some() {
        return;
    }
    if let AstKind::Binary(BinOp::MatMul, lhs, rhs) = &ast.kind
        && let AstKind::Name(name) = &lhs.kind
        && let Some(sym) = symbols.get(name)
        && sym.role == Role::Data
        && let [_, cols] = sym.shape[..]
    {
        let mut names = Vec::new();
        mentioned_names(rhs, &mut names);
        if names
            .iter()
            .any(|(n, _)| symbols.get(n).is_some_and(|s| s.role == Role::Parameter))
        {
            *found = Some((name.clone(), lhs.span, cols));
            return;
        }
    }
    match &ast.kind {
        AstKind::Number(_) | AstKind::Name(_) | AstKind::Indexed { .. } => {}
        AstKind::Neg(a) => data_matrix_products(a, symbols, found),
        AstKind::Binary(_, a, b) => {
            data_matrix_products(a, symbols, found);
            data_matrix_products(b, symbols, found);
        }
        AstKind::Call { args, .. } | AstKind::Vector(args) => args
            .iter()
            .for_each(|a| data_matrix_products(a, symbols, found)),
        AstKind::Sum { body, .. } => data_matrix_products(body, symbols, found),
    }
}

/// Names (not index variables) an AST mentions, with their spans.
pub(super) fn mentioned_names(ast: &Ast, out: &mut Vec<(String, Span)>) {
    match &ast.kind {
        AstKind::Number(_) => {}
        AstKind::Name(n) => out.push((n.clone(), ast.span)),
        AstKind::Indexed {
            name, name_span, ..
        } => out.push((name.clone(), *name_span)),
        AstKind::Neg(a) => mentioned_names(a, out),
        AstKind::Binary(_, a, b) => {
            mentioned_names(a, out);
            mentioned_names(b, out);
        }
        AstKind::Call { args, .. } => args.iter().for_each(|a| mentioned_names(a, out)),
        AstKind::Sum { body, .. } => mentioned_names(body, out),
        AstKind::Vector(items) => items.iter().for_each(|a| mentioned_names(a, out)),
    }
}
