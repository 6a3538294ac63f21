//! Running optimizers on a prepared problem: build them from the catalogue
//! (with L = λ_max(∇²L(θ₀)) for the 1/L defaults), run one with any
//! observers or compare several from the same start, and the Hessian's
//! spectrum at the optimum the comparison found.

use crate::backend::loss_is_square;
use crate::data::Storage;
use crate::problem::{OptionError, Prepared, option_error};
use hessforge_optim::run_loop::{DENSE_CHECK_MAX_PARAMS, LANCZOS_STEPS, lanczos_extremes};
use hessforge_optim::{
    CATALOG, HessianPath, History, Method, Objective, Observer, Optimizer, Outcome, Settings,
    Status, Stopping, build, minimize,
};
use hessforge_spec::Model;
use nalgebra::{DMatrix, SymmetricEigen};
use std::time::Duration;

/// Extreme Hessian eigenvalues at θ: (λ_min, λ_max). Exact from the dense
/// Hessian up to [`DENSE_CHECK_MAX_PARAMS`] parameters; above, estimated by
/// Lanczos on Hessian–vector products (60 of them), so that a large model
/// never forms its P × P Hessian for a diagnostic.
pub fn hessian_spectrum(objective: &dyn Objective, theta: &[f64]) -> (f64, f64) {
    let p = theta.len();
    if p > DENSE_CHECK_MAX_PARAMS {
        return lanczos_extremes(objective, theta, LANCZOS_STEPS.min(p));
    }
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    objective.loss_grad_hess(theta, hessforge_optim::Rows::All, &mut g, &mut h);
    let eig = SymmetricEigen::new(DMatrix::from_row_slice(p, p, &h)).eigenvalues;
    (eig.min(), eig.max())
}

/// The converged run with the lowest final loss: the optimum the
/// comparison reports.
pub fn best_converged<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Option<&'a Outcome> {
    outcomes
        .into_iter()
        .filter(|o| o.converged)
        .min_by(|a, b| a.final_loss.total_cmp(&b.final_loss))
}

/// The Hessian's extreme eigenvalues at a point (the optimum a comparison
/// found).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spectrum {
    /// λ_min.
    pub lambda_min: f64,
    /// λ_max.
    pub lambda_max: f64,
}

impl Spectrum {
    /// |λ_min| at most this fraction of |λ_max| is zero to working precision:
    /// a symmetric eigensolver's error is a few ε·‖H‖ (ε ≈ 2.2·10⁻¹⁶), and
    /// this leaves it a factor of about 4 500.
    pub const SINGULAR: f64 = 1e-12;

    /// Whether λ_min is zero to working precision: the Hessian is singular
    /// there, the minimisers form a flat valley rather than a point (softmax
    /// regression: adding one number to every class's score changes
    /// nothing), and κ = λ_max/λ_min describes rounding, not the problem.
    pub fn is_singular(&self) -> bool {
        self.lambda_min.abs() <= Self::SINGULAR * self.lambda_max.abs()
    }

    /// κ = λ_max/λ_min.
    pub fn condition_number(&self) -> f64 {
        self.lambda_max / self.lambda_min
    }
}

/// The Hessian's spectrum at the best converged run's θ, if any run converged.
pub fn optimum_spectrum(prepared: &Prepared, outcomes: &[Outcome]) -> Option<Spectrum> {
    best_converged(outcomes).map(|o| {
        let (lambda_min, lambda_max) = hessian_spectrum(prepared.objective().as_ref(), &o.theta);
        Spectrum {
            lambda_min,
            lambda_max,
        }
    })
}

/// Set L = λ_max(H(θ₀)) in `settings` — once, from one Hessian pass — when
/// any of these optimizers takes its default step 1/L.
pub fn start_curvature(settings: &mut Settings, names: &[&str], prepared: &Prepared) {
    let wants = |n: &&str| {
        n.parse::<Optimizer>()
            .is_ok_and(|o| o.wants_curvature(settings))
    };
    if names.iter().any(wants) {
        settings.curvature =
            Some(hessian_spectrum(prepared.objective().as_ref(), &prepared.start).1);
    }
}

/// Make an optimizer (after [`start_curvature`], for the 1/L defaults).
pub fn optimizer(name: &str, settings: &Settings) -> Result<Box<dyn Method>, OptionError> {
    build(name, settings).map_err(|e| match e {
        hessforge_optim::BuildError::OutOfRange { flag, .. } => option_error(
            flag,
            e.to_string(),
            "see `hessforge optimizers` for each hyper-parameter's range",
        ),
        hessforge_optim::BuildError::Conflict { .. } => option_error(
            "--subproblem",
            e.to_string(),
            "leave one of the two options out",
        ),
        _ => option_error(
            "--optimizer",
            e.to_string(),
            "`hessforge optimizers` lists them with their update rules",
        ),
    })
}

/// The largest dense Hessian an optimizer may form unless asked to with
/// `--hessian dense` ([`HessianPath::Dense`]): 512 MiB, a model of about
/// 8 200 parameters. Above, forming it costs more memory than a laptop
/// spares and a factorisation of P³/3 operations per step.
pub const DENSE_HESSIAN_MAX_BYTES: u64 = 512 << 20;

/// The memory of a dense P × P Hessian: P² × 8 bytes.
pub fn dense_hessian_bytes(p: usize) -> u64 {
    (p as u64).saturating_mul(p as u64).saturating_mul(8)
}

/// Make an optimizer for this problem: [`optimizer`], then sized for its P,
/// refusing one that would form a dense Hessian over
/// [`DENSE_HESSIAN_MAX_BYTES`] unless `settings.hessian` is
/// [`HessianPath::Dense`]; the error says the memory it would need and
/// names the Hessian-free methods.
pub fn optimizer_for(
    prepared: &Prepared,
    name: &str,
    settings: &Settings,
) -> Result<Box<dyn Method>, OptionError> {
    let mut method = optimizer(name, settings)?;
    if prepared.data.is_streamed() && CATALOG.iter().any(|e| e.name() == name && e.stochastic) {
        return Err(option_error(
            "--optimizer",
            format!(
                "`{name}` draws mini-batches, which need the rows in memory; {} is streamed",
                prepared.data.source
            ),
            "add --in-memory to read the file into memory, or choose a full-batch optimizer",
        ));
    }
    let p = prepared.model.n_params();
    let over =
        dense_hessian_bytes(p) > DENSE_HESSIAN_MAX_BYTES && settings.hessian != HessianPath::Dense;
    // Asked before `reset`, which would allocate it.
    if over && let Some(what) = method.dense_matrix(p, prepared.data.rows) {
        return Err(too_large(
            name,
            p,
            &format!("keeps a dense {p} × {p} {what}"),
        ));
    }
    method.reset(p, prepared.data.rows);
    if over && method.uses_hessian() {
        return Err(too_large(
            name,
            p,
            &format!("forms the dense {p} × {p} Hessian at every step"),
        ));
    }
    Ok(method)
}

/// The refusal of a method whose P × P matrix is over
/// [`DENSE_HESSIAN_MAX_BYTES`].
fn too_large(name: &str, p: usize, what: &str) -> OptionError {
    option_error(
        "--optimizer",
        format!(
            "{name} {what}: {} (P² × 8 bytes), over the limit of {}",
            human_bytes(dense_hessian_bytes(p)),
            human_bytes(DENSE_HESSIAN_MAX_BYTES)
        ),
        "newton-cg and newton-tr work on Hessian–vector products and never form it; lbfgs keeps 2m vectors; gauss-newton works on products above 200 (or 400) parameters; `--hessian dense` runs it anyway",
    )
}

/// Bytes as MB or GB (decimal, as a user reads them).
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.0} MB", b / 1e6)
    }
}

/// Run one optimizer on a prepared problem from its start, reporting every
/// iteration to the observers (a [`History`], a progress bar); the outcome
/// carries the optimizer's name.
pub fn fit(
    prepared: &Prepared,
    name: &str,
    method: &mut dyn Method,
    stopping: &Stopping,
    observers: &mut [&mut dyn Observer],
) -> Outcome {
    let mut outcome = match &prepared.data.storage {
        Storage::Memory(values) => {
            let objective = prepared.memory_objective(values);
            minimize(&objective, method, &prepared.start, stopping, observers)
        }
        Storage::Streamed(table) => {
            let objective = prepared.streamed_objective(table);
            let mut outcome = minimize(&objective, method, &prepared.start, stopping, observers);
            if let Some(why) = objective.failure() {
                outcome.status = Status::Failed;
                outcome.converged = false;
                outcome.message = format!("reading the data failed: {why}");
            }
            outcome
        }
    };
    outcome.optimizer = name.to_string();
    outcome
}

/// One optimizer's run with its history (θ kept for the models
/// [`History::for_params`] keeps it for).
pub struct Run {
    /// How it ended.
    pub outcome: Outcome,
    /// Every iterate (empty unless asked for).
    pub history: History,
}

/// Run several optimizers from the same start (`compare`, `report`), keeping
/// each one's history when asked. Every optimizer is built before any runs,
/// so a bad name fails fast; one Hessian pass at θ₀ serves every 1/L
/// default. `watch` gives each run an observer (a progress bar; `None` for
/// none).
pub fn run_all(
    prepared: &Prepared,
    names: &[String],
    settings: &mut Settings,
    stopping: &Stopping,
    keep_history: bool,
    watch: &mut dyn FnMut(&str) -> Option<Box<dyn Observer>>,
) -> Result<Vec<Run>, OptionError> {
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    start_curvature(settings, &name_refs, prepared);
    let mut methods = names
        .iter()
        .map(|n| optimizer_for(prepared, n, settings))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names
        .iter()
        .zip(methods.iter_mut())
        .map(|(n, m)| {
            let mut history = History::for_params(prepared.model.n_params());
            let mut watcher = watch(n);
            let mut observers: Vec<&mut dyn Observer> = Vec::new();
            if let Some(w) = watcher.as_mut() {
                observers.push(w.as_mut());
            }
            if keep_history {
                observers.push(&mut history);
            }
            let outcome = fit(prepared, n, m.as_mut(), stopping, &mut observers);
            drop(observers);
            drop(watcher);
            Run { outcome, history }
        })
        .collect())
}

/// The optimizers `compare` runs by default: every full-batch one
/// (Gauss–Newton only for a loss that is a square per row).
pub fn default_comparison(model: &Model) -> Vec<&'static str> {
    let square = loss_is_square(model);
    CATALOG
        .iter()
        .filter(|e| !e.stochastic && (e.optimizer != Optimizer::GaussNewton || square))
        .map(|e| e.name())
        .collect()
}

/// Parse `--time-limit`.
pub fn time_limit(seconds: Option<f64>) -> Result<Option<Duration>, OptionError> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                option_error(
                    "--time-limit",
                    format!("{s} is not a duration in seconds"),
                    "a number ≥ 0",
                )
            })
        })
        .transpose()
}

/// The optimizers asked for, or the default comparison when none are.
pub fn optimizer_names(prepared: &Prepared, asked: Vec<String>) -> Vec<String> {
    if asked.is_empty() {
        default_comparison(&prepared.model)
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        asked
    }
}
