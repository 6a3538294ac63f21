//! Newton's method and its safeguarded relatives (seed 002 "Second-Order
//! Optimization"; seed 004 "Newton's method in optimization"): the step
//! solves H d = −g, the minimiser of the second-order Taylor model.
//!
//! - [`NewtonKind::Pure`]: θ ← θ + d, no safeguard (it is attracted to any
//!   stationary point, saddles included — which the run then reports);
//! - [`NewtonKind::Damped`]: θ ← θ + αd with backtracking to the Armijo
//!   condition, where d solves (H + τD) d = −g with τ = 0 when H is
//!   positive definite and otherwise the smallest τ of a doubling sequence
//!   that makes Cholesky succeed (modified Cholesky, Nocedal & Wright
//!   Algorithm 3.3, on H scaled to a unit diagonal: D = diag(|hᵢᵢ|) with a
//!   floor): d is always a descent direction, and the shift is the same
//!   fraction of every parameter's own curvature whatever its units;
//! - [`NewtonKind::LevenbergMarquardt`]: (H + λI) d = −g, λ shrunk after a
//!   successful step (÷3) and grown after a failed one (×4);
//! - [`NewtonKind::SaddleFree`]: d = −|H|⁻¹g with |H| = Q|Λ|Qᵀ (Dauphin et
//!   al. 2014), with the Armijo line search;
//! - [`NewtonKind::GaussNewton`]: for ℓᵢ = c·rᵢ², d solves G d = −g with
//!   G = (1/N) Σ 2c ∇rᵢ∇rᵢᵀ + ∇²R (positive semi-definite; a tiny damping
//!   μI is added while it is singular), with the Armijo line search;
//!   above [`crate::HESSIAN_FREE_ABOVE`] parameters (or with
//!   [`HessianPath::Free`]) G is never formed: d comes from conjugate
//!   gradients on Gauss–Newton–vector products ([`NewtonCg::gauss_newton`]).
//!
//! Linear algebra: a Cholesky factorisation (which also proves H positive
//! definite), LU when it fails, the eigen pseudo-inverse when H is singular.
//! Buffers are allocated once in [`Method::reset`]; a positive-definite
//! Newton step allocates nothing.

use crate::line_search::{Ray, armijo};
use crate::method::{
    Curvature, HessianPath, Method, Modification, Point, Step, dot, floored_magnitudes, norm,
};
use crate::newton_cg::NewtonCg;
use crate::objective::Objective;
use crate::optimizer::{BuildError, DefaultValue, Hyper, Optimizer, Range};
use nalgebra::{Cholesky, DMatrix, DVector, SymmetricEigen};

/// Why Gauss–Newton cannot run on an objective that offers no Gauss–Newton
/// matrix.
pub(crate) const GAUSS_NEWTON_REFUSED: &str = "Gauss–Newton needs a loss that is a square per \
     row, ℓ = c·r² (and, with a regularizer, a model in index form: a vector or matrix parameter)";

/// λ₀ of Levenberg–Marquardt (`newton-lm`).
pub const DAMPING: Hyper = Hyper {
    flag: "--damping",
    default: DefaultValue::Number(1e-3),
    range: Range::Positive,
};

/// Which Newton variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewtonKind {
    /// θ ← θ − H⁻¹g.
    Pure,
    /// Newton direction + Armijo backtracking.
    Damped,
    /// Levenberg–Marquardt: H + λI with adaptive λ.
    LevenbergMarquardt,
    /// |H| from the eigendecomposition + Armijo backtracking.
    SaddleFree,
    /// The Gauss–Newton matrix JᵀJ in place of H (losses that are a square
    /// per row) + Armijo backtracking.
    GaussNewton,
}

/// Newton's method, in one of its variants.
#[derive(Debug, Clone)]
pub struct Newton {
    /// The variant.
    pub kind: NewtonKind,
    /// λ of Levenberg–Marquardt (the starting value before a run).
    pub lambda: f64,
    lambda0: f64,
    factor: Option<DMatrix<f64>>,
    d: DVector<f64>,
    probe: DVector<f64>,
    trial: Vec<f64>,
    gauss_newton: Vec<f64>,
    /// Where Gauss–Newton gets its matrix: dense, or by products.
    hessian: HessianPath,
    /// Hessian-free Gauss–Newton's CG, when [`Method::reset`] chose it.
    products: Option<NewtonCg>,
}

impl Newton {
    /// A Newton method of this kind (λ₀ = 10⁻³ for Levenberg–Marquardt).
    pub fn new(kind: NewtonKind) -> Self {
        Newton {
            kind,
            lambda: 1e-3,
            lambda0: 1e-3,
            factor: None,
            d: DVector::zeros(0),
            probe: DVector::zeros(0),
            trial: Vec::new(),
            gauss_newton: Vec::new(),
            hessian: HessianPath::Auto,
            products: None,
        }
    }

    /// With the Gauss–Newton matrix dense or by products (`gauss-newton`
    /// only; [`HessianPath::Auto`]: by products above
    /// [`crate::HESSIAN_FREE_ABOVE`] parameters).
    pub fn with_hessian(mut self, hessian: HessianPath) -> Self {
        self.hessian = hessian;
        self
    }

    /// Whether `gauss-newton` with `p` parameters and `rows` rows works on
    /// products.
    fn gauss_newton_free(&self, p: usize, rows: usize) -> bool {
        self.kind == NewtonKind::GaussNewton && self.hessian.is_free(p, rows)
    }

    /// With λ₀ for Levenberg–Marquardt, checked against the range of
    /// `--damping` (λ₀ > 0).
    pub fn with_lambda(mut self, lambda: f64) -> Result<Self, BuildError> {
        let lambda = DAMPING.value(Optimizer::NewtonLm, Some(lambda), None)?;
        self.lambda = lambda;
        self.lambda0 = lambda;
        Ok(self)
    }

    /// Factor `hess + shift·D` by Cholesky into the reused buffer, D the
    /// diagonal `scale` (I without one); true when it is positive definite
    /// (the factor is then kept).
    fn cholesky(
        &mut self,
        hess: &[f64],
        shift: f64,
        scale: Option<&[f64]>,
    ) -> Option<Cholesky<f64, nalgebra::Dyn>> {
        let p = self.d.len();
        let mut m = self.factor.take().unwrap_or_else(|| DMatrix::zeros(p, p));
        m.copy_from_slice(hess);
        for i in 0..p {
            m[(i, i)] += shift * scale.map_or(1.0, |s| s[i]);
        }
        Cholesky::new(m)
    }

    /// Solve (H + shift I) d = −g into `self.d` by Cholesky; on success,
    /// λ_min(H + shift I) estimated by inverse iteration on the factor.
    fn solve_cholesky(&mut self, hess: &[f64], grad: &[f64], shift: f64) -> Option<f64> {
        self.solve_cholesky_scaled(hess, grad, shift, None)
    }

    /// [`Self::solve_cholesky`] with the shift along a diagonal `scale`:
    /// (H + shift·D) d = −g.
    fn solve_cholesky_scaled(
        &mut self,
        hess: &[f64],
        grad: &[f64],
        shift: f64,
        scale: Option<&[f64]>,
    ) -> Option<f64> {
        let chol = self.cholesky(hess, shift, scale)?;
        for (di, gi) in self.d.iter_mut().zip(grad) {
            *di = -gi;
        }
        chol.solve_mut(&mut self.d);
        // Inverse iteration: ‖(H)⁻¹ v‖ → 1/λ_min for a unit v.
        self.probe.fill(1.0);
        let mut estimate = f64::INFINITY;
        for _ in 0..12 {
            let n = self.probe.norm();
            self.probe /= n;
            chol.solve_mut(&mut self.probe);
            estimate = 1.0 / self.probe.norm();
        }
        self.factor = Some(chol.unpack());
        Some(estimate)
    }

    /// Damped Newton's direction: (H + τD) d = −g by Cholesky, τ = 0 when
    /// H is positive definite, else Nocedal & Wright's Algorithm 3.3 on H
    /// scaled to a unit diagonal: D = diag(max(|hᵢᵢ|, 10⁻¹⁰·max|hⱼⱼ|)),
    /// τ₀ = β − min hᵢᵢ/dᵢ (or β when the diagonal is positive), doubled
    /// until the factorisation succeeds, β = 10⁻³. The shift along D is the
    /// algorithm applied to D^{-1/2} H D^{-1/2}, so it does not depend on
    /// the parameters' units: with the shift along I (β = 10⁻³·max|hᵢᵢ|)
    /// a parameter of scale 10⁻⁴ beside one of 10² (NIST's Misra1a) got a
    /// shift 10⁶ times its own curvature and the line search crawled,
    /// reaching 10 of NIST's 27 problems from Start 1 (20 with D; results
    /// page *NIST StRD*). Chosen over Gill–Murray and Schnabel–Eskow
    /// because it needs nothing but the Cholesky factorisation we already
    /// have, and a handful of attempts at these sizes costs less than one
    /// Hessian pass. Returns λ_min(H) (exact from the eigenvalues when H was
    /// modified) and the modification.
    fn modified_cholesky_direction(&mut self, hess: &[f64], grad: &[f64]) -> (f64, Modification) {
        let p = grad.len();
        if let Some(lambda_min) = self.solve_cholesky(hess, grad, 0.0) {
            return (lambda_min, Modification::None);
        }
        let diagonal = (0..p).map(|i| hess[i * p + i]);
        let mut scale: Vec<f64> = diagonal.clone().collect();
        floored_magnitudes(&mut scale, |largest| {
            1e-10 * if largest > 0.0 { largest } else { 1.0 }
        });
        let beta = 1e-3;
        let smallest = (diagonal.zip(&scale))
            .map(|(h, d)| h / d)
            .fold(f64::INFINITY, f64::min);
        let mut tau = if smallest > 0.0 {
            beta
        } else {
            beta - smallest
        };
        let lambda_min = Self::eigen(hess, p).eigenvalues.min();
        for _ in 0..200 {
            if self
                .solve_cholesky_scaled(hess, grad, tau, Some(&scale))
                .is_some()
            {
                return (lambda_min, Modification::ModifiedCholesky { tau });
            }
            tau = (2.0 * tau).max(beta);
        }
        // Not factorable for any finite shift (NaN or ∞ in H): steepest descent.
        for (di, gi) in self.d.iter_mut().zip(grad) {
            *di = -gi;
        }
        (lambda_min, Modification::SteepestDescent)
    }

    /// The full eigendecomposition (allocates; used when H is not positive definite).
    fn eigen(hess: &[f64], p: usize) -> SymmetricEigen<f64, nalgebra::Dyn> {
        SymmetricEigen::new(DMatrix::from_row_slice(p, p, hess))
    }

    /// d = −Σ (qᵢᵀg / f(λᵢ)) qᵢ over eigenpairs with |λᵢ| above the cut-off.
    fn solve_eigen(
        &mut self,
        eig: &SymmetricEigen<f64, nalgebra::Dyn>,
        grad: &[f64],
        transform: impl Fn(f64) -> f64,
    ) {
        let scale = eig.eigenvalues.amax().max(1.0);
        self.d.fill(0.0);
        for (k, &lambda) in eig.eigenvalues.iter().enumerate() {
            let l = transform(lambda);
            if l.abs() <= 1e-12 * scale {
                continue;
            }
            let q = eig.eigenvectors.column(k);
            let c: f64 = q.iter().zip(grad).map(|(a, b)| a * b).sum::<f64>() / l;
            self.d.axpy(-c, &q, 1.0);
        }
    }

    /// The Newton direction for Pure/Damped: Cholesky, else LU, else pseudo-inverse.
    fn newton_direction(&mut self, hess: &[f64], grad: &[f64]) -> (f64, Modification) {
        let p = grad.len();
        if let Some(lambda_min) = self.solve_cholesky(hess, grad, 0.0) {
            return (lambda_min, Modification::None);
        }
        let eig = Self::eigen(hess, p);
        let lambda_min = eig.eigenvalues.min();
        let lu = DMatrix::from_row_slice(p, p, hess).lu();
        let rhs = DVector::from_iterator(p, grad.iter().map(|g| -g));
        match lu.solve(&rhs) {
            Some(d)
                if d.iter().all(|x| x.is_finite())
                    && lambda_min.abs() > 1e-12 * eig.eigenvalues.amax().max(1.0) =>
            {
                self.d.copy_from(&d);
                (lambda_min, Modification::LuFallback)
            }
            _ => {
                self.solve_eigen(&eig, grad, |l| l);
                (lambda_min, Modification::PseudoInverse)
            }
        }
    }

    fn take_step(
        &mut self,
        objective: &dyn Objective,
        at: &mut Point,
        curvature: Curvature,
        search: bool,
    ) -> Step {
        let slope = dot(self.d.as_slice(), &at.grad);
        let mut step = if search {
            let ray = Ray {
                theta: &at.theta,
                loss: at.loss,
                slope,
                direction: self.d.as_slice(),
            };
            match armijo(objective, ray, &mut self.trial) {
                Some(_) if self.trial == at.theta => {
                    return Step::failed(
                        "the line search's step no longer changes θ: the gradient is at the precision to which L can be evaluated here",
                    );
                }
                Some(acc) => {
                    at.theta.copy_from_slice(&self.trial);
                    at.loss = acc.loss;
                    Step::moved(acc.alpha * self.d.norm(), acc.alpha)
                }
                None => {
                    return Step::failed(
                        "the line search found no decrease along the Newton direction",
                    );
                }
            }
        } else {
            for (t, di) in at.theta.iter_mut().zip(self.d.iter()) {
                *t += di;
            }
            Step::moved(self.d.norm(), 1.0)
        };
        step.curvature = Some(curvature);
        step
    }

    fn levenberg_marquardt(&mut self, objective: &dyn Objective, at: &mut Point) -> Step {
        let p = at.grad.len();
        let lambda_min = Self::eigen(&at.hess, p).eigenvalues.min();
        for _ in 0..60 {
            let lambda = self.lambda;
            if self.solve_cholesky(&at.hess, &at.grad, lambda).is_none() {
                self.lambda = (lambda * 10.0).max(1e-8);
                continue;
            }
            for ((t, x), di) in self.trial.iter_mut().zip(&at.theta).zip(self.d.iter()) {
                *t = x + di;
            }
            let f = objective.loss(&self.trial, hessforge_ir::Rows::All);
            if f.is_finite() && f < at.loss {
                self.lambda = (lambda / 3.0).max(1e-15);
                at.theta.copy_from_slice(&self.trial);
                at.loss = f;
                let mut step = Step::moved(self.d.norm(), 1.0);
                step.curvature = Some(Curvature {
                    lambda_min,
                    descent: true,
                    modification: Modification::Damping { lambda },
                });
                return step;
            }
            self.lambda = (lambda * 4.0).max(1e-8);
        }
        Step::failed("Levenberg–Marquardt found no decrease for any damping λ")
    }
}

impl Newton {
    fn gauss_newton_step(&mut self, objective: &dyn Objective, at: &mut Point) -> Step {
        let mut gn = std::mem::take(&mut self.gauss_newton);
        let loss = objective.loss_grad_gauss_newton(&at.theta, &mut at.grad, &mut gn);
        let step = match loss {
            None => Step::failed(GAUSS_NEWTON_REFUSED),
            Some(loss) => {
                at.loss = loss;
                let p = at.grad.len();
                let scale = (0..p)
                    .map(|i| gn[i * p + i].abs())
                    .fold(0.0, f64::max)
                    .max(1e-300);
                let mut shift = 0.0;
                let mut solved = self.solve_cholesky(&gn, &at.grad, 0.0).is_some();
                while !solved && shift < 1e300 {
                    shift = if shift == 0.0 {
                        1e-12 * scale
                    } else {
                        shift * 10.0
                    };
                    solved = self.solve_cholesky(&gn, &at.grad, shift).is_some();
                }
                if !solved {
                    Step::failed("the Gauss–Newton matrix could not be factored")
                } else {
                    let mut step = self.take_step(
                        objective,
                        at,
                        Curvature {
                            lambda_min: f64::NAN,
                            descent: true,
                            modification: Modification::None,
                        },
                        true,
                    );
                    step.curvature = None;
                    step
                }
            }
        };
        self.gauss_newton = gn;
        step
    }
}

impl Method for Newton {
    fn name(&self) -> &str {
        let optimizer = match self.kind {
            NewtonKind::Pure => Optimizer::Newton,
            NewtonKind::Damped => Optimizer::NewtonDamped,
            NewtonKind::LevenbergMarquardt => Optimizer::NewtonLm,
            NewtonKind::SaddleFree => Optimizer::NewtonSaddleFree,
            NewtonKind::GaussNewton => Optimizer::GaussNewton,
        };
        optimizer.name()
    }
    fn uses_hessian(&self) -> bool {
        self.kind != NewtonKind::GaussNewton
    }
    fn dense_matrix(&self, p: usize, rows: usize) -> Option<&'static str> {
        (self.kind == NewtonKind::GaussNewton && !self.gauss_newton_free(p, rows))
            .then_some("Gauss–Newton matrix")
    }
    fn reset(&mut self, p: usize, rows: usize) {
        if self.gauss_newton_free(p, rows) {
            let mut cg = NewtonCg::gauss_newton();
            cg.reset(p, rows);
            self.products = Some(cg);
            self.gauss_newton = Vec::new();
            self.factor = None;
        } else {
            self.products = None;
            self.gauss_newton = vec![
                0.0;
                if self.kind == NewtonKind::GaussNewton {
                    p * p
                } else {
                    0
                }
            ];
            self.factor = Some(DMatrix::zeros(p, p));
        }
        self.d = DVector::zeros(p);
        self.probe = DVector::zeros(p);
        self.trial = vec![0.0; p];
        self.lambda = self.lambda0;
    }
    fn step(&mut self, objective: &dyn Objective, at: &mut Point, horizon: u64) -> Step {
        match self.kind {
            NewtonKind::Pure => {
                let (lambda_min, modification) = self.newton_direction(&at.hess, &at.grad);
                let curvature = Curvature {
                    lambda_min,
                    descent: dot(self.d.as_slice(), &at.grad) < 0.0,
                    modification,
                };
                self.take_step(objective, at, curvature, false)
            }
            NewtonKind::Damped => {
                let (lambda_min, modification) =
                    self.modified_cholesky_direction(&at.hess, &at.grad);
                let curvature = Curvature {
                    lambda_min,
                    descent: dot(self.d.as_slice(), &at.grad) < 0.0,
                    modification,
                };
                self.take_step(objective, at, curvature, true)
            }
            NewtonKind::LevenbergMarquardt => self.levenberg_marquardt(objective, at),
            NewtonKind::GaussNewton => match &mut self.products {
                Some(cg) => cg.step(objective, at, horizon),
                None => self.gauss_newton_step(objective, at),
            },
            NewtonKind::SaddleFree => {
                let eig = Self::eigen(&at.hess, at.grad.len());
                let lambda_min = eig.eigenvalues.min();
                let floor = 1e-12 * eig.eigenvalues.amax().max(1e-300);
                self.solve_eigen(&eig, &at.grad, |l| l.abs().max(floor));
                let modification = if lambda_min < 0.0 {
                    Modification::AbsEigenvalues
                } else {
                    Modification::None
                };
                let curvature = Curvature {
                    lambda_min,
                    descent: dot(self.d.as_slice(), &at.grad) < 0.0,
                    modification,
                };
                if norm(self.d.as_slice()) == 0.0 {
                    return Step::failed("the gradient is orthogonal to every eigenvector");
                }
                self.take_step(objective, at, curvature, true)
            }
        }
    }
}
