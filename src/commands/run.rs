//! `hessforge run`: one optimizer on a model and its data; the report as
//! text or JSON, and the history as CSV or JSON.

use crate::args::{HyperArgs, ProblemArgs, StopArgs};
use crate::output::{Failure, write_atomically};
use crate::progress::Progress;
use hessforge_driver::run::human_bytes;
use hessforge_driver::summary::{RunReport, describe, history_csv, history_json};
use hessforge_driver::{
    DENSE_HESSIAN_MAX_BYTES, dense_hessian_bytes, fit, optimizer_for, prepare, start_curvature,
};
use hessforge_optim::{History, Observer};
use std::path::Path;

/// Run `optimizer` on `name`; exit 1 unless it converged.
pub fn run(
    name: &str,
    optimizer_name: &str,
    problem: ProblemArgs,
    hyper: &HyperArgs,
    stop: &StopArgs,
    history_path: Option<&Path>,
    json: bool,
) -> Result<(), Failure> {
    let problem = problem.problem();
    let mut settings = hyper.settings(problem.seed)?;
    let stopping = stop.stopping()?;
    let prepared = prepare(name, &problem).map_err(Failure::prepare)?;
    start_curvature(&mut settings, &[optimizer_name], &prepared);
    let mut method =
        optimizer_for(&prepared, optimizer_name, &settings).map_err(Failure::bad_input)?;
    let p = prepared.model.n_params();
    let bytes = dense_hessian_bytes(p);
    let matrix = match method.dense_matrix(p, prepared.data.rows) {
        Some(what) => Some(what),
        None => method.uses_hessian().then_some("Hessian"),
    };
    if let Some(what) = matrix
        && bytes > DENSE_HESSIAN_MAX_BYTES
    {
        eprintln!(
            "warning: {optimizer_name} keeps a dense {what} of {} (--hessian dense)",
            human_bytes(bytes)
        );
    }
    let mut history = History::for_params(prepared.model.n_params());
    let mut progress = Progress::new(optimizer_name, stopping.max_iters);
    let mut observers: Vec<&mut dyn Observer> = vec![&mut progress];
    if history_path.is_some() {
        observers.push(&mut history);
    }
    let outcome = fit(
        &prepared,
        optimizer_name,
        method.as_mut(),
        &stopping,
        &mut observers,
    );
    drop(observers);
    drop(progress);
    if let Some(path) = history_path {
        let text = if path.extension().is_some_and(|e| e == "json") {
            history_json(&history)
        } else {
            history_csv(&prepared, &history).map_err(|e| {
                Failure::bad_input(miette::miette!("cannot format the history: {e}"))
            })?
        };
        write_atomically(path, &text).map_err(Failure::bad_input)?;
    }
    if json {
        let report = RunReport::new(&prepared, &outcome);
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("JSON of plain data")
        );
    } else {
        print!("{}", describe(&prepared, &outcome));
    }
    if outcome.status.is_success() {
        Ok(())
    } else {
        Err(Failure::failed(miette::miette!(
            help = "see `hessforge optimizers` for the hyper-parameters, or raise --max-iters",
            "{} did not converge: {} ({})",
            optimizer_name,
            outcome.status.as_str(),
            outcome.message
        )))
    }
}
