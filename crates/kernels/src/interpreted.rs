//! The two interpreters of a model derived at run time, as [`Kernel`]s:
//! the straight-line programs of a scalar derivation
//! ([`ModelPrograms`]) and the loop IR of the index form
//! ([`LoopProgram`]); and the straight-line programs compiled at run time
//! ([`CompiledStraightLine`]), which run the interpreter's passes. They
//! run a [`Rows::Parallel`](crate::Rows::Parallel) pass on the calling
//! thread.

use crate::{At, Kernel};
use hessforge_ir::loop_ir::LoopProgram;
use hessforge_ir::{ModelPrograms, Outputs};
use hessforge_jit::CompiledStraightLine;

/// A [`Kernel`] over a model's straight-line programs, evaluated by
/// `evaluate(kernel, level, at, out)` ([`ModelPrograms::evaluate`], or the
/// compiled code's): ∇²L formed for its products and its diagonal (the
/// trait's defaults).
macro_rules! straight_line_kernel {
    ($kernel:ty, $programs:expr, $evaluate:expr) => {
        impl Kernel for $kernel {
            fn name(&self) -> &str {
                &$programs(self).name
            }
            fn n_params(&self) -> usize {
                $programs(self).params.len()
            }
            fn n_data(&self) -> usize {
                $programs(self).data.len()
            }
            fn param_names(&self) -> Vec<&str> {
                $programs(self).params.iter().map(String::as_str).collect()
            }
            fn default_constants(&self) -> &[f64] {
                &$programs(self).constant_defaults
            }
            fn loss(&self, at: At<'_>) -> f64 {
                let mut out = [0.0];
                $evaluate(self, Outputs::Loss, at, &mut out);
                out[0]
            }
            fn loss_grad(&self, at: At<'_>, grad: &mut [f64]) -> f64 {
                let mut out = vec![0.0; Outputs::LossGrad.len(self.n_params())];
                $evaluate(self, Outputs::LossGrad, at, &mut out);
                grad[..out.len() - 1].copy_from_slice(&out[1..]);
                out[0]
            }
            fn loss_grad_hess(&self, at: At<'_>, grad: &mut [f64], hess: &mut [f64]) -> f64 {
                let n = self.n_params();
                let mut out = vec![0.0; Outputs::LossGradHess.len(n)];
                $evaluate(self, Outputs::LossGradHess, at, &mut out);
                grad[..n].copy_from_slice(&out[1..=n]);
                hessforge_ir::unpack_upper(n, &out[1 + n..], hess);
                out[0]
            }
        }
    };
}

/// The programs themselves (for the interpreter's kernel).
fn itself(programs: &ModelPrograms) -> &ModelPrograms {
    programs
}

straight_line_kernel!(ModelPrograms, itself, ModelPrograms::evaluate);

// The straight-line programs compiled at run time: the interpreter's
// passes and bits.
straight_line_kernel!(
    CompiledStraightLine,
    CompiledStraightLine::programs,
    CompiledStraightLine::evaluate
);

/// The loop IR contracts its Hessian terms with v (or runs its tangent
/// model) and adds only the diagonal entries for the diagonal.
impl Kernel for LoopProgram {
    fn name(&self) -> &str {
        &self.name
    }
    fn n_params(&self) -> usize {
        LoopProgram::n_params(self)
    }
    fn n_data(&self) -> usize {
        self.data.len()
    }
    fn param_names(&self) -> Vec<&str> {
        self.params.iter().map(String::as_str).collect()
    }
    fn default_constants(&self) -> &[f64] {
        &self.constant_defaults
    }
    fn loss(&self, at: At<'_>) -> f64 {
        self.evaluate(Outputs::Loss, at, &mut [], &mut [])
    }
    fn loss_grad(&self, at: At<'_>, grad: &mut [f64]) -> f64 {
        self.evaluate(Outputs::LossGrad, at, grad, &mut [])
    }
    fn loss_grad_hess(&self, at: At<'_>, grad: &mut [f64], hess: &mut [f64]) -> f64 {
        self.evaluate(Outputs::LossGradHess, at, grad, hess)
    }
    fn hess_vec(&self, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        LoopProgram::hess_vec(self, at, v, out)
    }
    fn hess_diag(&self, at: At<'_>, out: &mut [f64]) -> f64 {
        LoopProgram::hess_diag(self, at, out)
    }
    // The per-sample stage of a pass over no rows is scaled by 0.
    fn regularizer_alone(&self) -> bool {
        true
    }
}
