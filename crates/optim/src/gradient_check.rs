//! The gradient check (seed 002: "Always use analytic gradient, but check
//! implementation with numerical gradient … use the centered difference
//! formula [f(x+h) − f(x−h)]/2h"): the analytic gradient against central
//! differences of the loss, and the analytic Hessian against central
//! differences of the gradient.

use crate::objective::Objective;
use hessforge_ir::Rows;
use serde::Serialize;

/// The largest errors of one kind of derivative.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Errors {
    /// max |exact − finite difference|.
    pub max_abs: f64,
    /// max |exact − fd| / max(1, |exact|, |fd|).
    pub max_rel: f64,
}

impl Errors {
    /// Take one comparison into account (NaN always counts as the worst).
    pub fn record(&mut self, exact: f64, fd: f64) {
        let abs = (exact - fd).abs();
        let rel = abs / exact.abs().max(fd.abs()).max(1.0);
        if abs.is_nan() || abs > self.max_abs {
            self.max_abs = abs;
        }
        if rel.is_nan() || rel > self.max_rel {
            self.max_rel = rel;
        }
    }

    /// Merge another set of errors.
    pub fn merge(&mut self, other: Errors) {
        for (mine, theirs) in [
            (&mut self.max_abs, other.max_abs),
            (&mut self.max_rel, other.max_rel),
        ] {
            if theirs.is_nan() || theirs > *mine {
                *mine = theirs;
            }
        }
    }
}

/// The central-difference step for a coordinate of value v: balances
/// truncation O(h²) against rounding O(ε/h) for O(1)-scaled functions.
pub fn step(v: f64) -> f64 {
    1e-5 * v.abs().max(1.0)
}

/// Gradient and Hessian errors of `objective` at θ.
pub fn check(objective: &dyn Objective, theta: &[f64]) -> (Errors, Errors) {
    let p = theta.len();
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    objective.loss_grad_hess(theta, Rows::All, &mut g, &mut h);
    let (mut gradient, mut hessian) = (Errors::default(), Errors::default());
    let (mut gp, mut gm) = (vec![0.0; p], vec![0.0; p]);
    let (mut plus, mut minus) = (theta.to_vec(), theta.to_vec());
    for j in 0..p {
        let s = step(theta[j]);
        plus[j] = theta[j] + s;
        minus[j] = theta[j] - s;
        let fd = (objective.loss(&plus, Rows::All) - objective.loss(&minus, Rows::All)) / (2.0 * s);
        gradient.record(g[j], fd);
        objective.loss_grad(&plus, Rows::All, &mut gp);
        objective.loss_grad(&minus, Rows::All, &mut gm);
        for i in 0..p {
            hessian.record(h[i * p + j], (gp[i] - gm[i]) / (2.0 * s));
        }
        plus[j] = theta[j];
        minus[j] = theta[j];
    }
    (gradient, hessian)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::FnObjective;

    #[test]
    fn a_right_gradient_passes_and_a_wrong_one_does_not() {
        let make = |wrong: f64| FnObjective {
            n_params: 2,
            loss: |t: &[f64]| t[0].powi(3) + t[0] * t[1].sin(),
            grad: move |t: &[f64], g: &mut [f64]| {
                g[0] = 3.0 * t[0] * t[0] + t[1].sin() + wrong;
                g[1] = t[0] * t[1].cos();
            },
            hess: |t: &[f64], h: &mut [f64]| {
                h.copy_from_slice(&[6.0 * t[0], t[1].cos(), t[1].cos(), -t[0] * t[1].sin()]);
            },
        };
        let (g, h) = check(&make(0.0), &[0.7, -0.3]);
        assert!(g.max_rel < 1e-8 && h.max_rel < 1e-8, "{g:?} {h:?}");
        let (g, _) = check(&make(1e-3), &[0.7, -0.3]);
        assert!(g.max_rel > 1e-4, "{g:?}");
    }
}
