//! The [`Kernel`] of every generated loop kernel, written once: a generated
//! `*.loops.rs` file holds only its model — the plan (layouts, gradient and
//! Hessian terms), the steps, and for its Hessian–vector products the
//! tangent model's plan and steps — as an implementation of [`LoopModel`]
//! (and of [`LoopTangent`]); the passes, the products and the
//! linearizations are this one generic implementation over
//! [`runtime::loops`] ([`passes`], from a kernel's [`LoopParts`]), which
//! the run-time compiled kernels ([`crate::RunTimeKernel`]) share.

use crate::linearization::Linearization;
use crate::runtime;
use crate::{At, Kernel};
use hessforge_ir::Outputs;
use hessforge_ir::loop_ir::{LoopProgram, Phase, RowSums, Steps};
use std::marker::PhantomData;

/// Rows the generated steps take at once in a pass (the lanes of
/// `hessforge_ir::lanes::Lanes`); `hessforge-codegen` writes the steps for
/// any width W and the passes run them with W = 1 and W = `LANES`.
pub const LANES: usize = 8;

/// A model's generated half: its sizes and names, its plan and its steps.
pub trait LoopModel: Send + Sync + 'static {
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
    /// The Hessian terms a pass in [`LANES`] lanes sums lane by lane, added
    /// into its lane sums `sums` from `s` and `x` (see
    /// `hessforge_ir::loop_ir::Steps::lane_sums`); false when the model has
    /// none written out (the default) or the lengths are not its own.
    fn lane_sums(s: &[f64], x: &[f64], sums: &mut [f64]) -> bool {
        let _ = (s, x, sums);
        false
    }
    /// Whether the model has its `lane_sums` written out.
    const WRITES_LANE_SUMS: bool = false;
    /// The Hessian terms a pass of fewer than 128 rows adds one row at a
    /// time straight into ∇²L's upper blocks, added into `h` (P × P) from
    /// `s` and `x` (see `hessforge_ir::loop_ir::Steps::row_terms`); false
    /// when the model has none written out (the default) or the lengths
    /// are not its own.
    fn row_terms(s: &[f64], x: &[f64], h: &mut [f64]) -> bool {
        let _ = (s, x, h);
        false
    }
    /// Whether the model has its `row_terms` written out.
    const WRITES_ROW_TERMS: bool = false;
    /// Whether the model has its `short_pass` written out (then a short
    /// pass is evaluated whole, `short_evaluate`).
    const WRITES_SHORT_PASS: bool = false;
    /// A pass of fewer than 128 rows one row at a time at `level`, written
    /// out whole (see `hessforge_ir::loop_ir::Steps::short_pass`): each of
    /// `rows` (data rows of [`LoopModel::N_DATA`] columns) added into `g`
    /// and `h` (cleared by the caller; ∇²L's upper blocks), returning Σ ℓ
    /// and the number of rows; `None`, having added nothing, when the model
    /// has none written out (the default) or `g` or `h` is too short.
    fn short_pass<'r>(
        level: Outputs,
        t: &[f64],
        c: &[f64],
        rows: impl Iterator<Item = &'r [f64]>,
        g: &mut [f64],
        h: &mut [f64],
    ) -> Option<(f64, usize)> {
        let _ = (level, t, c, rows, g, h);
        None
    }
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
    fn sample_lanes(
        &self,
        level: Outputs,
        theta: &[f64],
        rows: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { primal_avx2::<M>(level, theta, rows, constants, scratch) };
        }
        M::sample::<LANES>(level, theta, rows, constants, scratch);
    }
    fn writes_lane_sums(&self) -> bool {
        M::WRITES_LANE_SUMS
    }
    fn writes_row_terms(&self) -> bool {
        M::WRITES_ROW_TERMS
    }
    #[inline]
    fn row_terms(&self, scratch: &[f64], row: &[f64], hess: &mut [f64]) -> bool {
        M::row_terms(scratch, row, hess)
    }
    fn short_pass(
        &self,
        level: Outputs,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> Option<RowSums> {
        written_short_pass::<M>(level, at, grad, hess)
    }
    fn lane_sums(&self, scratch: &[f64], rows: &[f64], sums: &mut [f64]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { lane_sums_avx2::<M>(scratch, rows, sums) };
        }
        M::lane_sums(scratch, rows, sums)
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
    fn sample_lanes(
        &self,
        level: Outputs,
        theta: &[f64],
        rows: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        let (phase, v) = (self.phase, self.v);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { tangent_avx2::<T>(phase, level, theta, rows, constants, v, scratch) };
        }
        T::sample::<LANES>(phase, level, theta, rows, constants, v, scratch);
    }
}

/// The model's steps for [`LANES`] rows, inlined into code compiled for
/// AVX2 (an eight-lane operation is two instructions there, four without).
/// The passes call the steps through `dyn Steps` — one copy of the runtime
/// for every model — and each model's steps are here in both forms; no
/// fused multiply–add in either, so the bits are the same.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn primal_avx2<M: LoopModel>(level: Outputs, t: &[f64], x: &[f64], c: &[f64], s: &mut [f64]) {
    M::sample::<LANES>(level, t, x, c, s);
}

/// The model's lane-summed Hessian terms ([`LoopModel::lane_sums`])
/// compiled for AVX2, as [`primal_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lane_sums_avx2<M: LoopModel>(s: &[f64], x: &[f64], sums: &mut [f64]) -> bool {
    M::lane_sums(s, x, sums)
}

/// The tangent steps' [`primal_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn tangent_avx2<T: LoopTangent>(
    phase: Phase,
    level: Outputs,
    t: &[f64],
    x: &[f64],
    c: &[f64],
    v: &[f64],
    s: &mut [f64],
) {
    T::sample::<LANES>(phase, level, t, x, c, v, s);
}

/// What a loop kernel's passes need: its plan and its steps, and its
/// tangent model's for Hessian–vector products. The generated kernels
/// ([`LoopModel`]) and the run-time compiled ones ([`crate::RunTimeKernel`])
/// provide them; [`passes`] runs them for both `Kernel`s.
pub(crate) trait LoopParts: Sync {
    /// The layouts and the gradient and Hessian terms.
    fn plan(&self) -> &LoopProgram;
    /// The model's steps.
    fn primal(&self) -> impl Steps + Sync + '_;
    /// The tangent model's plan, when there is one.
    fn tangent_plan(&self) -> Option<&LoopProgram>;
    /// The tangent model's steps of `phase` in the direction `v` (called
    /// only when [`LoopParts::tangent_plan`] is there, and for a phase other
    /// than `All` only when [`LoopParts::primal_scratch`] is).
    fn tangent<'a>(&'a self, v: &'a [f64], phase: Phase) -> impl Steps + Sync + 'a;
    /// The scratch entries the tangent model's primal steps write per row.
    fn primal_scratch(&self) -> Option<usize>;
    /// A pass at `level` evaluated whole by code of this model alone, when
    /// it has such code for this pass ([`short_evaluate`]); `None`, having
    /// written nothing, otherwise (the default).
    fn short_evaluate(
        &self,
        level: Outputs,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> Option<f64> {
        let _ = (level, at, grad, hess);
        None
    }
}

/// A generated model's parts.
impl<M: LoopModel> LoopParts for M {
    fn plan(&self) -> &LoopProgram {
        M::plan()
    }
    fn primal(&self) -> impl Steps + Sync + '_ {
        Primal::<M>(PhantomData)
    }
    fn tangent_plan(&self) -> Option<&LoopProgram> {
        M::Tangent::plan()
    }
    fn tangent<'a>(&'a self, v: &'a [f64], phase: Phase) -> impl Steps + Sync + 'a {
        Tangent::<M::Tangent>::new(v, phase)
    }
    fn primal_scratch(&self) -> Option<usize> {
        M::Tangent::PRIMAL_SCRATCH
    }
    #[inline]
    fn short_evaluate(
        &self,
        level: Outputs,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> Option<f64> {
        if M::WRITES_SHORT_PASS {
            short_evaluate::<M>(level, at, grad, hess)
        } else {
            None
        }
    }
}

/// A short pass (fewer than 128 rows, one at a time) of a model with its
/// `short_pass` written out and no regularizer, evaluated whole with the
/// model's sizes as constants: ∇L and ∇²L cleared, the short pass, the
/// mean, the lower triangle mirrored — the shared pass's operations
/// (`LoopProgram::evaluate_with`) in its order, so the same bits, without
/// its dispatch, its sizes read at run time or its regularizer stage. One
/// call with one sample is all fixed cost (a third of it, at P = 17, was
/// the shared code's clearing, finish and mirror). `None`, having written
/// nothing, when the pass is not such a pass: a parallel pass (its chunks
/// are added into cleared outputs, which turns −0 into +0), a pass in
/// lanes or of 128 rows or more, a model with a regularizer, or outputs
/// shorter than the model's. Compiled for AVX2 where the CPU has it, as
/// [`primal_avx2`]: the Hessian terms' additions and the clearing are
/// loops over runs of entries (one call at P = 65 2.05 → 1.80 µs).
fn short_evaluate<M: LoopModel>(
    level: Outputs,
    at: At<'_>,
    grad: &mut [f64],
    hess: &mut [f64],
) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { short_evaluate_avx2::<M>(level, at, grad, hess) };
    }
    short_evaluate_here::<M>(level, at, grad, hess)
}

/// [`short_evaluate`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn short_evaluate_avx2<M: LoopModel>(
    level: Outputs,
    at: At<'_>,
    grad: &mut [f64],
    hess: &mut [f64],
) -> Option<f64> {
    short_evaluate_here::<M>(level, at, grad, hess)
}

/// [`short_evaluate`] for the CPU the code is compiled for.
#[inline(always)]
fn short_evaluate_here<M: LoopModel>(
    level: Outputs,
    at: At<'_>,
    grad: &mut [f64],
    hess: &mut [f64],
) -> Option<f64> {
    let p = M::N_PARAMS;
    let plan = M::plan();
    if M::N_DATA == 0 || at.rows == crate::Rows::Parallel || !plan.regularizer.adds_nothing() {
        return None;
    }
    let n = plan.row_count(at);
    let rank = level.rank();
    if !plan.is_short_pass(plan.pass_lanes(LANES, n), n)
        || (rank >= 1 && grad.len() < p)
        || (rank >= 2 && hess.len() < p * p)
    {
        return None;
    }
    if rank >= 1 {
        grad[..p].fill(0.0);
    }
    let hess = if rank >= 2 {
        &mut hess[..p * p]
    } else {
        &mut [][..]
    };
    // Only the upper triangle: the short pass adds into no other entry,
    // and the mirror overwrites the lower one whole.
    for_upper_rows(p, hess, |row| row.fill(0.0));
    let sums = written_short_pass::<M>(level, at, grad, hess)?;
    let scale = sums.scale();
    if scale != 1.0 {
        if rank >= 1 {
            grad[..p].iter_mut().for_each(|g| *g *= scale);
        }
        for_upper_rows(p, hess, |row| row.iter_mut().for_each(|h| *h *= scale));
    }
    if rank >= 2 {
        if p <= hessforge_ir::loop_ir::ENTRY_BY_ENTRY_PARAMS {
            // Sliced again here, to a constant length: the loops unroll
            // with no bounds check (on `hess`, whose length is one of two,
            // they stayed loops with two checks per entry, a third of one
            // call at P = 17).
            let h = &mut hess[..p * p];
            for i in 0..p {
                for j in i + 1..p {
                    h[j * p + i] = h[i * p + j];
                }
            }
        } else {
            hessforge_ir::loop_ir::mirror_upper(p, hess);
        }
    }
    // The regularizer's empty sum, as the shared finish adds it.
    Some(sums.loss * scale + 0.0)
}

/// The model's written-out short pass ([`LoopModel::short_pass`]) over the
/// rows `at` selects, added into `grad` and `hess`; `None`, having added
/// nothing, for a model without data (no short pass, and rows of no
/// columns) or when the model has none written out.
#[inline(always)]
fn written_short_pass<M: LoopModel>(
    level: Outputs,
    at: At<'_>,
    grad: &mut [f64],
    hess: &mut [f64],
) -> Option<RowSums> {
    if M::N_DATA == 0 {
        return None;
    }
    let (cols, data, t, c) = (M::N_DATA, at.data, at.theta, at.constants);
    let (loss, rows) = match at.rows.selected() {
        Some(rows) => {
            let rows = rows.iter().map(|&r| &data[r * cols..(r + 1) * cols]);
            M::short_pass(level, t, c, rows, grad, hess)?
        }
        None => M::short_pass(level, t, c, data.chunks_exact(cols), grad, hess)?,
    };
    Some(RowSums { loss, rows })
}

/// `each` on the upper triangle of the P × P matrix `h`, row by row (row
/// i from its diagonal on); nothing when `h` is empty.
#[inline(always)]
fn for_upper_rows(p: usize, h: &mut [f64], mut each: impl FnMut(&mut [f64])) {
    if h.len() == p * p {
        for i in 0..p {
            each(&mut h[i * p + i..(i + 1) * p]);
        }
    }
}

/// The passes of a loop kernel from its [`LoopParts`].
pub(crate) mod passes {
    use super::*;

    /// One pass at `level`: whole by the model's own code when it has that
    /// for this pass, else by the shared runtime.
    fn evaluate(
        k: &impl LoopParts,
        level: Outputs,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        match k.short_evaluate(level, at, grad, hess) {
            Some(loss) => loss,
            None => runtime::loops::evaluate(k.plan(), &k.primal(), level, at, grad, hess),
        }
    }
    pub(crate) fn loss(k: &impl LoopParts, at: At<'_>) -> f64 {
        evaluate(k, Outputs::Loss, at, &mut [], &mut [])
    }
    pub(crate) fn loss_grad(k: &impl LoopParts, at: At<'_>, grad: &mut [f64]) -> f64 {
        evaluate(k, Outputs::LossGrad, at, grad, &mut [])
    }
    pub(crate) fn loss_grad_hess(
        k: &impl LoopParts,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        evaluate(k, Outputs::LossGradHess, at, grad, hess)
    }
    /// A loss-and-gradient pass of the tangent model, or the Hessian terms
    /// contracted with v.
    pub(crate) fn hess_vec(k: &impl LoopParts, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        match k.tangent_plan() {
            Some(tangent) => {
                let steps = k.tangent(v, Phase::All);
                runtime::loops::evaluate(tangent, &steps, Outputs::LossGrad, at, out, &mut [])
            }
            None => k.plan().hess_vec_with(&k.primal(), at, v, out),
        }
    }
    /// Serial: a preconditioner's, once per Newton step.
    pub(crate) fn hess_diag(k: &impl LoopParts, at: At<'_>, out: &mut [f64]) -> f64 {
        k.plan().hess_diag_with(&k.primal(), at, out)
    }
    /// The tangent model's primal values, row by row, when its steps split.
    pub(crate) fn linearize(k: &impl LoopParts, at: At<'_>) -> Option<Linearization> {
        let (tangent, prefix) = (k.tangent_plan()?, k.primal_scratch()?);
        runtime::loops::linearize(tangent, &k.tangent(&[], Phase::Primal), prefix, at)
    }
    /// The tangent steps only, on the primal values `linearization` kept.
    pub(crate) fn hess_vec_linearized(
        k: &impl LoopParts,
        linearization: &Linearization,
        at: At<'_>,
        v: &[f64],
        out: &mut [f64],
    ) -> f64 {
        let (Some(tangent), Some(prefix)) = (k.tangent_plan(), k.primal_scratch()) else {
            return hess_vec(k, at, v, out);
        };
        let (steps, whole) = (k.tangent(v, Phase::Tangent), k.tangent(v, Phase::All));
        runtime::loops::hess_vec_linearized(tangent, linearization, &steps, &whole, prefix, at, out)
    }
}

/// The [`Kernel`] methods of a loop kernel that run passes, through
/// [`passes`]; the implementation names the model and its sizes.
macro_rules! loop_kernel_passes {
    () => {
        // The per-sample stage of a pass over no rows is scaled by 0.
        fn regularizer_alone(&self) -> bool {
            true
        }
        fn loss(&self, at: At<'_>) -> f64 {
            passes::loss(self, at)
        }
        fn loss_grad(&self, at: At<'_>, grad: &mut [f64]) -> f64 {
            passes::loss_grad(self, at, grad)
        }
        fn loss_grad_hess(&self, at: At<'_>, grad: &mut [f64], hess: &mut [f64]) -> f64 {
            passes::loss_grad_hess(self, at, grad, hess)
        }
        fn hess_vec(&self, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
            passes::hess_vec(self, at, v, out)
        }
        fn hess_diag(&self, at: At<'_>, out: &mut [f64]) -> f64 {
            passes::hess_diag(self, at, out)
        }
        fn linearize(&self, at: At<'_>) -> Option<Linearization> {
            passes::linearize(self, at)
        }
        fn hess_vec_linearized(
            &self,
            linearization: &Linearization,
            at: At<'_>,
            v: &[f64],
            out: &mut [f64],
        ) -> f64 {
            passes::hess_vec_linearized(self, linearization, at, v, out)
        }
    };
}
pub(crate) use loop_kernel_passes;

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
    loop_kernel_passes!();
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    //! The steps compiled for AVX2 against the same steps compiled for any
    //! x86-64: the passes choose between them by the CPU, so they must give
    //! the same bits.
    use super::*;
    use crate::{
        digits::Digits, linear_regression::LinearRegression,
        logistic_regression::LogisticRegression, mlp_tanh::MlpTanh,
        softmax_regression::SoftmaxRegression,
    };
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Seeded θ, v and `LANES` data rows in lanes, in (−2, 2) (labels and
    /// one-hot columns included: the steps do not check their data).
    fn inputs<M: LoopModel>(seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut draw = |n: usize| (0..n).map(|_| rng.gen_range(-2.0..2.0)).collect::<Vec<_>>();
        (
            draw(M::N_PARAMS),
            draw(M::N_PARAMS),
            draw(M::N_DATA * LANES),
        )
    }

    /// Every bit of two scratch vectors (NaN included) is the same.
    fn assert_same_bits(name: &str, what: &str, portable: &[f64], avx2: &[f64]) {
        for (e, (a, b)) in portable.iter().zip(avx2).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{name}, {what}: entry {e}: {a:e} against {b:e}"
            );
        }
    }

    fn same_bits<M: LoopModel>() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("this CPU has no AVX2: nothing to compare");
            return;
        }
        let c = M::DEFAULT_CONSTANTS;
        for seed in 0..4 {
            let (t, v, x) = inputs::<M>(seed);
            for level in [Outputs::Loss, Outputs::LossGrad, Outputs::LossGradHess] {
                let len = M::plan().sample.scratch * LANES;
                let (mut portable, mut avx2) = (vec![0.0; len], vec![0.0; len]);
                M::sample::<LANES>(level, &t, &x, c, &mut portable);
                // SAFETY: the CPU has AVX2 (checked above).
                unsafe { primal_avx2::<M>(level, &t, &x, c, &mut avx2) };
                assert_same_bits(M::NAME, &format!("{level:?}"), &portable, &avx2);
                let Some(tangent) = <M::Tangent as LoopTangent>::plan() else {
                    continue;
                };
                let len = tangent.sample.scratch * LANES;
                // All steps at once, and the primal steps then the tangent
                // ones (a linearization's order).
                for phases in [&[Phase::All][..], &[Phase::Primal, Phase::Tangent]] {
                    let (mut portable, mut avx2) = (vec![0.0; len], vec![0.0; len]);
                    for &phase in phases {
                        M::Tangent::sample::<LANES>(phase, level, &t, &x, c, &v, &mut portable);
                        // SAFETY: as above.
                        unsafe {
                            tangent_avx2::<M::Tangent>(phase, level, &t, &x, c, &v, &mut avx2)
                        };
                    }
                    let what = format!("tangent, {phases:?}, {level:?}");
                    assert_same_bits(M::NAME, &what, &portable, &avx2);
                }
            }
        }
    }

    #[test]
    fn the_steps_compiled_for_avx2_give_the_bits_of_the_portable_steps() {
        same_bits::<LinearRegression>();
        same_bits::<LogisticRegression>();
        same_bits::<SoftmaxRegression>();
        same_bits::<MlpTanh>();
        same_bits::<Digits>();
    }
}
