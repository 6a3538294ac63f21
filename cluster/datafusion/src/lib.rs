//! hessforge's passes as an Apache DataFusion aggregate function, so that
//! DataFusion's partial and final aggregation — across the partitions of a
//! file, across files, across Ballista's executors — computes a model's
//! loss, gradient, Hessian or Hessian–vector product over any table it can
//! read.
//!
//! - [`pass`]: [`PassFunction`], an `AggregateUDFImpl` carrying the model's
//!   kernel, its constants, θ (and v), whose accumulator evaluates record
//!   batches with the kernel and whose state merges by adding partition
//!   sums in a fixed order.
//! - [`codec`]: [`PassLogicalCodec`] and [`PassPhysicalCodec`], which carry
//!   the function (its model as a built-in's name or as validated loop IR)
//!   inside a plan shipped to Ballista's scheduler and executors.
//! - [`objective`]: [`DataFusionObjective`], the optimizers' objective whose
//!   every pass is one DataFusion query over a Parquet or Arrow IPC file.
//!
//! In a session of your own:
//!
//! ```no_run
//! use datafusion::prelude::*;
//! use hessforge_datafusion::{PassFunction, PassKind};
//! # async fn f() -> datafusion::common::Result<()> {
//! let model = hessforge_driver::models::load("logistic_regression").unwrap();
//! let backend = hessforge_driver::Backend::resolve(
//!     "logistic_regression", &model, Default::default()).unwrap();
//! let constants: Vec<f64> = model.constants.iter().map(|(_, v)| *v).collect();
//! let theta = vec![0.0; model.n_params()];
//! let pass = PassFunction::new(backend, &constants, &theta, PassKind::Gradient, None)?;
//! let ctx = SessionContext::new();
//! ctx.register_udaf(datafusion::logical_expr::AggregateUDF::from(pass));
//! ctx.register_parquet("t", "rows.parquet", ParquetReadOptions::default()).await?;
//! let columns: Vec<String> = (1..=10).map(|j| format!("x_{j}")).chain(["y".to_string()]).collect();
//! let sql = format!("SELECT hessforge_pass({}) FROM t", columns.join(", "));
//! ctx.sql(&sql).await?.show().await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod codec;
pub mod objective;
pub mod pass;

pub use codec::{PassLogicalCodec, PassPhysicalCodec};
pub use objective::{DataFusionObjective, EngineError, fixed_plan};
pub use pass::{NAME, PassFunction, PassKind, PassResult};
