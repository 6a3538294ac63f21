//! What runs a model's steps: the [`Steps`] trait, which the interpreter
//! and generated code implement, and the phases of a tangent model's steps.

use super::*;

/// What runs a model's steps: the interpreter ([`LoopProgram::evaluate`]),
/// or the code generated from them (a compiled kernel).
pub trait Steps {
    /// The per-sample stage's steps needed at `level`, for one data row
    /// (empty for a model without data), into `scratch`.
    fn sample(
        &self,
        level: Outputs,
        theta: &[f64],
        row: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    );
    /// The regularizer's steps needed at `level`, into `scratch`.
    fn regularizer(&self, level: Outputs, theta: &[f64], constants: &[f64], scratch: &mut [f64]);
    /// The number of rows [`Steps::sample_lanes`] takes at once (4 or 8),
    /// or 0 (the default) when the steps take one row at a time.
    fn lanes(&self) -> usize {
        0
    }
    /// The per-sample stage's steps for W = [`Steps::lanes`] rows at once,
    /// lane r for row r: `rows[j·W + r]` is column j of row r, and every
    /// buffer entry e is at `scratch[e·W + r]`.
    fn sample_lanes(
        &self,
        level: Outputs,
        theta: &[f64],
        rows: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        let _ = (level, theta, rows, constants, scratch);
        unreachable!("sample_lanes of steps that take one row at a time");
    }
    /// After [`Steps::sample_lanes`] at [`Outputs::LossGradHess`] (and the
    /// plan's fills): the Hessian terms the pass sums lane by lane
    /// ([`LoopProgram::lane_sum_terms`]) added into the pass's lane sums
    /// `sums`, from `scratch` and `rows` (W rows in lanes), by code written
    /// for this model with literal offsets, in the shared sweep's order of
    /// additions. Returns false, and adds nothing, when the steps have no
    /// such code (the default) or the slices are not the lengths it was
    /// written for; the shared sweep adds the terms then.
    fn lane_sums(&self, scratch: &[f64], rows: &[f64], sums: &mut [f64]) -> bool {
        let _ = (scratch, rows, sums);
        false
    }
    /// Whether [`Steps::lane_sums`] is written out for these steps (false,
    /// the default: the pass does not ask it).
    fn writes_lane_sums(&self) -> bool {
        false
    }
    /// After [`Steps::sample`] of one row at [`Outputs::LossGradHess`] in a
    /// pass of fewer than [`ROW_BLOCK`] rows (and the plan's fills): the
    /// Hessian terms that pass adds straight into ∇²L
    /// ([`LoopProgram::row_terms`]) added into `hess` (P × P, upper
    /// blocks), from `scratch` and `row`, by code written for this model
    /// with literal offsets in the shared code's order. Returns false, and
    /// adds nothing, when the slices are not the lengths it was written for.
    fn row_terms(&self, scratch: &[f64], row: &[f64], hess: &mut [f64]) -> bool {
        let _ = (scratch, row, hess);
        false
    }
    /// Whether [`Steps::row_terms`] is written out for these steps (false,
    /// the default: the pass does not ask it).
    fn writes_row_terms(&self) -> bool {
        false
    }
    /// The first half of a pass of fewer than [`ROW_BLOCK`] rows one row at
    /// a time ([`LoopProgram::sum_rows_with`]) at `level`, whole, by code
    /// written for this model ([`LoopProgram::short_pass`]): every selected
    /// row's steps, fills, loss, gradient and Hessian terms (upper blocks)
    /// added into `grad` and `hess` (cleared by the caller) in the shared
    /// code's order, so the same bits. Returns `None`, having added nothing,
    /// when the steps have no such code (the default) or the outputs are
    /// shorter than the model's; the shared code runs the pass then.
    fn short_pass(
        &self,
        level: Outputs,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> Option<RowSums> {
        let _ = (level, at, grad, hess);
        None
    }
}

/// Which part of a tangent model's per-sample steps a call runs
/// ([`crate::tangent::primal_prefix`]): every step; only the primal steps
/// (those that do not read the direction v), which write the first
/// entries of the scratch; or only the rest, reading the primal values
/// from a scratch where an earlier primal call left them. Products
/// ∇²L(θ)·v for many v at one θ run the primal steps once per row and the
/// rest once per product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every step.
    All,
    /// The primal steps only.
    Primal,
    /// The tangent steps only, the primal values already in the scratch.
    Tangent,
}

/// The interpreter of a model's own steps (what [`LoopProgram::evaluate`]
/// runs), one row at a time.
#[derive(Debug, Clone, Copy)]
pub struct Interpreter<'a>(pub &'a LoopProgram);

impl Steps for Interpreter<'_> {
    fn sample(
        &self,
        level: Outputs,
        theta: &[f64],
        row: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        let m = self.0;
        m.run_stage(&m.sample, level, theta, row, constants, &[], scratch);
    }
    fn regularizer(&self, level: Outputs, theta: &[f64], constants: &[f64], scratch: &mut [f64]) {
        let m = self.0;
        m.run_stage(&m.regularizer, level, theta, &[], constants, &[], scratch);
    }
}

/// The interpreter of a [`crate::tangent::tangent_model`]'s steps in the
/// direction `direction` (laid out like θ).
#[derive(Debug, Clone, Copy)]
pub struct TangentInterpreter<'a> {
    /// The tangent model.
    pub model: &'a LoopProgram,
    /// v.
    pub direction: &'a [f64],
}

impl Steps for TangentInterpreter<'_> {
    fn sample(
        &self,
        level: Outputs,
        theta: &[f64],
        row: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        let m = self.model;
        m.run_stage(
            &m.sample,
            level,
            theta,
            row,
            constants,
            self.direction,
            scratch,
        );
    }
    fn regularizer(&self, level: Outputs, theta: &[f64], constants: &[f64], scratch: &mut [f64]) {
        let m = self.model;
        let v = self.direction;
        m.run_stage(&m.regularizer, level, theta, &[], constants, v, scratch);
    }
}
