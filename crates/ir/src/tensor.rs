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
//!
//! The accumulation is shared with generated code ([`Steps`]): steps that
//! take W rows at once ([`Steps::sample_lanes`]) run in an AVX2-compiled
//! block loop with per-lane sums; only the upper blocks of the Hessian are
//! accumulated and then mirrored; a pass can be split into row sums and
//! their completion ([`TensorModel::sum_rows_with`],
//! [`TensorModel::finish_with`]) for a parallel pass; the scratch lives in a
//! per-thread workspace, so a warm pass allocates nothing.

use crate::lanes::Lanes;
use crate::{At, Instr, InvalidProgram, Operand, Outputs, Program};
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
    /// The direction v of a Hessian–vector product, laid out like θ, from
    /// `offset` (read by the steps of a [`crate::tangent::tangent_model`]).
    Direction,
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

/// `grad[tensor] += value` (entry by entry; both have the tensor's shape),
/// or, with `outer`, `grad[tensor] += scale · u ⊗ v` without the buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientTerm {
    /// The parameter tensor.
    pub param: usize,
    /// The buffer holding ∂/∂ of each of its entries (not computed when
    /// the term is `outer`).
    pub value: usize,
    /// The term as an outer product (see [`TensorModel::gather_outer_gradients`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer: Option<OuterGradient>,
}

/// A per-sample gradient that is an outer product, `scale · u[ρ] · v[γ]`
/// with the parameter's axes split between u (the first) and v (the rest):
/// (p − y) xᵀ of a softmax, (p − y) x of logistic regression (u a scalar).
/// Summed over the rows as one matrix product Uᵀ V per block of rows, it is
/// never written out row by row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OuterGradient {
    /// A buffer or data tensor over the first axes (a scalar for none).
    pub u: usize,
    /// A buffer or data tensor over the remaining axes.
    pub v: usize,
    /// The constant factor.
    pub scale: f64,
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
    /// The plans of its passes, built on first use (not part of the
    /// model's value).
    #[serde(skip)]
    pub plans: PlanCache,
    /// Its [`crate::tangent::tangent_model`], which
    /// [`TensorModel::hess_vec`] runs when it is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tangent: Option<Box<TensorModel>>,
}

/// The plans of a model's passes (which scratch entries hold the loss, the
/// gradient and each Hessian term, and how each term is added), built on a
/// pass's first use and kept, so a call does not list them again. A plan
/// depends only on the model, the stage, the output level, whether the pass
/// is a Hessian–vector product, whether it is shorter than a gathered block
/// of rows, and the lanes. Not part of the model's value: every cache
/// compares equal, a clone starts empty, serde skips it. The list of the
/// Hessian's blocks to mirror is kept with them.
#[derive(Default)]
pub struct PlanCache(Box<PlanSlots>);

/// Stage (2) × level (3) × Hessian–vector product (2) × short pass (2) ×
/// lanes 0, 4 or 8 (3).
const PLAN_SLOTS: usize = 2 * 3 * 2 * 2 * 3;

struct PlanSlots {
    plans: [std::sync::OnceLock<Plan>; PLAN_SLOTS],
    /// The Hessian's upper blocks that have terms, each once (mirrored at
    /// the end of a pass).
    blocks: std::sync::OnceLock<Vec<(usize, usize)>>,
}

impl Default for PlanSlots {
    fn default() -> PlanSlots {
        PlanSlots {
            plans: std::array::from_fn(|_| std::sync::OnceLock::new()),
            blocks: std::sync::OnceLock::new(),
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

/// The interpreter of a model's own steps (what [`TensorModel::evaluate`]
/// runs), one row at a time.
#[derive(Debug, Clone, Copy)]
pub struct Interpreter<'a>(pub &'a TensorModel);

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
    pub model: &'a TensorModel,
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

/// In a pass over fewer than [`ROW_BLOCK`] rows, blocks of at most this
/// many entries take their rank-1 terms row by row (a matrix product's
/// packing costs more than it saves there); otherwise rank-1 terms are
/// gathered [`ROW_BLOCK`] rows at a time into one matrix product.
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
            Source::Row => self.data.len(),
            Source::Constants => self.constants.len(),
            Source::Scratch => stage.scratch,
            Source::Theta | Source::Direction => self.params.len(),
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

    /// ∇²L(θ)·v into `out[..P]` (and L(θ) as the result), the P × P matrix
    /// never formed: by the model's [`TensorModel::tangent`] when it has
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

    /// Turns every per-sample gradient term whose buffer is an outer
    /// product of two tensors — a step with no reduction whose body is
    /// `c · a[i₀…] · b[…iᵣ]`, a and b buffers or data, the buffer read by
    /// nothing else — into an [`OuterGradient`], and drops the step: the
    /// passes then sum it as one matrix product per block of rows instead
    /// of writing P numbers per row and adding them. The same in the
    /// attached tangent model.
    pub fn gather_outer_gradients(&mut self) {
        if let Some(t) = self.tangent.as_deref_mut() {
            t.gather_outer_gradients();
        }
        for k in 0..self.sample.gradient.len() {
            let g = &self.sample.gradient[k];
            if g.outer.is_some() {
                continue;
            }
            let value = g.value;
            let Some(at) = self.sample.steps.iter().position(|s| s.out == value) else {
                continue;
            };
            let read_elsewhere = self.sample.loss == Some(value)
                || self
                    .sample
                    .gradient
                    .iter()
                    .any(|h| h.value == value && h.param != g.param)
                || self.sample.steps.iter().any(|s| {
                    s.inputs
                        .iter()
                        .any(|l| matches!(l, Load::Entry { tensor, .. } if *tensor == value))
                })
                || self.sample.hessian.iter().any(|h| match h {
                    HessianTerm::Dense { value: b, .. } => *b == value,
                    HessianTerm::Product { u, v, .. } => *u == value || *v == value,
                });
            if read_elsewhere {
                continue;
            }
            if let Some(outer) = self.outer_form(&self.sample.steps[at]) {
                self.sample.steps.remove(at);
                self.sample.gradient[k].outer = Some(outer);
            }
        }
    }

    /// A step's value as `scale · a ⊗ b`, if it is one (see
    /// [`TensorModel::gather_outer_gradients`]).
    fn outer_form(&self, step: &Step) -> Option<OuterGradient> {
        let out = &self.tensors[step.out];
        let rank = out.shape.len();
        if rank == 0 || step.loops.len() != rank {
            return None;
        }
        // Each register as a product of loads and numbers.
        let mut factors: std::collections::HashMap<u32, (Vec<u32>, f64)> = Default::default();
        let of = |o: &Operand, f: &std::collections::HashMap<u32, (Vec<u32>, f64)>| match *o {
            Operand::Param(k) => Some((vec![k], 1.0)),
            Operand::Literal(c) => Some((vec![], c)),
            Operand::Reg(r) => f.get(&r).cloned(),
            Operand::Data(_) | Operand::Constant(_) => None,
        };
        for ins in &step.body.instructions {
            let product = match ins {
                Instr::Mul { args, .. } => args.iter().try_fold((vec![], 1.0), |(mut l, c), a| {
                    let (more, d) = of(a, &factors)?;
                    l.extend(more);
                    Some((l, c * d))
                }),
                Instr::Neg { arg, .. } => of(arg, &factors).map(|(l, c)| (l, -c)),
                Instr::Copy { src, .. } => of(src, &factors),
                _ => None,
            };
            match product {
                Some(p) => factors.insert(ins.dst(), p),
                None => factors.remove(&ins.dst()),
            };
        }
        let (loads, scale) = of(step.body.outputs.first()?, &factors)?;
        let [a, b] = loads[..] else { return None };
        let entry = |k: u32| match &step.inputs[k as usize] {
            Load::Entry { tensor, index } => {
                let t = &self.tensors[*tensor];
                let vars: Option<Vec<usize>> = index
                    .iter()
                    .map(|axis| match *axis {
                        Axis::Loop { var, shift: 0 } => Some(var),
                        _ => None,
                    })
                    .collect();
                matches!(t.source, Source::Scratch | Source::Row).then_some((*tensor, vars?))
            }
            _ => None,
        };
        let ((ta, va), (tb, vb)) = (entry(a)?, entry(b)?);
        let in_order =
            |vars: &[usize], from: usize| vars.iter().enumerate().all(|(i, &v)| v == from + i);
        let fits = |ta: usize, va: &[usize], tb: usize, vb: &[usize]| {
            va.len() + vb.len() == rank
                && in_order(va, 0)
                && in_order(vb, va.len())
                && self.tensors[ta].shape[..] == out.shape[..va.len()]
                && self.tensors[tb].shape[..] == out.shape[va.len()..]
        };
        if fits(ta, &va, tb, &vb) {
            Some(OuterGradient {
                u: ta,
                v: tb,
                scale,
            })
        } else if fits(tb, &vb, ta, &va) {
            Some(OuterGradient {
                u: tb,
                v: ta,
                scale,
            })
        } else {
            None
        }
    }

    /// This model with its [`crate::tangent::tangent_model`] attached.
    pub fn with_tangent(mut self) -> Result<TensorModel, InvalidProgram> {
        self.tangent = None;
        let tangent = crate::tangent::tangent_model(&self)?;
        self.tangent = Some(Box::new(tangent));
        Ok(self)
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
    /// a fixed order. [`TensorModel::finish_with`] completes it.
    pub fn sum_rows_with(
        &self,
        steps: &impl Steps,
        level: Outputs,
        at: At<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> RowSums {
        let n = self.row_count(at);
        let lanes = match steps.lanes() {
            w @ (4 | 8) if !self.data.is_empty() && n >= w => w,
            _ => 0,
        };
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
                _ => self.each_row(steps, level, at, |s, row| acc.add(s, row), scratch),
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

    /// The second half of a pass: the mean of the row sums, the
    /// regularizer, and the lower blocks of the Hessian mirrored from the
    /// upper ones; returns L(θ).
    #[allow(clippy::too_many_arguments)]
    pub fn finish_with(
        &self,
        steps: &impl Steps,
        level: Outputs,
        theta: &[f64],
        constants: &[f64],
        sums: RowSums,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        let scale = sums.scale();
        scale_outputs(self.n_params(), level, None, scale, grad, hess);
        let loss = with_workspace(|ws| {
            let Workspace {
                scratch, gathered, ..
            } = ws;
            let plan = self.plan(true, level, false, 1, 0);
            gathered.resize(plan.gathered_len, 0.0);
            scratch.clear();
            scratch.resize(self.regularizer.scratch, 0.0);
            steps.regularizer(level, theta, constants, scratch);
            let mut acc = Accumulator::new(self, plan, level, grad, hess, None, gathered);
            acc.add(scratch, &[]);
            acc.flush();
            let loss = acc.loss;
            if level.rank() >= 2 {
                mirror_blocks(self, hess);
            }
            loss
        });
        sums.loss * scale + loss
    }

    /// [`TensorModel::hess_vec`] with the steps run by `steps`.
    pub fn hess_vec_with(&self, steps: &impl Steps, at: At<'_>, v: &[f64], out: &mut [f64]) -> f64 {
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
            let rows = self.each_row(steps, level, at, |s, row| acc.add(s, row), scratch);
            let sums = RowSums {
                loss: acc.loss,
                rows,
            };
            let scale = sums.scale();
            scale_outputs(p, level, Some(v), scale, grad, out);
            let plan = self.plan(true, level, true, 1, 0);
            scratch.clear();
            scratch.resize(self.regularizer.scratch, 0.0);
            steps.regularizer(level, at.theta, at.constants, scratch);
            let mut acc = Accumulator::new(self, plan, level, grad, out, Some(v), gathered);
            acc.add(scratch, &[]);
            sums.loss * scale + acc.loss
        })
    }

    /// diag(∇²L) into `out` (and L), with the steps run by `steps`: the
    /// Hessian-level steps row by row, and of each term only the entries on
    /// the diagonal of ∇²L (those of its blocks (T, T) with row = column),
    /// so no block is formed. What a Jacobi preconditioner needs.
    pub fn hess_diag_with(&self, steps: &impl Steps, at: At<'_>, out: &mut [f64]) -> f64 {
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
                |scratch, _| {
                    loss += plan.loss.map_or(0.0, |l| scratch[l]);
                    plan.add_diagonal(scratch, out);
                },
                &mut ws.scratch,
            );
            let scale = RowSums { loss, rows }.scale();
            out[..p].iter_mut().for_each(|d| *d *= scale);
            let plan = self.plan(true, level, true, 1, 0);
            let scratch = &mut ws.scratch;
            scratch.clear();
            scratch.resize(self.regularizer.scratch, 0.0);
            steps.regularizer(level, at.theta, at.constants, scratch);
            plan.add_diagonal(scratch, out);
            loss * scale + plan.loss.map_or(0.0, |l| scratch[l])
        })
    }

    /// diag(∇²L) by the model's own steps (see [`TensorModel::hess_diag_with`]).
    pub fn hess_diag(&self, at: At<'_>, out: &mut [f64]) -> f64 {
        self.hess_diag_with(&Interpreter(self), at, out)
    }

    /// The plan of a pass over `n_rows` rows of the sample stage (or of the
    /// regularizer), built on first use.
    fn plan(
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

    /// The number of rows a pass at `at` reads.
    fn row_count(&self, at: At<'_>) -> usize {
        match (at.rows.selected(), self.data.len()) {
            (_, 0) => 1,
            (Some(rows), _) => rows.len(),
            (None, cols) => at.data.len() / cols,
        }
    }

    /// Runs the sample stage on every selected row into `acc`; returns the
    /// number of rows the mean is over (1 for a model without data, whose
    /// stage runs once).
    fn each_row(
        &self,
        steps: &impl Steps,
        level: Outputs,
        at: At<'_>,
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
        scratch.resize(self.sample.scratch, 0.0);
        if cols == 0 {
            steps.sample(level, theta, &[], constants, scratch);
            add(scratch, &[]);
            return 1;
        }
        let mut one = |r: usize| {
            let row = &data[r * cols..(r + 1) * cols];
            steps.sample(level, theta, row, constants, scratch);
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
    fn rows_in_lanes<const W: usize>(
        &self,
        steps: &impl Steps,
        level: Outputs,
        at: At<'_>,
        acc: &mut Accumulator<'_>,
        scratch: &mut Vec<f64>,
        block: &mut Vec<f64>,
    ) -> usize {
        let n = self.row_count(at);
        let full = n / W * W;
        scratch.clear();
        scratch.resize(self.sample.scratch * W, 0.0);
        block.clear();
        block.resize(self.data.len() * W, 0.0);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { lane_blocks_avx2::<W>(self, steps, level, at, full, acc, scratch, block) };
        } else {
            lane_blocks::<W>(self, steps, level, at, full, acc, scratch, block);
        }
        #[cfg(not(target_arch = "x86_64"))]
        lane_blocks::<W>(self, steps, level, at, full, acc, scratch, block);
        // The rest one row at a time.
        let cols = self.data.len();
        scratch.clear();
        scratch.resize(self.sample.scratch, 0.0);
        for k in full..n {
            let r = at.rows.selected().map_or(k, |rows| rows[k]);
            let row = &at.data[r * cols..(r + 1) * cols];
            steps.sample(level, at.theta, row, at.constants, scratch);
            acc.add(scratch, row);
        }
        n
    }

    /// Every step of a stage up to `level`, for one row.
    #[allow(clippy::too_many_arguments)]
    fn run_stage(
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
                scratch[start + flat] += value[0];
                if !advance(&mut at, &step.loops) {
                    break;
                }
            }
        }
    }

    fn load(&self, load: &Load, at: &[usize], sources: Sources<'_>, scratch: &[f64]) -> f64 {
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
struct Sources<'a> {
    theta: &'a [f64],
    row: &'a [f64],
    constants: &'a [f64],
    direction: &'a [f64],
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

/// For every entry of a tensor of `shape` (row-major), its indices on
/// `axes` as one mixed-radix number, appended to `out`: two entries of a
/// δ-pattern product's row and column tensors pair exactly when their keys
/// are equal.
fn pair_keys(shape: &[usize], axes: impl Iterator<Item = usize> + Clone, out: &mut Vec<usize>) {
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
fn paired_entries(
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

/// The first `full` selected rows of `at`, W at a time: each block of
/// rows transposed into `block` (column by column), its steps run by
/// [`Steps::sample_lanes`] and added by [`Accumulator::add_lanes`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lane_blocks<const W: usize>(
    m: &TensorModel,
    steps: &impl Steps,
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
        acc.add_lanes::<W>(scratch, &lane_rows);
    }
}

/// W consecutive rows of `cols` columns into `block`, column by column
/// (`block[j·W + r]` is column j of row r). The common small column counts
/// get a copy with a fixed count, which the compiler turns into whole-register
/// shuffles instead of W·cols scalar moves.
#[inline(always)]
fn transpose_rows<const W: usize>(
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
const TILE: usize = 4;

/// [`transpose_rows`] for wide rows: TILE rows at a time, TILE columns of
/// them at a time (a square transposed in registers: one load and one
/// store per TILE values, where moving value by value costs a load and a
/// store each and was most of a pass at a thousand columns), the columns
/// past the last whole square one by one. `ahead`, the next W rows, is
/// asked into the cache meanwhile.
#[inline(always)]
fn transpose_rows_tiled<const W: usize>(
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
fn strip(rows: &[f64], lane0: usize, cols: usize) -> [&[f64]; TILE] {
    std::array::from_fn(|k| &rows[(lane0 + k) * cols..(lane0 + k + 1) * cols])
}

/// The first `whole` columns of TILE rows into lanes `lane0..lane0 + TILE`
/// of `block`, a TILE × TILE square at a time.
#[inline(always)]
fn transpose_strip<const W: usize>(
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

/// [`transpose_strip`] with each square in four registers: two unpacks and
/// a swap of 128-bit halves per pair of rows (the compiler does not find
/// this on its own, and moves the values one by one). Moves only, so the
/// values are those of the portable path. The cache lines of `next` (the
/// same columns of later rows) are prefetched on the way.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn transpose_strip_avx<const W: usize>(
    four: [&[f64]; TILE],
    next: Option<[&[f64]; TILE]>,
    lane0: usize,
    whole: usize,
    block: &mut [f64],
) {
    use std::arch::x86_64::{
        _MM_HINT_T0, _mm_prefetch, _mm256_loadu_pd, _mm256_permute2f128_pd, _mm256_storeu_pd,
        _mm256_unpackhi_pd, _mm256_unpacklo_pd,
    };
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
            let [a, b, c, d] = src.map(|row| _mm256_loadu_pd(row.add(j0)));
            let (ab_even, ab_odd) = (_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b));
            let (cd_even, cd_odd) = (_mm256_unpacklo_pd(c, d), _mm256_unpackhi_pd(c, d));
            let columns = [
                _mm256_permute2f128_pd::<0x20>(ab_even, cd_even),
                _mm256_permute2f128_pd::<0x20>(ab_odd, cd_odd),
                _mm256_permute2f128_pd::<0x31>(ab_even, cd_even),
                _mm256_permute2f128_pd::<0x31>(ab_odd, cd_odd),
            ];
            for (j, column) in columns.into_iter().enumerate() {
                _mm256_storeu_pd(dst.add((j0 + j) * W + lane0), column);
            }
        }
    }
}

/// Values of a 64-byte cache line.
#[cfg(target_arch = "x86_64")]
const CACHE_LINE: usize = 8;

#[inline(always)]
fn transpose_rows_fixed<const W: usize, const NC: usize>(rows: &[f64], block: &mut [f64]) {
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
fn lane_blocks_avx2<const W: usize>(
    m: &TensorModel,
    steps: &impl Steps,
    level: Outputs,
    at: At<'_>,
    full: usize,
    acc: &mut Accumulator<'_>,
    scratch: &mut [f64],
    block: &mut [f64],
) {
    lane_blocks::<W>(m, steps, level, at, full, acc, scratch, block);
}

/// `grad[e] += a[0]·xs[0][e] + … + a[W−1]·xs[W−1][e]`, added in that
/// order (so the bits are those of W rows added one after the other), a
/// few entries at a time: one load and one store of the gradient per W
/// rows, where adding row by row loads and stores it W times.
#[inline(always)]
fn add_scaled_rows<const W: usize>(grad: &mut [f64], a: &[f64; W], xs: &[&[f64]; W]) {
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

/// Per-lane sums of a rank-1 term: `sums[i][j] += u[i] · v[j]` lane by
/// lane (j ≥ i in a diagonal block), with u, v and the sums laid out entry
/// by entry, W lanes each. The common small column counts get their own
/// copy with a fixed trip count, which the compiler unrolls: the loop
/// overhead per entry is most of the cost at a few columns.
#[inline(always)]
fn rank1_lane_sums<const W: usize>(sums: &mut [f64], us: &[f64], vs: &[f64], diagonal: bool) {
    macro_rules! fixed {
        ($($nc:literal)*) => {
            match vs.len() / W {
                $($nc => rank1_lane_sums_fixed::<W, $nc>(sums, us, vs, diagonal),)*
                _ => rank1_lane_sums_any::<W>(sums, us, vs, diagonal),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

#[inline(always)]
fn rank1_lane_sums_fixed<const W: usize, const NC: usize>(
    sums: &mut [f64],
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
        let first = if diagonal { i } else { 0 };
        for j in first..NC {
            sums_i[j] = (Lanes::<W>(sums_i[j]) + a * Lanes::<W>(vs[j])).0;
        }
    }
}

#[inline(always)]
fn rank1_lane_sums_any<const W: usize>(sums: &mut [f64], us: &[f64], vs: &[f64], diagonal: bool) {
    let nc = vs.len() / W;
    let rows = us.chunks_exact(W).zip(sums.chunks_exact_mut(nc * W));
    for (i, (a, sums_i)) in rows.enumerate() {
        let a = Lanes::<W>::load(a);
        let first = if diagonal { i } else { 0 };
        let cols = vs[first * W..]
            .chunks_exact(W)
            .zip(sums_i[first * W..].chunks_exact_mut(W));
        for (b, h) in cols {
            (Lanes::<W>::load(h) + a * Lanes::<W>::load(b)).store(h);
        }
    }
}

/// The lower blocks of the Hessian from the upper ones: block (U, T) is
/// block (T, U) transposed, for T before U; and within a diagonal block the
/// lower triangle is the upper one (only the upper one is accumulated).
/// The list of blocks is made on first use and kept with the plans.
fn mirror_blocks(m: &TensorModel, hess: &mut [f64]) {
    let p = m.n_params();
    let blocks = m.plans.0.blocks.get_or_init(|| {
        let mut blocks = Vec::new();
        for stage in [&m.sample, &m.regularizer] {
            for h in &stage.hessian {
                if !blocks.contains(&h.block()) {
                    blocks.push(h.block());
                }
            }
        }
        blocks
    });
    for &(r, c) in blocks {
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

/// ∇L and ∇²L (or ∇²L·v) times `scale` (the mean over rows).
fn scale_outputs(
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
/// ([`TensorModel::sum_rows_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowSums {
    /// Σ ℓ over the rows.
    pub loss: f64,
    /// The number of rows (1 for a model without data).
    pub rows: usize,
}

impl RowSums {
    /// The factor of the mean: 1/rows (0 for no rows).
    fn scale(self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            1.0 / self.rows as f64
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
struct Workspace {
    scratch: Vec<f64>,
    /// The gathered rows of every outer-product term.
    gathered: Vec<f64>,
    /// The gradient a Hessian–vector product computes on the way.
    grad: Vec<f64>,
    /// Per-lane sums of a pass in lanes (see [`Plan::lane_sums_len`]).
    lane_sums: Vec<f64>,
    /// W rows, column by column.
    block: Vec<f64>,
    /// One lane's u and v of a term added lane by lane.
    spare: Vec<f64>,
}

thread_local! {
    static WORKSPACE: std::cell::Cell<Option<Box<Workspace>>> =
        const { std::cell::Cell::new(None) };
}

/// Runs `f` with this thread's workspace (a fresh one if it is in use).
fn with_workspace<R>(f: impl FnOnce(&mut Workspace) -> R) -> R {
    let mut ws = WORKSPACE.with(std::cell::Cell::take).unwrap_or_default();
    let result = f(&mut ws);
    WORKSPACE.with(|w| w.set(Some(ws)));
    result
}

/// How one Hessian term is added.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TermKind {
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
struct Term {
    kind: TermKind,
    /// First row and column of the block in ∇²L.
    row: usize,
    col: usize,
    /// The block's shape.
    rows: usize,
    cols: usize,
    /// Scratch offsets of u and v (of the dense block in `u`).
    u: usize,
    v: usize,
    /// A block on the diagonal (T, T): only its upper triangle is added.
    diagonal: bool,
}

impl Term {
    /// The lengths of what the term reads: u (or the dense block) and v.
    fn lengths(&self) -> (usize, usize) {
        match self.kind {
            TermKind::Dense => (self.rows * self.cols, 0),
            _ => (self.rows, self.cols),
        }
    }
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
struct OuterPlan {
    at: usize,
    rows: usize,
    cols: usize,
    u: (Source, usize),
    v: (Source, usize),
    scale: f64,
    start: usize,
}

/// A stage's outputs as scratch offsets, resolved once per kind of pass
/// (see [`PlanCache`]).
#[derive(Debug, Default)]
struct Plan {
    loss: Option<usize>,
    /// (gradient offset, scratch offset, length).
    gradient: Vec<(usize, usize, usize)>,
    /// The gradient terms that are outer products.
    outer: Vec<OuterPlan>,
    terms: Vec<Term>,
    /// The (row, column) entries of the paired terms, flat within their
    /// block.
    entries: Vec<(usize, usize)>,
    /// The keys of the paired terms of a ∇²L·v pass ([`TermKind::PairedKeys`]).
    keys: Vec<usize>,
    /// Length of the gathered rows of all gathered terms.
    gathered_len: usize,
    /// Length of the per-lane sums of a pass in W lanes: the loss (W), the
    /// gradient (P·W) and the lane-summed terms (rows·cols·W each).
    lane_sums_len: usize,
}

impl Plan {
    /// The diagonal entries of ∇²L among one row's Hessian terms (read from
    /// `scratch`) added into `diag`: only blocks (T, T) have any, entry
    /// (i, i) of each.
    fn add_diagonal(&self, scratch: &[f64], diag: &mut [f64]) {
        for t in self.terms.iter().filter(|t| t.diagonal) {
            let (lu, lv) = t.lengths();
            let (u, w) = (&scratch[t.u..t.u + lu], &scratch[t.v..t.v + lv]);
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
    fn new(
        m: &TensorModel,
        stage: &Stage,
        level: Outputs,
        v: bool,
        short: bool,
        lanes: usize,
    ) -> Plan {
        let at = |b: usize| m.tensors[b].offset;
        let mut walk = Vec::new();
        let mut plan = Plan {
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
            let (kind, u, v_at) = match h {
                HessianTerm::Dense { value, .. } => (TermKind::Dense, at(*value), 0),
                HessianTerm::Product { pairs, u, v: w, .. } => {
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
                    (kind, at(*u), at(*w))
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
                diagonal: r == c,
            });
        }
        plan
    }
}

/// Sums a stage's outputs over rows: the loss, the gradient, and the
/// Hessian's upper blocks (dense terms and paired products row by row;
/// small outer products too, or lane by lane in a pass in lanes; large ones
/// gathered [`ROW_BLOCK`] rows at a time into one matrix product), or with
/// `v` the Hessian's product with v (every term contracted row by row).
struct Accumulator<'a> {
    model: &'a TensorModel,
    plan: &'a Plan,
    loss: f64,
    grad: &'a mut [f64],
    /// ∇²L (P × P), or ∇²L·v (P) when `v` is given.
    hess: &'a mut [f64],
    v: Option<&'a [f64]>,
    level: u8,
    gathered: &'a mut [f64],
    /// Rows gathered since the last flush.
    rows: usize,
    /// Per-lane sums (a pass in lanes).
    lane_sums: &'a mut [f64],
    /// One lane's values of a term.
    spare: Vec<f64>,
}

impl<'a> Accumulator<'a> {
    fn new(
        model: &'a TensorModel,
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
    fn add(&mut self, scratch: &[f64], row: &[f64]) {
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
        if self.level >= 2 {
            for term in &plan.terms {
                let (lu, lv) = term.lengths();
                let (u, w) = (&scratch[term.u..term.u + lu], &scratch[term.v..term.v + lv]);
                match self.v {
                    Some(v) => self.add_times_v(term, u, w, v),
                    None => self.add_term(term, u, w),
                }
            }
        }
        self.end_rows(1);
    }

    /// `n` more rows gathered (when the pass gathers any: Hessian terms or
    /// outer-product gradients); a full block is flushed.
    #[inline(always)]
    fn end_rows(&mut self, n: usize) {
        if self.level >= 2 || !self.plan.outer.is_empty() {
            self.rows += n;
            if self.rows == ROW_BLOCK {
                self.flush();
            }
        }
    }

    /// W rows' outputs from `scratch` in lanes (entry e of lane r at
    /// `scratch[e·W + r]`): the loss, the gradient, the small rank-1 terms
    /// and the small δ-pattern terms into per-lane sums, the large rank-1
    /// terms gathered, the others lane by lane.
    #[inline(always)]
    fn add_lanes<const W: usize>(&mut self, scratch: &[f64], rows: &[&[f64]; W]) {
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
            match t.kind {
                TermKind::Lanes(start) => {
                    let sums = &mut self.lane_sums[start..start + nr * nc * W];
                    let us = &scratch[t.u * W..(t.u + nr) * W];
                    let vs = &scratch[t.v * W..(t.v + nc) * W];
                    rank1_lane_sums::<W>(sums, us, vs, t.diagonal);
                }
                TermKind::Gathered(start) => {
                    let (gu, gw) = self.gathered[start..].split_at_mut(ROW_BLOCK * nr);
                    for lane in 0..W {
                        let r = self.rows + lane;
                        for (i, o) in gu[r * nr..(r + 1) * nr].iter_mut().enumerate() {
                            *o = scratch[(t.u + i) * W + lane];
                        }
                        for (j, o) in gw[r * nc..(r + 1) * nc].iter_mut().enumerate() {
                            *o = scratch[(t.v + j) * W + lane];
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
                        let a = Lanes::<W>::load(&scratch[(t.u + i) * W..]);
                        let b = Lanes::<W>::load(&scratch[(t.v + j) * W..]);
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
                            *o = scratch[(t.u + e) * W + lane];
                        }
                        for (e, o) in spare[lu..].iter_mut().enumerate() {
                            *o = scratch[(t.v + e) * W + lane];
                        }
                        let (u, w) = spare.split_at(lu);
                        self.add_term(t, u, w);
                    }
                    self.spare = spare;
                }
            }
        }
        self.end_rows(W);
    }

    /// The per-lane sums into the outputs (each sum pairwise over its
    /// lanes, always in the same order).
    fn sum_lanes<const W: usize>(&mut self) {
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
    /// in `u`).
    #[inline]
    fn add_term(&mut self, t: &Term, u: &[f64], w: &[f64]) {
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
                for (i, a) in u.iter().enumerate() {
                    let first = if t.diagonal { i } else { 0 };
                    let at = (t.row + i) * p + t.col;
                    for (h, b) in self.hess[at + first..at + nc].iter_mut().zip(&w[first..]) {
                        *h += a * b;
                    }
                }
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
    fn add_times_v(&mut self, t: &Term, u: &[f64], w: &[f64], v: &[f64]) {
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
    fn flush(&mut self) {
        let p = self.model.n_params();
        let k = self.rows;
        self.rows = 0;
        if k == 0 {
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
const PANEL: usize = 96;

/// The upper triangle of C (n × n, row stride `ldc`) += Aᵀ B, with A and
/// B (k × n) row-major: one product per panel of columns, over the rows
/// up to the panel's end (about half the work of the whole product).
fn gemm_upper(n: usize, k: usize, a: &[f64], b: &[f64], c: &mut [f64], ldc: usize) {
    for j0 in (0..n).step_by(PANEL) {
        let j1 = (j0 + PANEL).min(n);
        gemm_transposed_a(j1, k, j1 - j0, 1.0, a, n, &b[j0..], n, &mut c[j0..], ldc);
    }
}

/// C (m × n, row stride `ldc`) += α Aᵀ B, with A (k × m, row stride `lda`)
/// and B (k × n, row stride `ldb`): `matrixmultiply`'s dgemm with strides.
#[allow(clippy::too_many_arguments)]
fn gemm_transposed_a(
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
