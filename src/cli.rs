//! Command-line parsing (clap) and the commands: `models`, `derive`,
//! `generate`, `gradcheck`, `run`, `compare`, `report`, `optimizers`. Each command returns a [`Failure`] with the exit code it
//! deserves; `main` prints it with miette.

use crate::models;
use clap::{Parser, Subcommand, ValueEnum};
use hessforge_symbolic::EngineError;
use hessforge_symbolic::render::{Format, render};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// (compiled kernel for a built-in model, IR interpreter for a file).
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
    /// Run one optimizer on a model and its data.
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
        figures: Vec<crate::figures::FigureKind>,
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
        format: crate::report::PageFormat,
        /// Which figures (default: all that apply).
        #[arg(long, value_enum, value_delimiter = ',')]
        figures: Vec<crate::figures::FigureKind>,
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
        /// Do not write; fail (exit 1) if generated/ is stale, showing a diff.
        #[arg(long)]
        check: bool,
        /// The folder to write (default: generated/ of this source tree).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Data, start and constants (shared by `run`, `compare` and `report`).
#[derive(clap::Args)]
pub struct ProblemArgs {
    /// Fit to this CSV file (header names the model's data columns).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Fit to N rows drawn from the derivation's [synthetic] process.
    #[arg(long)]
    synthetic: Option<usize>,
    /// Seed of synthetic data, mini-batch shuffles and random starts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Standardise data fields to mean 0, sd 1 (default: all but the last field, the response).
    #[arg(long, num_args = 0..=1, value_delimiter = ',', default_missing_value = "")]
    standardize: Option<Vec<String>>,
    /// Start: zeros, random:SEED, or comma-separated values (default: the file's [init]).
    #[arg(long)]
    init: Option<String>,
    /// Override a constant of the derivation file, e.g. --set lambda=0.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

impl ProblemArgs {
    pub fn problem(self) -> crate::fit::Problem {
        crate::fit::Problem {
            data: self.data,
            synthetic: self.synthetic,
            seed: self.seed,
            standardize: self
                .standardize
                .map(|v| v.into_iter().filter(|f| !f.is_empty()).collect()),
            init: self.init,
            set: self.set,
        }
    }
}

/// Hyper-parameters (defaults: `hessforge optimizers`).
#[derive(clap::Args)]
pub struct HyperArgs {
    /// Learning rate α.
    #[arg(long)]
    lr: Option<f64>,
    /// Momentum ρ (or β with --momentum-form average).
    #[arg(long)]
    momentum: Option<f64>,
    /// classic (v ← ρv + g) or average (v ← βv + (1−β)g).
    #[arg(long, value_enum, default_value = "classic")]
    momentum_form: MomentumFormArg,
    /// Adam β₁.
    #[arg(long)]
    beta1: Option<f64>,
    /// Adam β₂.
    #[arg(long)]
    beta2: Option<f64>,
    /// ε of AdaGrad/RMSProp/Adam.
    #[arg(long)]
    eps: Option<f64>,
    /// RMSProp decay γ.
    #[arg(long)]
    decay: Option<f64>,
    /// Adam (L2) / AdamW (decoupled) weight decay λ.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Rows per mini-batch (first-order optimizers).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning-rate schedule, e.g. cosine, step:100,200:0.5, exp:0.99+warmup:10.
    #[arg(long, default_value = "constant")]
    schedule: String,
    /// L-BFGS memory m.
    #[arg(long)]
    memory: Option<usize>,
    /// Levenberg–Marquardt initial λ.
    #[arg(long)]
    damping: Option<f64>,
    /// Trust-region initial radius Δ.
    #[arg(long)]
    radius: Option<f64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum MomentumFormArg {
    Classic,
    Average,
}

impl HyperArgs {
    pub fn settings(&self, seed: u64) -> Result<hessforge_optim::Settings, Failure> {
        let schedule =
            self.schedule
                .parse()
                .map_err(|e: hessforge_optim::schedule::ScheduleError| {
                    Failure::bad_input(miette::miette!(
                        help = format!("expected {}", hessforge_optim::schedule::SCHEDULE_SYNTAX),
                        "--schedule: {e}"
                    ))
                })?;
        Ok(hessforge_optim::Settings {
            lr: self.lr,
            curvature: None,
            momentum: self.momentum,
            momentum_average: matches!(self.momentum_form, MomentumFormArg::Average),
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            decay: self.decay,
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
            seed,
            schedule,
            memory: self.memory,
            damping: self.damping,
            radius: self.radius,
        })
    }
}

/// Stopping rules.
#[derive(clap::Args)]
pub struct StopArgs {
    /// Iterations (epochs for mini-batch runs).
    #[arg(long, default_value_t = 10_000)]
    max_iters: u64,
    /// Stop when ‖∇L‖∞ ≤ TOL.
    #[arg(long, default_value_t = 1e-8)]
    tol: f64,
    /// Stop when the relative loss change ≤ FTOL (0: off).
    #[arg(long, default_value_t = 0.0)]
    ftol: f64,
    /// Stop after this many seconds.
    #[arg(long)]
    time_limit: Option<f64>,
    /// Stop (converged) once L ≤ this value, e.g. to time GD to a loss
    /// Newton reached.
    #[arg(long, allow_negative_numbers = true)]
    target_loss: Option<f64>,
}

impl StopArgs {
    pub fn stopping(&self) -> Result<hessforge_optim::Stopping, Failure> {
        if self.target_loss.is_some_and(|t| !t.is_finite()) {
            return Err(Failure::bad_input(miette::miette!(
                help = "a finite number",
                "--target-loss {:?}: not a loss value",
                self.target_loss.unwrap_or_default()
            )));
        }
        if [self.tol, self.ftol].iter().any(|t| t.is_nan() || *t < 0.0) {
            return Err(Failure::bad_input(miette::miette!(
                help = "tolerances are numbers ≥ 0",
                "--tol {} / --ftol {}: out of range",
                self.tol,
                self.ftol
            )));
        }
        Ok(hessforge_optim::Stopping {
            max_iters: self.max_iters,
            grad_tol: self.tol,
            loss_change_tol: self.ftol,
            time_limit: crate::fit::time_limit(self.time_limit).map_err(Failure::bad_input)?,
            target_loss: self.target_loss,
            ..hessforge_optim::Stopping::default()
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Latex,
    Beamer,
    Markdown,
    Text,
    Json,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Latex => Format::Latex,
            OutputFormat::Beamer => Format::Beamer,
            OutputFormat::Markdown => Format::Markdown,
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
        }
    }
}

/// A failed command: the report and the exit code.
pub struct Failure {
    report: miette::Report,
    code: u8,
}

/// Exit code of an internal error (a bug in hessforge), kept apart from
/// 1 (the work failed) and 2 (bad input).
pub const INTERNAL_ERROR: u8 = 3;

impl Failure {
    /// Bad input: exit 2 — unless the report is the symbolic engine's
    /// internal error, which is a bug (exit 3).
    pub fn bad_input(e: impl Into<miette::Report>) -> Failure {
        let report: miette::Report = e.into();
        let code = match report.downcast_ref::<EngineError>() {
            Some(engine) if engine.is_internal() => INTERNAL_ERROR,
            Some(engine) if !engine.is_bad_input() => 1,
            _ => 2,
        };
        Failure { report, code }
    }
    /// The symbolic engine failed: bad input (exit 2) when the model's
    /// mathematics is undefined, 1 when Symbolica was busy in another
    /// process past the time limit, an internal error (exit 3) for a panic.
    pub fn engine(e: EngineError) -> Failure {
        Failure::bad_input(e)
    }
    /// The work failed: exit 1.
    pub fn failed(e: impl Into<miette::Report>) -> Failure {
        Failure {
            report: e.into(),
            code: 1,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Models => models_command(),
        Command::Derive {
            model,
            format,
            output,
            expand,
        } => derive_command(&model, format.into(), output.as_deref(), expand),
        Command::Generate { check, dir } => generate_command(check, dir),
        Command::Gradcheck {
            model,
            points,
            seed,
            tol,
            json,
        } => gradcheck_command(&model, points, seed, tol, json),
        Command::Run {
            model,
            optimizer,
            problem,
            hyper,
            stop,
            history,
            json,
        } => run_command(
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
        } => compare_command(
            &model,
            optimizers,
            problem,
            &hyper,
            &stop,
            json,
            plots.as_deref(),
            &figures,
        ),
        Command::Report {
            model,
            output,
            optimizers,
            format,
            figures,
            problem,
            hyper,
            stop,
        } => crate::report::report_command(
            &crate::report::ReportArgs {
                model: &model,
                output: &output,
                optimizers,
                format,
                figures: &figures,
            },
            problem,
            &hyper,
            &stop,
        ),
        Command::Optimizers { latex } => {
            print!("{}", crate::fit::catalogue(latex));
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

fn models_command() -> Result<(), Failure> {
    let models = models::builtins().map_err(Failure::failed)?;
    let width = models.iter().map(|m| m.name.len()).max().unwrap_or(4);
    let mut out = String::new();
    out.push_str(&format!(
        "{:<width$}  {:>3}  {:>4}  description\n",
        "name", "P", "data"
    ));
    for m in &models {
        out.push_str(&format!(
            "{:<width$}  {:>3}  {:>4}  {}\n",
            m.name,
            m.n_params(),
            m.data.len(),
            m.description
        ));
    }
    print!("{out}");
    Ok(())
}

fn derive_command(
    model: &str,
    format: Format,
    output: Option<&Path>,
    expand: bool,
) -> Result<(), Failure> {
    let model = models::load(model).map_err(Failure::bad_input)?;
    let text = if expand {
        let derivation = hessforge_symbolic::derive(&model).map_err(Failure::engine)?;
        hessforge_symbolic::render::render_expanded(&derivation, format)
    } else {
        let derivation = hessforge_symbolic::derive_unexpanded(&model).map_err(Failure::engine)?;
        render(&derivation, format)
    };
    match output {
        Some(path) => write_atomically(path, &text).map_err(Failure::bad_input),
        None => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            Ok(())
        }
    }
}

fn gradcheck_command(
    name: &str,
    points: usize,
    seed: u64,
    tol: f64,
    json: bool,
) -> Result<(), Failure> {
    let model = models::load(name).map_err(Failure::bad_input)?;
    let backend = crate::backend::Backend::resolve(name, &model).map_err(Failure::engine)?;
    let report = crate::gradcheck::run(&model, &backend, points.max(1), seed, tol)
        .map_err(Failure::bad_input)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("JSON of plain data")
        );
    } else {
        println!("{report}");
    }
    if report.passed {
        Ok(())
    } else {
        Err(Failure::failed(miette::miette!(
            help = "a derivative rule or a simplification is wrong; compare `hessforge derive` with a hand derivation",
            "the gradient check of `{}` failed: relative error over {tol:e}",
            model.name
        )))
    }
}

fn run_command(
    name: &str,
    optimizer: &str,
    problem: ProblemArgs,
    hyper: &HyperArgs,
    stop: &StopArgs,
    history_path: Option<&Path>,
    json: bool,
) -> Result<(), Failure> {
    let problem = problem.problem();
    let mut settings = hyper.settings(problem.seed)?;
    let stopping = stop.stopping()?;
    let prepared = crate::fit::prepare(name, &problem).map_err(Failure::bad_input)?;
    crate::fit::start_curvature(&mut settings, &[optimizer], &prepared);
    let mut method = crate::fit::optimizer(optimizer, &settings).map_err(Failure::bad_input)?;
    let mut history = hessforge_optim::History {
        keep_theta: prepared.model.n_params() <= 20,
        ..Default::default()
    };
    let outcome = crate::fit::fit(
        &prepared,
        optimizer,
        method.as_mut(),
        &stopping,
        history_path.is_some().then_some(&mut history),
    );
    if let Some(path) = history_path {
        crate::fit::write_history(path, &prepared, &history).map_err(Failure::bad_input)?;
    }
    if json {
        let report = crate::fit::RunReport::new(&prepared, &outcome);
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("JSON of plain data")
        );
    } else {
        print!("{}", crate::fit::describe(&prepared, &outcome));
    }
    if outcome.status.is_success() {
        Ok(())
    } else {
        Err(Failure::failed(miette::miette!(
            help = "see `hessforge optimizers` for the hyper-parameters, or raise --max-iters",
            "{} did not converge: {} ({})",
            optimizer,
            outcome.status.as_str(),
            outcome.message
        )))
    }
}

#[allow(clippy::too_many_arguments)]
fn compare_command(
    name: &str,
    optimizers: Vec<String>,
    problem: ProblemArgs,
    hyper: &HyperArgs,
    stop: &StopArgs,
    json: bool,
    plots: Option<&Path>,
    figures: &[crate::figures::FigureKind],
) -> Result<(), Failure> {
    let problem = problem.problem();
    let mut settings = hyper.settings(problem.seed)?;
    let stopping = stop.stopping()?;
    let prepared = crate::fit::prepare(name, &problem).map_err(Failure::bad_input)?;
    let names = optimizer_names(&prepared, optimizers);
    let runs = crate::fit::run_all(&prepared, &names, &mut settings, &stopping, plots.is_some())
        .map_err(Failure::bad_input)?;
    if let Some(dir) = plots {
        let written =
            crate::report::write_figures(dir, &prepared, &runs, &settings, &stopping, figures)?;
        eprintln!("wrote {written} figures to {}", dir.display());
    }
    let outcomes: Vec<_> = runs.into_iter().map(|r| r.outcome).collect();
    let spectrum = crate::fit::optimum_spectrum(&prepared, &outcomes);
    if json {
        let runs: Vec<_> = outcomes
            .iter()
            .map(|o| crate::fit::RunReport::new(&prepared, o))
            .collect();
        let doc = serde_json::json!({
            "model": prepared.model.name,
            "data": prepared.data.source,
            "rows": prepared.data.rows,
            "start": prepared.start,
            "hessian_at_optimum": spectrum.map(|(lo, hi)| serde_json::json!({
                "lambda_min": lo, "lambda_max": hi, "condition_number": hi / lo
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
        print!("{}", crate::fit::table(&outcomes));
        if let Some((lo, hi)) = spectrum {
            println!(
                "
Hessian at the optimum: λ_min = {lo:.3e}, λ_max = {hi:.3e}, condition number κ = {:.3e}",
                hi / lo
            );
            println!(
                "(gradient descent's error shrinks by about (κ−1)/(κ+1) per step; Newton's does not depend on κ)"
            );
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

/// The optimizers asked for, or the default comparison.
pub fn optimizer_names(prepared: &crate::fit::Prepared, asked: Vec<String>) -> Vec<String> {
    if asked.is_empty() {
        crate::fit::default_comparison(&prepared.model)
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        asked
    }
}

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot write `{path}`: {source}")]
#[diagnostic(help("check that the folder exists and is writable"))]
pub struct WriteError {
    path: String,
    source: std::io::Error,
}

/// Create a folder (and its parents) for output.
pub fn create_dir(dir: &Path) -> Result<(), WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError {
        path: dir.display().to_string(),
        source,
    })
}

/// Write through a temporary file in the same folder and rename it into
/// place, so a failure never leaves a half-written file behind.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), WriteError> {
    let err = |source| WriteError {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(text.as_bytes()).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// The files of generated/ and their expected content.
fn generated_files() -> Result<Vec<(String, String)>, Failure> {
    let models = models::builtins().map_err(Failure::failed)?;
    let mut files = Vec::new();
    for m in &models {
        let d = hessforge_symbolic::derive(m).map_err(Failure::engine)?;
        files.push((format!("{}.tex", m.name), render(&d, Format::Latex)));
        files.push((format!("{}.slides.tex", m.name), render(&d, Format::Beamer)));
        files.push((format!("{}.md", m.name), render(&d, Format::Markdown)));
        // The kernel the build script compiles (from the derivation at hand
        // when it is the straight-line one, so each model is derived once).
        let kernel = match hessforge_build::loop_kernel_source(m).map_err(Failure::failed)? {
            Some(loops) => loops,
            None => hessforge_build::kernel_source_of(&d).map_err(Failure::failed)?,
        };
        files.push((hessforge_build::kernel_file_name(m), kernel));
    }
    files.extend(crate::report::generated_figures()?);
    Ok(files)
}

/// Stale generated files.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("generated/ is stale: {}", files.join(", "))]
#[diagnostic(help("run `cargo run --release -- generate` and commit the result"))]
struct Stale {
    files: Vec<String>,
}

fn generate_command(check: bool, dir: Option<PathBuf>) -> Result<(), Failure> {
    let dir = dir.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("generated"));
    let files = generated_files()?;
    if check {
        let mut stale = Vec::new();
        for (name, expected) in &files {
            let path = dir.join(name);
            let actual = std::fs::read_to_string(&path).unwrap_or_default();
            if &actual != expected {
                let diff = similar::TextDiff::from_lines(&actual, expected);
                eprintln!(
                    "{}",
                    diff.unified_diff().context_radius(2).header(
                        &format!("{} (committed)", path.display()),
                        &format!("{name} (current)")
                    )
                );
                stale.push(name.clone());
            }
        }
        if stale.is_empty() {
            println!("generated/ is fresh ({} files)", files.len());
            return Ok(());
        }
        return Err(Failure::failed(Stale { files: stale }));
    }
    create_dir(&dir.join("figures")).map_err(Failure::bad_input)?;
    for (name, text) in &files {
        write_atomically(&dir.join(name), text).map_err(Failure::bad_input)?;
    }
    println!("wrote {} files to {}", files.len(), dir.display());
    Ok(())
}
