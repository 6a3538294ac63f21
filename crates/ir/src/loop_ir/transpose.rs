//! Rows into lanes: W data rows transposed column by column for steps that
//! take W rows at once (tiled, and with AVX where the CPU has it), and the
//! per-lane sums of gradient rows and rank-1 Hessian terms; and the
//! Hessian's lower triangle mirrored from its upper one, tile by tile.

use super::*;

/// The first `full` selected rows of `at`, W at a time: each block of
/// rows transposed into `block` (column by column), its steps run by
/// [`Steps::sample_lanes`] and added by [`Accumulator::add_lanes`] (with
/// `WRITTEN`, the lane-summed Hessian terms by [`Steps::lane_sums`] where it
/// takes them; without, the pass is the one of steps that have none).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn lane_blocks<const W: usize, const WRITTEN: bool>(
    m: &LoopProgram,
    steps: &dyn Steps,
    level: Outputs,
    at: At<'_>,
    full: usize,
    acc: &mut Accumulator<'_>,
    scratch: &mut [f64],
    block: &mut [f64],
) {
    let cols = m.data.len();
    for start in (0..full).step_by(W) {
        match at.rows.selected() {
            None => transpose_rows::<W>(
                &at.data[start * cols..(start + W) * cols],
                cols,
                block,
                at.data.get((start + W) * cols..(start + 2 * W) * cols),
            ),
            Some(rows) => {
                for lane in 0..W {
                    let r = rows[start + lane];
                    let row = &at.data[r * cols..(r + 1) * cols];
                    for (j, x) in row.iter().enumerate() {
                        block[j * W + lane] = *x;
                    }
                }
            }
        }
        steps.sample_lanes(level, at.theta, block, at.constants, scratch);
        let lane_rows: [&[f64]; W] = std::array::from_fn(|lane| {
            let r = at
                .rows
                .selected()
                .map_or(start + lane, |rows| rows[start + lane]);
            &at.data[r * cols..(r + 1) * cols]
        });
        acc.plan.fill::<W>(scratch, block, at.constants);
        if WRITTEN && steps.lane_sums(scratch, block, acc.lane_sums) {
            acc.add_lanes::<W, true>(scratch, &lane_rows, block);
        } else {
            acc.add_lanes::<W, false>(scratch, &lane_rows, block);
        }
    }
}

/// W consecutive rows of `cols` columns into `block`, column by column
/// (`block[j·W + r]` is column j of row r). The common small column counts
/// get a copy with a fixed count, which the compiler turns into whole-register
/// shuffles instead of W·cols scalar moves.
#[inline(always)]
pub(super) fn transpose_rows<const W: usize>(
    rows: &[f64],
    cols: usize,
    block: &mut [f64],
    ahead: Option<&[f64]>,
) {
    macro_rules! fixed {
        ($($nc:literal)*) => {
            match cols {
                $($nc => transpose_rows_fixed::<W, $nc>(rows, block),)*
                _ if W.is_multiple_of(TILE) => transpose_rows_tiled::<W>(rows, cols, block, ahead),
                _ => {
                    for (lane, row) in rows.chunks_exact(cols).enumerate() {
                        for (j, x) in row.iter().enumerate() {
                            block[j * W + lane] = *x;
                        }
                    }
                }
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// Rows and columns per tile of [`transpose_rows_tiled`].
pub(super) const TILE: usize = 4;

/// [`transpose_rows`] for wide rows: TILE rows at a time, TILE columns of
/// them at a time (a square transposed in registers: one load and one
/// store per TILE values, where moving value by value costs a load and a
/// store each and was most of a pass at a thousand columns), the columns
/// past the last whole square one by one. `ahead`, the next W rows, is
/// asked into the cache meanwhile.
#[inline(always)]
pub(super) fn transpose_rows_tiled<const W: usize>(
    rows: &[f64],
    cols: usize,
    block: &mut [f64],
    ahead: Option<&[f64]>,
) {
    let whole = cols / TILE * TILE;
    #[cfg(target_arch = "x86_64")]
    let avx = std::arch::is_x86_feature_detected!("avx");
    for lane0 in (0..W).step_by(TILE) {
        let (four, next) = (
            strip(rows, lane0, cols),
            ahead.map(|a| strip(a, lane0, cols)),
        );
        #[cfg(target_arch = "x86_64")]
        if avx {
            // SAFETY: the CPU supports AVX (checked above).
            unsafe { transpose_strip_avx::<W>(four, next, lane0, whole, block) };
        } else {
            transpose_strip::<W>(four, lane0, whole, block);
        }
        #[cfg(not(target_arch = "x86_64"))]
        transpose_strip::<W>(four, lane0, whole, block);
        for j in whole..cols {
            for (k, row) in four.iter().enumerate() {
                block[j * W + lane0 + k] = row[j];
            }
        }
    }
}

/// Rows `lane0..lane0 + TILE` of `rows` (rows of `cols` columns).
#[inline(always)]
pub(super) fn strip(rows: &[f64], lane0: usize, cols: usize) -> [&[f64]; TILE] {
    std::array::from_fn(|k| &rows[(lane0 + k) * cols..(lane0 + k + 1) * cols])
}

/// The first `whole` columns of TILE rows into lanes `lane0..lane0 + TILE`
/// of `block`, a TILE × TILE square at a time.
#[inline(always)]
pub(super) fn transpose_strip<const W: usize>(
    four: [&[f64]; TILE],
    lane0: usize,
    whole: usize,
    block: &mut [f64],
) {
    for j0 in (0..whole).step_by(TILE) {
        for (j, column) in block[j0 * W..(j0 + TILE) * W]
            .chunks_exact_mut(W)
            .enumerate()
        {
            for (k, row) in four.iter().enumerate() {
                column[lane0 + k] = row[j0 + j];
            }
        }
    }
}

/// [`transpose_strip`] with each square in four registers
/// ([`square_avx`]). The cache lines of `next` (the same columns of later
/// rows) are prefetched on the way.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
pub(super) fn transpose_strip_avx<const W: usize>(
    four: [&[f64]; TILE],
    next: Option<[&[f64]; TILE]>,
    lane0: usize,
    whole: usize,
    block: &mut [f64],
) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // Every access below is within these bounds.
    assert!(whole.is_multiple_of(TILE) && lane0 + TILE <= W && block.len() >= whole * W);
    assert!(
        four.iter()
            .chain(next.iter().flatten())
            .all(|row| row.len() >= whole)
    );
    let src = four.map(<[f64]>::as_ptr);
    let ahead = next.map(|rows| rows.map(<[f64]>::as_ptr));
    let dst = block.as_mut_ptr();
    for j0 in (0..whole).step_by(TILE) {
        // SAFETY: j0 + TILE ≤ whole ≤ every row's length, and
        // (j0 + TILE − 1)·W + lane0 + TILE ≤ whole·W ≤ the block's length
        // (asserted above); a prefetch reads nothing and cannot fault.
        unsafe {
            if let Some(ahead) = ahead
                && j0.is_multiple_of(CACHE_LINE)
            {
                for row in ahead {
                    _mm_prefetch::<_MM_HINT_T0>(row.add(j0).cast());
                }
            }
            square_avx(
                src.map(|row| row.add(j0)),
                std::array::from_fn(|j| dst.add((j0 + j) * W + lane0)),
            );
        }
    }
}

/// One TILE × TILE square transposed in four registers: `dst[j][k] =
/// src[k][j]`, two unpacks and a swap of 128-bit halves per pair of rows
/// (the compiler does not find this on its own, and moves the values one
/// by one). Moves only, so the values are those of the portable paths.
/// Every value is loaded before the first is stored.
///
/// # Safety
///
/// Each `src[k]` must be valid for reading TILE values and each `dst[j]`
/// for writing TILE values, and the CPU must support AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn square_avx(src: [*const f64; TILE], dst: [*mut f64; TILE]) {
    use std::arch::x86_64::{
        _mm256_loadu_pd, _mm256_permute2f128_pd, _mm256_storeu_pd, _mm256_unpackhi_pd,
        _mm256_unpacklo_pd,
    };
    // SAFETY: the caller's promise.
    unsafe {
        let [a, b, c, d] = src.map(|row| _mm256_loadu_pd(row));
        let (ab_even, ab_odd) = (_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b));
        let (cd_even, cd_odd) = (_mm256_unpacklo_pd(c, d), _mm256_unpackhi_pd(c, d));
        let columns = [
            _mm256_permute2f128_pd::<0x20>(ab_even, cd_even),
            _mm256_permute2f128_pd::<0x20>(ab_odd, cd_odd),
            _mm256_permute2f128_pd::<0x31>(ab_even, cd_even),
            _mm256_permute2f128_pd::<0x31>(ab_odd, cd_odd),
        ];
        for (to, column) in dst.into_iter().zip(columns) {
            _mm256_storeu_pd(to, column);
        }
    }
}

/// ∇²L's lower triangle from its upper one (a pass accumulates only the
/// upper blocks, and of a diagonal block only its upper triangle; the
/// rest stays zero, so the whole triangle is mirrored, zeros included):
/// the TILE × TILE squares right of the diagonal transposed as squares
/// (four rows read, four columns written; with AVX where the CPU has it),
/// the squares on the diagonal and the edges entry by entry. (Entry by
/// entry down whole columns, block by block, the mirror of a 65 × 65
/// Hessian cost more than a one-sample pass's steps and terms together.)
#[inline]
pub fn mirror_upper(p: usize, hess: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    let avx = std::arch::is_x86_feature_detected!("avx");
    #[cfg(not(target_arch = "x86_64"))]
    let avx = false;
    mirror_upper_with(p, hess, avx);
}

/// [`mirror_upper`], its squares in AVX registers if `avx` (which the CPU
/// must then support).
#[inline]
fn mirror_upper_with(p: usize, hess: &mut [f64], avx: bool) {
    let h = &mut hess[..p * p];
    let full = p / TILE * TILE;
    for i0 in (0..full).step_by(TILE) {
        for i in i0..i0 + TILE {
            for j in i + 1..i0 + TILE {
                h[j * p + i] = h[i * p + j];
            }
        }
        #[cfg(target_arch = "x86_64")]
        if avx {
            // SAFETY: the CPU supports AVX (the caller's promise).
            unsafe { mirror_strip_avx(h, p, i0, full) };
        } else {
            mirror_strip(h, p, i0, full);
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = avx;
            mirror_strip(h, p, i0, full);
        }
        for i in i0..i0 + TILE {
            for j in full..p {
                h[j * p + i] = h[i * p + j];
            }
        }
    }
    for i in full..p {
        for j in i + 1..p {
            h[j * p + i] = h[i * p + j];
        }
    }
}

/// The squares right of the diagonal in rows `i0..i0 + TILE`, up to
/// column `full`, into the columns below them.
#[inline(always)]
fn mirror_strip(h: &mut [f64], p: usize, i0: usize, full: usize) {
    for j0 in (i0 + TILE..full).step_by(TILE) {
        let rows: [[f64; TILE]; TILE] =
            std::array::from_fn(|a| std::array::from_fn(|b| h[(i0 + a) * p + j0 + b]));
        for b in 0..TILE {
            let column: [f64; TILE] = std::array::from_fn(|a| rows[a][b]);
            h[(j0 + b) * p + i0..][..TILE].copy_from_slice(&column);
        }
    }
}

/// [`mirror_strip`] with each square in registers ([`square_avx`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn mirror_strip_avx(h: &mut [f64], p: usize, i0: usize, full: usize) {
    // Every access below is within these bounds.
    assert!(i0 + TILE <= full && full <= p && h.len() >= p * p);
    let at = h.as_mut_ptr();
    for j0 in (i0 + TILE..full).step_by(TILE) {
        // SAFETY: rows and columns i0 + TILE − 1 < j0 + TILE − 1 < full ≤ p
        // (asserted above), so every entry read or written is below p·p ≤
        // the slice's length.
        unsafe {
            square_avx(
                std::array::from_fn(|a| at.add((i0 + a) * p + j0).cast_const()),
                std::array::from_fn(|b| at.add((j0 + b) * p + i0)),
            );
        }
    }
}

/// Values of a 64-byte cache line.
#[cfg(target_arch = "x86_64")]
pub(super) const CACHE_LINE: usize = 8;

#[inline(always)]
pub(super) fn transpose_rows_fixed<const W: usize, const NC: usize>(
    rows: &[f64],
    block: &mut [f64],
) {
    let (rows, _) = rows.as_chunks::<NC>();
    let rows: &[[f64; NC]; W] = rows.try_into().expect("W rows");
    let (block, _) = block.as_chunks_mut::<W>();
    let block: &mut [[f64; W]; NC] = (&mut block[..NC]).try_into().expect("NC columns");
    for (j, column) in block.iter_mut().enumerate() {
        for (lane, x) in column.iter_mut().enumerate() {
            *x = rows[lane][j];
        }
    }
}

/// [`lane_blocks`] compiled for AVX2 (with the generated steps inlined):
/// four lanes fill one register. No fused multiply–add, so the bits are
/// those of the portable path.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(super) fn lane_blocks_avx2<const W: usize, const WRITTEN: bool>(
    m: &LoopProgram,
    steps: &dyn Steps,
    level: Outputs,
    at: At<'_>,
    full: usize,
    acc: &mut Accumulator<'_>,
    scratch: &mut [f64],
    block: &mut [f64],
) {
    lane_blocks::<W, WRITTEN>(m, steps, level, at, full, acc, scratch, block);
}

/// `grad[e] += a[0]·xs[0][e] + … + a[W−1]·xs[W−1][e]`, added in that
/// order (so the bits are those of W rows added one after the other), a
/// few entries at a time: one load and one store of the gradient per W
/// rows, where adding row by row loads and stores it W times.
#[inline(always)]
pub(super) fn add_scaled_rows<const W: usize>(grad: &mut [f64], a: &[f64; W], xs: &[&[f64]; W]) {
    const STRIP: usize = 4;
    let whole = grad.len() / STRIP * STRIP;
    let (strips, rest) = grad.split_at_mut(whole);
    for (k, strip) in strips.chunks_exact_mut(STRIP).enumerate() {
        let e = k * STRIP;
        let mut sum = [0.0; STRIP];
        sum.copy_from_slice(strip);
        for (a, x) in a.iter().zip(xs) {
            for (s, x) in sum.iter_mut().zip(&x[e..e + STRIP]) {
                *s += a * x;
            }
        }
        strip.copy_from_slice(&sum);
    }
    for (i, g) in rest.iter_mut().enumerate() {
        for (a, x) in a.iter().zip(xs) {
            *g += a * x[whole + i];
        }
    }
}

/// Per-lane sums of a rank-1 term: `sums[i][j] += u[i] · v[j]`, or
/// `(w · u[i]) · v[j]` with a weight, lane by lane (j ≥ i in a diagonal
/// block), with u, v and the sums laid out entry
/// by entry, W lanes each. The common small column counts get their own
/// copy with a fixed trip count, which the compiler unrolls: the loop
/// overhead per entry is most of the cost at a few columns.
#[inline(always)]
pub(super) fn rank1_lane_sums<const W: usize>(
    sums: &mut [f64],
    weight: Option<Lanes<W>>,
    us: &[f64],
    vs: &[f64],
    diagonal: bool,
) {
    macro_rules! fixed {
        ($($nc:literal)*) => {
            match vs.len() / W {
                $($nc => rank1_lane_sums_fixed::<W, $nc>(sums, weight, us, vs, diagonal),)*
                _ => rank1_lane_sums_any::<W>(sums, weight, us, vs, diagonal),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

#[inline(always)]
pub(super) fn rank1_lane_sums_fixed<const W: usize, const NC: usize>(
    sums: &mut [f64],
    weight: Option<Lanes<W>>,
    us: &[f64],
    vs: &[f64],
    diagonal: bool,
) {
    let (vs, _) = vs.as_chunks::<W>();
    let vs: &[[f64; W]; NC] = vs.try_into().expect("NC columns");
    let (sums, _) = sums.as_chunks_mut::<W>();
    let (us, _) = us.as_chunks::<W>();
    for (i, (a, sums_i)) in us.iter().zip(sums.chunks_exact_mut(NC)).enumerate() {
        let sums_i: &mut [[f64; W]; NC] = sums_i.try_into().expect("NC columns");
        let a = Lanes::<W>(*a);
        let a = weight.map_or(a, |w| w * a);
        let first = if diagonal { i } else { 0 };
        for j in first..NC {
            sums_i[j] = (Lanes::<W>(sums_i[j]) + a * Lanes::<W>(vs[j])).0;
        }
    }
}

#[inline(always)]
pub(super) fn rank1_lane_sums_any<const W: usize>(
    sums: &mut [f64],
    weight: Option<Lanes<W>>,
    us: &[f64],
    vs: &[f64],
    diagonal: bool,
) {
    let nc = vs.len() / W;
    let rows = us.chunks_exact(W).zip(sums.chunks_exact_mut(nc * W));
    for (i, (a, sums_i)) in rows.enumerate() {
        let a = Lanes::<W>::load(a);
        let a = weight.map_or(a, |w| w * a);
        let first = if diagonal { i } else { 0 };
        let cols = vs[first * W..]
            .chunks_exact(W)
            .zip(sums_i[first * W..].chunks_exact_mut(W));
        for (b, h) in cols {
            (Lanes::<W>::load(h) + a * Lanes::<W>::load(b)).store(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_copies_the_upper_triangle_like_entry_by_entry() {
        for p in 1..=41 {
            // The upper triangle numbered, the lower one marked unset.
            let upper: Vec<f64> = (0..p * p)
                .map(|k| {
                    if k / p <= k % p {
                        k as f64 + 0.5
                    } else {
                        f64::NAN
                    }
                })
                .collect();
            let mut naive = upper.clone();
            for i in 0..p {
                for j in i + 1..p {
                    naive[j * p + i] = naive[i * p + j];
                }
            }
            let mut tiled = upper.clone();
            mirror_upper(p, &mut tiled);
            assert_eq!(tiled, naive, "P = {p}");
            // The portable squares, whatever the CPU.
            let mut portable = upper.clone();
            mirror_upper_with(p, &mut portable, false);
            assert_eq!(portable, naive, "portable, P = {p}");
        }
    }
}
