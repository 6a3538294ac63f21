//! The runtime of the loop IR: a pass over the rows — the interpreter of a
//! model's steps, or the generated code that runs them ([`Steps`]) — and the
//! accumulation of its loss, gradient and Hessian terms (rank-1 terms
//! gathered into matrix products, lanes, the per-thread workspace, the
//! plans of the passes).

use super::*;

/// The plans of a model's passes (which scratch entries hold the loss, the
/// gradient and each Hessian term, and how each term is added), built on a
/// pass's first use and kept, so a call does not list them again. A plan
/// depends only on the model, the stage, the output level, whether the pass
/// is a Hessian–vector product, whether it is shorter than a gathered block
/// of rows, and the lanes. Not part of the model's value: every cache
/// compares equal, a clone starts empty, serde skips it.
#[derive(Default)]
pub struct PlanCache(Box<PlanSlots>);

/// Stage (2) × level (3) × Hessian–vector product (2) × short pass (2) ×
/// lanes 0, 4 or 8 (3).
pub(super) const PLAN_SLOTS: usize = 2 * 3 * 2 * 2 * 3;

pub(super) struct PlanSlots {
    pub(super) plans: [std::sync::OnceLock<Plan>; PLAN_SLOTS],
}

impl Default for PlanSlots {
    fn default() -> PlanSlots {
        PlanSlots {
            plans: std::array::from_fn(|_| std::sync::OnceLock::new()),
        }
    }
}

impl Clone for PlanCache {
    fn clone(&self) -> PlanCache {
        PlanCache::default()
    }
}

impl PartialEq for PlanCache {
    fn eq(&self, _: &PlanCache) -> bool {
        true
    }
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanCache")
    }
}

/// In a pass over fewer than [`ROW_BLOCK`] rows, blocks of at most this
/// many entries take their rank-1 terms row by row (a matrix product's
/// packing costs more than it saves there); otherwise rank-1 terms are
/// gathered [`ROW_BLOCK`] rows at a time into one matrix product.
pub const DIRECT_UPDATE_ENTRIES: usize = 4096;

/// Rows whose rank-1 Hessian terms are gathered before one matrix product.
pub const ROW_BLOCK: usize = 128;

impl LoopProgram {
    /// L(θ) over the selected rows, with ∇L into `grad[..P]` from
    /// [`Outputs::LossGrad`] and ∇²L (row-major P × P) into `hess[..P²]` at
    /// [`Outputs::LossGradHess`]; the steps interpreted.
    pub fn evaluate(&self, level: Outputs, at: At<'_>, grad: &mut [f64], hess: &mut [f64]) -> f64 {
        self.evaluate_with(&Interpreter(self), level, at, grad, hess)
    }

    /// ∇²L(θ)·v into `out[..P]` (and L(θ) as the result), the P × P matrix
    /// never formed: by the model's [`LoopProgram::tangent`] when it has
    /// one (the forward derivative of the gradient's steps), else by
    /// contracting every Hessian term with v.
    pub fn hess_vec(&self, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        match &self.tangent {
            Some(t) => t.evaluate_with(
                &TangentInterpreter {
                    model: t,
                    direction: v,
                },
                Outputs::LossGrad,
                at,
                out,
                &mut [],
            ),
            None => self.hess_vec_terms(at, v, out),
        }
    }

    /// ∇²L(θ)·v by contracting every Hessian term with v (the oracle of the
    /// tangent model's product).
    pub fn hess_vec_terms(&self, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        self.hess_vec_with(&Interpreter(self), at, v, out)
    }

    /// [`LoopProgram::evaluate`] with the steps run by `steps` (generated
    /// code; this model's own steps are not read).
    pub fn evaluate_with(
        &self,
        steps: &dyn Steps,
        level: Outputs,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        self.clear_outputs(level, grad, hess);
        let sums = self.sum_rows_with(steps, level, at, grad, hess);
        self.finish_with(steps, level, at.theta, at.constants, sums, grad, hess)
    }

    /// Zeroes what a pass at `level` writes: ∇L (P) and ∇²L (P × P).
    pub fn clear_outputs(&self, level: Outputs, grad: &mut [f64], hess: &mut [f64]) {
        let p = self.n_params();
        if level.rank() >= 1 {
            grad[..p].fill(0.0);
        }
        if level.rank() >= 2 {
            hess[..p * p].fill(0.0);
        }
    }

    /// Adds the per-sample stage of every selected row into `grad` and
    /// `hess`, not yet averaged, with the Hessian in its upper blocks only
    /// (and only the upper triangle of a diagonal block): the first half of
    /// a pass, which a parallel pass runs once per chunk of rows and sums in
    /// a fixed order. [`LoopProgram::finish_with`] completes it.
    pub fn sum_rows_with(
        &self,
        steps: &dyn Steps,
        level: Outputs,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> RowSums {
        let n = self.row_count(at);
        let lanes = self.pass_lanes(steps.lanes(), n);
        if self.is_short_pass(lanes, n)
            && let Some(sums) = steps.short_pass(level, at, grad, hess)
        {
            return sums;
        }
        with_workspace(|ws| {
            let Workspace {
                scratch,
                gathered,
                lane_sums,
                block,
                spare,
                ..
            } = ws;
            let plan = self.plan(false, level, false, n, lanes);
            gathered.resize(plan.gathered_len, 0.0);
            lane_sums.clear();
            lane_sums.resize(plan.lane_sums_len, 0.0);
            let mut acc = Accumulator::new(self, plan, level, grad, hess, None, gathered);
            acc.lane_sums = lane_sums;
            acc.spare = std::mem::take(spare);
            let rows = match lanes {
                8 => self.rows_in_lanes::<8>(steps, level, at, &mut acc, scratch, block),
                4 => self.rows_in_lanes::<4>(steps, level, at, &mut acc, scratch, block),
                _ if level.rank() >= 2 && n < ROW_BLOCK && steps.writes_row_terms() => {
                    let mut add = |s: &[f64], row: &[f64]| {
                        if steps.row_terms(s, row, acc.hess) {
                            acc.add_row::<true>(s, row);
                        } else {
                            acc.add_row::<false>(s, row);
                        }
                    };
                    self.each_row(steps, level, at, plan, &mut add, scratch)
                }
                _ => self.each_row(steps, level, at, plan, |s, row| acc.add(s, row), scratch),
            };
            acc.flush();
            match lanes {
                8 => acc.sum_lanes::<8>(),
                4 => acc.sum_lanes::<4>(),
                _ => {}
            }
            *spare = std::mem::take(&mut acc.spare);
            RowSums {
                loss: acc.loss,
                rows,
            }
        })
    }

    /// The lanes a pass over `n` rows takes with steps of `steps_lanes`
    /// lanes ([`Steps::lanes`]): 4 or 8, or 0 for one row at a time.
    pub fn pass_lanes(&self, steps_lanes: usize, n: usize) -> usize {
        match steps_lanes {
            w @ (4 | 8) if !self.data.is_empty() && n >= w => w,
            _ => 0,
        }
    }

    /// Whether a pass over `n` rows in `lanes` lanes ([`LoopProgram::pass_lanes`])
    /// is short: one row at a time and fewer than [`ROW_BLOCK`] rows, the
    /// pass [`Steps::short_pass`] may write out whole.
    pub fn is_short_pass(&self, lanes: usize, n: usize) -> bool {
        lanes == 0 && n < ROW_BLOCK
    }

    /// The second half of a pass: the mean of the row sums, the
    /// regularizer (when the model has one), and the Hessian's lower
    /// triangle mirrored from its upper one; returns L(θ).
    #[allow(clippy::too_many_arguments)]
    pub fn finish_with(
        &self,
        steps: &dyn Steps,
        level: Outputs,
        theta: &[f64],
        constants: &[f64],
        sums: RowSums,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        let scale = sums.scale();
        scale_outputs(self.n_params(), level, None, scale, grad, hess);
        // A model without a regularizer skips its stage: its empty sum is
        // 0 (added below, so a −0 loss comes out +0 as before).
        let loss = if self.regularizer.adds_nothing() {
            0.0
        } else {
            with_workspace(|ws| {
                let Workspace {
                    scratch, gathered, ..
                } = ws;
                let plan = self.plan(true, level, false, 1, 0);
                gathered.resize(plan.gathered_len, 0.0);
                run_regularizer(steps, plan, level, theta, constants, scratch);
                let mut acc = Accumulator::new(self, plan, level, grad, hess, None, gathered);
                acc.add(scratch, &[]);
                acc.flush();
                acc.loss
            })
        };
        if level.rank() >= 2 {
            mirror_upper(self.n_params(), hess);
        }
        sums.loss * scale + loss
    }

    /// [`LoopProgram::hess_vec`] with the steps run by `steps`.
    pub fn hess_vec_with(&self, steps: &dyn Steps, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        let p = self.n_params();
        out[..p].fill(0.0);
        let level = Outputs::LossGradHess;
        with_workspace(|ws| {
            let Workspace {
                scratch,
                gathered,
                grad,
                ..
            } = ws;
            // The gradient comes on the way and is not wanted.
            grad.clear();
            grad.resize(p, 0.0);
            let plan = self.plan(false, level, true, self.row_count(at), 0);
            gathered.resize(plan.gathered_len, 0.0);
            let mut acc = Accumulator::new(self, plan, level, grad, out, Some(v), gathered);
            let rows = self.each_row(steps, level, at, plan, |s, row| acc.add(s, row), scratch);
            let sums = RowSums {
                loss: acc.loss,
                rows,
            };
            let scale = sums.scale();
            scale_outputs(p, level, Some(v), scale, grad, out);
            let plan = self.plan(true, level, true, 1, 0);
            run_regularizer(steps, plan, level, at.theta, at.constants, scratch);
            let mut acc = Accumulator::new(self, plan, level, grad, out, Some(v), gathered);
            acc.add(scratch, &[]);
            sums.loss * scale + acc.loss
        })
    }

    /// diag(∇²L) into `out` (and L), with the steps run by `steps`: the
    /// Hessian-level steps row by row, and of each term only the entries on
    /// the diagonal of ∇²L (those of its blocks (T, T) with row = column),
    /// so no block is formed. What a Jacobi preconditioner needs.
    pub fn hess_diag_with(&self, steps: &dyn Steps, at: At<'_>, out: &mut [f64]) -> f64 {
        let p = self.n_params();
        out[..p].fill(0.0);
        let level = Outputs::LossGradHess;
        with_workspace(|ws| {
            let plan = self.plan(false, level, true, self.row_count(at), 0);
            let mut loss = 0.0;
            let rows = self.each_row(
                steps,
                level,
                at,
                plan,
                |scratch, row| {
                    loss += plan.loss.map_or(0.0, |l| scratch[l]);
                    plan.add_diagonal(scratch, row, out);
                },
                &mut ws.scratch,
            );
            let scale = RowSums { loss, rows }.scale();
            out[..p].iter_mut().for_each(|d| *d *= scale);
            let plan = self.plan(true, level, true, 1, 0);
            let scratch = &mut ws.scratch;
            run_regularizer(steps, plan, level, at.theta, at.constants, scratch);
            plan.add_diagonal(scratch, &[], out);
            loss * scale + plan.loss.map_or(0.0, |l| scratch[l])
        })
    }

    /// diag(∇²L) by the model's own steps (see [`LoopProgram::hess_diag_with`]).
    pub fn hess_diag(&self, at: At<'_>, out: &mut [f64]) -> f64 {
        self.hess_diag_with(&Interpreter(self), at, out)
    }

    /// The plan of a pass over `n_rows` rows of the sample stage (or of the
    /// regularizer), built on first use.
    pub(super) fn plan(
        &self,
        regularizer: bool,
        level: Outputs,
        v: bool,
        n_rows: usize,
        lanes: usize,
    ) -> &Plan {
        let short = n_rows < ROW_BLOCK;
        let lane_slot = match lanes {
            4 => 1,
            8 => 2,
            _ => 0,
        };
        let slot =
            (((usize::from(regularizer) * 3 + usize::from(level.rank())) * 2 + usize::from(v)) * 2
                + usize::from(short))
                * 3
                + lane_slot;
        let stage = if regularizer {
            &self.regularizer
        } else {
            &self.sample
        };
        self.plans.0.plans[slot]
            .get_or_init(|| Plan::new(self, stage, level, v, short, [0, 4, 8][lane_slot]))
    }

    /// The number of rows a pass at `at` reads (1 for a model without
    /// data, whose sample stage runs once).
    pub fn row_count(&self, at: At<'_>) -> usize {
        match (at.rows.selected(), self.data.len()) {
            (_, 0) => 1,
            (Some(rows), _) => rows.len(),
            (None, cols) => at.data.len() / cols,
        }
    }

    /// Runs the sample stage on every selected row, with the fills of
    /// `plan`, into `add`; returns the number of rows the mean is over (1
    /// for a model without data, whose stage runs once).
    pub(super) fn each_row(
        &self,
        steps: &dyn Steps,
        level: Outputs,
        at: At<'_>,
        plan: &Plan,
        mut add: impl FnMut(&[f64], &[f64]),
        scratch: &mut Vec<f64>,
    ) -> usize {
        let At {
            theta,
            constants,
            data,
            rows,
        } = at;
        let cols = self.data.len();
        scratch.clear();
        scratch.resize(plan.scratch_len, 0.0);
        plan.fill_constants::<1>(scratch, constants);
        if cols == 0 {
            steps.sample(level, theta, &[], constants, scratch);
            plan.fill::<1>(scratch, &[], constants);
            add(scratch, &[]);
            return 1;
        }
        let mut one = |r: usize| {
            let row = &data[r * cols..(r + 1) * cols];
            steps.sample(level, theta, row, constants, scratch);
            plan.fill::<1>(scratch, row, constants);
            add(scratch, row);
        };
        match rows.selected() {
            Some(rows) => {
                rows.iter().for_each(|&r| one(r));
                rows.len()
            }
            None => {
                let n = data.len() / cols;
                (0..n).for_each(one);
                n
            }
        }
    }

    /// Runs the sample stage W rows at a time through
    /// [`Steps::sample_lanes`] (the last n mod W rows one at a time) into
    /// `acc`; returns the number of rows.
    pub(super) fn rows_in_lanes<const W: usize>(
        &self,
        steps: &dyn Steps,
        level: Outputs,
        at: At<'_>,
        acc: &mut Accumulator<'_>,
        scratch: &mut Vec<f64>,
        block: &mut Vec<f64>,
    ) -> usize {
        let n = self.row_count(at);
        let full = n / W * W;
        scratch.clear();
        scratch.resize(acc.plan.scratch_len * W, 0.0);
        acc.plan.fill_constants::<W>(scratch, at.constants);
        block.clear();
        block.resize(self.data.len() * W, 0.0);
        // Steps that write their lane sums out get a pass of their own, so
        // the others' pass is what it was without them.
        if acc.level >= 2 && steps.writes_lane_sums() {
            lane_pass::<W, true>(self, steps, level, at, full, acc, scratch, block);
        } else {
            lane_pass::<W, false>(self, steps, level, at, full, acc, scratch, block);
        }
        // The rest one row at a time.
        let cols = self.data.len();
        scratch.clear();
        scratch.resize(acc.plan.scratch_len, 0.0);
        acc.plan.fill_constants::<1>(scratch, at.constants);
        for k in full..n {
            let r = at.rows.selected().map_or(k, |rows| rows[k]);
            let row = &at.data[r * cols..(r + 1) * cols];
            steps.sample(level, at.theta, row, at.constants, scratch);
            acc.plan.fill::<1>(scratch, row, at.constants);
            acc.add(scratch, row);
        }
        n
    }

    /// Every step of a stage up to `level`, for one row.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_stage(
        &self,
        stage: &Stage,
        level: Outputs,
        theta: &[f64],
        row: &[f64],
        constants: &[f64],
        direction: &[f64],
        scratch: &mut [f64],
    ) {
        let wants = level.rank();
        let mut regs = Vec::new();
        let mut inputs = Vec::new();
        for step in stage.steps.iter().filter(|s| s.level.rank() <= wants) {
            let out = &self.tensors[step.out];
            let (start, len) = (out.offset, out.len());
            scratch[start..start + len].fill(step.reduction.identity());
            regs.resize(step.body.n_regs as usize, 0.0);
            inputs.resize(step.inputs.len(), 0.0);
            let mut at = vec![0usize; step.loops.len()];
            if step.loops.contains(&0) {
                continue;
            }
            let rank = out.shape.len();
            loop {
                for (slot, load) in inputs.iter_mut().zip(&step.inputs) {
                    let sources = Sources {
                        theta,
                        row,
                        constants,
                        direction,
                    };
                    *slot = self.load(load, &at, sources, scratch);
                }
                let mut value = [0.0];
                step.body.run(&inputs, &[], &[], &mut regs, &mut value);
                let flat = flat_index(&at[..rank], &out.shape);
                let entry = &mut scratch[start + flat];
                *entry = step.reduction.combine(*entry, value[0]);
                if !advance(&mut at, &step.loops) {
                    break;
                }
            }
        }
    }

    pub(super) fn load(
        &self,
        load: &Load,
        at: &[usize],
        sources: Sources<'_>,
        scratch: &[f64],
    ) -> f64 {
        let position = |a: &Axis| match *a {
            Axis::Loop { var, shift } => at[var] + shift,
            Axis::Fixed(p) => p,
        };
        match load {
            Load::Entry { tensor, index } => {
                let t = &self.tensors[*tensor];
                let mut flat = 0;
                for (a, &n) in index.iter().zip(&t.shape) {
                    flat = flat * n + position(a);
                }
                let values = match t.source {
                    Source::Theta => sources.theta,
                    Source::Row => sources.row,
                    Source::Constants => sources.constants,
                    Source::Direction => sources.direction,
                    Source::Scratch => scratch,
                };
                values[t.offset + flat]
            }
            Load::Position(a) => (position(a) + 1) as f64,
            Load::Delta(a, b) => f64::from(u8::from(position(a) == position(b))),
        }
    }
}

/// The inputs an interpreted step reads besides the scratch vector.
#[derive(Clone, Copy)]
pub(super) struct Sources<'a> {
    pub(super) theta: &'a [f64],
    pub(super) row: &'a [f64],
    pub(super) constants: &'a [f64],
    pub(super) direction: &'a [f64],
}

/// Row-major flat index of a multi-index.
/// The regularizer's steps into `scratch`, laid out for `plan` (the
/// stage's buffers, then its fills), with the fills written.
fn run_regularizer(
    steps: &dyn Steps,
    plan: &Plan,
    level: Outputs,
    theta: &[f64],
    constants: &[f64],
    scratch: &mut Vec<f64>,
) {
    scratch.clear();
    scratch.resize(plan.scratch_len, 0.0);
    steps.regularizer(level, theta, constants, scratch);
    plan.fill_constants::<1>(scratch, constants);
    plan.fill::<1>(scratch, &[], constants);
}

pub(super) fn flat_index(at: &[usize], shape: &[usize]) -> usize {
    at.iter().zip(shape).fold(0, |flat, (&i, &n)| flat * n + i)
}

/// The next multi-index (last axis fastest); false after the last.
pub(super) fn advance(at: &mut [usize], lengths: &[usize]) -> bool {
    for k in (0..at.len()).rev() {
        at[k] += 1;
        if at[k] < lengths[k] {
            return true;
        }
        at[k] = 0;
    }
    false
}

/// For every entry of a tensor of `shape` (row-major), its indices on
/// `axes` as one mixed-radix number, appended to `out`: two entries of a
/// δ-pattern product's row and column tensors pair exactly when their keys
/// are equal.
pub(super) fn pair_keys(
    shape: &[usize],
    axes: impl Iterator<Item = usize> + Clone,
    out: &mut Vec<usize>,
) {
    let len: usize = shape.iter().product();
    let strides: Vec<usize> = (0..shape.len())
        .map(|d| shape[d + 1..].iter().product())
        .collect();
    out.extend((0..len).map(|flat| {
        axes.clone()
            .fold(0, |key, a| key * shape[a] + (flat / strides[a]) % shape[a])
    }));
}

/// Every (ρ, γ) with ρ an entry of `row`, γ one of `col`, and the paired
/// axes equal, as flat indices, appended to `out` (row-major in ρ, then γ);
/// `walk` holds the two multi-indices. Run once per pass by the plan, so
/// the rows only read the list.
pub(super) fn paired_entries(
    row: &[usize],
    col: &[usize],
    pairs: &[(usize, usize)],
    walk: &mut Vec<usize>,
    out: &mut Vec<(usize, usize)>,
) {
    if row.contains(&0) || col.contains(&0) {
        return;
    }
    walk.clear();
    walk.resize(row.len() + col.len(), 0);
    let (r, c) = walk.split_at_mut(row.len());
    let paired = |b: usize| pairs.iter().any(|&(_, pb)| pb == b);
    loop {
        // The paired column axes follow ρ; the free ones start at 0.
        c.fill(0);
        for &(a, b) in pairs {
            c[b] = r[a];
        }
        let rf = flat_index(r, row);
        'free: loop {
            out.push((rf, flat_index(c, col)));
            // The next free column index (last free axis fastest).
            for b in (0..col.len()).rev().filter(|&b| !paired(b)) {
                c[b] += 1;
                if c[b] < col[b] {
                    continue 'free;
                }
                c[b] = 0;
            }
            break;
        }
        if !advance(r, row) {
            break;
        }
    }
}

/// ∇L and ∇²L (or ∇²L·v) times `scale` (the mean over rows).
pub(super) fn scale_outputs(
    p: usize,
    level: Outputs,
    v: Option<&[f64]>,
    scale: f64,
    grad: &mut [f64],
    hess: &mut [f64],
) {
    if scale == 1.0 {
        return;
    }
    if level.rank() >= 1 && !grad.is_empty() {
        grad[..p].iter_mut().for_each(|g| *g *= scale);
    }
    if level.rank() >= 2 {
        let n = if v.is_some() { p } else { p * p };
        hess[..n].iter_mut().for_each(|h| *h *= scale);
    }
}

/// The per-sample stage summed over some rows: the first half of a pass
/// ([`LoopProgram::sum_rows_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowSums {
    /// Σ ℓ over the rows.
    pub loss: f64,
    /// The number of rows (1 for a model without data).
    pub rows: usize,
}

impl RowSums {
    /// The factor of the mean: 1/rows (0 for no rows).
    pub fn scale(self) -> f64 {
        match self.rows {
            0 => 0.0,
            // 1/1 without the division's latency on the way to the mean.
            1 => 1.0,
            rows => 1.0 / rows as f64,
        }
    }
}

impl std::ops::AddAssign for RowSums {
    fn add_assign(&mut self, other: RowSums) {
        self.loss += other.loss;
        self.rows += other.rows;
    }
}

/// What a pass needs besides its outputs, kept per thread between passes
/// so that a pass over a fixed-size model allocates nothing once warm.
#[derive(Default)]
pub(super) struct Workspace {
    pub(super) scratch: Vec<f64>,
    /// The gathered rows of every outer-product term.
    pub(super) gathered: Vec<f64>,
    /// The gradient a Hessian–vector product computes on the way.
    pub(super) grad: Vec<f64>,
    /// Per-lane sums of a pass in lanes (see [`Plan::lane_sums_len`]).
    pub(super) lane_sums: Vec<f64>,
    /// W rows, column by column.
    pub(super) block: Vec<f64>,
    /// One lane's u and v of a term added lane by lane.
    pub(super) spare: Vec<f64>,
}

thread_local! {
    static WORKSPACE: std::cell::Cell<Option<Box<Workspace>>> =
        const { std::cell::Cell::new(None) };
}

/// Runs `f` with this thread's workspace (a fresh one if it is in use).
pub(super) fn with_workspace<R>(f: impl FnOnce(&mut Workspace) -> R) -> R {
    let mut ws = WORKSPACE.with(std::cell::Cell::take).unwrap_or_default();
    let result = f(&mut ws);
    WORKSPACE.with(|w| w.set(Some(ws)));
    result
}

/// [`lane_blocks`], compiled for AVX2 where the CPU has it.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn lane_pass<const W: usize, const WRITTEN: bool>(
    m: &LoopProgram,
    steps: &dyn Steps,
    level: Outputs,
    at: At<'_>,
    full: usize,
    acc: &mut Accumulator<'_>,
    scratch: &mut [f64],
    block: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { lane_blocks_avx2::<W, WRITTEN>(m, steps, level, at, full, acc, scratch, block) };
        return;
    }
    lane_blocks::<W, WRITTEN>(m, steps, level, at, full, acc, scratch, block);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// W rows of `cols` columns numbered by position, transposed one value
    /// at a time.
    fn rows_and_naive_block<const W: usize>(cols: usize) -> (Vec<f64>, Vec<f64>) {
        let rows: Vec<f64> = (0..W * cols).map(|i| i as f64 + 0.5).collect();
        let mut block = vec![0.0; W * cols];
        for lane in 0..W {
            for j in 0..cols {
                block[j * W + lane] = rows[lane * cols + j];
            }
        }
        (rows, block)
    }

    fn transposes_like_the_naive_loop<const W: usize>() {
        for cols in 1..=41 {
            let (rows, naive) = rows_and_naive_block::<W>(cols);
            let ahead = rows.clone();
            for ahead in [None, Some(&ahead[..])] {
                let mut block = vec![f64::NAN; W * cols];
                transpose_rows::<W>(&rows, cols, &mut block, ahead);
                assert_eq!(block, naive, "{W} lanes, {cols} columns");
            }
            // The portable squares, whatever the CPU.
            let whole = cols / TILE * TILE;
            let mut block = naive.clone();
            block[..whole * W].fill(f64::NAN);
            for lane0 in (0..W).step_by(TILE) {
                transpose_strip::<W>(strip(&rows, lane0, cols), lane0, whole, &mut block);
            }
            assert_eq!(block, naive, "portable, {W} lanes, {cols} columns");
        }
    }

    #[test]
    fn wide_rows_are_transposed_square_by_square_like_value_by_value() {
        transposes_like_the_naive_loop::<4>();
        transposes_like_the_naive_loop::<8>();
    }

    #[test]
    fn scaled_rows_are_added_in_lane_order_with_the_bits_of_row_by_row() {
        for len in [1, 3, 4, 5, 17, 1001] {
            let x: Vec<Vec<f64>> = (0..8)
                .map(|r| {
                    (0..len)
                        .map(|e| ((r * 31 + e * 7) % 13) as f64 / 7.0 - 0.9)
                        .collect()
                })
                .collect();
            let a: [f64; 8] = std::array::from_fn(|r| 0.1 + r as f64 / 3.0);
            let start: Vec<f64> = (0..len).map(|e| (e as f64).sin()).collect();
            let mut by_rows = start.clone();
            for (r, row) in x.iter().enumerate() {
                for (g, v) in by_rows.iter_mut().zip(row) {
                    *g += a[r] * v;
                }
            }
            let mut strips = start;
            let xs: [&[f64]; 8] = std::array::from_fn(|r| &x[r][..]);
            add_scaled_rows::<8>(&mut strips, &a, &xs);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&strips), bits(&by_rows), "{len} entries");
        }
    }
}
