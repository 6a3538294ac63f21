//! Quasi-Newton methods (seed 002: "Quasi-Newton methods (BFGS)", "L-BFGS
//! … does not store the full inverse Hessian"): curvature learned from
//! successive gradients, s = θ₊ − θ, y = g₊ − g, with a line search for the
//! strong Wolfe conditions (which keeps yᵀs > 0, so the update stays
//! positive definite). The first step is scaled to length 1. L-BFGS
//! scales its initial inverse Hessian at every iteration by γ = sᵀy/yᵀy
//! (Nocedal & Wright, 6.20, 7.20). BFGS keeps H₀ = I, as SciPy's does:
//! rescaling H₀ by 6.20's γ before the first update cost iterations on the
//! 22 classic problems (880 in total on the 20 both solve, against 808
//! without it and SciPy's 878; `benches/compare`, comparison 5).

use crate::line_search::{Ray, wolfe};
use crate::method::{Method, Point, Step, dot, norm};
use crate::objective::Objective;
use crate::optimizer::{BuildError, DefaultValue, Hyper, Optimizer, Range};

/// m, the pairs L-BFGS remembers.
pub const MEMORY: Hyper = Hyper {
    flag: "--memory",
    default: DefaultValue::Number(10.0),
    range: Range::AtLeastOne,
};

/// The inverse-Hessian approximation.
#[derive(Debug, Clone)]
enum Memory {
    /// BFGS: the dense P×P inverse Hessian Hₖ (row-major).
    Dense { inverse: Vec<f64>, hy: Vec<f64> },
    /// L-BFGS: the last m pairs (s, y) in a ring.
    Limited {
        m: usize,
        s: Vec<Vec<f64>>,
        y: Vec<Vec<f64>>,
        rho: Vec<f64>,
        alpha: Vec<f64>,
        len: usize,
        head: usize,
    },
}

/// BFGS or L-BFGS.
#[derive(Debug, Clone)]
pub struct QuasiNewton {
    memory: Memory,
    started: bool,
    d: Vec<f64>,
    trial: Vec<f64>,
    grad_new: Vec<f64>,
    s: Vec<f64>,
    y: Vec<f64>,
}

impl QuasiNewton {
    /// BFGS with a dense inverse Hessian.
    pub fn bfgs() -> Self {
        Self::with(Memory::Dense {
            inverse: vec![],
            hy: vec![],
        })
    }

    /// L-BFGS remembering `m` pairs, checked against the range of
    /// `--memory` (m ≥ 1).
    pub fn lbfgs(m: usize) -> Result<Self, BuildError> {
        MEMORY.value(Optimizer::Lbfgs, Some(m as f64), None)?;
        Ok(Self::with(Memory::Limited {
            m,
            s: vec![],
            y: vec![],
            rho: vec![],
            alpha: vec![],
            len: 0,
            head: 0,
        }))
    }

    fn with(memory: Memory) -> Self {
        QuasiNewton {
            memory,
            started: false,
            d: vec![],
            trial: vec![],
            grad_new: vec![],
            s: vec![],
            y: vec![],
        }
    }

    /// d = −H g.
    fn direction(&mut self, g: &[f64]) {
        let p = g.len();
        match &mut self.memory {
            Memory::Dense { inverse, .. } => {
                for i in 0..p {
                    self.d[i] = -dot(&inverse[i * p..(i + 1) * p], g);
                }
            }
            Memory::Limited {
                m,
                s,
                y,
                rho,
                alpha,
                len,
                head,
            } => {
                // The two-loop recursion (Nocedal & Wright, Algorithm 7.4).
                for (di, gi) in self.d.iter_mut().zip(g) {
                    *di = -gi;
                }
                let idx = |k: usize| (*head + *m - 1 - k) % *m; // k = 0: newest
                for k in 0..*len {
                    let i = idx(k);
                    alpha[i] = rho[i] * dot(&s[i], &self.d);
                    for (dj, yj) in self.d.iter_mut().zip(&y[i]) {
                        *dj -= alpha[i] * yj;
                    }
                }
                if *len > 0 {
                    let i = idx(0);
                    let gamma = dot(&s[i], &y[i]) / dot(&y[i], &y[i]);
                    self.d.iter_mut().for_each(|dj| *dj *= gamma);
                }
                for k in (0..*len).rev() {
                    let i = idx(k);
                    let beta = rho[i] * dot(&y[i], &self.d);
                    for (dj, sj) in self.d.iter_mut().zip(&s[i]) {
                        *dj += (alpha[i] - beta) * sj;
                    }
                }
            }
        }
    }

    /// Learn from (s, y); skipped when yᵀs is not safely positive.
    fn update(&mut self) {
        let p = self.s.len();
        let sy = dot(&self.s, &self.y);
        if sy <= 1e-12 * norm(&self.s) * norm(&self.y) {
            return;
        }
        let rho_new = 1.0 / sy;
        match &mut self.memory {
            Memory::Dense { inverse, hy } => {
                for i in 0..p {
                    hy[i] = dot(&inverse[i * p..(i + 1) * p], &self.y);
                }
                let yhy = dot(&self.y, hy);
                let c = rho_new * rho_new * yhy + rho_new;
                for i in 0..p {
                    for j in 0..p {
                        inverse[i * p + j] += -rho_new * (hy[i] * self.s[j] + self.s[i] * hy[j])
                            + c * self.s[i] * self.s[j];
                    }
                }
            }
            Memory::Limited {
                m,
                s,
                y,
                rho,
                len,
                head,
                ..
            } => {
                s[*head].copy_from_slice(&self.s);
                y[*head].copy_from_slice(&self.y);
                rho[*head] = rho_new;
                *head = (*head + 1) % *m;
                *len = (*len + 1).min(*m);
            }
        }
        self.started = true;
    }
}

impl Method for QuasiNewton {
    fn name(&self) -> &str {
        match self.memory {
            Memory::Dense { .. } => "bfgs",
            Memory::Limited { .. } => "lbfgs",
        }
    }
    fn uses_hessian(&self) -> bool {
        false
    }
    fn dense_matrix(&self, p: usize, _rows: usize) -> Option<&'static str> {
        let _ = p;
        matches!(self.memory, Memory::Dense { .. }).then_some("inverse-Hessian approximation")
    }
    fn reset(&mut self, p: usize, _rows: usize) {
        for v in [
            &mut self.d,
            &mut self.trial,
            &mut self.grad_new,
            &mut self.s,
            &mut self.y,
        ] {
            v.clear();
            v.resize(p, 0.0);
        }
        self.started = false;
        match &mut self.memory {
            Memory::Dense { inverse, hy } => {
                *inverse = vec![0.0; p * p];
                for i in 0..p {
                    inverse[i * p + i] = 1.0;
                }
                *hy = vec![0.0; p];
            }
            Memory::Limited {
                m,
                s,
                y,
                rho,
                alpha,
                len,
                head,
            } => {
                *s = vec![vec![0.0; p]; *m];
                *y = vec![vec![0.0; p]; *m];
                *rho = vec![0.0; *m];
                *alpha = vec![0.0; *m];
                *len = 0;
                *head = 0;
            }
        }
    }
    fn step(&mut self, objective: &dyn Objective, at: &mut Point, _horizon: u64) -> Step {
        self.direction(&at.grad);
        let mut slope = dot(&self.d, &at.grad);
        if slope.is_nan() || slope >= 0.0 {
            // Lost positive definiteness numerically: restart from −g.
            self.reset(at.grad.len(), 0);
            self.direction(&at.grad);
            slope = dot(&self.d, &at.grad);
        }
        let first = if self.started {
            1.0
        } else {
            1.0 / norm(&self.d).max(1.0)
        };
        let ray = Ray {
            theta: &at.theta,
            loss: at.loss,
            slope,
            direction: &self.d,
        };
        let Some(acc) = wolfe(objective, ray, first, &mut self.trial, &mut self.grad_new) else {
            return Step::failed("the line search found no point satisfying the Wolfe conditions");
        };
        for i in 0..self.s.len() {
            self.s[i] = self.trial[i] - at.theta[i];
            self.y[i] = self.grad_new[i] - at.grad[i];
        }
        self.update();
        at.theta.copy_from_slice(&self.trial);
        at.grad.copy_from_slice(&self.grad_new);
        at.loss = acc.loss;
        Step {
            step_norm: norm(&self.s),
            alpha: acc.alpha,
            evaluated: true,
            curvature: None,
            failure: None,
        }
    }
}
