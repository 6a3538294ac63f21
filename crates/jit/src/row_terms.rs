//! A short pass's Hessian terms as a Cranelift function, entry by entry:
//! what a generated kernel's `row_terms` does for the run-time compiled
//! kernels of small models (P ≤ [`ENTRY_BY_ENTRY_PARAMS`]). After one row's
//! steps, each upper entry of ∇²L that a term adds into is loaded once, its
//! terms' products (`u·v`, or `u` of a dense block) added left to right in
//! the shared code's order — the bits of one `+=` per term, as the shared
//! code adds them —, and stored once. Without it the shared code walks the
//! plan's term list for every row: three quarters of one call at P = 5.

use crate::JitError;
use crate::emit::{codegen, define};
use cranelift_codegen::ir::types::F64;
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Linkage, Module};
use hessforge_ir::loop_ir::{ENTRY_BY_ENTRY_PARAMS, LoopProgram, RowTermAddition};
use std::collections::BTreeMap;

/// `(scratch, row, ∇²L)`: the compiled Hessian terms of one row.
pub(crate) type RowTermsFn = unsafe extern "C" fn(*const f64, *const f64, *mut f64);

/// A model's Hessian terms of one row, by the entry of ∇²L they add into,
/// and the lengths the slices of a call must have.
pub(crate) struct RowTerms {
    entries: BTreeMap<usize, Vec<RowTermAddition>>,
    pub(crate) sizes: RowTermsSizes,
}

/// The entries a call reads or writes: past the last one of each slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowTermsSizes {
    pub(crate) scratch: usize,
    pub(crate) row: usize,
    pub(crate) hess: usize,
}

impl RowTerms {
    /// `program`'s Hessian terms of a short pass ([`LoopProgram::row_terms`])
    /// by entry, or `None` when it has none or more than
    /// [`ENTRY_BY_ENTRY_PARAMS`] parameters (the shared code adds them).
    pub(crate) fn of(program: &LoopProgram) -> Option<RowTerms> {
        let p = program.n_params();
        let terms = program.row_terms();
        if p > ENTRY_BY_ENTRY_PARAMS || terms.is_empty() {
            return None;
        }
        let mut entries: BTreeMap<usize, Vec<RowTermAddition>> = BTreeMap::new();
        let mut sizes = RowTermsSizes {
            scratch: 0,
            row: 0,
            hess: p * p,
        };
        for a in terms.iter().flat_map(|t| t.additions(p)) {
            for (in_row, at) in std::iter::once(a.u).chain(a.v) {
                let end = if in_row {
                    &mut sizes.row
                } else {
                    &mut sizes.scratch
                };
                *end = (*end).max(at + 1);
            }
            entries.entry(a.entry).or_default().push(a);
        }
        // Every offset an i32 of bytes.
        let largest = sizes.scratch.max(sizes.row).max(sizes.hess);
        (largest <= i32::MAX as usize / 8).then_some(RowTerms { entries, sizes })
    }

    /// Declares and defines the function in `module`, named `name`.
    pub(crate) fn define(&self, module: &mut JITModule, name: &str) -> Result<FuncId, JitError> {
        let ptr = module.target_config().pointer_type();
        let mut ctx = module.make_context();
        ctx.func
            .signature
            .params
            .extend([ptr; 3].map(AbiParam::new));
        let id = module
            .declare_function(name, Linkage::Local, &ctx.func.signature)
            .map_err(codegen)?;
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        b.seal_block(block);
        let &[scratch, row, hess] = b.block_params(block) else {
            unreachable!("three parameters");
        };
        // In range (the caller checks the lengths) and aligned; the scratch
        // and the row are only read, so a repeated load is one value.
        let flags = MemFlagsData::trusted();
        let read = flags.with_readonly().with_can_move();
        let offset = |at: usize| (at * 8) as i32;
        let load = |b: &mut FunctionBuilder, (in_row, at): (bool, usize)| -> Value {
            let base = if in_row { row } else { scratch };
            b.ins().load(F64, read, base, offset(at))
        };
        for (&entry, additions) in &self.entries {
            let mut sum = b.ins().load(F64, flags, hess, offset(entry));
            for a in additions {
                let u = load(&mut b, a.u);
                let term = match a.v {
                    Some(v) => {
                        let v = load(&mut b, v);
                        b.ins().fmul(u, v)
                    }
                    None => u,
                };
                sum = b.ins().fadd(sum, term);
            }
            b.ins().store(flags, sum, hess, offset(entry));
        }
        b.ins().return_(&[]);
        b.finalize(module.isa().frontend_config());
        define(module, id, &mut ctx)?;
        Ok(id)
    }
}
