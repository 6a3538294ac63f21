//! The one interface every optimizer implements ([`Method`]: state + a step,
//! as argmin separates solver, state and executor), the point it steps from
//! ([`Point`]), and what a step reports ([`Step`], [`Curvature`]).

use crate::objective::Objective;
use crate::optimizer::Choice;
use serde::Serialize;

/// The current iterate and what is known at it.
#[derive(Debug, Clone)]
pub struct Point {
    /// θ.
    pub theta: Vec<f64>,
    /// L(θ).
    pub loss: f64,
    /// ∇L(θ).
    pub grad: Vec<f64>,
    /// ∇²L(θ), row-major P×P (valid when the method uses the Hessian;
    /// empty for a Hessian-free one, see [`Point::without_hessian`]).
    pub hess: Vec<f64>,
}

impl Point {
    /// A point at θ with no room for ∇²L: what the driver gives a method
    /// that never evaluates it, so that P² numbers (800 MB at P = 10 000)
    /// are never allocated for it.
    pub fn without_hessian(theta: &[f64]) -> Self {
        Point {
            theta: theta.to_vec(),
            loss: f64::NAN,
            grad: vec![0.0; theta.len()],
            hess: Vec::new(),
        }
    }

    /// A point at θ with nothing evaluated yet.
    pub fn new(theta: &[f64]) -> Self {
        let p = theta.len();
        Point {
            theta: theta.to_vec(),
            loss: f64::NAN,
            grad: vec![0.0; p],
            hess: vec![0.0; p * p],
        }
    }
}

/// Where a Newton-type method that needs only products ∇²L·v gets them:
/// from the dense Hessian the driver evaluates at each iterate (P² numbers,
/// one P×P product per CG iteration), or from a Hessian–vector product
/// kernel that never forms it (about one gradient's cost per product).
/// The iterates are the same in exact arithmetic; only the cost differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HessianPath {
    /// Dense up to [`HESSIAN_FREE_ABOVE`] parameters (twice as many on data
    /// beyond the cache, [`dense_up_to`]), Hessian-free above.
    #[default]
    Auto,
    /// Always the dense Hessian.
    Dense,
    /// Always Hessian–vector products.
    Free,
}

impl Choice for HessianPath {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("auto", Self::Auto),
        ("dense", Self::Dense),
        ("free", Self::Free),
    ];
}

/// Above this many parameters [`HessianPath::Auto`] goes Hessian-free
/// while the products' data fits in the cache ([`PRODUCTS_IN_CACHE_BYTES`];
/// above twice as many when it does not, [`dense_up_to`]): the size above
/// which the driver never forms ∇²L for a diagnostic either
/// ([`crate::run_loop::DENSE_CHECK_MAX_PARAMS`] is this constant). A
/// default, not a law: which path is faster depends on the problem as much
/// as on P (Hessian-free is 19.7× faster on digits, P = 650; dense is 2.5×
/// faster on a logistic regression with P = 1 001 that Newton solves in
/// one step; the guide's "Hessian-free at large P").
pub const HESSIAN_FREE_ABOVE: usize = 200;

/// What a Hessian–vector product pass streams, about 8·N·P bytes (the rows
/// and the per-row values the products share, both of the order of P
/// numbers per row for the models at the crossover), above which each
/// product runs at memory speed: a server's last-level cache.
pub const PRODUCTS_IN_CACHE_BYTES: usize = 32 << 20;

/// Up to how many parameters [`HessianPath::Auto`] forms the dense Hessian
/// for `p` parameters and `rows` rows: [`HESSIAN_FREE_ABOVE`], or twice it
/// when a product's pass no longer fits in the cache. Measured with
/// Steihaug's CG on the wide logistic regression (the guide's table): with
/// 10⁴ rows the paths are level from P = 200 to 400; with 10⁵ rows (160 MB
/// at P = 201) dense is 1.7× faster at P = 201 and 1.6× at P = 401, and
/// the Hessian-free path 1.15× faster at P = 1 001 — a product rereads
/// every row, a Hessian pass reads each row once for P² work.
pub fn dense_up_to(p: usize, rows: usize) -> usize {
    if rows.saturating_mul(p).saturating_mul(8) > PRODUCTS_IN_CACHE_BYTES {
        2 * HESSIAN_FREE_ABOVE
    } else {
        HESSIAN_FREE_ABOVE
    }
}

impl HessianPath {
    /// Whether a method with `p` parameters and `rows` rows works on
    /// Hessian–vector products.
    pub fn is_free(self, p: usize, rows: usize) -> bool {
        match self {
            HessianPath::Auto => p > dense_up_to(p, rows),
            HessianPath::Dense => false,
            HessianPath::Free => true,
        }
    }
}

impl std::str::FromStr for HessianPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(HessianPath::Auto),
            "dense" => Ok(HessianPath::Dense),
            "free" => Ok(HessianPath::Free),
            _ => Err(format!("expected auto, dense or free, not `{s}`")),
        }
    }
}

/// What Newton–CG's conjugate gradients are preconditioned with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preconditioner {
    /// Plain CG.
    #[default]
    None,
    /// Jacobi: M = diag(∇²L), each entry raised to at least
    /// [`JACOBI_FLOOR`] times the largest (so M is positive definite
    /// where ∇²L's diagonal is zero or negative); one diagonal pass per
    /// Newton step.
    Diagonal,
}

impl Choice for Preconditioner {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("none", Self::None), ("diagonal", Self::Diagonal)];
}

/// The smallest entry of the Jacobi preconditioner, relative to its
/// largest.
pub const JACOBI_FLOOR: f64 = 1e-8;

impl std::str::FromStr for Preconditioner {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Preconditioner::None),
            "diagonal" => Ok(Preconditioner::Diagonal),
            _ => Err(format!("expected none or diagonal, not `{s}`")),
        }
    }
}

/// How a second-order step changed the Newton system, when it had to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Modification {
    /// H was positive definite; H d = −g solved by Cholesky.
    None,
    /// Cholesky failed (H not positive definite); solved with LU.
    LuFallback,
    /// H singular; the eigen pseudo-inverse was used.
    PseudoInverse,
    /// The Newton direction was not a descent direction; −g was used.
    SteepestDescent,
    /// Modified Cholesky (Nocedal & Wright, Algorithm 3.3): H was not
    /// positive definite, so H + τD (D = diag(|hᵢᵢ|) with a floor) with the
    /// smallest τ of the doubling sequence that factors was used.
    ModifiedCholesky {
        /// τ, relative to each parameter's |hᵢᵢ|.
        tau: f64,
    },
    /// Levenberg–Marquardt: H + λI with this λ.
    Damping {
        /// λ.
        lambda: f64,
    },
    /// Saddle-free Newton: negative eigenvalues of H were flipped (|H|).
    AbsEigenvalues,
    /// Trust region: the CG step stopped at the boundary (radius Δ).
    Boundary {
        /// Δ.
        radius: f64,
    },
    /// Newton–CG: the Newton system was solved by this many conjugate-
    /// gradient iterations (Hessian–vector products); with
    /// `negative_curvature`, CG met a direction with pᵀHp ≤ 0 and stopped
    /// there (−g when it was the first).
    TruncatedCg {
        /// CG iterations (one Hessian–vector product each).
        iterations: u64,
        /// Whether CG stopped on negative curvature.
        negative_curvature: bool,
    },
    /// Trust region: CG met negative curvature and went to the boundary.
    NegativeCurvature {
        /// Δ.
        radius: f64,
    },
}

impl Modification {
    /// Whether the Newton system was changed (regularised or replaced).
    pub fn is_modified(&self) -> bool {
        !matches!(
            self,
            Modification::None
                | Modification::Boundary { .. }
                | Modification::TruncatedCg {
                    negative_curvature: false,
                    ..
                }
        )
    }
}

/// What a second-order step saw of the curvature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Curvature {
    /// The smallest eigenvalue of H (exact, or an estimate: inverse
    /// iteration on the Cholesky factor; the smallest Rayleigh quotient
    /// CG met in the trust region).
    pub lambda_min: f64,
    /// Whether the direction taken satisfied gᵀd < 0.
    pub descent: bool,
    /// What was done to the Newton system.
    pub modification: Modification,
}

/// What one iteration did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// ‖θ_new − θ_old‖₂.
    pub step_norm: f64,
    /// The step length or learning rate used.
    pub alpha: f64,
    /// Whether `Point::loss` and `Point::grad` already hold the values at
    /// the new θ (the driver re-evaluates otherwise).
    pub evaluated: bool,
    /// For second-order steps.
    pub curvature: Option<Curvature>,
    /// The step could not be taken (line search failed): the reason.
    pub failure: Option<&'static str>,
}

impl Step {
    /// A plain step of length `step_norm` with rate `alpha`.
    pub fn moved(step_norm: f64, alpha: f64) -> Self {
        Step {
            step_norm,
            alpha,
            evaluated: false,
            curvature: None,
            failure: None,
        }
    }

    /// A step that could not be taken.
    pub fn failed(reason: &'static str) -> Self {
        Step {
            step_norm: 0.0,
            alpha: 0.0,
            evaluated: true,
            curvature: None,
            failure: Some(reason),
        }
    }
}

/// An optimizer: state plus one step from the current [`Point`].
pub trait Method: Send {
    /// The optimizer's name (as `hessforge optimizers` lists it).
    fn name(&self) -> &str;
    /// Whether the driver must evaluate ∇²L at each iterate (asked after
    /// [`Method::reset`], which may decide it from P).
    fn uses_hessian(&self) -> bool;
    /// Size and zero the state for `p` parameters over `rows` data rows.
    fn reset(&mut self, p: usize, rows: usize);
    /// The run stops once ‖∇L‖∞ ≤ `grad_tol` (told before
    /// [`Method::reset`]): a method that solves its step's system
    /// inexactly may stop solving once it is accurate to a fraction of
    /// that, instead of solving more accurately than the run needs. The
    /// default ignores it.
    fn aim(&mut self, _grad_tol: f64) {}
    /// The dense P × P matrix other than ∇²L that the method keeps for `p`
    /// parameters and `rows` rows (BFGS's inverse-Hessian approximation,
    /// the Gauss–Newton matrix), named for a message; None (the default)
    /// when it keeps none. Asked before [`Method::reset`], which would
    /// allocate it.
    fn dense_matrix(&self, p: usize, rows: usize) -> Option<&'static str> {
        let _ = (p, rows);
        None
    }
    /// One iteration from `at` (loss and gradient valid, Hessian too when
    /// [`Method::uses_hessian`]); moves `at.theta`. `horizon` is the
    /// iteration budget (for schedules).
    fn step(&mut self, objective: &dyn Objective, at: &mut Point, horizon: u64) -> Step;
}

/// Max norm ‖v‖∞; NaN when an entry is NaN (so no tolerance test passes).
pub(crate) fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(
        0.0,
        |m, x| if x.is_nan() { f64::NAN } else { m.max(x.abs()) },
    )
}

/// Each entry replaced by its magnitude, raised to at least
/// `floor(largest)`, `largest` the largest magnitude (NaN entries, which
/// it skips, become the floor): a positive diagonal scaling made from a
/// diagonal that may be zero, negative or not finite (Newton–CG's Jacobi
/// preconditioner, `newton-damped`'s shift).
pub(crate) fn floored_magnitudes(values: &mut [f64], floor: impl Fn(f64) -> f64) {
    let largest = values.iter().fold(0.0f64, |a, d| a.max(d.abs()));
    let floor = floor(largest);
    for d in values {
        *d = if d.abs() >= floor { d.abs() } else { floor };
    }
}

/// Euclidean norm.
pub(crate) fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Dot product.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
