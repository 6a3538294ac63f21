//! The hand-written half of every kernel: the row loops (all rows, a
//! mini-batch, the deterministic parallel pass), the mean over rows, and
//! unpacking the Hessian's upper triangle. Generated code calls these with
//! its straight-line per-row and θ-only functions.

use crate::Rows;
use rayon::prelude::*;

/// Rows per chunk of the parallel pass (fixed, so the summation order — and
/// the result — does not depend on the number of threads).
pub const PARALLEL_CHUNK_ROWS: usize = 4096;

fn array<'a, const N: usize>(values: &'a [f64], what: &str) -> &'a [f64; N] {
    values
        .get(..N)
        .and_then(|v| v.try_into().ok())
        .unwrap_or_else(|| panic!("{what}: expected at least {N} values, got {}", values.len()))
}

/// One pass: the mean over the selected rows of `row`'s contributions, plus
/// `theta_only` once. P parameters, D columns, C constants, K outputs.
#[inline(always)]
pub fn pass<const P: usize, const D: usize, const C: usize, const K: usize>(
    theta: &[f64],
    constants: &[f64],
    rows: Rows<'_>,
    row: impl Fn(&[f64; P], &[f64; D], &[f64; C], &mut [f64; K]) + Sync,
    theta_only: impl Fn(&[f64; P], &[f64; C], &mut [f64; K]),
) -> [f64; K] {
    let t = array::<P>(theta, "θ");
    let c = array::<C>(constants, "constants");
    let mut acc = [0.0; K];
    let n = if D == 0 {
        0
    } else {
        match rows {
            Rows::All(data) => {
                for x in data.chunks_exact(D) {
                    row(t, array::<D>(x, "data row"), c, &mut acc);
                }
                data.len() / D
            }
            Rows::Selected(data, indices) => {
                for &i in indices {
                    row(t, array::<D>(&data[i * D..], "data row"), c, &mut acc);
                }
                indices.len()
            }
            Rows::Parallel(data) => {
                let chunks: Vec<[f64; K]> = data
                    .par_chunks(PARALLEL_CHUNK_ROWS * D)
                    .map(|chunk| {
                        let mut part = [0.0; K];
                        for x in chunk.chunks_exact(D) {
                            row(t, array::<D>(x, "data row"), c, &mut part);
                        }
                        part
                    })
                    .collect();
                for part in &chunks {
                    for (a, p) in acc.iter_mut().zip(part) {
                        *a += p;
                    }
                }
                data.len() / D
            }
        }
    };
    if n > 0 {
        let inv = 1.0 / n as f64;
        acc.iter_mut().for_each(|a| *a *= inv);
    }
    theta_only(t, c, &mut acc);
    acc
}

/// The upper triangle (row by row) into a full row-major P×P matrix.
#[inline]
pub fn unpack_hessian<const P: usize>(upper: &[f64], hess: &mut [f64]) {
    hessforge_ir::unpack_upper(P, upper, hess);
}
