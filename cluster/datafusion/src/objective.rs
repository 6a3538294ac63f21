//! The optimizers' objective over a table DataFusion reads: every pass is
//! one query, `SELECT hessforge_pass(x_1, …, y) FROM rows`, with θ (and v)
//! inside the function, run on `partitions` partitions of the file (each a
//! thread, each streaming its share of the row groups) and merged by
//! DataFusion's final aggregation ([`crate::pass`]).
//!
//! The file is checked first by hessforge's own reader
//! ([`hessforge_driver::data::columnar::ColumnarTable`]): a missing column,
//! a wrong type, a null or NaN is an error naming the file, the column and
//! the row group before any query runs. A query that fails during a fit
//! makes every later pass NaN, which ends the run, and is kept for its
//! outcome ([`DataFusionObjective::failure`]).

use crate::pass::{PassFunction, PassKind, PassResult};
use datafusion::common::DataFusionError;
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::logical_expr::AggregateUDF;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext, ident};
use hessforge_driver::data::columnar::Format;
use hessforge_driver::streamed::FirstFailure;
use hessforge_driver::{Backend, Prepared};
use hessforge_kernels::Rows;
use hessforge_optim::Objective;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The name of the registered table.
const TABLE: &str = "rows";

/// A model bound to its constants and a Parquet or Arrow IPC file, each
/// pass a DataFusion query.
pub struct DataFusionObjective {
    runtime: tokio::runtime::Runtime,
    ctx: SessionContext,
    backend: Backend,
    constants: Vec<f64>,
    /// The file's column for each model data column.
    columns: Vec<String>,
    scaling: Vec<(f64, f64)>,
    rows: usize,
    failure: FirstFailure,
    /// Partition sums merged by the last pass.
    partials: AtomicUsize,
    /// How long a pass may take before it counts as failed.
    pass_timeout: Option<Duration>,
}

/// Why the DataFusion engine could not be set up.
#[derive(Debug)]
pub struct EngineError(pub String);

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EngineError {}

impl DataFusionObjective {
    /// The objective of a prepared problem whose data is a streamed
    /// Parquet or Arrow IPC file (`prepare` with the file as `--data`: its
    /// checks, column mapping and standardisation carry over), its passes
    /// run by DataFusion on this machine on `partitions` partitions.
    ///
    /// # Errors
    /// When the data is not a streamed file, or DataFusion cannot read it.
    pub fn new(prepared: &Prepared, partitions: usize) -> Result<Self, EngineError> {
        let partitions = partitions.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(partitions)
            .enable_all()
            .build()
            .map_err(|e| EngineError(format!("cannot start the async runtime: {e}")))?;
        let ctx = SessionContext::new_with_config(fixed_plan(SessionConfig::new(), partitions));
        Self::on(prepared, runtime, ctx)
    }

    /// The objective of a prepared problem whose passes run in the session
    /// `ctx` (a Ballista client's, say, whose configuration went through
    /// [`fixed_plan`] and carries the pass codecs), driven by `runtime`.
    ///
    /// # Errors
    /// When the data is not a streamed file, or the session cannot read it.
    pub fn on(
        prepared: &Prepared,
        runtime: tokio::runtime::Runtime,
        ctx: SessionContext,
    ) -> Result<Self, EngineError> {
        let hessforge_driver::data::Storage::Streamed(table) = &prepared.data.storage else {
            return Err(EngineError(format!(
                "the DataFusion engine reads Parquet and Arrow IPC files; {} is not one",
                prepared.data.source
            )));
        };
        register(&runtime, &ctx, table.path(), table.format())?;
        Ok(DataFusionObjective {
            runtime,
            ctx,
            backend: prepared.backend.clone(),
            constants: prepared.constants.clone(),
            columns: table.sources().to_vec(),
            scaling: table.scaling().to_vec(),
            rows: table.rows(),
            failure: FirstFailure::default(),
            partials: AtomicUsize::new(0),
            pass_timeout: None,
        })
    }

    /// A pass that has not finished after `limit` fails (and so the fit,
    /// saying why) instead of waiting on: a cluster that lost its
    /// executors does not hang the client.
    pub fn with_pass_timeout(mut self, limit: Duration) -> Self {
        self.pass_timeout = Some(limit);
        self
    }

    /// How many partitions' sums the last pass merged: the partitions
    /// that read rows, wherever they ran.
    pub fn partials_merged(&self) -> usize {
        self.partials.load(Ordering::Relaxed)
    }

    /// Why a pass failed, if one did.
    pub fn failure(&self) -> Option<String> {
        self.failure.get()
    }

    /// One pass: the query with the function at θ.
    pub fn pass(
        &self,
        kind: PassKind,
        theta: &[f64],
        v: Option<&[f64]>,
    ) -> datafusion::common::Result<PassResult> {
        let function = PassFunction::new(self.backend.clone(), &self.constants, theta, kind, v)?
            .with_scaling(self.scaling.clone())?;
        let udaf = AggregateUDF::from(function.clone());
        let args = self.columns.iter().map(ident).collect();
        let query = async {
            let df = self.ctx.table(TABLE).await?;
            df.aggregate(vec![], vec![udaf.call(args)])?.collect().await
        };
        let batches = self.runtime.block_on(async {
            let Some(limit) = self.pass_timeout else {
                return query.await;
            };
            tokio::time::timeout(limit, query)
                .await
                .unwrap_or_else(|_| {
                    Err(DataFusionError::Execution(format!(
                        "the pass did not finish within {} s",
                        limit.as_secs_f64()
                    )))
                })
        })?;
        let value = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .map(|b| datafusion::common::ScalarValue::try_from_array(b.column(0), 0))
            .transpose()?
            .ok_or_else(|| DataFusionError::Internal("the pass returned no row".into()))?;
        function.result(&value)
    }

    /// How many partitions a pass reads the file in: the partition count of
    /// the plan's scan (at most the number the objective was made with, at
    /// most the file's row groups).
    ///
    /// # Errors
    /// When the plan cannot be made.
    pub fn partitions_read(&self) -> datafusion::common::Result<usize> {
        let p = self.n_params();
        let function = PassFunction::new(
            self.backend.clone(),
            &self.constants,
            &vec![0.0; p],
            PassKind::Loss,
            None,
        )?;
        let udaf = AggregateUDF::from(function);
        let args = self.columns.iter().map(ident).collect();
        let plan = self.runtime.block_on(async {
            let df = self.ctx.table(TABLE).await?;
            df.aggregate(vec![], vec![udaf.call(args)])?
                .create_physical_plan()
                .await
        })?;
        let mut node = plan;
        while let Some(child) = node.children().first().map(|c| Arc::clone(*c)) {
            node = child;
        }
        Ok(node.properties().output_partitioning().partition_count())
    }

    /// A pass, or NaN everywhere after a failure (kept).
    fn run(&self, kind: PassKind, theta: &[f64], v: Option<&[f64]>) -> Option<PassResult> {
        if self.failure().is_some() {
            return None;
        }
        match self.pass(kind, theta, v) {
            Ok(r) if r.rows as usize == self.rows => {
                self.partials.store(r.partials, Ordering::Relaxed);
                Some(r)
            }
            Ok(r) => {
                self.failure.record(format!(
                    "the pass read {} rows, the file had {} when opened; was it changed during the fit?",
                    r.rows, self.rows
                ));
                None
            }
            Err(e) => {
                self.failure.record(e.to_string());
                None
            }
        }
    }

    fn full(&self, rows: Rows<'_>) -> bool {
        if rows.selected().is_some() {
            self.failure
                .record("a mini-batch needs the rows in memory (use --in-memory)".into());
            return false;
        }
        true
    }
}

/// `config` set for a fixed plan on `partitions` partitions: the file (if
/// larger than 1 MiB) split into `partitions` ranges of whole row groups, no
/// round-robin repartitioning whose order could vary, no filter pushdown.
pub fn fixed_plan(config: SessionConfig, partitions: usize) -> SessionConfig {
    config
        .with_target_partitions(partitions.max(1))
        .with_repartition_file_min_size(1 << 20)
        .set_bool("datafusion.optimizer.enable_round_robin_repartition", false)
        .set_bool("datafusion.execution.parquet.pushdown_filters", false)
}

fn register(
    runtime: &tokio::runtime::Runtime,
    ctx: &SessionContext,
    path: &Path,
    format: Format,
) -> Result<(), EngineError> {
    let name = path
        .to_str()
        .ok_or_else(|| EngineError(format!("{}: the path is not UTF-8", path.display())))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    runtime
        .block_on(async {
            match format {
                Format::Parquet => {
                    let options = ParquetReadOptions {
                        file_extension: &extension,
                        ..ParquetReadOptions::default()
                    };
                    ctx.register_parquet(TABLE, name, options).await
                }
                Format::ArrowIpc => {
                    let options = ArrowReadOptions {
                        file_extension: &extension,
                        ..ArrowReadOptions::default()
                    };
                    ctx.register_arrow(TABLE, name, options).await
                }
            }
        })
        .map_err(|e| EngineError(format!("{name}: {e}")))
}

fn copy(from: &[f64], to: &mut [f64]) {
    to[..from.len()].copy_from_slice(from);
}

impl Objective for DataFusionObjective {
    fn n_params(&self) -> usize {
        self.backend.kernel().n_params()
    }
    fn n_rows(&self) -> usize {
        self.rows
    }
    fn loss(&self, theta: &[f64], rows: Rows<'_>) -> f64 {
        if !self.full(rows) {
            return f64::NAN;
        }
        self.run(PassKind::Loss, theta, None)
            .map_or(f64::NAN, |r| r.loss)
    }
    fn loss_grad(&self, theta: &[f64], rows: Rows<'_>, grad: &mut [f64]) -> f64 {
        let result = self
            .full(rows)
            .then(|| self.run(PassKind::Gradient, theta, None));
        match result.flatten() {
            Some(r) => {
                copy(&r.gradient, grad);
                r.loss
            }
            None => {
                grad.fill(f64::NAN);
                f64::NAN
            }
        }
    }
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        rows: Rows<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        let result = self
            .full(rows)
            .then(|| self.run(PassKind::Hessian, theta, None));
        match result.flatten() {
            Some(r) => {
                copy(&r.gradient, grad);
                copy(&r.hessian, hess);
                r.loss
            }
            None => {
                grad.fill(f64::NAN);
                hess.fill(f64::NAN);
                f64::NAN
            }
        }
    }
    fn hess_vec(&self, theta: &[f64], rows: Rows<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        let result = self
            .full(rows)
            .then(|| self.run(PassKind::HessVec, theta, Some(v)));
        match result.flatten() {
            Some(r) => {
                copy(&r.hess_vec, out);
                r.loss
            }
            None => {
                out.fill(f64::NAN);
                f64::NAN
            }
        }
    }
}
