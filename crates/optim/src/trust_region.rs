//! Newton with a trust region, the subproblem min gᵀp + ½pᵀHp, ‖p‖ ≤ Δ,
//! solved by Steihaug's truncated conjugate gradient (Nocedal & Wright,
//! Algorithm 7.2): it stops at the boundary on negative curvature, so an
//! indefinite Hessian needs no modification. The radius follows the ratio
//! ρ of actual to predicted decrease (Algorithm 4.1: shrink to ¼ when
//! ρ < ¼, accept when ρ > η = 10⁻⁴; double at the boundary when ρ > 0.9,
//! [`VERY_SUCCESSFUL`], as the exact trust region does).
//!
//! Steihaug's CG touches ∇²L only through products ∇²L·v, so the method
//! runs Hessian-free as well ([`HessianPath`]): above
//! [`crate::method::HESSIAN_FREE_ABOVE`] parameters it asks the objective's
//! Hessian–vector product and the driver never forms ∇²L.
//!
//! Up to [`EXACT_SUBPROBLEM_MAX`] parameters, where ∇²L is dense anyway and
//! one eigendecomposition per step costs little, `newton-tr` solves its
//! subproblem exactly instead ([`Subproblem::Auto`]): it is then
//! [`ExactTrustRegion`] (`newton-exact-tr`) under its own name, which needs
//! fewer iterations than Steihaug's CG on most of the classic problems
//! (README, comparison 5). `--subproblem steihaug|exact` chooses.

use crate::exact_trust_region::{ExactTrustRegion, RADIUS, VERY_SUCCESSFUL};
use crate::method::{
    Curvature, HESSIAN_FREE_ABOVE, HessianPath, Method, Modification, Point, Step, dot, norm,
};
use crate::objective::{Objective, dense_hess_vec};
use crate::optimizer::{BuildError, Choice, Optimizer};
use hessforge_ir::Rows;

/// How `newton-tr` solves its subproblem min gᵀp + ½pᵀHp, ‖p‖ ≤ Δ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Subproblem {
    /// Exactly up to [`EXACT_SUBPROBLEM_MAX`] parameters on the dense
    /// Hessian; by Steihaug's CG above it, or whenever the Hessian path is
    /// [`HessianPath::Free`].
    #[default]
    Auto,
    /// Exactly (Moré–Sorensen, as `newton-exact-tr`), at every size: one
    /// O(P³) eigendecomposition of the dense Hessian per accepted step.
    Exact,
    /// By Steihaug's truncated CG, at every size.
    Steihaug,
}

impl Choice for Subproblem {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("auto", Self::Auto),
        ("exact", Self::Exact),
        ("steihaug", Self::Steihaug),
    ];
}

/// Up to this many parameters [`Subproblem::Auto`] solves the subproblem
/// exactly: the size up to which the Hessian is dense by default
/// ([`HESSIAN_FREE_ABOVE`]); one eigendecomposition at P = 200 takes a
/// few milliseconds.
pub const EXACT_SUBPROBLEM_MAX: usize = HESSIAN_FREE_ABOVE;

impl std::str::FromStr for Subproblem {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Subproblem::Auto),
            "exact" => Ok(Subproblem::Exact),
            "steihaug" => Ok(Subproblem::Steihaug),
            _ => Err(format!("expected auto, exact or steihaug, not `{s}`")),
        }
    }
}

/// Trust-region Newton: Steihaug–CG, or the exact subproblem solution at
/// small P ([`Subproblem`]).
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
    /// How the subproblem is solved.
    pub subproblem: Subproblem,
    /// Resolved from `hessian` and P by [`Method::reset`].
    hessian_free: bool,
    /// The exact solver, used when [`Method::reset`] chose it.
    exact: ExactTrustRegion,
    /// Resolved from `subproblem`, `hessian` and P by [`Method::reset`].
    solve_exactly: bool,
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
        let radius0 = RADIUS.value(Optimizer::NewtonTr, Some(radius0), None)?;
        Ok(TrustRegion {
            radius0,
            radius: radius0,
            max_radius: 1e10,
            hessian: HessianPath::Auto,
            subproblem: Subproblem::Auto,
            hessian_free: false,
            exact: ExactTrustRegion::new(radius0)?,
            solve_exactly: false,
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

    /// How the subproblem is solved (the default is [`Subproblem::Auto`]);
    /// an exact solution needs the dense Hessian, so
    /// [`Subproblem::Exact`] with [`HessianPath::Free`] is an error.
    pub fn with_subproblem(mut self, subproblem: Subproblem) -> Result<Self, BuildError> {
        if subproblem == Subproblem::Exact && self.hessian == HessianPath::Free {
            return Err(BuildError::Conflict {
                optimizer: Optimizer::NewtonTr.name(),
                reason: "--subproblem exact needs the dense Hessian, and --hessian free never forms it",
            });
        }
        self.subproblem = subproblem;
        Ok(self)
    }

    /// Whether the subproblem is solved exactly for `p` parameters and
    /// `rows` rows.
    pub fn is_exact(&self, p: usize, rows: usize) -> bool {
        match self.subproblem {
            Subproblem::Auto => !self.hessian.is_free(p, rows) && p <= EXACT_SUBPROBLEM_MAX,
            Subproblem::Exact => true,
            Subproblem::Steihaug => false,
        }
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
        objective.hess_vec(&at.theta, Rows::All, v, out);
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
    fn reset(&mut self, p: usize, rows: usize) {
        self.solve_exactly = self.is_exact(p, rows);
        if self.solve_exactly {
            self.exact.reset(p, rows);
        }
        self.hessian_free = !self.solve_exactly && self.hessian.is_free(p, rows);
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
    fn step(&mut self, objective: &dyn Objective, at: &mut Point, horizon: u64) -> Step {
        if self.solve_exactly {
            let step = self.exact.step(objective, at, horizon);
            self.radius = self.exact.radius;
            return step;
        }
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
        let f = objective.loss(&self.trial, Rows::All);
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
        } else if rho > VERY_SUCCESSFUL && at_boundary {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_exact_up_to_200_parameters_and_dense_up_to_400_beyond_the_cache() {
        let tr = |hessian, subproblem| {
            TrustRegion::new(1.0)
                .unwrap()
                .with_hessian(hessian)
                .with_subproblem(subproblem)
                .unwrap()
        };
        let auto = tr(HessianPath::Auto, Subproblem::Auto);
        let rows = 1000;
        assert!(auto.is_exact(2, rows) && auto.is_exact(EXACT_SUBPROBLEM_MAX, rows));
        assert!(!auto.is_exact(EXACT_SUBPROBLEM_MAX + 1, rows));
        // Dense past the threshold: Steihaug's CG on the dense Hessian.
        assert!(!tr(HessianPath::Dense, Subproblem::Auto).is_exact(1000, rows));
        assert!(!tr(HessianPath::Free, Subproblem::Auto).is_exact(2, rows));
        assert!(tr(HessianPath::Auto, Subproblem::Exact).is_exact(1000, rows));
        assert!(!tr(HessianPath::Dense, Subproblem::Steihaug).is_exact(2, rows));
        // With 10⁵ rows the products no longer fit in the cache: Steihaug's
        // CG on the dense Hessian up to twice the size.
        let mut many = tr(HessianPath::Auto, Subproblem::Auto);
        for (p, free) in [(201, false), (400, false), (401, true)] {
            assert!(!many.is_exact(p, 100_000));
            many.reset(p, 100_000);
            assert_eq!(many.uses_hessian(), !free, "P = {p}");
        }
        many.reset(201, 1000);
        assert!(!many.uses_hessian(), "P = 201 on 1 000 rows");
        let mut exact = tr(HessianPath::Auto, Subproblem::Auto);
        exact.reset(2, 0);
        assert!(exact.uses_hessian());
        let mut free = tr(HessianPath::Free, Subproblem::Auto);
        free.reset(2, 0);
        assert!(!free.uses_hessian());
        assert!(
            TrustRegion::new(1.0)
                .unwrap()
                .with_hessian(HessianPath::Free)
                .with_subproblem(Subproblem::Exact)
                .is_err()
        );
        assert_eq!("steihaug".parse(), Ok(Subproblem::Steihaug));
        assert!("cauchy".parse::<Subproblem>().is_err());
    }
}
