//! The pass as an aggregate function: `hessforge_pass(x_1, …, y)` over a
//! table's rows is the model's loss (and gradient, Hessian or
//! Hessian–vector product) at the θ the function carries — exactly what a
//! pass of the kernel over the same rows in memory gives.
//!
//! **State.** An accumulator evaluates each record batch with the model's
//! kernel and keeps the rows' *sums*: a record (n, n·L, n·∇L, n·∇²L packed
//! upper, or n·Hv). Sums merge by adding, which is why DataFusion's
//! partial/final aggregation can split the rows over partitions (and
//! Ballista over machines). A kernel's value over a batch is a mean plus the
//! regularizer, (1/n)Σℓᵢ + R, so the weighted sums divided by the total N
//! give (1/N)Σℓᵢ + R: the regularizer's weights add up to one.
//!
//! **Same bits.** Floating-point addition is not associative, and the final
//! aggregation receives the partitions' states in the order they finish.
//! So the state is a *list* of records (one per partition that saw rows),
//! merging concatenates the lists, and the final value sums the records in
//! a fixed order — sorted by their bits — whatever order they arrived in:
//! the same file with the same number of partitions gives the same bits.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use hessforge_driver::Backend;
use hessforge_kernels::ir::loop_ir::MAX_ENTRIES;
use hessforge_kernels::ir::unpack_upper;
use hessforge_kernels::{At, Rows};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The name the function is registered under.
pub const NAME: &str = "hessforge_pass";

/// What a pass computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassKind {
    /// L.
    Loss,
    /// L and ∇L.
    Gradient,
    /// L, ∇L and ∇²L.
    Hessian,
    /// L and ∇²L·v.
    HessVec,
}

impl PassKind {
    /// The values a record holds after (n, n·L), for P parameters.
    fn width(self, p: usize) -> usize {
        match self {
            PassKind::Loss => 0,
            PassKind::Gradient | PassKind::HessVec => p,
            PassKind::Hessian => p + p * (p + 1) / 2,
        }
    }
}

/// What a pass gave: the mean loss over the rows plus the regularizer, and
/// the outputs its kind asks for (empty otherwise).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassResult {
    /// Rows summed.
    pub rows: f64,
    /// L(θ).
    pub loss: f64,
    /// ∇L(θ) (gradient and Hessian passes).
    pub gradient: Vec<f64>,
    /// ∇²L(θ), row-major P × P (Hessian passes).
    pub hessian: Vec<f64>,
    /// ∇²L(θ)·v (Hessian–vector passes).
    pub hess_vec: Vec<f64>,
    /// How many partitions' sums were merged (those that read rows).
    pub partials: usize,
}

/// The aggregate function: a model (its kernel), the values of its
/// constants, θ, the kind of pass, and v for a Hessian–vector pass.
/// Arguments: the model's data columns in model order, coerced to Float64.
#[derive(Clone)]
pub struct PassFunction {
    backend: Backend,
    constants: Vec<f64>,
    theta: Vec<f64>,
    v: Vec<f64>,
    kind: PassKind,
    /// (shift, scale) per data column: a value is read as (x − shift)/scale.
    scaling: Vec<(f64, f64)>,
    signature: Signature,
}

impl std::fmt::Debug for PassFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassFunction")
            .field("model", &self.backend.kernel().name())
            .field("kind", &self.kind)
            .field("theta", &self.theta)
            .finish_non_exhaustive()
    }
}

/// The bits of a slice, for equality and hashing (NaN equals itself).
fn bits(values: &[f64]) -> impl Iterator<Item = u64> + '_ {
    values.iter().map(|v| v.to_bits())
}

impl PartialEq for PassFunction {
    fn eq(&self, other: &Self) -> bool {
        let k = (self.backend.kernel(), other.backend.kernel());
        k.0.name() == k.1.name()
            && k.0.n_params() == k.1.n_params()
            && self.kind == other.kind
            && bits(&self.constants).eq(bits(&other.constants))
            && bits(&self.theta).eq(bits(&other.theta))
            && bits(&self.v).eq(bits(&other.v))
            && self
                .scaling
                .iter()
                .map(|(a, b)| (a.to_bits(), b.to_bits()))
                .eq(other
                    .scaling
                    .iter()
                    .map(|(a, b)| (a.to_bits(), b.to_bits())))
    }
}

impl Eq for PassFunction {}

impl Hash for PassFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.backend.kernel().name().hash(state);
        self.kind.hash(state);
        bits(&self.theta).for_each(|b| b.hash(state));
        bits(&self.v).for_each(|b| b.hash(state));
    }
}

impl PassFunction {
    /// A pass of `kind` of the model `backend` runs, with its constants'
    /// values, at θ (and v for [`PassKind::HessVec`]).
    ///
    /// # Errors
    /// When a length does not fit the model.
    pub fn new(
        backend: Backend,
        constants: &[f64],
        theta: &[f64],
        kind: PassKind,
        v: Option<&[f64]>,
    ) -> Result<Self> {
        let kernel = backend.kernel();
        let (p, d) = (kernel.n_params(), kernel.n_data());
        let wrong = |what: &str, n: usize, expected: usize| {
            DataFusionError::Plan(format!(
                "{NAME}: {n} {what} given, model `{}` has {expected}",
                kernel.name()
            ))
        };
        if theta.len() != p {
            return Err(wrong("parameters", theta.len(), p));
        }
        if constants.len() != kernel.default_constants().len() {
            return Err(wrong(
                "constants",
                constants.len(),
                kernel.default_constants().len(),
            ));
        }
        let v = match (kind, v) {
            (PassKind::HessVec, Some(v)) if v.len() == p => v.to_vec(),
            (PassKind::HessVec, v) => {
                return Err(wrong("entries of v", v.map_or(0, <[f64]>::len), p));
            }
            _ => vec![],
        };
        if kind == PassKind::Hessian && p.checked_mul(p).is_none_or(|n| n > MAX_ENTRIES) {
            return Err(DataFusionError::Plan(format!(
                "{NAME}: a dense Hessian of model `{}`'s {p} parameters is larger than \
                 {MAX_ENTRIES} entries; a Hessian-free method (newton-cg) needs none",
                kernel.name()
            )));
        }
        if d == 0 {
            return Err(DataFusionError::Plan(format!(
                "{NAME}: model `{}` has no data columns to aggregate",
                kernel.name()
            )));
        }
        Ok(PassFunction {
            signature: Signature::uniform(d, vec![DataType::Float64], Volatility::Immutable),
            backend,
            constants: constants.to_vec(),
            theta: theta.to_vec(),
            v,
            kind,
            scaling: vec![(0.0, 1.0); d],
        })
    }

    /// Read data column `k` as (x − shift)/scale (`--standardize`): one
    /// (shift, scale) per data column, or a plan error saying how many.
    pub fn with_scaling(mut self, scaling: Vec<(f64, f64)>) -> datafusion::common::Result<Self> {
        if scaling.len() != self.scaling.len() {
            return Err(DataFusionError::Plan(format!(
                "{} scalings for {} data columns",
                scaling.len(),
                self.scaling.len()
            )));
        }
        self.scaling = scaling;
        Ok(self)
    }

    fn p(&self) -> usize {
        self.backend.kernel().n_params()
    }

    /// The number of data columns it reads (its arguments).
    pub fn n_data(&self) -> usize {
        self.backend.kernel().n_data()
    }

    /// The model's back-end.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// What it computes.
    pub fn kind(&self) -> PassKind {
        self.kind
    }

    /// Its constants' values.
    pub fn constants(&self) -> &[f64] {
        &self.constants
    }

    /// θ.
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }

    /// v (empty but for a Hessian–vector pass).
    pub fn v(&self) -> &[f64] {
        &self.v
    }

    /// The (shift, scale) of each data column.
    pub fn scaling(&self) -> &[(f64, f64)] {
        &self.scaling
    }

    /// Unpack the function's value (a struct of rows, loss, gradient,
    /// hessian, hess_vec, partials) into a [`PassResult`], the Hessian unpacked.
    ///
    /// # Errors
    /// When the value is not this function's.
    pub fn result(&self, value: &ScalarValue) -> Result<PassResult> {
        let ScalarValue::Struct(s) = value else {
            return Err(DataFusionError::Internal(format!(
                "{NAME}: expected a struct, got {value:?}"
            )));
        };
        let number = |k: usize| s.column(k).as_primitive::<Float64Type>().value(0);
        let list = |k: usize| -> Vec<f64> {
            let l = s.column(k).as_list::<i32>();
            l.value(0).as_primitive::<Float64Type>().values().to_vec()
        };
        let p = self.p();
        let packed = list(3);
        let mut hessian = vec![];
        if !packed.is_empty() {
            hessian = vec![0.0; p * p];
            unpack_upper(p, &packed, &mut hessian);
        }
        Ok(PassResult {
            rows: number(0),
            loss: number(1),
            gradient: list(2),
            hessian,
            hess_vec: list(4),
            partials: number(5) as usize,
        })
    }
}

fn list_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new_list_field(DataType::Float64, false))),
        false,
    )
}

fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new("rows", DataType::Float64, false),
        Field::new("loss", DataType::Float64, false),
        list_field("gradient"),
        list_field("hessian"),
        list_field("hess_vec"),
        Field::new("partials", DataType::Float64, false),
    ])
}

/// A one-row list of `values`.
fn list_of(values: Vec<f64>) -> ListArray {
    let field = Arc::new(Field::new_list_field(DataType::Float64, false));
    let n = values.len();
    ListArray::new(
        field,
        datafusion::arrow::buffer::OffsetBuffer::from_lengths([n]),
        Arc::new(Float64Array::from(values)),
        None,
    )
}

impl AggregateUDFImpl for PassFunction {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields()))
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let width = 2 + self.kind.width(self.p());
        Ok(Box::new(PassAccumulator {
            function: Arc::new(self.clone()),
            partial: vec![0.0; width],
            records: vec![],
            rows: vec![],
            out: vec![
                0.0;
                if self.kind == PassKind::Hessian {
                    self.p() * self.p()
                } else {
                    self.p()
                }
            ],
            grad: vec![0.0; self.p()],
        }))
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(list_field("records"))])
    }
}

/// One partition's sums, and the records merged into it.
#[derive(Debug)]
struct PassAccumulator {
    function: Arc<PassFunction>,
    /// This accumulator's own record: n, n·L, n·outputs.
    partial: Vec<f64>,
    /// Records merged from other accumulators, each of the same width.
    records: Vec<Vec<f64>>,
    /// The batch as rows (reused).
    rows: Vec<f64>,
    /// A pass's outputs (reused).
    out: Vec<f64>,
    grad: Vec<f64>,
}

impl PassAccumulator {
    /// Every record with rows, in a fixed order: sorted by its bits.
    fn sorted_records(&self) -> Vec<&[f64]> {
        let mut all: Vec<&[f64]> = self.records.iter().map(Vec::as_slice).collect();
        if self.partial[0] > 0.0 {
            all.push(&self.partial);
        }
        all.sort_by(|a, b| {
            a.iter()
                .zip(b.iter())
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        all
    }
}

impl Accumulator for PassAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let f = &self.function;
        let kernel = f.backend.kernel();
        let (cols, p) = (kernel.n_data(), kernel.n_params());
        let n = values.first().map_or(0, |a| a.len());
        if n == 0 {
            return Ok(());
        }
        if values.len() != cols {
            return Err(DataFusionError::Execution(format!(
                "{NAME}: {} columns given, model `{}` reads {cols}",
                values.len(),
                kernel.name()
            )));
        }
        self.rows.resize(n * cols, 0.0);
        for (k, array) in values.iter().enumerate() {
            if array.null_count() > 0 {
                let row = (0..n).find(|&r| array.is_null(r)).unwrap_or(0);
                return Err(DataFusionError::Execution(format!(
                    "{NAME}: argument {} of model `{}` is null at row {row} of a batch; nulls cannot be fitted (drop or impute the row)",
                    k + 1,
                    kernel.name()
                )));
            }
            let column = array.as_primitive::<Float64Type>().values();
            if let Some(row) = column.iter().position(|v| !v.is_finite()) {
                return Err(DataFusionError::Execution(format!(
                    "{NAME}: argument {} of model `{}` is {} at row {row} of a batch; NaN and infinite values cannot be fitted",
                    k + 1,
                    kernel.name(),
                    column[row]
                )));
            }
            let (shift, scale) = f.scaling[k];
            for (row, &x) in self.rows.chunks_exact_mut(cols).zip(column.iter()) {
                row[k] = if (shift, scale) == (0.0, 1.0) {
                    x
                } else {
                    (x - shift) / scale
                };
            }
        }
        let at = At {
            theta: &f.theta,
            constants: &f.constants,
            data: &self.rows,
            rows: Rows::All,
        };
        let w = n as f64;
        let loss = match f.kind {
            PassKind::Loss => kernel.loss(at),
            PassKind::Gradient => kernel.loss_grad(at, &mut self.out[..p]),
            PassKind::HessVec => kernel.hess_vec(at, &f.v, &mut self.out[..p]),
            PassKind::Hessian => {
                let loss = kernel.loss_grad_hess(at, &mut self.grad, &mut self.out[..p * p]);
                // n·∇L, then n·∇²L's upper triangle, row by row.
                let (grad_sum, hess_sum) = self.partial[2..].split_at_mut(p);
                for (s, g) in grad_sum.iter_mut().zip(&self.grad) {
                    *s += w * g;
                }
                let mut at = 0;
                for i in 0..p {
                    for j in i..p {
                        hess_sum[at] += w * self.out[i * p + j];
                        at += 1;
                    }
                }
                loss
            }
        };
        if matches!(f.kind, PassKind::Gradient | PassKind::HessVec) {
            for (s, o) in self.partial[2..].iter_mut().zip(&self.out[..p]) {
                *s += w * o;
            }
        }
        self.partial[0] += w;
        self.partial[1] += w * loss;
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<f64> = self.sorted_records().concat();
        Ok(vec![ScalarValue::List(Arc::new(list_of(values)))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let width = self.partial.len();
        let Some(lists) = states.first() else {
            return Ok(());
        };
        let lists = lists.as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_null(i) {
                continue;
            }
            let values = lists.value(i);
            let values = values.as_primitive::<Float64Type>().values();
            if values.len() % width != 0 {
                return Err(DataFusionError::Internal(format!(
                    "{NAME}: a state of {} values is not whole records of {width}",
                    values.len()
                )));
            }
            self.records
                .extend(values.chunks_exact(width).map(<[f64]>::to_vec));
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let f = &self.function;
        let p = f.p();
        let mut total = vec![0.0; self.partial.len()];
        let records = self.sorted_records();
        let partials = records.len() as f64;
        for record in records {
            for (t, r) in total.iter_mut().zip(record) {
                *t += r;
            }
        }
        let n = total[0];
        let mean = |s: &[f64]| -> Vec<f64> { s.iter().map(|v| v / n).collect() };
        let rest = &total[2..];
        let (gradient, hessian, hess_vec) = match f.kind {
            PassKind::Loss => (vec![], vec![], vec![]),
            PassKind::Gradient => (mean(rest), vec![], vec![]),
            PassKind::HessVec => (vec![], vec![], mean(rest)),
            PassKind::Hessian => (mean(&rest[..p]), mean(&rest[p..]), vec![]),
        };
        let loss = if n > 0.0 { total[1] / n } else { f64::NAN };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(vec![n])),
            Arc::new(Float64Array::from(vec![loss])),
            Arc::new(list_of(gradient)),
            Arc::new(list_of(hessian)),
            Arc::new(list_of(hess_vec)),
            Arc::new(Float64Array::from(vec![partials])),
        ];
        let s = StructArray::try_new(result_fields(), columns, None)?;
        Ok(ScalarValue::Struct(Arc::new(s)))
    }

    fn size(&self) -> usize {
        let floats = self.partial.len()
            + self.records.iter().map(Vec::len).sum::<usize>()
            + self.rows.len()
            + self.out.len()
            + self.grad.len();
        std::mem::size_of_val(self) + 8 * floats
    }
}
