//! `hessforge report` (and the figures of `compare --plots`): run the
//! comparison, draw the figures, and write them with the page (HTML with
//! MathML, or Markdown) into one folder; each file is written atomically.

use crate::args::{HyperArgs, PageFormat, ProblemArgs, StopArgs};
use crate::output::{Failure, create_dir, write_atomically};
use crate::progress::Progress;
use hessforge_derivation::render::{Format, render};
use hessforge_driver::figures::{self, FigureKind, FigureOptions, SvgFigure};
use hessforge_driver::summary::comparison_markdown;
use hessforge_driver::{Prepared, Run, optimizer_names, prepare, run_all};
use hessforge_optim::{Settings, Stopping};
use hessforge_report::Report;
use std::path::Path;

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
    /// Figures.
    pub figures: &'a [FigureKind],
    /// How they are drawn.
    pub options: &'a FigureOptions,
}

/// Draw the figures; print a note on stderr for each that does not apply
/// (and return the notes, for the page).
pub fn draw_figures(
    prepared: &Prepared,
    runs: &[Run],
    settings: &Settings,
    stopping: &Stopping,
    kinds: &[FigureKind],
    options: &FigureOptions,
) -> (Vec<SvgFigure>, Vec<String>) {
    let (drawn, notes) = figures::draw(prepared, runs, settings, stopping, kinds, options);
    for n in &notes {
        eprintln!("note: no figure {n}");
    }
    (drawn, notes)
}

/// Each figure's SVG into `dir`, under its file name.
pub fn write_figures(dir: &Path, drawn: &[SvgFigure]) -> Result<(), Failure> {
    for d in drawn {
        write_atomically(&dir.join(&d.figure.file), &d.svg).map_err(Failure::bad_input)?;
    }
    Ok(())
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

/// Write the page and its figures into `args.output`.
pub fn run(
    args: &ReportArgs<'_>,
    problem: ProblemArgs,
    hyper: &HyperArgs,
    stop: &StopArgs,
) -> Result<(), Failure> {
    let problem = problem.problem();
    let mut settings = hyper.settings(problem.seed)?;
    let stopping = stop.stopping()?;
    let prepared = prepare(args.model, &problem).map_err(Failure::prepare)?;
    let names = optimizer_names(&prepared, args.optimizers.clone());
    // Fail on an unwritable folder before the work, not after.
    create_dir(args.output).map_err(Failure::bad_input)?;
    let derivation = hessforge_symbolic::derive(&prepared.model).map_err(Failure::engine)?;
    let runs = run_all(
        &prepared,
        &names,
        &mut settings,
        &stopping,
        true,
        &mut |name| Some(Box::new(Progress::new(name, stopping.max_iters))),
    )
    .map_err(Failure::bad_input)?;
    let (drawn, notes) = draw_figures(
        &prepared,
        &runs,
        &settings,
        &stopping,
        args.figures,
        args.options,
    );
    let outcomes: Vec<_> = runs.iter().map(|r| r.outcome.clone()).collect();
    let comparison = comparison_markdown(&prepared, &outcomes, &stopping);
    write_figures(args.output, &drawn)?;
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
