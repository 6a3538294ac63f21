//! Index form in the IR: loops over index ranges, reductions, and the
//! tensor operations of a Hessian (rank-1 products, Kronecker-delta
//! patterns), whose size does not depend on the tensors' lengths.
//!
//! A [`TensorModel`] reads θ, one data row and the constants as named
//! tensors ([`TensorLayout`]), and computes temporaries ("buffers", in one
//! scratch vector) by [`Step`]s: a step is a loop nest whose first loops
//! index the buffer it writes and whose remaining loops are summed, with a
//! straight-line [`Program`] as its body (its parameter `pI` is the step's
//! I-th [`Load`]). Then it accumulates:
//!
//! - the loss, one scalar buffer;
//! - the gradient, one buffer per parameter tensor ([`GradientTerm`]);
//! - the Hessian, per pair of parameter tensors (T, U), as [`HessianTerm`]s:
//!   a dense block, or a product `δ-pattern · u[ρ] · v[γ]` of a buffer `u`
//!   over T's entries and `v` over U's, where the pattern keeps only the
//!   entries whose paired axes are equal (none: the rank-1 update `u vᵀ`;
//!   all: a diagonal). Over many rows the rank-1 updates become one matrix
//!   product `Uᵀ V` per block of rows ([`ROW_BLOCK`] rows; `matrixmultiply`'s
//!   dgemm).
//!
//! The model has two [`Stage`]s: the per-sample loss (averaged over the
//! rows; evaluated once, not averaged, for a model without data) and the
//! regularizer (once per pass). [`TensorModel::evaluate`] and
//! [`TensorModel::hess_vec`] are the interpreter; a Hessian–vector product
//! contracts the terms with v and never forms the P × P matrix.

use crate::{InvalidProgram, Outputs, Program};
use serde::{Deserialize, Serialize};

/// Where a tensor's entries live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// θ, from `offset`.
    Theta,
    /// The data row, from `offset`.
    Row,
    /// The constants, from `offset`.
    Constants,
    /// The stage's scratch vector, from `offset`.
    Scratch,
}

/// A tensor the steps read or write: row-major entries from `offset` of
/// its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorLayout {
    /// Name, for reading the program (`w`, `x`, or `t3` for a buffer).
    pub name: String,
    /// Where the entries are.
    pub source: Source,
    /// Index of the first entry.
    pub offset: usize,
    /// Axis lengths (`[]` for a scalar).
    pub shape: Vec<usize>,
}

impl TensorLayout {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has no entries (an axis of length 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How one axis of an entry is chosen inside a step's loop nest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    /// The value of loop `var` (0-based) plus `shift`.
    Loop {
        /// Which loop of the step.
        var: usize,
        /// Added to the loop's value.
        shift: usize,
    },
    /// A fixed 0-based position.
    Fixed(usize),
}

/// One input of a step's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Load {
    /// An entry of a tensor (index into [`TensorModel::tensors`]).
    Entry {
        /// The tensor.
        tensor: usize,
        /// One axis per dimension of the tensor.
        index: Vec<Axis>,
    },
    /// The 1-based value of an index (`sum(j = 1..3, j * w[j])`): the
    /// axis's 0-based position plus one.
    Position(Axis),
    /// 1 where the two positions are equal, else 0 (a Kronecker delta).
    Delta(Axis, Axis),
}

/// `out[i₀, …, i_{r−1}] = Σ_{i_r, …} body(loads at i)`: a loop nest over
/// `loops` (trip counts, outermost first), the first `rank(out)` of which
/// index the buffer written; the rest are summed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The buffer written (a tensor with [`Source::Scratch`]).
    pub out: usize,
    /// Trip counts.
    pub loops: Vec<usize>,
    /// The body's inputs: its parameter `pI` is `inputs[I]`.
    pub inputs: Vec<Load>,
    /// One output: the value of one iteration.
    pub body: Program,
    /// The lowest level of outputs that needs this step.
    pub level: Outputs,
}

/// `grad[tensor] += value` (entry by entry; both have the tensor's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradientTerm {
    /// The parameter tensor.
    pub param: usize,
    /// The buffer holding ∂/∂ of each of its entries.
    pub value: usize,
}

/// One term of the Hessian block of parameter tensors (row, col): the entry
/// at (ρ, γ), ρ an entry of `row` and γ one of `col`. The block of (col,
/// row) is its transpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HessianTerm {
    /// `value[ρ, γ]`, a buffer of shape `shape(row) ++ shape(col)`.
    Dense {
        /// Row parameter tensor.
        row: usize,
        /// Column parameter tensor.
        col: usize,
        /// The block.
        value: usize,
    },
    /// `u[ρ] · v[γ]` where, for every pair `(a, b)`, axis a of ρ equals
    /// axis b of γ; 0 elsewhere. No pairs: the outer product u vᵀ.
    Product {
        /// Row parameter tensor.
        row: usize,
        /// Column parameter tensor.
        col: usize,
        /// (row axis, column axis) pairs of Kronecker deltas.
        pairs: Vec<(usize, usize)>,
        /// Buffer with the row tensor's shape.
        u: usize,
        /// Buffer with the column tensor's shape.
        v: usize,
    },
}

impl HessianTerm {
    /// (row, col) parameter tensors.
    pub fn block(&self) -> (usize, usize) {
        match self {
            HessianTerm::Dense { row, col, .. } | HessianTerm::Product { row, col, .. } => {
                (*row, *col)
            }
        }
    }
}

/// The steps and outputs of one part of the objective.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Scratch entries the buffers need.
    pub scratch: usize,
    /// In order.
    pub steps: Vec<Step>,
    /// The scalar buffer holding the loss, if the stage has one.
    pub loss: Option<usize>,
    /// Gradient contributions.
    pub gradient: Vec<GradientTerm>,
    /// Hessian contributions.
    pub hessian: Vec<HessianTerm>,
}

/// A model in index form: layouts, the per-sample stage and the
/// regularizer's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorModel {
    /// The model's name.
    pub name: String,
    /// Scalar parameter ids, in θ order.
    pub params: Vec<String>,
    /// Data column ids.
    pub data: Vec<String>,
    /// Constant ids.
    pub constants: Vec<String>,
    /// Default constant values.
    pub constant_defaults: Vec<f64>,
    /// Every tensor read or written, parameters first.
    pub tensors: Vec<TensorLayout>,
    /// ℓ(θ; x), averaged over the rows.
    pub sample: Stage,
    /// R(θ), once per pass.
    pub regularizer: Stage,
}

/// Where a model is evaluated: θ, the constants, the data set (row-major)
/// and which rows (all when `rows` is None).
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// θ.
    pub theta: &'a [f64],
    /// The constants.
    pub constants: &'a [f64],
    /// The data set, row-major.
    pub data: &'a [f64],
    /// A selection of rows (a mini-batch), or all.
    pub rows: Option<&'a [usize]>,
}

/// What runs a model's steps: the interpreter ([`TensorModel::evaluate`]),
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
}

/// The interpreter of a model's own steps.
struct Interpreter<'a>(&'a TensorModel);

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
        m.run_stage(&m.sample, level, theta, row, constants, scratch);
    }
    fn regularizer(&self, level: Outputs, theta: &[f64], constants: &[f64], scratch: &mut [f64]) {
        let m = self.0;
        m.run_stage(&m.regularizer, level, theta, &[], constants, scratch);
    }
}

/// Blocks of at most this many entries take their rank-1 terms row by
/// row; larger ones gather [`ROW_BLOCK`] rows into one matrix product,
/// whose packing costs more than it saves on a small block.
pub const DIRECT_UPDATE_ENTRIES: usize = 4096;

/// Rows whose rank-1 Hessian terms are gathered before one matrix product.
pub const ROW_BLOCK: usize = 128;

impl TensorModel {
    /// Number of parameters P.
    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    /// Check every index, shape and program.
    pub fn validate(&self) -> Result<(), InvalidProgram> {
        let err = |m: String| Err(InvalidProgram(format!("{}: {m}", self.name)));
        let limit = |s: Source, stage: &Stage| match s {
            Source::Theta => self.params.len(),
            Source::Row => self.data.len(),
            Source::Constants => self.constants.len(),
            Source::Scratch => stage.scratch,
        };
        for (which, stage) in [("sample", &self.sample), ("regularizer", &self.regularizer)] {
            for t in &self.tensors {
                if t.source != Source::Scratch && t.offset + t.len() > limit(t.source, stage) {
                    return err(format!("tensor {} is out of range", t.name));
                }
            }
            let buffer = |b: usize| -> Result<&TensorLayout, InvalidProgram> {
                match self.tensors.get(b) {
                    Some(t)
                        if t.source == Source::Scratch && t.offset + t.len() <= stage.scratch =>
                    {
                        Ok(t)
                    }
                    _ => Err(InvalidProgram(format!(
                        "{}: {which}: tensor {b} is not a buffer of the stage",
                        self.name
                    ))),
                }
            };
            for (k, s) in stage.steps.iter().enumerate() {
                let out = buffer(s.out)?;
                if s.loops.len() < out.shape.len() || s.loops[..out.shape.len()] != out.shape[..] {
                    return err(format!("{which} step {k}: loops do not match its buffer"));
                }
                let axis_ok = |a: &Axis, n: usize| match *a {
                    Axis::Loop { var, shift } => var < s.loops.len() && s.loops[var] + shift <= n,
                    Axis::Fixed(p) => p < n,
                };
                for load in &s.inputs {
                    let ok = match load {
                        Load::Entry { tensor, index } => {
                            self.tensors.get(*tensor).is_some_and(|t| {
                                t.shape.len() == index.len()
                                    && index.iter().zip(&t.shape).all(|(a, &n)| axis_ok(a, n))
                            })
                        }
                        Load::Position(a) => axis_ok(a, usize::MAX),
                        Load::Delta(a, b) => axis_ok(a, usize::MAX) && axis_ok(b, usize::MAX),
                    };
                    if !ok {
                        return err(format!("{which} step {k}: load {load:?} is out of range"));
                    }
                }
                s.body.validate(s.inputs.len(), 0, 0).map_err(|e| {
                    InvalidProgram(format!("{}: {which} step {k}: {}", self.name, e.0))
                })?;
                if s.body.outputs.len() != 1 {
                    return err(format!("{which} step {k}: one output expected"));
                }
            }
            if let Some(l) = stage.loss
                && !buffer(l)?.shape.is_empty()
            {
                return err(format!("{which}: the loss is not a scalar"));
            }
            let param = |p: usize| match self.tensors.get(p) {
                Some(t) if t.source == Source::Theta => Ok(t),
                _ => Err(InvalidProgram(format!(
                    "{}: {which}: tensor {p} is not a parameter",
                    self.name
                ))),
            };
            for g in &stage.gradient {
                if param(g.param)?.shape != buffer(g.value)?.shape {
                    return err(format!("{which}: a gradient term has the wrong shape"));
                }
            }
            for h in &stage.hessian {
                let (r, c) = h.block();
                let (r, c) = (param(r)?, param(c)?);
                let ok = match h {
                    HessianTerm::Dense { value, .. } => {
                        buffer(*value)?.shape == [r.shape.clone(), c.shape.clone()].concat()
                    }
                    HessianTerm::Product { pairs, u, v, .. } => {
                        buffer(*u)?.shape == r.shape
                            && buffer(*v)?.shape == c.shape
                            && pairs.iter().all(|&(a, b)| {
                                a < r.shape.len() && b < c.shape.len() && r.shape[a] == c.shape[b]
                            })
                    }
                };
                if !ok {
                    return err(format!("{which}: a Hessian term has the wrong shape"));
                }
            }
        }
        Ok(())
    }

    /// L(θ) over the selected rows, with ∇L into `grad[..P]` from
    /// [`Outputs::LossGrad`] and ∇²L (row-major P × P) into `hess[..P²]` at
    /// [`Outputs::LossGradHess`]; the steps interpreted.
    pub fn evaluate(&self, level: Outputs, at: At<'_>, grad: &mut [f64], hess: &mut [f64]) -> f64 {
        self.evaluate_with(&Interpreter(self), level, at, grad, hess)
    }

    /// ∇²L(θ)·v into `out[..P]` (and L(θ) as the result), contracting every
    /// Hessian term with v: the P × P matrix is never formed.
    pub fn hess_vec(&self, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        self.hess_vec_with(&Interpreter(self), at, v, out)
    }

    /// [`TensorModel::evaluate`] with the steps run by `steps` (generated
    /// code; this model's own steps are not read).
    pub fn evaluate_with(
        &self,
        steps: &impl Steps,
        level: Outputs,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        let p = self.n_params();
        let wants = level.rank();
        if wants >= 1 {
            grad[..p].fill(0.0);
        }
        if wants >= 2 {
            hess[..p * p].fill(0.0);
        }
        let loss = self.accumulate(steps, level, at, grad, hess, None);
        if wants >= 2 {
            mirror_blocks(self, hess);
        }
        loss
    }

    /// [`TensorModel::hess_vec`] with the steps run by `steps`.
    pub fn hess_vec_with(&self, steps: &impl Steps, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        let p = self.n_params();
        out[..p].fill(0.0);
        let mut grad = vec![0.0; p];
        self.accumulate(steps, Outputs::LossGradHess, at, &mut grad, out, Some(v))
    }

    /// Both stages into `grad` and `hess` (∇²L, or ∇²L·v with `v`); the loss.
    fn accumulate(
        &self,
        steps: &impl Steps,
        level: Outputs,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
        v: Option<&[f64]>,
    ) -> f64 {
        let mut acc = Accumulator::new(level, grad, hess, v);
        let scale = self.each_row(steps, level, at, &mut acc);
        acc.finish(self, &self.sample, scale);
        let mut reg = Accumulator::new(level, acc.grad, acc.hess, v);
        let mut scratch = vec![0.0; self.regularizer.scratch];
        steps.regularizer(level, at.theta, at.constants, &mut scratch);
        reg.add(self, &self.regularizer, &scratch);
        reg.finish(self, &self.regularizer, 1.0);
        acc.loss * scale + reg.loss
    }

    /// Runs the sample stage on every selected row into `acc`; returns the
    /// factor of the mean (1/N; 1 for a model without data).
    fn each_row(
        &self,
        steps: &impl Steps,
        level: Outputs,
        at: At<'_>,
        acc: &mut Accumulator<'_>,
    ) -> f64 {
        let At {
            theta,
            constants,
            data,
            rows,
        } = at;
        let stage = &self.sample;
        let cols = self.data.len();
        let mut scratch = vec![0.0; stage.scratch];
        if cols == 0 {
            steps.sample(level, theta, &[], constants, &mut scratch);
            acc.add(self, stage, &scratch);
            return 1.0;
        }
        let mut count = 0usize;
        let mut one = |r: usize, acc: &mut Accumulator<'_>| {
            let row = &data[r * cols..(r + 1) * cols];
            steps.sample(level, theta, row, constants, &mut scratch);
            acc.add(self, stage, &scratch);
            count += 1;
        };
        match rows {
            Some(rows) => rows.iter().for_each(|&r| one(r, acc)),
            None => (0..data.len() / cols).for_each(|r| one(r, acc)),
        }
        if count == 0 { 0.0 } else { 1.0 / count as f64 }
    }

    /// Every step of a stage up to `level`, for one row.
    fn run_stage(
        &self,
        stage: &Stage,
        level: Outputs,
        theta: &[f64],
        row: &[f64],
        constants: &[f64],
        scratch: &mut [f64],
    ) {
        let wants = level.rank();
        let mut regs = Vec::new();
        let mut inputs = Vec::new();
        for step in stage.steps.iter().filter(|s| s.level.rank() <= wants) {
            let out = &self.tensors[step.out];
            let (start, len) = (out.offset, out.len());
            scratch[start..start + len].fill(0.0);
            regs.resize(step.body.n_regs as usize, 0.0);
            inputs.resize(step.inputs.len(), 0.0);
            let mut at = vec![0usize; step.loops.len()];
            if step.loops.contains(&0) {
                continue;
            }
            let rank = out.shape.len();
            loop {
                for (slot, load) in inputs.iter_mut().zip(&step.inputs) {
                    *slot = self.load(load, &at, theta, row, constants, scratch);
                }
                let mut value = [0.0];
                step.body.run(&inputs, &[], &[], &mut regs, &mut value);
                let flat = flat_index(&at[..rank], &out.shape);
                scratch[start + flat] += value[0];
                if !advance(&mut at, &step.loops) {
                    break;
                }
            }
        }
    }

    fn load(
        &self,
        load: &Load,
        at: &[usize],
        theta: &[f64],
        row: &[f64],
        constants: &[f64],
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
                    Source::Theta => theta,
                    Source::Row => row,
                    Source::Constants => constants,
                    Source::Scratch => scratch,
                };
                values[t.offset + flat]
            }
            Load::Position(a) => (position(a) + 1) as f64,
            Load::Delta(a, b) => f64::from(u8::from(position(a) == position(b))),
        }
    }
}

/// Row-major flat index of a multi-index.
fn flat_index(at: &[usize], shape: &[usize]) -> usize {
    at.iter().zip(shape).fold(0, |flat, (&i, &n)| flat * n + i)
}

/// The next multi-index (last axis fastest); false after the last.
fn advance(at: &mut [usize], lengths: &[usize]) -> bool {
    for k in (0..at.len()).rev() {
        at[k] += 1;
        if at[k] < lengths[k] {
            return true;
        }
        at[k] = 0;
    }
    false
}

/// Every (ρ, γ) with ρ an entry of `row`, γ one of `col`, and the paired
/// axes equal, as flat indices.
fn each_paired(
    row: &[usize],
    col: &[usize],
    pairs: &[(usize, usize)],
    mut f: impl FnMut(usize, usize),
) {
    let mut r = vec![0usize; row.len()];
    if row.contains(&0) || col.contains(&0) {
        return;
    }
    // Free column axes and their lengths; the paired ones follow ρ.
    let free: Vec<usize> = (0..col.len())
        .filter(|b| !pairs.iter().any(|&(_, pb)| pb == *b))
        .collect();
    let free_len: Vec<usize> = free.iter().map(|&b| col[b]).collect();
    let mut c = vec![0usize; col.len()];
    loop {
        let rf = flat_index(&r, row);
        for &(a, b) in pairs {
            c[b] = r[a];
        }
        let mut k = vec![0usize; free.len()];
        loop {
            for (&b, &v) in free.iter().zip(&k) {
                c[b] = v;
            }
            f(rf, flat_index(&c, col));
            if !advance(&mut k, &free_len) {
                break;
            }
        }
        if !advance(&mut r, row) {
            break;
        }
    }
}

/// The lower blocks of the Hessian from the upper ones: block (U, T) is
/// block (T, U) transposed, for T before U; and within a diagonal block
/// the lower triangle is the upper one, so that the matrix is symmetric to
/// the last bit (its terms, u vᵀ with u ≠ v, round differently on either
/// side).
fn mirror_blocks(m: &TensorModel, hess: &mut [f64]) {
    let p = m.n_params();
    let mut seen = Vec::new();
    for stage in [&m.sample, &m.regularizer] {
        for h in &stage.hessian {
            if !seen.contains(&h.block()) {
                seen.push(h.block());
            }
        }
    }
    for (r, c) in seen {
        let (rt, ct) = (&m.tensors[r], &m.tensors[c]);
        for i in 0..rt.len() {
            let first = if r == c { i + 1 } else { 0 };
            for j in first..ct.len() {
                hess[(ct.offset + j) * p + rt.offset + i] =
                    hess[(rt.offset + i) * p + ct.offset + j];
            }
        }
    }
}

/// Sums the stage's outputs over rows: the loss, the gradient, and the
/// Hessian (dense terms and paired products row by row; outer products
/// gathered [`ROW_BLOCK`] rows at a time into one matrix product), or
/// with `v` the Hessian's product with v.
struct Accumulator<'a> {
    loss: f64,
    grad: &'a mut [f64],
    /// ∇²L (P × P), or ∇²L·v (P) when `v` is given.
    hess: &'a mut [f64],
    v: Option<&'a [f64]>,
    level: u8,
    /// For each outer-product term of the stage (in order): U and V of the
    /// rows gathered so far, row-major (rows × len).
    gathered: Vec<(Vec<f64>, Vec<f64>)>,
    rows: usize,
}

impl<'a> Accumulator<'a> {
    fn new(
        level: Outputs,
        grad: &'a mut [f64],
        hess: &'a mut [f64],
        v: Option<&'a [f64]>,
    ) -> Accumulator<'a> {
        Accumulator {
            loss: 0.0,
            grad,
            hess,
            v,
            level: level.rank(),
            gathered: Vec::new(),
            rows: 0,
        }
    }

    /// One row's (or one pass's) outputs from `scratch`.
    fn add(&mut self, m: &TensorModel, stage: &Stage, scratch: &[f64]) {
        let buf = |b: usize| {
            let t = &m.tensors[b];
            &scratch[t.offset..t.offset + t.len()]
        };
        if let Some(l) = stage.loss {
            self.loss += buf(l)[0];
        }
        if self.level >= 1 {
            for g in &stage.gradient {
                let off = m.tensors[g.param].offset;
                for (o, x) in self.grad[off..].iter_mut().zip(buf(g.value)) {
                    *o += x;
                }
            }
        }
        if self.level < 2 {
            return;
        }
        let p = m.n_params();
        let outer_terms = stage
            .hessian
            .iter()
            .filter(|h| matches!(h, HessianTerm::Product { pairs, .. } if pairs.is_empty()))
            .count();
        if self.gathered.len() < outer_terms {
            self.gathered.resize(outer_terms, (Vec::new(), Vec::new()));
        }
        let mut outer = 0;
        for h in &stage.hessian {
            let (r, c) = h.block();
            let (rt, ct) = (&m.tensors[r], &m.tensors[c]);
            let mirrored = r != c;
            match h {
                HessianTerm::Dense { value, .. } => {
                    let d = buf(*value);
                    let (nr, nc) = (rt.len(), ct.len());
                    match self.v {
                        None => {
                            for i in 0..nr {
                                let at = (rt.offset + i) * p + ct.offset;
                                for (o, x) in self.hess[at..at + nc].iter_mut().zip(&d[i * nc..]) {
                                    *o += x;
                                }
                            }
                        }
                        Some(v) => {
                            for i in 0..nr {
                                for j in 0..nc {
                                    let x = d[i * nc + j];
                                    self.hess[rt.offset + i] += x * v[ct.offset + j];
                                    if mirrored {
                                        self.hess[ct.offset + j] += x * v[rt.offset + i];
                                    }
                                }
                            }
                        }
                    }
                }
                HessianTerm::Product {
                    pairs, u, v: vb, ..
                } => {
                    let (u, w) = (buf(*u), buf(*vb));
                    if let Some(v) = self.v {
                        if pairs.is_empty() {
                            // (u vᵀ) x = u (v·x)
                            let wv: f64 = w.iter().zip(&v[ct.offset..]).map(|(a, b)| a * b).sum();
                            for (o, a) in self.hess[rt.offset..].iter_mut().zip(u) {
                                *o += a * wv;
                            }
                            if mirrored {
                                let uv: f64 =
                                    u.iter().zip(&v[rt.offset..]).map(|(a, b)| a * b).sum();
                                for (o, b) in self.hess[ct.offset..].iter_mut().zip(w) {
                                    *o += b * uv;
                                }
                            }
                        } else {
                            let hess = &mut *self.hess;
                            each_paired(&rt.shape, &ct.shape, pairs, |i, j| {
                                let x = u[i] * w[j];
                                hess[rt.offset + i] += x * v[ct.offset + j];
                                if mirrored {
                                    hess[ct.offset + j] += x * v[rt.offset + i];
                                }
                            });
                        }
                    } else if pairs.is_empty() && u.len() * w.len() <= DIRECT_UPDATE_ENTRIES {
                        // A small block: u vᵀ added row by row.
                        for (i, a) in u.iter().enumerate() {
                            let at = (rt.offset + i) * p + ct.offset;
                            for (h, b) in self.hess[at..at + w.len()].iter_mut().zip(w) {
                                *h += a * b;
                            }
                        }
                    } else if pairs.is_empty() {
                        let (gu, gw) = &mut self.gathered[outer];
                        gu.extend_from_slice(u);
                        gw.extend_from_slice(w);
                    } else {
                        let hess = &mut *self.hess;
                        each_paired(&rt.shape, &ct.shape, pairs, |i, j| {
                            hess[(rt.offset + i) * p + ct.offset + j] += u[i] * w[j];
                        });
                    }
                    if pairs.is_empty() {
                        outer += 1;
                    }
                }
            }
        }
        self.rows += 1;
        if self.rows == ROW_BLOCK {
            self.flush(m, stage);
        }
    }

    /// The gathered outer products into the Hessian: H_block += Uᵀ V.
    fn flush(&mut self, m: &TensorModel, stage: &Stage) {
        let p = m.n_params();
        let mut outer = 0;
        for h in &stage.hessian {
            let HessianTerm::Product {
                row, col, pairs, ..
            } = h
            else {
                continue;
            };
            if !pairs.is_empty() {
                continue;
            }
            if let Some((gu, gw)) = self.gathered.get_mut(outer) {
                let (rt, ct) = (&m.tensors[*row], &m.tensors[*col]);
                let (nr, nc) = (rt.len(), ct.len());
                if nr > 0 && nc > 0 && !gu.is_empty() {
                    let k = gu.len() / nr;
                    let target = &mut self.hess[rt.offset * p + ct.offset..];
                    gemm_transposed_a(nr, k, nc, gu, gw, target, p);
                }
                gu.clear();
                gw.clear();
            }
            outer += 1;
        }
        self.rows = 0;
    }

    /// Adds what is still gathered, and scales the gradient and the Hessian
    /// by `scale` (the mean; the loss is scaled by the caller).
    fn finish(&mut self, m: &TensorModel, stage: &Stage, scale: f64) {
        if self.level >= 2 && self.v.is_none() {
            self.flush(m, stage);
        }
        if scale != 1.0 {
            let p = m.n_params();
            if self.level >= 1 {
                self.grad[..p].iter_mut().for_each(|g| *g *= scale);
            }
            if self.level >= 2 {
                let n = if self.v.is_some() { p } else { p * p };
                self.hess[..n].iter_mut().for_each(|h| *h *= scale);
            }
        }
    }
}

/// C (nr × nc, row stride `ldc`) += Aᵀ B, with A (k × nr) and B (k × nc)
/// row-major: `matrixmultiply`'s dgemm with strides.
fn gemm_transposed_a(
    nr: usize,
    k: usize,
    nc: usize,
    a: &[f64],
    b: &[f64],
    c: &mut [f64],
    ldc: usize,
) {
    assert!(a.len() >= k * nr && b.len() >= k * nc, "gathered rows");
    assert!(c.len() >= (nr - 1) * ldc + nc, "Hessian block");
    // SAFETY: the asserts above keep every access of dgemm within the
    // slices: A is read at i·1 + l·nr for i < nr, l < k; B at l·nc + j;
    // C written at i·ldc + j for i < nr, j < nc.
    unsafe {
        matrixmultiply::dgemm(
            nr,
            k,
            nc,
            1.0,
            a.as_ptr(),
            1,
            nr as isize,
            b.as_ptr(),
            nc as isize,
            1,
            1.0,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

impl std::fmt::Display for Axis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Axis::Loop { var, shift: 0 } => write!(f, "i{var}"),
            Axis::Loop { var, shift } => write!(f, "i{var}+{shift}"),
            Axis::Fixed(p) => write!(f, "{p}"),
        }
    }
}

fn axes(index: &[Axis]) -> String {
    index
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl TensorModel {
    fn write_load(&self, f: &mut std::fmt::Formatter<'_>, load: &Load) -> std::fmt::Result {
        match load {
            Load::Entry { tensor, index } if index.is_empty() => {
                write!(f, "{}", self.tensors[*tensor].name)
            }
            Load::Entry { tensor, index } => {
                write!(f, "{}[{}]", self.tensors[*tensor].name, axes(index))
            }
            Load::Position(a) => write!(f, "pos({a})"),
            Load::Delta(a, b) => write!(f, "δ({a}, {b})"),
        }
    }
}

/// Reads like assembly: each step as its loop nest, inputs and body, then
/// the outputs; the same length whatever the tensors' lengths.
impl std::fmt::Display for TensorModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "; {}", self.name)?;
        for t in self.tensors.iter().filter(|t| t.source != Source::Scratch) {
            writeln!(f, "; {} {:?} {:?} @{}", t.name, t.source, t.shape, t.offset)?;
        }
        for (which, stage) in [("sample", &self.sample), ("regularizer", &self.regularizer)] {
            writeln!(f, "{which}:")?;
            for s in &stage.steps {
                let out = &self.tensors[s.out];
                let rank = out.shape.len();
                let vars: Vec<String> = (0..rank).map(|k| format!("i{k}")).collect();
                write!(f, "  {}[{}] = ", out.name, vars.join(", "))?;
                if s.loops.len() > rank {
                    let summed: Vec<String> = (rank..s.loops.len())
                        .map(|k| format!("i{k}<{}", s.loops[k]))
                        .collect();
                    write!(f, "Σ({}) ", summed.join(", "))?;
                }
                write!(f, "f(")?;
                for (k, l) in s.inputs.iter().enumerate() {
                    if k > 0 {
                        write!(f, ", ")?;
                    }
                    self.write_load(f, l)?;
                }
                writeln!(
                    f,
                    ") over {:?}, {} instructions, {:?}",
                    s.loops,
                    s.body.instructions.len(),
                    s.level
                )?;
            }
            if let Some(l) = stage.loss {
                writeln!(f, "  loss += {}", self.tensors[l].name)?;
            }
            for g in &stage.gradient {
                let (p, v) = (&self.tensors[g.param], &self.tensors[g.value]);
                writeln!(f, "  grad[{}] += {}", p.name, v.name)?;
            }
            for h in &stage.hessian {
                let (r, c) = h.block();
                let (r, c) = (&self.tensors[r].name, &self.tensors[c].name);
                match h {
                    HessianTerm::Dense { value, .. } => {
                        writeln!(f, "  hess[{r}, {c}] += {}", self.tensors[*value].name)?
                    }
                    HessianTerm::Product { pairs, u, v, .. } => writeln!(
                        f,
                        "  hess[{r}, {c}] += {} ⊗ {}{}",
                        self.tensors[*u].name,
                        self.tensors[*v].name,
                        if pairs.is_empty() {
                            String::new()
                        } else {
                            format!(" on equal axes {pairs:?}")
                        }
                    )?,
                }
            }
        }
        Ok(())
    }
}
