//! The flags several commands share (data, start and constants;
//! hyper-parameters; stopping rules; output formats; figures) and their
//! translation into the library's types, checked on the way.

use crate::output::Failure;
use clap::ValueEnum;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use hessforge_derivation::render::Format;
use hessforge_driver::figures::{FigureKind, FigureOptions};
use hessforge_driver::{BackendChoice, Problem};
use hessforge_optim::{Choice, HessianPath, MomentumForm, Preconditioner, Stopping, Subproblem};
use std::path::PathBuf;

/// Data, start and constants (shared by `run`, `compare` and `report`).
// The field comments are clap's help text, where `[synthetic]` is literal.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(clap::Args)]
pub struct ProblemArgs {
    /// Fit to this data file: CSV (header names the model's data columns), or Parquet
    /// (.parquet) / Arrow IPC (.arrow), streamed a record batch at a time on every pass.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Read the model's data ID from the file's column COLUMN (repeatable), e.g. --column x_1=age.
    #[arg(long = "column", value_name = "ID=COLUMN")]
    columns: Vec<String>,
    /// Read a Parquet or Arrow file into memory instead of streaming it (for mini-batch optimizers).
    #[arg(long)]
    in_memory: bool,
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
    #[arg(long, allow_hyphen_values = true)]
    init: Option<String>,
    /// Override a constant of the derivation file, e.g. --set lambda=0.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// auto: the built-in's compiled kernel, else a model file's loop IR compiled at run time;
    /// interpreter: the interpreter of the lowered derivation (the oracle, for debugging).
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
}

/// `--backend`.
#[derive(Clone, Copy, ValueEnum)]
pub enum BackendArg {
    Auto,
    Interpreter,
}

impl From<BackendArg> for BackendChoice {
    fn from(b: BackendArg) -> BackendChoice {
        match b {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Interpreter => BackendChoice::Interpreter,
        }
    }
}

impl ProblemArgs {
    pub fn problem(self) -> Problem {
        Problem {
            data: self.data,
            columns: self.columns,
            in_memory: self.in_memory,
            synthetic: self.synthetic,
            seed: self.seed,
            standardize: self
                .standardize
                .map(|v| v.into_iter().filter(|f| !f.is_empty()).collect()),
            init: self.init,
            set: self.set,
            backend: self.backend.into(),
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
    #[arg(long, value_parser = choice::<MomentumForm>(), default_value = MomentumForm::default_name())]
    momentum_form: MomentumForm,
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
    /// Where newton-tr gets ∇²L·v: auto (the dense Hessian up to 200
    /// parameters, or 400 when 8·rows·P bytes exceed 32 MiB;
    /// Hessian–vector products above), dense, or free. `dense` also lets a
    /// method form a Hessian over 512 MiB.
    #[arg(long, value_parser = choice::<HessianPath>(), default_value = HessianPath::default_name())]
    hessian: HessianPath,
    /// How newton-tr solves its subproblem: auto (exactly, as
    /// newton-exact-tr, up to 200 parameters; Steihaug's CG above), exact,
    /// or steihaug.
    #[arg(long, value_parser = choice::<Subproblem>(), default_value = Subproblem::default_name())]
    subproblem: Subproblem,
    /// newton-cg's preconditioner: none, or diagonal (Jacobi: CG on
    /// diag(∇²L)⁻¹∇²L, one diagonal pass per Newton step).
    #[arg(long, value_parser = choice::<Preconditioner>(), default_value = Preconditioner::default_name())]
    precondition: Preconditioner,
}

/// The parser of a flag whose value is one of `T`'s names (the library's,
/// which Python's keywords share).
fn choice<T: Choice + Send + Sync>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::names()).map(|name| match T::named(&name) {
        Some(choice) => choice,
        None => unreachable!("clap passes only T's names"),
    })
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
            momentum_form: self.momentum_form,
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
            hessian: self.hessian,
            subproblem: self.subproblem,
            precondition: self.precondition,
        })
    }
}

/// The default of `--tol`, as `1e-8` rather than `0.00000001`.
fn default_grad_tol() -> &'static str {
    static TEXT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("{:e}", Stopping::default().grad_tol));
    &TEXT
}

/// Stopping rules.
#[derive(clap::Args)]
pub struct StopArgs {
    /// Iterations (epochs for mini-batch runs).
    #[arg(long, default_value_t = Stopping::default().max_iters)]
    max_iters: u64,
    /// Stop when ‖∇L‖∞ ≤ TOL.
    #[arg(long, default_value = default_grad_tol())]
    tol: f64,
    /// Stop when the relative loss change ≤ FTOL (0: off).
    #[arg(long, default_value_t = Stopping::default().loss_change_tol)]
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
            time_limit: hessforge_driver::run::time_limit(self.time_limit)
                .map_err(Failure::bad_input)?,
            target_loss: self.target_loss,
            ..hessforge_optim::Stopping::default()
        })
    }
}

/// `derive --format`.
#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormat {
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

/// The report page's flavour (`report --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PageFormat {
    /// `index.html`: formulas as MathML, no script, opens offline.
    Html,
    /// `index.md`: `$…$` math and relative image links.
    Markdown,
}

/// The figures, as `--figures` spells them (see [`FigureKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FigureArg {
    /// Loss per iteration, every optimizer.
    Loss,
    /// ‖∇L‖∞ per iteration, every optimizer (log scale).
    GradNorm,
    /// Level sets of L with every optimizer's path (2 parameters).
    Contour,
    /// Gradient descent with α = 0.1/L, 1/L, 1.9/L, 2.5/L.
    LrSweep,
    /// GD vs SGD vs mini-batch paths (2-parameter data models).
    SgdPaths,
    /// Every learning-rate schedule over 200 updates.
    Schedules,
    /// λ_min and λ_max of the Hessian along each Newton-type path.
    Curvature,
    /// CG iterations (Hessian–vector products) per Hessian-free Newton step.
    CgIterations,
}

impl From<FigureArg> for FigureKind {
    fn from(f: FigureArg) -> FigureKind {
        match f {
            FigureArg::Loss => FigureKind::Loss,
            FigureArg::GradNorm => FigureKind::GradNorm,
            FigureArg::Contour => FigureKind::Contour,
            FigureArg::LrSweep => FigureKind::LrSweep,
            FigureArg::SgdPaths => FigureKind::SgdPaths,
            FigureArg::Schedules => FigureKind::Schedules,
            FigureArg::Curvature => FigureKind::Curvature,
            FigureArg::CgIterations => FigureKind::CgIterations,
        }
    }
}

/// The figures asked for (all of them when none are).
pub fn figure_kinds(asked: &[FigureArg]) -> Vec<FigureKind> {
    if asked.is_empty() {
        FigureKind::ALL.to_vec()
    } else {
        asked.iter().map(|&f| f.into()).collect()
    }
}

/// The figure options from `--window`.
pub fn figure_options(window: Option<&str>) -> Result<FigureOptions, Failure> {
    let window = window.map(str::parse).transpose().map_err(|e: String| {
        Failure::bad_input(miette::miette!(
            help = "four numbers x0,x1,y0,y1 with x0 < x1 and y0 < y1, e.g. --window=-5,5,-5,5",
            "--window: {e}"
        ))
    })?;
    Ok(FigureOptions { window })
}
