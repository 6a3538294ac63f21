//! `hessforge-cluster`: hessforge's fits at scale. `fit` fits a model to a
//! Parquet or Arrow IPC file with every pass run as an Apache DataFusion
//! query on N partitions of the file (`hessforge_datafusion`) — on this
//! machine, or as a job of a Ballista cluster (`--scheduler`) — and prints
//! what `hessforge run` prints (the same JSON with `--json`). `scheduler`
//! and `executor` run that cluster's processes (`hessforge_cluster`).
//!
//! Exit codes as `hessforge`'s: 0 converged, 1 not converged (or the data
//! failed during the fit), 2 bad input (a file, a column, a flag).

use clap::{Parser, Subcommand};
use hessforge_cluster::{
    DEFAULT_EXECUTOR, DEFAULT_SCHEDULER, ExecutorOptions, SchedulerOptions, host_port,
};
use hessforge_datafusion::DataFusionObjective;
use hessforge_driver::summary::{RunReport, describe};
use hessforge_driver::{Problem, optimizer_for, prepare, start_curvature};
use hessforge_optim::{Settings, Status, Stopping, minimize};
use std::net::SocketAddr;
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
    /// query over N partitions of the file (here, or on a Ballista cluster).
    Fit(FitArgs),
    /// Run a Ballista scheduler that plans hessforge's passes (no
    /// authentication: keep it on a private network).
    Scheduler(SchedulerArgs),
    /// Run a Ballista executor that evaluates hessforge's passes, any model
    /// (no authentication: keep it on a private network).
    Executor(ExecutorArgs),
}

#[derive(clap::Args)]
struct SchedulerArgs {
    /// The address to listen on (0.0.0.0:PORT for every interface).
    #[arg(long, default_value = DEFAULT_SCHEDULER)]
    bind: SocketAddr,
    /// The host name executors reach the scheduler by (default: the bind address).
    #[arg(long)]
    external_host: Option<String>,
    /// Seconds without a heartbeat after which an executor is lost and its tasks run elsewhere.
    #[arg(long, default_value_t = 30)]
    executor_timeout: u64,
}

#[derive(clap::Args)]
struct ExecutorArgs {
    /// The scheduler's HOST:PORT.
    #[arg(long, default_value = DEFAULT_SCHEDULER)]
    scheduler: String,
    /// The address of the executor's data service (0.0.0.0:PORT for every interface).
    #[arg(long, default_value = DEFAULT_EXECUTOR)]
    bind: SocketAddr,
    /// The port of its task service (default: the bind port + 1).
    #[arg(long)]
    grpc_port: Option<u16>,
    /// The host name the scheduler and other executors reach it by (default: the bind address).
    #[arg(long)]
    external_host: Option<String>,
    /// Where it writes shuffle files (default: a temporary directory removed at exit).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Tasks it runs at a time (default: the cores).
    #[arg(long)]
    concurrent_tasks: Option<usize>,
    /// Seconds between its heartbeats to the scheduler.
    #[arg(long, default_value_t = 5)]
    heartbeat: u64,
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
    /// Partitions of the file, each read and aggregated on its own thread or task (default: the cores).
    #[arg(long)]
    partitions: Option<usize>,
    /// Run every pass as a job of the Ballista cluster whose scheduler is at HOST:PORT
    /// (the --data path must name the same file on every executor).
    #[arg(long, value_name = "HOST:PORT")]
    scheduler: Option<String>,
    /// Seconds a pass may take before the fit stops as failed (a cluster that lost its executors).
    #[arg(long, default_value_t = 3600.0)]
    pass_timeout: f64,
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
    /// Stop when ‖∇L‖∞ ≤ TOL (the name and default of `hessforge run`'s).
    #[arg(long, default_value_t = Stopping::default().grad_tol)]
    tol: f64,
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
    if !args.tol.is_finite() || args.tol < 0.0 {
        return Err(Failure::bad_input(miette::miette!(
            help = "a number ≥ 0, e.g. --tol 1e-8",
            "--tol: {} is not a tolerance",
            args.tol
        )));
    }
    let partitions = args.partitions.unwrap_or_else(cores);
    if partitions == 0 {
        return Err(Failure::bad_input(miette::miette!(
            help = "one or more, e.g. --partitions 4",
            "--partitions: 0 partitions"
        )));
    }
    if !(args.pass_timeout.is_finite() && args.pass_timeout > 0.0) {
        return Err(Failure::bad_input(miette::miette!(
            help = "seconds > 0, e.g. --pass-timeout 600",
            "--pass-timeout: {} is not a duration",
            args.pass_timeout
        )));
    }
    if let Some(scheduler) = &args.scheduler {
        scheduler_address(scheduler)?;
    }
    // The flags first: opening the file reads it once to check it.
    let mut prepared = prepare(&args.model, &problem).map_err(Failure::bad_input)?;
    let objective = match &args.scheduler {
        None => DataFusionObjective::new(&prepared, partitions),
        Some(scheduler) => hessforge_cluster::remote(&prepared, scheduler, partitions),
    }
    .map_err(|e| {
        Failure::bad_input(miette::miette!(
            help = "give a .parquet or .arrow file as --data, and the address of a running \
                    `hessforge-cluster scheduler` as --scheduler",
            "{e}"
        ))
    })?
    .with_pass_timeout(std::time::Duration::from_secs_f64(args.pass_timeout));
    let mut settings = Settings {
        seed: args.seed,
        ..Settings::default()
    };
    start_curvature(&mut settings, &[&args.optimizer], &prepared);
    let mut method =
        optimizer_for(&prepared, &args.optimizer, &settings).map_err(Failure::bad_input)?;
    let stopping = Stopping {
        max_iters: args.max_iters,
        grad_tol: args.tol,
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
        outcome.message = format!("a pass failed: {why}");
    }
    prepared.data.source = match &args.scheduler {
        None => format!(
            "{} (DataFusion, {partitions} partitions)",
            args.data.display()
        ),
        Some(at) => format!(
            "{} (Ballista at {at}, {partitions} partitions)",
            args.data.display()
        ),
    };
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

/// The machine's cores: the default of `--partitions` and
/// `--concurrent-tasks`.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// `--scheduler`'s HOST:PORT, or the bad-input failure naming it.
fn scheduler_address(address: &str) -> Result<(String, u16), Failure> {
    host_port(address).map_err(|e| {
        Failure::bad_input(miette::miette!(
            help = "e.g. --scheduler {DEFAULT_SCHEDULER}",
            "--scheduler: {e}"
        ))
    })
}

/// Run `serve` on a runtime of its own until it ends (a failure to start)
/// or the process is stopped.
fn serve(
    what: &str,
    serve: impl std::future::Future<Output = ballista_core::error::Result<()>>,
) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::bad_input(miette::miette!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve).map_err(|e| Failure {
        report: miette::miette!("the {what} stopped: {e}"),
        code: 1,
    })
}

/// Ballista's log on stderr: warnings and errors, or what `RUST_LOG` asks
/// for (`RUST_LOG=info` shows every job and task).
fn log_to_stderr() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
}

fn scheduler(args: SchedulerArgs) -> Result<(), Failure> {
    log_to_stderr();
    eprintln!(
        "hessforge-cluster scheduler: listening on {} (Ballista {}; no authentication: keep it on a private network)",
        args.bind,
        ballista_core::BALLISTA_VERSION
    );
    serve(
        "scheduler",
        hessforge_cluster::run_scheduler(SchedulerOptions {
            bind: args.bind,
            external_host: args.external_host,
            executor_timeout_seconds: args.executor_timeout.max(1),
        }),
    )
}

fn executor(args: ExecutorArgs) -> Result<(), Failure> {
    log_to_stderr();
    let scheduler = scheduler_address(&args.scheduler)?;
    let grpc_port = match args.grpc_port {
        Some(port) => port,
        None => args.bind.port().checked_add(1).ok_or_else(|| {
            Failure::bad_input(miette::miette!(
                help = "give --grpc-port",
                "--bind: port {} has no next port for the task service",
                args.bind.port()
            ))
        })?,
    };
    // Kept until the executor ends, then removed.
    let temporary = match &args.work_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| {
            Failure::bad_input(miette::miette!(
                help = "give --work-dir",
                "cannot make a work directory: {e}"
            ))
        })?),
    };
    let work_dir = args
        .work_dir
        .clone()
        .or_else(|| temporary.as_ref().map(|t| t.path().to_path_buf()))
        .expect("a work directory given or made");
    let concurrent_tasks = args.concurrent_tasks.unwrap_or_else(cores);
    eprintln!(
        "hessforge-cluster executor: data on {}, tasks on port {grpc_port}, scheduler {}:{} \
         (no authentication: keep it on a private network)",
        args.bind, scheduler.0, scheduler.1
    );
    serve(
        "executor",
        hessforge_cluster::run_executor(ExecutorOptions {
            scheduler,
            bind: args.bind,
            grpc_port,
            external_host: args.external_host,
            work_dir,
            concurrent_tasks: concurrent_tasks.max(1),
            heartbeat_seconds: args.heartbeat.max(1),
        }),
    )
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
        Command::Scheduler(args) => scheduler(args).map(|()| true),
        Command::Executor(args) => executor(args).map(|()| true),
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
