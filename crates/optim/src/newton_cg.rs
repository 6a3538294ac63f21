//! Truncated Newton with a line search — Newton–CG, the Hessian-free
//! Newton method (Nocedal & Wright, Algorithm 7.1; Martens 2010): the
//! Newton system ∇²L d = −g is solved approximately by conjugate
//! gradients, which need only Hessian–vector products ∇²L·v. A compiled
//! kernel or the loop IR computes one without forming ∇²L, at about the
//! cost of a gradient (Pearlmutter 1994), so a step costs a few passes
//! whatever P is, where dense Newton needs P² numbers and a P³
//! factorisation.
//!
//! - Forcing: CG stops once ‖r‖ ≤ η‖g‖ with η = min(½, √‖g‖), which makes
//!   the outer iteration superlinear (Eisenstat–Walker's simplest choice).
//! - Negative curvature: when a CG direction p has pᵀ∇²Lp ≤ 0, CG stops
//!   and the iterate so far is used — −g when it is the first — so d is
//!   always a descent direction.
//! - At most 2P + 10 CG iterations per step; then Armijo backtracking from
//!   α = 1.

use crate::catalog::Optimizer;
use crate::line_search::{Ray, armijo};
use crate::method::{Curvature, Method, Modification, Point, Step, dot, norm};
use crate::objective::{Batch, Objective};

/// The matrix Newton–CG's conjugate gradients solve with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Product {
    /// ∇²L, by [`Objective::hess_vec`].
    #[default]
    Hessian,
    /// The Gauss–Newton matrix of a loss that is a square per row, by
    /// [`Objective::gauss_newton_vec`] (positive semi-definite: CG stops
    /// on zero curvature; Hessian-free `gauss-newton`).
    GaussNewton,
}

/// Newton–CG (truncated, Hessian-free Newton).
#[derive(Debug, Clone, Default)]
pub struct NewtonCg {
    /// What the products multiply by.
    pub product: Product,
    z: Vec<f64>,
    r: Vec<f64>,
    p: Vec<f64>,
    hp: Vec<f64>,
    trial: Vec<f64>,
}

impl NewtonCg {
    /// A Newton–CG method.
    pub fn new() -> Self {
        NewtonCg::default()
    }

    /// Hessian-free Gauss–Newton: CG on the Gauss–Newton matrix.
    pub fn gauss_newton() -> Self {
        NewtonCg {
            product: Product::GaussNewton,
            ..NewtonCg::default()
        }
    }
}

impl Method for NewtonCg {
    fn name(&self) -> &str {
        Optimizer::NewtonCg.name()
    }
    fn uses_hessian(&self) -> bool {
        false
    }
    fn reset(&mut self, p: usize, _rows: usize) {
        for v in [
            &mut self.z,
            &mut self.r,
            &mut self.p,
            &mut self.hp,
            &mut self.trial,
        ] {
            v.clear();
            v.resize(p, 0.0);
        }
    }
    fn step(&mut self, objective: &dyn Objective, at: &mut Point, _horizon: u64) -> Step {
        let n = at.grad.len();
        let gnorm = norm(&at.grad);
        let tolerance = gnorm.sqrt().min(0.5) * gnorm;
        self.z.fill(0.0);
        self.r.copy_from_slice(&at.grad);
        for (p, r) in self.p.iter_mut().zip(&self.r) {
            *p = -r;
        }
        let mut rayleigh_min = f64::INFINITY;
        let mut negative_curvature = false;
        let mut iterations = 0;
        for j in 0..2 * n + 10 {
            match self.product {
                Product::Hessian => {
                    objective.hess_vec(&at.theta, Batch::Full, &self.p, &mut self.hp);
                }
                Product::GaussNewton => {
                    if objective
                        .gauss_newton_vec(&at.theta, &self.p, &mut self.hp)
                        .is_none()
                    {
                        return Step::failed(
                            "Gauss–Newton needs a loss that is a square per row, ℓ = c·r²",
                        );
                    }
                }
            }
            iterations += 1;
            let php = dot(&self.p, &self.hp);
            rayleigh_min = rayleigh_min.min(php / dot(&self.p, &self.p));
            if php.is_nan() || php <= 0.0 {
                negative_curvature = true;
                if j == 0 {
                    for (z, g) in self.z.iter_mut().zip(&at.grad) {
                        *z = -g;
                    }
                }
                break;
            }
            let rr = dot(&self.r, &self.r);
            let alpha = rr / php;
            for i in 0..n {
                self.z[i] += alpha * self.p[i];
                self.r[i] += alpha * self.hp[i];
            }
            let rr_next = dot(&self.r, &self.r);
            if rr_next.sqrt() <= tolerance {
                break;
            }
            let beta = rr_next / rr;
            for (p, r) in self.p.iter_mut().zip(&self.r) {
                *p = -r + beta * *p;
            }
        }
        let slope = dot(&self.z, &at.grad);
        let curvature = Curvature {
            // The Gauss–Newton matrix's Rayleigh quotients say nothing of ∇²L.
            lambda_min: if self.product == Product::Hessian {
                rayleigh_min
            } else {
                f64::NAN
            },
            descent: slope < 0.0,
            modification: Modification::TruncatedCg {
                iterations,
                negative_curvature,
            },
        };
        let ray = Ray {
            theta: &at.theta,
            loss: at.loss,
            slope,
            direction: &self.z,
        };
        let mut step = match armijo(objective, ray, &mut self.trial) {
            Some(_) if self.trial == at.theta => Step::failed(
                "the line search's step no longer changes θ: the gradient is at the precision to which L can be evaluated here",
            ),
            Some(acc) => {
                at.theta.copy_from_slice(&self.trial);
                at.loss = acc.loss;
                Step::moved(acc.alpha * norm(&self.z), acc.alpha)
            }
            None => Step::failed("the line search found no decrease along the Newton–CG direction"),
        };
        step.curvature = Some(curvature);
        step
    }
}
