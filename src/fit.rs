//! `hessforge run`, `compare` and `optimizers`: resolve the model, its
//! back-end and data, the start and the constants; build optimizers from
//! the catalogue; run them with the driver; print a report, a table or
//! JSON; write the history.

use crate::backend::{Backend, ModelObjective};
use crate::data::{self, Dataset};
use crate::models;
use hessforge_optim::{
    CATALOG, History, Objective, Observer, Outcome, Record, Settings, Stopping, build, catalog,
    minimize,
};
use hessforge_spec::Model;
use indicatif::{ProgressBar, ProgressStyle};
use nalgebra::{DMatrix, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a fit could not start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FitError {
    /// A flag with a bad value.
    #[error("{flag}: {message}")]
    #[diagnostic(help("{hint}"))]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What was wrong.
        message: String,
        /// What is expected.
        hint: String,
    },
}

fn flag_error(flag: &'static str, message: impl Into<String>, hint: impl Into<String>) -> FitError {
    FitError::Flag {
        flag,
        message: message.into(),
        hint: hint.into(),
    }
}

/// Where the data come from and how to start: the flags `run` and `compare` share.
#[derive(Debug, Clone, Default)]
pub struct Problem {
    /// `--data FILE.csv`.
    pub data: Option<PathBuf>,
    /// `--synthetic N`.
    pub synthetic: Option<usize>,
    /// `--seed S` (synthetic data, shuffles, random init).
    pub seed: u64,
    /// `--standardize [FIELDS]` (Some(empty) = the default fields).
    pub standardize: Option<Vec<String>>,
    /// `--init zeros|random:SEED|v1,v2,...`.
    pub init: Option<String>,
    /// `--set NAME=VALUE`.
    pub set: Vec<String>,
}

/// A model ready to fit: back-end, constants, data, start.
pub struct Prepared {
    /// The model.
    pub model: Model,
    /// Its back-end.
    pub backend: Backend,
    /// Constant values after `--set`.
    pub constants: Vec<f64>,
    /// The data.
    pub data: Dataset,
    /// θ₀.
    pub start: Vec<f64>,
}

impl Prepared {
    /// The objective over all rows.
    pub fn objective(&self) -> ModelObjective<'_> {
        ModelObjective {
            backend: &self.backend,
            constants: self.constants.clone(),
            data: &self.data.values,
            rows: self.data.rows,
            n_params: self.model.n_params(),
            square_loss: crate::backend::loss_is_square(&self.model),
        }
    }
}

/// Resolve everything a fit needs; every error is bad input (exit 2).
pub fn prepare(name: &str, problem: &Problem) -> Result<Prepared, miette::Report> {
    let model = models::load(name)?;
    let constants = constants(&model, &problem.set)?;
    let mut data = match (&problem.data, problem.synthetic) {
        (Some(_), Some(_)) => {
            return Err(flag_error(
                "--data",
                "--data and --synthetic exclude each other",
                "give one of them",
            )
            .into());
        }
        (Some(path), None) => data::load_csv(path, &model)?,
        (None, Some(n)) => {
            if model.data.is_empty() {
                return Err(flag_error(
                    "--synthetic",
                    format!("model `{}` has no data", model.name),
                    "drop --synthetic",
                )
                .into());
            }
            data::synthetic(&model, n, problem.seed)?
        }
        (None, None) => data::default_for(&model, models::is_builtin(name))?,
    };
    if let Some(fields) = &problem.standardize {
        let fields = if fields.is_empty() {
            data::default_standardized(&model)
        } else {
            fields.clone()
        };
        data.standardize(&model, &fields)?;
    }
    let start = initial(&model, problem.init.as_deref())?;
    let backend = Backend::resolve(name, &model)?;
    Ok(Prepared {
        model,
        backend,
        constants,
        data,
        start,
    })
}

fn constants(model: &Model, set: &[String]) -> Result<Vec<f64>, FitError> {
    let mut values: Vec<f64> = model.constants.iter().map(|(_, v)| *v).collect();
    for item in set {
        let Some((name, value)) = item.split_once('=') else {
            return Err(flag_error(
                "--set",
                format!("`{item}` is not NAME=VALUE"),
                "e.g. --set lambda=0",
            ));
        };
        let names: Vec<&str> = model.constants.iter().map(|(s, _)| s.id.as_str()).collect();
        let Some(k) = names.iter().position(|n| *n == name.trim()) else {
            let hint = if names.is_empty() {
                format!("model `{}` has no constants", model.name)
            } else {
                format!(
                    "the constants of `{}` are: {}",
                    model.name,
                    names.join(", ")
                )
            };
            return Err(flag_error(
                "--set",
                format!("no constant named `{}`", name.trim()),
                hint,
            ));
        };
        values[k] = value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                flag_error(
                    "--set",
                    format!("`{value}` is not a finite number"),
                    "e.g. --set lambda=0.1",
                )
            })?;
    }
    Ok(values)
}

fn initial(model: &Model, init: Option<&str>) -> Result<Vec<f64>, FitError> {
    let p = model.n_params();
    let hint = format!("zeros, random:SEED, or {p} comma-separated numbers");
    match init {
        None => Ok(model.init.clone()),
        Some("zeros") => Ok(vec![0.0; p]),
        Some(s) if s.starts_with("random:") => {
            let seed: u64 = s["random:".len()..].parse().map_err(|_| {
                flag_error("--init", format!("`{s}` has no integer seed"), hint.clone())
            })?;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            Ok((0..p).map(|_| rng.gen_range(-0.5..0.5)).collect())
        }
        Some(list) => {
            let values: Vec<f64> = list
                .split(',')
                .map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    flag_error(
                        "--init",
                        format!("`{list}` is not a list of numbers"),
                        hint.clone(),
                    )
                })?;
            if values.len() != p {
                return Err(flag_error(
                    "--init",
                    format!(
                        "{} values given, the model has {p} parameters",
                        values.len()
                    ),
                    hint,
                ));
            }
            Ok(values)
        }
    }
}

/// Extreme Hessian eigenvalues at θ: (λ_min, λ_max).
pub fn hessian_spectrum(objective: &dyn Objective, theta: &[f64]) -> (f64, f64) {
    let p = theta.len();
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    objective.loss_grad_hess(theta, hessforge_optim::Batch::Full, &mut g, &mut h);
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

/// (λ_min, λ_max) of the Hessian at the best converged run's θ, if any run converged.
pub fn optimum_spectrum(prepared: &Prepared, outcomes: &[Outcome]) -> Option<(f64, f64)> {
    best_converged(outcomes).map(|o| hessian_spectrum(&prepared.objective(), &o.theta))
}

/// Set L = λ_max(H(θ₀)) in `settings` — once, from one Hessian pass — when
/// any of these optimizers takes its default step 1/L.
pub fn start_curvature(settings: &mut Settings, names: &[&str], prepared: &Prepared) {
    if names.iter().any(|n| catalog::wants_curvature(n, settings)) {
        settings.curvature = Some(hessian_spectrum(&prepared.objective(), &prepared.start).1);
    }
}

/// Make an optimizer (after [`start_curvature`], for the 1/L defaults).
pub fn optimizer(
    name: &str,
    settings: &Settings,
) -> Result<Box<dyn hessforge_optim::Method>, FitError> {
    build(name, settings).map_err(|e| {
        let hint = match e {
            hessforge_optim::BuildError::Unknown(_) => {
                "`hessforge optimizers` lists them with their update rules".to_string()
            }
            _ => "see `hessforge optimizers` for each hyper-parameter's range".to_string(),
        };
        flag_error("--optimizer", e.to_string(), hint)
    })
}

/// A progress bar on stderr, shown only once a run has lasted a second
/// (and hidden by indicatif when stderr is not a terminal).
struct Progress {
    bar: Option<ProgressBar>,
    max_iters: u64,
    label: String,
}

impl Observer for Progress {
    fn observe(&mut self, r: &Record<'_>) {
        if self.bar.is_none() && r.seconds > 1.0 {
            let bar = ProgressBar::new(self.max_iters);
            bar.set_style(
                ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} iterations {msg}")
                    .expect("a valid template"),
            );
            bar.set_prefix(self.label.clone());
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(r.iteration);
            bar.set_message(format!("loss {:.6e}  ‖g‖∞ {:.2e}", r.loss, r.grad_norm));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Run one optimizer on a prepared problem.
pub fn fit(
    prepared: &Prepared,
    name: &str,
    method: &mut dyn hessforge_optim::Method,
    stopping: &Stopping,
    history: Option<&mut History>,
) -> Outcome {
    let objective = prepared.objective();
    let mut progress = Progress {
        bar: None,
        max_iters: stopping.max_iters,
        label: name.to_string(),
    };
    let mut observers: Vec<&mut dyn Observer> = vec![&mut progress];
    if let Some(h) = history {
        observers.push(h);
    }
    let mut outcome = minimize(
        &objective,
        method,
        &prepared.start,
        stopping,
        &mut observers,
    );
    outcome.optimizer = name.to_string();
    outcome
}

/// One optimizer's run with its history (θ kept for P ≤ 20).
pub struct Run {
    /// How it ended.
    pub outcome: Outcome,
    /// Every iterate (empty unless asked for).
    pub history: History,
}

/// Run several optimizers from the same start (`compare`, `report`). Every
/// optimizer is built before any runs, so a bad name fails fast; one Hessian
/// pass at θ₀ serves every 1/L default.
pub fn run_all(
    prepared: &Prepared,
    names: &[String],
    settings: &mut Settings,
    stopping: &Stopping,
    keep_history: bool,
) -> Result<Vec<Run>, FitError> {
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    start_curvature(settings, &name_refs, prepared);
    let mut methods = names
        .iter()
        .map(|n| optimizer(n, settings))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names
        .iter()
        .zip(methods.iter_mut())
        .map(|(n, m)| {
            let mut history = History {
                keep_theta: prepared.model.n_params() <= 20,
                ..Default::default()
            };
            let outcome = fit(
                prepared,
                n,
                m.as_mut(),
                stopping,
                keep_history.then_some(&mut history),
            );
            Run { outcome, history }
        })
        .collect())
}

/// The JSON document of `run --json` (DESIGN.md's contract and more).
#[derive(Serialize)]
pub struct RunReport<'a> {
    model: &'a str,
    backend: &'static str,
    data: &'a str,
    rows: usize,
    #[serde(flatten)]
    outcome: &'a Outcome,
    params: serde_json::Map<String, serde_json::Value>,
}

impl<'a> RunReport<'a> {
    /// The report of `outcome` on `prepared`.
    pub fn new(prepared: &'a Prepared, outcome: &'a Outcome) -> Self {
        let params = prepared
            .model
            .params
            .iter()
            .zip(&outcome.theta)
            .map(|(s, v)| (s.id.clone(), serde_json::json!(v)))
            .collect();
        RunReport {
            model: &prepared.model.name,
            backend: prepared.backend.kind(),
            data: &prepared.data.source,
            rows: prepared.data.rows,
            outcome,
            params,
        }
    }
}

/// The human-readable report of one run.
pub fn describe(prepared: &Prepared, o: &Outcome) -> String {
    let mut s = format!(
        "{} · {} · {} kernel · data: {} ({} rows)\n",
        prepared.model.name,
        o.optimizer,
        prepared.backend.kind(),
        prepared.data.source,
        prepared.data.rows
    );
    let e = o.evaluations;
    let rows = [
        ("status", format!("{} — {}", o.status.as_str(), o.message)),
        ("iterations", o.iterations.to_string()),
        (
            "evaluations",
            format!(
                "{} loss, {} loss+gradient, {} loss+gradient+Hessian passes",
                e.loss, e.gradient, e.hessian
            ),
        ),
        ("final loss", format!("{:.12e}", o.final_loss)),
        ("‖∇L‖∞", format!("{:.3e}", o.grad_norm)),
        ("seconds", format!("{:.6}", o.seconds)),
    ];
    for (k, v) in rows {
        s.push_str(&format!("  {k:<12} {v}\n"));
    }
    if let Some(l) = o.lambda_min {
        s.push_str(&format!("  {:<12} {l:.3e}\n", "λ_min(H)"));
    }
    if o.modified_steps > 0 || o.non_descent_steps > 0 {
        s.push_str(&format!(
            "  {:<12} {} steps modified the Newton system, {} were not descent directions\n",
            "curvature", o.modified_steps, o.non_descent_steps
        ));
    }
    s.push_str("  parameters\n");
    for (p, v) in prepared.model.params.iter().zip(&o.theta) {
        s.push_str(&format!("    {:<10} {v:>+.10e}\n", p.id));
    }
    s
}

/// Write the history as CSV or JSON (by extension), atomically.
pub fn write_history(
    path: &Path,
    prepared: &Prepared,
    history: &History,
) -> Result<(), miette::Report> {
    let text = if path.extension().is_some_and(|e| e == "json") {
        serde_json::to_string_pretty(&history.rows).expect("JSON of plain data")
    } else {
        let mut w = csv::Writer::from_writer(vec![]);
        let mut header: Vec<String> = [
            "iteration",
            "loss",
            "grad_norm",
            "step_size",
            "alpha",
            "seconds",
            "lambda_min",
            "modification",
        ]
        .map(String::from)
        .to_vec();
        if history.keep_theta {
            header.extend(prepared.model.params.iter().map(|p| p.id.clone()));
        }
        let csv_error = |e: csv::Error| miette::miette!("cannot format the history: {e}");
        w.write_record(&header).map_err(csv_error)?;
        for r in &history.rows {
            let mut row = vec![
                r.iteration.to_string(),
                r.loss.to_string(),
                r.grad_norm.to_string(),
                r.step_norm.to_string(),
                r.alpha.to_string(),
                r.seconds.to_string(),
                r.curvature
                    .map_or(String::new(), |c| c.lambda_min.to_string()),
                r.curvature.map_or(String::new(), |c| {
                    serde_json::to_value(c.modification)
                        .ok()
                        .and_then(|v| v["kind"].as_str().map(String::from))
                        .unwrap_or_default()
                }),
            ];
            row.extend(r.theta.iter().map(|v| v.to_string()));
            w.write_record(&row).map_err(csv_error)?;
        }
        String::from_utf8(w.into_inner().map_err(|e| miette::miette!("{e}"))?)
            .expect("CSV of numbers is UTF-8")
    };
    crate::cli::write_atomically(path, &text).map_err(miette::Report::new)
}

/// The aligned table of `compare`, sorted: converged runs by time, then
/// the rest by final loss.
pub fn table(outcomes: &[Outcome]) -> String {
    let order = sorted(outcomes);
    let width = order
        .iter()
        .map(|o| o.optimizer.len())
        .max()
        .unwrap_or(9)
        .max(9);
    let mut s = format!(
        "{:<width$}  {:<14}  {:>6}  {:>17}  {:>10}  {:>20}  {:>9}\n",
        "optimizer", "status", "iters", "evals (L/∇/H)", "ms", "final loss", "‖∇L‖∞"
    );
    for o in order {
        let e = o.evaluations;
        s.push_str(&format!(
            "{:<width$}  {:<14}  {:>6}  {:>17}  {:>10.4}  {:>20.12e}  {:>9.2e}\n",
            o.optimizer,
            o.status.as_str(),
            o.iterations,
            format!("{}/{}/{}", e.loss, e.gradient, e.hessian),
            o.seconds * 1e3,
            o.final_loss,
            o.grad_norm
        ));
    }
    s
}

/// The comparison as a Markdown table (the report), in the order of [`table`].
pub fn markdown_table(outcomes: &[Outcome]) -> String {
    let mut s = String::from(
        "| optimizer | status | iterations | evaluations (L/∇/H) | time (ms) | final loss | ‖∇L‖∞ |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for o in sorted(outcomes) {
        let e = o.evaluations;
        s.push_str(&format!(
            "| {} | {} | {} | {}/{}/{} | {:.3} | {:.12e} | {:.2e} |\n",
            o.optimizer,
            o.status.as_str(),
            o.iterations,
            e.loss,
            e.gradient,
            e.hessian,
            o.seconds * 1e3,
            o.final_loss,
            o.grad_norm
        ));
    }
    s
}

fn sorted(outcomes: &[Outcome]) -> Vec<&Outcome> {
    let mut order: Vec<&Outcome> = outcomes.iter().collect();
    order.sort_by(|a, b| match (a.converged, b.converged) {
        (true, true) => a.seconds.total_cmp(&b.seconds),
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.final_loss.total_cmp(&b.final_loss),
    });
    order
}

/// The optimizers `compare` runs by default: every full-batch one
/// (Gauss–Newton only for a loss that is a square per row).
pub fn default_comparison(model: &Model) -> Vec<&'static str> {
    let square = crate::backend::loss_is_square(model);
    CATALOG
        .iter()
        .filter(|e| !e.stochastic && (e.name != "gauss-newton" || square))
        .map(|e| e.name)
        .collect()
}

/// `hessforge optimizers`: every optimizer's rule, hyper-parameters and convention.
pub fn catalogue(latex: bool) -> String {
    let mut s = String::new();
    for e in CATALOG {
        s.push_str(&format!("{} — {}\n", e.name, e.summary));
        s.push_str(&format!(
            "  rule        {}\n",
            if latex { e.latex } else { e.rule }
        ));
        for h in e.hypers {
            s.push_str(&format!(
                "  {:<18} default {}; {}\n",
                h.flag, h.default, h.range
            ));
        }
        s.push_str(&format!("  convention  {}\n", e.convention));
        s.push_str(&format!("  source      {}\n\n", e.source));
    }
    s.push_str(
        "Stopping (all): --max-iters (10000; epochs for mini-batch runs), --tol on ‖∇L‖∞ (1e-8), --ftol on the relative loss change (off), --time-limit SECONDS (none), --target-loss L (none: stop as converged once the loss ≤ L).\n\
         A small gradient where the Hessian is not positive semi-definite ends as saddle_point or maximum, never converged.\n",
    );
    s
}

/// Parse `--time-limit`.
pub fn time_limit(seconds: Option<f64>) -> Result<Option<Duration>, FitError> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                flag_error(
                    "--time-limit",
                    format!("{s} is not a duration in seconds"),
                    "a number ≥ 0",
                )
            })
        })
        .transpose()
}
