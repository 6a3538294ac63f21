//! The scalar track's straight-line programs compiled at run time: what a
//! model file whose parameters are all scalars (the NIST and classic
//! least-squares files, a two-parameter bowl) runs on.
//!
//! [`CompiledStraightLine`] holds a model's validated [`ModelPrograms`]
//! (per level — loss; loss and gradient; loss, gradient and Hessian — a
//! per-row and a θ-only program) and compiles each program, when it has
//! run often enough to repay it ([`TIER_UP_RUNS`]), to one native function
//! `(θ, row, constants, out)` whose instructions are emitted by the same
//! code as a loop step's body on one row. Every
//! operation is the interpreter's — the same additions in the same order,
//! xⁿ by the same repeated squaring, every other function the same call —
//! and the passes are the interpreter's ([`ModelPrograms::evaluate_with`]):
//! the compiled kernel gives the interpreter's bits, which the tests check
//! on every problem file.
//!
//! Safety: as the crate's. Only a validated program is compiled (every
//! operand within θ, the row and the constants of the model's sizes, every
//! register written before it is read, one output per entry of the
//! level); each call checks its slices' lengths before it jumps.

use crate::{JitError, OwnedModule, emit, new_module};
use cranelift_module::{Linkage, Module};
use hessforge_ir::{At, ModelPrograms, Outputs, Part, Program};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A compiled program: `(θ, row, constants, out)`.
type ProgramFn = unsafe extern "C" fn(*const f64, *const f64, *const f64, *mut f64);

/// How many times a program is interpreted before it is compiled: its
/// runs (rows × passes for the per-row program, passes for the θ-only one)
/// in [`CompiledStraightLine::tiered`]. Compiling a program was measured
/// to cost as much as interpreting it 1 600–6 100 times (a model's six
/// programs: 1.2 ms to 1.7 s for 150 to 65 000 instructions; `cargo bench
/// -p hessforge-kernels --bench kernels -- scalar_files`), and to run it
/// 1.1–39× faster: a model without data
/// (the classic problems: one run per pass) is not worth compiling for a
/// fit of a few dozen iterations, a per-row program over 10⁴ rows is at
/// its first pass. Interpreting until the interpretation has cost about
/// what the compilation will is the rent-or-buy rule, at most about twice
/// the better of the two choices made in hindsight.
pub const TIER_UP_RUNS: u64 = 2_000;

/// One program: its runs so far, and its code once compiled (`None`
/// inside when Cranelift failed on it, a bug or an unsupported machine:
/// then it stays interpreted).
struct Tier {
    runs: AtomicU64,
    code: OnceLock<Option<Code>>,
}

/// A program in machine code, with the module that owns the code's memory.
struct Code {
    f: ProgramFn,
    _module: OwnedModule,
}

impl Code {
    fn compile(program: &Program) -> Result<Code, JitError> {
        let fail = |e: &dyn std::fmt::Display| JitError::Codegen(e.to_string());
        let mut module = new_module()?;
        let helpers = emit::Helpers::declare(&mut module)?;
        let signature = emit::straight_line_signature(&module);
        let id = module
            .declare_function("program", Linkage::Local, &signature)
            .map_err(|e| fail(&e))?;
        emit::define_straight_line(&mut module, &helpers, id, program)?;
        module.finalize_definitions().map_err(|e| fail(&e))?;
        let ptr = module.get_finalized_function(id);
        // SAFETY: the function was defined with the signature of
        // `ProgramFn` (`emit::straight_line_signature`).
        let f = unsafe { std::mem::transmute::<*const u8, ProgramFn>(ptr) };
        Ok(Code {
            f,
            _module: OwnedModule::new(module),
        })
    }
}

/// A model's straight-line programs, each compiled to machine code when it
/// has run [`TIER_UP_RUNS`] times (or at once). It owns the programs; the
/// code lives as long as this value.
pub struct CompiledStraightLine {
    programs: ModelPrograms,
    /// Compile a program before the pass that would take its runs to this
    /// many.
    tier_up: u64,
    /// Per level (loss; with the gradient; with the Hessian), the per-row
    /// program and the θ-only one.
    tiers: [[Tier; 2]; 3],
}

impl std::fmt::Debug for CompiledStraightLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledStraightLine")
            .field("programs", &self.programs.name)
            .field("tier_up", &self.tier_up)
            .finish()
    }
}

impl CompiledStraightLine {
    /// Validates `programs` and compiles every one of them now.
    pub fn compile(programs: ModelPrograms) -> Result<CompiledStraightLine, JitError> {
        let compiled = CompiledStraightLine::with_tier_up(programs, 0)?;
        for level in [Outputs::Loss, Outputs::LossGrad, Outputs::LossGradHess] {
            for part in [Part::PerRow, Part::ThetaOnly] {
                let program = compiled.program(level, part);
                let code = Code::compile(program)?;
                let tier = compiled.tier(level, part);
                tier.code.get_or_init(|| Some(code));
            }
        }
        Ok(compiled)
    }

    /// Validates `programs`, which are interpreted until each has run
    /// [`TIER_UP_RUNS`] times and compiled then: what a model file runs on.
    pub fn tiered(programs: ModelPrograms) -> Result<CompiledStraightLine, JitError> {
        CompiledStraightLine::with_tier_up(programs, TIER_UP_RUNS)
    }

    fn with_tier_up(
        programs: ModelPrograms,
        tier_up: u64,
    ) -> Result<CompiledStraightLine, JitError> {
        programs.validate()?;
        let tier = || Tier {
            runs: AtomicU64::new(0),
            code: OnceLock::new(),
        };
        Ok(CompiledStraightLine {
            programs,
            tier_up,
            tiers: std::array::from_fn(|_| [tier(), tier()]),
        })
    }

    /// The programs it runs.
    pub fn programs(&self) -> &ModelPrograms {
        &self.programs
    }

    fn program(&self, level: Outputs, part: Part) -> &Program {
        self.programs.split(level).program(part)
    }

    fn tier(&self, level: Outputs, part: Part) -> &Tier {
        &self.tiers[level.rank() as usize][part as usize]
    }

    /// Whether `level`'s `part` runs in machine code now.
    pub fn is_compiled(&self, level: Outputs, part: Part) -> bool {
        self.tier(level, part)
            .code
            .get()
            .is_some_and(Option::is_some)
    }

    /// The code of `level`'s `part` for a pass that runs it `runs` times:
    /// compiled now if that takes its runs to the tier-up count; `None`
    /// while it is interpreted.
    fn code(&self, level: Outputs, part: Part, runs: u64) -> Option<&Code> {
        let tier = self.tier(level, part);
        if let Some(code) = tier.code.get() {
            return code.as_ref();
        }
        let before = tier.runs.fetch_add(runs, Ordering::Relaxed);
        if before.saturating_add(runs) < self.tier_up {
            return None;
        }
        let program = self.program(level, part);
        tier.code
            .get_or_init(|| Code::compile(program).ok())
            .as_ref()
    }

    /// [`ModelPrograms::evaluate`], each program in machine code when it is
    /// compiled: the same bits.
    ///
    /// # Panics
    /// When `at`'s θ or constants are shorter than the model's, or `out`
    /// is shorter than the level's outputs.
    pub fn evaluate(&self, level: Outputs, at: At<'_>, out: &mut [f64]) {
        let p = &self.programs;
        let (n_params, n_data, n_constants) = (p.params.len(), p.data.len(), p.constants.len());
        let rows = match at.rows.selected() {
            _ if n_data == 0 => 0,
            Some(rows) => rows.len(),
            None => at.data.len() / n_data,
        };
        let codes = [
            self.code(level, Part::PerRow, rows as u64),
            self.code(level, Part::ThetaOnly, 1),
        ];
        let n_out = level.len(n_params);
        let split = p.split(level);
        let mut regs = vec![0.0; split.per_row.n_regs.max(split.theta_only.n_regs) as usize];
        p.evaluate_with(level, at, out, |part, theta, row, constants, out| {
            let Some(code) = codes[part as usize] else {
                let program = self.program(level, part);
                return program.run(theta, row, constants, &mut regs, out);
            };
            let row_len = if part == Part::PerRow { n_data } else { 0 };
            assert!(
                theta.len() >= n_params
                    && row.len() >= row_len
                    && constants.len() >= n_constants
                    && out.len() >= n_out,
                "a compiled straight-line program was called with slices shorter than its \
                 model's"
            );
            // SAFETY: the program was validated for these sizes (its
            // operands within θ, the row and the constants; `n_out`
            // outputs), just checked; the θ-only program reads no row.
            unsafe {
                (code.f)(
                    theta.as_ptr(),
                    row.as_ptr(),
                    constants.as_ptr(),
                    out.as_mut_ptr(),
                )
            }
        });
    }
}
