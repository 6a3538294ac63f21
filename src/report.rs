//! `hessforge report` and `compare --plots`: run the comparison, draw the
//! figures, and write them with the page (HTML with MathML, or Markdown)
//! into one folder; each file is written atomically.

use crate::cli::{Failure, HyperArgs, ProblemArgs, StopArgs, create_dir, write_atomically};
use crate::figures::{self, FigureKind};
use crate::fit::{Prepared, Run};
use hessforge_optim::{Settings, Stopping};
use hessforge_report::Report;
use hessforge_symbolic::render::{Format, render};
use std::path::Path;

/// The page's flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PageFormat {
    /// `index.html`: formulas as MathML, no script, opens offline.
    Html,
    /// `index.md`: `$…$` math and relative image links.
    Markdown,
}

/// What `report` was asked for, beyond the shared flags.
pub struct ReportArgs<'a> {
    /// Model name or file.
    pub model: &'a str,
    /// The output folder.
    pub output: &'a Path,
    /// Optimizers (empty: the default comparison).
    pub optimizers: Vec<String>,
    /// HTML or Markdown.
    pub format: PageFormat,
    /// Figures (empty: all).
    pub figures: &'a [FigureKind],
}

/// Draw the figures into `dir`; print a note for each that does not apply.
/// Returns how many were written.
pub fn write_figures(
    dir: &Path,
    prepared: &Prepared,
    runs: &[Run],
    settings: &Settings,
    stopping: &Stopping,
    kinds: &[FigureKind],
) -> Result<usize, Failure> {
    create_dir(dir).map_err(Failure::bad_input)?;
    let (drawn, _) = draw(prepared, runs, settings, stopping, kinds);
    write_drawn(dir, &drawn)?;
    Ok(drawn.len())
}

/// Each figure's SVG into `dir`, under its file name.
fn write_drawn(dir: &Path, drawn: &[figures::Drawn]) -> Result<(), Failure> {
    for d in drawn {
        write_atomically(&dir.join(&d.figure.file), &d.svg).map_err(Failure::bad_input)?;
    }
    Ok(())
}

fn draw(
    prepared: &Prepared,
    runs: &[Run],
    settings: &Settings,
    stopping: &Stopping,
    kinds: &[FigureKind],
) -> (Vec<figures::Drawn>, Vec<String>) {
    let kinds = if kinds.is_empty() {
        &FigureKind::ALL[..]
    } else {
        kinds
    };
    let (drawn, notes) = figures::draw(prepared, runs, settings, stopping, kinds);
    for n in &notes {
        eprintln!("note: no figure {n}");
    }
    (drawn, notes)
}

/// The figures committed under `generated/figures/` (refreshed by
/// `generate`, checked by `generate --check`): the contour plot with paths
/// of every built-in 2-parameter model (and the SGD paths of those with
/// data), and the convergence figure of logistic regression on its
/// embedded data — all from the default comparison, default flags.
pub fn generated_figures() -> Result<Vec<(String, String)>, Failure> {
    let models = crate::models::builtins().map_err(Failure::failed)?;
    let mut files = Vec::new();
    for model in &models {
        let kinds: Vec<FigureKind> = match (model.n_params(), model.data.is_empty()) {
            (2, true) => vec![FigureKind::Contour],
            (2, false) => vec![FigureKind::Contour, FigureKind::SgdPaths],
            _ if model.name == "logistic_regression" => vec![FigureKind::GradNorm],
            _ => continue,
        };
        let prepared = crate::fit::prepare(&model.name, &crate::fit::Problem::default())
            .map_err(Failure::failed)?;
        let names = crate::cli::optimizer_names(&prepared, vec![]);
        let mut settings = Settings::default();
        let stopping = Stopping::default();
        let runs = crate::fit::run_all(&prepared, &names, &mut settings, &stopping, true)
            .map_err(Failure::failed)?;
        let (drawn, notes) = figures::draw(&prepared, &runs, &settings, &stopping, &kinds);
        if let Some(n) = notes.first() {
            return Err(Failure::failed(miette::miette!("{}: {n}", model.name)));
        }
        files.extend(
            drawn
                .into_iter()
                .map(|d| (format!("figures/{}_{}", model.name, d.figure.file), d.svg)),
        );
    }
    Ok(files)
}

/// The command line as typed, quoted where a shell would need it.
fn command_line() -> String {
    let quote = |a: String| {
        if a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+".contains(c))
        {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    std::iter::once("hessforge".to_string())
        .chain(std::env::args().skip(1).map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `hessforge report`.
pub fn report_command(
    args: &ReportArgs<'_>,
    problem: ProblemArgs,
    hyper: &HyperArgs,
    stop: &StopArgs,
) -> Result<(), Failure> {
    let problem = problem.problem();
    let mut settings = hyper.settings(problem.seed)?;
    let stopping = stop.stopping()?;
    let prepared = crate::fit::prepare(args.model, &problem).map_err(Failure::bad_input)?;
    let names = crate::cli::optimizer_names(&prepared, args.optimizers.clone());
    // Fail on an unwritable folder before the work, not after.
    create_dir(args.output).map_err(Failure::bad_input)?;
    let derivation = hessforge_symbolic::derive(&prepared.model).map_err(Failure::engine)?;
    let runs = crate::fit::run_all(&prepared, &names, &mut settings, &stopping, true)
        .map_err(Failure::bad_input)?;
    let (drawn, notes) = draw(&prepared, &runs, &settings, &stopping, args.figures);
    let outcomes: Vec<_> = runs.iter().map(|r| r.outcome.clone()).collect();
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
    comparison.push_str(&crate::fit::markdown_table(&outcomes));
    if let Some((lo, hi)) = crate::fit::optimum_spectrum(&prepared, &outcomes) {
        comparison.push_str(&format!(
            "\nThe Hessian at the optimum: $\\lambda_{{\\min}} = {lo:.3e}$, $\\lambda_{{\\max}} = {hi:.3e}$, condition number $\\kappa = {:.3e}$.\n",
            hi / lo
        ));
    }
    write_drawn(args.output, &drawn)?;
    let report = Report {
        derivation: render(&derivation, Format::Markdown),
        comparison,
        figures: drawn.into_iter().map(|d| d.figure).collect(),
        notes,
        command: command_line(),
    };
    let (file, text) = match args.format {
        PageFormat::Markdown => ("index.md", report.markdown()),
        PageFormat::Html => {
            let html = report.html();
            for (tex, message) in &html.math_errors {
                eprintln!("warning: a formula could not be typeset ({message}): {tex}");
            }
            ("index.html", html.text)
        }
    };
    let page = args.output.join(file);
    write_atomically(&page, &text).map_err(Failure::bad_input)?;
    println!("wrote {}", page.display());
    Ok(())
}
