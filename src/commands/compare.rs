//! `hessforge compare`: several optimizers from the same start on the same
//! data; the table (or JSON), the Hessian at the optimum, and the figures
//! with `--plots`.

use crate::args::{HyperArgs, ProblemArgs, StopArgs};
use crate::commands::report::{draw_figures, write_figures};
use crate::output::{Failure, create_dir};
use crate::progress::Progress;
use hessforge_driver::figures::{FigureKind, FigureOptions};
use hessforge_driver::summary::{RunReport, spectrum_text, table};
use hessforge_driver::{optimizer_names, optimum_spectrum, prepare, run_all};
use std::path::Path;

/// Compare the optimizers on `name`; exit 1 when none converged.
#[allow(clippy::too_many_arguments)]
pub fn run(
    name: &str,
    optimizers: Vec<String>,
    problem: ProblemArgs,
    hyper: &HyperArgs,
    stop: &StopArgs,
    json: bool,
    plots: Option<&Path>,
    figures: &[FigureKind],
    options: &FigureOptions,
) -> Result<(), Failure> {
    let problem = problem.problem();
    let mut settings = hyper.settings(problem.seed)?;
    let stopping = stop.stopping()?;
    let prepared = prepare(name, &problem).map_err(Failure::prepare)?;
    let names = optimizer_names(&prepared, optimizers);
    let runs = run_all(
        &prepared,
        &names,
        &mut settings,
        &stopping,
        plots.is_some(),
        &mut |name| Some(Box::new(Progress::new(name, stopping.max_iters))),
    )
    .map_err(Failure::bad_input)?;
    if let Some(dir) = plots {
        create_dir(dir).map_err(Failure::bad_input)?;
        let (drawn, _) = draw_figures(&prepared, &runs, &settings, &stopping, figures, options);
        write_figures(dir, &drawn)?;
        let written = drawn.len();
        eprintln!("wrote {written} figures to {}", dir.display());
    }
    let outcomes: Vec<_> = runs.into_iter().map(|r| r.outcome).collect();
    let spectrum = optimum_spectrum(&prepared, &outcomes);
    if json {
        let runs: Vec<_> = outcomes
            .iter()
            .map(|o| RunReport::new(&prepared, o))
            .collect();
        let doc = serde_json::json!({
            "model": prepared.model.name,
            "data": prepared.data.source,
            "rows": prepared.data.rows,
            "start": prepared.start,
            "hessian_at_optimum": spectrum.map(|s| serde_json::json!({
                "lambda_min": s.lambda_min,
                "lambda_max": s.lambda_max,
                "condition_number": s.condition_number(),
                "singular": s.is_singular(),
            })),
            "runs": runs,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON of plain data")
        );
    } else {
        let data = if prepared.data.rows == 0 {
            "no data".to_string()
        } else {
            format!(
                "data: {} ({} rows)",
                prepared.data.source, prepared.data.rows
            )
        };
        println!(
            "{} · {} kernel · {data} · same start for all: {}",
            prepared.model.name,
            prepared.backend.kind(),
            if prepared.start.iter().all(|v| *v == 0.0) {
                "zeros".to_string()
            } else {
                format!("{:?}", prepared.start)
            }
        );
        println!(
            "stopping: ‖∇L‖∞ ≤ {:e} or {} iterations
",
            stopping.grad_tol, stopping.max_iters
        );
        print!("{}", table(&outcomes));
        if let Some(spectrum) = &spectrum {
            print!("\n{}", spectrum_text(spectrum));
        }
    }
    if outcomes.iter().any(|o| o.converged) {
        Ok(())
    } else {
        Err(Failure::failed(miette::miette!(
            help = "raise --max-iters or tune the hyper-parameters",
            "no optimizer converged"
        )))
    }
}
