//! hessforge on an Apache Ballista cluster: the scheduler and the executor
//! with hessforge's pass function and codecs registered, and the client
//! sessions whose passes run there.
//!
//! A fit's every pass is one Ballista job — the query
//! `SELECT hessforge_pass(x_1, …, y) FROM rows` with θ (and v) inside the
//! function — planned by the scheduler into a partial aggregate per
//! partition of the file, run by the executors, and a final aggregate that
//! merges the partitions' sums ([`hessforge_datafusion::pass`]). The model
//! travels in the plan ([`hessforge_datafusion::codec`]): a built-in by
//! name, a model file as loop IR that each executor validates and compiles,
//! so one executor binary serves every model.
//!
//! **Security.** Ballista's gRPC services have no authentication: whoever
//! reaches a scheduler can submit plans, and whoever reaches an executor
//! can fetch its shuffle files. Everything binds to 127.0.0.1 unless told
//! otherwise; a cluster belongs on a private network. A plan's payload is
//! data, never code: IR that fails validation is refused.

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use hessforge_datafusion::{
    DataFusionObjective, EngineError, PassLogicalCodec, PassPhysicalCodec, fixed_plan,
};
use hessforge_driver::Prepared;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The scheduler's address when none is given.
pub const DEFAULT_SCHEDULER: &str = "127.0.0.1:50050";

/// An executor's address when none is given (its gRPC port is the next).
pub const DEFAULT_EXECUTOR: &str = "127.0.0.1:50051";

/// `HOST:PORT` as its host and port.
///
/// # Errors
/// When there is no port after the last colon.
pub fn host_port(address: &str) -> Result<(String, u16), String> {
    address
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .and_then(|(host, port)| {
            Some((
                host.trim_matches(['[', ']']).to_string(),
                port.parse().ok()?,
            ))
        })
        .ok_or_else(|| format!("`{address}` is not HOST:PORT (e.g. {DEFAULT_SCHEDULER})"))
}

/// The logical codec every party uses: the pass function around Ballista's.
fn logical_codec() -> Arc<PassLogicalCodec> {
    Arc::new(PassLogicalCodec::new(Arc::new(
        BallistaLogicalExtensionCodec::default(),
    )))
}

/// The physical codec every party uses: the pass function around Ballista's.
fn physical_codec() -> Arc<PassPhysicalCodec> {
    Arc::new(PassPhysicalCodec::new(Arc::new(
        BallistaPhysicalExtensionCodec::default(),
    )))
}

/// A client's session configuration: Ballista's, the hessforge codecs, and
/// a fixed plan over `partitions` partitions of the file.
pub fn client_config(partitions: usize) -> SessionConfig {
    let config = SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(logical_codec())
        .with_ballista_physical_extension_codec(physical_codec())
        .with_ballista_standalone_parallelism(partitions.max(1))
        // The static planner: Ballista 55's adaptive one can leave a job
        // waiting for ever when an executor is lost after its map stage
        // succeeded ("can't find active stage"); the static one runs the
        // lost map tasks again. A pass is one fixed two-stage plan, which
        // adaptive planning has nothing to improve on.
        .with_ballista_adaptive_query_planner(false);
    fixed_plan(config, partitions)
}

fn runtime() -> Result<tokio::runtime::Runtime, EngineError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError(format!("cannot start the async runtime: {e}")))
}

fn client_state(partitions: usize) -> datafusion::execution::SessionState {
    SessionStateBuilder::new()
        .with_default_features()
        .with_config(client_config(partitions))
        .build()
}

/// The objective of `prepared` (a Parquet or Arrow IPC file) whose passes
/// are jobs of the Ballista cluster whose scheduler is at `scheduler`
/// (`HOST:PORT`), over `partitions` partitions of the file. The file's
/// path must name the same file on the scheduler and every executor
/// (shared storage).
///
/// # Errors
/// When the scheduler cannot be reached or the file cannot be registered.
pub fn remote(
    prepared: &Prepared,
    scheduler: &str,
    partitions: usize,
) -> Result<DataFusionObjective, EngineError> {
    let runtime = runtime()?;
    // Ballista connects on the first job; ask first, for a clear error.
    let reach = async {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::net::TcpStream::connect(scheduler),
        )
        .await
    };
    match runtime.block_on(reach) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(EngineError(format!(
                "cannot reach the scheduler at {scheduler}: {e} (is `hessforge-cluster scheduler` running there?)"
            )));
        }
        Err(_) => {
            return Err(EngineError(format!(
                "cannot reach the scheduler at {scheduler}: no answer within 10 s"
            )));
        }
    }
    let url = format!("df://{scheduler}");
    let ctx = runtime
        .block_on(SessionContext::remote_with_state(
            &url,
            client_state(partitions),
        ))
        .map_err(|e| EngineError(format!("the scheduler at {scheduler}: {e}")))?;
    DataFusionObjective::on(prepared, runtime, ctx)
}

/// The objective of `prepared` whose passes are jobs of a Ballista cluster
/// in this process: a scheduler and one executor running `partitions`
/// tasks at a time, on 127.0.0.1 with ports of the system's choosing, for
/// as long as the objective lives.
///
/// # Errors
/// When the cluster cannot start or the file cannot be registered.
pub fn standalone(
    prepared: &Prepared,
    partitions: usize,
) -> Result<DataFusionObjective, EngineError> {
    let runtime = runtime()?;
    let ctx = runtime
        .block_on(SessionContext::standalone_with_state(client_state(
            partitions,
        )))
        .map_err(|e| EngineError(format!("the standalone cluster: {e}")))?;
    DataFusionObjective::on(prepared, runtime, ctx)
}

/// How a scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// The address it listens on.
    pub bind: SocketAddr,
    /// The host name executors and clients reach it by (default: the
    /// bind address).
    pub external_host: Option<String>,
    /// An executor that sends no heartbeat for this long is lost; its
    /// tasks are run again elsewhere.
    pub executor_timeout_seconds: u64,
}

/// Run a Ballista scheduler that decodes hessforge's plans, until the
/// process ends.
///
/// # Errors
/// When it cannot listen or its configuration is refused.
pub async fn run_scheduler(options: SchedulerOptions) -> ballista_core::error::Result<()> {
    let config = SchedulerConfig {
        bind_host: options.bind.ip().to_string(),
        bind_port: options.bind.port(),
        external_host: options
            .external_host
            .unwrap_or_else(|| options.bind.ip().to_string()),
        executor_timeout_seconds: options.executor_timeout_seconds,
        expire_dead_executor_interval_seconds: (options.executor_timeout_seconds / 2).clamp(1, 15),
        no_executors_grace_period_seconds: options.executor_timeout_seconds,
        override_logical_codec: Some(logical_codec()),
        override_physical_codec: Some(physical_codec()),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, options.bind, Arc::new(config)).await
}

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's host name or address, and port.
    pub scheduler: (String, u16),
    /// The address its Arrow Flight service (shuffle reads) listens on.
    pub bind: SocketAddr,
    /// The port of its gRPC service (task launches).
    pub grpc_port: u16,
    /// The host name the scheduler and other executors reach it by
    /// (default: the bind address).
    pub external_host: Option<String>,
    /// Where it writes shuffle files.
    pub work_dir: PathBuf,
    /// Tasks it runs at a time.
    pub concurrent_tasks: usize,
    /// Seconds between its heartbeats to the scheduler.
    pub heartbeat_seconds: u64,
}

/// Run a Ballista executor that decodes hessforge's plans (compiling each
/// model's validated IR once), until the process ends.
///
/// # Errors
/// When it cannot listen, reach the scheduler, or its configuration is
/// refused.
pub async fn run_executor(options: ExecutorOptions) -> ballista_core::error::Result<()> {
    let config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        port: options.bind.port(),
        grpc_port: options.grpc_port,
        external_host: options.external_host,
        scheduler_host: options.scheduler.0,
        scheduler_port: options.scheduler.1,
        work_dir: Some(options.work_dir.to_string_lossy().into_owned()),
        vcores: options.concurrent_tasks,
        executor_heartbeat_interval_seconds: options.heartbeat_seconds,
        print_thread_info: false,
        override_logical_codec: Some(logical_codec()),
        override_physical_codec: Some(physical_codec()),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config)).await
}
