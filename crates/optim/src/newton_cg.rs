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
//! - Enough for the run: CG also stops once ‖r‖∞ ≤ [`TARGET_FRACTION`]
//!   of the run's gradient tolerance ([`Method::aim`]). Near the optimum
//!   the next gradient is about the residual r = ∇²L d + g, so the last
//!   step solves only as accurately as the run's stop asks, where
//!   η = √‖g‖ alone would solve it a hundred times more accurately.
//! - Negative curvature: when a CG direction p has pᵀ∇²Lp ≤ 0, CG stops
//!   and the iterate so far is used — −g when it is the first — so d is
//!   always a descent direction.
//! - At most 2P + 10 CG iterations per step; then Armijo backtracking from
//!   α = 1.
//! - Optionally preconditioned ([`Preconditioner::Diagonal`], Nocedal &
//!   Wright Algorithm 5.3): CG on M⁻¹∇²L with M = diag(∇²L) floored at
//!   [`JACOBI_FLOOR`]·max, one diagonal pass per step. It evens out
//!   parameters of very different curvature (features on different
//!   scales); the stopping test and the negative-curvature test are those
//!   of plain CG (‖r‖ and pᵀ∇²Lp), so the step is as accurate.

use crate::line_search::{Ray, armijo};
use crate::method::{
    Curvature, JACOBI_FLOOR, Method, Modification, Point, Preconditioner, Step, dot,
    floored_magnitudes, inf_norm, norm,
};
use crate::newton::GAUSS_NEWTON_REFUSED;
use crate::objective::Objective;
use crate::optimizer::Optimizer;
use hessforge_ir::Rows;

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

/// The fraction of the run's gradient tolerance below which a CG
/// residual (in the max norm) is accurate enough.
pub const TARGET_FRACTION: f64 = 0.1;

/// Newton–CG (truncated, Hessian-free Newton).
#[derive(Debug, Clone, Default)]
pub struct NewtonCg {
    /// What the products multiply by.
    pub product: Product,
    /// The run's gradient tolerance ([`Method::aim`]; 0: none).
    target: f64,
    /// CG's preconditioner.
    pub preconditioner: Preconditioner,
    /// The preconditioner's diagonal M (with `Diagonal`).
    m: Vec<f64>,
    /// M⁻¹r.
    y: Vec<f64>,
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

    /// With this preconditioner (of ∇²L: Hessian products only).
    pub fn with_preconditioner(mut self, preconditioner: Preconditioner) -> Self {
        self.preconditioner = preconditioner;
        self
    }

    /// M⁻¹r into `y`.
    fn precondition(&mut self) {
        match self.preconditioner {
            Preconditioner::None => self.y.copy_from_slice(&self.r),
            Preconditioner::Diagonal => {
                for ((y, r), m) in self.y.iter_mut().zip(&self.r).zip(&self.m) {
                    *y = r / m;
                }
            }
        }
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
    fn aim(&mut self, grad_tol: f64) {
        self.target = grad_tol.max(0.0);
    }

    fn reset(&mut self, p: usize, _rows: usize) {
        for v in [
            &mut self.m,
            &mut self.y,
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
        if self.preconditioner == Preconditioner::Diagonal && self.product == Product::Hessian {
            objective.hess_diag(&at.theta, &mut self.m);
            // NaN (a non-finite diagonal) falls to the floor too.
            floored_magnitudes(&mut self.m, |largest| {
                (JACOBI_FLOOR * largest).max(f64::MIN_POSITIVE)
            });
        } else {
            self.m.fill(1.0);
        }
        self.z.fill(0.0);
        self.r.copy_from_slice(&at.grad);
        self.precondition();
        for (p, y) in self.p.iter_mut().zip(&self.y) {
            *p = -y;
        }
        let mut rayleigh_min = f64::INFINITY;
        let mut negative_curvature = false;
        let mut iterations = 0;
        for j in 0..2 * n + 10 {
            match self.product {
                Product::Hessian => {
                    objective.hess_vec(&at.theta, Rows::All, &self.p, &mut self.hp);
                }
                Product::GaussNewton => {
                    if objective
                        .gauss_newton_vec(&at.theta, &self.p, &mut self.hp)
                        .is_none()
                    {
                        return Step::failed(GAUSS_NEWTON_REFUSED);
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
            let ry = dot(&self.r, &self.y);
            let alpha = ry / php;
            for i in 0..n {
                self.z[i] += alpha * self.p[i];
                self.r[i] += alpha * self.hp[i];
            }
            if norm(&self.r) <= tolerance || inf_norm(&self.r) <= TARGET_FRACTION * self.target {
                break;
            }
            self.precondition();
            let beta = dot(&self.r, &self.y) / ry;
            for (p, y) in self.p.iter_mut().zip(&self.y) {
                *p = -y + beta * *p;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::FnObjective;

    /// ½θᵀAθ − bᵀθ with A = S (I + ¼ T) S: T the path graph's adjacency
    /// (−1 beside the diagonal), S = diag(s) with s² from 10⁻² to 10² — a
    /// well-conditioned matrix on badly scaled parameters, which is what a
    /// diagonal preconditioner undoes.
    fn badly_scaled(p: usize) -> impl Objective {
        let s: Vec<f64> = (0..p)
            .map(|i| 10f64.powf(-1.0 + 2.0 * i as f64 / (p - 1) as f64))
            .collect();
        let a = move |h: &mut [f64]| {
            h.fill(0.0);
            for i in 0..p {
                h[i * p + i] = s[i] * s[i];
                if i + 1 < p {
                    h[i * p + i + 1] = -0.25 * s[i] * s[i + 1];
                    h[(i + 1) * p + i] = -0.25 * s[i] * s[i + 1];
                }
            }
        };
        let b = |i: usize| 1.0 + (i % 3) as f64;
        let matrix = {
            let mut m = vec![0.0; p * p];
            a(&mut m);
            m
        };
        let product = move |t: &[f64], i: usize| -> f64 {
            (0..p).map(|j| matrix[i * p + j] * t[j]).sum::<f64>()
        };
        let product2 = product.clone();
        FnObjective {
            n_params: p,
            loss: move |t: &[f64]| {
                (0..p)
                    .map(|i| 0.5 * t[i] * product(t, i) - b(i) * t[i])
                    .sum()
            },
            grad: move |t: &[f64], g: &mut [f64]| {
                for (i, g) in g.iter_mut().enumerate() {
                    *g = product2(t, i) - b(i);
                }
            },
            hess: move |_: &[f64], h: &mut [f64]| a(h),
        }
    }

    /// CG iterations and the step's loss after one Newton–CG step from 0.
    fn one_step(preconditioner: Preconditioner) -> (u64, f64) {
        let p = 60;
        let objective = badly_scaled(p);
        let mut method = NewtonCg::new().with_preconditioner(preconditioner);
        method.reset(p, 0);
        let mut at = Point::without_hessian(&vec![0.0; p]);
        at.loss = objective.loss_grad(&at.theta, Rows::All, &mut at.grad);
        let step = method.step(&objective, &mut at, 0);
        let Some(Curvature {
            modification: Modification::TruncatedCg { iterations, .. },
            ..
        }) = step.curvature
        else {
            panic!("a Newton–CG step reports its CG iterations")
        };
        (iterations, at.loss)
    }

    #[test]
    fn a_diagonal_preconditioner_undoes_bad_scaling() {
        let (plain, plain_loss) = one_step(Preconditioner::None);
        let (jacobi, jacobi_loss) = one_step(Preconditioner::Diagonal);
        // S⁻¹AS⁻¹ = I + ¼T has its eigenvalues in [½, 3/2]: a handful of
        // iterations; A itself spans four decades.
        assert!(jacobi <= 12, "{jacobi} preconditioned CG iterations");
        assert!(
            plain >= 3 * jacobi,
            "{plain} plain vs {jacobi} preconditioned"
        );
        assert!(
            plain_loss < 0.0 && jacobi_loss < 0.0,
            "both steps descend from L = 0"
        );
    }

    #[test]
    fn preconditioned_or_not_newton_cg_converges_to_the_same_minimum() {
        let p = 60;
        let objective = badly_scaled(p);
        let run = |preconditioner| {
            let mut method = NewtonCg::new().with_preconditioner(preconditioner);
            crate::minimize(
                &objective,
                &mut method,
                &vec![0.0; p],
                &crate::Stopping::default(),
                &mut [],
            )
        };
        let (plain, jacobi) = (run(Preconditioner::None), run(Preconditioner::Diagonal));
        assert!(plain.converged && jacobi.converged, "{plain:?} {jacobi:?}");
        // One diagonal pass per Newton step, none without the preconditioner.
        assert_eq!(jacobi.evaluations.hess_diag, jacobi.iterations);
        assert_eq!(plain.evaluations.hess_diag, 0);
        assert!(jacobi.evaluations.hess_vec < plain.evaluations.hess_vec);
        for (a, b) in plain.theta.iter().zip(&jacobi.theta) {
            assert!((a - b).abs() <= 1e-8 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}
