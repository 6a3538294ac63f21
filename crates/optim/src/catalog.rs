//! Every optimizer by name: its update rule (text and LaTeX), hyper-
//! parameters with defaults and valid ranges, the convention chosen where
//! libraries differ, and the seed it comes from — what `hessforge
//! optimizers` prints — and [`build`], which makes one from [`Settings`].

use crate::exact_trust_region::{ExactTrustRegion, RADIUS};
use crate::first_order::{
    BATCH_SIZE, BETA1, BETA2, Batching, DECAY, EPS, FirstOrder, LR, LR_ADAGRAD, LR_FROM_CURVATURE,
    LR_MOMENTUM, MOMENTUM, MOMENTUM_FORM, MomentumForm, Rule, WEIGHT_DECAY_DECOUPLED,
    WEIGHT_DECAY_L2, learning_rate,
};
use crate::method::{HessianPath, Method, Preconditioner};
use crate::newton::{DAMPING, Newton, NewtonKind};
use crate::newton_cg::NewtonCg;
use crate::optimizer::{BuildError, DefaultValue, Family, Hyper, Optimizer};
use crate::quasi_newton::{MEMORY, QuasiNewton};
use crate::schedule::{SCHEDULE, Schedule};
use crate::trust_region::{Subproblem, TrustRegion};

/// One optimizer's documentation.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The optimizer.
    pub optimizer: Optimizer,
    /// How it uses the derivatives.
    pub family: Family,
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

macro_rules! hypers {
    ($($h:expr),* $(,)?) => { &[$($h),*] };
}

/// Every optimizer, in the order `optimizers` lists them.
pub const CATALOG: &[Entry] = &[
    Entry {
        optimizer: Optimizer::Gd,
        family: Family::FirstOrder,
        summary: "gradient descent, full batch",
        rule: "θ ← θ − α ∇L(θ)",
        latex: r"\theta \leftarrow \theta - \alpha \nabla L(\theta)",
        hypers: hypers![LR_FROM_CURVATURE, SCHEDULE, BATCH_SIZE],
        convention: "one iteration = one step over all rows",
        source: "seeds 002 (Vanilla Gradient Descent), 003, 004",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::Sgd,
        family: Family::FirstOrder,
        summary: "stochastic gradient descent: one row per update, reshuffled every epoch",
        rule: "for each row i (shuffled): θ ← θ − α ∇ℓᵢ(θ)",
        latex: r"\theta \leftarrow \theta - \alpha \nabla \ell_i(\theta)",
        hypers: hypers![LR, SCHEDULE, BATCH_SIZE],
        convention: "one iteration = one epoch; the shuffle is seeded (--seed)",
        source: "seeds 002 (Stochastic Gradient Descent), 004",
        stochastic: true,
    },
    Entry {
        optimizer: Optimizer::Minibatch,
        family: Family::FirstOrder,
        summary: "mini-batch gradient descent, reshuffled every epoch",
        rule: "for each batch B (shuffled): θ ← θ − α (1/|B|) Σ_{i∈B} ∇ℓᵢ(θ)",
        latex: r"\theta \leftarrow \theta - \frac{\alpha}{|B|} \sum_{i \in B} \nabla \ell_i(\theta)",
        hypers: hypers![LR, SCHEDULE, BATCH_SIZE],
        convention: "one iteration = one epoch; the last batch may be smaller",
        source: "seed 002 (Vanilla Minibatch Gradient Descent), 004",
        stochastic: true,
    },
    Entry {
        optimizer: Optimizer::Momentum,
        family: Family::FirstOrder,
        summary: "heavy-ball momentum",
        rule: "v ← ρ v + g;  θ ← θ − α v      (--momentum-form average: v ← β v + (1 − β) g)",
        latex: r"v \leftarrow \rho v + \nabla L(\theta), \quad \theta \leftarrow \theta - \alpha v",
        hypers: hypers![LR_MOMENTUM, MOMENTUM, MOMENTUM_FORM, SCHEDULE, BATCH_SIZE],
        convention: "classic v ← ρv + g as seed 002 / CS231n / PyTorch; seed 004's exponential average v ← βv + (1−β)g with --momentum-form average",
        source: "seed 002 (SGD + Momentum), seed 004 (Momentum)",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::Nesterov,
        family: Family::FirstOrder,
        summary: "Nesterov momentum (look-ahead), in the rearranged form",
        rule: "v_prev ← v;  v ← ρ v − α g;  θ ← θ − ρ v_prev + (1 + ρ) v",
        latex: r"v' = \rho v - \alpha \nabla L(\theta), \quad \theta \leftarrow \theta - \rho v + (1+\rho) v'",
        hypers: hypers![LR_FROM_CURVATURE, MOMENTUM, SCHEDULE, BATCH_SIZE],
        convention: "the gradient is taken at the stored iterate (seed 002's change of variables), which equals evaluating it at the look-ahead point θ + ρv",
        source: "seed 002 (Aside: Nesterov Momentum)",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::AdaGrad,
        family: Family::FirstOrder,
        summary: "per-coordinate rates from the sum of squared gradients",
        rule: "s ← s + g²;  θ ← θ − α g / (√s + ε)",
        latex: r"s \leftarrow s + g^2, \quad \theta \leftarrow \theta - \frac{\alpha\, g}{\sqrt{s} + \epsilon}",
        hypers: hypers![LR_ADAGRAD, EPS, SCHEDULE, BATCH_SIZE],
        convention: "ε outside the square root (seed 002; PyTorch); TensorFlow puts an initial accumulator instead",
        source: "seed 002 (Aside: AdaGrad)",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::RmsProp,
        family: Family::FirstOrder,
        summary: "AdaGrad with a decaying average of squared gradients",
        rule: "s ← γ s + (1 − γ) g²;  θ ← θ − α g / (√s + ε)",
        latex: r"s \leftarrow \gamma s + (1-\gamma) g^2, \quad \theta \leftarrow \theta - \frac{\alpha\, g}{\sqrt{s} + \epsilon}",
        hypers: hypers![LR, DECAY, EPS, SCHEDULE, BATCH_SIZE],
        convention: "ε outside the square root (seed 002; PyTorch); Keras/TensorFlow add ε inside",
        source: "seed 002 (RMSProp)",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::Adam,
        family: Family::FirstOrder,
        summary: "Adam with bias correction; weight decay in the L2 form",
        rule: "g ← g + λθ;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  m̂ = m/(1−β₁ᵗ);  v̂ = v/(1−β₂ᵗ);  θ ← θ − α m̂/(√v̂ + ε)",
        latex: r"\hat m = \frac{m}{1-\beta_1^t},\ \hat v = \frac{v}{1-\beta_2^t}, \quad \theta \leftarrow \theta - \frac{\alpha\, \hat m}{\sqrt{\hat v} + \epsilon}",
        hypers: hypers![LR, BETA1, BETA2, EPS, WEIGHT_DECAY_L2, SCHEDULE, BATCH_SIZE],
        convention: "weight decay λ is added to the gradient before the moments (L2; seed 002: 'the regularization is done in x before gradient computation'); ε outside the square root",
        source: "seed 002 (Adam & AdamW)",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::AdamW,
        family: Family::FirstOrder,
        summary: "Adam with decoupled weight decay",
        rule: "m, v, m̂, v̂ as Adam (no λ in g);  θ ← θ − αλθ − α m̂/(√v̂ + ε)",
        latex: r"\theta \leftarrow \theta - \alpha\lambda\theta - \frac{\alpha\, \hat m}{\sqrt{\hat v} + \epsilon}",
        hypers: hypers![
            LR,
            BETA1,
            BETA2,
            EPS,
            WEIGHT_DECAY_DECOUPLED,
            SCHEDULE,
            BATCH_SIZE
        ],
        convention: "decay multiplied by α (PyTorch AdamW, Loshchilov & Hutter with schedule multiplier α); seed 002: 'the regularization term is added to the final x after the moments'",
        source: "seed 002 (Adam & AdamW)",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::Newton,
        family: Family::NewtonType,
        summary: "pure Newton: the full step to the minimiser of the quadratic model",
        rule: "solve H d = −g;  θ ← θ + d",
        latex: r"\theta \leftarrow \theta - H(\theta)^{-1} \nabla L(\theta)",
        hypers: &[],
        convention: "Cholesky; LU when H is not positive definite; eigen pseudo-inverse when singular. No safeguard: it converges to saddles too, and the run then says so",
        source: "seed 002 (Second-Order Optimization), seed 004 (Newton's method)",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::NewtonDamped,
        family: Family::NewtonType,
        summary: "Newton direction, modified Cholesky where H is not positive definite, with a backtracking Armijo line search",
        rule: "solve (H + τD) d = −g, D = diag(|hᵢᵢ|), τ = 0 if H ≻ 0, else the first of τ₀, 2τ₀, 4τ₀, … that Cholesky factors;  θ ← θ + αd, α = 1, ½, ¼, … until L(θ+αd) ≤ L(θ) + 10⁻⁴ α gᵀd",
        latex: r"\theta \leftarrow \theta + \alpha d,\quad (H + \tau D) d = -\nabla L,\quad L(\theta+\alpha d) \le L(\theta) + c_1 \alpha \nabla L^\top d",
        hypers: &[],
        convention: "D = diag(max(|hᵢᵢ|, 10⁻¹⁰ max|hⱼⱼ|)), τ₀ = β − min hᵢᵢ/dᵢ (β if the diagonal is positive), β = 10⁻³ (Nocedal & Wright Algorithm 3.3 on H scaled to a unit diagonal, so the shift does not depend on the parameters' units); d is always a descent direction; a shift τ > 0 is recorded as a modification",
        source: "seed 002 (Second-Order Optimization); Nocedal & Wright §3.1, §3.4",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::NewtonLm,
        family: Family::NewtonType,
        summary: "Levenberg–Marquardt regularised Newton",
        rule: "solve (H + λI) d = −g;  accept if L decreases (λ ← λ/3) else λ ← 4λ and retry",
        latex: r"(H + \lambda I)\, d = -\nabla L",
        hypers: hypers![DAMPING],
        convention: "λ also grows ×10 while H + λI is not positive definite",
        source: "seed 002 (the Hessian's ill-conditioning); Nocedal & Wright §10.3",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::NewtonSaddleFree,
        family: Family::NewtonType,
        summary: "saddle-free Newton: |H| from the eigendecomposition",
        rule: "H = QΛQᵀ;  d = −Q |Λ|⁻¹ Qᵀ g;  Armijo backtracking",
        latex: r"d = -|H|^{-1} \nabla L,\quad |H| = Q |\Lambda| Q^\top",
        hypers: &[],
        convention: "|λ| floored at 10⁻¹² · max|λ| (Dauphin et al. 2014)",
        source: "seed 004 (saddle points in high dimensions)",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::NewtonTr,
        family: Family::NewtonType,
        summary: "trust-region Newton: the subproblem solved exactly up to 200 parameters (as newton-exact-tr), by Steihaug's truncated CG above",
        rule: "p ≈ argmin_{‖p‖≤Δ} gᵀp + ½ pᵀHp (CG, stops at the boundary on negative curvature);  ρ = actual/predicted decrease;  accept if ρ > 10⁻⁴;  Δ ← Δ/4 if ρ < ¼, 2Δ if ρ > 0.9 at the boundary",
        latex: r"\min_{\|p\| \le \Delta} \nabla L^\top p + \tfrac12 p^\top H p",
        hypers: hypers![RADIUS],
        convention: "Nocedal & Wright Algorithms 4.1 and 7.2; up to 200 parameters it is newton-exact-tr under this name (`--subproblem exact|steihaug` to choose); CG needs only products Hv, from the Hessian–vector product kernel (H never formed) above 200 parameters, or above 400 when 8·rows·P bytes exceed 32 MiB and a product rereads rows that no longer fit in the cache (`--hessian dense|free` to choose)",
        source: "seed 002 (Second-Order Optimization)",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::NewtonExactTr,
        family: Family::NewtonType,
        summary: "trust-region Newton, the subproblem solved exactly (Moré–Sorensen, in H's eigenbasis)",
        rule: "p = argmin gᵀp + ½pᵀHp over ‖p‖ ≤ Δ: p = −(H + μI)⁻¹g, μ ≥ max(0, −λ₁) from the secular equation 1/Δ = 1/‖p(μ)‖, the hard case completed along λ₁'s eigenvector, and a direction of negative curvature g has no share of added as Moré–Sorensen's approximate hard-case step (≥ 80 % of the optimal decrease);  accept if ρ > 0.15;  Δ ← ¼Δ if ρ < ¼ (again while Δ ≥ ‖p‖), 2Δ (≤ 10¹⁰) if ρ > 0.9 at the boundary",
        latex: r"p = \arg\min_{\|p\| \le \Delta} \nabla L^\top p + \tfrac12 p^\top H p = -(H + \mu I)^{-1} \nabla L",
        hypers: hypers![RADIUS],
        convention: "one symmetric eigendecomposition per accepted step (O(P³): for P up to a few hundred); SciPy's trust-exact constants but Δ_max = 10¹⁰",
        source: "Moré & Sorensen (1983); Nocedal & Wright §4.3, Algorithm 4.1",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::NewtonCg,
        family: Family::NewtonType,
        summary: "truncated (Hessian-free) Newton: conjugate gradients on Hessian–vector products, never forming H",
        rule: "d ≈ −H⁻¹g by CG on H d = −g using only products Hv, stopped at ‖Hd + g‖ ≤ min(½, √‖g‖)‖g‖ or on negative curvature (d so far; −g first);  θ ← θ + αd, Armijo backtracking",
        latex: r"d \approx -H^{-1}\nabla L \text{ by CG on } Hv,\quad \theta \leftarrow \theta + \alpha d",
        hypers: &[],
        convention: "at most 2P + 10 CG iterations per step; each costs one Hessian–vector pass (about a gradient's cost for the compiled kernels and the loop IR)",
        source: "Nocedal & Wright Algorithm 7.1; Martens (2010); Pearlmutter (1994)",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::GaussNewton,
        family: Family::NewtonType,
        summary: "Gauss–Newton for losses that are a square per row (ℓᵢ = c·rᵢ²), with the regularizer's own Hessian",
        rule: "G = (1/N) Σ 2c ∇rᵢ∇rᵢᵀ + ∇²R;  solve G d = −g;  Armijo backtracking",
        latex: r"\Big(\tfrac{1}{N}\textstyle\sum_i 2c\, \nabla r_i \nabla r_i^\top + \nabla^2 R\Big)\, d = -\nabla L",
        hypers: &[],
        convention: "∇rᵢ∇rᵢᵀ is computed as gᵢgᵢᵀ/(4c·ℓᵢ) from each row's loss and gradient, so no residual Jacobian is needed (a regularizer needs a model in index form: R, ∇R and ∇²R come from a pass over no rows, and each row's ℓᵢ and gᵢ are its one-row pass less them); a damping μI (from 10⁻¹² of the largest diagonal entry, ×10) is added while G is singular",
        source: "seed 002 (Second-Order Optimization); Nocedal & Wright §10.3",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::Bfgs,
        family: Family::QuasiNewton,
        summary: "BFGS quasi-Newton with a strong-Wolfe line search",
        rule: "d = −Hₖ g;  θ₊ = θ + αd (Wolfe);  s = θ₊ − θ, y = g₊ − g, ρ = 1/yᵀs;  Hₖ₊₁ = (I − ρsyᵀ)Hₖ(I − ρysᵀ) + ρssᵀ",
        latex: r"H_{k+1} = (I - \rho s y^\top) H_k (I - \rho y s^\top) + \rho s s^\top",
        hypers: &[],
        convention: "H₀ = I, as SciPy's (the first step is scaled to unit length); c₁ = 10⁻⁴, c₂ = 0.9 (Hager–Zhang's approximate Wolfe conditions once rounding hides the decrease); the update is skipped when yᵀs ≤ 0",
        source: "seed 002 (Quasi-Newton methods (BFGS))",
        stochastic: false,
    },
    Entry {
        optimizer: Optimizer::Lbfgs,
        family: Family::QuasiNewton,
        summary: "limited-memory BFGS (two-loop recursion)",
        rule: "d = −Hₖ g from the last m pairs (s, y) by the two-loop recursion, H⁰ = (sᵀy/yᵀy) I;  strong-Wolfe line search",
        latex: r"d = -H_k \nabla L \text{ from } \{(s_i, y_i)\}_{i=k-m}^{k-1}",
        hypers: hypers![MEMORY],
        convention: "Nocedal & Wright Algorithm 7.4",
        source: "seed 002 (L-BFGS)",
        stochastic: false,
    },
];

impl Optimizer {
    /// Every optimizer, in the catalogue's order.
    pub fn all() -> impl Iterator<Item = Optimizer> {
        CATALOG.iter().map(|e| e.optimizer)
    }

    /// Its catalogue entry.
    pub fn entry(self) -> &'static Entry {
        CATALOG
            .iter()
            .find(|e| e.optimizer == self)
            .expect("every optimizer has an entry (tested)")
    }

    /// How it uses the derivatives.
    pub fn family(self) -> Family {
        self.entry().family
    }

    /// Whether its default step is computed from L = λ_max(∇²L(θ₀)) — and
    /// so needs one Hessian pass at the start — with these settings (not
    /// when `--lr` is given).
    pub fn wants_curvature(self, s: &Settings) -> bool {
        s.lr.is_none()
            && self
                .entry()
                .hypers
                .iter()
                .any(|h| matches!(h.default, DefaultValue::FromCurvature(_)))
    }
}

impl Entry {
    /// The name (`--optimizer NAME`).
    pub fn name(&self) -> &'static str {
        self.optimizer.name()
    }
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
    /// Momentum's form (`momentum`; the others ignore it).
    pub momentum_form: MomentumForm,
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
    /// Dense Hessian or Hessian–vector products, for the methods that can
    /// use either (`newton-tr`).
    pub hessian: HessianPath,
    /// How `newton-tr` solves its subproblem (the others ignore it).
    pub subproblem: Subproblem,
    /// Newton–CG's preconditioner (`newton-cg`; the others ignore it).
    pub precondition: Preconditioner,
}

/// The optimizer `name` with these settings (see [`Optimizer::build`]).
pub fn build(name: &str, s: &Settings) -> Result<Box<dyn Method>, BuildError> {
    name.parse::<Optimizer>()?.build(s)
}

impl Optimizer {
    /// Make this optimizer with these settings; every hyper-parameter is
    /// checked against its catalogue range, and an error names the
    /// optimizer, the flag, the range and the default.
    pub fn build(self, s: &Settings) -> Result<Box<dyn Method>, BuildError> {
        // 1/L, or 1e-3 when L is unknown or not positive.
        let inv_l = Some(s.curvature.filter(|l| *l > 0.0).map_or(1e-3, |l| 1.0 / l));
        let lr = |computed: Option<f64>| learning_rate(self).value(self, s.lr, computed);
        let rho = || MOMENTUM.value(self, s.momentum, None);
        let eps = || EPS.value(self, s.eps, None);
        let adam = |decoupled: bool| -> Result<Rule, BuildError> {
            let weight_decay = if decoupled {
                WEIGHT_DECAY_DECOUPLED
            } else {
                WEIGHT_DECAY_L2
            };
            Ok(Rule::Adam {
                beta1: BETA1.value(self, s.beta1, None)?,
                beta2: BETA2.value(self, s.beta2, None)?,
                eps: eps()?,
                weight_decay: weight_decay.value(self, s.weight_decay, None)?,
                decoupled,
                m: vec![],
                v: vec![],
                t: 0,
            })
        };
        let (rule, lr, default_batch) = match self {
            Optimizer::Gd => (Rule::GradientDescent, lr(inv_l)?, None),
            Optimizer::Sgd => (Rule::GradientDescent, lr(None)?, Some(1)),
            Optimizer::Minibatch => (Rule::GradientDescent, lr(None)?, Some(32)),
            Optimizer::Momentum => {
                let rho = rho()?;
                let form = s.momentum_form;
                let default = match form {
                    MomentumForm::Classic => inv_l.map(|i| (1.0 - rho) * i),
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
            Optimizer::Nesterov => (
                Rule::Nesterov {
                    rho: rho()?,
                    v: vec![],
                },
                lr(inv_l)?,
                None,
            ),
            Optimizer::AdaGrad => (
                Rule::AdaGrad {
                    eps: eps()?,
                    s: vec![],
                },
                lr(None)?,
                None,
            ),
            Optimizer::RmsProp => (
                Rule::RmsProp {
                    decay: DECAY.value(self, s.decay, None)?,
                    eps: eps()?,
                    s: vec![],
                },
                lr(None)?,
                None,
            ),
            Optimizer::Adam => (adam(false)?, lr(None)?, None),
            Optimizer::AdamW => (adam(true)?, lr(None)?, None),
            Optimizer::Newton => return Ok(Box::new(Newton::new(NewtonKind::Pure))),
            Optimizer::NewtonDamped => return Ok(Box::new(Newton::new(NewtonKind::Damped))),
            Optimizer::NewtonSaddleFree => {
                return Ok(Box::new(Newton::new(NewtonKind::SaddleFree)));
            }
            Optimizer::GaussNewton => {
                return Ok(Box::new(
                    Newton::new(NewtonKind::GaussNewton).with_hessian(s.hessian),
                ));
            }
            Optimizer::NewtonLm => {
                let lambda = DAMPING.value(self, s.damping, None)?;
                return Ok(Box::new(
                    Newton::new(NewtonKind::LevenbergMarquardt).with_lambda(lambda)?,
                ));
            }
            Optimizer::NewtonTr => {
                let radius = RADIUS.value(self, s.radius, None)?;
                return Ok(Box::new(
                    TrustRegion::new(radius)?
                        .with_hessian(s.hessian)
                        .with_subproblem(s.subproblem)?,
                ));
            }
            Optimizer::NewtonExactTr => {
                let radius = RADIUS.value(self, s.radius, None)?;
                return Ok(Box::new(ExactTrustRegion::new(radius)?));
            }
            Optimizer::NewtonCg => {
                return Ok(Box::new(
                    NewtonCg::new().with_preconditioner(s.precondition),
                ));
            }
            Optimizer::Bfgs => return Ok(Box::new(QuasiNewton::bfgs())),
            Optimizer::Lbfgs => {
                let m = MEMORY.value(self, s.memory.map(|m| m as f64), None)?;
                return Ok(Box::new(QuasiNewton::lbfgs(m as usize)?));
            }
        };
        let batching = match s.batch_size.or(default_batch) {
            Some(size) => Batching::MiniBatch { size, seed: s.seed },
            None => Batching::Full,
        };
        Ok(Box::new(
            FirstOrder::new(rule, lr)?
                .with_schedule(s.schedule.clone())
                .with_batching(batching)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::Choice;

    /// A choice's names are distinct, each names back its own choice, and
    /// the first is the one `Settings::default()` holds.
    fn names_round_trip<T: Choice + PartialEq + std::fmt::Debug>(default: T) {
        let names: Vec<&str> = T::names().collect();
        let mut distinct = names.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        for &(name, choice) in T::CHOICES {
            assert_eq!(T::named(name), Some(choice), "{name}");
        }
        assert_eq!(T::CHOICES[0].1, default, "{names:?}");
        assert_eq!(T::named("sideways"), None);
    }

    #[test]
    fn every_setting_chosen_by_name_reads_its_names_back_and_defaults_to_the_first() {
        let s = Settings::default();
        names_round_trip(s.hessian);
        names_round_trip(s.subproblem);
        names_round_trip(s.precondition);
        names_round_trip(s.momentum_form);
    }

    #[test]
    fn every_optimizer_has_one_entry_a_name_that_parses_back_and_builds_with_its_defaults() {
        let all: Vec<Optimizer> = Optimizer::all().collect();
        assert_eq!(all.len(), CATALOG.len());
        for o in all {
            assert_eq!(
                CATALOG.iter().filter(|e| e.optimizer == o).count(),
                1,
                "{o}"
            );
            assert_eq!(o.name().parse::<Optimizer>(), Ok(o));
            let settings = Settings {
                curvature: Some(4.0),
                ..Settings::default()
            };
            let method = o.build(&settings).unwrap_or_else(|e| panic!("{o}: {e}"));
            assert_eq!(method.name(), o.name());
            assert_eq!(
                method.uses_hessian(),
                o.family() == Family::NewtonType
                    && !matches!(o, Optimizer::GaussNewton | Optimizer::NewtonCg),
                "{o}"
            );
        }
        assert!(matches!(
            "adam2".parse::<Optimizer>(),
            Err(BuildError::Unknown(_))
        ));
    }

    #[test]
    fn the_leaf_and_the_catalogue_list_the_same_optimizers_and_learning_rates() {
        assert!(Optimizer::ALL.into_iter().eq(Optimizer::all()));
        for e in CATALOG.iter().filter(|e| e.family == Family::FirstOrder) {
            let documented = e.hypers.iter().find(|h| h.flag == "--lr");
            assert_eq!(
                documented,
                Some(&learning_rate(e.optimizer)),
                "{}",
                e.name()
            );
        }
    }

    #[test]
    fn a_value_out_of_range_names_the_optimizer_the_range_and_the_default() {
        let cases: [(Optimizer, Settings, &str); 4] = [
            (
                Optimizer::Momentum,
                Settings {
                    momentum: Some(1.0),
                    ..Settings::default()
                },
                "momentum: --momentum 1 is out of range: expected [0, 1) (the default is 0.9",
            ),
            (
                Optimizer::NewtonLm,
                Settings {
                    damping: Some(0.0),
                    ..Settings::default()
                },
                "newton-lm: --damping 0 is out of range: expected > 0 (the default is 1e-3",
            ),
            (
                Optimizer::Lbfgs,
                Settings {
                    memory: Some(0),
                    ..Settings::default()
                },
                "lbfgs: --memory 0 is out of range: expected ≥ 1 (the default is 10",
            ),
            (
                Optimizer::Adam,
                Settings {
                    eps: Some(f64::NAN),
                    ..Settings::default()
                },
                "adam: --eps NaN is out of range: expected ≥ 0 (the default is 1e-8",
            ),
        ];
        for (o, settings, message) in cases {
            let e = o
                .build(&settings)
                .err()
                .unwrap_or_else(|| panic!("{o} accepted it"));
            assert!(e.to_string().starts_with(message), "{e}");
        }
    }

    #[test]
    fn only_the_optimizers_whose_default_step_is_1_over_l_want_the_curvature() {
        let wanting: Vec<&str> = Optimizer::all()
            .filter(|o| o.wants_curvature(&Settings::default()))
            .map(Optimizer::name)
            .collect();
        assert_eq!(wanting, ["gd", "momentum", "nesterov"]);
        let given = Settings {
            lr: Some(0.1),
            ..Settings::default()
        };
        assert!(!Optimizer::Gd.wants_curvature(&given));
    }
}
