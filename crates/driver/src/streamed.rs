//! The optimizers' objective over a file too large to hold: every pass
//! streams the file's record batches ([`ColumnarTable::for_each_chunk`])
//! through the model's kernel and merges the batches' results.
//!
//! The merge is exact because a pass is a mean: the kernel's value over a
//! batch of nₖ rows is Lₖ = (1/nₖ) Σ ℓᵢ + R, so Σₖ (nₖ/N)·Lₖ is
//! (1/N) Σ ℓᵢ + R — the regularizer's weights sum to one — and the same
//! holds for every output that is linear in the rows' terms: the gradient,
//! the Hessian, Hessian–vector and Gauss–Newton products, the diagonal.
//! Batches are merged in file order, so a pass gives the same bits on
//! every run (for a given thread count: a batch of [`CHUNK_ROWS`] rows is
//! itself a parallel pass of the compiled kernels).
//!
//! Mini-batches need rows by index and are not offered: the driver
//! refuses a stochastic optimizer on streamed data (`--in-memory` reads the
//! file whole instead). A read that fails during a fit (the file changed,
//! a disk error) makes every later pass NaN, which ends the run, and is kept
//! for the run's outcome ([`StreamedObjective::failure`]).

use crate::data::DataError;
use crate::data::columnar::{CHUNK_ROWS, ColumnarTable};
use hessforge_kernels::{At, Kernel, PARALLEL_ROWS, Rows};
use hessforge_optim::Objective;
use std::sync::Mutex;

// A batch is a parallel pass of its own.
const _: () = assert!(CHUNK_ROWS >= PARALLEL_ROWS);

/// The first reason a pass over rows outside memory failed, kept for the
/// run's outcome (an [`Objective`] returns numbers, not errors: a failed
/// pass returns NaN, which ends the run, and says why here).
#[derive(Debug, Default)]
pub struct FirstFailure(Mutex<Option<String>>);

impl FirstFailure {
    /// Keep `why` unless a failure is kept already.
    pub fn record(&self, why: String) {
        if let Ok(mut f) = self.0.lock()
            && f.is_none()
        {
            *f = Some(why);
        }
    }

    /// The failure kept, if any.
    pub fn get(&self) -> Option<String> {
        self.0.lock().map_or(None, |f| f.clone())
    }
}

/// A kernel bound to its constants and a streamed file.
pub struct StreamedObjective<'a> {
    kernel: &'a dyn Kernel,
    constants: &'a [f64],
    table: &'a ColumnarTable,
    gauss_newton: bool,
    failure: FirstFailure,
}

impl<'a> StreamedObjective<'a> {
    /// Bind `kernel` to `constants` and the rows of `table` (opened for this
    /// model); `gauss_newton` offers the Gauss–Newton matrix, as
    /// [`hessforge_kernels::offers_gauss_newton`] decides it.
    pub fn new(
        kernel: &'a dyn Kernel,
        constants: &'a [f64],
        table: &'a ColumnarTable,
        gauss_newton: bool,
    ) -> Self {
        StreamedObjective {
            kernel,
            constants,
            table,
            gauss_newton,
            failure: FirstFailure::default(),
        }
    }

    /// Why a pass failed, if one did.
    pub fn failure(&self) -> Option<String> {
        self.failure.get()
    }

    /// One pass: `eval` runs the kernel over a batch, returning its loss and
    /// writing `out.len()` outputs; the batches' results weighted by their
    /// share of the rows. NaN everywhere after a failure.
    fn pass(&self, out: &mut [f64], eval: &dyn Fn(At<'_>, &mut [f64]) -> f64) -> f64 {
        out.fill(0.0);
        if self.failure().is_some() {
            out.fill(f64::NAN);
            return f64::NAN;
        }
        let mut part = vec![0.0; out.len()];
        let mut loss = 0.0;
        let read = self.table.for_each_chunk(&mut |chunk, n| {
            let at = At {
                theta: &[],
                constants: self.constants,
                data: chunk,
                rows: if n >= PARALLEL_ROWS {
                    Rows::Parallel
                } else {
                    Rows::All
                },
            };
            let weight = n as f64;
            loss += weight * eval(at, &mut part);
            for (o, p) in out.iter_mut().zip(&part) {
                *o += weight * p;
            }
        });
        match read {
            Ok(rows) => {
                let n = rows as f64;
                out.iter_mut().for_each(|o| *o /= n);
                loss / n
            }
            Err(e) => {
                self.failure.record(describe(&e));
                out.fill(f64::NAN);
                f64::NAN
            }
        }
    }

    /// A pass over `rows`, which must be every row.
    fn full(&self, rows: Rows<'_>) -> bool {
        if rows.selected().is_some() {
            self.failure.record(format!(
                "{}: a mini-batch needs the rows in memory (use --in-memory)",
                self.table.describe()
            ));
            return false;
        }
        true
    }
}

/// A data error in one line, for a run's message.
fn describe(e: &DataError) -> String {
    use miette::Diagnostic;
    match e.help() {
        Some(help) => format!("{e} ({help})"),
        None => e.to_string(),
    }
}

impl Objective for StreamedObjective<'_> {
    fn n_params(&self) -> usize {
        self.kernel.n_params()
    }
    fn n_rows(&self) -> usize {
        self.table.rows()
    }
    fn loss(&self, theta: &[f64], rows: Rows<'_>) -> f64 {
        if !self.full(rows) {
            return f64::NAN;
        }
        self.pass(&mut [], &|at, _| self.kernel.loss(at.theta(theta)))
    }
    fn loss_grad(&self, theta: &[f64], rows: Rows<'_>, grad: &mut [f64]) -> f64 {
        if !self.full(rows) {
            return f64::NAN;
        }
        self.pass(grad, &|at, g| self.kernel.loss_grad(at.theta(theta), g))
    }
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        rows: Rows<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        if !self.full(rows) {
            return f64::NAN;
        }
        let p = self.n_params();
        let mut both = vec![0.0; p + p * p];
        let loss = self.pass(&mut both, &|at, out| {
            let (g, h) = out.split_at_mut(p);
            self.kernel.loss_grad_hess(at.theta(theta), g, h)
        });
        grad[..p].copy_from_slice(&both[..p]);
        hess[..p * p].copy_from_slice(&both[p..]);
        loss
    }
    fn hess_vec(&self, theta: &[f64], rows: Rows<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        if !self.full(rows) {
            return f64::NAN;
        }
        self.pass(out, &|at, o| self.kernel.hess_vec(at.theta(theta), v, o))
    }
    fn hess_diag(&self, theta: &[f64], out: &mut [f64]) -> f64 {
        self.pass(out, &|at, o| self.kernel.hess_diag(at.theta(theta), o))
    }
    fn loss_grad_gauss_newton(
        &self,
        theta: &[f64],
        grad: &mut [f64],
        gn: &mut [f64],
    ) -> Option<f64> {
        if !self.gauss_newton {
            return None;
        }
        let p = self.n_params();
        let mut both = vec![0.0; p + p * p];
        // Each batch's own pass, on the calling thread (as in memory).
        let loss = self.pass(&mut both, &|at, out| {
            let (g, m) = out.split_at_mut(p);
            self.kernel
                .loss_grad_gauss_newton(at.theta(theta).rows(Rows::All), g, m)
        });
        grad[..p].copy_from_slice(&both[..p]);
        gn[..p * p].copy_from_slice(&both[p..]);
        Some(loss)
    }
    fn gauss_newton_vec(&self, theta: &[f64], v: &[f64], out: &mut [f64]) -> Option<f64> {
        self.gauss_newton.then(|| {
            self.pass(out, &|at, o| {
                self.kernel
                    .gauss_newton_vec(at.theta(theta).rows(Rows::All), v, o)
            })
        })
    }
}
