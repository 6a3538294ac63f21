//! `hessforge-cluster`: hessforge's fits at scale. `fit` fits a model to a
//! Parquet or Arrow IPC file with every pass run as an Apache DataFusion
//! query on N partitions of the file (`hessforge_datafusion`), and prints
//! what `hessforge run` prints (the same JSON with `--json`).
//!
//! Exit codes as `hessforge`'s: 0 converged, 1 not converged (or the data
//! failed during the fit), 2 bad input (a file, a column, a flag).

use clap::{Parser, Subcommand};
use hessforge_datafusion::DataFusionObjective;
use hessforge_driver::summary::{RunReport, describe};
use hessforge_driver::{Problem, optimizer_for, prepare, start_curvature};
use hessforge_optim::{Settings, Status, Stopping, minimize};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "hessforge-cluster", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit a model to a Parquet or Arrow IPC file, every pass a DataFusion
    /// query over N partitions of the file.
    Fit(FitArgs),
}

// The field comments are clap's help text, where `[init]` is literal.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(clap::Args)]
struct FitArgs {
    /// A built-in model name or a path to a .toml derivation file.
    model: String,
    /// The data: a .parquet or .arrow file (columns named by the model's data names).
    #[arg(long)]
    data: PathBuf,
    /// The optimizer (a full-batch one: see `hessforge optimizers`).
    #[arg(long, short = 'O')]
    optimizer: String,
    /// Partitions of the file, each read and aggregated on its own thread (default: the cores).
    #[arg(long)]
    partitions: Option<usize>,
    /// Read the model's data ID from the file's column COLUMN (repeatable).
    #[arg(long = "column", value_name = "ID=COLUMN")]
    columns: Vec<String>,
    /// Standardise data fields to mean 0, sd 1 (default: all but the last field).
    #[arg(long, num_args = 0..=1, value_delimiter = ',', default_missing_value = "")]
    standardize: Option<Vec<String>>,
    /// Start: zeros, random:SEED, or comma-separated values (default: the file's [init]).
    #[arg(long, allow_hyphen_values = true)]
    init: Option<String>,
    /// Override a constant of the derivation file, e.g. --set lambda=0.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Seed of random starts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Largest number of iterations.
    #[arg(long, default_value_t = Stopping::default().max_iters)]
    max_iters: u64,
    /// Stop when ‖∇L‖∞ is at most this.
    #[arg(long, default_value_t = Stopping::default().grad_tol)]
    grad_tol: f64,
    /// Print one JSON document (that of `hessforge run --json`).
    #[arg(long)]
    json: bool,
}

/// A failure with its exit code.
struct Failure {
    report: miette::Report,
    code: u8,
}

impl Failure {
    fn bad_input(e: impl Into<miette::Report>) -> Failure {
        Failure {
            report: e.into(),
            code: 2,
        }
    }
}

fn fit(args: FitArgs) -> Result<bool, Failure> {
    let problem = Problem {
        data: Some(args.data.clone()),
        columns: args.columns,
        standardize: args
            .standardize
            .map(|v| v.into_iter().filter(|f| !f.is_empty()).collect()),
        init: args.init,
        set: args.set,
        seed: args.seed,
        ..Problem::default()
    };
    if !args.grad_tol.is_finite() || args.grad_tol < 0.0 {
        return Err(Failure::bad_input(miette::miette!(
            help = "a number ≥ 0, e.g. --grad-tol 1e-8",
            "--grad-tol: {} is not a tolerance",
            args.grad_tol
        )));
    }
    let mut prepared = prepare(&args.model, &problem).map_err(Failure::bad_input)?;
    let partitions = args.partitions.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    if partitions == 0 {
        return Err(Failure::bad_input(miette::miette!(
            help = "one or more, e.g. --partitions 4",
            "--partitions: 0 partitions"
        )));
    }
    let objective = DataFusionObjective::new(&prepared, partitions).map_err(|e| {
        Failure::bad_input(miette::miette!(
            help = "give a .parquet or .arrow file as --data",
            "{e}"
        ))
    })?;
    let mut settings = Settings {
        seed: args.seed,
        ..Settings::default()
    };
    start_curvature(&mut settings, &[&args.optimizer], &prepared);
    let mut method =
        optimizer_for(&prepared, &args.optimizer, &settings).map_err(Failure::bad_input)?;
    let stopping = Stopping {
        max_iters: args.max_iters,
        grad_tol: args.grad_tol,
        ..Stopping::default()
    };
    let mut outcome = minimize(
        &objective,
        method.as_mut(),
        &prepared.start,
        &stopping,
        &mut [],
    );
    outcome.optimizer = args.optimizer.clone();
    if let Some(why) = objective.failure() {
        outcome.status = Status::Failed;
        outcome.converged = false;
        outcome.message = format!("reading the data failed: {why}");
    }
    prepared.data.source = format!(
        "{} (DataFusion, {partitions} partitions)",
        args.data.display()
    );
    if args.json {
        let report = RunReport::new(&prepared, &outcome);
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("JSON of plain data")
        );
    } else {
        print!("{}", describe(&prepared, &outcome));
    }
    Ok(outcome.status.is_success())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Fit(args) => fit(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(failure) => {
            eprintln!("{:?}", failure.report);
            ExitCode::from(failure.code)
        }
    }
}
