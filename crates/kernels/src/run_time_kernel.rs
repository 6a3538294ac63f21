//! Kernels compiled at run time: a model file's loop IR compiled to machine
//! code by `hessforge-jit` (Cranelift) when the file is loaded, and run
//! through the same passes as a generated loop kernel ([`LoopParts`]) —
//! the loss, gradient, Hessian, Hessian–vector products (by the tangent
//! model, with its linearization), the diagonal, parallel passes and
//! mini-batches, with the same bits on every run for a given number of
//! threads.

use crate::linearization::Linearization;
use crate::loop_kernel::{LoopParts, loop_kernel_passes, passes};
use crate::{At, Kernel};
use hessforge_ir::loop_ir::{LoopProgram, Phase, Steps};
pub use hessforge_jit::JitError;
use hessforge_jit::{CompiledProgram, CompiledSteps};

/// A loop program with its steps in machine code.
#[derive(Debug)]
pub struct RunTimeKernel {
    code: CompiledProgram,
}

impl RunTimeKernel {
    /// Validates `program` and its tangent model, and compiles the model
    /// (the tangent model is compiled on the first Hessian–vector product).
    pub fn compile(program: LoopProgram) -> Result<RunTimeKernel, JitError> {
        Ok(RunTimeKernel {
            code: CompiledProgram::compile(program)?,
        })
    }

    /// The program it runs.
    pub fn program(&self) -> &LoopProgram {
        self.code.program()
    }
}

impl LoopParts for RunTimeKernel {
    fn plan(&self) -> &LoopProgram {
        self.program()
    }
    fn primal(&self) -> impl Steps + Sync + '_ {
        self.code.steps()
    }
    /// The tangent model when its code is there (compiled on this first
    /// call); else the products contract the Hessian terms.
    fn tangent_plan(&self) -> Option<&LoopProgram> {
        self.program()
            .tangent
            .as_deref()
            .filter(|_| self.code.has_tangent())
    }
    fn tangent<'a>(&'a self, v: &'a [f64], phase: Phase) -> impl Steps + Sync + 'a {
        let steps: Option<CompiledSteps<'a>> = self.code.tangent_steps(v, phase);
        steps.expect("the tangent steps of a phase the compiled program has")
    }
    fn primal_scratch(&self) -> Option<usize> {
        let prefix = self
            .code
            .primal_prefix()
            .filter(|_| self.code.has_tangent());
        prefix.map(|p| p.scratch)
    }
}

impl Kernel for RunTimeKernel {
    fn name(&self) -> &str {
        &self.program().name
    }
    fn n_params(&self) -> usize {
        self.program().n_params()
    }
    fn n_data(&self) -> usize {
        self.program().data.len()
    }
    fn param_names(&self) -> Vec<&str> {
        self.program().params.iter().map(String::as_str).collect()
    }
    fn default_constants(&self) -> &[f64] {
        &self.program().constant_defaults
    }
    loop_kernel_passes!();
}
