//! Running a [`Method`] to the end: evaluation at each iterate, stopping
//! rules, divergence detection, observers, and the honest final status —
//! a small gradient where the Hessian is not positive semi-definite is a
//! `saddle_point` or a `maximum`, never `converged`.

use crate::method::{Curvature, Method, Point, Step, inf_norm};
use crate::objective::{Counted, Evaluations, Objective};
use hessforge_ir::Rows;
use nalgebra::{DMatrix, SymmetricEigen};
use serde::Serialize;
use std::time::{Duration, Instant};

/// When to stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopping {
    /// Iterations (epochs for mini-batch methods).
    pub max_iters: u64,
    /// Stop when ‖∇L‖∞ ≤ this.
    pub grad_tol: f64,
    /// Stop when |ΔL| ≤ this · max(1, |L|) (0: never).
    pub loss_change_tol: f64,
    /// Stop after this long (None: no limit).
    pub time_limit: Option<Duration>,
    /// Diverged when |L| exceeds this multiple of max(1, |L₀|).
    pub blow_up: f64,
    /// Stop (converged) once L ≤ this (None: no target).
    pub target_loss: Option<f64>,
}

impl Default for Stopping {
    fn default() -> Self {
        Stopping {
            max_iters: 10_000,
            grad_tol: 1e-8,
            loss_change_tol: 0.0,
            time_limit: None,
            blow_up: 1e12,
            target_loss: None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// ‖∇L‖∞ ≤ tolerance (or the loss change below its tolerance, or the
    /// target loss reached) and H positive semi-definite.
    Converged,
    /// ‖∇L‖ small but H has negative and positive eigenvalues.
    SaddlePoint,
    /// ‖∇L‖ small and H negative definite.
    Maximum,
    /// The iteration budget ran out.
    MaxIterations,
    /// The time budget ran out.
    TimeLimit,
    /// The loss became NaN/Inf or blew up.
    Diverged,
    /// The method could not make a step (line search / trust region).
    Failed,
    /// An observer asked the run to stop ([`Observer::stop`]: Ctrl-C in a
    /// notebook, a callback that returned True).
    Interrupted,
}

impl Status {
    /// Exit-code meaning: only `Converged` is success.
    pub fn is_success(self) -> bool {
        self == Status::Converged
    }
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Converged => "converged",
            Status::SaddlePoint => "saddle_point",
            Status::Maximum => "maximum",
            Status::MaxIterations => "max_iterations",
            Status::TimeLimit => "time_limit",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }
}

/// One iteration as observers see it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Iteration number (0 = the start).
    pub iteration: u64,
    /// L(θ).
    pub loss: f64,
    /// ‖∇L‖∞.
    pub grad_norm: f64,
    /// ‖θₖ − θₖ₋₁‖₂ (0 at the start).
    pub step_norm: f64,
    /// Step length / learning rate of the step (0 at the start).
    pub alpha: f64,
    /// Seconds since the start.
    pub seconds: f64,
    /// θ.
    pub theta: &'a [f64],
    /// For second-order steps.
    pub curvature: Option<Curvature>,
}

/// Something that watches a run (history, progress bar).
pub trait Observer {
    /// Called at the start (iteration 0) and after every iteration.
    fn observe(&mut self, record: &Record<'_>);

    /// Why the run should stop now (asked after each [`Observer::observe`]);
    /// `None` to go on. The run ends [`Status::Interrupted`] with this
    /// message, its result the iterate just observed.
    fn stop(&mut self) -> Option<String> {
        None
    }
}

/// Any `FnMut(&Record)` is an observer: `&mut |r: &Record| println!("{}", r.loss)`.
impl<F: FnMut(&Record<'_>)> Observer for F {
    fn observe(&mut self, record: &Record<'_>) {
        self(record)
    }
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The optimizer.
    pub optimizer: String,
    /// How it ended.
    pub status: Status,
    /// `status == converged`.
    pub converged: bool,
    /// Why, in words.
    pub message: String,
    /// Iterations made.
    pub iterations: u64,
    /// Final θ (the last finite iterate when diverged).
    pub theta: Vec<f64>,
    /// L at `theta`.
    pub final_loss: f64,
    /// ‖∇L‖∞ at `theta`.
    pub grad_norm: f64,
    /// Smallest Hessian eigenvalue at `theta` (when the run ended with a small gradient).
    pub lambda_min: Option<f64>,
    /// Passes made.
    pub evaluations: Evaluations,
    /// Wall time.
    pub seconds: f64,
    /// Second-order steps whose Newton system was modified or replaced.
    pub modified_steps: u64,
    /// Second-order steps that were not descent directions.
    pub non_descent_steps: u64,
}

fn evaluate(objective: &dyn Objective, at: &mut Point, hessian: bool) {
    at.loss = if hessian {
        objective.loss_grad_hess(&at.theta, Rows::All, &mut at.grad, &mut at.hess)
    } else {
        objective.loss_grad(&at.theta, Rows::All, &mut at.grad)
    };
}

fn finite(at: &Point) -> bool {
    at.loss.is_finite() && at.grad.iter().all(|g| g.is_finite())
}

/// Above this many parameters, a method that never forms ∇²L has the
/// end-of-run curvature check done by Lanczos on Hessian–vector products
/// instead of a dense eigendecomposition.
pub const DENSE_CHECK_MAX_PARAMS: usize = crate::method::HESSIAN_FREE_ABOVE;

/// Lanczos steps of the large-P curvature check: the extreme eigenvalues
/// of the Krylov space's tridiagonal matrix converge first and fastest.
pub const LANCZOS_STEPS: usize = 60;

/// Eigenvalues of the Hessian at θ: (λ_min, λ_max) — exact from ∇²L, or,
/// for a Hessian-free method above [`DENSE_CHECK_MAX_PARAMS`], estimated
/// by Lanczos on Hessian–vector products (∇²L never formed).
fn extreme_eigenvalues(
    objective: &dyn Objective,
    at: &mut Point,
    hessian_free: bool,
) -> (f64, f64) {
    let p = at.theta.len();
    if p == 0 {
        return (0.0, 0.0);
    }
    if hessian_free && p > DENSE_CHECK_MAX_PARAMS {
        return lanczos(
            objective,
            &at.theta,
            LANCZOS_STEPS.min(p),
            Until::SignSettled,
        );
    }
    if at.hess.len() != p * p {
        at.hess = vec![0.0; p * p];
    }
    evaluate(objective, at, true);
    let eig = SymmetricEigen::new(DMatrix::from_row_slice(p, p, &at.hess)).eigenvalues;
    (eig.min(), eig.max())
}

/// (λ_min, λ_max) of the tridiagonal matrix of `steps` Lanczos steps on
/// ∇²L(θ)·v, with full reorthogonalisation (the steps are few), from a
/// fixed start vector (the same bits on every run).
pub fn lanczos_extremes(objective: &dyn Objective, theta: &[f64], steps: usize) -> (f64, f64) {
    lanczos(objective, theta, steps, Until::ExtremesSettled)
}

/// When a Lanczos run may stop before its last step.
#[derive(Clone, Copy, PartialEq)]
enum Until {
    /// Both extreme Ritz values have settled (see [`lanczos_extremes`]).
    ExtremesSettled,
    /// Also, from the 10th step, as soon as the sign of the curvature at
    /// the bottom of the spectrum is plain (the end-of-run check): the
    /// smallest Ritz value θ₁ is below −10⁻⁶·scale (a direction of negative
    /// curvature, found), or the interval [θ₁ − r₁, θ₁ + r₁] that holds an
    /// eigenvalue (r₁ = β_k·|last entry of θ₁'s Ritz vector|, Parlett's
    /// residual bound) lies above −10⁻⁸·scale, the check's own tolerance.
    SignSettled,
}

/// Whether the bottom of the spectrum's sign is plain: see
/// [`Until::SignSettled`].
fn sign_settled(alpha: &[f64], beta: &[f64], next_beta: f64) -> bool {
    let m = alpha.len();
    let eig = SymmetricEigen::new(tridiagonal(alpha, beta));
    let (at, lo) =
        eig.eigenvalues
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, f64::INFINITY),
                |best, (i, x)| if x < best.1 { (i, x) } else { best },
            );
    let hi = eig.eigenvalues.max();
    let scale = lo.abs().max(hi.abs()).max(1.0);
    let residual = next_beta * eig.eigenvectors[(m - 1, at)].abs();
    lo < -1e-6 * scale || lo - residual >= -1e-8 * scale
}

fn lanczos(objective: &dyn Objective, theta: &[f64], steps: usize, until: Until) -> (f64, f64) {
    let p = theta.len();
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(steps);
    let mut v: Vec<f64> = (0..p).map(|i| ((i + 1) as f64).sin() + 1.5).collect();
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    let (mut alpha, mut beta) = (Vec::new(), Vec::new());
    let mut w = vec![0.0; p];
    let mut last = (f64::NAN, f64::NAN);
    for k in 0..steps {
        objective.hess_vec(theta, Rows::All, &v, &mut w);
        let a: f64 = w.iter().zip(&v).map(|(x, y)| x * y).sum();
        alpha.push(a);
        basis.push(v.clone());
        // w ← w − Σ (qᵢᵀw) qᵢ over the whole basis (twice, for rounding).
        for _ in 0..2 {
            for q in &basis {
                let c: f64 = w.iter().zip(q).map(|(x, y)| x * y).sum();
                w.iter_mut().zip(q).for_each(|(x, y)| *x -= c * y);
            }
        }
        let b = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        let scale = alpha
            .iter()
            .chain(&beta)
            .fold(1e-300f64, |m, x| m.max(x.abs()));
        if k + 1 == steps || b.is_nan() || b <= 1e-12 * scale {
            break;
        }
        if until == Until::SignSettled && k >= 9 && sign_settled(&alpha, &beta, b) {
            break;
        }
        // Every 5 steps from the 10th: stop once neither extreme Ritz value
        // moved by more than 1e-8 of the spectrum's scale (they converge
        // first, monotonically), which on well-separated extremes takes a
        // few dozen products fewer than LANCZOS_STEPS.
        if k >= 9 && (k + 1) % 5 == 0 {
            let now = ritz_extremes(&alpha, &beta);
            let moved = (now.0 - last.0).abs().max((now.1 - last.1).abs());
            if moved <= 1e-8 * scale {
                break;
            }
            last = now;
        }
        beta.push(b);
        v = w.iter().map(|x| x / b).collect();
    }
    let m = alpha.len().saturating_sub(1).min(beta.len());
    ritz_extremes(&alpha, &beta[..m])
}

/// The extreme eigenvalues of the tridiagonal matrix with diagonal `alpha`
/// and off-diagonal `beta` (one shorter).
fn ritz_extremes(alpha: &[f64], beta: &[f64]) -> (f64, f64) {
    let eig = SymmetricEigen::new(tridiagonal(alpha, beta)).eigenvalues;
    (eig.min(), eig.max())
}

/// The symmetric tridiagonal matrix with diagonal `alpha` and off-diagonal
/// `beta` (one shorter).
fn tridiagonal(alpha: &[f64], beta: &[f64]) -> DMatrix<f64> {
    let m = alpha.len();
    DMatrix::from_fn(m, m, |i, j| {
        if i == j {
            alpha[i]
        } else if i + 1 == j {
            beta[i]
        } else if j + 1 == i {
            beta[j]
        } else {
            0.0
        }
    })
}

/// Minimise from θ₀ with `method` until a stopping rule fires.
pub fn minimize(
    objective: &dyn Objective,
    method: &mut dyn Method,
    theta0: &[f64],
    stopping: &Stopping,
    observers: &mut [&mut dyn Observer],
) -> Outcome {
    let counted = Counted::new(objective);
    let objective: &dyn Objective = &counted;
    let start = Instant::now();
    let p = theta0.len();
    method.aim(stopping.grad_tol);
    method.reset(p, objective.n_rows());
    let hessian = method.uses_hessian();
    let mut at = if hessian {
        Point::new(theta0)
    } else {
        Point::without_hessian(theta0)
    };
    let mut last_good = at.theta.clone();
    evaluate(objective, &mut at, hessian);
    let initial_loss = at.loss;
    let blow_up = stopping.blow_up * initial_loss.abs().max(1.0);
    let (mut modified, mut non_descent) = (0, 0);
    let mut notify = |at: &Point, iteration: u64, step: Option<&Step>| {
        let record = Record {
            iteration,
            loss: at.loss,
            grad_norm: inf_norm(&at.grad),
            step_norm: step.map_or(0.0, |s| s.step_norm),
            alpha: step.map_or(0.0, |s| s.alpha),
            seconds: start.elapsed().as_secs_f64(),
            theta: &at.theta,
            curvature: step.and_then(|s| s.curvature),
        };
        for o in observers.iter_mut() {
            o.observe(&record);
        }
        observers.iter_mut().find_map(|o| o.stop())
    };
    let mut interrupted = notify(&at, 0, None);
    let mut iteration = 0;
    let (status, message) = loop {
        if !finite(&at) {
            break (
                Status::Diverged,
                format!("the loss or gradient is not finite at iteration {iteration}"),
            );
        }
        last_good.copy_from_slice(&at.theta);
        if inf_norm(&at.grad) <= stopping.grad_tol {
            break (
                Status::Converged,
                format!("‖∇L‖∞ ≤ {:e}", stopping.grad_tol),
            );
        }
        if iteration >= stopping.max_iters {
            break (
                Status::MaxIterations,
                format!("stopped after {} iterations", stopping.max_iters),
            );
        }
        if let Some(reason) = interrupted.take() {
            break (Status::Interrupted, reason);
        }
        if stopping.time_limit.is_some_and(|t| start.elapsed() >= t) {
            break (Status::TimeLimit, "the time budget ran out".to_string());
        }
        let previous_loss = at.loss;
        let step = method.step(objective, &mut at, stopping.max_iters);
        if let Some(reason) = step.failure {
            break (Status::Failed, reason.to_string());
        }
        iteration += 1;
        if let Some(c) = step.curvature {
            modified += u64::from(c.modification.is_modified());
            non_descent += u64::from(!c.descent);
        }
        if !step.evaluated {
            evaluate(objective, &mut at, hessian);
        }
        interrupted = notify(&at, iteration, Some(&step));
        if at.loss.abs() > blow_up {
            break (
                Status::Diverged,
                format!(
                    "the loss blew up to {:e} at iteration {iteration} (started at {initial_loss:e}); try a smaller step",
                    at.loss
                ),
            );
        }
        if let Some(target) = stopping.target_loss
            && at.loss <= target
        {
            break (Status::Converged, format!("L ≤ the target {target:e}"));
        }
        if stopping.loss_change_tol > 0.0
            && step.step_norm > 0.0
            && (previous_loss - at.loss).abs() <= stopping.loss_change_tol * at.loss.abs().max(1.0)
        {
            break (
                Status::Converged,
                format!("relative loss change ≤ {:e}", stopping.loss_change_tol),
            );
        }
    };
    let (mut status, mut message) = (status, message);
    if status == Status::Diverged {
        at.theta.copy_from_slice(&last_good);
        evaluate(objective, &mut at, false);
        message.push_str("; the result is the last finite iterate");
    }
    let mut lambda_min = None;
    if status == Status::Converged {
        let (lo, hi) = extreme_eigenvalues(objective, &mut at, !hessian);
        lambda_min = Some(lo);
        let tol = 1e-8 * lo.abs().max(hi.abs()).max(1.0);
        if hi < -tol {
            status = Status::Maximum;
            message = format!(
                "{message}, but the Hessian is negative definite (λ_max = {hi:.3e}): a local maximum, not a minimum"
            );
        } else if lo < -tol {
            status = Status::SaddlePoint;
            message = format!(
                "{message}, but the Hessian is indefinite (λ_min = {lo:.3e}): a saddle point, not a minimum"
            );
        }
    }
    Outcome {
        optimizer: method.name().to_string(),
        status,
        converged: status == Status::Converged,
        message,
        iterations: iteration,
        grad_norm: inf_norm(&at.grad),
        final_loss: at.loss,
        theta: at.theta,
        lambda_min,
        evaluations: counted.evaluations(),
        seconds: start.elapsed().as_secs_f64(),
        modified_steps: modified,
        non_descent_steps: non_descent,
    }
}

/// Keeps every record (the `--history` file).
#[derive(Debug, Default, Clone)]
pub struct History {
    /// (iteration, loss, ‖g‖∞, step norm, α, seconds, θ, curvature)
    pub rows: Vec<HistoryRow>,
    /// Keep θ in each row (see [`History::for_params`]).
    pub keep_theta: bool,
}

impl History {
    /// Models with at most this many parameters keep θ in every row: the
    /// paths of the contour figures and the curvature along Newton's path
    /// need it, and beyond it the iterates would outweigh everything else
    /// the history holds.
    pub const MAX_PARAMS_WITH_THETA: usize = 20;

    /// An empty history for a model with `n_params` parameters, keeping θ
    /// up to [`History::MAX_PARAMS_WITH_THETA`].
    pub fn for_params(n_params: usize) -> History {
        History {
            rows: Vec::new(),
            keep_theta: n_params <= Self::MAX_PARAMS_WITH_THETA,
        }
    }
}

/// One row of a [`History`].
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    /// Iteration.
    pub iteration: u64,
    /// L.
    pub loss: f64,
    /// ‖∇L‖∞.
    pub grad_norm: f64,
    /// ‖Δθ‖₂.
    pub step_norm: f64,
    /// Step length / learning rate.
    pub alpha: f64,
    /// Seconds since the start.
    pub seconds: f64,
    /// θ (empty unless kept).
    pub theta: Vec<f64>,
    /// Curvature of a second-order step.
    pub curvature: Option<Curvature>,
}

impl Observer for History {
    fn observe(&mut self, r: &Record<'_>) {
        self.rows.push(HistoryRow {
            iteration: r.iteration,
            loss: r.loss,
            grad_norm: r.grad_norm,
            step_norm: r.step_norm,
            alpha: r.alpha,
            seconds: r.seconds,
            theta: if self.keep_theta {
                r.theta.to_vec()
            } else {
                vec![]
            },
            curvature: r.curvature,
        });
    }
}

#[cfg(test)]
mod lanczos_tests {
    use super::*;
    use crate::objective::FnObjective;

    #[test]
    fn lanczos_finds_the_extreme_eigenvalues_of_a_large_hessian() {
        // A 300 × 300 tridiagonal Hessian (eigenvalues known in closed
        // form) shifted to be indefinite: λ_k = c − 2 cos(kπ/(P + 1)). Its
        // extreme eigenvalues are clustered (gaps of about 10⁻⁴), the hard
        // case for Lanczos: 60 steps get them to a few 10⁻³, plenty for
        // the sign the end-of-run check needs.
        let p = 300;
        let shift = 1.5;
        let objective = shifted_path_hessian(p, shift);
        let exact =
            |k: usize| shift - 2.0 * (k as f64 * std::f64::consts::PI / (p + 1) as f64).cos();
        let (lo, hi) = lanczos_extremes(&objective, &vec![0.0; p], LANCZOS_STEPS);
        assert!((lo - exact(1)).abs() < 5e-3, "λ_min {lo} vs {}", exact(1));
        assert!((hi - exact(p)).abs() < 5e-3, "λ_max {hi} vs {}", exact(p));
        // Lanczos's Ritz values lie inside the spectrum.
        assert!(lo >= exact(1) - 1e-9 && hi <= exact(p) + 1e-9);
        assert!(lo < 0.0, "the indefinite Hessian is seen as indefinite");
    }

    /// A zero loss whose Hessian is the P × P tridiagonal matrix with
    /// `shift` on the diagonal and −1 beside it: λ_k = shift − 2 cos(kπ/(P + 1)).
    fn shifted_path_hessian(p: usize, shift: f64) -> impl Objective {
        FnObjective {
            n_params: p,
            loss: |_: &[f64]| 0.0,
            grad: |_: &[f64], g: &mut [f64]| g.fill(0.0),
            hess: move |_: &[f64], h: &mut [f64]| {
                h.fill(0.0);
                for i in 0..p {
                    h[i * p + i] = shift;
                    if i + 1 < p {
                        h[i * p + i + 1] = -1.0;
                        h[(i + 1) * p + i] = -1.0;
                    }
                }
            },
        }
    }

    /// The Hessian of the test above with another shift, and the number of
    /// products the end-of-run check's Lanczos took.
    fn sign_check(shift: f64) -> ((f64, f64), u64) {
        let p = 300;
        let objective = shifted_path_hessian(p, shift);
        let counted = Counted::new(&objective);
        let extremes = lanczos(&counted, &vec![0.0; p], LANCZOS_STEPS, Until::SignSettled);
        (extremes, counted.evaluations().hess_vec)
    }

    #[test]
    fn the_end_of_run_check_stops_once_the_sign_is_plain() {
        // Indefinite (λ from −0.5 to 3.5): a negative Ritz value is a
        // direction of negative curvature, found in the 10th step.
        let ((lo, _), products) = sign_check(1.5);
        assert!(lo < -1e-6, "λ_min {lo}");
        assert_eq!(products, 10);
        // Positive definite (λ from 0.5 to 4.5): it stops once an
        // eigenvalue is certified above 0 at the bottom, before the 60th
        // step, with θ₁ an upper bound of λ_min and positive.
        let ((lo, hi), products) = sign_check(2.5);
        let exact_min = 2.5 - 2.0 * (std::f64::consts::PI / 301.0).cos();
        assert!(lo >= exact_min - 1e-9 && lo > 0.0 && hi > lo, "{lo} {hi}");
        assert!((10..LANCZOS_STEPS as u64).contains(&products), "{products}");
    }
}

#[cfg(test)]
mod observer_tests {
    use super::*;
    use crate::objective::FnObjective;

    /// Stops after `after` records.
    struct StopAfter {
        seen: u64,
        after: u64,
    }

    impl Observer for StopAfter {
        fn observe(&mut self, _: &Record<'_>) {
            self.seen += 1;
        }
        fn stop(&mut self) -> Option<String> {
            (self.seen >= self.after).then(|| "asked to stop".to_string())
        }
    }

    #[test]
    fn an_observer_stops_a_run_with_what_it_reached() {
        // L = Σ (θᵢ − 1)², gradient descent at α = 0.1: far from converged
        // after two steps.
        let objective = FnObjective {
            n_params: 2,
            loss: |t: &[f64]| t.iter().map(|x| (x - 1.0).powi(2)).sum(),
            grad: |t: &[f64], g: &mut [f64]| {
                for (g, x) in g.iter_mut().zip(t) {
                    *g = 2.0 * (x - 1.0);
                }
            },
            hess: |_: &[f64], h: &mut [f64]| h.copy_from_slice(&[2.0, 0.0, 0.0, 2.0]),
        };
        let settings = crate::Settings {
            lr: Some(0.1),
            ..Default::default()
        };
        let mut gd = crate::build("gd", &settings).unwrap();
        let mut history = History::for_params(2);
        let mut stop = StopAfter { seen: 0, after: 3 };
        let outcome = minimize(
            &objective,
            gd.as_mut(),
            &[0.0, 0.0],
            &Stopping::default(),
            &mut [&mut history, &mut stop],
        );
        assert_eq!(outcome.status, Status::Interrupted);
        assert_eq!(outcome.status.as_str(), "interrupted");
        assert_eq!(outcome.message, "asked to stop");
        // The start and two steps observed; the result is the last of them.
        assert_eq!(outcome.iterations, 2);
        assert_eq!(history.rows.len(), 3);
        assert_eq!(outcome.theta, history.rows[2].theta);
        assert!(outcome.final_loss < 2.0 && outcome.final_loss > 0.5);
    }
}
