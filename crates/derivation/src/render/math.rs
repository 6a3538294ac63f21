//! Printing one expression the way a teacher writes it, as LaTeX or as plain
//! text: positive terms first (`p − y`, not `−y + p`), a negative sign
//! absorbed into a difference (`p(1 − p)`, not `−p(−1 + p)`), coefficients
//! and intermediates before data, denominators as fractions, `σ`, `tanh`,
//! `e^{…}`, `√`.

use hessforge_spec::{Expr, Func, Model, Rational, Role};
use std::collections::HashMap;

/// Output flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// LaTeX math mode.
    Latex,
    /// Plain text for a terminal.
    Text,
}

/// How each id is displayed and what role it plays (for factor order).
pub(crate) struct Names {
    latex: HashMap<String, String>,
    /// Plain-text display where it is not the id (index-form stand-ins).
    text: HashMap<String, String>,
    role: HashMap<String, Role>,
    /// Position in the model: parameters, data, constants, intermediates.
    position: HashMap<String, usize>,
    /// Names written after every other factor (vectors and matrices in a
    /// vector form: p(1 − p) x xᵀ).
    trailing: std::collections::HashSet<String>,
}

impl Names {
    pub(crate) fn new(model: &Model) -> Names {
        let mut latex = HashMap::new();
        let mut role = HashMap::new();
        let mut position = HashMap::new();
        for (i, s) in model.scalars().enumerate() {
            latex.insert(s.id.clone(), s.latex.clone());
            role.insert(s.id.clone(), s.role);
            position.insert(s.id.clone(), i);
        }
        Names {
            latex,
            text: HashMap::new(),
            role,
            position,
            trailing: Default::default(),
        }
    }

    /// The names an index-form expression uses directly: the scalar
    /// tensors, and the first entry of each other tensor (which places the
    /// tensor among the rest). The same positions as [`Names::new`], at a
    /// cost that does not grow with the tensors' lengths.
    pub(crate) fn for_index_form(model: &Model) -> Names {
        let mut latex = HashMap::new();
        let mut role = HashMap::new();
        let mut position = HashMap::new();
        let mut at = 0;
        let groups = [
            model.param_tensors.as_slice(),
            model.data_tensors.as_slice(),
        ];
        // Scalars are stored tensor by tensor, row-major: a tensor's first
        // entry is at the running offset.
        let scalars = [model.params.as_slice(), model.data.as_slice()];
        for (tensors, scalars) in groups.into_iter().zip(scalars) {
            let mut offset = 0;
            for t in tensors {
                if let (Some(id), Some(s)) = (t.ids.first(), scalars.get(offset))
                    && s.id == *id
                {
                    latex.insert(id.clone(), s.latex.clone());
                    role.insert(id.clone(), s.role);
                    position.insert(id.clone(), at);
                }
                offset += t.ids.len();
                at += t.ids.len();
            }
        }
        for s in model
            .constants
            .iter()
            .map(|(s, _)| s)
            .chain(&model.definition_scalars)
            .filter(|s| s.index.iter().all(|&i| i == 1))
        {
            latex.insert(s.id.clone(), s.latex.clone());
            role.insert(s.id.clone(), s.role);
            position.insert(s.id.clone(), at);
            at += 1;
        }
        Names {
            latex,
            text: HashMap::new(),
            role,
            position,
            trailing: Default::default(),
        }
    }

    /// Every data and intermediate name written at sample i: `x^{(i)}`.
    pub(crate) fn at_sample_i(&mut self) {
        for (id, role) in &self.role {
            if matches!(role, Role::Data | Role::Intermediate)
                && let Some(l) = self.latex.get_mut(id)
            {
                *l = format!("{l}^{{(i)}}");
            }
        }
    }

    /// A name that is not a scalar of the model (an index-form entry `x_j`,
    /// a Kronecker delta, a sum), shown as given and ordered like `role` at
    /// `position`.
    pub(crate) fn add(
        &mut self,
        id: &str,
        latex: String,
        text: String,
        role: Role,
        position: usize,
    ) {
        self.latex.insert(id.to_string(), latex);
        self.text.insert(id.to_string(), text);
        self.role.insert(id.to_string(), role);
        self.position.insert(id.to_string(), position);
    }

    /// A name written after every other factor of a product.
    pub(crate) fn add_trailing(&mut self, id: &str, latex: String, text: String, position: usize) {
        self.add(id, latex, text, Role::Intermediate, position);
        self.trailing.insert(id.to_string());
    }

    /// Position of a model scalar, if it is one.
    pub(crate) fn position_of(&self, id: &str) -> Option<usize> {
        self.position.get(id).copied()
    }

    /// A name in the given style.
    pub(crate) fn show(&self, id: &str, style: Style) -> String {
        match style {
            Style::Latex => self
                .latex
                .get(id)
                .cloned()
                .unwrap_or_else(|| id.to_string()),
            Style::Text => self.text.get(id).cloned().unwrap_or_else(|| id.to_string()),
        }
    }

    fn rank(&self, e: &Expr) -> u8 {
        match e {
            Expr::Num(_) => 0,
            Expr::Var(v) if self.trailing.contains(v) => 7,
            Expr::Var(v) => match self.role.get(v) {
                Some(Role::Constant) => 1,
                Some(Role::Intermediate) => 2,
                Some(Role::Parameter) => 3,
                Some(Role::Data) => 5,
                None => 3,
            },
            Expr::Pow(b, _) => self.rank(b),
            Expr::Add(_) | Expr::Mul(_) => 4,
            Expr::Call(..) => 6,
        }
    }
}

fn is_negative(r: &Rational) -> bool {
    r.is_negative()
}

/// The numeric coefficient of a product (1 if none) and the other factors.
fn split_coefficient(e: &Expr) -> (Rational, Vec<Expr>) {
    match e {
        Expr::Num(r) => (r.clone(), vec![]),
        Expr::Mul(xs) => {
            // Most products have one number: it is taken as it is (a
            // product of long exact numbers is reduced by a gcd).
            let mut c: Option<Rational> = None;
            let mut rest = Vec::new();
            for x in xs {
                match x {
                    Expr::Num(r) => {
                        c = Some(match c {
                            None => r.clone(),
                            Some(c) => &c * r,
                        });
                    }
                    other => rest.push(other.clone()),
                }
            }
            (c.unwrap_or_else(|| Rational::int(1)), rest)
        }
        other => (Rational::int(1), vec![other.clone()]),
    }
}

fn negate(e: &Expr) -> Expr {
    let (c, rest) = split_coefficient(e);
    rebuild(-&c, rest)
}

fn rebuild(c: Rational, mut rest: Vec<Expr>) -> Expr {
    if rest.is_empty() {
        return Expr::Num(c);
    }
    if c != Rational::int(1) {
        rest.insert(0, Expr::Num(c));
    }
    if rest.len() == 1 {
        rest.pop().expect("one factor")
    } else {
        Expr::Mul(rest)
    }
}

/// A term's sign for display: a negative coefficient.
fn term_is_negative(e: &Expr) -> bool {
    is_negative(&split_coefficient(e).0)
}

/// A stable order of terms and factors, independent of the CAS's internal
/// symbol order: by the model positions of the variables involved (so
/// `w_1 x_1 + … + w_10 x_10 + b`), then smaller first, then by text.
fn sort_key(e: &Expr, names: &Names) -> (Vec<usize>, usize, String) {
    let positions: Vec<usize> = e
        .free_vars()
        .iter()
        .map(|v| names.position.get(v).copied().unwrap_or(usize::MAX))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    (positions, size(e), e.to_input_syntax())
}

/// The terms of a sum raised to an odd integer power (including 1).
fn odd_power_sum(f: &Expr) -> Option<&[Expr]> {
    match f {
        Expr::Add(terms) => Some(terms),
        Expr::Pow(b, x) => match (&**b, &**x) {
            (Expr::Add(terms), Expr::Num(r)) if r.is_odd_integer() => Some(terms),
            _ => None,
        },
        _ => None,
    }
}

/// The factor with its sum negated: (a − b)ⁿ → (b − a)ⁿ for odd n, which
/// changes the sign of the product.
fn flip(f: &Expr, names: &Names) -> Expr {
    let negated = |terms: &[Expr]| tidy(&Expr::Add(terms.iter().map(negate).collect()), names);
    match f {
        Expr::Add(terms) => negated(terms),
        Expr::Pow(b, x) => match &**b {
            Expr::Add(terms) => Expr::Pow(Box::new(negated(terms)), x.clone()),
            _ => f.clone(),
        },
        _ => f.clone(),
    }
}

/// Normalise signs and order for display (mathematically the same value).
pub(crate) fn tidy(e: &Expr, names: &Names) -> Expr {
    match e {
        Expr::Num(_) | Expr::Var(_) => e.clone(),
        Expr::Call(f, a) => Expr::Call(*f, Box::new(tidy(a, names))),
        // (a·b)ⁿ = aⁿ·bⁿ for an integer n, so that signs and fractions of the
        // factors can be tidied one by one.
        Expr::Pow(b, x) => match (&**b, &**x) {
            (Expr::Mul(factors), Expr::Num(r)) if r.is_integer() => tidy(
                &Expr::Mul(
                    factors
                        .iter()
                        .map(|f| Expr::Pow(Box::new(f.clone()), x.clone()))
                        .collect(),
                ),
                names,
            ),
            _ => Expr::Pow(Box::new(tidy(b, names)), Box::new(tidy(x, names))),
        },
        Expr::Add(xs) => {
            let mut terms: Vec<Expr> = xs.iter().map(|x| tidy(x, names)).collect();
            // Positive terms first, otherwise keep the CAS's order.
            // (and then by their text, so that the CAS's internal symbol
            // order, which depends on what it saw before, never shows).
            terms.sort_by_cached_key(|t| (term_is_negative(t), sort_key(t, names)));
            Expr::Add(terms)
        }
        Expr::Mul(_) => {
            // Tidy the factors, flattening products that appear inside.
            let mut flat = Vec::new();
            if let Expr::Mul(xs) = e {
                for x in xs {
                    match tidy(x, names) {
                        Expr::Mul(inner) => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
            }
            let (mut c, mut factors) = split_coefficient(&Expr::Mul(flat));
            // A difference is written with its constant first and positive,
            // as in 1 − p (not p − 1): flip such factors, moving the sign
            // into the coefficient...
            for f in factors.iter_mut() {
                let Some(terms) = odd_power_sum(f) else {
                    continue;
                };
                let negative_constant = terms
                    .iter()
                    .any(|t| matches!(t, Expr::Num(r) if r.is_negative()));
                if negative_constant && terms.len() > 1 {
                    *f = flip(f, names);
                    c = -&c;
                }
            }
            // ...then a negative coefficient is absorbed into a difference with
            // mostly negative terms: −(y − p) = (p − y).
            // (A difference with a constant, just written 1 − p, stays so.)
            if is_negative(&c)
                && let Some(f) = factors.iter_mut().find(|f| {
                    odd_power_sum(f).is_some_and(|terms| {
                        let negatives = terms.iter().filter(|t| term_is_negative(t)).count();
                        let constant = terms.iter().any(|t| matches!(t, Expr::Num(_)));
                        negatives * 2 >= terms.len() && !constant
                    })
                })
            {
                *f = flip(f, names);
                c = -&c;
            }
            factors.sort_by_cached_key(|f| (names.rank(f), sort_key(f, names)));
            rebuild(c, factors)
        }
    }
}

/// The printer.
pub(crate) struct Printer<'a> {
    pub(crate) names: &'a Names,
    pub(crate) style: Style,
}

// Precedence levels of the context an expression is printed in.
const TOP: u8 = 0;
const SUM: u8 = 1;
const PRODUCT: u8 = 2;
const POWER: u8 = 3;

impl Printer<'_> {
    /// Print an (already tidied) expression.
    pub(crate) fn print(&self, e: &Expr) -> String {
        self.at(e, TOP)
    }

    /// Top-level terms of a sum, each with its sign ("+ a", "- b"), for
    /// breaking long equations; the first without a leading "+".
    pub(crate) fn terms(&self, e: &Expr) -> Vec<String> {
        match e {
            Expr::Add(xs) if xs.len() > 1 => xs
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if term_is_negative(t) {
                        format!("- {}", self.at(&negate(t), PRODUCT))
                    } else if i == 0 {
                        self.at(t, SUM)
                    } else {
                        format!("+ {}", self.at(t, SUM))
                    }
                })
                .collect(),
            other => vec![self.print(other)],
        }
    }

    fn paren(&self, s: String) -> String {
        match self.style {
            Style::Latex => format!("\\left({s}\\right)"),
            Style::Text => format!("({s})"),
        }
    }

    fn number(&self, r: &Rational) -> String {
        match (self.style, r.is_integer()) {
            (_, true) => r.to_string(),
            (Style::Latex, false) => {
                let sign = if r.is_negative() { "-" } else { "" };
                let r = r.abs();
                format!("{sign}\\frac{{{}}}{{{}}}", r.numer(), r.denom())
            }
            (Style::Text, false) => r.to_string(),
        }
    }

    fn at(&self, e: &Expr, ctx: u8) -> String {
        match e {
            Expr::Num(r) => {
                let s = self.number(r);
                if (r.is_negative() && ctx >= SUM) || (!r.is_integer() && ctx >= POWER) {
                    self.paren(s)
                } else {
                    s
                }
            }
            Expr::Var(v) => self.names.show(v, self.style),
            Expr::Add(xs) => {
                let mut s = String::new();
                for (i, t) in xs.iter().enumerate() {
                    if term_is_negative(t) {
                        s.push_str(if i == 0 { "-" } else { " - " });
                        s.push_str(&self.at(&negate(t), PRODUCT));
                    } else {
                        if i > 0 {
                            s.push_str(" + ");
                        }
                        s.push_str(&self.at(t, SUM));
                    }
                }
                if ctx >= PRODUCT { self.paren(s) } else { s }
            }
            Expr::Mul(_) => self.product(e, ctx),
            Expr::Pow(b, x) => self.power(b, x, ctx),
            Expr::Call(f, a) => self.call(*f, a),
        }
    }

    /// Numerator factors and denominator factors (with positive exponents).
    fn fraction_parts(factors: &[Expr]) -> (Vec<Expr>, Vec<Expr>) {
        let mut num = Vec::new();
        let mut den = Vec::new();
        for f in factors {
            match f {
                Expr::Pow(b, x) => match &**x {
                    Expr::Num(r) if r.is_negative() => {
                        let positive = -r;
                        if positive.is(1, 1) {
                            den.push((**b).clone());
                        } else {
                            den.push(Expr::Pow(b.clone(), Box::new(Expr::Num(positive))));
                        }
                    }
                    _ => num.push(f.clone()),
                },
                other => num.push(other.clone()),
            }
        }
        (num, den)
    }

    fn juxtapose(&self, factors: &[Expr]) -> String {
        let parts: Vec<String> = factors.iter().map(|f| self.at(f, PRODUCT)).collect();
        match self.style {
            Style::Latex => {
                let mut s = String::new();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        // A number after something needs an explicit product sign.
                        let next_is_digit = p.starts_with(|c: char| c.is_ascii_digit());
                        s.push_str(if next_is_digit { " \\cdot " } else { " \\, " });
                    }
                    s.push_str(p);
                }
                s
            }
            Style::Text => parts.join("·"),
        }
    }

    fn product(&self, e: &Expr, ctx: u8) -> String {
        let (c, factors) = split_coefficient(e);
        let (num, den) = Self::fraction_parts(&factors);
        let negative = c.is_negative();
        let c_abs = c.abs();
        let body = if den.is_empty() && c_abs.is_integer() {
            let mut parts = Vec::new();
            if !c_abs.is(1, 1) || num.is_empty() {
                parts.push(Expr::Num(c_abs));
            }
            parts.extend(num);
            self.juxtapose(&parts)
        } else {
            let mut top = Vec::new();
            if !c_abs.numerator().is(1, 1) {
                top.push(Expr::Num(c_abs.numerator()));
            }
            top.extend(num);
            let mut bottom = Vec::new();
            if !c_abs.is_integer() {
                bottom.push(Expr::Num(c_abs.denominator()));
            }
            bottom.extend(den);
            let top_s = if top.is_empty() {
                "1".to_string()
            } else {
                self.fraction_part(&top)
            };
            let bottom_s = self.fraction_part(&bottom);
            match self.style {
                Style::Latex => format!("\\frac{{{top_s}}}{{{bottom_s}}}"),
                Style::Text => format!("{top_s}/{bottom_s}"),
            }
        };
        if negative {
            let s = format!("-{body}");
            if ctx >= SUM { self.paren(s) } else { s }
        } else if ctx >= POWER {
            self.paren(body)
        } else {
            body
        }
    }

    /// Numerator or denominator of a fraction. In LaTeX a lone sum needs no
    /// parentheses; in text, anything but a single atom is parenthesised.
    fn fraction_part(&self, factors: &[Expr]) -> String {
        match (self.style, factors) {
            (Style::Latex, [single]) => self.at(single, SUM),
            (Style::Latex, _) => self.juxtapose(factors),
            (Style::Text, [single @ Expr::Add(_)]) => self.at(single, PRODUCT),
            (Style::Text, [single]) => self.at(single, POWER),
            (Style::Text, _) => format!("({})", self.juxtapose(factors)),
        }
    }

    fn power(&self, b: &Expr, x: &Expr, ctx: u8) -> String {
        if let Expr::Num(r) = x {
            if r.is_negative() {
                // A lone negative power is a fraction.
                return self.product(
                    &Expr::Mul(vec![Expr::Pow(Box::new(b.clone()), Box::new(x.clone()))]),
                    ctx,
                );
            }
            if r.is(1, 2) {
                return match self.style {
                    Style::Latex => format!("\\sqrt{{{}}}", self.at(b, TOP)),
                    Style::Text => format!("sqrt({})", self.at(b, TOP)),
                };
            }
        }
        let base = match b {
            Expr::Var(_) => self.at(b, POWER),
            Expr::Call(Func::Exp, _) => self.paren(self.at(b, TOP)),
            Expr::Call(..) => self.at(b, TOP),
            _ => self.paren(self.at(b, TOP)),
        };
        let exp = self.at(
            x,
            match self.style {
                Style::Latex => TOP,
                Style::Text => POWER,
            },
        );
        let s = match self.style {
            Style::Latex => format!("{base}^{{{exp}}}"),
            Style::Text => format!("{base}^{exp}"),
        };
        if ctx > POWER { self.paren(s) } else { s }
    }

    fn call(&self, f: Func, a: &Expr) -> String {
        let arg = self.at(a, TOP);
        let simple = matches!(a, Expr::Var(_) | Expr::Num(_));
        match self.style {
            Style::Text => format!("{}({arg})", f.info().text),
            Style::Latex => {
                let wrap = |s: &str| {
                    if simple {
                        format!("({s})")
                    } else {
                        format!("\\left({s}\\right)")
                    }
                };
                match f {
                    Func::Exp if arg.len() <= 24 => format!("e^{{{arg}}}"),
                    Func::Sqrt => format!("\\sqrt{{{arg}}}"),
                    Func::Abs => format!("\\left|{arg}\\right|"),
                    _ => format!("{}{}", f.info().latex, wrap(&arg)),
                }
            }
        }
    }
}

/// The number of nodes of an expression tree.
fn size(e: &Expr) -> usize {
    match e {
        Expr::Num(_) | Expr::Var(_) => 1,
        Expr::Add(xs) | Expr::Mul(xs) => 1 + xs.iter().map(size).sum::<usize>(),
        Expr::Pow(a, b) => 1 + size(a) + size(b),
        Expr::Call(_, a) => 1 + size(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Expr {
        Expr::Var(s.into())
    }

    fn names() -> Names {
        let model = hessforge_spec::load_str(
            "t.toml",
            r#"
name = "t"
title = "t"
description = "t"
loss = "p + y + x + lambda * w"
[parameters]
w = {}
[data]
x = {}
y = {}
[constants]
lambda = 1
[[define]]
name = "p"
expr = "sigmoid(w)"
"#,
        )
        .unwrap();
        Names::new(&model)
    }

    fn both(e: &Expr) -> (String, String) {
        let n = names();
        let t = tidy(e, &n);
        (
            Printer {
                names: &n,
                style: Style::Latex,
            }
            .print(&t),
            Printer {
                names: &n,
                style: Style::Text,
            }
            .print(&t),
        )
    }

    #[test]
    fn a_teacher_writes_p_one_minus_p() {
        // (-1)*x*p*(-1+p)
        let e = Expr::Mul(vec![
            Expr::int(-1),
            v("x"),
            v("p"),
            Expr::Add(vec![Expr::int(-1), v("p")]),
        ]);
        assert_eq!(
            both(&e),
            (
                "p \\, \\left(1 - p\\right) \\, x".into(),
                "p·(1 - p)·x".into()
            )
        );
    }

    #[test]
    fn the_derivative_of_cross_entropy_in_p() {
        // (y − p) / (p (p − 1)) is written (p − y) / (p (1 − p)).
        let e = Expr::Mul(vec![
            Expr::Add(vec![v("y"), Expr::Mul(vec![Expr::int(-1), v("p")])]),
            Expr::Pow(Box::new(v("p")), Box::new(Expr::int(-1))),
            Expr::Pow(
                Box::new(Expr::Add(vec![Expr::int(-1), v("p")])),
                Box::new(Expr::int(-1)),
            ),
        ]);
        assert_eq!(both(&e).1, "(p - y)/(p·(1 - p))");
        // The order the CAS happens to use must not matter: (y − p)/(p (−1 + p)).
        let e = Expr::Mul(vec![
            Expr::Pow(Box::new(v("p")), Box::new(Expr::int(-1))),
            Expr::Pow(
                Box::new(Expr::Add(vec![Expr::int(-1), v("p")])),
                Box::new(Expr::int(-1)),
            ),
            Expr::Add(vec![v("y"), Expr::Mul(vec![Expr::int(-1), v("p")])]),
        ]);
        assert_eq!(both(&e).1, "(p - y)/(p·(1 - p))");
        // The same over a common denominator: (y − p) · (p (p − 1))⁻¹.
        let e = Expr::Mul(vec![
            Expr::Add(vec![v("y"), Expr::Mul(vec![Expr::int(-1), v("p")])]),
            Expr::Pow(
                Box::new(Expr::Mul(vec![
                    v("p"),
                    Expr::Add(vec![Expr::int(-1), v("p")]),
                ])),
                Box::new(Expr::int(-1)),
            ),
        ]);
        assert_eq!(both(&e).1, "(p - y)/(p·(1 - p))");
    }

    #[test]
    fn prediction_minus_target() {
        let e = Expr::Mul(vec![
            v("x"),
            Expr::Add(vec![Expr::Mul(vec![Expr::int(-1), v("y")]), v("p")]),
        ]);
        assert_eq!(both(&e).1, "(p - y)·x");
    }

    #[test]
    fn fractions_and_powers() {
        let e = Expr::Mul(vec![
            Expr::Num(Rational::ratio(1, 2)),
            v("lambda"),
            Expr::Pow(Box::new(v("w")), Box::new(Expr::int(2))),
        ]);
        assert_eq!(
            both(&e),
            (
                "\\frac{\\lambda \\, w^{2}}{2}".into(),
                "(lambda·w^2)/2".into()
            )
        );
        let e = Expr::Mul(vec![
            v("y"),
            Expr::Pow(Box::new(v("p")), Box::new(Expr::int(-1))),
        ]);
        assert_eq!(both(&e), ("\\frac{y}{p}".into(), "y/p".into()));
    }

    #[test]
    fn a_subtracted_sum_keeps_its_parentheses() {
        // log(p) - (x + y)
        let e = Expr::Add(vec![
            Expr::Call(Func::Log, Box::new(v("p"))),
            Expr::Mul(vec![Expr::int(-1), Expr::Add(vec![v("x"), v("y")])]),
        ]);
        assert_eq!(both(&e).1, "log(p) - (x + y)");
    }

    #[test]
    fn functions() {
        let e = Expr::Call(Func::Sigmoid, Box::new(v("x")));
        assert_eq!(both(&e), ("\\sigma(x)".into(), "σ(x)".into()));
        let e = Expr::Call(Func::Exp, Box::new(Expr::Mul(vec![Expr::int(-1), v("x")])));
        assert_eq!(both(&e).0, "e^{-x}");
    }
}
