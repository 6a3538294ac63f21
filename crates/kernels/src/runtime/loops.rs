//! The hand-written half of the kernels in index form: the model's plan
//! (layouts, gradient and Hessian terms) completed with its scalar names,
//! and the passes, which run the generated steps through the accumulation
//! of [`hessforge_ir::loop_ir`] (rank-1 terms gathered into matrix products,
//! Hessian–vector products that never form the Hessian).
//!
//! A pass over [`Rows::Parallel`] sums fixed chunks of
//! [`crate::runtime::PARALLEL_CHUNK_ROWS`] rows on rayon's threads and adds
//! them in order, a few chunks at a time (so that at most
//! [`CHUNKS_AT_ONCE`] partial Hessians are held): the same bits on every
//! run, whatever the number of threads.
//!
//! Products ∇²L(θ)·v at one θ can share the tangent model's primal values
//! ([`linearize`], [`hess_vec_linearized`]; see [`crate::linearization`]).

use crate::LoopModel;
use crate::linearization::{Linearization, MAX_BYTES};
use crate::runtime::PARALLEL_CHUNK_ROWS;
use hessforge_ir::lanes::Lanes;
use hessforge_ir::loop_ir::{
    Factor, GradientTerm, HessianTerm, LoopProgram, OuterGradient, RowSums, Source, Stage, Steps,
    TensorLayout,
};
use hessforge_ir::{At, Outputs, Rows};
use rayon::prelude::*;
use std::cell::{Cell, RefCell};
use std::sync::{Mutex, PoisonError};

/// Chunks of a parallel pass summed before they are added in order.
pub const CHUNKS_AT_ONCE: usize = 8;

/// The scalar ids of the tensors with this source, in their order: `w_3`,
/// `W_2_1`, `b` (the derivation files' convention).
fn scalar_ids(tensors: &[TensorLayout], source: Source) -> Vec<String> {
    let mut of: Vec<&TensorLayout> = tensors.iter().filter(|t| t.source == source).collect();
    of.sort_by_key(|t| t.offset);
    let mut ids = Vec::new();
    for t in of {
        match t.shape.as_slice() {
            [] => ids.push(t.name.clone()),
            [n] => ids.extend((1..=*n).map(|i| format!("{}_{i}", t.name))),
            [r, c] => ids.extend(
                (1..=*r).flat_map(|i| (1..=*c).map(move |j| format!("{}_{i}_{j}", t.name))),
            ),
            _ => ids.extend((1..=t.len()).map(|i| format!("{}_{i}", t.name))),
        }
    }
    ids
}

/// A tensor's layout (for generated code).
pub fn tensor(name: &str, source: Source, offset: usize, shape: &[usize]) -> TensorLayout {
    TensorLayout::new(name, source, offset, shape)
}

/// A stage's outputs (for generated code; its steps are generated
/// functions, so the list is empty).
pub fn stage(
    scratch: usize,
    loss: Option<usize>,
    gradient: Vec<GradientTerm>,
    hessian: Vec<HessianTerm>,
) -> Stage {
    Stage {
        scratch,
        steps: Vec::new(),
        loss,
        gradient,
        hessian,
    }
}

/// ∂/∂ of the entries of parameter tensor `param`, in buffer `value`.
pub fn gradient(param: usize, value: usize) -> GradientTerm {
    GradientTerm {
        param,
        value,
        outer: None,
    }
}

/// ∂/∂ of parameter tensor `param` as the outer product `scale · u ⊗ v`
/// (see [`OuterGradient`]).
pub fn outer_gradient(param: usize, value: usize, u: usize, v: usize, scale: f64) -> GradientTerm {
    GradientTerm {
        param,
        value,
        outer: Some(OuterGradient { u, v, scale }),
    }
}

/// The Hessian block (row, col) held whole in buffer `value`.
pub fn dense(row: usize, col: usize, value: usize) -> HessianTerm {
    HessianTerm::Dense { row, col, value }
}

/// The Hessian block (row, col) as `weight · u[ρ] · v[γ]` on the Kronecker
/// deltas `pairs` (`None`: ones).
pub fn product(
    row: usize,
    col: usize,
    pairs: &[(usize, usize)],
    weight: Factor,
    u: Factor,
    v: Factor,
) -> HessianTerm {
    HessianTerm::Product {
        row,
        col,
        pairs: pairs.to_vec(),
        weight,
        u,
        v,
    }
}

/// The plan of the generated model `M` (given by its value, a unit
/// struct): its layouts and terms, its name and default constants from
/// `M`, the scalar names from the layouts, no steps (the generated code
/// runs them).
pub fn plan<M: LoopModel>(
    _: M,
    tensors: Vec<TensorLayout>,
    sample: Stage,
    regularizer: Stage,
) -> LoopProgram {
    program(
        M::NAME,
        tensors,
        M::DEFAULT_CONSTANTS.to_vec(),
        sample,
        regularizer,
    )
}

fn program(
    name: &str,
    tensors: Vec<TensorLayout>,
    constant_defaults: Vec<f64>,
    sample: Stage,
    regularizer: Stage,
) -> LoopProgram {
    LoopProgram {
        name: name.to_string(),
        params: scalar_ids(&tensors, Source::Theta),
        data: scalar_ids(&tensors, Source::Row),
        constants: scalar_ids(&tensors, Source::Constants),
        constant_defaults,
        tensors,
        sample,
        regularizer,
        plans: Default::default(),
        tangent: None,
    }
}

/// The plan of a model's tangent model (`hessforge_ir::tangent`): the
/// model's parameters, data and constants and a direction per parameter
/// tensor, then `buffers`.
pub fn tangent_plan(
    model: &LoopProgram,
    buffers: Vec<TensorLayout>,
    sample: Stage,
    regularizer: Stage,
) -> LoopProgram {
    let mut tensors = hessforge_ir::tangent::tangent_inputs(model);
    tensors.extend(buffers);
    let defaults = model.constant_defaults.clone();
    program(&model.name, tensors, defaults, sample, regularizer)
}

/// `ids` as a `'static` list of `&str`, made once per list.
pub fn names(ids: &'static [String]) -> &'static [&'static str] {
    static MADE: Mutex<Vec<(usize, &'static [&'static str])>> = Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    let key = ids.as_ptr() as usize;
    if let Some((_, list)) = made.iter().find(|(k, _)| *k == key) {
        return list;
    }
    let list: &'static [&'static str] = Box::leak(
        ids.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    made.push((key, list));
    list
}

/// `sums[k..k + W] += a·b`, lane by lane: one addition of a generated
/// `lane_sums` (the shared sweep's, `sum + a·b`, so the same bits).
#[inline(always)]
pub fn add_product<const W: usize>(sums: &mut [f64], k: usize, a: Lanes<W>, b: Lanes<W>) {
    (Lanes::<W>::load(&sums[k..]) + a * b).store(&mut sums[k..]);
}

/// One pass at `level` (see [`crate::Kernel`]).
pub fn evaluate(
    model: &LoopProgram,
    steps: &(dyn Steps + Sync),
    level: Outputs,
    at: At<'_>,
    grad: &mut [f64],
    hess: &mut [f64],
) -> f64 {
    if at.rows != Rows::Parallel || model.data.is_empty() {
        return model.evaluate_with(steps, level, at, grad, hess);
    }
    model.clear_outputs(level, grad, hess);
    let sums = parallel_sums(model, level, at.data, grad, hess, |_, chunk, g, h| {
        model.sum_rows_with(steps, level, chunk_at(at, chunk), g, h)
    });
    model.finish_with(steps, level, at.theta, at.constants, sums, grad, hess)
}

/// `at` over every row of one chunk of its data, on this thread.
fn chunk_at<'a>(at: At<'a>, chunk: &'a [f64]) -> At<'a> {
    At {
        data: chunk,
        rows: Rows::All,
        ..at
    }
}

/// The row sums of a parallel pass: `sum_chunk(k, rows, grad, hess)` adds
/// chunk k of [`PARALLEL_CHUNK_ROWS`] rows into fresh outputs, on rayon's
/// threads, [`CHUNKS_AT_ONCE`] at a time; the parts are added into `grad`
/// and `hess` in order. A model without data columns has no rows to
/// chunk: no parts, the empty sums.
fn parallel_sums(
    model: &LoopProgram,
    level: Outputs,
    data: &[f64],
    grad: &mut [f64],
    hess: &mut [f64],
    sum_chunk: impl Fn(usize, &[f64], &mut [f64], &mut [f64]) -> RowSums + Sync,
) -> RowSums {
    let p = model.n_params();
    let (g_len, h_len) = match level.rank() {
        0 => (0, 0),
        1 => (p, 0),
        _ => (p, p * p),
    };
    let mut sums = RowSums::default();
    if model.data.is_empty() {
        return sums;
    }
    let chunks: Vec<(usize, &[f64])> = data
        .chunks(PARALLEL_CHUNK_ROWS * model.data.len())
        .enumerate()
        .collect();
    for wave in chunks.chunks(CHUNKS_AT_ONCE) {
        let parts: Vec<(RowSums, Vec<f64>, Vec<f64>)> = wave
            .par_iter()
            .map(|&(k, chunk)| {
                let (mut g, mut h) = (vec![0.0; g_len], vec![0.0; h_len]);
                let part = sum_chunk(k, chunk, &mut g, &mut h);
                (part, g, h)
            })
            .collect();
        for (part, g, h) in parts {
            sums += part;
            grad[..g_len].iter_mut().zip(&g).for_each(|(a, b)| *a += b);
            hess[..h_len].iter_mut().zip(&h).for_each(|(a, b)| *a += b);
        }
    }
    sums
}

/// The primal values of a tangent model's per-sample steps at θ over
/// `rows` ([`crate::linearization`]): `primal` runs the steps in
/// [`Primal`](hessforge_ir::loop_ir::Phase::Primal) phase, which write the
/// first `prefix` scratch entries of each row. `None` for a model without
/// data or when the values would take more than [`MAX_BYTES`].
pub fn linearize(
    model: &LoopProgram,
    primal: &(dyn Steps + Sync),
    prefix: usize,
    at: At<'_>,
) -> Option<Linearization> {
    let cols = model.data.len();
    if cols == 0 {
        return None;
    }
    let n = at.rows.count(at.data.len() / cols);
    if n.saturating_mul(prefix)
        .saturating_mul(std::mem::size_of::<f64>())
        > MAX_BYTES
    {
        return None;
    }
    let record = |at: At<'_>| {
        let recording = Recording {
            steps: primal,
            prefix,
            values: RefCell::new(Vec::with_capacity(n.min(PARALLEL_CHUNK_ROWS) * prefix)),
        };
        model.sum_rows_with(&recording, Outputs::Loss, at, &mut [], &mut []);
        recording.values.into_inner()
    };
    let mut linearization = Linearization::new(model, at, prefix);
    linearization.chunks = match at.rows {
        Rows::Parallel => at
            .data
            .par_chunks(PARALLEL_CHUNK_ROWS * cols)
            .map(|chunk| record(chunk_at(at, chunk)))
            .collect(),
        _ => Vec::from([record(at)]),
    };
    Some(linearization)
}

/// ∇²L·v into `out` (and L) through `linearization`: `tangent` runs the
/// steps in [`Tangent`](hessforge_ir::loop_ir::Phase::Tangent) phase on the
/// primal values read back, row by row, in the order they were recorded.
/// A linearization of another point, or recorded by another model or
/// for another `prefix`, is not read: `whole` (in
/// [`All`](hessforge_ir::loop_ir::Phase::All) phase) then runs the product
/// in full.
pub fn hess_vec_linearized(
    model: &LoopProgram,
    linearization: &Linearization,
    tangent: &(dyn Steps + Sync),
    whole: &(dyn Steps + Sync),
    prefix: usize,
    at: At<'_>,
    out: &mut [f64],
) -> f64 {
    let level = Outputs::LossGrad;
    if !linearization.made_by(model, prefix) || !linearization.matches(&model.name, at) {
        return evaluate(model, whole, level, at, out, &mut []);
    }
    let replay = |k: usize, at: At<'_>, g: &mut [f64]| {
        let replaying = Replaying {
            steps: tangent,
            prefix,
            values: &linearization.chunks[k],
            read: Cell::new(0),
        };
        let sums = model.sum_rows_with(&replaying, level, at, g, &mut []);
        debug_assert_eq!(replaying.read.get(), replaying.values.len());
        sums
    };
    model.clear_outputs(level, out, &mut []);
    let sums = match at.rows {
        Rows::Parallel => parallel_sums(model, level, at.data, out, &mut [], |k, chunk, g, _| {
            replay(k, chunk_at(at, chunk), g)
        }),
        _ => replay(0, at, out),
    };
    model.finish_with(tangent, level, at.theta, at.constants, sums, out, &mut [])
}

/// The primal steps, which keep the first `prefix` scratch entries of
/// every row they run on (W rows at a time: the first `prefix · W`).
struct Recording<'s> {
    steps: &'s (dyn Steps + Sync),
    prefix: usize,
    values: RefCell<Vec<f64>>,
}

impl Steps for Recording<'_> {
    #[inline(always)]
    fn sample(&self, _: Outputs, theta: &[f64], row: &[f64], constants: &[f64], s: &mut [f64]) {
        // Every primal value the tangent steps read, not only the loss.
        self.steps
            .sample(Outputs::LossGrad, theta, row, constants, s);
        self.values
            .borrow_mut()
            .extend_from_slice(&s[..self.prefix]);
    }
    fn regularizer(&self, level: Outputs, theta: &[f64], constants: &[f64], s: &mut [f64]) {
        self.steps.regularizer(level, theta, constants, s);
    }
    fn lanes(&self) -> usize {
        self.steps.lanes()
    }
    #[inline(always)]
    fn sample_lanes(&self, _: Outputs, theta: &[f64], rows: &[f64], c: &[f64], s: &mut [f64]) {
        self.steps
            .sample_lanes(Outputs::LossGrad, theta, rows, c, s);
        let recorded = self.prefix * self.steps.lanes();
        self.values.borrow_mut().extend_from_slice(&s[..recorded]);
    }
}

/// The tangent steps, which find the first `prefix` scratch entries of
/// every row put back from what [`Recording`] kept, in the same order.
struct Replaying<'s> {
    steps: &'s (dyn Steps + Sync),
    prefix: usize,
    values: &'s [f64],
    read: Cell<usize>,
}

impl Replaying<'_> {
    #[inline(always)]
    fn put_back(&self, s: &mut [f64], len: usize) {
        let from = self.read.get();
        s[..len].copy_from_slice(&self.values[from..from + len]);
        self.read.set(from + len);
    }
}

impl Steps for Replaying<'_> {
    #[inline(always)]
    fn sample(&self, level: Outputs, theta: &[f64], row: &[f64], c: &[f64], s: &mut [f64]) {
        self.put_back(s, self.prefix);
        self.steps.sample(level, theta, row, c, s);
    }
    fn regularizer(&self, level: Outputs, theta: &[f64], constants: &[f64], s: &mut [f64]) {
        self.steps.regularizer(level, theta, constants, s);
    }
    fn lanes(&self) -> usize {
        self.steps.lanes()
    }
    #[inline(always)]
    fn sample_lanes(&self, level: Outputs, theta: &[f64], rows: &[f64], c: &[f64], s: &mut [f64]) {
        self.put_back(s, self.prefix * self.steps.lanes());
        self.steps.sample_lanes(level, theta, rows, c, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_ids_follow_the_files_convention() {
        let t = |name: &str, offset, shape: Vec<usize>| TensorLayout {
            name: name.into(),
            source: Source::Theta,
            offset,
            shape,
        };
        let ids = scalar_ids(&[t("b", 4, vec![]), t("W", 0, vec![2, 2])], Source::Theta);
        assert_eq!(ids, ["W_1_1", "W_1_2", "W_2_1", "W_2_2", "b"]);
    }
}
