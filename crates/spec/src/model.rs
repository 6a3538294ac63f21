//! The validated model: every tensor expanded into named scalars, and its
//! expressions as plain scalar [`Expr`] trees ([`ScalarForm`], built the
//! first time they are asked for) beside the index form. This is what the
//! symbolic engine, the renderers and the code generator consume.

use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};

pub use hessforge_ir::Func;

/// An exact rational number of any size, always in lowest terms with a
/// positive denominator. Decimals in a derivation file are kept exact
/// (`0.1957` is 1957/10000, `4.875e-23` has a denominator of 10²⁶), and the
/// CAS may produce rationals of hundreds of digits: no size is too large.
/// Code generation and the interpreter use [`Rational::to_f64`], the nearest
/// double.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rational(BigRational);

impl Rational {
    /// An integer.
    pub fn int(n: i64) -> Rational {
        Rational(BigRational::from_integer(BigInt::from(n)))
    }
    /// `num / den`, reduced. Panics if `den` is zero.
    pub fn new(num: BigInt, den: BigInt) -> Rational {
        Rational(BigRational::new(num, den))
    }
    /// `num / den` for small integers, reduced. Panics if `den` is zero.
    pub fn ratio(num: i64, den: i64) -> Rational {
        Rational::new(BigInt::from(num), BigInt::from(den))
    }
    /// The numerator (carries the sign).
    pub fn numer(&self) -> &BigInt {
        self.0.numer()
    }
    /// The denominator, positive.
    pub fn denom(&self) -> &BigInt {
        self.0.denom()
    }
    /// The nearest f64 (correctly rounded, also when numerator and
    /// denominator are far beyond the range of f64; ±∞ or 0 only when the
    /// value itself is out of range).
    pub fn to_f64(&self) -> f64 {
        self.0.to_f64().unwrap_or(f64::NAN)
    }
    /// Whether this is a whole number.
    pub fn is_integer(&self) -> bool {
        self.0.is_integer()
    }
    /// Whether this is below zero.
    pub fn is_negative(&self) -> bool {
        self.0.is_negative()
    }
    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
    /// Whether this equals `num / den` (small integers).
    pub fn is(&self, num: i64, den: i64) -> bool {
        *self == Rational::ratio(num, den)
    }
    /// The value as a small integer, if it is one.
    pub fn to_i64(&self) -> Option<i64> {
        if self.is_integer() {
            self.numer().to_i64()
        } else {
            None
        }
    }
    /// The numerator as a rational (an integer, with the sign).
    pub fn numerator(&self) -> Rational {
        Rational(BigRational::from_integer(self.numer().clone()))
    }
    /// The denominator as a rational (a positive integer).
    pub fn denominator(&self) -> Rational {
        Rational(BigRational::from_integer(self.denom().clone()))
    }
    /// Whether this is an odd whole number.
    pub fn is_odd_integer(&self) -> bool {
        self.is_integer() && !(self.numer() % 2u32).is_zero()
    }
    /// The absolute value.
    pub fn abs(&self) -> Rational {
        Rational(self.0.abs())
    }
    /// Parse `n` or `n/d` (integers of any size, optional sign), as
    /// [`fmt::Display`] writes it.
    pub fn parse(text: &str) -> Option<Rational> {
        let (n, d) = text.split_once('/').unwrap_or((text, "1"));
        let num: BigInt = n.trim().parse().ok()?;
        let den: BigInt = d.trim().parse().ok()?;
        (!den.is_zero()).then(|| Rational::new(num, den))
    }
}

impl std::ops::Mul for &Rational {
    type Output = Rational;
    fn mul(self, rhs: &Rational) -> Rational {
        Rational(&self.0 * &rhs.0)
    }
}

impl std::ops::Add for &Rational {
    type Output = Rational;
    fn add(self, rhs: &Rational) -> Rational {
        Rational(&self.0 + &rhs.0)
    }
}

impl std::ops::Neg for &Rational {
    type Output = Rational;
    fn neg(self) -> Rational {
        Rational(-&self.0)
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_integer() {
            write!(f, "{}", self.numer())
        } else {
            write!(f, "{}/{}", self.numer(), self.denom())
        }
    }
}

/// Written as its exact text, `n` or `n/d` (JSON numbers cannot hold every
/// size).
impl Serialize for Rational {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A scalar expression. Subtraction is `Add` with a `-1` factor, division is
/// `Pow(_, -1)`: the same canonical shape a CAS uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expr {
    /// An exact number.
    Num(Rational),
    /// A named scalar: parameter, data, constant or intermediate (by id).
    Var(String),
    /// A sum.
    Add(Vec<Expr>),
    /// A product.
    Mul(Vec<Expr>),
    /// base ^ exponent
    Pow(Box<Expr>, Box<Expr>),
    /// f(argument)
    Call(Func, Box<Expr>),
}

impl Expr {
    /// The number n.
    pub fn int(n: i64) -> Expr {
        Expr::Num(Rational::int(n))
    }

    /// Every variable id the expression mentions.
    pub fn free_vars(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect_vars(&mut out);
        out
    }

    fn collect_vars(&self, out: &mut BTreeSet<String>) {
        self.for_each_var(&mut |v| {
            if !out.contains(v) {
                out.insert(v.to_string());
            }
        });
    }

    /// Calls `f` with each variable where it occurs, left to right (a
    /// variable that occurs twice, twice), without copying names.
    pub fn for_each_var(&self, f: &mut impl FnMut(&str)) {
        match self {
            Expr::Num(_) => {}
            Expr::Var(v) => f(v),
            Expr::Add(xs) | Expr::Mul(xs) => xs.iter().for_each(|x| x.for_each_var(f)),
            Expr::Pow(a, b) => {
                a.for_each_var(f);
                b.for_each_var(f);
            }
            Expr::Call(_, a) => a.for_each_var(f),
        }
    }

    /// Evaluate in f64 with every variable looked up in `env`.
    /// Returns `None` when a variable is missing.
    pub fn eval(&self, env: &HashMap<String, f64>) -> Option<f64> {
        Some(match self {
            Expr::Num(r) => r.to_f64(),
            Expr::Var(v) => *env.get(v)?,
            Expr::Add(xs) => {
                let mut s = 0.0;
                for x in xs {
                    s += x.eval(env)?;
                }
                s
            }
            Expr::Mul(xs) => {
                let mut p = 1.0;
                for x in xs {
                    p *= x.eval(env)?;
                }
                p
            }
            Expr::Pow(a, b) => {
                let base = a.eval(env)?;
                let small_integer = match &**b {
                    Expr::Num(r) => r.to_i64().and_then(|n| i32::try_from(n).ok()),
                    _ => None,
                };
                match small_integer {
                    Some(n) => base.powi(n),
                    None => base.powf(b.eval(env)?),
                }
            }
            Expr::Call(f, a) => f.eval(a.eval(env)?),
        })
    }

    /// Replace variables by expressions (one pass, no recursion into the
    /// replacements).
    pub fn substitute(&self, map: &HashMap<String, Expr>) -> Expr {
        match self {
            Expr::Num(_) => self.clone(),
            Expr::Var(v) => map.get(v).cloned().unwrap_or_else(|| self.clone()),
            Expr::Add(xs) => Expr::Add(xs.iter().map(|x| x.substitute(map)).collect()),
            Expr::Mul(xs) => Expr::Mul(xs.iter().map(|x| x.substitute(map)).collect()),
            Expr::Pow(a, b) => Expr::Pow(Box::new(a.substitute(map)), Box::new(b.substitute(map))),
            Expr::Call(f, a) => Expr::Call(*f, Box::new(a.substitute(map))),
        }
    }

    /// Write the expression in Symbolica's input syntax (also plain
    /// calculator syntax), fully parenthesised where needed.
    pub fn to_input_syntax(&self) -> String {
        let mut s = String::new();
        self.write_input(&mut s, 0);
        s
    }

    fn write_input(&self, out: &mut String, parent: u8) {
        // Precedence: 1 sum, 2 product, 3 power, 4 atom.
        let (mine, text): (u8, String) = match self {
            Expr::Num(r) => {
                if r.is_integer() && !r.is_negative() {
                    (4, r.to_string())
                } else {
                    (1, r.to_string())
                }
            }
            Expr::Var(v) => (4, v.clone()),
            Expr::Add(xs) => {
                let mut s = String::new();
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        s.push('+');
                    }
                    x.write_input(&mut s, 1);
                }
                (1, s)
            }
            Expr::Mul(xs) => {
                let mut s = String::new();
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        s.push('*');
                    }
                    x.write_input(&mut s, 2);
                }
                (2, s)
            }
            Expr::Pow(a, b) => {
                let mut s = String::new();
                a.write_input(&mut s, 4);
                s.push('^');
                b.write_input(&mut s, 4);
                (3, s)
            }
            Expr::Call(f, a) => {
                let mut s = format!("{}(", f.name());
                a.write_input(&mut s, 0);
                s.push(')');
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
}

/// What role a named scalar plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// θ: what the optimizer changes.
    Parameter,
    /// One column of a data row.
    Data,
    /// A hyper-parameter with a default value.
    Constant,
    /// A named intermediate definition.
    Intermediate,
}

/// One scalar of the model (a parameter entry, a data column, a constant, an
/// intermediate entry).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scalar {
    /// Identifier used in expressions and as the CAS symbol, e.g. `w_3`, `W_2_1`.
    pub id: String,
    /// Display form for LaTeX, e.g. `w_{3}`, `W_{2,1}`.
    pub latex: String,
    /// The tensor it belongs to (`w`).
    pub tensor: String,
    /// 1-based position in the tensor (empty for a scalar).
    pub index: Vec<usize>,
    /// What it is.
    pub role: Role,
}

/// A named tensor of the file (parameter, data field or definition), with its
/// shape and the ids of its scalar entries in row-major order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorInfo {
    /// Name in the file.
    pub name: String,
    /// `[]` scalar, `[n]` vector, `[r, c]` matrix.
    pub shape: Vec<usize>,
    /// Scalar ids, row-major.
    pub ids: Vec<String>,
}

/// A scalar intermediate `id := expr`, in dependency order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Definition {
    /// The scalar being defined.
    pub scalar: Scalar,
    /// Its right-hand side (may mention earlier intermediates).
    pub expr: Expr,
}

/// A probability distribution of the synthetic-data process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// normal(mean, standard deviation), element-wise
    Normal,
    /// uniform(low, high), element-wise
    Uniform,
    /// bernoulli(probability), element-wise; 0 or 1
    Bernoulli,
    /// poisson(rate), element-wise; a count 0, 1, 2, …
    Poisson,
    /// categorical(logits vector) drawn as a one-hot vector
    Categorical,
}

/// How to draw one data field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Draw {
    /// The data field (tensor name).
    pub field: String,
    /// The distribution.
    pub distribution: Distribution,
    /// Each argument, expanded to the field's entries (or the logits).
    pub args: Vec<Vec<Expr>>,
}

/// The data-generating process behind `--synthetic N`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Synthetic {
    /// Default number of samples.
    pub samples: usize,
    /// Parameter values used to generate the data (id → value).
    pub truth: Vec<(String, f64)>,
    /// The fields in drawing order.
    pub draws: Vec<Draw>,
}

/// Builds a model's scalar expressions from its checked file (the loader).
pub(crate) trait BuildScalar: Send + Sync {
    /// The intermediates entry by entry, in dependency order.
    fn definitions(&self) -> Vec<Definition>;
    /// The loss and the regularizer.
    fn objective(&self) -> (Expr, Option<Expr>);
    /// Whether [`BuildScalar::objective`] has a regularizer.
    fn has_regularizer(&self) -> bool;
}

/// A model's scalar expressions — every definition entry by entry, the
/// loss, the regularizer — built from the validated file the first time
/// something asks for them, the definitions apart from the loss: the
/// index-form track (`derive`, the loop kernels) asks for neither, and at
/// 10 000 features the scalar `dot(w, x)` alone is a sum of 10 000
/// products. Cloning a model shares the builder and copies what was built.
#[derive(Clone)]
pub struct ScalarForm {
    definitions: OnceLock<Vec<Definition>>,
    objective: OnceLock<(Expr, Option<Expr>)>,
    build: Arc<dyn BuildScalar>,
}

impl ScalarForm {
    /// Expressions to build on first use.
    pub(crate) fn lazy(build: Arc<dyn BuildScalar>) -> ScalarForm {
        ScalarForm {
            definitions: OnceLock::new(),
            objective: OnceLock::new(),
            build,
        }
    }

    fn definitions(&self) -> &[Definition] {
        self.definitions.get_or_init(|| self.build.definitions())
    }

    fn objective(&self) -> &(Expr, Option<Expr>) {
        self.objective.get_or_init(|| self.build.objective())
    }

    /// Whether the definitions have been built (for tests of the laziness).
    pub fn definitions_are_built(&self) -> bool {
        self.definitions.get().is_some()
    }

    /// Whether the loss and regularizer have been built.
    pub fn objective_is_built(&self) -> bool {
        self.objective.get().is_some()
    }
}

/// What a [`ScalarForm`] prints and compares: everything, built.
#[derive(Debug, PartialEq, Serialize)]
struct ScalarView<'a> {
    definitions: &'a [Definition],
    loss: &'a Expr,
    regularizer: Option<&'a Expr>,
}

impl ScalarForm {
    fn view(&self) -> ScalarView<'_> {
        let (loss, regularizer) = self.objective();
        ScalarView {
            definitions: self.definitions(),
            loss,
            regularizer: regularizer.as_ref(),
        }
    }
}

impl fmt::Debug for ScalarForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

impl PartialEq for ScalarForm {
    fn eq(&self, other: &ScalarForm) -> bool {
        self.view() == other.view()
    }
}

impl Serialize for ScalarForm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

/// A validated derivation file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    /// The same model in index form (tensors kept whole), when the file
    /// can be written that way (every file the loader accepts can; `None`
    /// only on an internal inconsistency).
    #[serde(skip)]
    pub index: Option<crate::index::IndexModel>,
    /// The file it was read from, as given (`derivations/rosenbrock.toml`),
    /// for messages about it.
    pub source: String,
    /// Short name (`logistic_regression`).
    pub name: String,
    /// Display title.
    pub title: String,
    /// One line for `hessforge models`.
    pub description: String,
    /// Teaching notes (Markdown allowed).
    pub notes: Option<String>,
    /// θ in order.
    pub params: Vec<Scalar>,
    /// Parameter tensors in file order.
    pub param_tensors: Vec<TensorInfo>,
    /// One data row, in column order.
    pub data: Vec<Scalar>,
    /// Data tensors in file order.
    pub data_tensors: Vec<TensorInfo>,
    /// Constants with their default values.
    pub constants: Vec<(Scalar, f64)>,
    /// The intermediates' entries in dependency order (the scalars of
    /// [`Model::definitions`], known without building their expressions).
    pub definition_scalars: Vec<Scalar>,
    /// Intermediate tensors in file order.
    pub definition_tensors: Vec<TensorInfo>,
    /// The definitions, loss and regularizer as scalar expressions
    /// ([`Model::definitions`], [`Model::loss`], [`Model::regularizer`]).
    pub scalar: ScalarForm,
    /// Starting point (one value per parameter, 0 where unspecified).
    pub init: Vec<f64>,
    /// The synthetic-data process, if given.
    pub synthetic: Option<Synthetic>,
}

impl Model {
    /// Number of parameters P.
    pub fn n_params(&self) -> usize {
        self.params.len()
    }
    /// Whether a parameter is a vector or a matrix: such a model's kernel is
    /// in index form (a loop kernel, built or compiled at run time), a model
    /// with scalar parameters only gets the straight-line one.
    pub fn has_tensor_parameter(&self) -> bool {
        self.index
            .as_ref()
            .is_some_and(|ix| ix.parameters().any(|t| !t.shape.is_empty()))
    }

    /// The intermediates entry by entry, in dependency order (built on
    /// first use, see [`ScalarForm`]).
    pub fn definitions(&self) -> &[Definition] {
        self.scalar.definitions()
    }

    /// The per-sample loss ℓ(θ; x) (or the whole objective without data),
    /// as a scalar expression (built on first use).
    pub fn loss(&self) -> &Expr {
        &self.scalar.objective().0
    }

    /// R(θ), if any, as a scalar expression (built on first use).
    pub fn regularizer(&self) -> Option<&Expr> {
        self.scalar.objective().1.as_ref()
    }

    /// Whether the model has a regularizer, without building anything.
    pub fn has_regularizer(&self) -> bool {
        self.scalar.build.has_regularizer()
    }

    /// Every scalar (parameters, data, constants, intermediates) by id.
    pub fn scalars(&self) -> impl Iterator<Item = &Scalar> {
        self.params
            .iter()
            .chain(&self.data)
            .chain(self.constants.iter().map(|(s, _)| s))
            .chain(&self.definition_scalars)
    }

    /// Evaluate the intermediates in order into `env` (which must already hold
    /// parameters, data and constants).
    pub fn eval_definitions(&self, env: &mut HashMap<String, f64>) -> Option<()> {
        for d in self.definitions() {
            let v = d.expr.eval(env)?;
            env.insert(d.scalar.id.clone(), v);
        }
        Some(())
    }

    /// An environment with the given parameters, one data row and the default
    /// constants, intermediates evaluated.
    pub fn environment(&self, theta: &[f64], row: &[f64]) -> HashMap<String, f64> {
        let mut env = HashMap::new();
        for (s, v) in self.params.iter().zip(theta) {
            env.insert(s.id.clone(), *v);
        }
        for (s, v) in self.data.iter().zip(row) {
            env.insert(s.id.clone(), *v);
        }
        for (s, v) in &self.constants {
            env.insert(s.id.clone(), *v);
        }
        self.eval_definitions(&mut env);
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_syntax_round_trips_precedence() {
        let e = Expr::Mul(vec![
            Expr::Add(vec![Expr::Var("a".into()), Expr::int(1)]),
            Expr::Pow(
                Box::new(Expr::Var("b".into())),
                Box::new(Expr::Num(Rational::ratio(-1, 2))),
            ),
        ]);
        assert_eq!(e.to_input_syntax(), "(a+1)*b^(-1/2)");
    }

    #[test]
    fn stable_sigmoid_and_softplus() {
        assert_eq!(Func::Sigmoid.eval(-800.0), 0.0);
        assert_eq!(Func::Sigmoid.eval(800.0), 1.0);
        assert_eq!(Func::Softplus.eval(800.0), 800.0);
        assert!((Func::Softplus.eval(0.0) - 2f64.ln()).abs() < 1e-15);
    }
}
