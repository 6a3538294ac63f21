//! Newton with a trust region, the subproblem min gᵀp + ½pᵀHp, ‖p‖ ≤ Δ,
//! solved by Steihaug's truncated conjugate gradient (Nocedal & Wright,
//! Algorithm 7.2): it stops at the boundary on negative curvature, so an
//! indefinite Hessian needs no modification. The radius follows the ratio
//! ρ of actual to predicted decrease (Algorithm 4.1: shrink to ¼ when
//! ρ < ¼, double at the boundary when ρ > ¾, accept when ρ > η = 10⁻⁴).
//!
//! Steihaug's CG touches ∇²L only through products ∇²L·v, so the method
//! runs Hessian-free as well ([`HessianPath`]): above
//! [`crate::method::HESSIAN_FREE_ABOVE`] parameters it asks the objective's
//! Hessian–vector product and the driver never forms ∇²L.

use crate::catalog::{BuildError, Optimizer};
use crate::method::{Curvature, HessianPath, Method, Modification, Point, Step, dot, norm};
use crate::objective::{Batch, Objective, dense_hess_vec};

/// Trust-region Newton–CG (Steihaug).
#[derive(Debug, Clone)]
pub struct TrustRegion {
    /// The initial radius Δ₀.
    pub radius0: f64,
    /// The current radius Δ.
    pub radius: f64,
    /// The largest radius.
    pub max_radius: f64,
    /// Where the products ∇²L·v come from.
    pub hessian: HessianPath,
    /// Resolved from `hessian` and P by [`Method::reset`].
    hessian_free: bool,
    z: Vec<f64>,
    r: Vec<f64>,
    d: Vec<f64>,
    hd: Vec<f64>,
    trial: Vec<f64>,
}

impl TrustRegion {
    /// With initial radius Δ₀, checked against the range of `--radius`
    /// (Δ₀ > 0).
    pub fn new(radius0: f64) -> Result<Self, BuildError> {
        let radius0 = Optimizer::NewtonTr
            .entry()
            .value("--radius", Some(radius0), None)?;
        Ok(TrustRegion {
            radius0,
            radius: radius0,
            max_radius: 1e10,
            hessian: HessianPath::Auto,
            hessian_free: false,
            z: vec![],
            r: vec![],
            d: vec![],
            hd: vec![],
            trial: vec![],
        })
    }
}

impl TrustRegion {
    /// Where the products ∇²L·v come from (the default is
    /// [`HessianPath::Auto`]).
    pub fn with_hessian(mut self, hessian: HessianPath) -> Self {
        self.hessian = hessian;
        self
    }
}

/// ∇²L·v: from the dense Hessian at `at`, or the objective's product.
fn hess_times(
    objective: &dyn Objective,
    at: &Point,
    hessian_free: bool,
    v: &[f64],
    out: &mut [f64],
) {
    if hessian_free {
        objective.hess_vec(&at.theta, Batch::Full, v, out);
    } else {
        dense_hess_vec(&at.hess, v, out);
    }
}

/// τ ≥ 0 with ‖z + τd‖ = Δ.
fn to_boundary(z: &[f64], d: &[f64], radius: f64) -> f64 {
    let (a, b, c) = (dot(d, d), 2.0 * dot(z, d), dot(z, z) - radius * radius);
    (-b + (b * b - 4.0 * a * c).max(0.0).sqrt()) / (2.0 * a)
}

impl Method for TrustRegion {
    fn name(&self) -> &str {
        "newton-tr"
    }
    fn uses_hessian(&self) -> bool {
        !self.hessian_free
    }
    fn reset(&mut self, p: usize, _rows: usize) {
        self.hessian_free = self.hessian.is_free(p);
        for v in [
            &mut self.z,
            &mut self.r,
            &mut self.d,
            &mut self.hd,
            &mut self.trial,
        ] {
            v.clear();
            v.resize(p, 0.0);
        }
        self.radius = self.radius0;
    }
    fn step(&mut self, objective: &dyn Objective, at: &mut Point, _horizon: u64) -> Step {
        let p = at.grad.len();
        let g = &at.grad;
        let gnorm = norm(g);
        let tol = gnorm.sqrt().min(0.5) * gnorm;
        self.z.fill(0.0);
        self.r.copy_from_slice(g);
        for (d, r) in self.d.iter_mut().zip(&self.r) {
            *d = -r;
        }
        let mut rayleigh_min = f64::INFINITY;
        let mut modification = Modification::None;
        for _ in 0..(2 * p).max(10) {
            hess_times(objective, at, self.hessian_free, &self.d, &mut self.hd);
            let dhd = dot(&self.d, &self.hd);
            let dd = dot(&self.d, &self.d);
            rayleigh_min = rayleigh_min.min(dhd / dd);
            if dhd <= 0.0 {
                let tau = to_boundary(&self.z, &self.d, self.radius);
                for (z, d) in self.z.iter_mut().zip(&self.d) {
                    *z += tau * d;
                }
                modification = Modification::NegativeCurvature {
                    radius: self.radius,
                };
                break;
            }
            let rr = dot(&self.r, &self.r);
            let alpha = rr / dhd;
            let next_norm: f64 = self
                .z
                .iter()
                .zip(&self.d)
                .map(|(z, d)| (z + alpha * d).powi(2))
                .sum::<f64>()
                .sqrt();
            if next_norm >= self.radius {
                let tau = to_boundary(&self.z, &self.d, self.radius);
                for (z, d) in self.z.iter_mut().zip(&self.d) {
                    *z += tau * d;
                }
                modification = Modification::Boundary {
                    radius: self.radius,
                };
                break;
            }
            for i in 0..p {
                self.z[i] += alpha * self.d[i];
                self.r[i] += alpha * self.hd[i];
            }
            let rr_next = dot(&self.r, &self.r);
            if rr_next.sqrt() < tol {
                break;
            }
            let beta = rr_next / rr;
            for (d, r) in self.d.iter_mut().zip(&self.r) {
                *d = -r + beta * *d;
            }
        }
        // Predicted decrease of the model, actual decrease of L.
        hess_times(objective, at, self.hessian_free, &self.z, &mut self.hd);
        let predicted = -(dot(g, &self.z) + 0.5 * dot(&self.z, &self.hd));
        for ((t, x), z) in self.trial.iter_mut().zip(&at.theta).zip(&self.z) {
            *t = x + z;
        }
        let f = objective.loss(&self.trial, Batch::Full);
        let actual = at.loss - f;
        let rho = if predicted > 0.0 {
            actual / predicted
        } else {
            -1.0
        };
        let step_norm = norm(&self.z);
        let at_boundary = step_norm >= 0.99 * self.radius;
        if !f.is_finite() || rho < 0.25 {
            self.radius = 0.25 * step_norm.min(self.radius);
        } else if rho > 0.75 && at_boundary {
            self.radius = (2.0 * self.radius).min(self.max_radius);
        }
        let curvature = Some(Curvature {
            lambda_min: rayleigh_min,
            descent: dot(g, &self.z) < 0.0,
            modification,
        });
        if f.is_finite() && rho > 1e-4 {
            at.theta.copy_from_slice(&self.trial);
            at.loss = f;
            let mut step = Step::moved(step_norm, 1.0);
            step.curvature = curvature;
            step
        } else if self.radius < 1e-300 || step_norm == 0.0 {
            Step::failed("the trust region shrank to nothing without a decrease")
        } else {
            // Rejected: θ (and everything evaluated at it) is unchanged.
            Step {
                step_norm: 0.0,
                alpha: 0.0,
                evaluated: true,
                curvature,
                failure: None,
            }
        }
    }
}
