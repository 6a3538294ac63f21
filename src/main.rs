//! The `hessforge` command line: list models, derive and render them, check
//! gradients, keep `generated/` fresh, and run and compare the optimizers.
//! This file parses the command line (clap) and hands each command to its
//! file in `commands/`; the work is done by the `hessforge-driver` library.
//! Errors are printed with miette (file, line, column, hint); exit code 1
//! means the work failed, 2 bad input, 3 a bug.

mod args;
mod commands;
mod output;
mod progress;

use args::{
    FigureArg, HyperArgs, OutputFormat, PageFormat, ProblemArgs, StopArgs, figure_kinds,
    figure_options,
};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: loading and deriving a model
/// with many scalars is mostly small allocations (*Measurements: kernels
/// and derivation*).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Derive loss, gradient and Hessian symbolically; print the derivation.
#[derive(Parser)]
#[command(name = "hessforge", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in derivations with their parameter counts.
    Models,
    /// Derive a model and print the derivation.
    Derive {
        /// A built-in model name (see `hessforge models`) or a path to a .toml file.
        model: String,
        /// Output format.
        #[arg(long, short, value_enum, default_value = "text")]
        format: OutputFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Every gradient and Hessian entry as a scalar, in every format (the
        /// default only where every parameter is a scalar).
        #[arg(long)]
        expand: bool,
    },
    /// Check the derived gradient and Hessian against finite differences
    /// (compiled kernel for a built-in model, compiled at run time for a file).
    Gradcheck {
        /// A built-in model name or a path to a .toml file.
        model: String,
        /// Number of random points.
        #[arg(long, default_value_t = 5)]
        points: usize,
        /// Seed of the random points and data.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Largest relative error that passes.
        #[arg(long, default_value_t = 1e-6)]
        tol: f64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Write rows drawn from a model's `[synthetic]` process: CSV to standard output, or to a
    /// .csv, .parquet or .arrow file (the rows of `--synthetic N --seed S`).
    Sample {
        /// A built-in model name or a path to a .toml file.
        model: String,
        /// Number of rows.
        #[arg(long)]
        rows: usize,
        /// Seed of the draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write to this file (format by extension) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// A Parquet file's row groups hold at most this many rows (default 1 048 576): the
        /// unit a Parquet reader decodes, and what DataFusion splits a scan into partitions by.
        #[arg(long, value_name = "ROWS")]
        row_group_rows: Option<usize>,
    },
    /// Run one optimizer on a model and its data.
    #[command(after_help = optimizers_help())]
    Run {
        /// A built-in model name or a path to a .toml file.
        model: String,
        /// The optimizer (see `hessforge optimizers`).
        #[arg(long, short = 'O')]
        optimizer: String,
        #[command(flatten)]
        problem: ProblemArgs,
        #[command(flatten)]
        hyper: HyperArgs,
        #[command(flatten)]
        stop: StopArgs,
        /// Write one row per iteration to FILE.csv or FILE.json.
        #[arg(long)]
        history: Option<PathBuf>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Run several optimizers from the same start on the same data; print a table.
    #[command(after_help = optimizers_help())]
    Compare {
        /// A built-in model name or a path to a .toml file.
        model: String,
        /// Comma-separated optimizers (default: every full-batch one).
        #[arg(long, value_delimiter = ',')]
        optimizers: Vec<String>,
        #[command(flatten)]
        problem: ProblemArgs,
        #[command(flatten)]
        hyper: HyperArgs,
        #[command(flatten)]
        stop: StopArgs,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Also write the figures (SVG) into this folder.
        #[arg(long, value_name = "DIR")]
        plots: Option<PathBuf>,
        /// Which figures (default: all that apply).
        #[arg(long, value_enum, value_delimiter = ',')]
        figures: Vec<FigureArg>,
        /// The contour figures' window (default: every path and every
        /// stationary point found around them).
        #[arg(long, value_name = "X0,X1,Y0,Y1", allow_hyphen_values = true)]
        window: Option<String>,
    },
    /// Compare optimizers and write a page: the derivation typeset, the
    /// table, the figures, the command that reproduces it.
    Report {
        /// A built-in model name or a path to a .toml file.
        model: String,
        /// The folder to write (created if missing).
        #[arg(long, short)]
        output: PathBuf,
        /// Comma-separated optimizers (default: every full-batch one).
        #[arg(long, value_delimiter = ',')]
        optimizers: Vec<String>,
        /// html (index.html, MathML) or markdown (index.md, $…$ math).
        #[arg(long, value_enum, default_value = "html")]
        format: PageFormat,
        /// Which figures (default: all that apply).
        #[arg(long, value_enum, value_delimiter = ',')]
        figures: Vec<FigureArg>,
        /// The contour figures' window (default: every path and every
        /// stationary point found around them).
        #[arg(long, value_name = "X0,X1,Y0,Y1", allow_hyphen_values = true)]
        window: Option<String>,
        #[command(flatten)]
        problem: ProblemArgs,
        #[command(flatten)]
        hyper: HyperArgs,
        #[command(flatten)]
        stop: StopArgs,
    },
    /// List every optimizer: update rule, hyper-parameters, conventions.
    Optimizers {
        /// Update rules in LaTeX.
        #[arg(long)]
        latex: bool,
    },
    /// Refresh generated/ (the committed derivations of every built-in model).
    Generate {
        /// Do not write; fail (exit 1) if a generated file is stale, showing a diff.
        #[arg(long)]
        check: bool,
        /// The source tree to write into (default: this one); the files go to
        /// its generated/ and docs/src/reference/.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// The optimizers by family, from the catalogue, under `run --help` and
/// `compare --help`.
fn optimizers_help() -> &'static str {
    static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use hessforge_optim::{Family, Optimizer};
        let mut text = String::from("Optimizers:\n");
        for family in Family::ALL {
            let names: Vec<&str> = Optimizer::all()
                .filter(|o| o.family() == family)
                .map(Optimizer::name)
                .collect();
            text.push_str(&format!("  {:<13} {}\n", family.label(), names.join(", ")));
        }
        text.push_str(
            "Their update rules, hyper-parameters, defaults and ranges: `hessforge optimizers`.",
        );
        text
    });
    &TEXT
}

fn main() -> ExitCode {
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .terminal_links(false)
                .context_lines(2)
                .build(),
        )
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Models => commands::models::run(),
        Command::Derive {
            model,
            format,
            output,
            expand,
        } => commands::derive::run(&model, format.into(), output.as_deref(), expand),
        Command::Generate { check, dir } => commands::generate::run(check, dir),
        Command::Gradcheck {
            model,
            points,
            seed,
            tol,
            json,
        } => commands::gradcheck::run(&model, points, seed, tol, json),
        Command::Sample {
            model,
            rows,
            seed,
            output,
            row_group_rows,
        } => commands::sample::run(&model, rows, seed, output.as_deref(), row_group_rows),
        Command::Run {
            model,
            optimizer,
            problem,
            hyper,
            stop,
            history,
            json,
        } => commands::run::run(
            &model,
            &optimizer,
            problem,
            &hyper,
            &stop,
            history.as_deref(),
            json,
        ),
        Command::Compare {
            model,
            optimizers,
            problem,
            hyper,
            stop,
            json,
            plots,
            figures,
            window,
        } => figure_options(window.as_deref()).and_then(|options| {
            commands::compare::run(
                &model,
                optimizers,
                problem,
                &hyper,
                &stop,
                json,
                plots.as_deref(),
                &figure_kinds(&figures),
                &options,
            )
        }),
        Command::Report {
            model,
            output,
            optimizers,
            format,
            figures,
            window,
            problem,
            hyper,
            stop,
        } => figure_options(window.as_deref()).and_then(|options| {
            commands::report::run(
                &commands::report::ReportArgs {
                    model: &model,
                    output: &output,
                    optimizers,
                    format,
                    figures: &figure_kinds(&figures),
                    options: &options,
                },
                problem,
                &hyper,
                &stop,
            )
        }),
        Command::Optimizers { latex } => {
            commands::optimizers::run(latex);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{:?}", f.report);
            ExitCode::from(f.code)
        }
    }
}
