//! Reading a derivation file: TOML with spans → declared names → parsed
//! expressions → dependency order → scalarized [`Model`]. Every check that
//! can fail points at the file, line and column of the mistake.

use crate::error::{ErrorKind, SpecError};
use crate::expr::{self, Ast, AstKind, BinOp, Index, Span};
use crate::index::{IExpr, IndexDefinition, IndexModel, IndexScope, IndexTensor};
use crate::model::{
    Definition, Distribution, Draw, Expr, Func, Model, Rational, Role, Scalar, Synthetic,
    TensorInfo,
};
use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use num_bigint::BigInt;
use toml::Spanned;

/// Names with a meaning of their own in expressions.
const RESERVED: [&str; 8] = [
    "sum",
    "dot",
    "transpose",
    "normal",
    "uniform",
    "bernoulli",
    "poisson",
    "categorical",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Spanned<String>,
    title: String,
    description: String,
    notes: Option<String>,
    #[serde(default)]
    parameters: IndexMap<String, Spanned<RawTensor>>,
    #[serde(default)]
    data: IndexMap<String, Spanned<RawTensor>>,
    #[serde(default)]
    constants: IndexMap<String, Spanned<f64>>,
    #[serde(default)]
    define: Vec<RawDefinition>,
    loss: Spanned<String>,
    regularizer: Option<Spanned<String>>,
    #[serde(default)]
    init: IndexMap<String, Spanned<toml::Value>>,
    synthetic: Option<RawSynthetic>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTensor {
    #[serde(default)]
    shape: Vec<usize>,
    latex: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    name: Spanned<String>,
    #[serde(rename = "for")]
    for_range: Option<Spanned<String>>,
    expr: Spanned<String>,
    latex: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynthetic {
    samples: Option<usize>,
    #[serde(default)]
    truth: IndexMap<String, Spanned<toml::Value>>,
    draw: IndexMap<String, Spanned<String>>,
}

/// A located error inside one expression string, before it is mapped to the file.
struct ExprError {
    kind: ErrorKind,
    message: String,
    span: Span,
    label: String,
    help: String,
}

impl ExprError {
    fn new(kind: ErrorKind, span: Span, message: String, label: &str, help: String) -> Self {
        ExprError {
            kind,
            message,
            span,
            label: label.to_string(),
            help,
        }
    }
}

/// A tensor of scalar expressions, row-major.
#[derive(Clone)]
struct Tensor {
    shape: Vec<usize>,
    items: Vec<Expr>,
}

impl Tensor {
    fn scalar(e: Expr) -> Tensor {
        Tensor {
            shape: vec![],
            items: vec![e],
        }
    }
}

fn describe(shape: &[usize]) -> String {
    match shape {
        [] => "a scalar".into(),
        [n] => format!("a vector of length {n}"),
        [r, c] => format!("a {r}×{c} matrix"),
        _ => format!("a tensor of shape {shape:?}"),
    }
}

#[derive(Clone)]
struct Symbol {
    role: Role,
    shape: Vec<usize>,
    ids: Vec<String>,
}

/// Everything needed to report errors against one file.
struct Source {
    path: String,
    text: Arc<String>,
}

impl Source {
    fn error(
        &self,
        kind: ErrorKind,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> SpecError {
        SpecError::new(kind, &self.path, &self.text, span, message, label, help)
    }

    /// Where the characters of a TOML string value start in the file.
    fn content_offset(&self, value: Range<usize>) -> usize {
        let raw = &self.text[value.start.min(self.text.len())..value.end.min(self.text.len())];
        let mut offset = value.start;
        if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            offset += 3;
            if raw[3..].starts_with('\n') {
                offset += 1;
            } else if raw[3..].starts_with("\r\n") {
                offset += 2;
            }
        } else if raw.starts_with('"') || raw.starts_with('\'') {
            offset += 1;
        }
        offset
    }

    fn expr_error(&self, value: &Spanned<String>, e: ExprError) -> SpecError {
        let base = self.content_offset(value.span());
        let limit = value.span().end;
        let start = (base + e.span.start).min(limit);
        let end = (base + e.span.end.max(e.span.start + 1))
            .min(limit)
            .max(start);
        self.error(e.kind, Some(start..end), e.message, e.label, e.help)
    }

    fn parse_expr(&self, value: &Spanned<String>) -> Result<Ast, SpecError> {
        expr::parse(value.get_ref()).map_err(|e| {
            self.expr_error(
                value,
                ExprError {
                    kind: ErrorKind::Syntax,
                    message: format!("expression does not parse: {}", e.message),
                    span: e.span,
                    label: "here".into(),
                    help: e.help,
                },
            )
        })
    }
}

/// Read and validate a derivation file from disk.
pub fn load_file(path: &std::path::Path) -> Result<Model, SpecError> {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&shown, &text),
        Err(e) => Err(SpecError::new(
            ErrorKind::Io,
            &shown,
            &Arc::new(String::new()),
            None,
            format!("cannot read the derivation file: {e}"),
            "",
            "check the path; built-in models are listed by `hessforge models`",
        )),
    }
}

/// Validate a derivation file given as text; `path` is used in messages.
pub fn load_str(path: &str, text: &str) -> Result<Model, SpecError> {
    let src = Source {
        path: path.to_string(),
        text: Arc::new(text.to_string()),
    };
    let raw: RawSpec = toml::from_str(text).map_err(|e| {
        if let Some(captured) = key_captured_by_table(text) {
            return captured.into_error(&src);
        }
        src.error(
            ErrorKind::Toml,
            e.span(),
            format!(
                "invalid derivation file: {}",
                readable_toml_message(e.message())
            ),
            "here",
            "see the derivation-file format in docs/src/guide/derivation-files.md (name, title, \
             description, [parameters], [data], [constants], [[define]], loss, regularizer)",
        )
    })?;
    prose_check(&src, &raw)?;
    Loader::new(src).run(raw)
}

/// Title, description and notes are typeset: every character needs a
/// LaTeX spelling (never a silent `?` in the document).
fn prose_check(src: &Source, raw: &RawSpec) -> Result<(), SpecError> {
    let fields = [
        ("title", Some(&raw.title)),
        ("description", Some(&raw.description)),
        ("notes", raw.notes.as_ref()),
    ];
    for (field, value) in fields {
        let Some((_, c)) = value.and_then(|v| crate::prose::unsupported(v)) else {
            continue;
        };
        let span = src.text.find(c).map(|i| i..i + c.len_utf8());
        return Err(src.error(
            ErrorKind::Invalid,
            span,
            format!(
                "the {field} contains `{c}` (U+{:04X}), which has no LaTeX spelling",
                c as u32
            ),
            "this character",
            "write it as LaTeX between $…$ (for example $\\star$), or use one the prose table \
             of docs/src/guide/derivation-files.md lists (the Greek alphabet, ‖ ∈ ⊙ ⊗ ᵀ ≤ ≥ → …)",
        ));
    }
    Ok(())
}

/// Keys that belong at the top of the file, before any `[table]`.
const TOP_LEVEL_KEYS: [&str; 6] = [
    "title",
    "description",
    "notes",
    "loss",
    "regularizer",
    "name",
];

/// A top-level key written after a `[table]` header, where TOML makes it
/// part of that table.
struct CapturedKey {
    key: String,
    table: String,
    span: Range<usize>,
}

impl CapturedKey {
    fn into_error(self, src: &Source) -> SpecError {
        src.error(
            ErrorKind::Toml,
            Some(self.span),
            format!(
                "`{}` is inside the [{}] table: in TOML every key after a [table] header belongs to it",
                self.key, self.table
            ),
            "belongs to the table above",
            format!("move `{}` above the first [table] header of the file", self.key),
        )
    }
}

/// The first top-level key (loss, regularizer, title, …) that sits inside
/// a table (`[[define]]` may have a `name`).
fn key_captured_by_table(text: &str) -> Option<CapturedKey> {
    let mut table: Option<String> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[') {
            let name = header.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or(name).trim();
            table = Some(name.to_string());
            continue;
        }
        let Some(table) = &table else { continue };
        let Some((key, _)) = trimmed.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let allowed_here = key == "name" && table == "define";
        if TOP_LEVEL_KEYS.contains(&key) && !allowed_here {
            let indent = line.len() - line.trim_start().len();
            return Some(CapturedKey {
                key: key.to_string(),
                table: table.clone(),
                span: start + indent..start + indent + key.len(),
            });
        }
    }
    None
}

/// The TOML reader's message with our internal type names replaced by what
/// the file should contain.
fn readable_toml_message(message: &str) -> String {
    message
        .trim_end()
        .replace(
            "struct RawTensor",
            "a table such as `{ shape = [10] }` or `{}`",
        )
        .replace(
            "struct RawDefinition",
            "a [[define]] table with `name` and `expr`",
        )
        .replace(
            "struct RawSynthetic",
            "a [synthetic] table with `samples`, [synthetic.truth] and [synthetic.draw]",
        )
        .replace("struct RawSpec", "a derivation file")
}

struct Loader {
    src: Source,
    symbols: HashMap<String, Symbol>,
    /// Declaration order of names, for suggestions.
    names: Vec<String>,
    latex: HashMap<String, String>,
    /// Display name of each tensor, before subscripts (`w`, `\hat{y}`).
    bases: HashMap<String, String>,
    all_ids: HashSet<String>,
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with('_')
}

const GREEK: [&str; 24] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
    "omega", "Omega",
];

/// The default LaTeX display of a name: Greek letters, `yhat` → `\hat{y}`,
/// one letter as is, longer names upright.
pub fn default_latex(name: &str) -> String {
    if GREEK.contains(&name) {
        return format!("\\{name}");
    }
    if let Some(base) = name.strip_suffix("hat")
        && base.len() == 1
    {
        return format!("\\hat{{{base}}}");
    }
    if let Some((base, sub)) = name.split_once('_')
        && !base.is_empty()
        && !sub.is_empty()
    {
        return format!("{}_{{{}}}", default_latex(base), sub.replace('_', ","));
    }
    if name.chars().count() == 1 {
        name.to_string()
    } else {
        format!("\\mathrm{{{name}}}")
    }
}

fn scalar_ids(name: &str, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
    match shape {
        [] => vec![(name.to_string(), vec![])],
        [n] => (1..=*n).map(|i| (format!("{name}_{i}"), vec![i])).collect(),
        [r, c] => (1..=*r)
            .flat_map(|i| (1..=*c).map(move |j| (format!("{name}_{i}_{j}"), vec![i, j])))
            .collect(),
        _ => unreachable!("shapes are checked to have rank ≤ 2"),
    }
}

fn subscripted(latex: &str, index: &[usize]) -> String {
    if index.is_empty() {
        return latex.to_string();
    }
    let idx: Vec<String> = index.iter().map(|i| i.to_string()).collect();
    format!("{latex}_{{{}}}", idx.join(","))
}

fn suggestion<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
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
fn add(a: Expr, b: Expr) -> Expr {
    let mut terms = Vec::new();
    for x in [a, b] {
        match x {
            Expr::Add(xs) => terms.extend(xs),
            x => terms.push(x),
        }
    }
    Expr::Add(terms)
}

fn mul(a: Expr, b: Expr) -> Expr {
    let mut factors = Vec::new();
    for x in [a, b] {
        match x {
            Expr::Mul(xs) => factors.extend(xs),
            x => factors.push(x),
        }
    }
    Expr::Mul(factors)
}

fn neg(a: Expr) -> Expr {
    mul(Expr::int(-1), a)
}

fn sum_of(items: Vec<Expr>) -> Expr {
    items
        .into_iter()
        .reduce(add)
        .unwrap_or_else(|| Expr::int(0))
}

struct Scope<'a> {
    symbols: &'a HashMap<String, Symbol>,
    bound: Vec<(String, usize)>,
}

impl Scope<'_> {
    fn bound(&self, name: &str) -> Option<usize> {
        self.bound
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    fn unknown(&self, name: &str, span: Span) -> ExprError {
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

    fn eval(&mut self, ast: &Ast) -> Result<Tensor, ExprError> {
        match &ast.kind {
            AstKind::Number(text) => parse_number(text)
                .map(|r| Tensor::scalar(Expr::Num(r)))
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
                    return Ok(Tensor::scalar(Expr::int(v as i64)));
                }
                let sym = self
                    .symbols
                    .get(name)
                    .ok_or_else(|| self.unknown(name, ast.span))?;
                Ok(Tensor {
                    shape: sym.shape.clone(),
                    items: sym.ids.iter().map(|id| Expr::Var(id.clone())).collect(),
                })
            }
            AstKind::Indexed {
                name,
                name_span,
                indices,
            } => self.index(name, *name_span, indices),
            AstKind::Neg(inner) => {
                let t = self.eval(inner)?;
                Ok(Tensor {
                    shape: t.shape,
                    items: t.items.into_iter().map(neg).collect(),
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
                    let t = self.eval(body);
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
                Ok(Tensor::scalar(sum_of(terms)))
            }
            AstKind::Vector(items) => {
                let mut out = Vec::new();
                for item in items {
                    let t = self.eval(item)?;
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

    fn index(
        &self,
        name: &str,
        name_span: Span,
        indices: &[(Index, Span)],
    ) -> Result<Tensor, ExprError> {
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
            [a] => items.extend(a.iter().map(|i| sym.ids[i - 1].clone())),
            [a, b] => {
                for i in a {
                    for j in b {
                        items.push(sym.ids[(i - 1) * cols + (j - 1)].clone());
                    }
                }
            }
            _ => {}
        }
        Ok(Tensor {
            shape: out_shape,
            items: items.into_iter().map(Expr::Var).collect(),
        })
    }

    fn binary(
        &self,
        op: BinOp,
        a: Tensor,
        b: Tensor,
        span: Span,
        rspan: Span,
    ) -> Result<Tensor, ExprError> {
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
        let pick = |t: &Tensor, i: usize| {
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
                    BinOp::Add => add(x, y),
                    BinOp::Sub => add(x, neg(y)),
                    BinOp::Mul => mul(x, y),
                    BinOp::Div => mul(x, Expr::Pow(Box::new(y), Box::new(Expr::int(-1)))),
                    BinOp::Pow => Expr::Pow(Box::new(x), Box::new(y)),
                    BinOp::MatMul => unreachable!("matrix products return above"),
                }
            })
            .collect();
        Ok(Tensor { shape, items })
    }

    fn call(
        &mut self,
        name: &str,
        name_span: Span,
        args: &[Ast],
        span: Span,
    ) -> Result<Tensor, ExprError> {
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
                let a = self.eval(&args[0])?;
                let b = self.eval(&args[1])?;
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
                let terms = a.items.into_iter().zip(b.items).map(|(x, y)| mul(x, y));
                Ok(Tensor::scalar(sum_of(terms.collect())))
            }
            "transpose" => {
                arity(1, "transpose(W)")?;
                let t = self.eval(&args[0])?;
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
                let t = self.eval(&args[0])?;
                Ok(Tensor::scalar(sum_of(t.items)))
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
                let t = self.eval(&args[0])?;
                Ok(Tensor {
                    shape: t.shape,
                    items: t
                        .items
                        .into_iter()
                        .map(|x| Expr::Call(func, Box::new(x)))
                        .collect(),
                })
            }
        }
    }
}

/// `a @ b`: matrix × vector, vector × matrix or matrix × matrix.
fn matmul(a: Tensor, b: Tensor, span: Span) -> Result<Tensor, ExprError> {
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
                .map(|l| mul(a.items[i * c + l].clone(), b.items[l * k + j].clone()))
                .collect();
            items.push(sum_of(terms));
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
fn data_matrix_products(
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
fn mentioned_names(ast: &Ast, out: &mut Vec<(String, Span)>) {
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

impl Loader {
    fn new(src: Source) -> Loader {
        Loader {
            src,
            symbols: HashMap::new(),
            names: Vec::new(),
            latex: HashMap::new(),
            bases: HashMap::new(),
            all_ids: HashSet::new(),
        }
    }

    /// Declare a tensor name: check it, give each entry an id.
    fn declare(
        &mut self,
        name: &str,
        span: Range<usize>,
        role: Role,
        shape: Vec<usize>,
        latex: Option<String>,
    ) -> Result<Vec<Scalar>, SpecError> {
        let section = match role {
            Role::Parameter => "[parameters]",
            Role::Data => "[data]",
            Role::Constant => "[constants]",
            Role::Intermediate => "[[define]]",
        };
        if !is_identifier(name) {
            return Err(self.src.error(
                ErrorKind::Invalid,
                Some(span),
                format!("`{name}` in {section} is not a valid name"),
                "invalid name",
                "names start with a letter, contain letters, digits and `_`, and do not end with `_`",
            ));
        }
        if Func::from_name(name).is_some() || RESERVED.contains(&name) {
            return Err(self.src.error(
                ErrorKind::ShadowsFunction,
                Some(span),
                format!("`{name}` in {section} would hide the built-in function `{name}`"),
                "shadows a function",
                format!("rename it, e.g. `{name}_val` or `my_{name}`"),
            ));
        }
        if self.symbols.contains_key(name) {
            return Err(self.src.error(
                ErrorKind::Duplicate,
                Some(span),
                format!("`{name}` is declared twice (again in {section})"),
                "second declaration",
                "every parameter, data field, constant and definition needs its own name",
            ));
        }
        if shape.len() > 2 || shape.contains(&0) {
            return Err(self.src.error(
                ErrorKind::Shape,
                Some(span),
                format!("`{name}` has shape {shape:?}; shapes are [], [n] or [rows, cols] with positive sizes"),
                "unsupported shape",
                "write `shape = [10]` for a vector or `shape = [4, 2]` for a matrix",
            ));
        }
        let base = latex.unwrap_or_else(|| default_latex(name));
        self.bases.insert(name.to_string(), base.clone());
        let mut scalars = Vec::new();
        for (id, index) in scalar_ids(name, &shape) {
            if !self.all_ids.insert(id.clone()) {
                return Err(self.src.error(
                    ErrorKind::Duplicate,
                    Some(span),
                    format!("the entry `{id}` of `{name}` collides with another name"),
                    "collision",
                    "rename one of them; `w_3` is how entry 3 of a vector `w` is called",
                ));
            }
            let latex = subscripted(&base, &index);
            self.latex.insert(id.clone(), latex.clone());
            scalars.push(Scalar {
                id,
                latex,
                tensor: name.to_string(),
                index,
                role,
            });
        }
        self.symbols.insert(
            name.to_string(),
            Symbol {
                role,
                shape,
                ids: scalars.iter().map(|s| s.id.clone()).collect(),
            },
        );
        self.names.push(name.to_string());
        Ok(scalars)
    }

    fn tensor_info(&self, name: &str) -> TensorInfo {
        let sym = &self.symbols[name];
        TensorInfo {
            name: name.to_string(),
            shape: sym.shape.clone(),
            ids: sym.ids.clone(),
        }
    }

    fn run(mut self, raw: RawSpec) -> Result<Model, SpecError> {
        if !is_identifier(raw.name.get_ref()) {
            return Err(self.src.error(
                ErrorKind::Invalid,
                Some(raw.name.span()),
                format!(
                    "model name `{}` is not a valid identifier",
                    raw.name.get_ref()
                ),
                "invalid name",
                "use lower_snake_case, e.g. `logistic_regression`",
            ));
        }
        let mut params = Vec::new();
        let mut param_tensors = Vec::new();
        for (name, t) in &raw.parameters {
            let t_span = t.span();
            let t = t.get_ref();
            params.extend(self.declare(
                name,
                t_span,
                Role::Parameter,
                t.shape.clone(),
                t.latex.clone(),
            )?);
            param_tensors.push(self.tensor_info(name));
        }
        if params.is_empty() {
            return Err(self.src.error(
                ErrorKind::Invalid,
                None,
                "the model has no parameters",
                "",
                "declare what the optimizer changes under [parameters], e.g. `w = { shape = [10] }`",
            ));
        }
        let mut data = Vec::new();
        let mut data_tensors = Vec::new();
        for (name, t) in &raw.data {
            let t_span = t.span();
            let t = t.get_ref();
            data.extend(self.declare(
                name,
                t_span,
                Role::Data,
                t.shape.clone(),
                t.latex.clone(),
            )?);
            data_tensors.push(self.tensor_info(name));
        }
        let mut constants = Vec::new();
        for (name, value) in &raw.constants {
            let mut s = self.declare(name, value.span(), Role::Constant, vec![], None)?;
            constants.push((s.remove(0), *value.get_ref()));
        }

        // Definitions: declare names first (any order), then resolve dependencies.
        let mut def_asts = Vec::new();
        let mut def_ranges = Vec::new();
        for d in &raw.define {
            let range = match &d.for_range {
                Some(r) => {
                    let (var, from, to, span) = expr::parse_range(r.get_ref()).map_err(|e| {
                        self.src.expr_error(
                            r,
                            ExprError::new(ErrorKind::Syntax, e.span, e.message, "here", e.help),
                        )
                    })?;
                    if from != 1 {
                        return Err(self.src.expr_error(
                            r,
                            ExprError::new(
                                ErrorKind::Invalid,
                                span,
                                format!("a vector definition must be indexed from 1, not {from}"),
                                "here",
                                format!("write `{var} = 1..{to}`"),
                            ),
                        ));
                    }
                    Some((var, to))
                }
                None => None,
            };
            let shape = range.as_ref().map(|(_, n)| vec![*n]).unwrap_or_default();
            // The shape of an element-wise vector definition is known only
            // after evaluation; declare it as a scalar for now and fix it later.
            self.declare(
                d.name.get_ref(),
                d.name.span(),
                Role::Intermediate,
                shape,
                d.latex.clone(),
            )?;
            def_asts.push(self.src.parse_expr(&d.expr)?);
            def_ranges.push(range);
        }
        for (d, ast) in raw.define.iter().zip(&def_asts) {
            self.per_sample_check(&d.expr, ast)?;
        }
        let order = self.definition_order(&raw.define, &def_asts)?;

        let mut definitions = Vec::new();
        let mut definition_tensors = Vec::new();
        for &k in &order {
            let d = &raw.define[k];
            let name = d.name.get_ref();
            let items = match &def_ranges[k] {
                Some((var, n)) => {
                    let mut items = Vec::new();
                    for i in 1..=*n {
                        let mut scope = Scope {
                            symbols: &self.symbols,
                            bound: vec![(var.clone(), i)],
                        };
                        let t = scope
                            .eval(&def_asts[k])
                            .map_err(|e| self.src.expr_error(&d.expr, e))?;
                        if !t.shape.is_empty() {
                            return Err(self.src.expr_error(
                                &d.expr,
                                ExprError::new(
                                    ErrorKind::Shape,
                                    def_asts[k].span,
                                    format!(
                                        "each entry of `{name}` must be a scalar, but this is {}",
                                        describe(&t.shape)
                                    ),
                                    "not a scalar",
                                    format!("index with `{var}`"),
                                ),
                            ));
                        }
                        items.extend(t.items);
                    }
                    items
                }
                None => {
                    let mut scope = Scope {
                        symbols: &self.symbols,
                        bound: vec![],
                    };
                    let t = scope
                        .eval(&def_asts[k])
                        .map_err(|e| self.src.expr_error(&d.expr, e))?;
                    if !t.shape.is_empty() {
                        // An element-wise vector (or matrix) definition: re-declare with its shape.
                        self.symbols.remove(name);
                        self.names.retain(|n| n != name);
                        self.all_ids.remove(name);
                        self.declare(
                            name,
                            d.name.span(),
                            Role::Intermediate,
                            t.shape.clone(),
                            d.latex.clone(),
                        )?;
                    }
                    t.items
                }
            };
            let sym = &self.symbols[name];
            for (id, expr) in sym.ids.clone().into_iter().zip(items) {
                let (index, tensor) = (
                    scalar_ids(name, &sym.shape)
                        .into_iter()
                        .find(|(i, _)| *i == id)
                        .map(|(_, ix)| ix)
                        .unwrap_or_default(),
                    name.to_string(),
                );
                definitions.push(Definition {
                    scalar: Scalar {
                        latex: self.latex[&id].clone(),
                        id,
                        tensor,
                        index,
                        role: Role::Intermediate,
                    },
                    expr,
                });
            }
        }
        for d in &raw.define {
            definition_tensors.push(self.tensor_info(d.name.get_ref()));
        }

        let loss = self.scalar_expr(&raw.loss, "the loss")?;
        let regularizer = match &raw.regularizer {
            Some(r) => Some(self.scalar_expr(r, "the regularizer")?),
            None => None,
        };

        // Dependence checks, through the intermediates.
        let def_deps: HashMap<String, HashSet<String>> = {
            let mut deps: HashMap<String, HashSet<String>> = HashMap::new();
            for d in &definitions {
                let mut leaves = HashSet::new();
                for v in d.expr.free_vars() {
                    match deps.get(&v) {
                        Some(inner) => leaves.extend(inner.iter().cloned()),
                        None => {
                            leaves.insert(v);
                        }
                    }
                }
                deps.insert(d.scalar.id.clone(), leaves);
            }
            deps
        };
        let leaves_of = |e: &Expr| -> HashSet<String> {
            let mut out = HashSet::new();
            for v in e.free_vars() {
                match def_deps.get(&v) {
                    Some(inner) => out.extend(inner.iter().cloned()),
                    None => {
                        out.insert(v);
                    }
                }
            }
            out
        };
        let param_ids: HashSet<&str> = params.iter().map(|s| s.id.as_str()).collect();
        let data_ids: HashSet<&str> = data.iter().map(|s| s.id.as_str()).collect();
        if !leaves_of(&loss)
            .iter()
            .any(|v| param_ids.contains(v.as_str()))
        {
            return Err(self.src.error(
                ErrorKind::NoParameterDependence,
                Some(raw.loss.span()),
                "the loss does not depend on any parameter",
                "nothing here changes with θ",
                format!(
                    "use the parameters ({}) in the loss or in a definition it uses",
                    raw.parameters
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if let (Some(r), Some(raw_r)) = (&regularizer, &raw.regularizer)
            && let Some(d) = leaves_of(r).iter().find(|v| data_ids.contains(v.as_str()))
        {
            return Err(self.src.error(
                ErrorKind::Invalid,
                Some(raw_r.span()),
                format!("the regularizer depends on the data (`{d}`)"),
                "must be a function of the parameters only",
                "move data-dependent terms into the per-sample loss",
            ));
        }

        let init = self.init(&raw.init, &params)?;
        let synthetic = match &raw.synthetic {
            Some(s) => Some(self.synthetic(s)?),
            None => None,
        };

        let index = self.index_model(&raw, &def_asts, &def_ranges, &order);
        Ok(Model {
            index,
            source: self.src.path.clone(),
            name: raw.name.into_inner(),
            title: raw.title,
            description: raw.description,
            notes: raw.notes,
            params,
            param_tensors,
            data,
            data_tensors,
            constants,
            definitions,
            definition_tensors,
            loss,
            regularizer,
            init,
            synthetic,
        })
    }

    /// The same model in index form, from the syntax trees scalarization
    /// has accepted (so `None`, no index form, only on an inconsistency).
    fn index_model(
        &self,
        raw: &RawSpec,
        def_asts: &[Ast],
        def_ranges: &[Option<(String, usize)>],
        order: &[usize],
    ) -> Option<IndexModel> {
        let shapes: HashMap<String, Vec<usize>> = self
            .symbols
            .iter()
            .map(|(name, sym)| (name.clone(), sym.shape.clone()))
            .collect();
        let tensors = self
            .names
            .iter()
            .map(|name| {
                let sym = &self.symbols[name];
                IndexTensor {
                    name: name.clone(),
                    latex: self
                        .bases
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| default_latex(name)),
                    role: sym.role,
                    shape: sym.shape.clone(),
                    ids: sym.ids.clone(),
                }
            })
            .collect();
        let mut fresh = 0;
        let mut definitions = Vec::new();
        for &k in order {
            let name = raw.define[k].name.get_ref();
            let mut scope = IndexScope {
                shapes: &shapes,
                bound: vec![],
                fresh: &mut fresh,
            };
            let (indices, expr) = match &def_ranges[k] {
                Some((var, _)) => {
                    let unique = scope.fresh(var);
                    scope.bound.push((var.clone(), unique.clone()));
                    let t = scope.convert(&def_asts[k])?;
                    if !t.axes.is_empty() {
                        return None;
                    }
                    (vec![unique], t.body)
                }
                None => {
                    let t = scope.convert(&def_asts[k])?;
                    (t.axes.into_iter().map(|(v, _)| v).collect(), t.body)
                }
            };
            definitions.push(IndexDefinition {
                name: name.clone(),
                indices,
                expr,
            });
        }
        let mut scalar = |value: &Spanned<String>| -> Option<IExpr> {
            let ast = expr::parse(value.get_ref()).ok()?;
            let t = IndexScope {
                shapes: &shapes,
                bound: vec![],
                fresh: &mut fresh,
            }
            .convert(&ast)?;
            t.axes.is_empty().then_some(t.body)
        };
        let loss = scalar(&raw.loss)?;
        let regularizer = match &raw.regularizer {
            Some(r) => Some(scalar(r)?),
            None => None,
        };
        Some(IndexModel {
            tensors,
            definitions,
            loss,
            regularizer,
        })
    }

    /// Models are written per sample: a data matrix multiplied by the
    /// parameters (`X @ w`) is the whole data set written at once.
    fn per_sample_check(&self, value: &Spanned<String>, ast: &Ast) -> Result<(), SpecError> {
        let mut found = None;
        data_matrix_products(ast, &self.symbols, &mut found);
        let Some((name, span, cols)) = found else {
            return Ok(());
        };
        Err(self.src.expr_error(
            value,
            ExprError::new(
                ErrorKind::Invalid,
                span,
                format!(
                    "`{name}` is a data matrix multiplied by the parameters: models are written per sample, one row of data at a time"
                ),
                "the whole data set",
                format!(
                    "declare one row, `x = {{ shape = [{cols}] }}` under [data], and write `dot(w, x)`; \
                     hessforge averages the per-sample loss over the rows of the data file"
                ),
            ),
        ))
    }

    fn scalar_expr(&self, value: &Spanned<String>, what: &str) -> Result<Expr, SpecError> {
        let ast = self.src.parse_expr(value)?;
        self.per_sample_check(value, &ast)?;
        let mut scope = Scope {
            symbols: &self.symbols,
            bound: vec![],
        };
        let t = scope
            .eval(&ast)
            .map_err(|e| self.src.expr_error(value, e))?;
        if !t.shape.is_empty() {
            return Err(self.src.expr_error(
                value,
                ExprError::new(
                    ErrorKind::Shape,
                    ast.span,
                    format!("{what} must be a scalar, but it is {}", describe(&t.shape)),
                    "not a scalar",
                    "reduce it with sum(...) or dot(...)".into(),
                ),
            ));
        }
        Ok(t.items
            .into_iter()
            .next()
            .expect("scalar tensor has one item"))
    }

    /// Topological order of the definitions; a cycle is an error.
    fn definition_order(
        &self,
        defs: &[RawDefinition],
        asts: &[Ast],
    ) -> Result<Vec<usize>, SpecError> {
        let index: HashMap<&str, usize> = defs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.get_ref().as_str(), i))
            .collect();
        let edges: Vec<Vec<(usize, Span)>> = asts
            .iter()
            .map(|ast| {
                let mut names = Vec::new();
                mentioned_names(ast, &mut names);
                names
                    .into_iter()
                    .filter_map(|(n, s)| index.get(n.as_str()).map(|&i| (i, s)))
                    .collect()
            })
            .collect();
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let mut state = vec![0u8; defs.len()];
        let mut order = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        fn visit(
            k: usize,
            edges: &[Vec<(usize, Span)>],
            state: &mut [u8],
            order: &mut Vec<usize>,
            stack: &mut Vec<usize>,
        ) -> Result<(), (Vec<usize>, Span)> {
            state[k] = 1;
            stack.push(k);
            for &(j, span) in &edges[k] {
                match state[j] {
                    0 => visit(j, edges, state, order, stack)?,
                    1 => {
                        let from = stack.iter().position(|&s| s == j).unwrap_or(0);
                        let mut cycle = stack[from..].to_vec();
                        cycle.push(j);
                        return Err((cycle, span));
                    }
                    _ => {}
                }
            }
            stack.pop();
            state[k] = 2;
            order.push(k);
            Ok(())
        }
        for k in 0..defs.len() {
            if state[k] == 0
                && let Err((cycle, span)) = visit(k, &edges, &mut state, &mut order, &mut stack)
            {
                let names: Vec<&str> = cycle
                    .iter()
                    .map(|&i| defs[i].name.get_ref().as_str())
                    .collect();
                let last = cycle[cycle.len() - 2];
                return Err(self.src.expr_error(
                    &defs[last].expr,
                    ExprError::new(
                        ErrorKind::Cycle,
                        span,
                        format!("the definitions form a cycle: {}", names.join(" → ")),
                        "this use closes the cycle",
                        "each definition may use only parameters, data, constants and definitions that do not use it back".into(),
                    ),
                ));
            }
        }
        Ok(order)
    }

    /// Values for a parameter tensor from a TOML number, list or list of lists.
    fn tensor_values(
        &self,
        name: &str,
        value: &Spanned<toml::Value>,
        what: &str,
    ) -> Result<Vec<f64>, SpecError> {
        let sym = self.symbols.get(name).filter(|s| s.role == Role::Parameter);
        let Some(sym) = sym else {
            let params: Vec<&str> = self
                .names
                .iter()
                .filter(|n| self.symbols[*n].role == Role::Parameter)
                .map(String::as_str)
                .collect();
            let help = match suggestion(name, params.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("parameters: {}", params.join(", ")),
            };
            return Err(self.src.error(
                ErrorKind::UnknownName,
                Some(value.span()),
                format!("{what} names `{name}`, which is not a parameter"),
                "not a parameter",
                help,
            ));
        };
        let n = sym.ids.len();
        let number = |v: &toml::Value| match v {
            toml::Value::Float(f) => Some(*f),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        };
        let flat: Option<Vec<f64>> = match value.get_ref() {
            toml::Value::Array(rows) => {
                let mut out = Vec::new();
                let mut ok = true;
                for r in rows {
                    match r {
                        toml::Value::Array(inner) => {
                            out.extend(inner.iter().filter_map(number));
                            ok &= inner.iter().all(|x| number(x).is_some());
                        }
                        x => match number(x) {
                            Some(f) => out.push(f),
                            None => ok = false,
                        },
                    }
                }
                ok.then_some(out)
            }
            v => number(v).map(|f| vec![f; n]),
        };
        match flat {
            Some(values) if values.len() == n && values.iter().all(|v| v.is_finite()) => Ok(values),
            _ => Err(self.src.error(
                ErrorKind::Shape,
                Some(value.span()),
                format!(
                    "{what} for `{name}` must give {} finite number{} ({})",
                    n,
                    if n == 1 { "" } else { "s" },
                    describe(&sym.shape)
                ),
                "wrong size or type",
                "give one number (used for every entry) or a list with one value per entry",
            )),
        }
    }

    fn init(
        &self,
        raw: &IndexMap<String, Spanned<toml::Value>>,
        params: &[Scalar],
    ) -> Result<Vec<f64>, SpecError> {
        let mut init = vec![0.0; params.len()];
        for (name, value) in raw {
            let values = self.tensor_values(name, value, "[init]")?;
            for (id, v) in self.symbols[name].ids.iter().zip(values) {
                let k = params
                    .iter()
                    .position(|p| &p.id == id)
                    .expect("parameter id");
                init[k] = v;
            }
        }
        Ok(init)
    }

    fn synthetic(&self, raw: &RawSynthetic) -> Result<Synthetic, SpecError> {
        let span = raw.draw.values().last().map(|v| v.span());
        let mut truth = Vec::new();
        for (name, value) in &raw.truth {
            let values = self.tensor_values(name, value, "[synthetic.truth]")?;
            truth.extend(self.symbols[name].ids.iter().cloned().zip(values));
        }
        // The scope grows as fields are drawn: parameters with a true value,
        // constants, and fields drawn earlier.
        let mut scope_symbols: HashMap<String, Symbol> = self
            .symbols
            .iter()
            .filter(|(name, s)| {
                s.role == Role::Constant
                    || (s.role == Role::Parameter && raw.truth.contains_key(*name))
            })
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        let mut draws = Vec::new();
        for (field, text) in &raw.draw {
            let Some(sym) = self.symbols.get(field).filter(|s| s.role == Role::Data) else {
                return Err(self.src.error(
                    ErrorKind::UnknownName,
                    Some(text.span()),
                    format!("[synthetic.draw] names `{field}`, which is not a data field"),
                    "not a data field",
                    "draw each field declared under [data], in the order they depend on each other",
                ));
            };
            let ast = self.src.parse_expr(text)?;
            let AstKind::Call {
                name,
                args,
                name_span,
            } = &ast.kind
            else {
                return Err(self.src.expr_error(
                    text,
                    ExprError::new(
                        ErrorKind::Invalid,
                        ast.span,
                        "a draw must be a distribution call".into(),
                        "not a distribution",
                        "use normal(mean, sd), uniform(low, high), bernoulli(p), poisson(rate) or categorical(logits)".into(),
                    ),
                ));
            };
            let (distribution, arity) = match name.as_str() {
                "normal" => (Distribution::Normal, 2),
                "uniform" => (Distribution::Uniform, 2),
                "bernoulli" => (Distribution::Bernoulli, 1),
                "poisson" => (Distribution::Poisson, 1),
                "categorical" => (Distribution::Categorical, 1),
                other => {
                    return Err(self.src.expr_error(
                        text,
                        ExprError::new(
                            ErrorKind::UnsupportedFunction,
                            *name_span,
                            format!("unknown distribution `{other}`"),
                            "not a distribution",
                            "use normal(mean, sd), uniform(low, high), bernoulli(p), poisson(rate) or categorical(logits)".into(),
                        ),
                    ));
                }
            };
            if args.len() != arity {
                return Err(self.src.expr_error(
                    text,
                    ExprError::new(
                        ErrorKind::Shape,
                        ast.span,
                        format!("`{name}` takes {arity} argument(s), found {}", args.len()),
                        "wrong number of arguments",
                        String::new(),
                    ),
                ));
            }
            let n = sym.ids.len();
            let mut values = Vec::new();
            for arg in args {
                let mut scope = Scope {
                    symbols: &scope_symbols,
                    bound: vec![],
                };
                let t = scope.eval(arg).map_err(|mut e| {
                    if e.kind == ErrorKind::UnknownName {
                        e.help.push_str(
                            " (draws may use constants, parameters given in [synthetic.truth], and fields drawn earlier)",
                        );
                    }
                    self.src.expr_error(text, e)
                })?;
                let fits = match distribution {
                    Distribution::Categorical => t.shape == sym.shape && sym.shape.len() == 1,
                    _ => t.shape.is_empty() || t.shape == sym.shape,
                };
                if !fits {
                    return Err(self.src.expr_error(
                        text,
                        ExprError::new(
                            ErrorKind::Shape,
                            arg.span,
                            format!(
                                "this argument is {} but `{field}` is {}",
                                describe(&t.shape),
                                describe(&sym.shape)
                            ),
                            "shape mismatch",
                            "give a scalar (used for every entry) or one value per entry".into(),
                        ),
                    ));
                }
                values.push(if t.shape.is_empty() {
                    vec![t.items[0].clone(); n]
                } else {
                    t.items
                });
            }
            scope_symbols.insert(field.clone(), sym.clone());
            draws.push(Draw {
                field: field.clone(),
                distribution,
                args: values,
            });
        }
        let missing: Vec<&str> = self
            .names
            .iter()
            .filter(|n| self.symbols[*n].role == Role::Data && !raw.draw.contains_key(*n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(self.src.error(
                ErrorKind::Invalid,
                span,
                format!(
                    "[synthetic.draw] does not say how to draw {}",
                    missing.join(", ")
                ),
                "incomplete",
                "give a distribution for every data field",
            ));
        }
        Ok(Synthetic {
            samples: raw.samples.unwrap_or(1000),
            truth,
            draws,
        })
    }
}

/// Parse an expression in the scope of a loaded model (its parameters, data,
/// constants and intermediates), e.g. a textbook form to compare a derived
/// result with. Must be a scalar.
pub fn parse_expression(model: &Model, text: &str) -> Result<Expr, SpecError> {
    let mut symbols = HashMap::new();
    let tensors = model
        .param_tensors
        .iter()
        .map(|t| (t, Role::Parameter))
        .chain(model.data_tensors.iter().map(|t| (t, Role::Data)))
        .chain(
            model
                .definition_tensors
                .iter()
                .map(|t| (t, Role::Intermediate)),
        );
    for (t, role) in tensors {
        symbols.insert(
            t.name.clone(),
            Symbol {
                role,
                shape: t.shape.clone(),
                ids: t.ids.clone(),
            },
        );
    }
    for (c, _) in &model.constants {
        symbols.insert(
            c.id.clone(),
            Symbol {
                role: Role::Constant,
                shape: vec![],
                ids: vec![c.id.clone()],
            },
        );
    }
    let loader = Loader {
        src: Source {
            path: "<expression>".into(),
            text: Arc::new(text.to_string()),
        },
        symbols,
        names: vec![],
        latex: HashMap::new(),
        bases: HashMap::new(),
        all_ids: HashSet::new(),
    };
    let value = Spanned::new(0..text.len(), text.to_string());
    loader.scalar_expr(&value, "the expression")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_literals_are_exact() {
        assert_eq!(parse_number("0.01"), Some(Rational::ratio(1, 100)));
        assert_eq!(parse_number("2.5e-3"), Some(Rational::ratio(1, 400)));
        assert_eq!(parse_number("1e3"), Some(Rational::int(1000)));
        assert_eq!(parse_number(".5"), Some(Rational::ratio(1, 2)));
        // Far beyond i128: 10⁻²³ and 40 significant digits stay exact.
        let tiny = parse_number("0.00000004875397277841432").unwrap();
        assert_eq!(tiny.to_string(), "609424659730179/12500000000000000000000");
        let long = parse_number("1234567890123456789012345678901234567890").unwrap();
        assert_eq!(long.to_string(), "1234567890123456789012345678901234567890");
        assert_eq!(parse_number("1e-400").unwrap().to_f64(), 0.0);
        assert_eq!(parse_number("1e99999"), None);
    }

    #[test]
    fn latex_names() {
        assert_eq!(default_latex("lambda"), "\\lambda");
        assert_eq!(default_latex("yhat"), "\\hat{y}");
        assert_eq!(default_latex("w"), "w");
        assert_eq!(default_latex("b_1"), "b_{1}");
        assert_eq!(default_latex("loss"), "\\mathrm{loss}");
    }
}
