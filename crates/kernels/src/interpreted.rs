//! The two interpreters of a model derived at run time, as [`Kernel`]s:
//! the straight-line programs of a scalar derivation
//! ([`ModelPrograms`]) and the loop IR of the index form
//! ([`LoopProgram`]). They run a [`Rows::Parallel`](crate::Rows::Parallel)
//! pass on the calling thread.

use crate::{At, Kernel};
use hessforge_ir::loop_ir::LoopProgram;
use hessforge_ir::{ModelPrograms, Outputs};

/// Run the programs at `level` into a fresh output vector.
fn outputs(programs: &ModelPrograms, level: Outputs, at: At<'_>) -> Vec<f64> {
    let mut out = vec![0.0; level.len(at.theta.len())];
    programs.evaluate(level, at, &mut out);
    out
}

/// The scalar programs form ∇²L for its products and its diagonal (the
/// trait's defaults).
impl Kernel for ModelPrograms {
    fn name(&self) -> &str {
        &self.name
    }
    fn n_params(&self) -> usize {
        self.params.len()
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
        outputs(self, Outputs::Loss, at)[0]
    }
    fn loss_grad(&self, at: At<'_>, grad: &mut [f64]) -> f64 {
        let out = outputs(self, Outputs::LossGrad, at);
        grad[..out.len() - 1].copy_from_slice(&out[1..]);
        out[0]
    }
    fn loss_grad_hess(&self, at: At<'_>, grad: &mut [f64], hess: &mut [f64]) -> f64 {
        let n = self.params.len();
        let out = outputs(self, Outputs::LossGradHess, at);
        grad[..n].copy_from_slice(&out[1..=n]);
        hessforge_ir::unpack_upper(n, &out[1 + n..], hess);
        out[0]
    }
}

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
