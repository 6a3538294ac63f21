//! The [`Kernel`] of every generated loop kernel, written once: a generated
//! `*.loops.rs` file holds only its model — the plan (layouts, gradient and
//! Hessian terms), the steps, and for its Hessian–vector products the
//! tangent model's plan and steps — as an implementation of [`LoopModel`]
//! (and of [`LoopTangent`]); the passes, the products and the
//! linearizations are this one generic implementation over
//! [`runtime::loops`].

use crate::linearization::Linearization;
use crate::runtime;
use crate::{At, Kernel};
use hessforge_ir::Outputs;
use hessforge_ir::loop_ir::{LoopProgram, Phase, Steps};
use std::marker::PhantomData;

/// Rows the generated steps take at once in a pass (the lanes of
/// `hessforge_ir::lanes::Lanes`); `hessforge-codegen` writes the steps for
/// any width W and the passes run them with W = 1 and W = `LANES`.
pub const LANES: usize = 8;

/// A model's generated half: its sizes and names, its plan and its steps.
pub trait LoopModel: Sync + 'static {
    /// The model's name.
    const NAME: &'static str;
    /// Number of parameters P.
    const N_PARAMS: usize;
    /// Columns per data row.
    const N_DATA: usize;
    /// Number of constants.
    const N_CONSTANTS: usize;
    /// The constants' default values.
    const DEFAULT_CONSTANTS: &'static [f64];
    /// The tangent model of its Hessian–vector products, or `()` when the
    /// products contract the Hessian terms with v.
    type Tangent: LoopTangent;
    /// The layouts and the gradient and Hessian terms (no steps: the
    /// generated functions below run them).
    fn plan() -> &'static LoopProgram;
    /// The per-sample steps needed at `level` for W rows at once, lane r
    /// for row r (`x[j·W + r]` is column j of row r; entry e of a buffer at
    /// `s[e·W + r]`).
    fn sample<const W: usize>(level: Outputs, t: &[f64], x: &[f64], c: &[f64], s: &mut [f64]);
    /// The regularizer's steps needed at `level`, into `s`.
    fn regularizer(level: Outputs, t: &[f64], c: &[f64], s: &mut [f64]);
}

/// A model's tangent model (the forward derivative of its gradient's steps
/// in a direction v, `hessforge_ir::tangent`): its gradient is ∇²L·v.
pub trait LoopTangent: Sync + 'static {
    /// Its plan, or `None` for `()`, the model without one.
    fn plan() -> Option<&'static LoopProgram>;
    /// The scratch entries its primal steps (those that do not read v)
    /// write per row, when its per-sample steps split into primal and
    /// tangent ones: what a linearization keeps.
    const PRIMAL_SCRATCH: Option<usize>;
    /// Its per-sample steps of `phase`, for W rows at once, in the
    /// direction `v`.
    #[allow(clippy::too_many_arguments)]
    fn sample<const W: usize>(
        phase: Phase,
        level: Outputs,
        t: &[f64],
        x: &[f64],
        c: &[f64],
        v: &[f64],
        s: &mut [f64],
    );
    /// Its regularizer's steps in the direction `v`.
    fn regularizer(level: Outputs, t: &[f64], c: &[f64], v: &[f64], s: &mut [f64]);
}

/// No tangent model: products contract the Hessian terms with v.
impl LoopTangent for () {
    fn plan() -> Option<&'static LoopProgram> {
        None
    }
    const PRIMAL_SCRATCH: Option<usize> = None;
    fn sample<const W: usize>(
        _: Phase,
        _: Outputs,
        _: &[f64],
        _: &[f64],
        _: &[f64],
        _: &[f64],
        _: &mut [f64],
    ) {
    }
    fn regularizer(_: Outputs, _: &[f64], _: &[f64], _: &[f64], _: &mut [f64]) {}
}

/// A model's generated steps, for the shared accumulation.
struct Primal<M>(PhantomData<M>);

impl<M: LoopModel> Steps for Primal<M> {
    #[inline]
    fn sample(
        &self,
        level: Outputs,
        theta: &[f64],
        row: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        M::sample::<1>(level, theta, row, constants, scratch);
    }
    #[inline]
    fn regularizer(&self, level: Outputs, theta: &[f64], constants: &[f64], scratch: &mut [f64]) {
        M::regularizer(level, theta, constants, scratch);
    }
    fn lanes(&self) -> usize {
        LANES
    }
    #[inline(always)]
    fn sample_lanes(
        &self,
        level: Outputs,
        theta: &[f64],
        rows: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        M::sample::<LANES>(level, theta, rows, constants, scratch);
    }
}

/// A tangent model's generated steps of one phase in the direction v.
struct Tangent<'v, T> {
    v: &'v [f64],
    phase: Phase,
    model: PhantomData<T>,
}

impl<'v, T: LoopTangent> Tangent<'v, T> {
    fn new(v: &'v [f64], phase: Phase) -> Self {
        Tangent {
            v,
            phase,
            model: PhantomData,
        }
    }
}

impl<T: LoopTangent> Steps for Tangent<'_, T> {
    #[inline]
    fn sample(
        &self,
        level: Outputs,
        theta: &[f64],
        row: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        T::sample::<1>(self.phase, level, theta, row, constants, self.v, scratch);
    }
    #[inline]
    fn regularizer(&self, level: Outputs, theta: &[f64], constants: &[f64], scratch: &mut [f64]) {
        T::regularizer(level, theta, constants, self.v, scratch);
    }
    fn lanes(&self) -> usize {
        LANES
    }
    #[inline(always)]
    fn sample_lanes(
        &self,
        level: Outputs,
        theta: &[f64],
        rows: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        T::sample::<LANES>(self.phase, level, theta, rows, constants, self.v, scratch);
    }
}

impl<M: LoopModel> Kernel for M {
    fn name(&self) -> &str {
        M::NAME
    }
    fn n_params(&self) -> usize {
        M::N_PARAMS
    }
    fn n_data(&self) -> usize {
        M::N_DATA
    }
    fn param_names(&self) -> Vec<&str> {
        runtime::loops::names(&M::plan().params).to_vec()
    }
    fn default_constants(&self) -> &[f64] {
        M::DEFAULT_CONSTANTS
    }
    fn loss(&self, at: At<'_>) -> f64 {
        let steps = Primal::<M>(PhantomData);
        runtime::loops::evaluate(M::plan(), &steps, Outputs::Loss, at, &mut [], &mut [])
    }
    fn loss_grad(&self, at: At<'_>, grad: &mut [f64]) -> f64 {
        let steps = Primal::<M>(PhantomData);
        runtime::loops::evaluate(M::plan(), &steps, Outputs::LossGrad, at, grad, &mut [])
    }
    fn loss_grad_hess(&self, at: At<'_>, grad: &mut [f64], hess: &mut [f64]) -> f64 {
        let steps = Primal::<M>(PhantomData);
        runtime::loops::evaluate(M::plan(), &steps, Outputs::LossGradHess, at, grad, hess)
    }
    /// A loss-and-gradient pass of the tangent model, or the Hessian terms
    /// contracted with v.
    fn hess_vec(&self, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        match M::Tangent::plan() {
            Some(tangent) => {
                let steps = Tangent::<M::Tangent>::new(v, Phase::All);
                runtime::loops::evaluate(tangent, &steps, Outputs::LossGrad, at, out, &mut [])
            }
            None => M::plan().hess_vec_with(&Primal::<M>(PhantomData), at, v, out),
        }
    }
    /// Serial: a preconditioner's, once per Newton step.
    fn hess_diag(&self, at: At<'_>, out: &mut [f64]) -> f64 {
        M::plan().hess_diag_with(&Primal::<M>(PhantomData), at, out)
    }
    /// The tangent model's primal values, row by row, when its steps split.
    fn linearize(&self, at: At<'_>) -> Option<Linearization> {
        let (tangent, prefix) = (M::Tangent::plan()?, M::Tangent::PRIMAL_SCRATCH?);
        let primal = Tangent::<M::Tangent>::new(&[], Phase::Primal);
        runtime::loops::linearize(tangent, &primal, prefix, at)
    }
    /// The tangent steps only, on the primal values `linearization` kept.
    fn hess_vec_linearized(
        &self,
        linearization: &Linearization,
        at: At<'_>,
        v: &[f64],
        out: &mut [f64],
    ) -> f64 {
        let (Some(tangent), Some(prefix)) = (M::Tangent::plan(), M::Tangent::PRIMAL_SCRATCH) else {
            return self.hess_vec(at, v, out);
        };
        let steps = Tangent::<M::Tangent>::new(v, Phase::Tangent);
        let whole = Tangent::<M::Tangent>::new(v, Phase::All);
        runtime::loops::hess_vec_linearized(tangent, linearization, &steps, &whole, prefix, at, out)
    }
}
