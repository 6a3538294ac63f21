//! The expression language of derivation files: tokens, a precedence-climbing
//! parser, and the syntax tree with byte spans into the expression string.
//!
//! Grammar (lowest to highest precedence):
//!
//! ```text
//! expr    := term (('+' | '-') term)*
//! term    := unary (('*' | '/' | '@') unary)*    `@`: matrix product
//! unary   := '-' unary | power
//! power   := postfix ('^' unary)?              right-associative, -x^2 = -(x^2)
//! postfix := primary ('[' index (',' index)* ']')?
//! index   := integer | identifier | ':'
//! primary := number | identifier | identifier '(' args ')' | '(' expr ')'
//!          | '[' expr (',' expr)* ']'           vector literal
//! args    := arg (',' arg)*
//! arg     := identifier '=' integer '..' integer   (a range, only in sum)
//!          | expr
//! ```

use std::fmt;

/// A half-open byte range into the expression string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    fn join(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A binary operator of the surface syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*` (element-wise on vectors)
    Mul,
    /// `/` (element-wise on vectors)
    Div,
    /// `^`
    Pow,
    /// `@`: matrix × vector, vector × matrix or matrix × matrix
    MatMul,
}

/// One index in `name[...]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Index {
    /// A 1-based literal position.
    Fixed(usize),
    /// An index variable bound by `sum(j = a..b, ...)` or a `for` definition.
    Var(String),
    /// `:` — the whole axis (a slice).
    All,
}

/// A node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Ast {
    /// What the node is.
    pub kind: AstKind,
    /// Where it is in the expression string.
    pub span: Span,
}

/// The kinds of syntax-tree nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum AstKind {
    /// A numeric literal, kept as written so decimals stay exact.
    Number(String),
    /// A name: parameter, data field, constant or definition.
    Name(String),
    /// `name[i, j]`
    Indexed {
        /// The tensor's name.
        name: String,
        /// Span of the name alone.
        name_span: Span,
        /// One entry per axis.
        indices: Vec<(Index, Span)>,
    },
    /// `-a`
    Neg(Box<Ast>),
    /// `a op b`
    Binary(BinOp, Box<Ast>, Box<Ast>),
    /// `f(a, b, ...)`
    Call {
        /// Function name as written.
        name: String,
        /// Span of the function name.
        name_span: Span,
        /// The arguments.
        args: Vec<Ast>,
    },
    /// `sum(j = 1..10, body)`
    Sum {
        /// The bound index variable.
        var: String,
        /// First value (inclusive).
        from: usize,
        /// Last value (inclusive).
        to: usize,
        /// The summand.
        body: Box<Ast>,
    },
    /// `[a, b, c]`
    Vector(Vec<Ast>),
}

/// A syntax error inside one expression string.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// What went wrong.
    pub message: String,
    /// Where, in the expression string.
    pub span: Span,
    /// How to fix it.
    pub help: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Ident(String),
    Op(char),
    DotDot,
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => write!(f, "number `{n}`"),
            Tok::Ident(n) => write!(f, "name `{n}`"),
            Tok::Op(c) => write!(f, "`{c}`"),
            Tok::DotDot => write!(f, "`..`"),
            Tok::End => write!(f, "end of expression"),
        }
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, Span)>, SyntaxError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            // A decimal point, but not the start of a `..` range.
            if i < bytes.len() && bytes[i] == b'.' && bytes.get(i + 1) != Some(&b'.') {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    i = j;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            out.push((Tok::Num(src[start..i].to_string()), Span { start, end: i }));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((
                Tok::Ident(src[start..i].to_string()),
                Span { start, end: i },
            ));
            continue;
        }
        if c == b'.' && bytes.get(i + 1) == Some(&b'.') {
            out.push((Tok::DotDot, Span { start, end: i + 2 }));
            i += 2;
            continue;
        }
        if b"+-*/^()[],:=@".contains(&c) {
            out.push((Tok::Op(c as char), Span { start, end: i + 1 }));
            i += 1;
            continue;
        }
        let ch = src[i..].chars().next().unwrap_or('?');
        let hint = match ch {
            '·' | '×' => {
                "write products with `*`, dot products with `dot(a, b)` and matrix products with `W @ x`"
            }
            '−' => "use the ASCII minus sign `-`",
            '*' => "",
            _ => "expressions use + - * / ^, parentheses, names, numbers and function calls",
        };
        return Err(SyntaxError {
            message: format!("unexpected character `{ch}`"),
            span: Span {
                start,
                end: i + ch.len_utf8(),
            },
            help: hint.to_string(),
        });
    }
    out.push((
        Tok::End,
        Span {
            start: src.len(),
            end: src.len(),
        },
    ));
    Ok(out)
}

/// The hint for two terms written side by side (`W x`, `w x`, `2(a + b)`).
const JUXTAPOSITION: &str = "two terms side by side are not a product: write `a * b` for numbers, \
                             `W @ x` for a matrix times a vector, `dot(w, x)` for an inner product";

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
}

/// Parse one expression string.
pub fn parse(src: &str) -> Result<Ast, SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0 };
    let ast = p.expr()?;
    match p.peek() {
        Tok::End => Ok(ast),
        tok => Err(SyntaxError {
            message: format!("expected an operator or the end of the expression, found {tok}"),
            span: p.span(),
            help: if matches!(tok, Tok::Ident(_) | Tok::Op('(')) {
                JUXTAPOSITION.into()
            } else {
                "an operator such as `*` may be missing between two terms".into()
            },
        }),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn span(&self) -> Span {
        self.toks[self.pos].1
    }
    fn bump(&mut self) -> (Tok, Span) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn expect(&mut self, c: char, what: &str) -> Result<Span, SyntaxError> {
        if *self.peek() == Tok::Op(c) {
            Ok(self.bump().1)
        } else {
            Err(SyntaxError {
                message: format!("expected `{c}` {what}, found {}", self.peek()),
                span: self.span(),
                help: if matches!(self.peek(), Tok::Ident(_) | Tok::Op('(')) {
                    JUXTAPOSITION.into()
                } else {
                    format!("insert `{c}`")
                },
            })
        }
    }

    fn expr(&mut self) -> Result<Ast, SyntaxError> {
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek() {
                Tok::Op('+') => BinOp::Add,
                Tok::Op('-') => BinOp::Sub,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.term()?;
            lhs = binary(op, lhs, rhs);
        }
    }

    fn term(&mut self) -> Result<Ast, SyntaxError> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Op('*') => BinOp::Mul,
                Tok::Op('/') => BinOp::Div,
                Tok::Op('@') => BinOp::MatMul,
                _ => return Ok(lhs),
            };
            let (_, at) = self.bump();
            if op == BinOp::Mul && *self.peek() == Tok::Op('*') {
                return Err(SyntaxError {
                    message: "`**` is not an operator here".into(),
                    span: at.join(self.span()),
                    help: "powers are written `^`: `(yhat - y)^2`".into(),
                });
            }
            let rhs = self.unary()?;
            lhs = binary(op, lhs, rhs);
        }
    }

    fn unary(&mut self) -> Result<Ast, SyntaxError> {
        if *self.peek() == Tok::Op('-') {
            let (_, span) = self.bump();
            let inner = self.unary()?;
            let span = span.join(inner.span);
            return Ok(Ast {
                kind: AstKind::Neg(Box::new(inner)),
                span,
            });
        }
        if *self.peek() == Tok::Op('+') {
            self.bump();
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Result<Ast, SyntaxError> {
        let base = self.postfix()?;
        if *self.peek() == Tok::Op('^') {
            let (_, at) = self.bump();
            if *self.peek() == Tok::Ident("T".into())
                && matches!(
                    self.toks.get(self.pos + 1).map(|t| &t.0),
                    Some(Tok::Ident(_) | Tok::Op('(' | '['))
                )
            {
                return Err(SyntaxError {
                    message: "`^T` is not a transpose, and writing two vectors side by side is not a product".into(),
                    span: at.join(self.span()),
                    help: "write the inner product as `dot(w, x)`, a matrix times a vector as `W @ x`".into(),
                });
            }
            let exp = self.unary()?;
            return Ok(binary(BinOp::Pow, base, exp));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Ast, SyntaxError> {
        let prim = self.primary()?;
        if *self.peek() != Tok::Op('[') {
            return Ok(prim);
        }
        let AstKind::Name(name) = &prim.kind else {
            return Err(SyntaxError {
                message: "only a named vector or matrix can be indexed".into(),
                span: self.span(),
                help: "index a parameter, data field or definition, e.g. `w[1]` or `W[i, :]`"
                    .into(),
            });
        };
        let name = name.clone();
        self.bump();
        let mut indices = Vec::new();
        loop {
            let (tok, span) = self.bump();
            let index = match tok {
                Tok::Num(n) => match n.parse::<usize>() {
                    Ok(k) => Index::Fixed(k),
                    Err(_) => {
                        return Err(SyntaxError {
                            message: format!("index `{n}` is not a whole number"),
                            span,
                            help: "indices are 1-based whole numbers, index variables or `:`"
                                .into(),
                        });
                    }
                },
                Tok::Ident(v) => Index::Var(v),
                Tok::Op(':') => Index::All,
                other => {
                    return Err(SyntaxError {
                        message: format!("expected an index, found {other}"),
                        span,
                        help: "indices are 1-based whole numbers, index variables or `:`".into(),
                    });
                }
            };
            indices.push((index, span));
            match self.bump() {
                (Tok::Op(','), _) => continue,
                (Tok::Op(']'), end) => {
                    return Ok(Ast {
                        kind: AstKind::Indexed {
                            name,
                            name_span: prim.span,
                            indices,
                        },
                        span: prim.span.join(end),
                    });
                }
                (other, span) => {
                    return Err(SyntaxError {
                        message: format!("expected `,` or `]` in an index list, found {other}"),
                        span,
                        help: "close the index list with `]`".into(),
                    });
                }
            }
        }
    }

    fn primary(&mut self) -> Result<Ast, SyntaxError> {
        let (tok, span) = self.bump();
        match tok {
            Tok::Num(n) => Ok(Ast {
                kind: AstKind::Number(n),
                span,
            }),
            Tok::Ident(name) => {
                if *self.peek() == Tok::Op('(') {
                    self.bump();
                    self.call(name, span)
                } else {
                    Ok(Ast {
                        kind: AstKind::Name(name),
                        span,
                    })
                }
            }
            Tok::Op('(') => {
                let inner = self.expr()?;
                let end = self.expect(')', "to close the parenthesis")?;
                Ok(Ast {
                    kind: inner.kind,
                    span: span.join(end),
                })
            }
            Tok::Op('[') => {
                let mut items = vec![self.expr()?];
                while *self.peek() == Tok::Op(',') {
                    self.bump();
                    items.push(self.expr()?);
                }
                let end = self.expect(']', "to close the vector literal")?;
                Ok(Ast {
                    kind: AstKind::Vector(items),
                    span: span.join(end),
                })
            }
            Tok::End => Err(SyntaxError {
                message: "the expression ends where a value was expected".into(),
                span,
                help: "complete the expression after the last operator".into(),
            }),
            other => Err(SyntaxError {
                message: format!("expected a number, a name or `(`, found {other}"),
                span,
                help: "check for a doubled operator or a missing operand".into(),
            }),
        }
    }

    fn call(&mut self, name: String, name_span: Span) -> Result<Ast, SyntaxError> {
        if name == "sum" && matches!(self.toks.get(self.pos + 1), Some((Tok::Op('='), _))) {
            return self.indexed_sum(name_span);
        }
        let mut args = Vec::new();
        if *self.peek() != Tok::Op(')') {
            args.push(self.expr()?);
            while *self.peek() == Tok::Op(',') {
                self.bump();
                args.push(self.expr()?);
            }
        }
        let end = self.expect(')', &format!("to close the call of `{name}`"))?;
        Ok(Ast {
            kind: AstKind::Call {
                name,
                name_span,
                args,
            },
            span: name_span.join(end),
        })
    }

    fn indexed_sum(&mut self, name_span: Span) -> Result<Ast, SyntaxError> {
        let (var, var_span) = match self.bump() {
            (Tok::Ident(v), s) => (v, s),
            (other, span) => {
                return Err(SyntaxError {
                    message: format!("expected an index variable, found {other}"),
                    span,
                    help: "write `sum(j = 1..10, w[j] * x[j])`".into(),
                });
            }
        };
        self.expect('=', "after the index variable")?;
        let (from, to) = self.range()?;
        self.expect(',', "between the range and the summand")?;
        let body = self.expr()?;
        let end = self.expect(')', "to close the sum")?;
        if from > to {
            return Err(SyntaxError {
                message: format!("the range {from}..{to} of `{var}` is empty"),
                span: var_span.join(end),
                help: "ranges are inclusive and 1-based: `1..10`".into(),
            });
        }
        Ok(Ast {
            kind: AstKind::Sum {
                var,
                from,
                to,
                body: Box::new(body),
            },
            span: name_span.join(end),
        })
    }

    /// `a..b` with whole numbers, inclusive.
    fn range(&mut self) -> Result<(usize, usize), SyntaxError> {
        let from = self.whole_number()?;
        match self.bump() {
            (Tok::DotDot, _) => {}
            (other, span) => {
                return Err(SyntaxError {
                    message: format!("expected `..` in a range, found {other}"),
                    span,
                    help: "write an inclusive range as `1..10`".into(),
                });
            }
        }
        let to = self.whole_number()?;
        Ok((from, to))
    }

    fn whole_number(&mut self) -> Result<usize, SyntaxError> {
        match self.bump() {
            (Tok::Num(n), span) => n.parse::<usize>().map_err(|_| SyntaxError {
                message: format!("`{n}` is not a whole number"),
                span,
                help: "range bounds are whole numbers, e.g. `1..10`".into(),
            }),
            (other, span) => Err(SyntaxError {
                message: format!("expected a whole number, found {other}"),
                span,
                help: "range bounds are whole numbers, e.g. `1..10`".into(),
            }),
        }
    }
}

/// Parse an index range such as `i = 1..4` (used by `for` in definitions).
pub fn parse_range(src: &str) -> Result<(String, usize, usize, Span), SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0 };
    let (var, span) = match p.bump() {
        (Tok::Ident(v), s) => (v, s),
        (other, span) => {
            return Err(SyntaxError {
                message: format!("expected an index variable, found {other}"),
                span,
                help: "write `for = \"i = 1..4\"`".into(),
            });
        }
    };
    p.expect('=', "after the index variable")?;
    let (from, to) = p.range()?;
    if *p.peek() != Tok::End {
        return Err(SyntaxError {
            message: format!("unexpected {} after the range", p.peek()),
            span: p.span(),
            help: "write `for = \"i = 1..4\"`".into(),
        });
    }
    if from > to || from == 0 {
        return Err(SyntaxError {
            message: format!("the range {from}..{to} is empty or not 1-based"),
            span,
            help: "ranges are inclusive and 1-based: `1..4`".into(),
        });
    }
    Ok((var, from, to, span))
}

fn binary(op: BinOp, lhs: Ast, rhs: Ast) -> Ast {
    let span = lhs.span.join(rhs.span);
    Ast {
        kind: AstKind::Binary(op, Box::new(lhs), Box::new(rhs)),
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(src: &str) -> String {
        fn go(a: &Ast) -> String {
            match &a.kind {
                AstKind::Number(n) => n.clone(),
                AstKind::Name(n) => n.clone(),
                AstKind::Indexed { name, indices, .. } => format!("{name}[{}]", indices.len()),
                AstKind::Neg(x) => format!("(-{})", go(x)),
                AstKind::Binary(op, l, r) => format!("({} {op:?} {})", go(l), go(r)),
                AstKind::Call { name, args, .. } => {
                    let a: Vec<_> = args.iter().map(go).collect();
                    format!("{name}({})", a.join(","))
                }
                AstKind::Sum {
                    var,
                    from,
                    to,
                    body,
                } => {
                    format!("sum({var}={from}..{to},{})", go(body))
                }
                AstKind::Vector(items) => {
                    let a: Vec<_> = items.iter().map(go).collect();
                    format!("[{}]", a.join(","))
                }
            }
        }
        go(&parse(src).unwrap())
    }

    #[test]
    fn precedence_table() {
        assert_eq!(shape("a + b * c"), "(a Add (b Mul c))");
        assert_eq!(shape("-x^2"), "(-(x Pow 2))");
        assert_eq!(shape("a^b^c"), "(a Pow (b Pow c))");
        assert_eq!(shape("a - b - c"), "((a Sub b) Sub c)");
        assert_eq!(shape("a / b * c"), "((a Div b) Mul c)");
        assert_eq!(shape("2^-x"), "(2 Pow (-x))");
        assert_eq!(
            shape("sum(j = 1..10, w[j]*x[j])"),
            "sum(j=1..10,(w[1] Mul x[1]))"
        );
        assert_eq!(shape("dot(W[i,:], x)"), "dot(W[2],x)");
        assert_eq!(shape("[1, 2.5e-3, x]"), "[1,2.5e-3,x]");
        assert_eq!(shape("1.5 + .5"), "(1.5 Add .5)");
    }

    #[test]
    fn errors_point_at_the_offence() {
        let e = parse("a + * b").unwrap_err();
        assert_eq!(e.span, Span { start: 4, end: 5 });
        let e = parse("(a + b").unwrap_err();
        assert!(e.message.contains("`)`"), "{}", e.message);
        let e = parse("a b").unwrap_err();
        assert_eq!(e.span, Span { start: 2, end: 3 });
        let e = parse("a · b").unwrap_err();
        assert!(e.help.contains("dot"));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("i = 1..4").unwrap().0, "i");
        assert!(parse_range("i = 4..1").is_err());
        assert!(parse_range("i = 0..3").is_err());
    }
}
