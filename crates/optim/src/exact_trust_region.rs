//! Newton with a trust region whose subproblem
//! min m(p) = gᵀp + ½pᵀHp subject to ‖p‖ ≤ Δ is solved exactly (Moré &
//! Sorensen 1983; Nocedal & Wright §4.3): the solution is
//! p(μ) = −(H + μI)⁻¹g with μ ≥ max(0, −λ₁) and μ(Δ − ‖p‖) = 0, μ found by
//! a safeguarded Newton iteration on the secular equation
//! 1/Δ − 1/‖p(μ)‖ = 0, and the *hard case* (g orthogonal to the
//! eigenvectors of λ₁ < 0) completed along the eigenvector of λ₁ to the
//! boundary.
//!
//! The iteration runs in H's eigenbasis (H = QΛQᵀ, one symmetric
//! eigendecomposition per accepted step): ‖p(μ)‖² = Σ (qᵢᵀg)²/(λᵢ + μ)²
//! then costs O(P) per trial μ where Moré–Sorensen's Cholesky form costs
//! a factorisation, the hard case is read off the eigenvalues instead of
//! being estimated, and λ_min is exact — at the O(P³) of one
//! eigendecomposition, which is why this method is for P up to a few
//! hundred. A rejected step keeps the decomposition and only shrinks Δ.
//!
//! Radius: Nocedal & Wright Algorithm 4.1 with SciPy's constants (Δ₀ = 1,
//! accept when ρ > 0.15, shrink to ¼Δ when ρ < ¼) except two: the radius
//! doubles at the boundary only after a *very successful* step, ρ > 0.9
//! (Conn, Gould & Toint's η₂; [`VERY_SUCCESSFUL`]) rather than ρ > ¾,
//! which on the tanh MLPs grew the radius where the next step was then
//! rejected (`docs/src/results/neural-networks.md` has the counts), and
//! Δ_max = 10¹⁰ rather than SciPy's 1 000: with 1 000, Brown's
//! badly scaled function (minimum at x₁ = 10⁶) takes a thousand steps of the
//! largest radius. After a poor step Δ/4 is applied again until Δ < ‖p‖.
//! When the step was rejected, every larger Δ would give the same interior
//! step, rejected again, so this is Algorithm 4.1's radius without those
//! wasted trials; when it was accepted (0.15 < ρ < ¼), the next radius is
//! below the step just taken, as with the ¼‖p‖ rule this replaced (which
//! took 26 iterations on Rosenbrock against SciPy's and this rule's 25).

use crate::method::{Curvature, Method, Modification, Point, Step, dot};
use crate::objective::Objective;
use crate::optimizer::{BuildError, DefaultValue, Hyper, Optimizer, Range};
use hessforge_ir::Rows;
use nalgebra::{DMatrix, SymmetricEigen};

/// Δ₀ of the trust regions (`newton-tr`, `newton-exact-tr`).
pub const RADIUS: Hyper = Hyper {
    flag: "--radius",
    default: DefaultValue::Number(1.0),
    range: Range::Positive,
};

/// Trust-region Newton with the exact subproblem solution.
#[derive(Debug, Clone)]
pub struct ExactTrustRegion {
    /// The initial radius Δ₀.
    pub radius0: f64,
    /// The current radius Δ.
    pub radius: f64,
    /// The largest radius.
    pub max_radius: f64,
    /// H's eigendecomposition at the current θ (kept across rejected steps).
    eigen: Option<SymmetricEigen<f64, nalgebra::Dyn>>,
    /// qᵢᵀg in the eigenbasis.
    gq: Vec<f64>,
    /// The step in the eigenbasis.
    pq: Vec<f64>,
    step: Vec<f64>,
    trial: Vec<f64>,
}

/// Accept a step when the actual decrease is more than this share of the
/// predicted one.
const ETA: f64 = 0.15;

/// Double the radius after a step to the boundary whose actual decrease is
/// more than this share of the predicted one (both trust regions).
pub const VERY_SUCCESSFUL: f64 = 0.9;

impl ExactTrustRegion {
    /// With initial radius Δ₀, checked against the range of `--radius`
    /// (Δ₀ > 0).
    pub fn new(radius0: f64) -> Result<Self, BuildError> {
        let radius0 = RADIUS.value(Optimizer::NewtonExactTr, Some(radius0), None)?;
        Ok(ExactTrustRegion {
            radius0,
            radius: radius0,
            max_radius: 1e10_f64.max(radius0),
            eigen: None,
            gq: vec![],
            pq: vec![],
            step: vec![],
            trial: vec![],
        })
    }
}

/// ‖p(μ)‖² = Σ gqᵢ²/(λᵢ + μ)² over the components that are not skipped.
fn norm2(lambda: &[f64], gq: &[f64], mu: f64) -> f64 {
    lambda
        .iter()
        .zip(gq)
        .map(|(l, g)| (g / (l + mu)).powi(2))
        .sum()
}

/// The subproblem's solution in the eigenbasis, into `pq`; returns whether
/// it lies on the boundary. `lambda` ascending.
fn solve_subproblem(lambda: &[f64], gq: &[f64], radius: f64, pq: &mut [f64]) -> bool {
    let scale = lambda
        .iter()
        .fold(0.0f64, |m, l| m.max(l.abs()))
        .max(1e-300);
    let gnorm = gq.iter().map(|g| g * g).sum::<f64>().sqrt();
    let l1 = lambda[0];
    // Interior: H positive definite and the Newton step fits.
    if l1 > 0.0 && norm2(lambda, gq, 0.0) <= radius * radius {
        for ((p, g), l) in pq.iter_mut().zip(gq).zip(lambda) {
            *p = -g / l;
        }
        return false;
    }
    // The eigenvalues equal to λ₁ (to rounding) and whether g has a
    // component along them.
    let tie = 1e-12 * scale;
    let bottom = lambda.iter().take_while(|l| **l <= l1 + tie).count();
    let g_bottom = gq[..bottom].iter().map(|g| g * g).sum::<f64>().sqrt();
    let floor = (-l1).max(0.0);
    if g_bottom <= 1e-12 * gnorm.max(1e-300) && l1 <= 0.0 {
        // Possibly the hard case: ‖p(−λ₁)‖ over the other components.
        let rest = norm2(&lambda[bottom..], &gq[bottom..], floor);
        if rest <= radius * radius {
            for (k, p) in pq.iter_mut().enumerate() {
                *p = if k < bottom {
                    0.0
                } else {
                    -gq[k] / (lambda[k] + floor)
                };
            }
            // Complete along λ₁'s eigenvector to the boundary.
            pq[0] = (radius * radius - rest).max(0.0).sqrt();
            return true;
        }
    }
    // μ in (floor, hi] with ‖p(μ)‖ = Δ: ‖p(μ)‖ ≤ ‖g‖/(λ₁ + μ) ≤ Δ at hi.
    let mut lo = floor;
    let mut hi = floor + gnorm / radius + scale;
    let mut mu = if l1 > 0.0 {
        0.0
    } else {
        floor + 1e-10 * scale.max(1.0)
    };
    for _ in 0..200 {
        let n2 = norm2(lambda, gq, mu);
        let n = n2.sqrt();
        if (n - radius).abs() <= 1e-10 * radius {
            break;
        }
        if n > radius {
            lo = mu;
        } else {
            hi = mu;
        }
        // Newton on 1/Δ − 1/‖p(μ)‖: d‖p‖/dμ = −Σ gqᵢ²/(λᵢ+μ)³ / ‖p‖.
        let q2: f64 = lambda
            .iter()
            .zip(gq)
            .map(|(l, g)| g * g / (l + mu).powi(3))
            .sum();
        let next = mu + (n2 / q2) * (n - radius) / radius;
        mu = if next > lo && next < hi && next.is_finite() {
            next
        } else {
            0.5 * (lo + hi)
        };
    }
    for ((p, g), l) in pq.iter_mut().zip(gq).zip(lambda) {
        *p = -g / (l + mu);
    }
    // A direction of negative curvature that g has (almost) no share of:
    // the exact solution hardly moves along it.
    let unused = (0..lambda.len())
        .filter(|&k| lambda[k] < 0.0 && gq[k].abs() <= NEARLY_HARD * gnorm)
        .min_by(|&a, &b| lambda[a].total_cmp(&lambda[b]));
    if let Some(k) = unused {
        nearly_hard_case(lambda, gq, radius, mu, k, pq);
    }
    true
}

/// g's share of an eigenvector below which the exact solution does not use
/// that direction (Moré–Sorensen's *nearly hard case* when it is λ₁'s).
const NEARLY_HARD: f64 = 1e-6;

/// The share of the optimal decrease that the nearly-hard-case step may
/// give up (Moré & Sorensen's σ; SciPy's `k_hard` is the same 0.2).
const HARD_SIGMA: f64 = 0.2;

/// Moré & Sorensen's step for the (nearly) hard case, along the eigenvector
/// qₖ of a negative eigenvalue λₖ that g is (nearly) orthogonal to.
///
/// Why: the exact solution p(μ*) = −(H + μ*I)⁻¹g stays in the span of the
/// eigenvectors g has a share of, so when a symmetry of the model keeps g
/// orthogonal to a direction of negative curvature, every step keeps the
/// symmetry and the iterates can follow a symmetric valley to infinity
/// (Biggs EXP6 from its standard start, where x₁ = x₅ and x₃ = x₆).
///
/// The step: for μ ≥ μ* (so ‖p(μ)‖ ≤ Δ), p̂ = p(μ) + τqₖ with τ the
/// smaller root of ‖p̂‖ = Δ. With A = H + μI ⪰ 0, Ap = −g and ‖p̂‖ = Δ,
/// m(p̂) = −½(pᵀAp + μΔ²) + ½τ²(λₖ + μ), and no point of the ball has
/// a model value below −½(pᵀAp + μΔ²); so when
/// τ²(λₖ + μ) ≤ σ·(pᵀAp + μΔ²) the step gets at least (1 − σ) of the
/// optimal decrease (the test of Moré & Sorensen 1983, §3, with which their
/// iteration stops; SciPy's `trust-exact` applies it too). Of those steps
/// the one with the largest μ — the largest move along qₖ — replaces `pq`
/// (which holds p(μ*)). μ is found by bisection: the test holds at μ*
/// (τ = 0) and fails as μ → ∞ (the step becomes Δ·qₖ alone).
fn nearly_hard_case(
    lambda: &[f64],
    gq: &[f64],
    radius: f64,
    mu_star: f64,
    k: usize,
    pq: &mut [f64],
) {
    let lk = lambda[k];
    // (τ, pᵀAp, ‖p‖²) at μ.
    let at = |mu: f64| -> (f64, f64, f64) {
        let (mut n2, mut curved) = (0.0, 0.0);
        for (l, g) in lambda.iter().zip(gq) {
            let p = g / (l + mu);
            n2 += p * p;
            curved += (l + mu) * p * p;
        }
        let pk = -gq[k] / (lk + mu);
        let root = (pk * pk - (n2 - radius * radius)).max(0.0).sqrt();
        let tau = if pk > 0.0 { root - pk } else { -root - pk };
        (tau, curved, n2)
    };
    let accepts = |mu: f64| -> bool {
        let (tau, curved, n2) = at(mu);
        n2 <= radius * radius
            && tau * tau * (lk + mu) <= HARD_SIGMA * (curved + mu * radius * radius)
    };
    let (mut lo, mut width) = (mu_star, (lk.abs() + mu_star).max(1e-300));
    while width < 1e300 && accepts(lo + width) {
        lo += width;
        width *= 2.0;
    }
    let mut hi = lo + width;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if accepts(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if lo <= mu_star {
        return;
    }
    let (tau, _, _) = at(lo);
    for ((p, g), l) in pq.iter_mut().zip(gq).zip(lambda) {
        *p = -g / (l + lo);
    }
    pq[k] += tau;
}

impl Method for ExactTrustRegion {
    fn name(&self) -> &str {
        Optimizer::NewtonExactTr.name()
    }
    fn uses_hessian(&self) -> bool {
        true
    }
    fn reset(&mut self, p: usize, _rows: usize) {
        for v in [&mut self.gq, &mut self.pq, &mut self.step, &mut self.trial] {
            v.clear();
            v.resize(p, 0.0);
        }
        self.eigen = None;
        self.radius = self.radius0;
    }
    fn step(&mut self, objective: &dyn Objective, at: &mut Point, _horizon: u64) -> Step {
        let p = at.grad.len();
        // A fresh decomposition after every accepted step (the driver has
        // evaluated H at the new θ); a rejected step keeps the old one.
        let eigen = match self.eigen.take() {
            Some(e) => e,
            None => {
                let mut e = SymmetricEigen::new(DMatrix::from_row_slice(p, p, &at.hess));
                // Ascending eigenvalues, eigenvectors to match.
                let mut order: Vec<usize> = (0..p).collect();
                order.sort_by(|&a, &b| e.eigenvalues[a].total_cmp(&e.eigenvalues[b]));
                let values =
                    nalgebra::DVector::from_iterator(p, order.iter().map(|&k| e.eigenvalues[k]));
                let vectors = DMatrix::from_fn(p, p, |i, j| e.eigenvectors[(i, order[j])]);
                e.eigenvalues = values;
                e.eigenvectors = vectors;
                e
            }
        };
        if !eigen.eigenvalues.iter().all(|l| l.is_finite()) {
            return Step::failed("the Hessian has a value that is not finite");
        }
        for (k, gq) in self.gq.iter_mut().enumerate() {
            *gq = dot(eigen.eigenvectors.column(k).as_slice(), &at.grad);
        }
        let lambda = eigen.eigenvalues.as_slice();
        let on_boundary = solve_subproblem(lambda, &self.gq, self.radius, &mut self.pq);
        // p = Q pq, and the model's decrease in the eigenbasis.
        self.step.fill(0.0);
        for (k, pk) in self.pq.iter().enumerate() {
            for (s, q) in self
                .step
                .iter_mut()
                .zip(eigen.eigenvectors.column(k).iter())
            {
                *s += pk * q;
            }
        }
        let predicted: f64 = -self
            .gq
            .iter()
            .zip(&self.pq)
            .zip(lambda)
            .map(|((g, pk), l)| g * pk + 0.5 * l * pk * pk)
            .sum::<f64>();
        for ((t, x), s) in self.trial.iter_mut().zip(&at.theta).zip(&self.step) {
            *t = x + s;
        }
        let f = objective.loss(&self.trial, Rows::All);
        let rho = if predicted > 0.0 {
            (at.loss - f) / predicted
        } else {
            -1.0
        };
        let step_norm = self.pq.iter().map(|x| x * x).sum::<f64>().sqrt();
        let lambda_min = lambda[0];
        let modification = if lambda_min < 0.0 {
            Modification::NegativeCurvature {
                radius: self.radius,
            }
        } else if on_boundary {
            Modification::Boundary {
                radius: self.radius,
            }
        } else {
            Modification::None
        };
        if !f.is_finite() || rho < 0.25 {
            // Δ/4, again while Δ ≥ ‖p‖: a rejected interior step solves
            // the subproblem for every such Δ, so those trials would only
            // be rejected again (Algorithm 4.1's radius, sooner).
            self.radius *= 0.25;
            while self.radius >= step_norm && self.radius > 0.0 {
                self.radius *= 0.25;
            }
        } else if rho > VERY_SUCCESSFUL && on_boundary {
            self.radius = (2.0 * self.radius).min(self.max_radius);
        }
        let curvature = Some(Curvature {
            lambda_min,
            descent: dot(&at.grad, &self.step) < 0.0,
            modification,
        });
        if f.is_finite() && rho > ETA && self.trial != at.theta {
            at.theta.copy_from_slice(&self.trial);
            at.loss = f;
            let mut step = Step::moved(step_norm, 1.0);
            step.curvature = curvature;
            step
        } else if self.radius < 1e-300 || step_norm == 0.0 || self.trial == at.theta {
            Step::failed("the trust region shrank to nothing without a decrease")
        } else {
            self.eigen = Some(eigen);
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

    /// The model's value in the eigenbasis.
    fn model(lambda: &[f64], gq: &[f64], pq: &[f64]) -> f64 {
        gq.iter()
            .zip(pq)
            .zip(lambda)
            .map(|((g, p), l)| g * p + 0.5 * l * p * p)
            .sum()
    }

    #[test]
    fn in_the_nearly_hard_case_the_step_uses_the_negative_curvature_g_has_no_share_of() {
        // λ = (−1, 2), g = (0, 5), Δ = 1: the exact solution is (0, −1)
        // (μ* = 3, model value −4), which never leaves g's axis. The step
        // moves along q₁ and keeps at least 80 % of the optimal decrease
        // (here 85 %), on the boundary.
        let (lambda, gq, radius) = ([-1.0, 2.0], [0.0, 5.0], 1.0);
        let optimal = model(&lambda, &gq, &[0.0, -1.0]);
        assert_eq!(optimal, -4.0);
        let mut pq = vec![0.0; 2];
        assert!(solve_subproblem(&lambda, &gq, radius, &mut pq));
        let n = (pq[0] * pq[0] + pq[1] * pq[1]).sqrt();
        assert!((n - radius).abs() <= 1e-12, "{pq:?} not on the boundary");
        assert!(pq[0].abs() > 0.3, "{pq:?} hardly moves along q₁");
        let kept = model(&lambda, &gq, &pq) / optimal;
        assert!(
            (1.0 - HARD_SIGMA..1.0).contains(&kept),
            "{pq:?} keeps {kept} of the optimal decrease"
        );
        // With a share of g along q₁ the exact solution uses q₁ itself and
        // is kept: (0.5, 5) is not nearly hard.
        let mut exact = vec![0.0; 2];
        solve_subproblem(&lambda, &[0.5, 5.0], radius, &mut exact);
        let mut grid_best = f64::INFINITY;
        for i in 0..=4000 {
            let a = i as f64 * std::f64::consts::TAU / 4000.0;
            grid_best = grid_best.min(model(&lambda, &[0.5, 5.0], &[a.cos(), a.sin()]));
        }
        assert!(model(&lambda, &[0.5, 5.0], &exact) <= grid_best + 1e-9);
    }

    #[test]
    fn the_subproblem_solution_is_the_global_minimum_of_the_model_in_the_ball() {
        // Positive definite, interior; positive definite, boundary;
        // indefinite; the hard case (g ⟂ the λ₁ eigenvector).
        let cases: [(&[f64], &[f64], f64, bool); 4] = [
            (&[1.0, 4.0], &[1.0, 2.0], 10.0, false),
            (&[1.0, 4.0], &[1.0, 2.0], 0.5, true),
            (&[-2.0, 1.0], &[0.5, 1.0], 1.0, true),
            (&[-2.0, 1.0], &[0.0, 0.5], 2.0, true),
        ];
        for (lambda, gq, radius, boundary) in cases {
            let mut pq = vec![0.0; 2];
            assert_eq!(
                solve_subproblem(lambda, gq, radius, &mut pq),
                boundary,
                "{lambda:?} {gq:?}"
            );
            let n = (pq[0] * pq[0] + pq[1] * pq[1]).sqrt();
            assert!(n <= radius * (1.0 + 1e-9), "{pq:?} outside Δ = {radius}");
            if boundary {
                assert!(
                    (n - radius).abs() <= 1e-8 * radius,
                    "{pq:?} not on Δ = {radius}"
                );
            }
            // No point of the ball (a fine polar grid) does better.
            let best = model(lambda, gq, &pq);
            for i in 0..=400 {
                for r in [0.25, 0.5, 0.75, 1.0] {
                    let a = i as f64 * std::f64::consts::TAU / 400.0;
                    let q = [r * radius * a.cos(), r * radius * a.sin()];
                    assert!(model(lambda, gq, &q) >= best - 1e-9, "{q:?} beats {pq:?}");
                }
            }
        }
    }
}
