//! What a run or a comparison looks like to a reader: the report of one
//! run (text, and the JSON of `run --json`), the comparison table (aligned
//! text and Markdown), the history as CSV or JSON, and the catalogue of
//! optimizers (`hessforge optimizers`).

use crate::problem::Prepared;
use crate::run::Spectrum;
use hessforge_optim::{CATALOG, History, Outcome, Stopping};
use serde::Serialize;

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
                "{} loss, {} loss+gradient, {} loss+gradient+Hessian, {} Hessian–vector passes{}",
                e.loss,
                e.gradient,
                e.hessian,
                e.hess_vec,
                if e.hess_diag > 0 {
                    format!(", {} Hessian-diagonal passes", e.hess_diag)
                } else {
                    String::new()
                }
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

/// The history as a JSON array of rows (`--history FILE.json`).
pub fn history_json(history: &History) -> String {
    serde_json::to_string_pretty(&history.rows).expect("JSON of plain data")
}

/// The history as CSV (`--history FILE.csv`): one row per iteration, and
/// the parameters' columns when θ was kept.
pub fn history_csv(prepared: &Prepared, history: &History) -> Result<String, csv::Error> {
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
    w.write_record(&header)?;
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
        w.write_record(&row)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8(bytes).expect("CSV of numbers is UTF-8"))
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
    let plane = in_the_plane(outcomes);
    let mut s = format!(
        "{:<width$}  {:<14}  {:>6}  {:>20}  {:>10}  {:>20}  {:>9}",
        "optimizer", "status", "iters", "evals (L/∇/H/Hv)", "ms", "final loss", "‖∇L‖∞"
    );
    if plane {
        s.push_str("  final θ");
    }
    s.push('\n');
    for o in order {
        let e = o.evaluations;
        s.push_str(&format!(
            "{:<width$}  {:<14}  {:>6}  {:>20}  {:>10.4}  {:>20.12e}  {:>9.2e}",
            o.optimizer,
            o.status.as_str(),
            o.iterations,
            format!("{}/{}/{}/{}", e.loss, e.gradient, e.hessian, e.hess_vec),
            o.seconds * 1e3,
            o.final_loss,
            o.grad_norm
        ));
        if plane {
            s.push_str(&format!("  {}", point(&o.theta)));
        }
        s.push('\n');
    }
    s
}

/// Whether every run has two parameters: then the tables say where each
/// ended, so a class sees which minimum each optimizer found.
fn in_the_plane(outcomes: &[Outcome]) -> bool {
    !outcomes.is_empty() && outcomes.iter().all(|o| o.theta.len() == 2)
}

/// `(x, y)` to six significant digits.
fn point(theta: &[f64]) -> String {
    let shown: Vec<String> = theta.iter().map(|t| format!("{t:.6}")).collect();
    format!("({})", shown.join(", "))
}

/// The comparison as a Markdown table (the report), in the order of [`table`].
pub fn markdown_table(outcomes: &[Outcome]) -> String {
    let plane = in_the_plane(outcomes);
    let mut s = String::from(
        "| optimizer | status | iterations | evaluations (L/∇/H/Hv) | time (ms) | final loss | ‖∇L‖∞ |",
    );
    s.push_str(if plane {
        " final θ |\n|---|---|---:|---:|---:|---:|---:|---|\n"
    } else {
        "\n|---|---|---:|---:|---:|---:|---:|\n"
    });
    for o in sorted(outcomes) {
        let e = o.evaluations;
        s.push_str(&format!(
            "| {} | {} | {} | {}/{}/{}/{} | {:.3} | {:.12e} | {:.2e} |",
            o.optimizer,
            o.status.as_str(),
            o.iterations,
            e.loss,
            e.gradient,
            e.hessian,
            e.hess_vec,
            o.seconds * 1e3,
            o.final_loss,
            o.grad_norm
        ));
        if plane {
            s.push_str(&format!(" {} |", point(&o.theta)));
        }
        s.push('\n');
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

/// `hessforge optimizers`: every optimizer's rule, hyper-parameters and convention.
pub fn catalogue(latex: bool) -> String {
    let mut s = String::new();
    for e in CATALOG {
        s.push_str(&format!(
            "{} — {} ({})\n",
            e.name(),
            e.summary,
            e.family.label()
        ));
        s.push_str(&format!(
            "  rule        {}\n",
            if latex { e.latex } else { e.rule }
        ));
        for h in e.hypers {
            s.push_str(&format!(
                "  {:<18} default {}; {}\n",
                h.flag,
                h.default,
                h.range.text()
            ));
        }
        s.push_str(&format!("  convention  {}\n", e.convention));
        s.push_str(&format!("  source      {}\n\n", e.source));
    }
    let stop = Stopping::default();
    s.push_str(&format!(
        "Stopping (all): --max-iters ({}; epochs for mini-batch runs), --tol on ‖∇L‖∞ ({:e}), --ftol on the relative loss change (off), --time-limit SECONDS (none), --target-loss L (none: stop as converged once the loss ≤ L).\n\
         A small gradient where the Hessian is not positive semi-definite ends as saddle_point or maximum, never converged.\n",
        stop.max_iters, stop.grad_tol
    ));
    s
}

/// The comparison section of the report page (Markdown): the data, the
/// back-end and the stopping rule, the table, and the Hessian's spectrum at
/// the optimum when a run converged.
pub fn comparison_markdown(
    prepared: &Prepared,
    outcomes: &[Outcome],
    stopping: &hessforge_optim::Stopping,
) -> String {
    let mut comparison = format!(
        "Data: {} · {} kernel · same start for every optimizer · stopping: ‖∇L‖∞ ≤ {:e} or {} iterations.\n\n",
        if prepared.data.rows == 0 {
            "none".to_string()
        } else {
            format!("{} ({} rows)", prepared.data.source, prepared.data.rows)
        },
        prepared.backend.kind(),
        stopping.grad_tol,
        stopping.max_iters
    );
    comparison.push_str(&markdown_table(outcomes));
    if let Some(spectrum) = crate::run::optimum_spectrum(prepared, outcomes) {
        let (lo, hi) = (spectrum.lambda_min, spectrum.lambda_max);
        comparison.push_str(&format!(
            "\nThe Hessian at the optimum: $\\lambda_{{\\min}} = {lo:.3e}$, $\\lambda_{{\\max}} = {hi:.3e}$"
        ));
        if spectrum.is_singular() {
            comparison.push_str(&format!(
                ": singular to working precision. {SINGULAR_MEANING}\n"
            ));
        } else {
            comparison.push_str(&format!(
                ", condition number $\\kappa = {:.3e}$.\n",
                spectrum.condition_number()
            ));
        }
    }
    comparison
}

/// What a singular Hessian at the optimum means for the comparison.
const SINGULAR_MEANING: &str = "The minimisers form a flat valley, not a point: the loss does not change along the null direction, so the condition number λ_max/λ_min describes rounding, not the problem, and gradient descent's rate is set by the smallest nonzero eigenvalue.";

/// The lines `compare` prints under its table about the Hessian at the
/// optimum: the condition number and what it means for gradient descent,
/// or, when λ_min is zero to working precision, that the Hessian is
/// singular there.
pub fn spectrum_text(spectrum: &Spectrum) -> String {
    let (lo, hi) = (spectrum.lambda_min, spectrum.lambda_max);
    if spectrum.is_singular() {
        format!(
            "Hessian at the optimum: λ_min = {lo:.3e}, λ_max = {hi:.3e}: singular to working precision (|λ_min| ≤ {:e}·λ_max)\n({SINGULAR_MEANING})\n",
            Spectrum::SINGULAR
        )
    } else {
        format!(
            "Hessian at the optimum: λ_min = {lo:.3e}, λ_max = {hi:.3e}, condition number κ = {:.3e}\n(gradient descent's error shrinks by about (κ−1)/(κ+1) per step; Newton's does not depend on κ)\n",
            spectrum.condition_number()
        )
    }
}
