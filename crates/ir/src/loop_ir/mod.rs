//! Index form in the IR: loops over index ranges, reductions, and the
//! tensor operations of a Hessian (rank-1 products, Kronecker-delta
//! patterns), whose size does not depend on the tensors' lengths.
//!
//! A [`LoopProgram`] reads θ, one data row and the constants as named
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
//! regularizer (once per pass). [`LoopProgram::evaluate`] and
//! [`LoopProgram::hess_vec`] are the interpreter; a Hessian–vector product
//! contracts the terms with v and never forms the P × P matrix.
//!
//! The accumulation is shared with generated code ([`Steps`]): steps that
//! take W rows at once ([`Steps::sample_lanes`]) run in an AVX2-compiled
//! block loop with per-lane sums; only the upper blocks of the Hessian are
//! accumulated and then mirrored; a pass can be split into row sums and
//! their completion ([`LoopProgram::sum_rows_with`],
//! [`LoopProgram::finish_with`]) for a parallel pass; the scratch lives in a
//! per-thread workspace, so a warm pass allocates nothing.

use crate::lanes::Lanes;
use crate::{At, Instr, InvalidProgram, Operand, Outputs, Program};
use serde::{Deserialize, Serialize};

mod accumulate;
mod pass;
mod share;
mod steps;
mod transpose;
use accumulate::*;
pub use accumulate::{
    DeltaPattern, ENTRY_BY_ENTRY_PARAMS, Fill, LANE_SUM_ENTRIES, LaneSumTerm, RowTerm,
    RowTermAddition, RowTermForm, ScaledGradient, ShortPass,
};
use pass::*;
pub use pass::{DIRECT_UPDATE_ENTRIES, PlanCache, ROW_BLOCK, RowSums};
pub use steps::{Interpreter, Phase, Steps, TangentInterpreter};
pub use transpose::mirror_upper;
use transpose::*;

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

/// The most entries a tensor, a stage's scratch or a count of parameters,
/// data columns or constants may have in a valid program (2²⁷: 1 GiB of
/// f64).
pub const MAX_ENTRIES: usize = 1 << 27;

/// The most iterations one step's loop nest may run per row in a valid
/// program (2⁴⁰).
pub const MAX_ITERATIONS: usize = 1 << 40;

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
    /// The tensor `name` with axis lengths `shape`, from `offset` of `source`.
    pub fn new(name: &str, source: Source, offset: usize, shape: &[usize]) -> TensorLayout {
        TensorLayout {
            name: name.to_string(),
            source,
            offset,
            shape: shape.to_vec(),
        }
    }

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
    /// An entry of a tensor (index into [`LoopProgram::tensors`]).
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
/// index the buffer written; the rest are summed (or, with
/// [`Reduction::Max`], their largest value is taken).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The buffer written (a tensor with [`Source::Scratch`]).
    pub out: usize,
    /// Trip counts.
    pub loops: Vec<usize>,
    /// How the loops beyond the buffer's rank combine the body's values.
    #[serde(default, skip_serializing_if = "Reduction::is_sum")]
    pub reduction: Reduction,
    /// The body's inputs: its parameter `pI` is `inputs[I]`.
    pub inputs: Vec<Load>,
    /// One output: the value of one iteration.
    pub body: Program,
    /// The lowest level of outputs that needs this step.
    pub level: Outputs,
}

/// How a step combines the values of its loops beyond its buffer's rank.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reduction {
    /// Their sum (0 over no value).
    #[default]
    Sum,
    /// Their largest value (`f64::max`, a NaN dropped), at least one value:
    /// the m of a log-sum-exp written as m + log Σ e^{uₖ − m}, where every
    /// term is at most 1 and the largest is 1, so nothing over- or
    /// underflows. No derivative flows through it: everything the lowering
    /// computes with m has the same value whatever m is.
    Max,
}

impl Reduction {
    /// Whether it is [`Reduction::Sum`] (the default, not written out).
    pub fn is_sum(&self) -> bool {
        *self == Reduction::Sum
    }

    /// The value the loops start from: the identity of the reduction.
    pub fn identity(self) -> f64 {
        match self {
            Reduction::Sum => 0.0,
            Reduction::Max => f64::NEG_INFINITY,
        }
    }

    /// `acc` with `value` combined in.
    pub fn combine(self, acc: f64, value: f64) -> f64 {
        match self {
            Reduction::Sum => acc + value,
            Reduction::Max => acc.max(value),
        }
    }
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
    /// The term as an outer product (see [`LoopProgram::gather_outer_gradients`]).
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
    /// `w · u[ρ] · v[γ]` where, for every pair `(a, b)`, axis a of ρ
    /// equals axis b of γ; 0 elsewhere. No pairs: the outer product w u vᵀ.
    /// The factors are read where they are — a data tensor, a constant, a
    /// buffer — so no step copies them (the passes gather w u and v; see
    /// [`Factor`]).
    Product {
        /// Row parameter tensor.
        row: usize,
        /// Column parameter tensor.
        col: usize,
        /// (row axis, column axis) pairs of Kronecker deltas.
        pairs: Vec<(usize, usize)>,
        /// A scalar tensor (buffer, data or constant), or 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight: Factor,
        /// A tensor (buffer or data) with the row tensor's shape, or ones.
        u: Factor,
        /// A tensor (buffer or data) with the column tensor's shape, or
        /// ones.
        v: Factor,
    },
}

/// A factor of a [`HessianTerm::Product`]: the tensor it reads, or `None`
/// for ones (the lowering writes no step for `1`, a data tensor or a
/// constant).
pub type Factor = Option<usize>;

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

impl Stage {
    /// Whether the stage adds nothing to L, ∇L or ∇²L (a model without a
    /// regularizer has such a regularizer stage): a pass need not run it.
    pub fn adds_nothing(&self) -> bool {
        self.loss.is_none() && self.gradient.is_empty() && self.hessian.is_empty()
    }
}

/// A model in index form: layouts, the per-sample stage and the
/// regularizer's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopProgram {
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
    /// [`LoopProgram::hess_vec`] runs when it is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tangent: Option<Box<LoopProgram>>,
}

impl LoopProgram {
    /// Number of parameters P.
    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    /// Every size within [`MAX_ENTRIES`] and every sum of sizes without
    /// overflow, so that the index checks of [`LoopProgram::validate`]
    /// cannot wrap and no buffer it asks for is larger than that: a
    /// program that comes from outside (a plan shipped to an executor) is
    /// refused before anything is allocated for it.
    fn validate_sizes(&self) -> Result<(), InvalidProgram> {
        let too_big = |what: String| {
            Err(InvalidProgram(format!(
                "{}: {what} is larger than {MAX_ENTRIES} entries",
                self.name
            )))
        };
        let entries = |lengths: &[usize]| {
            lengths
                .iter()
                .try_fold(1usize, |n, &l| n.checked_mul(l))
                .filter(|&n| n <= MAX_ENTRIES)
        };
        for counted in [
            self.params.len(),
            self.data.len(),
            self.constants.len(),
            self.constant_defaults.len(),
            self.sample.scratch,
            self.regularizer.scratch,
        ] {
            if counted > MAX_ENTRIES {
                return too_big("a count of parameters, data, constants or scratch".into());
            }
        }
        for t in &self.tensors {
            match entries(&t.shape) {
                Some(n) if t.offset <= MAX_ENTRIES && n <= MAX_ENTRIES => {}
                _ => return too_big(format!("tensor {}", t.name)),
            }
        }
        for (which, stage) in [("sample", &self.sample), ("regularizer", &self.regularizer)] {
            for (k, step) in stage.steps.iter().enumerate() {
                let iterations = step.loops.iter().try_fold(1usize, |n, &l| n.checked_mul(l));
                if iterations.is_none_or(|n| n > MAX_ITERATIONS) {
                    return Err(InvalidProgram(format!(
                        "{}: {which} step {k}: its loops run more than {MAX_ITERATIONS} times",
                        self.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Check every size, index, shape and program.
    pub fn validate(&self) -> Result<(), InvalidProgram> {
        let err = |m: String| Err(InvalidProgram(format!("{}: {m}", self.name)));
        self.validate_sizes()?;
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
                if s.reduction == Reduction::Max
                    && (s.loops.len() == out.shape.len() || s.loops.contains(&0))
                {
                    return err(format!(
                        "{which} step {k}: a maximum needs at least one value to take"
                    ));
                }
                let axis_ok = |a: &Axis, n: usize| match *a {
                    Axis::Loop { var, shift } => {
                        var < s.loops.len()
                            && s.loops[var].checked_add(shift).is_some_and(|e| e <= n)
                    }
                    Axis::Fixed(p) => p < n,
                };
                for load in &s.inputs {
                    let ok = match load {
                        // Within its shape, and the tensor within what the
                        // stage can read: a buffer within its scratch, no
                        // data row in the regularizer.
                        Load::Entry { tensor, index } => {
                            self.tensors.get(*tensor).is_some_and(|t| {
                                t.shape.len() == index.len()
                                    && index.iter().zip(&t.shape).all(|(a, &n)| axis_ok(a, n))
                                    && match t.source {
                                        Source::Scratch => t.offset + t.len() <= stage.scratch,
                                        Source::Row => which == "sample",
                                        _ => true,
                                    }
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
            // A Hessian factor: ones, or a tensor of the shape the stage can
            // read — a buffer within its scratch, data in the per-sample
            // stage, a scalar constant.
            let factor = |f: Factor, shape: &[usize]| {
                f.is_none_or(|b| {
                    self.tensors.get(b).is_some_and(|t| {
                        t.shape == shape
                            && match t.source {
                                Source::Scratch => t.offset + t.len() <= stage.scratch,
                                Source::Row => which == "sample",
                                Source::Constants => shape.is_empty(),
                                Source::Theta | Source::Direction => false,
                            }
                    })
                })
            };
            for h in &stage.hessian {
                let (r, c) = h.block();
                let (r, c) = (param(r)?, param(c)?);
                if r.offset > c.offset {
                    return err(format!(
                        "{which}: a Hessian term's block is below the diagonal (its row \
                         tensor comes after its column tensor; only upper blocks are summed)"
                    ));
                }
                let ok = match h {
                    HessianTerm::Dense { value, .. } => {
                        buffer(*value)?.shape == [r.shape.clone(), c.shape.clone()].concat()
                    }
                    HessianTerm::Product {
                        pairs,
                        weight,
                        u,
                        v,
                        ..
                    } => {
                        factor(*weight, &[])
                            && factor(*u, &r.shape)
                            && factor(*v, &c.shape)
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
                    HessianTerm::Product { weight, u, v, .. } => {
                        [weight, u, v].contains(&&Some(value))
                    }
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
    /// [`LoopProgram::gather_outer_gradients`]).
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
    pub fn with_tangent(mut self) -> Result<LoopProgram, InvalidProgram> {
        self.tangent = None;
        let tangent = crate::tangent::tangent_model(&self)?;
        self.tangent = Some(Box::new(tangent));
        Ok(self)
    }
}

impl Axis {
    /// The index `[i0, …, i(rank − 1)]`: each axis the loop of its
    /// position, the entry a step's first loops write.
    pub fn each_loop(rank: usize) -> Vec<Axis> {
        (0..rank).map(|var| Axis::Loop { var, shift: 0 }).collect()
    }

    /// Whether `index` is [`Axis::each_loop`] of its length.
    pub fn is_each_loop(index: &[Axis]) -> bool {
        (index.iter().enumerate()).all(|(k, a)| *a == Axis::Loop { var: k, shift: 0 })
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

impl LoopProgram {
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
impl std::fmt::Display for LoopProgram {
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
                    let op = match s.reduction {
                        Reduction::Sum => "Σ",
                        Reduction::Max => "max",
                    };
                    write!(f, "{op}({}) ", summed.join(", "))?;
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
                    HessianTerm::Product {
                        pairs,
                        weight,
                        u,
                        v,
                        ..
                    } => writeln!(
                        f,
                        "  hess[{r}, {c}] += {}{} ⊗ {}{}",
                        weight.map_or(String::new(), |w| format!("{} · ", self.tensors[w].name)),
                        u.map_or("1", |u| &self.tensors[u].name),
                        v.map_or("1", |v| &self.tensors[v].name),
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
