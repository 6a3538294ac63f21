//! The hand-written half of every kernel: the row loops (all rows, a
//! mini-batch, the deterministic parallel pass) — W rows at a time in
//! vector lanes, compiled for AVX2 behind a run-time CPU check —, the mean
//! over rows, and unpacking the Hessian's upper triangle. Generated code
//! calls these with its straight-line per-row, W-row and θ-only functions.

use crate::{At, Rows};
use hessforge_ir::lanes::Lanes;

pub mod loops;
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

/// The compiled programs of one output level of a model (loss; loss and
/// gradient; loss, gradient and Hessian), implemented by generated code on a
/// zero-sized type: P parameters, D data columns, C constants, K outputs,
/// W rows at a time in vector lanes.
/// Static methods, so that a pass calls them directly and they are inlined
/// into it (and compiled for the vector unit the pass was compiled for).
pub trait PassProgram<
    const P: usize,
    const D: usize,
    const C: usize,
    const K: usize,
    const W: usize,
>
{
    /// Adds one data row's contributions into `acc`.
    fn row(t: &[f64; P], x: &[f64; D], c: &[f64; C], acc: &mut [f64; K]);
    /// Adds W rows' contributions, one row per lane (`x[j]` holds column j
    /// of the W rows).
    fn rows(t: &[f64; P], x: &[Lanes<W>; D], c: &[f64; C], acc: &mut [Lanes<W>; K]);
    /// Adds the part that depends on θ only (once per pass).
    fn theta_only(t: &[f64; P], c: &[f64; C], acc: &mut [f64; K]);
}

/// One pass: the mean over the selected rows of the per-row contributions,
/// plus the θ-only part once. Rows are taken W at a time through
/// [`PassProgram::rows`] (one row per lane), the last `n mod W` one by one.
#[inline(always)]
pub fn pass<Prog, const P: usize, const D: usize, const C: usize, const K: usize, const W: usize>(
    at: At<'_>,
) -> [f64; K]
where
    Prog: PassProgram<P, D, C, K, W>,
{
    let t = array::<P>(at.theta, "θ");
    let c = array::<C>(at.constants, "constants");
    let data = at.data;
    let mut acc = [0.0; K];
    let n = if D == 0 {
        0
    } else {
        match at.rows {
            Rows::All => {
                let n = data.len().checked_div(D).unwrap_or(0);
                sum::<Prog, P, D, C, K, W>(
                    t,
                    c,
                    n,
                    |i| array::<D>(&data[i * D..], "data row"),
                    &mut acc,
                );
                n
            }
            Rows::Selected(indices) => {
                let at = |k: usize| array::<D>(&data[indices[k] * D..], "data row");
                sum::<Prog, P, D, C, K, W>(t, c, indices.len(), at, &mut acc);
                indices.len()
            }
            Rows::Parallel => {
                let chunks: Vec<[f64; K]> = data
                    .par_chunks(PARALLEL_CHUNK_ROWS * D)
                    .map(|chunk| {
                        let mut part = [0.0; K];
                        let at = |i: usize| array::<D>(&chunk[i * D..], "data row");
                        sum::<Prog, P, D, C, K, W>(t, c, chunk.len() / D, at, &mut part);
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
    Prog::theta_only(t, c, &mut acc);
    acc
}

/// Adds the contributions of rows `at(0) … at(n − 1)` into `acc`, on the
/// widest vector unit the CPU has (checked once per call; every path gives
/// the same bits, since none uses fused multiply–add).
#[inline(always)]
fn sum<'d, Prog, const P: usize, const D: usize, const C: usize, const K: usize, const W: usize>(
    t: &[f64; P],
    c: &[f64; C],
    n: usize,
    at: impl Fn(usize) -> &'d [f64; D],
    acc: &mut [f64; K],
) where
    Prog: PassProgram<P, D, C, K, W>,
{
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { sum_avx2::<Prog, P, D, C, K, W>(t, c, n, at, acc) };
    }
    sum_portable::<Prog, P, D, C, K, W>(t, c, n, at, acc);
}

/// [`sum_portable`] compiled for AVX2: four lanes fill one register (eight,
/// two).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_avx2<
    'd,
    Prog,
    const P: usize,
    const D: usize,
    const C: usize,
    const K: usize,
    const W: usize,
>(
    t: &[f64; P],
    c: &[f64; C],
    n: usize,
    at: impl Fn(usize) -> &'d [f64; D],
    acc: &mut [f64; K],
) where
    Prog: PassProgram<P, D, C, K, W>,
{
    sum_portable::<Prog, P, D, C, K, W>(t, c, n, at, acc);
}

/// W rows per step (column j of the W rows gathered into one `Lanes<W>`),
/// lane sums added in lane order, then the remaining rows one by one.
#[inline(always)]
fn sum_portable<
    'd,
    Prog,
    const P: usize,
    const D: usize,
    const C: usize,
    const K: usize,
    const W: usize,
>(
    t: &[f64; P],
    c: &[f64; C],
    n: usize,
    at: impl Fn(usize) -> &'d [f64; D],
    acc: &mut [f64; K],
) where
    Prog: PassProgram<P, D, C, K, W>,
{
    let groups = n / W;
    if groups > 0 {
        let mut lanes = [Lanes::<W>::default(); K];
        for g in 0..groups {
            let first = g * W;
            let r: [&[f64; D]; W] = std::array::from_fn(|l| at(first + l));
            let x: [Lanes<W>; D] = std::array::from_fn(|j| Lanes(std::array::from_fn(|l| r[l][j])));
            Prog::rows(t, &x, c, &mut lanes);
        }
        for (a, l) in acc.iter_mut().zip(&lanes) {
            *a += l.sum();
        }
    }
    for i in groups * W..n {
        Prog::row(t, at(i), c, acc);
    }
}

/// The upper triangle (row by row) into a full row-major P×P matrix.
#[inline]
pub fn unpack_hessian<const P: usize>(upper: &[f64], hess: &mut [f64]) {
    hessforge_ir::unpack_upper(P, upper, hess);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program using every vectorised function over rows (a, b):
    /// ℓ = softplus(a) + σ(b) + tanh(a b) + e^{b/4} + ln(1 + a²) (ln_1p) + expm1(−a²)
    /// plus ln(1 + b²), at any lane width.
    struct EveryFunction;
    impl<const W: usize> PassProgram<1, 2, 0, 1, W> for EveryFunction {
        fn row(t: &[f64; 1], x: &[f64; 2], _: &[f64; 0], acc: &mut [f64; 1]) {
            acc[0] += one_row(t, x);
        }
        fn rows(t: &[f64; 1], x: &[Lanes<W>; 2], _: &[f64; 0], acc: &mut [Lanes<W>; 1]) {
            let (a, b) = (x[0] * t[0], x[1]);
            acc[0] += a.softplus()
                + b.sigmoid()
                + (a * b).tanh()
                + (b * 0.25).exp()
                + (a * a).ln_1p()
                + (-(a * a)).exp_m1()
                + (1.0 + b * b).ln();
        }
        fn theta_only(_: &[f64; 1], _: &[f64; 0], _: &mut [f64; 1]) {}
    }

    /// One row's value: the lane program on a single lane.
    fn one_row(t: &[f64; 1], x: &[f64; 2]) -> f64 {
        let mut acc = [Lanes::<1>::default()];
        <EveryFunction as PassProgram<1, 2, 0, 1, 1>>::rows(
            t,
            &[Lanes::splat(x[0]), Lanes::splat(x[1])],
            &[],
            &mut acc,
        );
        acc[0].0[0]
    }

    fn data(n: usize) -> Vec<f64> {
        (0..2 * n)
            .map(|i| ((i * 7919 % 1000) as f64 - 500.0) / 37.0)
            .collect()
    }

    fn same_bits_on_avx2_and_portable<const W: usize>() {
        let (t, rows) = ([1.3], data(1003));
        let at = |i: usize| array::<2>(&rows[2 * i..], "row");
        let mut portable = [0.0];
        sum_portable::<EveryFunction, 1, 2, 0, 1, W>(&t, &[], 1003, at, &mut portable);
        assert!(portable[0].is_finite());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut avx2 = [0.0];
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { sum_avx2::<EveryFunction, 1, 2, 0, 1, W>(&t, &[], 1003, at, &mut avx2) };
            assert_eq!(avx2[0].to_bits(), portable[0].to_bits(), "{W} lanes");
        }
    }

    #[test]
    fn the_avx2_and_portable_paths_give_the_same_bits() {
        same_bits_on_avx2_and_portable::<4>();
        same_bits_on_avx2_and_portable::<8>();
    }

    fn groups_and_the_remainder_add_up_to_the_mean<const W: usize>() {
        // 13 rows: one or three groups, and five or one rows one by one.
        let (t, rows) = ([0.7], data(13));
        let row = |i: usize| one_row(&t, &[rows[2 * i], rows[2 * i + 1]]);
        let mean = pass::<EveryFunction, 1, 2, 0, 1, W>(At::new(&t, &[], &rows))[0];
        let one_by_one = (0..13).map(row).sum::<f64>() / 13.0;
        assert!(
            (mean - one_by_one).abs() <= 1e-14 * one_by_one.abs(),
            "{W} lanes: {mean} vs {one_by_one}"
        );
        // A mini-batch with repeats, not a multiple of the lane count.
        let batch = [6, 0, 6, 12, 3, 3, 9, 1, 0, 11];
        let selected = pass::<EveryFunction, 1, 2, 0, 1, W>(
            At::new(&t, &[], &rows).rows(Rows::Selected(&batch)),
        )[0];
        let want = batch.iter().map(|&i| row(i)).sum::<f64>() / batch.len() as f64;
        assert!(
            (selected - want).abs() <= 1e-14 * want.abs(),
            "{W} lanes: {selected} vs {want}"
        );
    }

    #[test]
    fn lane_groups_and_the_remainder_add_up_to_the_mean() {
        groups_and_the_remainder_add_up_to_the_mean::<4>();
        groups_and_the_remainder_add_up_to_the_mean::<8>();
    }
}
