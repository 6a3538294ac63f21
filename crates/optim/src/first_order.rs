//! First-order update rules, written as the source material writes them
//! (`../shared/seeds/`; 002 is the CS231n-style lecture notes, 004 the
//! "Gradient descent strategies" notes). Each rule is state + an update
//! θ ← θ − (step computed from g); schedules and batching are separate
//! pieces ([`crate::schedule`], [`FirstOrder`]) that wrap any rule, in the
//! spirit of optax's gradient transformations.
//!
//! Conventions where libraries differ are named, not hidden:
//! - momentum: [`MomentumForm::Classic`] v ← ρv + g (seed 002, CS231n,
//!   PyTorch) or [`MomentumForm::Average`] v ← βv + (1−β)g (seed 004); θ ← θ − αv;
//! - Nesterov: the look-ahead rewritten in the current iterate (seed 002:
//!   v_prev = v; v ← ρv − α g; θ ← θ − ρ v_prev + (1+ρ) v);
//! - AdaGrad/RMSProp/Adam: ε outside the square root, g/(√s + ε) (seed 002);
//! - Adam's weight decay: the L2 form adds λθ to g before the moments (seed 002,
//!   "For Standard Adam, the regularization is done in x before gradient
//!   computation"); AdamW decays θ itself after the moments, θ ← θ − αλθ − α m̂/(√v̂ + ε).

use crate::method::{Method, Point, Step};
use crate::objective::Objective;
use crate::optimizer::{BuildError, Choice, DefaultValue, Hyper, Optimizer, Range};
use crate::schedule::Schedule;
use hessforge_ir::Rows;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The hyper-parameters of the first-order rules and their batching.
/// α of `gd` and `nesterov`: 1/L by default.
pub const LR_FROM_CURVATURE: Hyper = Hyper {
    flag: "--lr",
    default: DefaultValue::FromCurvature("1/L, L = largest Hessian eigenvalue at θ₀"),
    range: Range::Positive,
};
/// α of `momentum`: (1 − ρ)/L or 1/L by default.
pub const LR_MOMENTUM: Hyper = Hyper {
    flag: "--lr",
    default: DefaultValue::FromCurvature("(1 − ρ)/L (classic), 1/L (average)"),
    range: Range::Positive,
};
/// α of `sgd`, `minibatch`, `rmsprop`, `adam` and `adamw`.
pub const LR: Hyper = Hyper {
    flag: "--lr",
    default: DefaultValue::Number(0.01),
    range: Range::Positive,
};
/// α of `adagrad`.
pub const LR_ADAGRAD: Hyper = Hyper {
    flag: "--lr",
    default: DefaultValue::Number(0.1),
    range: Range::Positive,
};
/// ρ (classic) or β (average) of `momentum` and `nesterov`.
pub const MOMENTUM: Hyper = Hyper {
    flag: "--momentum",
    default: DefaultValue::Number(0.9),
    range: Range::Unit,
};
/// Which momentum form ([`MomentumForm`]).
pub const MOMENTUM_FORM: Hyper = Hyper {
    flag: "--momentum-form",
    default: DefaultValue::Described("classic"),
    range: Range::Described("classic | average"),
};
/// ε of AdaGrad, RMSProp and Adam(W).
pub const EPS: Hyper = Hyper {
    flag: "--eps",
    default: DefaultValue::Number(1e-8),
    range: Range::NonNegative,
};
/// β₁ of Adam(W).
pub const BETA1: Hyper = Hyper {
    flag: "--beta1",
    default: DefaultValue::Number(0.9),
    range: Range::Unit,
};
/// β₂ of Adam(W).
pub const BETA2: Hyper = Hyper {
    flag: "--beta2",
    default: DefaultValue::Number(0.999),
    range: Range::Unit,
};
/// γ of RMSProp.
pub const DECAY: Hyper = Hyper {
    flag: "--decay",
    default: DefaultValue::Number(0.9),
    range: Range::Unit,
};
/// λ of `adam` (the L2 form).
pub const WEIGHT_DECAY_L2: Hyper = Hyper {
    flag: "--weight-decay",
    default: DefaultValue::Number(0.0),
    range: Range::NonNegative,
};
/// λ of `adamw` (decoupled).
pub const WEIGHT_DECAY_DECOUPLED: Hyper = Hyper {
    flag: "--weight-decay",
    default: DefaultValue::Number(0.01),
    range: Range::NonNegative,
};
/// Rows per mini-batch ([`Batching`]).
pub const BATCH_SIZE: Hyper = Hyper {
    flag: "--batch-size",
    default: DefaultValue::Described("full batch (sgd: 1, minibatch: 32)"),
    range: Range::Described("1..N; with --seed for the shuffles"),
};

/// The `--lr` of a first-order optimizer (its default differs by rule).
pub fn learning_rate(optimizer: Optimizer) -> Hyper {
    match optimizer {
        Optimizer::Gd | Optimizer::Nesterov => LR_FROM_CURVATURE,
        Optimizer::Momentum => LR_MOMENTUM,
        Optimizer::AdaGrad => LR_ADAGRAD,
        _ => LR,
    }
}

/// How momentum accumulates gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MomentumForm {
    /// v ← ρv + g (seed 002; CS231n, PyTorch `SGD(momentum)`).
    #[default]
    Classic,
    /// v ← βv + (1−β)g, an exponential average (seed 004).
    Average,
}

impl Choice for MomentumForm {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("classic", Self::Classic), ("average", Self::Average)];
}

/// One first-order rule and its state.
#[derive(Debug, Clone)]
pub enum Rule {
    /// θ ← θ − α g (seeds 002, 003, 004).
    GradientDescent,
    /// Heavy-ball momentum (seed 002 "SGD + Momentum"; seed 004 item 3).
    Momentum {
        /// ρ (or β for the average form).
        rho: f64,
        /// The accumulation convention.
        form: MomentumForm,
        /// Velocity v.
        v: Vec<f64>,
    },
    /// Nesterov momentum in the form of seed 002 (gradient at the current iterate).
    Nesterov {
        /// ρ.
        rho: f64,
        /// Velocity v.
        v: Vec<f64>,
    },
    /// s ← s + g²; θ ← θ − α g/(√s + ε) (seed 002 "AdaGrad").
    AdaGrad {
        /// ε.
        eps: f64,
        /// Sum of squared gradients s.
        s: Vec<f64>,
    },
    /// s ← γs + (1−γ)g²; θ ← θ − α g/(√s + ε) (seed 002 "RMSProp").
    RmsProp {
        /// Decay γ.
        decay: f64,
        /// ε.
        eps: f64,
        /// Moving average of squared gradients s.
        s: Vec<f64>,
    },
    /// Adam with bias correction (seed 002 "Adam & AdamW"); with `decoupled`
    /// the weight decay is AdamW's, else it is the L2 form (g ← g + λθ).
    Adam {
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε.
        eps: f64,
        /// λ, the weight decay (0: none).
        weight_decay: f64,
        /// AdamW's decoupled decay instead of L2.
        decoupled: bool,
        /// First moment m.
        m: Vec<f64>,
        /// Second moment v.
        v: Vec<f64>,
        /// Updates so far (t in the bias correction).
        t: u64,
    },
}

impl Rule {
    /// Size the state for P parameters and zero it.
    pub fn reset(&mut self, p: usize) {
        let zero = |v: &mut Vec<f64>| {
            v.clear();
            v.resize(p, 0.0);
        };
        match self {
            Rule::GradientDescent => {}
            Rule::Momentum { v, .. } | Rule::Nesterov { v, .. } => zero(v),
            Rule::AdaGrad { s, .. } | Rule::RmsProp { s, .. } => zero(s),
            Rule::Adam { m, v, t, .. } => {
                zero(m);
                zero(v);
                *t = 0;
            }
        }
    }

    /// One update of θ from the gradient g at θ with learning rate α.
    pub fn apply(&mut self, theta: &mut [f64], g: &[f64], alpha: f64) {
        match self {
            Rule::GradientDescent => {
                for (x, gi) in theta.iter_mut().zip(g) {
                    *x -= alpha * gi;
                }
            }
            Rule::Momentum { rho, form, v } => {
                for ((x, gi), vi) in theta.iter_mut().zip(g).zip(v.iter_mut()) {
                    *vi = match form {
                        MomentumForm::Classic => *rho * *vi + gi,
                        MomentumForm::Average => *rho * *vi + (1.0 - *rho) * gi,
                    };
                    *x -= alpha * *vi;
                }
            }
            Rule::Nesterov { rho, v } => {
                for ((x, gi), vi) in theta.iter_mut().zip(g).zip(v.iter_mut()) {
                    let v_prev = *vi;
                    *vi = *rho * *vi - alpha * gi;
                    *x += -*rho * v_prev + (1.0 + *rho) * *vi;
                }
            }
            Rule::AdaGrad { eps, s } => {
                for ((x, gi), si) in theta.iter_mut().zip(g).zip(s.iter_mut()) {
                    *si += gi * gi;
                    *x -= alpha * gi / (si.sqrt() + *eps);
                }
            }
            Rule::RmsProp { decay, eps, s } => {
                for ((x, gi), si) in theta.iter_mut().zip(g).zip(s.iter_mut()) {
                    *si = *decay * *si + (1.0 - *decay) * gi * gi;
                    *x -= alpha * gi / (si.sqrt() + *eps);
                }
            }
            Rule::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                decoupled,
                m,
                v,
                t,
            } => {
                *t += 1;
                let c1 = 1.0 - beta1.powi(*t as i32);
                let c2 = 1.0 - beta2.powi(*t as i32);
                for (i, x) in theta.iter_mut().enumerate() {
                    let gi = if *decoupled {
                        g[i]
                    } else {
                        g[i] + *weight_decay * *x
                    };
                    m[i] = *beta1 * m[i] + (1.0 - *beta1) * gi;
                    v[i] = *beta2 * v[i] + (1.0 - *beta2) * gi * gi;
                    let step = (m[i] / c1) / ((v[i] / c2).sqrt() + *eps);
                    if *decoupled {
                        *x -= alpha * *weight_decay * *x;
                    }
                    *x -= alpha * step;
                }
            }
        }
    }
}

/// Which rows each update reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// Every row: one update per iteration.
    Full,
    /// Mini-batches of this many rows from a per-epoch shuffle (seeded);
    /// one iteration is one epoch. Size 1 is SGD (seed 002: "the extreme
    /// case … a single example").
    MiniBatch {
        /// Rows per mini-batch.
        size: usize,
        /// Seed of the shuffles.
        seed: u64,
    },
}

/// A first-order optimizer: a rule, a schedule of α, and a batching.
#[derive(Debug, Clone)]
pub struct FirstOrder {
    /// The update rule and its state.
    pub rule: Rule,
    /// The base learning rate α.
    pub lr: f64,
    /// α over the updates.
    pub schedule: Schedule,
    /// Full batch or mini-batches.
    pub batching: Batching,
    updates: u64,
    order: Vec<usize>,
    batch_grad: Vec<f64>,
    previous: Vec<f64>,
    rng: Option<ChaCha8Rng>,
}

impl FirstOrder {
    /// A full-batch optimizer with a constant rate, checked against the
    /// range of `--lr` (α > 0).
    pub fn new(rule: Rule, lr: f64) -> Result<Self, BuildError> {
        let optimizer = rule.optimizer();
        let lr = learning_rate(optimizer).value(optimizer, Some(lr), None)?;
        Ok(FirstOrder {
            rule,
            lr,
            schedule: Schedule::default(),
            batching: Batching::Full,
            updates: 0,
            order: Vec::new(),
            batch_grad: Vec::new(),
            previous: Vec::new(),
            rng: None,
        })
    }

    /// With this schedule.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The optimizer this is: the rule's, or SGD and mini-batch for
    /// gradient descent on mini-batches.
    pub fn optimizer(&self) -> Optimizer {
        match (self.batching, &self.rule) {
            (Batching::MiniBatch { size: 1, .. }, Rule::GradientDescent) => Optimizer::Sgd,
            (Batching::MiniBatch { .. }, Rule::GradientDescent) => Optimizer::Minibatch,
            _ => self.rule.optimizer(),
        }
    }

    /// With this batching; a mini-batch has at least one row.
    pub fn with_batching(mut self, batching: Batching) -> Result<Self, BuildError> {
        if let Batching::MiniBatch { size: 0, .. } = batching {
            return Err(BuildError::OutOfRange {
                optimizer: self.optimizer().name(),
                flag: BATCH_SIZE.flag,
                value: 0.0,
                range: "≥ 1",
                default: BATCH_SIZE.default.to_string(),
            });
        }
        self.batching = batching;
        Ok(self)
    }

    /// Size the state for `p` parameters and `rows` data rows.
    pub fn reset(&mut self, p: usize, rows: usize) {
        self.rule.reset(p);
        self.updates = 0;
        self.batch_grad.clear();
        self.batch_grad.resize(p, 0.0);
        self.previous.clear();
        self.previous.reserve(p);
        self.order = (0..rows).collect();
        if let Batching::MiniBatch { seed, .. } = self.batching {
            self.rng = Some(ChaCha8Rng::seed_from_u64(seed));
        }
    }

    /// One iteration: one update from the full gradient `grad` at θ, or one
    /// epoch of mini-batch updates. `horizon` is the update budget for
    /// schedules without their own. Returns the last α used.
    pub fn iterate(
        &mut self,
        objective: &dyn Objective,
        theta: &mut [f64],
        grad: &[f64],
        horizon: u64,
    ) -> f64 {
        let mut alpha = self.schedule.rate(self.lr, self.updates, horizon);
        match self.batching {
            Batching::MiniBatch { size, .. } if !self.order.is_empty() => {
                let rng = self.rng.as_mut().expect("reset() seeds the shuffle");
                self.order.shuffle(rng);
                let epochs_horizon = horizon.saturating_mul(self.order.len().div_ceil(size) as u64);
                for batch in self.order.chunks(size.max(1)) {
                    alpha = self.schedule.rate(self.lr, self.updates, epochs_horizon);
                    objective.loss_grad(theta, Rows::Selected(batch), &mut self.batch_grad);
                    self.rule.apply(theta, &self.batch_grad, alpha);
                    self.updates += 1;
                }
            }
            _ => {
                self.rule.apply(theta, grad, alpha);
                self.updates += 1;
            }
        }
        alpha
    }
}

impl Rule {
    /// The optimizer of this rule, full batch.
    pub fn optimizer(&self) -> Optimizer {
        match self {
            Rule::GradientDescent => Optimizer::Gd,
            Rule::Momentum { .. } => Optimizer::Momentum,
            Rule::Nesterov { .. } => Optimizer::Nesterov,
            Rule::AdaGrad { .. } => Optimizer::AdaGrad,
            Rule::RmsProp { .. } => Optimizer::RmsProp,
            Rule::Adam {
                decoupled: true, ..
            } => Optimizer::AdamW,
            Rule::Adam { .. } => Optimizer::Adam,
        }
    }
}

impl Method for FirstOrder {
    fn name(&self) -> &str {
        self.optimizer().name()
    }
    fn uses_hessian(&self) -> bool {
        false
    }
    fn reset(&mut self, p: usize, rows: usize) {
        FirstOrder::reset(self, p, rows);
    }
    fn step(&mut self, objective: &dyn Objective, at: &mut Point, horizon: u64) -> Step {
        self.previous.clear();
        self.previous.extend_from_slice(&at.theta);
        let alpha = self.iterate(objective, &mut at.theta, &at.grad, horizon);
        let moved: f64 = at
            .theta
            .iter()
            .zip(&self.previous)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        Step::moved(moved.sqrt(), alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L = ½(x² + 4y²), ∇L = (x, 4y).
    fn grad(t: &[f64]) -> [f64; 2] {
        [t[0], 4.0 * t[1]]
    }

    fn three_steps(mut rule: Rule, alpha: f64) -> Vec<[f64; 2]> {
        rule.reset(2);
        let mut theta = [1.0, 1.0];
        (0..3)
            .map(|_| {
                let g = grad(&theta);
                rule.apply(&mut theta, &g, alpha);
                theta
            })
            .collect()
    }

    fn close(a: &[[f64; 2]], b: &[[f64; 2]]) {
        for (x, y) in a.iter().zip(b) {
            for k in 0..2 {
                assert!((x[k] - y[k]).abs() < 1e-12, "{a:?} vs {b:?}");
            }
        }
    }

    // The expected values below are worked by hand from the update rules,
    // starting at θ = (1, 1), g = (x, 4y).

    #[test]
    fn gradient_descent() {
        // x ← 0.9x, y ← 0.6y
        close(
            &three_steps(Rule::GradientDescent, 0.1),
            &[[0.9, 0.6], [0.81, 0.36], [0.729, 0.216]],
        );
    }

    #[test]
    fn momentum_classic_and_average() {
        let classic = Rule::Momentum {
            rho: 0.5,
            form: MomentumForm::Classic,
            v: vec![],
        };
        // v1 = (1, 4), θ1 = (0.9, 0.6); g1 = (0.9, 2.4), v2 = (1.4, 4.4), θ2 = (0.76, 0.16);
        // g2 = (0.76, 0.64), v3 = (1.46, 2.84), θ3 = (0.614, −0.124)
        close(
            &three_steps(classic, 0.1),
            &[[0.9, 0.6], [0.76, 0.16], [0.614, -0.124]],
        );
        let average = Rule::Momentum {
            rho: 0.5,
            form: MomentumForm::Average,
            v: vec![],
        };
        // v1 = (0.5, 2), θ1 = (0.95, 0.8); g1 = (0.95, 3.2), v2 = (0.725, 2.6), θ2 = (0.8775, 0.54);
        // g2 = (0.8775, 2.16), v3 = (0.80125, 2.38), θ3 = (0.797375, 0.302)
        close(
            &three_steps(average, 0.1),
            &[[0.95, 0.8], [0.8775, 0.54], [0.797375, 0.302]],
        );
    }

    #[test]
    fn nesterov() {
        // v1 = −0.1(1, 4) = (−0.1, −0.4); θ1 = θ0 + 1.5 v1 = (0.85, 0.4)
        // g1 = (0.85, 1.6); v2 = 0.5(−0.1, −0.4) − 0.1(0.85, 1.6) = (−0.135, −0.36)
        // θ2 = θ1 − 0.5 v1 + 1.5 v2 = (0.85 + 0.05 − 0.2025, 0.4 + 0.2 − 0.54) = (0.6975, 0.06)
        // g2 = (0.6975, 0.24); v3 = (−0.0675 − 0.06975, −0.18 − 0.024) = (−0.13725, −0.204)
        // θ3 = (0.6975 + 0.0675 − 0.205875, 0.06 + 0.18 − 0.306) = (0.559125, −0.066)
        close(
            &three_steps(
                Rule::Nesterov {
                    rho: 0.5,
                    v: vec![],
                },
                0.1,
            ),
            &[[0.85, 0.4], [0.6975, 0.06], [0.559125, -0.066]],
        );
    }

    #[test]
    fn adagrad() {
        // ε = 0: s1 = (1, 16), θ1 = θ0 − 0.1(1, 1) = (0.9, 0.9)
        // g1 = (0.9, 3.6), s2 = (1.81, 28.96), θ2 = (0.9 − 0.09/√1.81, 0.9 − 0.36/√28.96)
        let r = three_steps(
            Rule::AdaGrad {
                eps: 0.0,
                s: vec![],
            },
            0.1,
        );
        let x2 = 0.9 - 0.09 / 1.81f64.sqrt();
        let y2 = 0.9 - 0.36 / 28.96f64.sqrt();
        // g2 = (x2, 4y2), s3 = s2 + g2², θ3 = θ2 − 0.1 g2/√s3
        let x3 = x2 - 0.1 * x2 / (1.81 + x2 * x2).sqrt();
        let y3 = y2 - 0.4 * y2 / (28.96 + 16.0 * y2 * y2).sqrt();
        close(&r, &[[0.9, 0.9], [x2, y2], [x3, y3]]);
    }

    #[test]
    fn rmsprop() {
        // γ = 0.5, ε = 0: s1 = 0.5(1, 16) = (0.5, 8); θ1 = (1 − 0.1/√0.5, 1 − 0.4/√8)
        let r = three_steps(
            Rule::RmsProp {
                decay: 0.5,
                eps: 0.0,
                s: vec![],
            },
            0.1,
        );
        let x1 = 1.0 - 0.1 / 0.5f64.sqrt();
        let y1 = 1.0 - 0.4 / 8f64.sqrt();
        close(&r[..1], &[[x1, y1]]);
        // step 2: g = (x1, 4y1), s2 = 0.25(1,16) + 0.5 g²
        let (gx, gy) = (x1, 4.0 * y1);
        let (sx, sy) = (0.25 + 0.5 * gx * gx, 4.0 + 0.5 * gy * gy);
        close(
            &r[1..2],
            &[[x1 - 0.1 * gx / sx.sqrt(), y1 - 0.1 * gy / sy.sqrt()]],
        );
    }

    fn adam(weight_decay: f64, decoupled: bool) -> Rule {
        Rule::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 0.0,
            weight_decay,
            decoupled,
            m: vec![],
            v: vec![],
            t: 0,
        }
    }

    #[test]
    fn adam_bias_correction_makes_the_first_step_alpha_times_sign() {
        // m̂1 = g, v̂1 = g², so the first step is α·sign(g) in every coordinate.
        let r = three_steps(adam(0.0, false), 0.1);
        close(&r[..1], &[[0.9, 0.9]]);
        // steps 2 and 3 from the formulas, coordinate by coordinate:
        // m ← 0.9m + 0.1g, v ← 0.999v + 0.001g², θ ← θ − 0.1 (m/(1−0.9ᵗ)) / √(v/(1−0.999ᵗ))
        let mut theta = [0.9, 0.9];
        let (mut m, mut v) = ([0.1, 0.4], [0.001, 0.016]);
        for (t, expected) in [(2, r[1]), (3, r[2])] {
            let g = [theta[0], 4.0 * theta[1]];
            for k in 0..2 {
                m[k] = 0.9 * m[k] + 0.1 * g[k];
                v[k] = 0.999 * v[k] + 0.001 * g[k] * g[k];
                let mhat = m[k] / (1.0 - 0.9f64.powi(t));
                let vhat = v[k] / (1.0 - 0.999f64.powi(t));
                theta[k] -= 0.1 * mhat / vhat.sqrt();
            }
            close(&[expected], &[theta]);
        }
    }

    #[test]
    fn adamw_decays_theta_and_adam_l2_decays_the_gradient() {
        // AdamW: θ1 = θ0 − αλθ0 − α·sign(g) = 1 − 0.1·0.5 − 0.1 = 0.85
        close(&three_steps(adam(0.5, true), 0.1)[..1], &[[0.85, 0.85]]);
        // Adam + L2: g ← g + λθ = (1.5, 4.5): still α·sign on the first step
        close(&three_steps(adam(0.5, false), 0.1)[..1], &[[0.9, 0.9]]);
        // …and they differ afterwards.
        let (w, l2) = (
            three_steps(adam(0.5, true), 0.1),
            three_steps(adam(0.5, false), 0.1),
        );
        assert!((w[2][0] - l2[2][0]).abs() > 1e-3);
    }
}
