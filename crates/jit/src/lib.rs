//! The IR compiled to native code at run time, with Cranelift: what a
//! model file runs on when it has no build-time kernel — its loop IR
//! ([`CompiledProgram`], a model with a vector or matrix parameter), or its
//! straight-line programs ([`CompiledStraightLine`], in `straight_line`:
//! every parameter a scalar).
//!
//! [`CompiledProgram::compile`] takes a validated
//! [`LoopProgram`] (and its tangent
//! model, for Hessian–vector products, when the first product asks) and
//! compiles each stage's steps —
//! the part a generated `*.loops.rs` file holds — into machine code: one
//! function for one row, one for [`LANES`] rows at once (lane r for row r,
//! as the generated code's `sample::<8>`), one for the regularizer; and,
//! for a model of at most `ENTRY_BY_ENTRY_PARAMS` parameters, its short
//! pass's Hessian terms of one row entry by entry (`row_terms`, as the
//! generated `row_terms`). The passes, the rest of the accumulation of the
//! gradient and Hessian terms (the lane sums included: the shared sweep),
//! the parallel and the Hessian–vector passes stay the shared runtime's
//! ([`hessforge_ir::loop_ir::Steps`]): [`CompiledSteps`] is one more
//! implementation of it, beside the interpreter and the generated code.
//!
//! Safety: the code reads and writes only through the pointers of the
//! slices [`CompiledSteps`] passes, at offsets proved in range by
//! [`LoopProgram::validate`] (every load's axes within its tensor's shape,
//! every tensor within its source, every buffer within its stage's
//! scratch) or, for the Hessian terms, read off the plan with the lengths
//! they need; each call checks the slices' lengths against those sizes
//! before it jumps into the code. Only validated IR is compiled.

mod emit;
mod row_terms;
mod straight_line;

pub use straight_line::{CompiledStraightLine, TIER_UP_RUNS};

use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, default_libcall_names};
use hessforge_ir::loop_ir::{LoopProgram, Phase, Source, Stage, Steps};
use hessforge_ir::tangent::{PrimalPrefix, primal_prefix};
use hessforge_ir::{FUNCTIONS, InvalidProgram, Outputs};
use row_terms::{RowTerms, RowTermsFn, RowTermsSizes};
use std::sync::{Mutex, OnceLock};

/// Rows one call of the lane function takes (the generated kernels' and
/// the shared runtime's lanes).
pub const LANES: usize = 8;

/// Why a program could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// The program did not pass validation; nothing was compiled.
    #[error("invalid loop IR: {0}")]
    Invalid(#[from] InvalidProgram),
    /// Cranelift refused the code or the host (a bug, or an unsupported
    /// machine); the interpreter still runs the model.
    #[error("the run-time compiler failed: {0}")]
    Codegen(String),
}

/// A compiled stage: `(level rank, first step, end step, θ, rows,
/// constants, direction, scratch)`; it runs the steps `first..end` whose
/// level is at most the rank.
type StageFn =
    unsafe extern "C" fn(i64, i64, i64, *const f64, *const f64, *const f64, *const f64, *mut f64);

/// The sizes a call's slices must have (checked before every call).
#[derive(Debug, Clone, Copy)]
struct Sizes {
    params: usize,
    data: usize,
    constants: usize,
    sample_scratch: usize,
    regularizer_scratch: usize,
    reads_direction: bool,
}

/// One program's stages in machine code.
#[derive(Debug, Clone, Copy)]
struct Functions {
    sample: StageFn,
    sample_lanes: StageFn,
    regularizer: StageFn,
    sample_steps: usize,
    regularizer_steps: usize,
    sizes: Sizes,
    /// A short pass's Hessian terms of one row, entry by entry (a model's
    /// own steps, at most `ENTRY_BY_ENTRY_PARAMS` parameters).
    row_terms: Option<(RowTermsFn, RowTermsSizes)>,
}

/// A finished module: the owner of its code's memory, freed on drop
/// (behind a mutex only so that the value is `Sync`: the module is never
/// touched after compiling). The function pointers into it live beside it
/// in the value that holds it, and every call borrows that value.
struct OwnedModule(Mutex<Option<JITModule>>);

impl OwnedModule {
    fn new(module: JITModule) -> OwnedModule {
        OwnedModule(Mutex::new(Some(module)))
    }
}

impl Drop for OwnedModule {
    fn drop(&mut self) {
        let module = self.0.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(module) = module.take() {
            // SAFETY: the value that holds this module and the pointers
            // into its code is being dropped; every call borrows that
            // value, so none runs.
            unsafe { module.free_memory() };
        }
    }
}

/// One loop program's stages in machine code, with the module that owns
/// the code's memory.
struct Code {
    functions: Functions,
    _module: OwnedModule,
}

/// The tangent model, compiled on the first Hessian–vector product: a fit
/// that never asks for one (dense Newton, first-order methods) does not pay
/// for its compilation.
struct Tangent {
    /// Its leading steps that read no direction, and what they write.
    primal_prefix: Option<PrimalPrefix>,
    /// `None` inside when Cranelift failed on it (then the products
    /// contract the Hessian terms instead).
    code: OnceLock<Option<Code>>,
}

/// A loop program compiled to machine code, with its tangent model's
/// (compiled when first used) when it has one. It owns the program; the
/// code lives as long as this value.
pub struct CompiledProgram {
    program: LoopProgram,
    primal: Code,
    tangent: Option<Tangent>,
}

impl std::fmt::Debug for CompiledProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledProgram")
            .field("program", &self.program.name)
            .field("primal", &self.primal.functions)
            .field("tangent", &self.tangent.is_some())
            .finish()
    }
}

/// `f(x)` of the function with index `func` in [`FUNCTIONS`], for the code
/// of one row.
extern "C" fn call_one(func: u32, x: f64) -> f64 {
    (FUNCTIONS[func as usize].eval)(x)
}

/// The function `FUNCTIONS[I]` on [`LANES`] values at `buf`, in place
/// (the generated code's lane functions, inlined here). One helper per
/// function, so that each is compiled on its own: one helper that chose
/// the function at run time was one body for all of them, with a 1.5 kB
/// stack frame (a logistic pass compiled at run time took 1.8× the
/// build-time kernel's, now 1.6×).
///
/// # Safety
/// `buf` points to [`LANES`] writable f64 (a stack slot of the caller).
#[inline(always)]
unsafe fn lanes_in_place<const I: usize>(buf: *mut f64) {
    // The compiled caller stores its lanes two at a time (Cranelift's
    // vectors have 128 bits), so they are read two at a time: one wider
    // load of several narrower stores is not forwarded from the store
    // buffer and waits for them to reach the cache. Volatile, so that the
    // compiler does not merge the reads into wider loads.
    let pairs = buf.cast::<[f64; 2]>();
    let mut x = [0.0; LANES];
    for (k, pair) in x.chunks_exact_mut(2).enumerate() {
        // SAFETY: the compiled caller passes its own stack slot of LANES
        // f64 (aligned for f64, so for pairs of them).
        pair.copy_from_slice(&unsafe { pairs.add(k).read_volatile() });
    }
    let f = const { FUNCTIONS[I].func };
    let y = f.eval_lanes(hessforge_ir::lanes::Lanes(x)).0;
    // SAFETY: as above.
    unsafe { buf.cast::<[f64; LANES]>().write(y) };
}

/// [`lanes_in_place`] for any x86-64 (or other) CPU.
///
/// # Safety
/// As [`lanes_in_place`].
unsafe extern "C" fn lanes_portable<const I: usize>(buf: *mut f64) {
    // SAFETY: as the caller's.
    unsafe { lanes_in_place::<I>(buf) }
}

/// [`lanes_in_place`] compiled for AVX2, as the generated kernels' lane
/// loops are (used when the CPU has it).
///
/// # Safety
/// As [`lanes_in_place`], on a CPU with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe extern "C" fn lanes_avx2<const I: usize>(buf: *mut f64) {
    // SAFETY: as the caller's.
    unsafe { lanes_in_place::<I>(buf) }
}

/// A function of the derivation language on [`LANES`] values in place.
type LaneHelper = unsafe extern "C" fn(*mut f64);

/// One helper per entry of [`FUNCTIONS`], in its order (a function added
/// there without its index here does not compile: the lengths differ).
macro_rules! lane_helpers {
    ($helper:ident) => {
        [
            $helper::<0> as LaneHelper,
            $helper::<1>,
            $helper::<2>,
            $helper::<3>,
            $helper::<4>,
            $helper::<5>,
            $helper::<6>,
            $helper::<7>,
            $helper::<8>,
            $helper::<9>,
            $helper::<10>,
            $helper::<11>,
            $helper::<12>,
            $helper::<13>,
            $helper::<14>,
            $helper::<15>,
            $helper::<16>,
            $helper::<17>,
            $helper::<18>,
        ]
    };
}

/// The lane helpers for this CPU, by the functions' places in
/// [`FUNCTIONS`].
fn lane_helpers_here() -> [LaneHelper; FUNCTIONS.len()] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return lane_helpers!(lanes_avx2);
    }
    lane_helpers!(lanes_portable)
}

/// xʸ, for the code of one row.
extern "C" fn pow_one(x: f64, y: f64) -> f64 {
    x.powf(y)
}

/// xʸ on [`LANES`] values: x at `buf`, y after them; the result over x.
///
/// # Safety
/// `buf` points to 2 · [`LANES`] writable f64.
unsafe extern "C" fn pow_lanes(buf: *mut f64) {
    // SAFETY: the compiled caller passes its own stack slot of 2·LANES f64.
    let values = unsafe { &mut *buf.cast::<[f64; 2 * LANES]>() };
    for r in 0..LANES {
        values[r] = values[r].powf(values[LANES + r]);
    }
}

/// Which model of a [`CompiledProgram`] a [`Code`] holds.
#[derive(Debug, Clone, Copy)]
enum Model {
    /// The model's own steps; their short pass's Hessian terms are
    /// compiled too ([`RowTerms`]).
    Own,
    /// Its tangent model, whose Hessian terms are never asked for; `split`
    /// its primal prefix (its per-sample steps `..split` read no direction
    /// and run apart from the rest).
    Tangent { split: Option<usize> },
}

impl Model {
    /// The prefix of its functions' names.
    fn name(self) -> &'static str {
        match self {
            Model::Own => "primal",
            Model::Tangent { .. } => "tangent",
        }
    }
}

impl Code {
    /// `program`'s stages in a module of their own, as `model` says.
    fn compile(program: &LoopProgram, model: Model) -> Result<Code, JitError> {
        let mut module = new_module()?;
        let helpers = emit::Helpers::declare(&mut module)?;
        let name = model.name();
        let (split, row_terms) = match model {
            Model::Own => (None, RowTerms::of(program)),
            Model::Tangent { split } => (split, None),
        };
        let declared = compile_program(&mut module, &helpers, program, name, split)?;
        let row_terms = match row_terms {
            Some(terms) => Some((
                terms.define(&mut module, &format!("{name}_row_terms"))?,
                terms.sizes,
            )),
            None => None,
        };
        module
            .finalize_definitions()
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        let get = |id| {
            let ptr = module.get_finalized_function(id);
            // SAFETY: the function was defined with the signature of
            // `StageFn` (`emit::stage_signature`).
            unsafe { std::mem::transmute::<*const u8, StageFn>(ptr) }
        };
        let functions = Functions {
            sample: get(declared.sample),
            sample_lanes: get(declared.sample_lanes),
            regularizer: get(declared.regularizer),
            sample_steps: declared.sample_steps,
            regularizer_steps: declared.regularizer_steps,
            sizes: declared.sizes,
            row_terms: row_terms.map(|(id, sizes)| {
                let ptr = module.get_finalized_function(id);
                // SAFETY: the function was defined with the signature of
                // `RowTermsFn` (`RowTerms::define`).
                (
                    unsafe { std::mem::transmute::<*const u8, RowTermsFn>(ptr) },
                    sizes,
                )
            }),
        };
        Ok(Code {
            functions,
            _module: OwnedModule::new(module),
        })
    }
}

impl CompiledProgram {
    /// Compiles `program`'s stages after validating it and its tangent
    /// model (which is compiled when first used).
    pub fn compile(program: LoopProgram) -> Result<CompiledProgram, JitError> {
        program.validate()?;
        if let Some(t) = &program.tangent {
            t.validate()?;
        }
        let primal = Code::compile(&program, Model::Own)?;
        let tangent = program.tangent.as_deref().map(|t| Tangent {
            primal_prefix: primal_prefix(t),
            code: OnceLock::new(),
        });
        Ok(CompiledProgram {
            program,
            primal,
            tangent,
        })
    }

    /// The program it runs.
    pub fn program(&self) -> &LoopProgram {
        &self.program
    }

    /// The model's own steps.
    pub fn steps(&self) -> CompiledSteps<'_> {
        CompiledSteps {
            functions: &self.primal.functions,
            direction: &[],
            phase: Phase::All,
            prefix: 0,
        }
    }

    /// Whether the tangent model's steps are there: it has one, and it
    /// compiled (compiling it now if it was not yet).
    pub fn has_tangent(&self) -> bool {
        self.tangent_code().is_some()
    }

    fn tangent_code(&self) -> Option<&Code> {
        let (t, program) = (self.tangent.as_ref()?, self.program.tangent.as_deref()?);
        let split = t.primal_prefix.map(|p| p.steps);
        t.code
            .get_or_init(|| Code::compile(program, Model::Tangent { split }).ok())
            .as_ref()
    }

    /// The tangent model's steps of `phase` in the direction `direction`
    /// (laid out like θ); `None` without a tangent model, or for a phase
    /// other than [`Phase::All`] when its steps do not split
    /// ([`CompiledProgram::primal_prefix`] is `None`).
    pub fn tangent_steps<'a>(
        &'a self,
        direction: &'a [f64],
        phase: Phase,
    ) -> Option<CompiledSteps<'a>> {
        let prefix = match phase {
            Phase::All => 0,
            _ => self.primal_prefix()?.steps,
        };
        Some(CompiledSteps {
            functions: &self.tangent_code()?.functions,
            direction,
            phase,
            prefix,
        })
    }

    /// How the tangent model's per-sample steps split into primal steps
    /// (which read no direction) and the rest, when they do.
    pub fn primal_prefix(&self) -> Option<PrimalPrefix> {
        self.tangent.as_ref()?.primal_prefix
    }
}

/// The ids of one program's functions, before finalizing.
struct Declared {
    sample: cranelift_module::FuncId,
    sample_lanes: cranelift_module::FuncId,
    regularizer: cranelift_module::FuncId,
    sample_steps: usize,
    regularizer_steps: usize,
    sizes: Sizes,
}

/// Cranelift's code generator for this machine (its instruction set
/// extensions detected: AVX2 and FMA where the CPU has them), optimizing
/// for speed.
fn native_isa() -> Result<cranelift_codegen::isa::OwnedTargetIsa, JitError> {
    let fail = |e: &dyn std::fmt::Display| JitError::Codegen(e.to_string());
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(|e| fail(&e))?;
    flags
        .set("use_colocated_libcalls", "false")
        .map_err(|e| fail(&e))?;
    flags.set("is_pic", "false").map_err(|e| fail(&e))?;
    cranelift_native::builder()
        .map_err(|e| fail(&e))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| fail(&e))
}

fn new_module() -> Result<JITModule, JitError> {
    let mut builder = JITBuilder::with_isa(native_isa()?, default_libcall_names());
    builder.symbol(emit::CALL_ONE, call_one as *const u8);
    for (k, helper) in lane_helpers_here().into_iter().enumerate() {
        builder.symbol(emit::lanes_symbol(k), helper as *const u8);
    }
    builder.symbol(emit::POW_ONE, pow_one as *const u8);
    builder.symbol(emit::POW_LANES, pow_lanes as *const u8);
    Ok(JITModule::new(builder))
}

fn compile_program(
    module: &mut JITModule,
    helpers: &emit::Helpers,
    program: &LoopProgram,
    name: &str,
    split: Option<usize>,
) -> Result<Declared, JitError> {
    let mut define = |stage: &Stage, what: &str, width: usize, split: Option<usize>| {
        let id = module
            .declare_function(
                &format!("{name}_{what}_{width}"),
                Linkage::Local,
                &emit::stage_signature(module),
            )
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        emit::define_stage(module, helpers, id, program, stage, width, split)?;
        Ok::<_, JitError>(id)
    };
    let sample = define(&program.sample, "sample", 1, split)?;
    let sample_lanes = define(&program.sample, "sample", LANES, split)?;
    let regularizer = define(&program.regularizer, "regularizer", 1, None)?;
    Ok(Declared {
        sample,
        sample_lanes,
        regularizer,
        sample_steps: program.sample.steps.len(),
        regularizer_steps: program.regularizer.steps.len(),
        sizes: Sizes {
            params: program.n_params(),
            data: program.data.len(),
            constants: program.constants.len(),
            sample_scratch: program.sample.scratch,
            regularizer_scratch: program.regularizer.scratch,
            reads_direction: program
                .tensors
                .iter()
                .any(|t| t.source == Source::Direction),
        },
    })
}

/// A compiled program's steps (the model's, or its tangent model's in a
/// direction and a phase), for the shared runtime's passes.
#[derive(Debug, Clone, Copy)]
pub struct CompiledSteps<'a> {
    functions: &'a Functions,
    direction: &'a [f64],
    phase: Phase,
    /// The number of primal steps (for a phase other than `All`).
    prefix: usize,
}

/// One call of a compiled stage: which function, which steps, and the
/// sizes its slices must have.
struct Call {
    f: StageFn,
    range: (i64, i64),
    /// Rows at once (1 or [`LANES`]; 0 for the regularizer, which reads
    /// no row).
    width: usize,
    scratch_len: usize,
    reads_direction: bool,
}

impl CompiledSteps<'_> {
    /// The per-sample function `f` for `width` rows, on the steps of this
    /// phase (the primal steps of a tangent model read no direction).
    fn sample_call(&self, f: StageFn, width: usize) -> Call {
        let n = self.functions.sample_steps;
        let (from, to) = match self.phase {
            Phase::All => (0, n),
            Phase::Primal => (0, self.prefix),
            Phase::Tangent => (self.prefix, n),
        };
        let sizes = &self.functions.sizes;
        Call {
            f,
            range: (from as i64, to as i64),
            width,
            scratch_len: sizes.sample_scratch * width,
            reads_direction: sizes.reads_direction && self.phase != Phase::Primal,
        }
    }

    /// Checks the slices against the program's sizes, then runs the call.
    fn run(
        &self,
        call: Call,
        level: Outputs,
        theta: &[f64],
        rows: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        let z = &self.functions.sizes;
        assert!(
            theta.len() >= z.params
                && rows.len() >= z.data * call.width
                && constants.len() >= z.constants
                && scratch.len() >= call.scratch_len
                && (!call.reads_direction || self.direction.len() >= z.params),
            "a compiled kernel was called with slices shorter than its program's"
        );
        // SAFETY: every access of the code is within the sizes just checked
        // (validated IR: see the crate's documentation); the regularizer
        // (width 0) reads no row.
        unsafe {
            (call.f)(
                level.rank() as i64,
                call.range.0,
                call.range.1,
                theta.as_ptr(),
                rows.as_ptr(),
                constants.as_ptr(),
                self.direction.as_ptr(),
                scratch.as_mut_ptr(),
            )
        }
    }
}

impl Steps for CompiledSteps<'_> {
    #[inline]
    fn sample(
        &self,
        level: Outputs,
        theta: &[f64],
        row: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        let call = self.sample_call(self.functions.sample, 1);
        self.run(call, level, theta, row, constants, scratch);
    }

    #[inline]
    fn regularizer(&self, level: Outputs, theta: &[f64], constants: &[f64], scratch: &mut [f64]) {
        let f = self.functions;
        let call = Call {
            f: f.regularizer,
            range: (0, f.regularizer_steps as i64),
            width: 0,
            scratch_len: f.sizes.regularizer_scratch,
            // Whatever the phase: a tangent model's regularizer reads v.
            reads_direction: f.sizes.reads_direction,
        };
        self.run(call, level, theta, &[], constants, scratch);
    }

    fn lanes(&self) -> usize {
        LANES
    }

    fn writes_row_terms(&self) -> bool {
        self.functions.row_terms.is_some()
    }

    #[inline]
    fn row_terms(&self, scratch: &[f64], row: &[f64], hess: &mut [f64]) -> bool {
        let Some((f, sizes)) = self.functions.row_terms else {
            return false;
        };
        if scratch.len() < sizes.scratch || row.len() < sizes.row || hess.len() < sizes.hess {
            return false;
        }
        // SAFETY: the code reads `scratch` and `row` and writes `hess` only
        // below the lengths just checked (`RowTerms::of`).
        unsafe { f(scratch.as_ptr(), row.as_ptr(), hess.as_mut_ptr()) };
        true
    }

    #[inline]
    fn sample_lanes(
        &self,
        level: Outputs,
        theta: &[f64],
        rows: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        let call = self.sample_call(self.functions.sample_lanes, LANES);
        self.run(call, level, theta, rows, constants, scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::native_isa;
    use cranelift_codegen::control::ControlPlane;
    use cranelift_codegen::ir::types::{F64X2, F64X4, I64};
    use cranelift_codegen::ir::{
        AbiParam, Function, InstBuilder, MemFlagsData, Signature, Type, UserFuncName,
    };
    use cranelift_codegen::{CodegenError, Context};
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    /// `*p = *p + *p` in vectors of type `ty`, compiled for this machine.
    fn add_in_place(ty: Type) -> Result<(), CodegenError> {
        let isa = native_isa().expect("Cranelift supports this machine");
        let mut signature = Signature::new(isa.default_call_conv());
        signature.params.push(AbiParam::new(I64));
        let mut func = Function::with_name_signature(UserFuncName::user(0, 0), signature);
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let p = b.block_params(block)[0];
        let flags = MemFlagsData::trusted();
        let x = b.ins().load(ty, flags, p, 0);
        let sum = b.ins().fadd(x, x);
        b.ins().store(flags, sum, p, 0);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(isa.frontend_config());
        let mut ctx = Context::for_function(func);
        ctx.compile(&*isa, &mut ControlPlane::default())
            .map(|_| ())
            .map_err(|e| e.inner)
    }

    /// Why the run-time lanes are four 128-bit vectors where the
    /// build-time kernels' are two 256-bit ones: Cranelift's x86-64
    /// backend compiles no vector wider than 128 bits, on a CPU with AVX2
    /// too (`Unsupported("Unexpected SSA-value type: f64x4")` from
    /// cranelift-codegen 0.135). The run-time passes of the small
    /// built-ins stay 1.5–1.6× the build-time kernels' for it (issue 34;
    /// *The run-time compiler* in the docs). When this test fails,
    /// Cranelift has gained wider vectors: widen the lanes the emitter
    /// writes (`emit.rs`) and measure the passes again.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn cranelift_compiles_no_vector_wider_than_128_bits() {
        assert!(add_in_place(F64X2).is_ok());
        let wide = add_in_place(F64X4);
        assert!(
            matches!(wide, Err(CodegenError::Unsupported(_))),
            "f64x4 is compiled now: {wide:?}"
        );
    }
}
