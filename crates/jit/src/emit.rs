//! One stage of a loop program as a Cranelift function: its steps in level
//! order with a check of the called level before each higher one (a
//! tangent model's primal steps and the rest as two segments, each run when
//! the called range covers it; a stage out of level order one guarded step
//! at a time), each step's loop nest with literal trip counts, the body's
//! straight-line program over f64 values — `width` rows at once as `f64x2`
//! pairs, lane r for row r —, what a step stores at a fixed entry kept as a
//! value for the steps after it, and the functions of the derivation
//! language called in the runtime (`FUNCTIONS`' values, the same as the
//! interpreter's and, on lanes, the generated code's).

use crate::JitError;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, F64X2, I32, I64, I64X2};
use cranelift_codegen::ir::{
    AbiParam, FuncRef, InstBuilder, MemFlagsData, Signature, StackSlot, StackSlotData,
    StackSlotKind, Type, Value,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Linkage, Module};
use hessforge_ir::loop_ir::{
    Axis, Load, LoopProgram, Reduction, Source, Stage, Step, TensorLayout,
};
use hessforge_ir::{Func, Instr, Operand, Program};
use std::collections::HashMap;

/// The runtime's helpers, by their symbol names.
pub(crate) const CALL_ONE: &str = "hessforge_jit_call_one";
pub(crate) const POW_ONE: &str = "hessforge_jit_pow_one";
pub(crate) const POW_LANES: &str = "hessforge_jit_pow_lanes";

/// The symbol of the lane helper of `FUNCTIONS[k]`.
pub(crate) fn lanes_symbol(k: usize) -> String {
    format!("hessforge_jit_lanes_{}", hessforge_ir::FUNCTIONS[k].name)
}

/// The helpers declared in a module.
pub(crate) struct Helpers {
    call_one: FuncId,
    /// One per function, by its place in `FUNCTIONS`.
    lanes: Vec<FuncId>,
    pow_one: FuncId,
    pow_lanes: FuncId,
}

pub(crate) fn codegen(e: impl std::fmt::Display) -> JitError {
    JitError::Codegen(e.to_string())
}

impl Helpers {
    pub(crate) fn declare(module: &mut JITModule) -> Result<Helpers, JitError> {
        let ptr = module.target_config().pointer_type();
        let sig = |params: &[Type], returns: &[Type]| {
            let mut s = module.make_signature();
            s.params.extend(params.iter().map(|&t| AbiParam::new(t)));
            s.returns.extend(returns.iter().map(|&t| AbiParam::new(t)));
            s
        };
        let call_one = sig(&[I32, F64], &[F64]);
        let lanes = sig(&[ptr], &[]);
        let pow_one = sig(&[F64, F64], &[F64]);
        let pow_lanes = sig(&[ptr], &[]);
        let mut import = |name: &str, s: &Signature| {
            module
                .declare_function(name, Linkage::Import, s)
                .map_err(codegen)
        };
        Ok(Helpers {
            call_one: import(CALL_ONE, &call_one)?,
            lanes: (0..hessforge_ir::FUNCTIONS.len())
                .map(|k| import(&lanes_symbol(k), &lanes))
                .collect::<Result<_, _>>()?,
            pow_one: import(POW_ONE, &pow_one)?,
            pow_lanes: import(POW_LANES, &pow_lanes)?,
        })
    }
}

/// `(level, first, end, θ, rows, constants, direction, scratch)`.
pub(crate) fn stage_signature(module: &JITModule) -> Signature {
    let ptr = module.target_config().pointer_type();
    let mut s = module.make_signature();
    s.params.extend([I64, I64, I64].map(AbiParam::new));
    s.params.extend([ptr; 5].map(AbiParam::new));
    s
}

/// Defines function `id` as `stage`'s steps for `width` rows at once:
/// with `split` = k (a tangent model's primal prefix), two segments, steps
/// `..k` and `k..`, each run whole when the called range covers it. A
/// segment whose steps are in level order is written as the generated
/// code's stage is: its steps in order with a check of the level before
/// each higher one, and what a step stores at a fixed entry kept as a value
/// that later steps read instead of the scratch ([`Emitter::segment`]).
pub(crate) fn define_stage(
    module: &mut JITModule,
    helpers: &Helpers,
    id: FuncId,
    program: &LoopProgram,
    stage: &Stage,
    width: usize,
    split: Option<usize>,
) -> Result<(), JitError> {
    let mut ctx = module.make_context();
    ctx.func.signature = stage_signature(module);
    let mut fctx = FunctionBuilderContext::new();
    let (mut e, p) = Emitter::new(
        module,
        helpers,
        &mut ctx,
        &mut fctx,
        &program.tensors,
        width,
    );
    (e.theta, e.rows, e.constants, e.direction, e.scratch) = (p[3], p[4], p[5], p[6], p[7]);
    let n = stage.steps.len();
    // (first step, end) of each segment.
    let segments = match split {
        Some(s) if s > 0 && s < n => vec![(0, s), (s, n)],
        _ => vec![(0, n)],
    };
    let (level, first, end) = (p[0], p[1], p[2]);
    for (start, stop) in segments {
        let steps = &stage.steps[start..stop];
        if steps.is_sorted_by_key(|s| s.level.rank()) {
            e.segment(start, steps, level, first, end)?;
        } else {
            for (k, step) in steps.iter().enumerate() {
                e.guarded_step((start + k) as i64, step, level, first, end)?;
            }
        }
    }
    e.finish(module);
    define(module, id, &mut ctx)
}

/// Defines function `id` as the function built in `ctx` (with
/// `HESSFORGE_JIT_DISASM` set, its machine code printed to standard error).
pub(crate) fn define(
    module: &mut JITModule,
    id: FuncId,
    ctx: &mut cranelift_codegen::Context,
) -> Result<(), JitError> {
    let disasm = std::env::var_os("HESSFORGE_JIT_DISASM").is_some();
    ctx.set_disasm(disasm);
    module.define_function(id, ctx).map_err(codegen)?;
    if disasm && let Some(v) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
        eprintln!("=== {id:?}\n{v}");
    }
    module.clear_context(ctx);
    Ok(())
}

/// `(θ, row, constants, out)`: a straight-line program's function.
pub(crate) fn straight_line_signature(module: &JITModule) -> Signature {
    let ptr = module.target_config().pointer_type();
    let mut s = module.make_signature();
    s.params.extend([ptr; 4].map(AbiParam::new));
    s
}

/// Defines function `id` as the straight-line `program` on one row: each
/// parameter, data entry and constant it reads loaded once, its
/// instructions as a loop step's body (the same operations), its outputs
/// stored in order.
pub(crate) fn define_straight_line(
    module: &mut JITModule,
    helpers: &Helpers,
    id: FuncId,
    program: &Program,
) -> Result<(), JitError> {
    let mut ctx = module.make_context();
    ctx.func.signature = straight_line_signature(module);
    let mut fctx = FunctionBuilderContext::new();
    let (mut e, p) = Emitter::new(module, helpers, &mut ctx, &mut fctx, &[], 1);
    (e.theta, e.rows, e.constants) = (p[0], p[1], p[2]);
    // The body reads its inputs as `Param(k)`: the k-th distinct entry
    // of θ, the row or the constants the program reads, in order.
    let mut slots: HashMap<(u8, u32), u32> = HashMap::new();
    let mut inputs: Vec<Lanes> = Vec::new();
    let mut input = |e: &mut Emitter, op: &mut Operand| {
        let (source, key) = match *op {
            Operand::Param(i) => (Source::Theta, (0, i)),
            Operand::Data(i) => (Source::Row, (1, i)),
            Operand::Constant(i) => (Source::Constants, (2, i)),
            Operand::Literal(_) | Operand::Reg(_) => return,
        };
        let k = *slots.entry(key).or_insert_with(|| {
            let addr = e.address(source, None, key.1 as usize);
            inputs.push(e.load(source, addr));
            inputs.len() as u32 - 1
        });
        *op = Operand::Param(k);
    };
    let mut body = program.clone();
    for ins in &mut body.instructions {
        for op in ins.operands_mut() {
            input(&mut e, op);
        }
    }
    for op in &mut body.outputs {
        input(&mut e, op);
    }
    let mut regs: Vec<Option<Lanes>> = vec![None; body.n_regs as usize];
    for ins in &body.instructions {
        let value = e.instruction(ins, &inputs, &regs)?;
        regs[ins.dst() as usize] = Some(value);
    }
    for (k, op) in body.outputs.iter().enumerate() {
        let value = e.operand(op, &inputs, &regs)?;
        e.b.ins()
            .store(scalar_flags(), value[0], p[3], (k * 8) as i32);
    }
    e.finish(module);
    define(module, id, &mut ctx)
}

/// The most instructions a step's loops from one depth inwards may take
/// when they are written out without a loop (small models: the addresses
/// become constants, as in the generated Rust after LLVM's unrolling).
const UNROLL_WORK: usize = 256;

/// Whether the loops of `step` from `depth` inwards are written out.
fn unrolled(step: &Step, depth: usize) -> bool {
    let per_iteration = step.body.instructions.len() + step.inputs.len() + 1;
    let iterations = step.loops[depth..]
        .iter()
        .try_fold(1usize, |a, &n| a.checked_mul(n));
    iterations
        .and_then(|i| i.checked_mul(per_iteration))
        .is_some_and(|work| work <= UNROLL_WORK)
}

/// A value for `width` rows: one f64, or `width / 2` f64x2 pairs.
type Lanes = Vec<Value>;

struct Emitter<'a, 'f> {
    b: FunctionBuilder<'f>,
    tensors: &'a [TensorLayout],
    width: usize,
    chunks: usize,
    ty: Type,
    theta: Value,
    rows: Value,
    constants: Value,
    direction: Value,
    scratch: Value,
    call_one: FuncRef,
    lanes: Vec<FuncRef>,
    pow_one: FuncRef,
    pow_lanes: FuncRef,
    slot: StackSlot,
    /// Within one body: the value each negation negates (by its first
    /// chunk), and e^{−|x|} and ln(1 + e^{−|x|}) by the value they were
    /// made from — σ(±x) and softplus(±x) share one exponential and one
    /// logarithm, as in the generated code.
    negated: HashMap<Value, Lanes>,
    exp_neg_abs: HashMap<Value, Lanes>,
    ln_1p: HashMap<Value, Lanes>,
    /// Within a segment: what a step stored at a fixed entry of the
    /// scratch outside every loop, which later steps read without a load.
    /// So the steps' values flow from one to the next as in the generated
    /// code, and Cranelift's value numbering merges the work they repeat
    /// (h·h in several steps of a tanh network; the loads of θ and the rows
    /// are merged by Cranelift itself, see [`read_only`]).
    stored: HashMap<usize, Lanes>,
    /// The value of each loop variable whose loop is written out.
    unrolled: Vec<(Variable, usize)>,
    /// How many loops (not written out) the code being emitted is inside.
    loop_depth: usize,
}

/// Vector loads and stores: in range and never trapping, aligned to an f64
/// only.
fn vector_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// `flags` for a load of memory the code does not write: it may move, and
/// two of the same entry are one value (Cranelift places it where it is
/// first used).
fn read_only(flags: MemFlagsData) -> MemFlagsData {
    flags.with_readonly().with_can_move()
}

fn scalar_flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

impl<'a, 'f> Emitter<'a, 'f> {
    /// An emitter into `ctx`'s function (whose signature is set), at the
    /// start of its entry block, with the entry block's parameters; the
    /// pointers it reads through start as null constants (the caller sets
    /// those its signature passes).
    fn new(
        module: &mut JITModule,
        helpers: &Helpers,
        ctx: &'f mut cranelift_codegen::Context,
        fctx: &'f mut FunctionBuilderContext,
        tensors: &'a [TensorLayout],
        width: usize,
    ) -> (Emitter<'a, 'f>, Vec<Value>) {
        let refs = [helpers.call_one, helpers.pow_one, helpers.pow_lanes]
            .map(|h| module.declare_func_in_func(h, &mut ctx.func));
        let lanes = helpers
            .lanes
            .iter()
            .map(|&h| module.declare_func_in_func(h, &mut ctx.func))
            .collect();
        let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let p: Vec<Value> = b.block_params(entry).to_vec();
        let slot = b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (2 * width * 8) as u32,
            4,
        ));
        let null = b.ins().iconst(I64, 0);
        let e = Emitter {
            b,
            tensors,
            width,
            chunks: if width == 1 { 1 } else { width / 2 },
            ty: if width == 1 { F64 } else { F64X2 },
            theta: null,
            rows: null,
            constants: null,
            direction: null,
            scratch: null,
            call_one: refs[0],
            lanes,
            pow_one: refs[1],
            pow_lanes: refs[2],
            slot,
            negated: HashMap::new(),
            exp_neg_abs: HashMap::new(),
            ln_1p: HashMap::new(),
            stored: HashMap::new(),
            unrolled: Vec::new(),
            loop_depth: 0,
        };
        (e, p)
    }

    /// Returns: the function is complete.
    fn finish(mut self, module: &JITModule) {
        self.b.ins().return_(&[]);
        self.b.seal_all_blocks();
        self.b.finalize(module.isa().frontend_config());
    }

    /// Steps `start..start + steps.len()`, in level order, when the called
    /// range covers them all: each step in turn, and before the first step
    /// of a higher level a jump past the segment when the called level is
    /// lower. Every step's code is dominated by the code of the steps before
    /// it, so their stored values are read from [`Emitter::stored`].
    fn segment(
        &mut self,
        start: usize,
        steps: &[Step],
        level: Value,
        first: Value,
        end: Value,
    ) -> Result<(), JitError> {
        let covered = {
            let b = &mut self.b;
            let from = b
                .ins()
                .icmp_imm_s(IntCC::SignedLessThanOrEqual, first, start as i64);
            let to = b.ins().icmp_imm_s(
                IntCC::SignedGreaterThanOrEqual,
                end,
                (start + steps.len()) as i64,
            );
            b.ins().band(from, to)
        };
        let (body, done) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(covered, body, &[], done, &[]);
        self.b.switch_to_block(body);
        self.stored.clear();
        let mut rank = 0;
        for step in steps {
            if step.level.rank() > rank {
                rank = step.level.rank();
                let wanted = self.b.ins().icmp_imm_s(
                    IntCC::SignedGreaterThanOrEqual,
                    level,
                    i64::from(rank),
                );
                let next = self.b.create_block();
                self.b.ins().brif(wanted, next, &[], done, &[]);
                self.b.switch_to_block(next);
            }
            self.step(step)?;
        }
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        // What the segment computed does not dominate what follows it.
        self.stored.clear();
        Ok(())
    }

    /// The step when `first ≤ k < end` and `level ≥` its level.
    fn guarded_step(
        &mut self,
        k: i64,
        step: &Step,
        level: Value,
        first: Value,
        end: Value,
    ) -> Result<(), JitError> {
        let ins = |b: &mut FunctionBuilder| {
            let after_first = b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, first, k);
            let before_end = b.ins().icmp_imm_s(IntCC::SignedGreaterThan, end, k);
            let wanted = b.ins().icmp_imm_s(
                IntCC::SignedGreaterThanOrEqual,
                level,
                step.level.rank() as i64,
            );
            let both = b.ins().band(after_first, before_end);
            b.ins().band(both, wanted)
        };
        let run = ins(&mut self.b);
        let (body, next) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(run, body, &[], next, &[]);
        self.b.switch_to_block(body);
        self.stored.clear();
        self.step(step)?;
        self.b.ins().jump(next, &[]);
        self.b.switch_to_block(next);
        self.stored.clear();
        Ok(())
    }

    /// `out[i…] = Σ body` (or the maximum): the output loops, then (with a
    /// reduction) the reduced loops around the body, in the interpreter's
    /// order.
    fn step(&mut self, step: &Step) -> Result<(), JitError> {
        let out = &self.tensors[step.out];
        let rank = out.shape.len();
        let entries = out.offset..out.offset + out.len();
        self.stored.retain(|e, _| !entries.contains(e));
        if step.loops.contains(&0) {
            // An empty loop: the buffer is zero.
            let zero = self.splat(0.0);
            for e in entries {
                let addr = self.address(Source::Scratch, None, e);
                self.store(&zero, addr);
                self.keep(e, &zero);
            }
            return Ok(());
        }
        let vars: Vec<Variable> = (0..step.loops.len())
            .map(|_| self.b.declare_var(I64))
            .collect();
        self.nest(step, &vars, 0, rank)
    }

    fn nest(
        &mut self,
        step: &Step,
        vars: &[Variable],
        depth: usize,
        rank: usize,
    ) -> Result<(), JitError> {
        if depth < rank {
            let n = step.loops[depth];
            let unroll = unrolled(step, depth);
            return self.counted(vars[depth], n, unroll, |e| {
                e.nest(step, vars, depth + 1, rank)
            });
        }
        let value = if step.loops.len() > rank {
            let sum: Vec<Variable> = (0..self.chunks)
                .map(|_| self.b.declare_var(self.ty))
                .collect();
            let zero = self.splat(step.reduction.identity());
            for (v, z) in sum.iter().zip(zero) {
                self.b.def_var(*v, z);
            }
            self.summed(step, vars, &sum, rank)?;
            sum.iter().map(|v| self.b.use_var(*v)).collect()
        } else {
            self.body(step, vars)?
        };
        let out = &self.tensors[step.out];
        let each = Axis::each_loop(rank);
        let fixed = self.fixed_entry(&each, &out.shape, vars);
        let index = self.flat_index(&each, &out.shape, vars);
        let addr = self.address(Source::Scratch, Some(index.1), out.offset + index.0);
        self.store(&value, addr);
        if let Some(e) = fixed {
            self.keep(out.offset + e, &value);
        }
        Ok(())
    }

    /// Remembers `value` as stored at scratch entry `entry` when the code
    /// being emitted is outside every loop (so it dominates what follows in
    /// the segment).
    fn keep(&mut self, entry: usize, value: &[Value]) {
        if self.loop_depth == 0 {
            self.stored.insert(entry, value.to_vec());
        }
    }

    /// The entry of `index` in a tensor of `shape` when it is the same on
    /// every iteration (each loop variable it reads written out).
    fn fixed_entry(&self, index: &[Axis], shape: &[usize], vars: &[Variable]) -> Option<usize> {
        let mut flat = 0;
        for (axis, &n) in index.iter().zip(shape) {
            let position = match *axis {
                Axis::Loop { var, shift } => {
                    let (_, i) = self.unrolled.iter().find(|(v, _)| *v == vars[var])?;
                    i + shift
                }
                Axis::Fixed(p) => p,
            };
            flat = flat * n + position;
        }
        Some(flat)
    }

    /// The summed loops from `depth`, adding each iteration's value to `sum`.
    fn summed(
        &mut self,
        step: &Step,
        vars: &[Variable],
        sum: &[Variable],
        depth: usize,
    ) -> Result<(), JitError> {
        if depth == step.loops.len() {
            let value = self.body(step, vars)?;
            let acc: Lanes = sum.iter().map(|v| self.b.use_var(*v)).collect();
            let combined = match step.reduction {
                Reduction::Sum => self.each(&acc, &value, |b, p, q| b.ins().fadd(p, q)),
                Reduction::Max => self.max(&acc, &value),
            };
            for (v, x) in sum.iter().zip(combined) {
                self.b.def_var(*v, x);
            }
            return Ok(());
        }
        let n = step.loops[depth];
        let unroll = unrolled(step, depth);
        self.counted(vars[depth], n, unroll, |e| {
            e.summed(step, vars, sum, depth + 1)
        })
    }

    /// `for var in 0..n { inner }`: a loop, or `inner` written out once per
    /// value of `var` (a constant, which the addresses fold) when `unroll`.
    fn counted(
        &mut self,
        var: Variable,
        n: usize,
        unroll: bool,
        mut inner: impl FnMut(&mut Self) -> Result<(), JitError>,
    ) -> Result<(), JitError> {
        if n == 1 || unroll {
            for i in 0..n {
                self.unrolled.push((var, i));
                let i = self.b.ins().iconst(I64, i as i64);
                self.b.def_var(var, i);
                let done = inner(self);
                self.unrolled.pop();
                done?;
            }
            return Ok(());
        }
        let zero = self.b.ins().iconst(I64, 0);
        self.b.def_var(var, zero);
        let (body, exit) = (self.b.create_block(), self.b.create_block());
        self.b.ins().jump(body, &[]);
        self.b.switch_to_block(body);
        self.loop_depth += 1;
        let done = inner(self);
        self.loop_depth -= 1;
        done?;
        let i = self.b.use_var(var);
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.def_var(var, next);
        let more = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThan, next, n as i64);
        self.b.ins().brif(more, body, &[], exit, &[]);
        self.b.switch_to_block(exit);
        Ok(())
    }

    /// The entry of `index` in a tensor of `shape`: its fixed part and the
    /// loop-dependent part (an i64 value), row-major.
    fn flat_index(&mut self, index: &[Axis], shape: &[usize], vars: &[Variable]) -> (usize, Value) {
        let mut fixed = 0;
        let mut varying = self.b.ins().iconst(I64, 0);
        let mut stride = 1;
        for (axis, &n) in index.iter().zip(shape).rev() {
            match *axis {
                Axis::Loop { var, shift } => {
                    fixed += shift * stride;
                    let i = self.b.use_var(vars[var]);
                    let scaled = self.b.ins().imul_imm_s(i, stride as i64);
                    varying = self.b.ins().iadd(varying, scaled);
                }
                Axis::Fixed(p) => fixed += p * stride,
            }
            stride *= n;
        }
        (fixed, varying)
    }

    /// The address of entry `fixed + varying` of `source`.
    fn address(&mut self, source: Source, varying: Option<Value>, fixed: usize) -> Value {
        let (base, per_entry) = match source {
            Source::Theta => (self.theta, 8),
            Source::Constants => (self.constants, 8),
            Source::Direction => (self.direction, 8),
            Source::Row => (self.rows, 8 * self.width),
            Source::Scratch => (self.scratch, 8 * self.width),
        };
        let offset = self.b.ins().iconst(I64, (fixed * per_entry) as i64);
        let mut at = self.b.ins().iadd(base, offset);
        if let Some(v) = varying {
            let bytes = self.b.ins().imul_imm_s(v, per_entry as i64);
            at = self.b.ins().iadd(at, bytes);
        }
        at
    }

    /// The value at `addr` of a source with one value per row, or one
    /// value for every row.
    fn load(&mut self, source: Source, addr: Value) -> Lanes {
        // Only the scratch is written while the code runs.
        let flags = |f: MemFlagsData| match source {
            Source::Scratch => f,
            _ => read_only(f),
        };
        let per_row = matches!(source, Source::Row | Source::Scratch);
        if per_row && self.width > 1 {
            (0..self.chunks)
                .map(|c| {
                    self.b
                        .ins()
                        .load(F64X2, flags(vector_flags()), addr, (c * 16) as i32)
                })
                .collect()
        } else {
            let x = self.b.ins().load(F64, flags(scalar_flags()), addr, 0);
            self.broadcast(x)
        }
    }

    fn store(&mut self, value: &[Value], addr: Value) {
        let flags = if self.width > 1 {
            vector_flags()
        } else {
            scalar_flags()
        };
        for (c, v) in value.iter().enumerate() {
            self.b.ins().store(flags, *v, addr, (c * 16) as i32);
        }
    }

    fn broadcast(&mut self, x: Value) -> Lanes {
        if self.width == 1 {
            return vec![x];
        }
        let v = self.b.ins().splat(F64X2, x);
        vec![v; self.chunks]
    }

    fn splat(&mut self, c: f64) -> Lanes {
        let x = self.b.ins().f64const(c);
        self.broadcast(x)
    }

    /// An axis' 0-based position as an i64 value.
    fn position(&mut self, axis: &Axis, vars: &[Variable]) -> Value {
        match *axis {
            Axis::Loop { var, shift } => {
                let i = self.b.use_var(vars[var]);
                self.b.ins().iadd_imm_s(i, shift as i64)
            }
            Axis::Fixed(p) => self.b.ins().iconst(I64, p as i64),
        }
    }

    fn input(&mut self, load: &Load, vars: &[Variable]) -> Lanes {
        match load {
            Load::Entry { tensor, index } => {
                let t = &self.tensors[*tensor];
                if let Some(e) = self.fixed_entry(index, &t.shape, vars) {
                    let entry = t.offset + e;
                    if let Some(value) = self.stored.get(&entry)
                        && t.source == Source::Scratch
                    {
                        return value.clone();
                    }
                    let addr = self.address(t.source, None, entry);
                    return self.load(t.source, addr);
                }
                let (fixed, varying) = self.flat_index(index, &t.shape, vars);
                let addr = self.address(t.source, Some(varying), t.offset + fixed);
                self.load(t.source, addr)
            }
            Load::Position(a) => {
                let i = self.position(a, vars);
                let one_based = self.b.ins().iadd_imm_s(i, 1);
                let x = self.b.ins().fcvt_from_sint(F64, one_based);
                self.broadcast(x)
            }
            Load::Delta(a, b) => {
                let (i, j) = (self.position(a, vars), self.position(b, vars));
                let equal = self.b.ins().icmp(IntCC::Equal, i, j);
                let one = self.b.ins().f64const(1.0);
                let zero = self.b.ins().f64const(0.0);
                let x = self.b.ins().select(equal, one, zero);
                self.broadcast(x)
            }
        }
    }

    /// One iteration's value: the body's program on the step's loads.
    fn body(&mut self, step: &Step, vars: &[Variable]) -> Result<Lanes, JitError> {
        self.negated.clear();
        self.exp_neg_abs.clear();
        self.ln_1p.clear();
        let inputs: Vec<Lanes> = step.inputs.iter().map(|l| self.input(l, vars)).collect();
        let mut regs: Vec<Option<Lanes>> = vec![None; step.body.n_regs as usize];
        for ins in &step.body.instructions {
            let value = self.instruction(ins, &inputs, &regs)?;
            regs[ins.dst() as usize] = Some(value);
        }
        let out = step
            .body
            .outputs
            .first()
            .ok_or_else(|| JitError::Codegen("a step without an output".into()))?;
        self.operand(out, &inputs, &regs)
    }

    fn operand(
        &mut self,
        op: &Operand,
        inputs: &[Lanes],
        regs: &[Option<Lanes>],
    ) -> Result<Lanes, JitError> {
        let missing = || JitError::Codegen(format!("operand {op:?} of a step is not defined"));
        match *op {
            Operand::Param(k) => inputs.get(k as usize).cloned().ok_or_else(missing),
            Operand::Reg(r) => regs.get(r as usize).cloned().flatten().ok_or_else(missing),
            Operand::Literal(c) => Ok(self.splat(c)),
            Operand::Data(_) | Operand::Constant(_) => Err(missing()),
        }
    }

    /// `op` chunk by chunk.
    fn each(
        &mut self,
        a: &[Value],
        b: &[Value],
        op: fn(&mut FunctionBuilder, Value, Value) -> Value,
    ) -> Lanes {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| op(&mut self.b, x, y))
            .collect()
    }

    fn instruction(
        &mut self,
        ins: &Instr,
        inputs: &[Lanes],
        regs: &[Option<Lanes>],
    ) -> Result<Lanes, JitError> {
        let get = |e: &mut Self, op: &Operand| e.operand(op, inputs, regs);
        Ok(match ins {
            Instr::Add { args, .. } | Instr::Mul { args, .. } => {
                let add = matches!(ins, Instr::Add { .. });
                let mut acc = match args.first() {
                    Some(a) => get(self, a)?,
                    None => self.splat(if add { 0.0 } else { 1.0 }),
                };
                for a in &args[1.min(args.len())..] {
                    let x = get(self, a)?;
                    acc = if add {
                        self.each(&acc, &x, |b, p, q| b.ins().fadd(p, q))
                    } else {
                        self.each(&acc, &x, |b, p, q| b.ins().fmul(p, q))
                    };
                }
                // x · (−1) and (−1) · x negate x.
                if let (false, [a, b]) = (add, args.as_slice()) {
                    let negated = match (a, b) {
                        (Operand::Literal(m), x) | (x, Operand::Literal(m)) if *m == -1.0 => {
                            Some(get(self, x)?)
                        }
                        _ => None,
                    };
                    if let Some(x) = negated {
                        self.negated.insert(acc[0], x);
                    }
                }
                acc
            }
            Instr::Neg { arg, .. } => {
                let x = get(self, arg)?;
                let negative: Lanes = x.iter().map(|&v| self.b.ins().fneg(v)).collect();
                self.negated.insert(negative[0], x);
                negative
            }
            Instr::Call {
                func: func @ (Func::Sigmoid | Func::Softplus),
                arg,
                ..
            } if self.width > 1 => {
                let x = get(self, arg)?;
                self.sigmoid_or_softplus(*func, x)
            }
            Instr::Div { num, den, .. } => {
                let (n, d) = (get(self, num)?, get(self, den)?);
                self.each(&n, &d, |b, p, q| b.ins().fdiv(p, q))
            }
            Instr::Max { left, right, .. } => {
                let (l, r) = (get(self, left)?, get(self, right)?);
                self.max(&l, &r)
            }
            Instr::Copy { src, .. } => get(self, src)?,
            Instr::Powi { base, exp, .. } => {
                let x = get(self, base)?;
                self.powi(x, *exp)
            }
            Instr::Powf { base, exp, .. } => {
                let (x, y) = (get(self, base)?, get(self, exp)?);
                self.powf(x, y)
            }
            Instr::Call { func, arg, .. } => {
                let x = get(self, arg)?;
                self.call(*func, x)
            }
        })
    }

    /// xⁿ by repeated squaring, 1/x^|n| for negative n (the lanes' powi).
    fn powi(&mut self, x: Lanes, n: i32) -> Lanes {
        let mut base = x;
        let mut e = n.unsigned_abs();
        let mut acc: Option<Lanes> = None;
        while e > 0 {
            if e & 1 == 1 {
                acc = Some(match acc {
                    None => base.clone(),
                    Some(a) => self.each(&a, &base, |b, p, q| b.ins().fmul(p, q)),
                });
            }
            e >>= 1;
            if e > 0 {
                base = self.each(&base, &base, |b, p, q| b.ins().fmul(p, q));
            }
        }
        let acc = match acc {
            Some(a) => a,
            None => return self.splat(1.0),
        };
        if n < 0 {
            let one = self.splat(1.0);
            self.each(&one, &acc, |b, p, q| b.ins().fdiv(p, q))
        } else {
            acc
        }
    }

    /// σ(x) or softplus(x) on lanes from e = e^{−|x|}, shared by ±x (one
    /// exponential), and softplus's l = ln(1 + e) (one logarithm): the same
    /// bits as the lanes' `sigmoid` and `softplus` (`sigmoid_with`,
    /// `softplus_with`).
    fn sigmoid_or_softplus(&mut self, func: Func, x: Lanes) -> Lanes {
        let base = self
            .negated
            .get(&x[0])
            .cloned()
            .unwrap_or_else(|| x.clone());
        let e = match self.exp_neg_abs.get(&base[0]) {
            Some(e) => e.clone(),
            None => {
                let minus_abs: Lanes = base
                    .iter()
                    .map(|&v| {
                        let a = self.b.ins().fabs(v);
                        self.b.ins().fneg(a)
                    })
                    .collect();
                let e = self.call(Func::Exp, minus_abs);
                self.exp_neg_abs.insert(base[0], e.clone());
                e
            }
        };
        let zero = self.splat(0.0);
        let one = self.splat(1.0);
        if func == Func::Sigmoid {
            // select(x ≥ 0, 1, e) / (1 + e)
            let top = self.select(FloatCC::GreaterThanOrEqual, &x, &zero, &one, &e);
            let den = self.each(&one, &e, |b, p, q| b.ins().fadd(p, q));
            return self.each(&top, &den, |b, p, q| b.ins().fdiv(p, q));
        }
        let l = match self.ln_1p.get(&e[0]) {
            Some(l) => l.clone(),
            None => {
                let l = self.call(Func::Log1p, e.clone());
                self.ln_1p.insert(e[0], l.clone());
                l
            }
        };
        // select(x > 0, x, 0) + l
        let positive = self.select(FloatCC::GreaterThan, &x, &zero, &x, &zero);
        self.each(&positive, &l, |b, p, q| b.ins().fadd(p, q))
    }

    /// `f64::max` of each pair: a NaN operand gives the other (Cranelift's
    /// fmax would give NaN), so compare and select.
    fn max(&mut self, l: &[Value], r: &[Value]) -> Lanes {
        // r where l < r or l is NaN, then l where r is NaN.
        let larger = self.select(FloatCC::UnorderedOrLessThan, l, r, r, l);
        self.select(FloatCC::Unordered, r, r, l, &larger)
    }

    /// `a cc b ? yes : no`, chunk by chunk.
    fn select(
        &mut self,
        cc: FloatCC,
        a: &[Value],
        b: &[Value],
        yes: &[Value],
        no: &[Value],
    ) -> Lanes {
        (0..a.len())
            .map(|c| {
                let mask = self.b.ins().fcmp(cc, a[c], b[c]);
                if self.width == 1 {
                    // One row: a scalar comparison and a plain select.
                    return self.b.ins().select(mask, yes[c], no[c]);
                }
                debug_assert_eq!(self.b.func.dfg.value_type(mask), I64X2);
                let mask = self.b.ins().bitcast(F64X2, MemFlagsData::new(), mask);
                self.b.ins().bitselect(mask, yes[c], no[c])
            })
            .collect()
    }

    /// `func` of `x`: √ and |·| on lanes as one instruction each (the
    /// lanes' bits), every other function a call of the runtime's
    /// `FUNCTIONS[func]` (on lanes its `eval_lanes`, compiled for AVX2:
    /// written into the code instead, bit for bit, e^x, ln and tanh made
    /// compilation 6–20 ms longer and the passes no faster — Cranelift's
    /// vectors are 128 bits wide and its allocator spills the polynomials'
    /// constants).
    fn call(&mut self, func: Func, x: Lanes) -> Lanes {
        if self.width > 1 && matches!(func, Func::Sqrt | Func::Abs) {
            let b = &mut self.b;
            return x
                .iter()
                .map(|&v| match func {
                    Func::Sqrt => b.ins().sqrt(v),
                    _ => b.ins().fabs(v),
                })
                .collect();
        }
        if self.width == 1 {
            let id = self.b.ins().iconst(I32, func as i64);
            let call = self.b.ins().call(self.call_one, &[id, x[0]]);
            return vec![self.b.inst_results(call)[0]];
        }
        self.spill(&x, 0);
        let addr = self.b.ins().stack_addr(I64, self.slot, 0);
        self.b.ins().call(self.lanes[func as usize], &[addr]);
        self.reload(0)
    }

    fn powf(&mut self, x: Lanes, y: Lanes) -> Lanes {
        if self.width == 1 {
            let call = self.b.ins().call(self.pow_one, &[x[0], y[0]]);
            return vec![self.b.inst_results(call)[0]];
        }
        self.spill(&x, 0);
        self.spill(&y, self.width * 8);
        let addr = self.b.ins().stack_addr(I64, self.slot, 0);
        self.b.ins().call(self.pow_lanes, &[addr]);
        self.reload(0)
    }

    fn spill(&mut self, x: &[Value], at: usize) {
        for (c, v) in x.iter().enumerate() {
            self.b
                .ins()
                .stack_store(I64, *v, self.slot, (at + c * 16) as i32);
        }
    }

    fn reload(&mut self, at: usize) -> Lanes {
        (0..self.chunks)
            .map(|c| {
                self.b
                    .ins()
                    .stack_load(I64, F64X2, self.slot, (at + c * 16) as i32)
            })
            .collect()
    }
}
