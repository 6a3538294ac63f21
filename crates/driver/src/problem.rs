//! A problem ready to fit: a model with its back-end (compiled kernel or
//! interpreter), the values of its constants, its data and the start — and
//! the options that choose them ([`Problem`]), checked with errors that say
//! what is expected.

// A data error carries the file text for miette's labelled snippet; it is
// built once, on the way out, so its size costs nothing that matters.
#![allow(clippy::result_large_err)]

use crate::backend::{Backend, BackendChoice, loss_is_square};
use crate::data::{self, DataError, Dataset, Storage};
use crate::models::{self, LookupError};
use crate::streamed::StreamedObjective;
use hessforge_kernels::KernelObjective;
use hessforge_optim::Objective;
use hessforge_spec::Model;
use hessforge_symbolic::EngineError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

/// An option of a problem or a run with a bad value. The option is named
/// as the command line spells it (`--set`, `--init`, `--optimizer`), which
/// is also the name of the [`Problem`] field or the call it came from.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{option}: {message}")]
#[diagnostic(help("{hint}"))]
pub struct OptionError {
    /// The option.
    pub option: &'static str,
    /// What was wrong.
    pub message: String,
    /// What is expected.
    pub hint: String,
}

pub(crate) fn option_error(
    option: &'static str,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> OptionError {
    OptionError {
        option,
        message: message.into(),
        hint: hint.into(),
    }
}

/// Why a problem could not be prepared.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PrepareError {
    /// No such model, or its derivation file is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Model(#[from] LookupError),
    /// The data could not be read or drawn.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Data(#[from] DataError),
    /// An option has a bad value.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Option(#[from] OptionError),
    /// The model could not be derived or lowered for the interpreter.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),
}

/// Where the data come from, how to start and the constants: what a fit
/// needs beyond the model (the flags `run`, `compare` and `report` share).
#[derive(Debug, Clone, Default)]
pub struct Problem {
    /// A data file (`--data`): CSV whose header names the model's data
    /// columns, read into memory, or Parquet / Arrow IPC, streamed.
    /// None, with no `synthetic` either: the built-in model's embedded data.
    pub data: Option<PathBuf>,
    /// The file's column for a model data scalar, as `ID=COLUMN`
    /// (`--column`), where the names differ.
    pub columns: Vec<String>,
    /// Read a Parquet or Arrow IPC file into memory instead of streaming it
    /// (`--in-memory`): for mini-batch optimizers.
    pub in_memory: bool,
    /// N rows drawn from the derivation's `[synthetic]` process (`--synthetic`).
    pub synthetic: Option<usize>,
    /// The seed of synthetic data, mini-batch shuffles and random starts (`--seed`).
    pub seed: u64,
    /// Fields to standardise to mean 0, sd 1 (`--standardize`); an empty
    /// list means the default ones (every field but the last).
    pub standardize: Option<Vec<String>>,
    /// The start: `zeros`, `random:SEED` or comma-separated values
    /// (`--init`); None: the derivation's `[init]`.
    pub init: Option<String>,
    /// Constants to override, as `NAME=VALUE` (`--set`).
    pub set: Vec<String>,
    /// Which back-end runs the model (`--backend`).
    pub backend: BackendChoice,
}

/// A model ready to fit: back-end, constants, data, start.
pub struct Prepared {
    /// The model.
    pub model: Model,
    /// Its back-end.
    pub backend: Backend,
    /// Constant values after `--set`.
    pub constants: Vec<f64>,
    /// The data.
    pub data: Dataset,
    /// θ₀.
    pub start: Vec<f64>,
}

impl Prepared {
    /// The objective over all rows: in memory, or streamed from a file.
    pub fn objective(&self) -> Box<dyn Objective + '_> {
        match &self.data.storage {
            Storage::Memory(values) => Box::new(self.memory_objective(values)),
            Storage::Streamed(table) => Box::new(self.streamed_objective(table)),
        }
    }

    /// The objective over rows in memory.
    pub fn memory_objective<'a>(&'a self, values: &'a [f64]) -> KernelObjective<'a> {
        KernelObjective::new(self.backend.kernel(), &self.constants, values)
            .gauss_newton(loss_is_square(&self.model), self.model.has_regularizer())
    }

    /// The objective over a streamed file.
    pub fn streamed_objective<'a>(
        &'a self,
        table: &'a data::columnar::ColumnarTable,
    ) -> StreamedObjective<'a> {
        let kernel = self.backend.kernel();
        let gauss_newton = hessforge_kernels::offers_gauss_newton(
            kernel,
            loss_is_square(&self.model),
            self.model.has_regularizer(),
        );
        StreamedObjective::new(kernel, &self.constants, table, gauss_newton)
    }
}

/// Resolve everything a fit needs: the model (a built-in name, with its
/// compiled kernel, or a path to a derivation file, interpreted), its
/// constants, data and start.
pub fn prepare(name: &str, problem: &Problem) -> Result<Prepared, PrepareError> {
    let model = models::load(name)?;
    let constants = constants(&model, &problem.set)?;
    let mut data = match (&problem.data, problem.synthetic) {
        (Some(_), Some(_)) => {
            return Err(option_error(
                "--data",
                "--data and --synthetic exclude each other",
                "give one of them",
            )
            .into());
        }
        (Some(path), None) => {
            let mapping = column_mapping(&problem.columns)?;
            data::load(path, &model, &mapping, problem.in_memory)?
        }
        (None, Some(n)) => {
            if model.data.is_empty() {
                return Err(option_error(
                    "--synthetic",
                    format!("model `{}` has no data", model.name),
                    "drop --synthetic",
                )
                .into());
            }
            data::synthetic(&model, n, problem.seed)?
        }
        (None, None) => data::default_for(&model, models::is_builtin(name))?,
    };
    if let Some(fields) = &problem.standardize {
        let fields = if fields.is_empty() {
            data::default_standardized(&model)
        } else {
            fields.clone()
        };
        data.standardize(&model, &fields)?;
    }
    let start = initial(&model, problem.init.as_deref())?;
    let backend = Backend::resolve(name, &model, problem.backend)?;
    Ok(Prepared {
        model,
        backend,
        constants,
        data,
        start,
    })
}

/// A model whose data come later, call by call (the Python package's
/// model: its arrays arrive with each call): the back-end `choice` names
/// for it (`arg` the name it was asked for, a built-in or not), its
/// constants with `set` applied, its start (`init` as [`Problem::init`]),
/// and no rows.
pub fn prepare_without_data(
    arg: &str,
    model: Model,
    set: &[String],
    init: Option<&str>,
    choice: BackendChoice,
) -> Result<Prepared, PrepareError> {
    let constants = constants(&model, set)?;
    let start = initial(&model, init)?;
    let backend = Backend::resolve(arg, &model, choice)?;
    Ok(Prepared {
        model,
        backend,
        constants,
        data: Dataset::in_memory(Vec::new(), 0, "no data yet"),
        start,
    })
}

/// `--column ID=COLUMN` items as (model id, file column).
fn column_mapping(items: &[String]) -> Result<Vec<data::ColumnMapping>, OptionError> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((id, column)) if !id.trim().is_empty() && !column.trim().is_empty() => {
                Ok((id.trim().to_string(), column.trim().to_string()))
            }
            _ => Err(option_error(
                "--column",
                format!("`{item}` is not ID=COLUMN"),
                "the model's data name, `=`, the file's column: e.g. --column x_1=age",
            )),
        })
        .collect()
}

fn constants(model: &Model, set: &[String]) -> Result<Vec<f64>, OptionError> {
    let mut values: Vec<f64> = model.constants.iter().map(|(_, v)| *v).collect();
    for item in set {
        let Some((name, value)) = item.split_once('=') else {
            return Err(option_error(
                "--set",
                format!("`{item}` is not NAME=VALUE"),
                "e.g. --set lambda=0",
            ));
        };
        let names: Vec<&str> = model.constants.iter().map(|(s, _)| s.id.as_str()).collect();
        let Some(k) = names.iter().position(|n| *n == name.trim()) else {
            let hint = if names.is_empty() {
                format!("model `{}` has no constants", model.name)
            } else {
                format!(
                    "the constants of `{}` are: {}",
                    model.name,
                    names.join(", ")
                )
            };
            return Err(option_error(
                "--set",
                format!("no constant named `{}`", name.trim()),
                hint,
            ));
        };
        values[k] = value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                option_error(
                    "--set",
                    format!("`{value}` is not a finite number"),
                    "e.g. --set lambda=0.1",
                )
            })?;
    }
    Ok(values)
}

fn initial(model: &Model, init: Option<&str>) -> Result<Vec<f64>, OptionError> {
    let p = model.n_params();
    let hint = format!("zeros, random:SEED, or {p} comma-separated numbers");
    match init {
        None => Ok(model.init.clone()),
        Some("zeros") => Ok(vec![0.0; p]),
        Some(s) if s.starts_with("random:") => {
            let seed: u64 = s["random:".len()..].parse().map_err(|_| {
                option_error("--init", format!("`{s}` has no integer seed"), hint.clone())
            })?;
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            Ok((0..p).map(|_| rng.gen_range(-0.5..0.5)).collect())
        }
        Some(list) => {
            let values: Vec<f64> = list
                .split(',')
                .map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    option_error(
                        "--init",
                        format!("`{list}` is not a list of numbers"),
                        hint.clone(),
                    )
                })?;
            if values.len() != p {
                return Err(option_error(
                    "--init",
                    format!(
                        "{} values given, the model has {p} parameters",
                        values.len()
                    ),
                    hint,
                ));
            }
            Ok(values)
        }
    }
}
