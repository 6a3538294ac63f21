//! What names an optimizer and describes its hyper-parameters — the leaf
//! that every optimizer module and the catalogue import, and that imports
//! nothing of this crate: [`Optimizer`] (every optimizer, by name),
//! [`Family`], a hyper-parameter's description ([`Hyper`]: flag, default,
//! range) with its checked [`Hyper::value`], and [`BuildError`]. Each
//! optimizer module owns the `Hyper` constants of its hyper-parameters and
//! checks its builders' arguments with them; [`crate::catalog`] lists the
//! same constants in its documentation, so a flag is written once. A
//! setting chosen among names (`--hessian dense`, `hessian="dense"` from
//! Python) is a [`Choice`], so its names are written once too.

/// Every optimizer hessforge has; its entry in [`crate::catalog::CATALOG`]
/// documents it and `Optimizer::build` (in [`crate::catalog`]) makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Optimizer {
    /// Gradient descent, full batch.
    Gd,
    /// Stochastic gradient descent (one row per update).
    Sgd,
    /// Mini-batch gradient descent.
    Minibatch,
    /// Heavy-ball momentum.
    Momentum,
    /// Nesterov's accelerated gradient.
    Nesterov,
    /// AdaGrad.
    AdaGrad,
    /// RMSProp.
    RmsProp,
    /// Adam (L2 weight decay).
    Adam,
    /// AdamW (decoupled weight decay).
    AdamW,
    /// Newton's method, unit step.
    Newton,
    /// Newton with a backtracking line search.
    NewtonDamped,
    /// Levenberg–Marquardt.
    NewtonLm,
    /// Saddle-free Newton (|H|).
    NewtonSaddleFree,
    /// Newton in a trust region: the exact subproblem up to 200 parameters,
    /// Steihaug–CG above.
    NewtonTr,
    /// Newton in a trust region, the subproblem solved exactly (Moré–Sorensen).
    NewtonExactTr,
    /// Truncated (Hessian-free) Newton: CG on Hessian–vector products.
    NewtonCg,
    /// Gauss–Newton (squared losses).
    GaussNewton,
    /// BFGS.
    Bfgs,
    /// L-BFGS.
    Lbfgs,
}

impl Optimizer {
    /// Every optimizer, in the catalogue's order.
    pub const ALL: [Optimizer; 19] = [
        Optimizer::Gd,
        Optimizer::Sgd,
        Optimizer::Minibatch,
        Optimizer::Momentum,
        Optimizer::Nesterov,
        Optimizer::AdaGrad,
        Optimizer::RmsProp,
        Optimizer::Adam,
        Optimizer::AdamW,
        Optimizer::Newton,
        Optimizer::NewtonDamped,
        Optimizer::NewtonLm,
        Optimizer::NewtonSaddleFree,
        Optimizer::NewtonTr,
        Optimizer::NewtonExactTr,
        Optimizer::NewtonCg,
        Optimizer::GaussNewton,
        Optimizer::Bfgs,
        Optimizer::Lbfgs,
    ];

    /// The name (`--optimizer NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Gd => "gd",
            Optimizer::Sgd => "sgd",
            Optimizer::Minibatch => "minibatch",
            Optimizer::Momentum => "momentum",
            Optimizer::Nesterov => "nesterov",
            Optimizer::AdaGrad => "adagrad",
            Optimizer::RmsProp => "rmsprop",
            Optimizer::Adam => "adam",
            Optimizer::AdamW => "adamw",
            Optimizer::Newton => "newton",
            Optimizer::NewtonDamped => "newton-damped",
            Optimizer::NewtonLm => "newton-lm",
            Optimizer::NewtonSaddleFree => "newton-saddle-free",
            Optimizer::NewtonTr => "newton-tr",
            Optimizer::NewtonExactTr => "newton-exact-tr",
            Optimizer::NewtonCg => "newton-cg",
            Optimizer::GaussNewton => "gauss-newton",
            Optimizer::Bfgs => "bfgs",
            Optimizer::Lbfgs => "lbfgs",
        }
    }
}

impl std::fmt::Display for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Optimizer {
    type Err = BuildError;
    fn from_str(name: &str) -> Result<Optimizer, BuildError> {
        Optimizer::ALL
            .into_iter()
            .find(|o| o.name() == name)
            .ok_or_else(|| BuildError::Unknown(name.to_string()))
    }
}

/// How an optimizer uses the derivatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The gradient only (and its history).
    FirstOrder,
    /// The Hessian (or the Gauss–Newton matrix) at every iterate.
    NewtonType,
    /// A curvature model built from gradients (BFGS, L-BFGS).
    QuasiNewton,
}

impl Family {
    /// Every family, in the catalogue's order.
    pub const ALL: [Family; 3] = [Family::FirstOrder, Family::NewtonType, Family::QuasiNewton];

    /// The family as the catalogue names it.
    pub fn label(self) -> &'static str {
        match self {
            Family::FirstOrder => "first-order",
            Family::NewtonType => "Newton-type",
            Family::QuasiNewton => "quasi-Newton",
        }
    }
}

/// A hyper-parameter's default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    /// This number.
    Number(f64),
    /// A step computed from L = λ_max(∇²L(θ₀)), described in words (the
    /// driver computes L when an optimizer with this default runs).
    FromCurvature(&'static str),
    /// Not a number (a schedule, a form, a batch size), in words.
    Described(&'static str),
}

impl std::fmt::Display for DefaultValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefaultValue::Number(x) if *x != 0.0 && x.abs() < 1e-2 => write!(f, "{x:e}"),
            DefaultValue::Number(x) => write!(f, "{x}"),
            DefaultValue::FromCurvature(text) | DefaultValue::Described(text) => f.write_str(text),
        }
    }
}

/// The values a hyper-parameter may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    /// x > 0.
    Positive,
    /// x ≥ 0.
    NonNegative,
    /// 0 ≤ x < 1.
    Unit,
    /// x ≥ 1.
    AtLeastOne,
    /// Not a number range (a syntax, a choice), in words.
    Described(&'static str),
}

impl Range {
    /// Whether a finite `x` is in the range (a described range holds
    /// every number: the parser of its syntax checks it).
    pub fn contains(self, x: f64) -> bool {
        x.is_finite()
            && match self {
                Range::Positive => x > 0.0,
                Range::NonNegative => x >= 0.0,
                Range::Unit => (0.0..1.0).contains(&x),
                Range::AtLeastOne => x >= 1.0,
                Range::Described(_) => true,
            }
    }

    /// The range as `hessforge optimizers` prints it.
    pub fn text(self) -> &'static str {
        match self {
            Range::Positive => "> 0",
            Range::NonNegative => "≥ 0",
            Range::Unit => "[0, 1)",
            Range::AtLeastOne => "≥ 1",
            Range::Described(text) => text,
        }
    }
}

/// A hyper-parameter: its flag, default and valid range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    /// The CLI flag.
    pub flag: &'static str,
    /// Its default.
    pub default: DefaultValue,
    /// Valid values.
    pub range: Range,
}

impl Hyper {
    /// This hyper-parameter's value for `optimizer`: the one `given`, else
    /// its default (`computed` for a default computed from the curvature),
    /// checked against its range; an error names the optimizer, the flag,
    /// the range and the default.
    pub fn value(
        &self,
        optimizer: Optimizer,
        given: Option<f64>,
        computed: Option<f64>,
    ) -> Result<f64, BuildError> {
        let value = match (given, self.default) {
            (Some(v), _) => v,
            (None, DefaultValue::Number(v)) => v,
            (None, _) => computed.unwrap_or(f64::NAN),
        };
        if self.range.contains(value) {
            Ok(value)
        } else {
            Err(BuildError::OutOfRange {
                optimizer: optimizer.name(),
                flag: self.flag,
                value,
                range: self.range.text(),
                default: self.default.to_string(),
            })
        }
    }
}

/// Why an optimizer could not be made.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildError {
    /// No such optimizer.
    Unknown(String),
    /// A hyper-parameter outside its range.
    OutOfRange {
        /// The optimizer.
        optimizer: &'static str,
        /// The flag.
        flag: &'static str,
        /// The value.
        value: f64,
        /// The valid range.
        range: &'static str,
        /// The default, in words.
        default: String,
    },
    /// Two settings that cannot go together.
    Conflict {
        /// The optimizer.
        optimizer: &'static str,
        /// Which settings, and why.
        reason: &'static str,
    },
    /// A flag the optimizer does not have (a bug of the catalogue).
    NotAHyperParameter {
        /// The optimizer.
        optimizer: &'static str,
        /// The flag.
        flag: &'static str,
    },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Unknown(n) => write!(
                f,
                "unknown optimizer `{n}`; expected one of {}",
                Optimizer::ALL
                    .iter()
                    .map(|o| o.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            BuildError::OutOfRange {
                optimizer,
                flag,
                value,
                range,
                default,
            } => write!(
                f,
                "{optimizer}: {flag} {value} is out of range: expected {range} (the default is {default}; leave {flag} out to use it)"
            ),
            BuildError::Conflict { optimizer, reason } => write!(f, "{optimizer}: {reason}"),
            BuildError::NotAHyperParameter { optimizer, flag } => {
                write!(f, "{optimizer} has no hyper-parameter {flag}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// A setting chosen by name, the same names on the command line and from
/// Python (`--hessian dense`, `hessian="dense"`): the enum lists its
/// choices once, and each front end reads them from here.
pub trait Choice: Copy + 'static {
    /// Every choice with its name, the default first.
    const CHOICES: &'static [(&'static str, Self)];

    /// The choice called `name`, if there is one.
    fn named(name: &str) -> Option<Self> {
        Self::CHOICES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, choice)| choice)
    }

    /// The names, the default first.
    fn names() -> impl Iterator<Item = &'static str> {
        Self::CHOICES.iter().map(|&(name, _)| name)
    }

    /// The default's name.
    fn default_name() -> &'static str {
        Self::CHOICES[0].0
    }
}
