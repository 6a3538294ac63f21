//! The hand-written half of the kernels in index form: the model's plan
//! (layouts, gradient and Hessian terms) completed with its scalar names,
//! and the passes, which run the generated steps through the accumulation
//! of [`hessforge_ir::tensor`] (rank-1 terms gathered into matrix products,
//! Hessian–vector products that never form the Hessian).
//!
//! A pass over [`Rows::Parallel`] sums fixed chunks of
//! [`crate::runtime::PARALLEL_CHUNK_ROWS`] rows on rayon's threads and adds
//! them in order, a few chunks at a time (so that at most
//! [`CHUNKS_AT_ONCE`] partial Hessians are held): the same bits on every
//! run, whatever the number of threads.

use crate::Rows;
use crate::runtime::PARALLEL_CHUNK_ROWS;
use hessforge_ir::Outputs;
use hessforge_ir::tensor::{At, RowSums, Source, Stage, Steps, TensorLayout, TensorModel};
use rayon::prelude::*;
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
    TensorLayout {
        name: name.to_string(),
        source,
        offset,
        shape: shape.to_vec(),
    }
}

/// The model of a generated kernel: its layouts and terms, the scalar
/// names from the layouts, no steps (the generated code runs them).
pub fn plan(
    name: &str,
    tensors: Vec<TensorLayout>,
    constant_defaults: Vec<f64>,
    sample: Stage,
    regularizer: Stage,
) -> TensorModel {
    TensorModel {
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

fn at<'a>(theta: &'a [f64], constants: &'a [f64], rows: Rows<'a>) -> At<'a> {
    let (data, rows) = match rows {
        Rows::All(d) | Rows::Parallel(d) => (d, None),
        Rows::Selected(d, r) => (d, Some(r)),
    };
    At {
        theta,
        constants,
        data,
        rows,
    }
}

/// One pass at `level` (see [`crate::Kernel`]).
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &TensorModel,
    steps: &(impl Steps + Sync),
    level: Outputs,
    theta: &[f64],
    constants: &[f64],
    rows: Rows<'_>,
    grad: &mut [f64],
    hess: &mut [f64],
) -> f64 {
    let cols = model.data.len();
    let data = match rows {
        Rows::Parallel(data) if cols > 0 => data,
        _ => return model.evaluate_with(steps, level, at(theta, constants, rows), grad, hess),
    };
    let p = model.n_params();
    let (g_len, h_len) = match level.rank() {
        0 => (0, 0),
        1 => (p, 0),
        _ => (p, p * p),
    };
    model.clear_outputs(level, grad, hess);
    let mut sums = RowSums::default();
    let chunks: Vec<&[f64]> = data.chunks(PARALLEL_CHUNK_ROWS * cols).collect();
    for wave in chunks.chunks(CHUNKS_AT_ONCE) {
        let parts: Vec<(RowSums, Vec<f64>, Vec<f64>)> = wave
            .par_iter()
            .map(|chunk| {
                let (mut g, mut h) = (vec![0.0; g_len], vec![0.0; h_len]);
                let part = model.sum_rows_with(
                    steps,
                    level,
                    at(theta, constants, Rows::All(chunk)),
                    &mut g,
                    &mut h,
                );
                (part, g, h)
            })
            .collect();
        for (part, g, h) in parts {
            sums += part;
            grad[..g_len].iter_mut().zip(&g).for_each(|(a, b)| *a += b);
            hess[..h_len].iter_mut().zip(&h).for_each(|(a, b)| *a += b);
        }
    }
    model.finish_with(steps, level, theta, constants, sums, grad, hess)
}

/// One pass of ∇²L·v.
pub fn hess_vec(
    model: &TensorModel,
    steps: &impl Steps,
    theta: &[f64],
    constants: &[f64],
    rows: Rows<'_>,
    v: &[f64],
    out: &mut [f64],
) -> f64 {
    model.hess_vec_with(steps, at(theta, constants, rows), v, out)
}

/// One pass of diag(∇²L) (serial: a preconditioner's, once per Newton
/// step).
pub fn hess_diag(
    model: &TensorModel,
    steps: &impl Steps,
    theta: &[f64],
    constants: &[f64],
    rows: Rows<'_>,
    out: &mut [f64],
) -> f64 {
    model.hess_diag_with(steps, at(theta, constants, rows), out)
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
