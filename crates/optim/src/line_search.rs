//! Line searches along a direction d from θ: backtracking to the Armijo
//! (sufficient decrease) condition, and a search for the strong Wolfe
//! conditions (Nocedal & Wright, Algorithms 3.5 and 3.6) for BFGS and L-BFGS.

use crate::objective::Objective;
use hessforge_ir::Rows;

/// The Armijo constant c₁ (sufficient decrease).
pub const C1: f64 = 1e-4;
/// The Wolfe curvature constant c₂ for quasi-Newton directions.
pub const C2: f64 = 0.9;
const MAX_TRIALS: usize = 60;

/// The line θ + αd a search walks along, and what is known at α = 0.
#[derive(Debug, Clone, Copy)]
pub struct Ray<'a> {
    /// θ.
    pub theta: &'a [f64],
    /// L(θ).
    pub loss: f64,
    /// ∇L(θ)ᵀd (< 0 for a descent direction).
    pub slope: f64,
    /// d.
    pub direction: &'a [f64],
}

/// What a line search found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accepted {
    /// The step length α (θ_new = θ + α d).
    pub alpha: f64,
    /// L(θ + α d).
    pub loss: f64,
    /// Whether `grad` holds ∇L(θ + α d) (the Wolfe search evaluates it).
    pub has_grad: bool,
}

fn moved(theta: &[f64], d: &[f64], alpha: f64, out: &mut [f64]) {
    for ((o, t), di) in out.iter_mut().zip(theta).zip(d) {
        *o = t + alpha * di;
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Backtracking from α = 1, halving until L(θ + αd) ≤ L(θ) + c₁ α gᵀd.
/// `trial` receives the accepted point. `None` if no α down to 2⁻⁶⁰ works.
pub fn armijo(objective: &dyn Objective, ray: Ray<'_>, trial: &mut [f64]) -> Option<Accepted> {
    let Ray {
        theta,
        loss,
        slope,
        direction: d,
    } = ray;
    let mut alpha = 1.0;
    for _ in 0..MAX_TRIALS {
        moved(theta, d, alpha, trial);
        let f = objective.loss(trial, Rows::All);
        if f.is_finite() && f <= loss + C1 * alpha * slope {
            return Some(Accepted {
                alpha,
                loss: f,
                has_grad: false,
            });
        }
        alpha *= 0.5;
    }
    None
}

/// A step length satisfying the strong Wolfe conditions
/// L(θ+αd) ≤ L(θ) + c₁αgᵀd and |∇L(θ+αd)ᵀd| ≤ c₂|gᵀd|, by bracketing and
/// zooming with safeguarded cubic interpolation, starting at `first_alpha`. `trial`/`grad` receive the
/// accepted point and its gradient. `None` if none was found.
pub fn wolfe(
    objective: &dyn Objective,
    ray: Ray<'_>,
    first_alpha: f64,
    trial: &mut [f64],
    grad: &mut [f64],
) -> Option<Accepted> {
    let Ray {
        theta,
        loss,
        slope,
        direction: d,
    } = ray;
    let phi = |alpha: f64, trial: &mut [f64], grad: &mut [f64]| {
        moved(theta, d, alpha, trial);
        let f = objective.loss_grad(trial, Rows::All, grad);
        (f, dot(grad, d))
    };
    let accept = |alpha, loss| {
        Some(Accepted {
            alpha,
            loss,
            has_grad: true,
        })
    };
    let (mut a_prev, mut f_prev, mut s_prev) = (0.0, loss, slope);
    let mut alpha = first_alpha;
    for i in 0..MAX_TRIALS {
        let (f, s) = phi(alpha, trial, grad);
        if !f.is_finite() {
            // Stepped out of the domain or overflowed: come back halfway.
            alpha = 0.5 * (a_prev + alpha);
            continue;
        }
        if approximately_wolfe(loss, slope, f, s) {
            return accept(alpha, f);
        }
        if f > loss + C1 * alpha * slope || (i > 0 && f >= f_prev) {
            return zoom(
                &phi,
                loss,
                slope,
                (a_prev, f_prev, s_prev),
                (alpha, f, s),
                trial,
                grad,
            )
            .and_then(|(a, f)| accept(a, f));
        }
        if s.abs() <= -C2 * slope {
            return accept(alpha, f);
        }
        if s >= 0.0 {
            return zoom(
                &phi,
                loss,
                slope,
                (alpha, f, s),
                (a_prev, f_prev, s_prev),
                trial,
                grad,
            )
            .and_then(|(a, f)| accept(a, f));
        }
        (a_prev, f_prev, s_prev) = (alpha, f, s);
        alpha *= 2.0;
    }
    None
}

/// The minimiser of the cubic through (a, fa, sa) and (b, fb, sb), kept
/// inside the middle 80 % of the interval (bisection when it is not real).
fn cubic_step(a: (f64, f64, f64), b: (f64, f64, f64)) -> f64 {
    let (lo, hi) = (a.0.min(b.0), a.0.max(b.0));
    let d1 = a.2 + b.2 - 3.0 * (a.1 - b.1) / (a.0 - b.0);
    let disc = d1 * d1 - a.2 * b.2;
    let mid = 0.5 * (a.0 + b.0);
    if disc < 0.0 || !disc.is_finite() {
        return mid;
    }
    let d2 = (b.0 - a.0).signum() * disc.sqrt();
    let x = b.0 - (b.0 - a.0) * (b.2 + d2 - d1) / (b.2 - a.2 + 2.0 * d2);
    let margin = 0.1 * (hi - lo);
    if x.is_finite() && x > lo + margin && x < hi - margin {
        x
    } else {
        mid
    }
}

/// Hager and Zhang's approximate Wolfe conditions, for when the loss no
/// longer resolves the decrease (near the optimum, rounding dominates
/// L(θ + αd) − L(θ)): L(θ+αd) ≤ L(θ) + 10⁻¹²|L(θ)| and
/// c₂ gᵀd ≤ ∇L(θ+αd)ᵀd ≤ (2c₁ − 1) gᵀd.
fn approximately_wolfe(loss: f64, slope: f64, f: f64, s: f64) -> bool {
    f <= loss + 1e-12 * loss.abs() && s >= C2 * slope && s <= (2.0 * C1 - 1.0) * slope
}

type Phi<'a> = dyn Fn(f64, &mut [f64], &mut [f64]) -> (f64, f64) + 'a;

fn zoom(
    phi: &Phi<'_>,
    loss: f64,
    slope: f64,
    mut lo: (f64, f64, f64),
    mut hi: (f64, f64, f64),
    trial: &mut [f64],
    grad: &mut [f64],
) -> Option<(f64, f64)> {
    for _ in 0..MAX_TRIALS {
        let alpha = cubic_step(lo, hi);
        let (f, s) = phi(alpha, trial, grad);
        if f.is_finite() && approximately_wolfe(loss, slope, f, s) {
            return Some((alpha, f));
        }
        if !f.is_finite() || f > loss + C1 * alpha * slope || f >= lo.1 {
            hi = (alpha, f, s);
        } else {
            if s.abs() <= -C2 * slope {
                return Some((alpha, f));
            }
            if s * (hi.0 - lo.0) >= 0.0 {
                hi = lo;
            }
            lo = (alpha, f, s);
        }
        if (hi.0 - lo.0).abs() < 1e-16 * lo.0.abs().max(1.0) {
            break;
        }
    }
    // The bracket collapsed: accept its low end if it decreases the loss.
    if lo.0 > 0.0 && lo.1 < loss {
        let (f, _) = phi(lo.0, trial, grad);
        return Some((lo.0, f));
    }
    None
}
