//! Every optimizer by name: its update rule (text and LaTeX), hyper-
//! parameters with defaults and valid ranges, the convention chosen where
//! libraries differ, and the seed it comes from — what `hessforge
//! optimizers` prints — and [`build`], which makes one from [`Settings`].

use crate::first_order::{Batching, FirstOrder, MomentumForm, Rule};
use crate::method::Method;
use crate::newton::{Newton, NewtonKind};
use crate::quasi_newton::QuasiNewton;
use crate::schedule::Schedule;
use crate::trust_region::TrustRegion;

/// A hyper-parameter as documented.
#[derive(Debug, Clone, Copy)]
pub struct Hyper {
    /// The CLI flag.
    pub flag: &'static str,
    /// Its default, in words.
    pub default: &'static str,
    /// Valid range.
    pub range: &'static str,
}

/// One optimizer's documentation.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The name (`--optimizer NAME`).
    pub name: &'static str,
    /// One line.
    pub summary: &'static str,
    /// The update rule, plain text.
    pub rule: &'static str,
    /// The update rule, LaTeX.
    pub latex: &'static str,
    /// Hyper-parameters.
    pub hypers: &'static [Hyper],
    /// The convention chosen where libraries differ.
    pub convention: &'static str,
    /// Where the rule comes from.
    pub source: &'static str,
    /// Whether it reads mini-batches (one iteration = one epoch).
    pub stochastic: bool,
}

const LR_1_OVER_L: Hyper = Hyper {
    flag: "--lr",
    default: "1/L, L = largest Hessian eigenvalue at θ₀",
    range: "> 0",
};
const RHO: Hyper = Hyper {
    flag: "--momentum",
    default: "0.9",
    range: "[0, 1)",
};
const EPS: Hyper = Hyper {
    flag: "--eps",
    default: "1e-8",
    range: "≥ 0",
};
const SCHEDULE: Hyper = Hyper {
    flag: "--schedule",
    default: "constant",
    range: crate::schedule::SCHEDULE_SYNTAX,
};
const BATCH: Hyper = Hyper {
    flag: "--batch-size",
    default: "full batch (sgd: 1, minibatch: 32)",
    range: "1..N; with --seed for the shuffles",
};
const BETAS: [Hyper; 2] = [
    Hyper {
        flag: "--beta1",
        default: "0.9",
        range: "[0, 1)",
    },
    Hyper {
        flag: "--beta2",
        default: "0.999",
        range: "[0, 1)",
    },
];

macro_rules! hypers {
    ($($h:expr),* $(,)?) => { &[$($h),*] };
}

/// Every optimizer, in the order `optimizers` lists them.
pub const CATALOG: &[Entry] = &[
    Entry {
        name: "gd",
        summary: "gradient descent, full batch",
        rule: "θ ← θ − α ∇L(θ)",
        latex: r"\theta \leftarrow \theta - \alpha \nabla L(\theta)",
        hypers: hypers![LR_1_OVER_L, SCHEDULE, BATCH],
        convention: "one iteration = one step over all rows",
        source: "seeds 002 (Vanilla Gradient Descent), 003, 004",
        stochastic: false,
    },
    Entry {
        name: "sgd",
        summary: "stochastic gradient descent: one row per update, reshuffled every epoch",
        rule: "for each row i (shuffled): θ ← θ − α ∇ℓᵢ(θ)",
        latex: r"\theta \leftarrow \theta - \alpha \nabla \ell_i(\theta)",
        hypers: hypers![
            Hyper {
                flag: "--lr",
                default: "0.01",
                range: "> 0"
            },
            SCHEDULE,
            BATCH
        ],
        convention: "one iteration = one epoch; the shuffle is seeded (--seed)",
        source: "seeds 002 (Stochastic Gradient Descent), 004",
        stochastic: true,
    },
    Entry {
        name: "minibatch",
        summary: "mini-batch gradient descent, reshuffled every epoch",
        rule: "for each batch B (shuffled): θ ← θ − α (1/|B|) Σ_{i∈B} ∇ℓᵢ(θ)",
        latex: r"\theta \leftarrow \theta - \frac{\alpha}{|B|} \sum_{i \in B} \nabla \ell_i(\theta)",
        hypers: hypers![
            Hyper {
                flag: "--lr",
                default: "0.01",
                range: "> 0"
            },
            SCHEDULE,
            BATCH
        ],
        convention: "one iteration = one epoch; the last batch may be smaller",
        source: "seed 002 (Vanilla Minibatch Gradient Descent), 004",
        stochastic: true,
    },
    Entry {
        name: "momentum",
        summary: "heavy-ball momentum",
        rule: "v ← ρ v + g;  θ ← θ − α v      (--momentum-form average: v ← β v + (1 − β) g)",
        latex: r"v \leftarrow \rho v + \nabla L(\theta), \quad \theta \leftarrow \theta - \alpha v",
        hypers: hypers![
            Hyper {
                flag: "--lr",
                default: "(1 − ρ)/L (classic), 1/L (average)",
                range: "> 0"
            },
            RHO,
            Hyper {
                flag: "--momentum-form",
                default: "classic",
                range: "classic | average"
            },
            SCHEDULE,
            BATCH
        ],
        convention: "classic v ← ρv + g as seed 002 / CS231n / PyTorch; seed 004's exponential average v ← βv + (1−β)g with --momentum-form average",
        source: "seed 002 (SGD + Momentum), seed 004 (Momentum)",
        stochastic: false,
    },
    Entry {
        name: "nesterov",
        summary: "Nesterov momentum (look-ahead), in the rearranged form",
        rule: "v_prev ← v;  v ← ρ v − α g;  θ ← θ − ρ v_prev + (1 + ρ) v",
        latex: r"v' = \rho v - \alpha \nabla L(\theta), \quad \theta \leftarrow \theta - \rho v + (1+\rho) v'",
        hypers: hypers![LR_1_OVER_L, RHO, SCHEDULE, BATCH],
        convention: "the gradient is taken at the stored iterate (seed 002's change of variables), which equals evaluating it at the look-ahead point θ + ρv",
        source: "seed 002 (Aside: Nesterov Momentum)",
        stochastic: false,
    },
    Entry {
        name: "adagrad",
        summary: "per-coordinate rates from the sum of squared gradients",
        rule: "s ← s + g²;  θ ← θ − α g / (√s + ε)",
        latex: r"s \leftarrow s + g^2, \quad \theta \leftarrow \theta - \frac{\alpha\, g}{\sqrt{s} + \epsilon}",
        hypers: hypers![
            Hyper {
                flag: "--lr",
                default: "0.1",
                range: "> 0"
            },
            EPS,
            SCHEDULE,
            BATCH
        ],
        convention: "ε outside the square root (seed 002; PyTorch); TensorFlow puts an initial accumulator instead",
        source: "seed 002 (Aside: AdaGrad)",
        stochastic: false,
    },
    Entry {
        name: "rmsprop",
        summary: "AdaGrad with a decaying average of squared gradients",
        rule: "s ← γ s + (1 − γ) g²;  θ ← θ − α g / (√s + ε)",
        latex: r"s \leftarrow \gamma s + (1-\gamma) g^2, \quad \theta \leftarrow \theta - \frac{\alpha\, g}{\sqrt{s} + \epsilon}",
        hypers: hypers![
            Hyper {
                flag: "--lr",
                default: "0.01",
                range: "> 0"
            },
            Hyper {
                flag: "--decay",
                default: "0.9",
                range: "[0, 1)"
            },
            EPS,
            SCHEDULE,
            BATCH
        ],
        convention: "ε outside the square root (seed 002; PyTorch); Keras/TensorFlow add ε inside",
        source: "seed 002 (RMSProp)",
        stochastic: false,
    },
    Entry {
        name: "adam",
        summary: "Adam with bias correction; weight decay in the L2 form",
        rule: "g ← g + λθ;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  m̂ = m/(1−β₁ᵗ);  v̂ = v/(1−β₂ᵗ);  θ ← θ − α m̂/(√v̂ + ε)",
        latex: r"\hat m = \frac{m}{1-\beta_1^t},\ \hat v = \frac{v}{1-\beta_2^t}, \quad \theta \leftarrow \theta - \frac{\alpha\, \hat m}{\sqrt{\hat v} + \epsilon}",
        hypers: hypers![
            Hyper {
                flag: "--lr",
                default: "0.01",
                range: "> 0"
            },
            BETAS[0],
            BETAS[1],
            EPS,
            Hyper {
                flag: "--weight-decay",
                default: "0",
                range: "≥ 0"
            },
            SCHEDULE,
            BATCH
        ],
        convention: "weight decay λ is added to the gradient before the moments (L2; seed 002: 'the regularization is done in x before gradient computation'); ε outside the square root",
        source: "seed 002 (Adam & AdamW)",
        stochastic: false,
    },
    Entry {
        name: "adamw",
        summary: "Adam with decoupled weight decay",
        rule: "m, v, m̂, v̂ as Adam (no λ in g);  θ ← θ − αλθ − α m̂/(√v̂ + ε)",
        latex: r"\theta \leftarrow \theta - \alpha\lambda\theta - \frac{\alpha\, \hat m}{\sqrt{\hat v} + \epsilon}",
        hypers: hypers![
            Hyper {
                flag: "--lr",
                default: "0.01",
                range: "> 0"
            },
            BETAS[0],
            BETAS[1],
            EPS,
            Hyper {
                flag: "--weight-decay",
                default: "0.01",
                range: "≥ 0"
            },
            SCHEDULE,
            BATCH
        ],
        convention: "decay multiplied by α (PyTorch AdamW, Loshchilov & Hutter with schedule multiplier α); seed 002: 'the regularization term is added to the final x after the moments'",
        source: "seed 002 (Adam & AdamW)",
        stochastic: false,
    },
    Entry {
        name: "newton",
        summary: "pure Newton: the full step to the minimiser of the quadratic model",
        rule: "solve H d = −g;  θ ← θ + d",
        latex: r"\theta \leftarrow \theta - H(\theta)^{-1} \nabla L(\theta)",
        hypers: &[],
        convention: "Cholesky; LU when H is not positive definite; eigen pseudo-inverse when singular. No safeguard: it converges to saddles too, and the run then says so",
        source: "seed 002 (Second-Order Optimization), seed 004 (Newton's method)",
        stochastic: false,
    },
    Entry {
        name: "newton-damped",
        summary: "Newton direction with a backtracking Armijo line search",
        rule: "solve H d = −g (d ← −g if gᵀd ≥ 0);  θ ← θ + αd, α = 1, ½, ¼, … until L(θ+αd) ≤ L(θ) + 10⁻⁴ α gᵀd",
        latex: r"\theta \leftarrow \theta + \alpha d,\quad H d = -\nabla L,\quad L(\theta+\alpha d) \le L(\theta) + c_1 \alpha \nabla L^\top d",
        hypers: &[],
        convention: "steepest descent replaces a non-descent Newton direction (recorded as a modification)",
        source: "seed 002 (Second-Order Optimization); Nocedal & Wright §3.1",
        stochastic: false,
    },
    Entry {
        name: "newton-lm",
        summary: "Levenberg–Marquardt regularised Newton",
        rule: "solve (H + λI) d = −g;  accept if L decreases (λ ← λ/3) else λ ← 4λ and retry",
        latex: r"(H + \lambda I)\, d = -\nabla L",
        hypers: hypers![Hyper {
            flag: "--damping",
            default: "1e-3",
            range: "> 0 (initial λ)"
        }],
        convention: "λ also grows ×10 while H + λI is not positive definite",
        source: "seed 002 (the Hessian's ill-conditioning); Nocedal & Wright §10.3",
        stochastic: false,
    },
    Entry {
        name: "newton-saddle-free",
        summary: "saddle-free Newton: |H| from the eigendecomposition",
        rule: "H = QΛQᵀ;  d = −Q |Λ|⁻¹ Qᵀ g;  Armijo backtracking",
        latex: r"d = -|H|^{-1} \nabla L,\quad |H| = Q |\Lambda| Q^\top",
        hypers: &[],
        convention: "|λ| floored at 10⁻¹² · max|λ| (Dauphin et al. 2014)",
        source: "seed 004 (saddle points in high dimensions)",
        stochastic: false,
    },
    Entry {
        name: "newton-tr",
        summary: "trust-region Newton with Steihaug's truncated CG",
        rule: "p ≈ argmin_{‖p‖≤Δ} gᵀp + ½ pᵀHp (CG, stops at the boundary on negative curvature);  ρ = actual/predicted decrease;  accept if ρ > 10⁻⁴;  Δ ← Δ/4 if ρ < ¼, 2Δ if ρ > ¾ at the boundary",
        latex: r"\min_{\|p\| \le \Delta} \nabla L^\top p + \tfrac12 p^\top H p",
        hypers: hypers![Hyper {
            flag: "--radius",
            default: "1",
            range: "> 0 (initial Δ)"
        }],
        convention: "Nocedal & Wright Algorithms 4.1 and 7.2",
        source: "seed 002 (Second-Order Optimization)",
        stochastic: false,
    },
    Entry {
        name: "gauss-newton",
        summary: "Gauss–Newton for losses that are a square per row (ℓᵢ = c·rᵢ²), unregularised",
        rule: "G = (1/N) Σ 2c ∇rᵢ∇rᵢᵀ + ∇²R;  solve G d = −g;  Armijo backtracking",
        latex: r"\Big(\tfrac{1}{N}\textstyle\sum_i 2c\, \nabla r_i \nabla r_i^\top + \nabla^2 R\Big)\, d = -\nabla L",
        hypers: &[],
        convention: "∇rᵢ∇rᵢᵀ is computed as gᵢgᵢᵀ/(4c·ℓᵢ) from each row's loss and gradient, so no residual Jacobian is needed; a damping μI (from 10⁻¹² of the largest diagonal entry, ×10) is added while G is singular",
        source: "seed 002 (Second-Order Optimization); Nocedal & Wright §10.3",
        stochastic: false,
    },
    Entry {
        name: "bfgs",
        summary: "BFGS quasi-Newton with a strong-Wolfe line search",
        rule: "d = −Hₖ g;  θ₊ = θ + αd (Wolfe);  s = θ₊ − θ, y = g₊ − g, ρ = 1/yᵀs;  Hₖ₊₁ = (I − ρsyᵀ)Hₖ(I − ρysᵀ) + ρssᵀ",
        latex: r"H_{k+1} = (I - \rho s y^\top) H_k (I - \rho y s^\top) + \rho s s^\top",
        hypers: &[],
        convention: "H₀ = (sᵀy / yᵀy) I after the first step (which is scaled to unit length); c₁ = 10⁻⁴, c₂ = 0.9 (Hager–Zhang's approximate Wolfe conditions once rounding hides the decrease); the update is skipped when yᵀs ≤ 0",
        source: "seed 002 (Quasi-Newton methods (BFGS))",
        stochastic: false,
    },
    Entry {
        name: "lbfgs",
        summary: "limited-memory BFGS (two-loop recursion)",
        rule: "d = −Hₖ g from the last m pairs (s, y) by the two-loop recursion, H⁰ = (sᵀy/yᵀy) I;  strong-Wolfe line search",
        latex: r"d = -H_k \nabla L \text{ from } \{(s_i, y_i)\}_{i=k-m}^{k-1}",
        hypers: hypers![Hyper {
            flag: "--memory",
            default: "10",
            range: "≥ 1"
        }],
        convention: "Nocedal & Wright Algorithm 7.4",
        source: "seed 002 (L-BFGS)",
        stochastic: false,
    },
];

/// The catalogue entry of `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    CATALOG.iter().find(|e| e.name == name)
}

/// Hyper-parameters for [`build`]; `None` means the documented default.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// α (None: the optimizer's default; 1/L-based ones need `curvature`).
    pub lr: Option<f64>,
    /// L, the largest Hessian eigenvalue at θ₀, for the 1/L defaults.
    pub curvature: Option<f64>,
    /// ρ or β.
    pub momentum: Option<f64>,
    /// Average instead of classic momentum.
    pub momentum_average: bool,
    /// β₁.
    pub beta1: Option<f64>,
    /// β₂.
    pub beta2: Option<f64>,
    /// ε.
    pub eps: Option<f64>,
    /// RMSProp's γ.
    pub decay: Option<f64>,
    /// Adam(W)'s λ.
    pub weight_decay: Option<f64>,
    /// Rows per mini-batch.
    pub batch_size: Option<usize>,
    /// Seed of the shuffles.
    pub seed: u64,
    /// α over the updates.
    pub schedule: Schedule,
    /// L-BFGS memory.
    pub memory: Option<usize>,
    /// Levenberg–Marquardt λ₀.
    pub damping: Option<f64>,
    /// Trust-region Δ₀.
    pub radius: Option<f64>,
}

/// Why an optimizer could not be made.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildError {
    /// No such optimizer.
    Unknown(String),
    /// A hyper-parameter outside its range.
    OutOfRange {
        /// The flag.
        flag: &'static str,
        /// The value.
        value: f64,
        /// The valid range.
        range: &'static str,
    },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Unknown(n) => write!(
                f,
                "unknown optimizer `{n}`; expected one of {}",
                CATALOG
                    .iter()
                    .map(|e| e.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            BuildError::OutOfRange { flag, value, range } => {
                write!(f, "{flag} {value} is out of range: expected {range}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

fn checked(
    value: Option<f64>,
    default: f64,
    flag: &'static str,
    ok: impl Fn(f64) -> bool,
    range: &'static str,
) -> Result<f64, BuildError> {
    let v = value.unwrap_or(default);
    if v.is_finite() && ok(v) {
        Ok(v)
    } else {
        Err(BuildError::OutOfRange {
            flag,
            value: v,
            range,
        })
    }
}

/// The optimizer `name` with these settings.
pub fn build(name: &str, s: &Settings) -> Result<Box<dyn Method>, BuildError> {
    let unit = |x: f64| (0.0..1.0).contains(&x);
    let positive = |x: f64| x > 0.0;
    let inv_l = s.curvature.filter(|l| *l > 0.0).map_or(1e-3, |l| 1.0 / l);
    let lr = |default: f64| checked(s.lr, default, "--lr", positive, "> 0");
    let rho = || checked(s.momentum, 0.9, "--momentum", unit, "[0, 1)");
    let eps = || checked(s.eps, 1e-8, "--eps", |x| x >= 0.0, "≥ 0");
    let adam = |decoupled: bool, wd_default: f64| -> Result<Rule, BuildError> {
        Ok(Rule::Adam {
            beta1: checked(s.beta1, 0.9, "--beta1", unit, "[0, 1)")?,
            beta2: checked(s.beta2, 0.999, "--beta2", unit, "[0, 1)")?,
            eps: eps()?,
            weight_decay: checked(
                s.weight_decay,
                wd_default,
                "--weight-decay",
                |x| x >= 0.0,
                "≥ 0",
            )?,
            decoupled,
            m: vec![],
            v: vec![],
            t: 0,
        })
    };
    let (rule, lr, default_batch) = match name {
        "gd" => (Rule::GradientDescent, lr(inv_l)?, None),
        "sgd" => (Rule::GradientDescent, lr(0.01)?, Some(1)),
        "minibatch" => (Rule::GradientDescent, lr(0.01)?, Some(32)),
        "momentum" => {
            let rho = rho()?;
            let form = if s.momentum_average {
                MomentumForm::Average
            } else {
                MomentumForm::Classic
            };
            let default = match form {
                MomentumForm::Classic => (1.0 - rho) * inv_l,
                MomentumForm::Average => inv_l,
            };
            (
                Rule::Momentum {
                    rho,
                    form,
                    v: vec![],
                },
                lr(default)?,
                None,
            )
        }
        "nesterov" => (
            Rule::Nesterov {
                rho: rho()?,
                v: vec![],
            },
            lr(inv_l)?,
            None,
        ),
        "adagrad" => (
            Rule::AdaGrad {
                eps: eps()?,
                s: vec![],
            },
            lr(0.1)?,
            None,
        ),
        "rmsprop" => (
            Rule::RmsProp {
                decay: checked(s.decay, 0.9, "--decay", unit, "[0, 1)")?,
                eps: eps()?,
                s: vec![],
            },
            lr(0.01)?,
            None,
        ),
        "adam" => (adam(false, 0.0)?, lr(0.01)?, None),
        "adamw" => (adam(true, 0.01)?, lr(0.01)?, None),
        "newton" => return Ok(Box::new(Newton::new(NewtonKind::Pure))),
        "newton-damped" => return Ok(Box::new(Newton::new(NewtonKind::Damped))),
        "newton-saddle-free" => return Ok(Box::new(Newton::new(NewtonKind::SaddleFree))),
        "gauss-newton" => return Ok(Box::new(Newton::new(NewtonKind::GaussNewton))),
        "newton-lm" => {
            let lambda = checked(s.damping, 1e-3, "--damping", positive, "> 0")?;
            return Ok(Box::new(
                Newton::new(NewtonKind::LevenbergMarquardt).with_lambda(lambda),
            ));
        }
        "newton-tr" => {
            let radius = checked(s.radius, 1.0, "--radius", positive, "> 0")?;
            return Ok(Box::new(TrustRegion::new(radius)));
        }
        "bfgs" => return Ok(Box::new(QuasiNewton::bfgs())),
        "lbfgs" => {
            let m = checked(
                s.memory.map(|m| m as f64),
                10.0,
                "--memory",
                |x| x >= 1.0,
                "≥ 1",
            )?;
            return Ok(Box::new(QuasiNewton::lbfgs(m as usize)));
        }
        other => return Err(BuildError::Unknown(other.to_string())),
    };
    let batching = match s.batch_size.or(default_batch) {
        Some(size) if size >= 1 => Batching::MiniBatch { size, seed: s.seed },
        Some(size) => {
            return Err(BuildError::OutOfRange {
                flag: "--batch-size",
                value: size as f64,
                range: "≥ 1",
            });
        }
        None => Batching::Full,
    };
    Ok(Box::new(
        FirstOrder::new(rule, lr)
            .with_schedule(s.schedule.clone())
            .with_batching(batching),
    ))
}

/// Whether the 1/L default step of `name` needs L (the CLI computes it
/// from the Hessian at θ₀ only then).
pub fn wants_curvature(name: &str, s: &Settings) -> bool {
    s.lr.is_none() && matches!(name, "gd" | "momentum" | "nesterov")
}
