//! The accumulation of a pass: the plan of which scratch entries hold the
//! loss, the gradient and each Hessian term and how each is added
//! ([`Plan`]), and the [`Accumulator`] that adds them — rank-1 terms
//! gathered over blocks of rows into one matrix product (`matrixmultiply`).

use super::*;

/// How one Hessian term is added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum TermKind {
    /// A dense block.
    Dense,
    /// u vᵀ added row by row (a small block, or a product with v).
    Outer,
    /// u vᵀ gathered; its rows start at this offset of the gathered rows.
    Gathered(usize),
    /// u vᵀ summed lane by lane (a pass in lanes; a small block): its
    /// per-lane sums start at this offset of the lane sums.
    Lanes(usize),
    /// A δ-pattern product; its entries are `Plan::entries[start..end]`.
    Paired(usize, usize),
    /// A δ-pattern product summed lane by lane (a pass in lanes): its
    /// entries as for `Paired`, its per-lane sums (one per entry) from the
    /// third offset of the lane sums.
    PairedLanes(usize, usize, usize),
    /// A δ-pattern product in a pass of ∇²L·v, contracted through its keys
    /// in O(rows + cols) rather than over its entries: `Plan::keys[start..]`
    /// holds each row entry's key (its indices on the paired axes, as one
    /// number below the second field), then each column entry's, and
    /// entry (i, j) is in the pattern exactly when the keys are equal, so
    /// (u wᵀ ∘ δ)·v = u ∘ t[key] with t[k] = Σ over key(j) = k of w_j v_j.
    PairedKeys(usize, usize),
}

/// One Hessian term with its offsets resolved.
#[derive(Debug, Clone, Copy)]
pub(super) struct Term {
    pub(super) kind: TermKind,
    /// First row and column of the block in ∇²L.
    pub(super) row: usize,
    pub(super) col: usize,
    /// The block's shape.
    pub(super) rows: usize,
    pub(super) cols: usize,
    /// Scratch offsets of u and v (of the dense block in `u`), or offsets
    /// in the data row when `u_in_row` (`v_in_row`): a data tensor read
    /// where it is.
    pub(super) u: usize,
    pub(super) v: usize,
    pub(super) u_in_row: bool,
    pub(super) v_in_row: bool,
    /// A lane-summed term's weight, applied as its rank-1 sums go
    /// (w·u_i)·v_j: its offset and whether in the data row. (Other terms
    /// read w·u filled.)
    pub(super) weight: Option<(usize, bool)>,
    /// A block on the diagonal (T, T): only its upper triangle is added.
    pub(super) diagonal: bool,
}

impl Term {
    /// A term a row adds straight into ∇²L (dense, rank-1 or δ-pattern):
    /// what [`Steps::row_terms`] writes.
    #[inline(always)]
    pub(super) fn is_direct(&self) -> bool {
        matches!(
            self.kind,
            TermKind::Dense | TermKind::Outer | TermKind::Paired(..)
        )
    }

    /// What u and v are read from, the scratch or the data row, given both
    /// (in the same layout: one row, or W rows in lanes).
    #[inline(always)]
    pub(super) fn sources<'a>(&self, scratch: &'a [f64], row: &'a [f64]) -> (&'a [f64], &'a [f64]) {
        let pick = |in_row: bool| if in_row { row } else { scratch };
        (pick(self.u_in_row), pick(self.v_in_row))
    }

    /// The lengths of what the term reads: u (or the dense block) and v.
    pub(super) fn lengths(&self) -> (usize, usize) {
        match self.kind {
            TermKind::Dense => (self.rows * self.cols, 0),
            _ => (self.rows, self.cols),
        }
    }
}

/// `fills` into `scratch` (W rows in lanes; the data rows likewise in
/// `rows`): w·x entry by entry, whole lanes at a time. A fill lies past
/// every buffer it reads.
#[inline(always)]
fn write_fills<const W: usize>(
    fills: &[Fill],
    scratch: &mut [f64],
    rows: &[f64],
    constants: &[f64],
) {
    for f in fills {
        let (buffers, rest) = scratch.split_at_mut(f.at * W);
        let out = &mut rest[..f.len * W];
        let weight = f.weight.map(|(source, at)| match source {
            Source::Row => Lanes::<W>::load(&rows[at * W..]),
            Source::Constants => Lanes::<W>::splat(constants[at]),
            _ => Lanes::<W>::load(&buffers[at * W..]),
        });
        let from = match f.from {
            Some((Source::Row, at)) => &rows[at * W..(at + f.len) * W],
            Some((Source::Scratch, at)) => &buffers[at * W..(at + f.len) * W],
            Some((_, at)) => {
                // A scalar constant (validation allows no other).
                let x = Lanes::<W>::splat(constants[at]);
                weight.map_or(x, |w| w * x).store(out);
                continue;
            }
            None => {
                // w · 1 = w to the bit.
                let x = weight.unwrap_or(Lanes::<W>::splat(1.0));
                out.chunks_exact_mut(W).for_each(|o| x.store(o));
                continue;
            }
        };
        match weight {
            Some(w) => {
                for (o, x) in out.chunks_exact_mut(W).zip(from.chunks_exact(W)) {
                    (w * Lanes::<W>::load(x)).store(o);
                }
            }
            None => out.copy_from_slice(from),
        }
    }
}

/// A rank-1 term's row: `h[(start + i·p) + j] += (weight·u_i)·w_j` for
/// each i and each j (from i on a diagonal block), `block` = (start, p,
/// columns, diagonal). Compiled for AVX2 where the CPU has it and the rows
/// are long enough to fill its registers (four entries per instruction; no
/// fused multiply–add, so the bits of the portable loop): one call of a
/// 65-parameter model at run time spent half its time here.
#[inline]
fn add_outer(
    hess: &mut [f64],
    block: (usize, usize, usize, bool),
    weight: Option<f64>,
    u: &[f64],
    w: &[f64],
) {
    #[cfg(target_arch = "x86_64")]
    if block.2 >= 8 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { add_outer_avx2(hess, block, weight, u, w) };
    }
    add_outer_here(hess, block, weight, u, w);
}

/// [`add_outer`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_outer_avx2(
    hess: &mut [f64],
    block: (usize, usize, usize, bool),
    weight: Option<f64>,
    u: &[f64],
    w: &[f64],
) {
    add_outer_here(hess, block, weight, u, w);
}

/// [`add_outer`] for the CPU the code is compiled for.
#[inline(always)]
fn add_outer_here(
    hess: &mut [f64],
    (start, p, nc, diagonal): (usize, usize, usize, bool),
    weight: Option<f64>,
    u: &[f64],
    w: &[f64],
) {
    for (i, &a) in u.iter().enumerate() {
        let a = weight.map_or(a, |w| w * a);
        let first = if diagonal { i } else { 0 };
        let at = start + i * p;
        for (h, b) in hess[at + first..at + nc].iter_mut().zip(&w[first..]) {
            *h += a * b;
        }
    }
}

/// Where tensor `b` of `m` is read: its source and offset.
fn place(m: &LoopProgram, b: usize) -> (Source, usize) {
    (m.tensors[b].source, m.tensors[b].offset)
}

/// In a pass in lanes, blocks of at most this many entries sum their
/// rank-1 terms lane by lane (W sums per entry); larger ones are gathered.
pub const LANE_SUM_ENTRIES: usize = 1024;

/// An [`OuterGradient`] with its offsets resolved: rows of u and v are
/// gathered (from the scratch vector or the data row) from `start` of the
/// gathered rows, and each block adds `scale · Uᵀ V` to the gradient from
/// `at` — except for a scalar u (`rows` = 1), whose `scale · u · v` is
/// added row by row straight from v (one pass over v, where a matrix
/// product of one row would first copy it).
#[derive(Debug, Clone, Copy)]
pub(super) struct OuterPlan {
    pub(super) at: usize,
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) u: (Source, usize),
    pub(super) v: (Source, usize),
    pub(super) scale: f64,
    pub(super) start: usize,
}

/// A Hessian factor that no step writes and that is not read where it is
/// — ones, a constant, a buffer or data times its term's weight — written
/// by a pass after the steps, past the stage's own scratch: entry e is
/// `weight · from[e]` (the weight alone when there is no `from`, 1 when
/// there is neither).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fill {
    /// Scratch offset of the entries.
    pub at: usize,
    /// The number of entries.
    pub len: usize,
    /// Where entry e is read from (`None`: 1): the data row, the scratch
    /// (a buffer before `at`), or a scalar constant (then `len` is 1).
    pub from: Option<(Source, usize)>,
    /// A scalar multiplying every entry: in the data row, the constants,
    /// or the scratch.
    pub weight: Option<(Source, usize)>,
}

/// A stage's outputs as scratch offsets, resolved once per kind of pass
/// (see [`PlanCache`]).
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// The scratch a pass needs: the stage's, then the fills.
    pub(super) scratch_len: usize,
    /// The fills that read the steps' buffers or the data row: after the
    /// steps of every row.
    pub(super) fills: Vec<Fill>,
    /// The fills of ones and constants: once per pass.
    pub(super) constant_fills: Vec<Fill>,
    pub(super) loss: Option<usize>,
    /// (gradient offset, scratch offset, length).
    pub(super) gradient: Vec<(usize, usize, usize)>,
    /// The gradient terms that are outer products.
    pub(super) outer: Vec<OuterPlan>,
    pub(super) terms: Vec<Term>,
    /// The (row, column) entries of the paired terms, flat within their
    /// block.
    pub(super) entries: Vec<(usize, usize)>,
    /// The keys of the paired terms of a ∇²L·v pass ([`TermKind::PairedKeys`]).
    pub(super) keys: Vec<usize>,
    /// Length of the gathered rows of all gathered terms.
    pub(super) gathered_len: usize,
    /// Length of the per-lane sums of a pass in W lanes: the loss (W), the
    /// gradient (P·W) and the lane-summed terms (rows·cols·W each).
    pub(super) lane_sums_len: usize,
    /// Every Hessian term is one a row adds straight into ∇²L (dense,
    /// rank-1 or δ-pattern: what [`Steps::row_terms`] writes), so a pass
    /// whose steps wrote them has none left to walk.
    pub(super) every_term_direct: bool,
}

impl Plan {
    /// The fills into `scratch` after the steps of W rows in lanes (entry e
    /// of lane r at `scratch[e·W + r]`, the data rows likewise in `rows`;
    /// W = 1 for one row), read from the steps' buffers, the data and the
    /// constants.
    #[inline(always)]
    pub(super) fn fill<const W: usize>(
        &self,
        scratch: &mut [f64],
        rows: &[f64],
        constants: &[f64],
    ) {
        write_fills::<W>(&self.fills, scratch, rows, constants);
    }

    /// The fills of ones and constants into a pass's `scratch` (W rows in
    /// lanes): once, since no step writes there.
    pub(super) fn fill_constants<const W: usize>(&self, scratch: &mut [f64], constants: &[f64]) {
        write_fills::<W>(&self.constant_fills, scratch, &[], constants);
    }

    /// Where a term reads `weight · factor` (`len` entries): the factor's
    /// buffer or data tensor when it is one and has no weight (true: in
    /// the data row), else a fill (one per distinct fill).
    fn factor(
        &mut self,
        m: &LoopProgram,
        weight: Factor,
        factor: Factor,
        len: usize,
    ) -> (usize, bool) {
        let place = |b: usize| place(m, b);
        // The factor alone, or a scalar weight times one entry of ones: the
        // weight itself (w · 1 = w to the bit).
        let alone = match (weight, factor) {
            (None, Some(b)) => Some(b),
            (Some(w), None) if len == 1 => Some(w),
            _ => None,
        };
        if let Some(b) = alone {
            match place(b) {
                (Source::Scratch, at) => return (at, false),
                (Source::Row, at) => return (at, true),
                _ => {}
            }
        }
        let (from, weight) = (factor.map(place), weight.map(place));
        let same = |f: &&Fill| f.from == from && f.weight == weight && f.len == len;
        if let Some(f) = self.fills.iter().chain(&self.constant_fills).find(same) {
            return (f.at, false);
        }
        let at = self.scratch_len;
        self.scratch_len += len;
        let fill = Fill {
            at,
            len,
            from,
            weight,
        };
        let constant = |p: Option<(Source, usize)>| p.is_none_or(|(s, _)| s == Source::Constants);
        if constant(from) && constant(weight) {
            self.constant_fills.push(fill);
        } else {
            self.fills.push(fill);
        }
        (at, false)
    }

    /// The diagonal entries of ∇²L among one row's Hessian terms (read from
    /// `scratch`) added into `diag`: only blocks (T, T) have any, entry
    /// (i, i) of each.
    pub(super) fn add_diagonal(&self, scratch: &[f64], row: &[f64], diag: &mut [f64]) {
        for t in self.terms.iter().filter(|t| t.diagonal) {
            let (lu, lv) = t.lengths();
            let (su, sv) = t.sources(scratch, row);
            let (u, w) = (&su[t.u..t.u + lu], &sv[t.v..t.v + lv]);
            let d = &mut diag[t.row..t.row + t.rows];
            match t.kind {
                TermKind::Dense => {
                    for (i, d) in d.iter_mut().enumerate() {
                        *d += u[i * t.cols + i];
                    }
                }
                TermKind::Outer | TermKind::Gathered(_) | TermKind::Lanes(_) => {
                    for ((d, a), b) in d.iter_mut().zip(u).zip(w) {
                        *d += a * b;
                    }
                }
                TermKind::Paired(start, end) | TermKind::PairedLanes(start, end, _) => {
                    for &(i, j) in &self.entries[start..end] {
                        if i == j {
                            d[i] += u[i] * w[j];
                        }
                    }
                }
                TermKind::PairedKeys(start, _) => {
                    let (kr, kc) = self.keys[start..start + t.rows + t.cols].split_at(t.rows);
                    for (i, d) in d.iter_mut().enumerate() {
                        if kr[i] == kc[i] {
                            *d += u[i] * w[i];
                        }
                    }
                }
            }
        }
    }

    /// The plan of `stage` at `level` (with `v`: of ∇²L·v), for a pass
    /// over fewer rows than a gathered block (`short`) or not, `lanes` at a
    /// time (0: one at a time).
    pub(super) fn new(
        m: &LoopProgram,
        stage: &Stage,
        level: Outputs,
        v: bool,
        short: bool,
        lanes: usize,
    ) -> Plan {
        let at = |b: usize| m.tensors[b].offset;
        let mut walk = Vec::new();
        let mut plan = Plan {
            scratch_len: stage.scratch,
            loss: stage.loss.map(at),
            lane_sums_len: lanes * (1 + m.n_params()),
            ..Plan::default()
        };
        if level.rank() >= 1 {
            for g in &stage.gradient {
                let t = &m.tensors[g.param];
                match g.outer {
                    None => plan.gradient.push((t.offset, at(g.value), t.len())),
                    Some(o) => {
                        let (u, v) = (&m.tensors[o.u], &m.tensors[o.v]);
                        plan.outer.push(OuterPlan {
                            at: t.offset,
                            rows: u.len(),
                            cols: v.len(),
                            u: (u.source, u.offset),
                            v: (v.source, v.offset),
                            scale: o.scale,
                            start: plan.gathered_len,
                        });
                        if u.len() > 1 {
                            plan.gathered_len += ROW_BLOCK * (u.len() + v.len());
                        }
                    }
                }
            }
        }
        if level.rank() < 2 {
            return plan;
        }
        for h in &stage.hessian {
            let (r, c) = h.block();
            let (rt, ct) = (&m.tensors[r], &m.tensors[c]);
            let (rows, cols) = (rt.len(), ct.len());
            let mut lane_weight = None;
            let (kind, (u, u_in_row), (v_at, v_in_row)) = match h {
                HessianTerm::Dense { value, .. } => {
                    (TermKind::Dense, (at(*value), false), (0, false))
                }
                HessianTerm::Product {
                    pairs,
                    weight,
                    u,
                    v: w,
                    ..
                } => {
                    let kind = if !pairs.is_empty() && v {
                        let start = plan.keys.len();
                        let row_axes = pairs.iter().map(|&(a, _)| a);
                        let col_axes = pairs.iter().map(|&(_, b)| b);
                        pair_keys(&rt.shape, row_axes, &mut plan.keys);
                        pair_keys(&ct.shape, col_axes, &mut plan.keys);
                        let n_keys = pairs.iter().map(|&(a, _)| rt.shape[a]).product();
                        TermKind::PairedKeys(start, n_keys)
                    } else if !pairs.is_empty() {
                        let start = plan.entries.len();
                        paired_entries(&rt.shape, &ct.shape, pairs, &mut walk, &mut plan.entries);
                        let end = plan.entries.len();
                        if lanes > 0 && !v && end - start <= LANE_SUM_ENTRIES {
                            let sums = plan.lane_sums_len;
                            plan.lane_sums_len += (end - start) * lanes;
                            TermKind::PairedLanes(start, end, sums)
                        } else {
                            TermKind::Paired(start, end)
                        }
                    } else if v || (lanes == 0 && rows * cols <= DIRECT_UPDATE_ENTRIES && short) {
                        TermKind::Outer
                    } else if lanes > 0 && rows * cols <= LANE_SUM_ENTRIES {
                        let start = plan.lane_sums_len;
                        plan.lane_sums_len += rows * cols * lanes;
                        TermKind::Lanes(start)
                    } else {
                        let start = plan.gathered_len;
                        plan.gathered_len += ROW_BLOCK * (rows + cols);
                        TermKind::Gathered(start)
                    };
                    lane_weight = match (kind, weight.map(|b| place(m, b))) {
                        (TermKind::Lanes(_), Some((Source::Scratch, at))) => Some((at, false)),
                        (TermKind::Lanes(_), Some((Source::Row, at))) => Some((at, true)),
                        _ => None,
                    };
                    let weight = if lane_weight.is_some() { None } else { *weight };
                    let u = plan.factor(m, weight, *u, rows);
                    (kind, u, plan.factor(m, None, *w, cols))
                }
            };
            plan.terms.push(Term {
                kind,
                row: rt.offset,
                col: ct.offset,
                rows,
                cols,
                u,
                v: v_at,
                u_in_row,
                v_in_row,
                weight: lane_weight,
                diagonal: r == c,
            });
        }
        plan.every_term_direct = plan.terms.iter().all(Term::is_direct);
        plan
    }
}

/// A Hessian term that a pass in lanes sums lane by lane (a small rank-1
/// term, or a small δ-pattern one), with its offsets resolved: what a
/// model's generated code writes out with literal offsets
/// ([`Steps::lane_sums`]) in place of the shared sweep, adding in the
/// sweep's order, so the same bits.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneSumTerm {
    /// Offset of its first sum in the pass's lane sums (W sums per entry).
    pub sums: usize,
    /// Where u's entries start: (in the data row, else in the scratch; the
    /// entry's offset).
    pub u: (bool, usize),
    /// Where v's entries start, as u's.
    pub v: (bool, usize),
    /// A weight multiplying each u_i (a rank-1 term), read likewise.
    pub weight: Option<(bool, usize)>,
    /// The block's rows (u's length).
    pub rows: usize,
    /// The block's columns (v's length).
    pub cols: usize,
    /// A block on the diagonal: only its entries i ≤ j are added.
    pub diagonal: bool,
    /// A δ-pattern term's pattern; `None` for a rank-1 term, whose entry
    /// (i, j) has its sums at `sums + (i·cols + j)·W`, added row by row.
    pub pattern: Option<DeltaPattern>,
}

/// Which entries of a block a δ-pattern term has: u's entry ρ (a
/// multi-index over `row`) times v's entry γ (over `col`) where γ's paired
/// axes equal ρ's. Entry k of the pattern — ρ row-major, then γ's free
/// axes row-major — has its sums at `sums + k·W`: k = flat(ρ)·F + flat of
/// γ's free axes, F the number of their combinations.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaPattern {
    /// u's shape.
    pub row: Vec<usize>,
    /// v's shape.
    pub col: Vec<usize>,
    /// (axis of u, axis of v) pairs that are equal.
    pub pairs: Vec<(usize, usize)>,
}

impl LoopProgram {
    /// The δ pattern of Hessian term `h`, whose paired axes are `pairs`.
    fn delta_pattern(&self, h: &HessianTerm, pairs: &[(usize, usize)]) -> DeltaPattern {
        let (r, c) = h.block();
        DeltaPattern {
            row: self.tensors[r].shape.clone(),
            col: self.tensors[c].shape.clone(),
            pairs: pairs.to_vec(),
        }
    }

    /// The Hessian terms of the per-sample stage's pass in `lanes` lanes
    /// (at [`Outputs::LossGradHess`]) that the pass sums lane by lane, in
    /// its order, and the length of its lane sums.
    pub fn lane_sum_terms(&self, lanes: usize) -> (Vec<LaneSumTerm>, usize) {
        let plan = self.plan(false, Outputs::LossGradHess, false, ROW_BLOCK, lanes);
        // A plan has one term per Hessian term, in their order.
        let terms = plan
            .terms
            .iter()
            .zip(&self.sample.hessian)
            .filter_map(|(t, h)| {
                let (sums, pattern) = match (t.kind, h) {
                    (TermKind::Lanes(start), _) => (start, None),
                    (TermKind::PairedLanes(_, _, at), HessianTerm::Product { pairs, .. }) => {
                        (at, Some(self.delta_pattern(h, pairs)))
                    }
                    _ => return None,
                };
                Some(LaneSumTerm {
                    sums,
                    u: (t.u_in_row, t.u),
                    v: (t.v_in_row, t.v),
                    weight: t.weight.map(|(at, in_row)| (in_row, at)),
                    rows: t.rows,
                    cols: t.cols,
                    diagonal: t.diagonal,
                    pattern,
                })
            })
            .collect();
        (terms, plan.lane_sums_len)
    }
}

/// A Hessian term that a pass of fewer than [`ROW_BLOCK`] rows, one row at
/// a time, adds straight into ∇²L's upper blocks, with its offsets
/// resolved: what a model's generated code writes out with literal offsets
/// ([`Steps::row_terms`]), adding in the shared code's order, so the same
/// bits.
#[derive(Debug, Clone, PartialEq)]
pub struct RowTerm {
    /// The block's first row in ∇²L.
    pub row: usize,
    /// The block's first column in ∇²L.
    pub col: usize,
    /// The block's rows.
    pub rows: usize,
    /// The block's columns.
    pub cols: usize,
    /// Where u's entries start (the dense block's, row-major): (in the
    /// data row, else in the scratch; the entry's offset).
    pub u: (bool, usize),
    /// Where v's entries start, as u's (unused for a dense block).
    pub v: (bool, usize),
    /// A block on the diagonal: only its entries i ≤ j are added.
    pub diagonal: bool,
    /// What the term is.
    pub form: RowTermForm,
}

/// The form of a [`RowTerm`].
#[derive(Debug, Clone, PartialEq)]
pub enum RowTermForm {
    /// A dense block: entry (i, j) is u's entry i·cols + j.
    Dense,
    /// u vᵀ: entry (i, j) is u_i·v_j.
    Rank1,
    /// u_i·v_j on a δ pattern's entries.
    Pattern(DeltaPattern),
}

/// Up to this many parameters ∇²L is small enough to be written entry by
/// entry: the run-time compiler writes a short pass's Hessian terms so
/// ([`RowTerm::additions`]: each upper entry loaded once, its terms added
/// in the shared code's order, stored once), and a generated kernel's short
/// evaluation mirrors ∇²L so. Beyond it, code of P(P+1)/2 entries would
/// grow with the model: the terms are added by the shared code and the
/// mirror goes by tiles.
pub const ENTRY_BY_ENTRY_PARAMS: usize = 24;

/// One of a [`RowTerm`]'s additions for one row: ∇²L's `entry` (flat,
/// P × P row-major) += u's entry · v's entry, or += u's entry alone for a
/// dense block (`v` none); entries as (in the data row, else in the
/// scratch; offset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowTermAddition {
    /// ∇²L's entry, `(row + i)·P + col + j`.
    pub entry: usize,
    /// u's entry.
    pub u: (bool, usize),
    /// v's entry; none for a dense block.
    pub v: Option<(bool, usize)>,
}

impl RowTerm {
    /// The term's additions for one row in ∇²L of `p` parameters, in the
    /// order of the shared code's loops (rows of the block, then its
    /// columns; for a δ pattern, u's entry ρ, then v's free axes): each
    /// entry at most once, so the order matters only against the other
    /// terms adding into the same entry.
    pub fn additions(&self, p: usize) -> Vec<RowTermAddition> {
        let at = |source: (bool, usize), e: usize| (source.0, source.1 + e);
        let addition = |i: usize, j: usize, u: usize, v: Option<usize>| RowTermAddition {
            entry: (self.row + i) * p + self.col + j,
            u: at(self.u, u),
            v: v.map(|v| at(self.v, v)),
        };
        let upper = |i: usize, j: usize| !self.diagonal || i <= j;
        let mut out = Vec::new();
        match &self.form {
            RowTermForm::Dense | RowTermForm::Rank1 => {
                let dense = self.form == RowTermForm::Dense;
                for i in 0..self.rows {
                    for j in (0..self.cols).filter(|&j| upper(i, j)) {
                        out.push(if dense {
                            addition(i, j, i * self.cols + j, None)
                        } else {
                            addition(i, j, i, Some(j))
                        });
                    }
                }
            }
            RowTermForm::Pattern(pattern) => {
                // The shared code's list of the pattern's entries, in its order.
                let DeltaPattern { row, col, pairs } = pattern;
                let mut entries = Vec::new();
                paired_entries(row, col, pairs, &mut Vec::new(), &mut entries);
                for (i, j) in entries.into_iter().filter(|&(i, j)| upper(i, j)) {
                    out.push(addition(i, j, i, Some(j)));
                }
            }
        }
        out
    }
}

impl LoopProgram {
    /// The Hessian terms of the per-sample stage that a pass of fewer than
    /// [`ROW_BLOCK`] rows one row at a time (at [`Outputs::LossGradHess`])
    /// adds straight into ∇²L, in its order (those it gathers into matrix
    /// products are not among them).
    pub fn row_terms(&self) -> Vec<RowTerm> {
        let plan = self.plan(false, Outputs::LossGradHess, false, 1, 0);
        plan.terms
            .iter()
            .zip(&self.sample.hessian)
            .filter_map(|(t, h)| {
                let form = match (t.kind, h) {
                    (TermKind::Dense, _) => RowTermForm::Dense,
                    (TermKind::Outer, _) => RowTermForm::Rank1,
                    (TermKind::Paired(..), HessianTerm::Product { pairs, .. }) => {
                        RowTermForm::Pattern(self.delta_pattern(h, pairs))
                    }
                    _ => return None,
                };
                Some(RowTerm {
                    row: t.row,
                    col: t.col,
                    rows: t.rows,
                    cols: t.cols,
                    u: (t.u_in_row, t.u),
                    v: (t.v_in_row, t.v),
                    diagonal: t.diagonal,
                    form,
                })
            })
            .collect()
    }
}

/// A pass of fewer than [`ROW_BLOCK`] rows, one row at a time, with its
/// offsets resolved, when a model's generated code can write all of it out
/// ([`Steps::short_pass`]): the scratch on the stack, the fills, the loss,
/// the gradient and the Hessian terms ([`LoopProgram::row_terms`]) added
/// with literal offsets in the shared code's order, so the same bits. A
/// pass that gathers anything into a matrix product (a Hessian block of
/// more than [`DIRECT_UPDATE_ENTRIES`] entries, an outer-product gradient
/// whose u is not a scalar) has none.
#[derive(Debug, Clone, PartialEq)]
pub struct ShortPass {
    /// The scratch the pass needs: the stage's, then the fills.
    pub scratch_len: usize,
    /// The fills of ones and constants, written once before the rows (at
    /// [`Outputs::LossGradHess`]).
    pub constant_fills: Vec<Fill>,
    /// The fills written after each row's steps (at
    /// [`Outputs::LossGradHess`]).
    pub fills: Vec<Fill>,
    /// Scratch offset of a row's loss.
    pub loss: Option<usize>,
    /// ∇L's entries added from the scratch: (gradient offset, scratch
    /// offset, length).
    pub gradient: Vec<(usize, usize, usize)>,
    /// The outer-product gradients `scale · u · v` of a scalar u, added
    /// after those.
    pub outer: Vec<ScaledGradient>,
}

/// ∇L's entries `at..at + len` += `(scale · u) · v[e]`: an outer-product
/// gradient ([`OuterGradient`]) of a scalar u, in a [`ShortPass`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaledGradient {
    /// The first gradient entry.
    pub at: usize,
    /// The number of entries (v's length).
    pub len: usize,
    /// Where u is: (in the data row, else in the scratch; its offset).
    pub u: (bool, usize),
    /// Where v's entries start, as u.
    pub v: (bool, usize),
    /// The gradient's scale.
    pub scale: f64,
}

impl LoopProgram {
    /// The short pass of the per-sample stage ([`ShortPass`]), or `None`
    /// when some of it is gathered, the model has no data, or its scratch
    /// is longer than `max_scratch` entries.
    pub fn short_pass(&self, max_scratch: usize) -> Option<ShortPass> {
        if self.data.is_empty() {
            return None;
        }
        let plan = self.plan(false, Outputs::LossGradHess, false, 1, 0);
        if plan.scratch_len > max_scratch
            || !plan.every_term_direct
            || plan.outer.iter().any(|o| o.rows != 1)
        {
            return None;
        }
        let in_row = |(source, at): (Source, usize)| (source == Source::Row, at);
        Some(ShortPass {
            scratch_len: plan.scratch_len,
            constant_fills: plan.constant_fills.clone(),
            fills: plan.fills.clone(),
            loss: plan.loss,
            gradient: plan.gradient.clone(),
            outer: plan
                .outer
                .iter()
                .map(|o| ScaledGradient {
                    at: o.at,
                    len: o.cols,
                    u: in_row(o.u),
                    v: in_row(o.v),
                    scale: o.scale,
                })
                .collect(),
        })
    }
}

/// Sums a stage's outputs over rows: the loss, the gradient, and the
/// Hessian's upper blocks (dense terms and paired products row by row;
/// small outer products too, or lane by lane in a pass in lanes; large ones
/// gathered [`ROW_BLOCK`] rows at a time into one matrix product), or with
/// `v` the Hessian's product with v (every term contracted row by row).
pub(super) struct Accumulator<'a> {
    pub(super) model: &'a LoopProgram,
    pub(super) plan: &'a Plan,
    pub(super) loss: f64,
    pub(super) grad: &'a mut [f64],
    /// ∇²L (P × P), or ∇²L·v (P) when `v` is given.
    pub(super) hess: &'a mut [f64],
    pub(super) v: Option<&'a [f64]>,
    pub(super) level: u8,
    pub(super) gathered: &'a mut [f64],
    /// Rows gathered since the last flush.
    pub(super) rows: usize,
    /// Per-lane sums (a pass in lanes).
    pub(super) lane_sums: &'a mut [f64],
    /// One lane's values of a term.
    pub(super) spare: Vec<f64>,
}

impl<'a> Accumulator<'a> {
    pub(super) fn new(
        model: &'a LoopProgram,
        plan: &'a Plan,
        level: Outputs,
        grad: &'a mut [f64],
        hess: &'a mut [f64],
        v: Option<&'a [f64]>,
        gathered: &'a mut [f64],
    ) -> Accumulator<'a> {
        Accumulator {
            model,
            plan,
            loss: 0.0,
            grad,
            hess,
            v,
            level: level.rank(),
            gathered,
            rows: 0,
            lane_sums: &mut [],
            spare: Vec::new(),
        }
    }

    /// One row's (or one pass's) outputs from `scratch` (and `row`, the
    /// data row, for the outer-product gradients that read it).
    #[inline]
    pub(super) fn add(&mut self, scratch: &[f64], row: &[f64]) {
        self.add_row::<false>(scratch, row);
    }

    /// [`Accumulator::add`], but with `WRITTEN` the Hessian terms a row adds
    /// straight into ∇²L are left out: the model's own code added them
    /// ([`Steps::row_terms`]).
    #[inline]
    pub(super) fn add_row<const WRITTEN: bool>(&mut self, scratch: &[f64], row: &[f64]) {
        let plan = self.plan;
        if let Some(l) = plan.loss {
            self.loss += scratch[l];
        }
        for &(at, from, len) in &plan.gradient {
            for (o, x) in self.grad[at..at + len]
                .iter_mut()
                .zip(&scratch[from..from + len])
            {
                *o += x;
            }
        }
        for o in &plan.outer {
            let r = self.rows;
            let pick = |(source, at): (Source, usize), e: usize| match source {
                Source::Row => row[at + e],
                _ => scratch[at + e],
            };
            if o.rows == 1 {
                let a = o.scale * pick(o.u, 0);
                for (e, g) in self.grad[o.at..o.at + o.cols].iter_mut().enumerate() {
                    *g += a * pick(o.v, e);
                }
                continue;
            }
            let (gu, gv) = self.gathered[o.start..].split_at_mut(ROW_BLOCK * o.rows);
            for (e, x) in gu[r * o.rows..(r + 1) * o.rows].iter_mut().enumerate() {
                *x = pick(o.u, e);
            }
            for (e, x) in gv[r * o.cols..(r + 1) * o.cols].iter_mut().enumerate() {
                *x = pick(o.v, e);
            }
        }
        if self.level >= 2 && !(WRITTEN && plan.every_term_direct) {
            for term in &plan.terms {
                if WRITTEN && term.is_direct() {
                    continue;
                }
                let (lu, lv) = term.lengths();
                let (su, sv) = term.sources(scratch, row);
                let (u, w) = (&su[term.u..term.u + lu], &sv[term.v..term.v + lv]);
                let weight = term
                    .weight
                    .map(|(at, in_row)| if in_row { row[at] } else { scratch[at] });
                match self.v {
                    Some(v) => self.add_times_v(term, u, w, v),
                    None => self.add_term(term, weight, u, w),
                }
            }
        }
        self.end_rows(1);
    }

    /// `n` more rows gathered (when the pass gathers any: Hessian terms or
    /// outer-product gradients); a full block is flushed.
    #[inline(always)]
    pub(super) fn end_rows(&mut self, n: usize) {
        if self.level >= 2 || !self.plan.outer.is_empty() {
            self.rows += n;
            if self.rows == ROW_BLOCK {
                self.flush();
            }
        }
    }

    /// W rows' outputs from `scratch` in lanes (entry e of lane r at
    /// `scratch[e·W + r]`; the data rows in `rows`, and in lanes in
    /// `block`): the loss, the gradient, the small rank-1 terms and the
    /// small δ-pattern terms into per-lane sums (unless `WRITTEN`: the
    /// model's own code added those, [`Steps::lane_sums`]), the large
    /// rank-1 terms gathered, the others lane by lane.
    #[inline(always)]
    pub(super) fn add_lanes<const W: usize, const WRITTEN: bool>(
        &mut self,
        scratch: &[f64],
        rows: &[&[f64]; W],
        block: &[f64],
    ) {
        let plan = self.plan;
        let sums = &mut *self.lane_sums;
        if let Some(l) = plan.loss {
            let s = Lanes::<W>::load(&sums[..W]) + Lanes::<W>::load(&scratch[l * W..]);
            s.store(&mut sums[..W]);
        }
        for &(at, from, len) in &plan.gradient {
            let dst = &mut sums[W + at * W..W + (at + len) * W];
            for (o, x) in dst.iter_mut().zip(&scratch[from * W..(from + len) * W]) {
                *o += x;
            }
        }
        for o in &plan.outer {
            if o.rows == 1 {
                let a: [f64; W] = std::array::from_fn(|lane| {
                    o.scale
                        * match o.u {
                            (Source::Row, at) => rows[lane][at],
                            (_, at) => scratch[at * W + lane],
                        }
                });
                let grad = &mut self.grad[o.at..o.at + o.cols];
                match o.v {
                    (Source::Row, at) => {
                        let xs: [&[f64]; W] =
                            std::array::from_fn(|lane| &rows[lane][at..at + o.cols]);
                        add_scaled_rows::<W>(grad, &a, &xs);
                    }
                    (_, at) => {
                        // Entry e of every lane, added lane by lane.
                        let xs = &scratch[at * W..(at + o.cols) * W];
                        for (g, x) in grad.iter_mut().zip(xs.chunks_exact(W)) {
                            let mut sum = *g;
                            for (a, x) in a.iter().zip(x) {
                                sum += a * x;
                            }
                            *g = sum;
                        }
                    }
                }
                continue;
            }
            let (gu, gv) = self.gathered[o.start..].split_at_mut(ROW_BLOCK * o.rows);
            for (lane, row) in rows.iter().enumerate() {
                let r = self.rows + lane;
                for (g, (source, at), n) in [(&mut *gu, o.u, o.rows), (&mut *gv, o.v, o.cols)] {
                    let dst = &mut g[r * n..(r + 1) * n];
                    match source {
                        Source::Row => dst.copy_from_slice(&row[at..at + n]),
                        _ => {
                            for (e, x) in dst.iter_mut().enumerate() {
                                *x = scratch[(at + e) * W + lane];
                            }
                        }
                    }
                }
            }
        }
        if self.level < 2 {
            self.end_rows(W);
            return;
        }
        for t in &plan.terms {
            let (nr, nc) = (t.rows, t.cols);
            let (su, sv) = t.sources(scratch, block);
            match t.kind {
                TermKind::Lanes(_) | TermKind::PairedLanes(..) if WRITTEN => {}
                TermKind::Lanes(start) => {
                    let sums = &mut self.lane_sums[start..start + nr * nc * W];
                    let us = &su[t.u * W..(t.u + nr) * W];
                    let vs = &sv[t.v * W..(t.v + nc) * W];
                    let weight = t.weight.map(|(at, in_row)| {
                        Lanes::<W>::load(&(if in_row { block } else { scratch })[at * W..])
                    });
                    rank1_lane_sums::<W>(sums, weight, us, vs, t.diagonal);
                }
                TermKind::Gathered(start) => {
                    let (gu, gw) = self.gathered[start..].split_at_mut(ROW_BLOCK * nr);
                    for lane in 0..W {
                        let r = self.rows + lane;
                        for (i, o) in gu[r * nr..(r + 1) * nr].iter_mut().enumerate() {
                            *o = su[(t.u + i) * W + lane];
                        }
                        for (j, o) in gw[r * nc..(r + 1) * nc].iter_mut().enumerate() {
                            *o = sv[(t.v + j) * W + lane];
                        }
                    }
                }
                TermKind::PairedLanes(start, end, at) => {
                    let entries = &plan.entries[start..end];
                    let sums = &mut self.lane_sums[at..at + entries.len() * W];
                    for (&(i, j), sum) in entries.iter().zip(sums.chunks_exact_mut(W)) {
                        if t.diagonal && i > j {
                            continue;
                        }
                        let a = Lanes::<W>::load(&su[(t.u + i) * W..]);
                        let b = Lanes::<W>::load(&sv[(t.v + j) * W..]);
                        (Lanes::<W>::load(sum) + a * b).store(sum);
                    }
                }
                TermKind::Dense
                | TermKind::Outer
                | TermKind::Paired(..)
                | TermKind::PairedKeys(..) => {
                    let (lu, lv) = t.lengths();
                    let mut spare = std::mem::take(&mut self.spare);
                    spare.resize(lu + lv, 0.0);
                    for lane in 0..W {
                        for (e, o) in spare[..lu].iter_mut().enumerate() {
                            *o = su[(t.u + e) * W + lane];
                        }
                        for (e, o) in spare[lu..].iter_mut().enumerate() {
                            *o = sv[(t.v + e) * W + lane];
                        }
                        let (u, w) = spare.split_at(lu);
                        self.add_term(t, None, u, w);
                    }
                    self.spare = spare;
                }
            }
        }
        self.end_rows(W);
    }

    /// The per-lane sums into the outputs (each sum pairwise over its
    /// lanes, always in the same order).
    pub(super) fn sum_lanes<const W: usize>(&mut self) {
        let p = self.model.n_params();
        let sums = &self.lane_sums[..];
        if sums.is_empty() {
            return;
        }
        if self.plan.loss.is_some() {
            self.loss += Lanes::<W>::load(sums).sum();
        }
        if self.level >= 1 {
            for (i, g) in self.grad[..p].iter_mut().enumerate() {
                *g += Lanes::<W>::load(&sums[W + i * W..]).sum();
            }
        }
        if self.level < 2 {
            return;
        }
        for t in &self.plan.terms {
            match t.kind {
                TermKind::Lanes(start) => {
                    for i in 0..t.rows {
                        let first = if t.diagonal { i } else { 0 };
                        for j in first..t.cols {
                            let s = Lanes::<W>::load(&sums[start + (i * t.cols + j) * W..]).sum();
                            self.hess[(t.row + i) * p + t.col + j] += s;
                        }
                    }
                }
                TermKind::PairedLanes(start, end, at) => {
                    let entries = &self.plan.entries[start..end];
                    for (k, &(i, j)) in entries.iter().enumerate() {
                        if !t.diagonal || i <= j {
                            let s = Lanes::<W>::load(&sums[at + k * W..]).sum();
                            self.hess[(t.row + i) * p + t.col + j] += s;
                        }
                    }
                }
                TermKind::Dense
                | TermKind::Outer
                | TermKind::Gathered(_)
                | TermKind::Paired(..)
                | TermKind::PairedKeys(..) => {}
            }
        }
    }

    /// One row's term into ∇²L: `u` and `w` its buffers (the dense block
    /// in `u`), `weight` a lane-summed term's weight.
    #[inline]
    pub(super) fn add_term(&mut self, t: &Term, weight: Option<f64>, u: &[f64], w: &[f64]) {
        let p = self.model.n_params();
        let (nr, nc) = (t.rows, t.cols);
        match t.kind {
            TermKind::Dense => {
                for i in 0..nr {
                    let first = if t.diagonal { i } else { 0 };
                    let at = (t.row + i) * p + t.col;
                    for (o, x) in self.hess[at + first..at + nc]
                        .iter_mut()
                        .zip(&u[i * nc + first..(i + 1) * nc])
                    {
                        *o += x;
                    }
                }
            }
            TermKind::Outer | TermKind::Lanes(_) => {
                let block = (t.row * p + t.col, p, nc, t.diagonal);
                add_outer(self.hess, block, weight, u, w);
            }
            TermKind::Gathered(start) => {
                let r = self.rows;
                let (gu, gw) = self.gathered[start..].split_at_mut(ROW_BLOCK * nr);
                gu[r * nr..(r + 1) * nr].copy_from_slice(u);
                gw[r * nc..(r + 1) * nc].copy_from_slice(w);
            }
            TermKind::Paired(start, end) | TermKind::PairedLanes(start, end, _) => {
                for &(i, j) in &self.plan.entries[start..end] {
                    if !t.diagonal || i <= j {
                        self.hess[(t.row + i) * p + t.col + j] += u[i] * w[j];
                    }
                }
            }
            TermKind::PairedKeys(start, _) => {
                // Only ∇²L·v passes plan these; the entries from the keys.
                let (kr, kc) = self.plan.keys[start..start + nr + nc].split_at(nr);
                for (i, ki) in kr.iter().enumerate() {
                    let first = if t.diagonal { i } else { 0 };
                    for (j, kj) in kc.iter().enumerate().skip(first) {
                        if ki == kj {
                            self.hess[(t.row + i) * p + t.col + j] += u[i] * w[j];
                        }
                    }
                }
            }
        }
    }

    /// One row's term times v into ∇²L·v (both halves of an off-diagonal
    /// block).
    #[inline]
    pub(super) fn add_times_v(&mut self, t: &Term, u: &[f64], w: &[f64], v: &[f64]) {
        let (nr, nc) = (t.rows, t.cols);
        let mirrored = !t.diagonal;
        let hess = &mut *self.hess;
        match t.kind {
            TermKind::Dense => {
                for i in 0..nr {
                    for j in 0..nc {
                        let x = u[i * nc + j];
                        hess[t.row + i] += x * v[t.col + j];
                        if mirrored {
                            hess[t.col + j] += x * v[t.row + i];
                        }
                    }
                }
            }
            TermKind::Outer | TermKind::Gathered(_) | TermKind::Lanes(_) => {
                // (u vᵀ) x = u (v·x)
                let wv: f64 = w.iter().zip(&v[t.col..]).map(|(a, b)| a * b).sum();
                for (o, a) in hess[t.row..t.row + nr].iter_mut().zip(u) {
                    *o += a * wv;
                }
                if mirrored {
                    let uv: f64 = u.iter().zip(&v[t.row..]).map(|(a, b)| a * b).sum();
                    for (o, b) in hess[t.col..t.col + nc].iter_mut().zip(w) {
                        *o += b * uv;
                    }
                }
            }
            TermKind::Paired(start, end) | TermKind::PairedLanes(start, end, _) => {
                for &(i, j) in &self.plan.entries[start..end] {
                    let x = u[i] * w[j];
                    hess[t.row + i] += x * v[t.col + j];
                    if mirrored {
                        hess[t.col + j] += x * v[t.row + i];
                    }
                }
            }
            TermKind::PairedKeys(start, n_keys) => {
                let (kr, kc) = self.plan.keys[start..start + nr + nc].split_at(nr);
                let table = &mut self.spare;
                table.clear();
                table.resize(n_keys, 0.0);
                for ((&k, b), x) in kc.iter().zip(w).zip(&v[t.col..]) {
                    table[k] += b * x;
                }
                for ((&k, a), o) in kr.iter().zip(u).zip(&mut hess[t.row..]) {
                    *o += a * table[k];
                }
                if mirrored {
                    table.fill(0.0);
                    for ((&k, a), x) in kr.iter().zip(u).zip(&v[t.row..]) {
                        table[k] += a * x;
                    }
                    for ((&k, b), o) in kc.iter().zip(w).zip(&mut hess[t.col..]) {
                        *o += b * table[k];
                    }
                }
            }
        }
    }

    /// The gathered outer products into the Hessian: H_block += Uᵀ V (the
    /// upper triangle only, on the diagonal).
    pub(super) fn flush(&mut self) {
        let p = self.model.n_params();
        let k = self.rows;
        self.rows = 0;
        // Nothing gathered (no outer product of a vector, no gathered
        // term): nothing to multiply.
        if k == 0 || self.plan.gathered_len == 0 {
            return;
        }
        for o in self.plan.outer.iter().filter(|o| o.rows > 1) {
            let (gu, gv) = self.gathered[o.start..].split_at(ROW_BLOCK * o.rows);
            let target = &mut self.grad[o.at..];
            gemm_transposed_a(
                o.rows, k, o.cols, o.scale, gu, o.rows, gv, o.cols, target, o.cols,
            );
        }
        if self.v.is_some() {
            return;
        }
        for t in &self.plan.terms {
            let TermKind::Gathered(start) = t.kind else {
                continue;
            };
            let (nr, nc) = (t.rows, t.cols);
            let (gu, gw) = self.gathered[start..].split_at(ROW_BLOCK * nr);
            let target = &mut self.hess[t.row * p + t.col..];
            if t.diagonal {
                gemm_upper(nr, k, gu, gw, target, p);
            } else {
                gemm_transposed_a(nr, k, nc, 1.0, gu, nr, gw, nc, target, p);
            }
        }
    }
}

/// Columns per panel of [`gemm_upper`].
pub(super) const PANEL: usize = 96;

/// The upper triangle of C (n × n, row stride `ldc`) += Aᵀ B, with A and
/// B (k × n) row-major: one product per panel of columns, over the rows
/// up to the panel's end (about half the work of the whole product).
pub(super) fn gemm_upper(n: usize, k: usize, a: &[f64], b: &[f64], c: &mut [f64], ldc: usize) {
    for j0 in (0..n).step_by(PANEL) {
        let j1 = (j0 + PANEL).min(n);
        gemm_transposed_a(j1, k, j1 - j0, 1.0, a, n, &b[j0..], n, &mut c[j0..], ldc);
    }
}

/// C (m × n, row stride `ldc`) += α Aᵀ B, with A (k × m, row stride `lda`)
/// and B (k × n, row stride `ldb`): `matrixmultiply`'s dgemm with strides.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_transposed_a(
    m: usize,
    k: usize,
    n: usize,
    alpha: f64,
    a: &[f64],
    lda: usize,
    b: &[f64],
    ldb: usize,
    c: &mut [f64],
    ldc: usize,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(
        a.len() >= (k - 1) * lda + m && b.len() >= (k - 1) * ldb + n,
        "gathered rows"
    );
    assert!(c.len() >= (m - 1) * ldc + n, "Hessian block");
    // SAFETY: the asserts above keep every access of dgemm within the
    // slices: A is read at i + l·lda for i < m, l < k; B at l·ldb + j;
    // C written at i·ldc + j for i < m, j < n.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            1,
            lda as isize,
            b.as_ptr(),
            ldb as isize,
            1,
            1.0,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}
