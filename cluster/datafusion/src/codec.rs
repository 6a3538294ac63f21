//! The pass function on the wire: logical and physical extension codecs
//! (DataFusion's protobuf plans, as Ballista ships them from client to
//! scheduler to executors) that carry a [`PassFunction`] — its model, θ,
//! v, constants and scaling — inside the plan, so that one executor binary
//! serves every model.
//!
//! **The payload** is JSON with every number as the bits of its f64 (so θ
//! arrives bit for bit, NaN and infinities included): a built-in model by
//! name (the receiver's compiled kernel), or a model file's IR — its loop
//! IR, or with scalar parameters only its straight-line programs — which
//! the receiver validates ([`hessforge_kernels::ir::loop_ir::LoopProgram::validate`]:
//! sizes, indices, shapes, instructions;
//! [`hessforge_kernels::ir::ModelPrograms::validate`]: operands, registers,
//! outputs) and compiles to machine code ([`RunTimeKernel::compile`],
//! [`CompiledStraightLine::compile`]) — an IR that fails validation is an
//! error, never code run. Compiled IR is cached per process by its value,
//! so a fit's many passes compile the model once.
//!
//! **Wrapping.** Each codec wraps another (Ballista's own, which knows its
//! shuffle nodes and file formats) and passes everything but
//! `hessforge_pass` on to it.

use crate::pass::{NAME, PassFunction, PassKind};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use hessforge_driver::Backend;
use hessforge_kernels::ir::ModelPrograms;
use hessforge_kernels::ir::loop_ir::LoopProgram;
use hessforge_kernels::{CompiledStraightLine, JitError, RunTimeKernel};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// The version of the payload's layout; a receiver refuses another.
const FORMAT: u32 = 3;

/// The largest payload a receiver reads (64 MiB).
const MAX_PAYLOAD: usize = 64 << 20;

/// How many compiled models a process keeps.
const CACHED_MODELS: usize = 8;

/// Where the receiver gets the model's kernel.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ShippedModel {
    /// A model compiled into every hessforge binary, by name.
    Builtin(String),
    /// A model file's loop IR, compiled by the receiver.
    LoopIr(Box<LoopProgram>),
    /// A model file's straight-line programs (its parameters all
    /// scalars), compiled by the receiver.
    StraightLine(Box<ModelPrograms>),
}

#[derive(Serialize, Deserialize)]
struct Payload {
    format: u32,
    model: ShippedModel,
    kind: PassKind,
    /// f64 bits.
    constants: Vec<u64>,
    theta: Vec<u64>,
    v: Vec<u64>,
    scaling: Vec<(u64, u64)>,
}

fn to_bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn from_bits(bits: &[u64]) -> Vec<f64> {
    bits.iter().map(|&b| f64::from_bits(b)).collect()
}

/// The payload of `function`.
///
/// # Errors
/// When its model runs on the interpreter (`--backend interpreter`, the
/// oracle, stays on the client): compiled kernels and IR travel.
pub fn encode(function: &PassFunction) -> Result<Vec<u8>> {
    let model = match function.backend() {
        Backend::Compiled(k) => ShippedModel::Builtin(k.name().to_string()),
        Backend::RunTimeCompiled(k) => ShippedModel::LoopIr(Box::new(k.program().clone())),
        Backend::RunTimeCompiledStraightLine(k) => {
            ShippedModel::StraightLine(Box::new(k.programs().clone()))
        }
        Backend::Interpreted(k) => {
            return Err(DataFusionError::Plan(format!(
                "{NAME}: model `{}` runs on the interpreter, which cannot be shipped to \
                 executors; the default back-end (compiled at run time) can",
                k.name()
            )));
        }
    };
    let payload = Payload {
        format: FORMAT,
        model,
        kind: function.kind(),
        constants: to_bits(function.constants()),
        theta: to_bits(function.theta()),
        v: to_bits(function.v()),
        scaling: function
            .scaling()
            .iter()
            .map(|(a, b)| (a.to_bits(), b.to_bits()))
            .collect(),
    };
    serde_json::to_vec(&payload).map_err(|e| DataFusionError::Internal(format!("{NAME}: {e}")))
}

/// A received payload as the pass function it describes.
///
/// # Errors
/// When the bytes are not a payload of this format, name no built-in
/// model, carry IR that fails validation, or values whose lengths do not
/// fit the model — each an error naming what is wrong.
pub fn decode(bytes: &[u8]) -> Result<PassFunction> {
    let bad = |what: String| DataFusionError::Plan(format!("{NAME}: a bad payload: {what}"));
    if bytes.len() > MAX_PAYLOAD {
        return Err(bad(format!(
            "{} bytes, more than {MAX_PAYLOAD}",
            bytes.len()
        )));
    }
    let payload: Payload = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if payload.format != FORMAT {
        return Err(bad(format!(
            "format {}, this build reads format {FORMAT} (are the client and the executors \
             of the same hessforge version?)",
            payload.format
        )));
    }
    let backend = match payload.model {
        ShippedModel::Builtin(name) => {
            let kernel = hessforge_kernels::kernel(&name)
                .ok_or_else(|| bad(format!("no built-in model is named `{name}`")))?;
            Backend::Compiled(kernel)
        }
        ShippedModel::LoopIr(program) => {
            static CACHE: Cache<RunTimeKernel> = Mutex::new(Vec::new());
            let kernel = cached(
                &CACHE,
                *program,
                RunTimeKernel::program,
                RunTimeKernel::compile,
            );
            Backend::RunTimeCompiled(kernel.map_err(bad)?)
        }
        ShippedModel::StraightLine(programs) => {
            static CACHE: Cache<CompiledStraightLine> = Mutex::new(Vec::new());
            let compile = CompiledStraightLine::tiered;
            let kernel = cached(&CACHE, *programs, CompiledStraightLine::programs, compile);
            Backend::RunTimeCompiledStraightLine(kernel.map_err(bad)?)
        }
    };
    let v = from_bits(&payload.v);
    let function = PassFunction::new(
        backend,
        &from_bits(&payload.constants),
        &from_bits(&payload.theta),
        payload.kind,
        (payload.kind == PassKind::HessVec).then_some(v.as_slice()),
    )?;
    let scaling: Vec<(f64, f64)> = payload
        .scaling
        .iter()
        .map(|&(a, b)| (f64::from_bits(a), f64::from_bits(b)))
        .collect();
    function.with_scaling(scaling)
}

/// The kernels compiled in this process, newest last.
type Cache<K> = Mutex<Vec<Arc<K>>>;

/// The kernel of `ir`: validated and compiled, or the one compiled before
/// for an equal IR (`ir_of` gives a kernel's).
fn cached<I: PartialEq, K>(
    cache: &Cache<K>,
    ir: I,
    ir_of: fn(&K) -> &I,
    compile: fn(I) -> std::result::Result<K, JitError>,
) -> std::result::Result<Arc<K>, String> {
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(k) = cache.iter().find(|k| *ir_of(k) == ir) {
        return Ok(Arc::clone(k));
    }
    let kernel = Arc::new(compile(ir).map_err(|e| e.to_string())?);
    if cache.len() == CACHED_MODELS {
        cache.remove(0);
    }
    cache.push(Arc::clone(&kernel));
    Ok(kernel)
}

/// The function of a decoded payload, as DataFusion takes it.
fn decode_udaf(bytes: &[u8]) -> Result<Arc<AggregateUDF>> {
    Ok(Arc::new(AggregateUDF::from(decode(bytes)?)))
}

/// Encode `node` when it is the pass function; `None` when it is not.
fn encode_udaf(node: &AggregateUDF, buf: &mut Vec<u8>) -> Option<Result<()>> {
    let any: &dyn std::any::Any = node.inner().as_ref();
    let function = any.downcast_ref::<PassFunction>()?;
    Some(encode(function).map(|bytes| buf.extend(bytes)))
}

/// A logical codec that carries the pass function and hands everything
/// else to the codec it wraps.
#[derive(Debug)]
pub struct PassLogicalCodec {
    inner: Arc<dyn LogicalExtensionCodec>,
}

impl PassLogicalCodec {
    /// The codec around `inner` (Ballista's, or DataFusion's default).
    pub fn new(inner: Arc<dyn LogicalExtensionCodec>) -> Self {
        PassLogicalCodec { inner }
    }
}

impl LogicalExtensionCodec for PassLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }
    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }
    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        self.inner
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }
    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }
    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }
    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }
    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }
    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        if name == NAME {
            return decode_udaf(buf);
        }
        self.inner.try_decode_udaf(name, buf)
    }
    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udaf(node, buf).unwrap_or_else(|| self.inner.try_encode_udaf(node, buf))
    }
    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }
    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

/// A physical codec that carries the pass function and hands everything
/// else to the codec it wraps.
#[derive(Debug)]
pub struct PassPhysicalCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
}

impl PassPhysicalCodec {
    /// The codec around `inner` (Ballista's, or DataFusion's default).
    pub fn new(inner: Arc<dyn PhysicalExtensionCodec>) -> Self {
        PassPhysicalCodec { inner }
    }
}

impl PhysicalExtensionCodec for PassPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.try_decode(buf, inputs, ctx, proto_converter)
    }
    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        self.inner.try_encode(node, buf, proto_converter)
    }
    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }
    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }
    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn PhysicalExpr>],
        ctx: &PhysicalExprDecodeCtx<'_>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        self.inner.try_decode_expr(buf, inputs, ctx)
    }
    fn try_encode_expr(
        &self,
        node: &Arc<dyn PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> Result<()> {
        self.inner.try_encode_expr(node, buf, ctx)
    }
    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        if name == NAME {
            return decode_udaf(buf);
        }
        self.inner.try_decode_udaf(name, buf)
    }
    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udaf(node, buf).unwrap_or_else(|| self.inner.try_encode_udaf(node, buf))
    }
    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }
    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}
