//! A compiled kernel bound to its constants and a data set, as the
//! optimizers' [`Objective`]: what a crate with its own kernels hands to
//! `hessforge_optim::minimize`.

use crate::{DynKernel, LinearizationCache, Rows};
use hessforge_optim::{Batch, Objective};

/// Full passes over at least this many rows run in parallel (rayon, fixed
/// chunks summed in order: the same bits on every run, see [`Rows::Parallel`]).
pub const PARALLEL_ROWS: usize = 65_536;

/// A kernel with the values of its constants and its data (row-major,
/// [`DynKernel::n_data`] columns per row).
///
/// ```
/// use hessforge_kernels::{KernelObjective, rosenbrock::Rosenbrock};
/// use hessforge_optim::{Settings, Status, Stopping, build, minimize};
/// let objective = KernelObjective::new(&Rosenbrock, &[1.0, 100.0], &[]);
/// let mut newton = build("newton", &Settings::default()).unwrap();
/// let out = minimize(&objective, newton.as_mut(), &[-1.2, 1.0], &Stopping::default(), &mut []);
/// assert_eq!(out.status, Status::Converged);
/// assert!((out.theta[0] - 1.0).abs() < 1e-8);
/// ```
pub struct KernelObjective<'a> {
    kernel: &'a dyn DynKernel,
    constants: Vec<f64>,
    data: &'a [f64],
    parallel_from: usize,
    linearized: LinearizationCache<'a>,
}

impl<'a> KernelObjective<'a> {
    /// Bind `kernel` to `constants` (in [`crate::Kernel::constant_names`]
    /// order) and `data` (a whole number of rows).
    ///
    /// # Panics
    /// When `constants` or `data` do not fit the kernel: a programming
    /// error, not bad input (check the lengths against the kernel first when
    /// they come from a user).
    pub fn new(kernel: &'a dyn DynKernel, constants: &[f64], data: &'a [f64]) -> Self {
        assert_eq!(
            constants.len(),
            kernel.default_constants().len(),
            "{}: {} constants expected",
            kernel.name(),
            kernel.default_constants().len()
        );
        let columns = kernel.n_data();
        assert!(
            data.len().is_multiple_of(columns),
            "{}: the data must be whole rows of {columns} columns",
            kernel.name()
        );
        KernelObjective {
            kernel,
            constants: constants.to_vec(),
            data,
            parallel_from: PARALLEL_ROWS,
            linearized: LinearizationCache::default(),
        }
    }

    /// Run full passes in parallel from this many rows on ([`PARALLEL_ROWS`]
    /// unless set; `usize::MAX`: always on the calling thread).
    pub fn parallel_from(mut self, rows: usize) -> Self {
        self.parallel_from = rows;
        self
    }

    /// The kernel's view of a batch: the selected rows, or all of them (in
    /// parallel from [`KernelObjective::parallel_from`] rows).
    fn rows<'b>(&'b self, batch: Batch<'b>) -> Rows<'b> {
        match batch {
            Batch::Rows(r) => Rows::Selected(self.data, r),
            Batch::Full if self.n_rows() >= self.parallel_from => Rows::Parallel(self.data),
            Batch::Full => Rows::All(self.data),
        }
    }
}

impl Objective for KernelObjective<'_> {
    fn n_params(&self) -> usize {
        self.kernel.n_params()
    }
    fn n_rows(&self) -> usize {
        self.data.len() / self.kernel.n_data().max(1)
    }
    fn loss(&self, theta: &[f64], batch: Batch<'_>) -> f64 {
        self.kernel.loss(theta, &self.constants, self.rows(batch))
    }
    fn loss_grad(&self, theta: &[f64], batch: Batch<'_>, grad: &mut [f64]) -> f64 {
        self.kernel
            .loss_grad(theta, &self.constants, self.rows(batch), grad)
    }
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        batch: Batch<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        self.kernel
            .loss_grad_hess(theta, &self.constants, self.rows(batch), grad, hess)
    }
    /// Over all rows, the products at one θ share its primal values
    /// ([`LinearizationCache`]).
    fn hess_vec(&self, theta: &[f64], batch: Batch<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        match batch {
            Batch::Full => {
                let parallel = matches!(self.rows(batch), Rows::Parallel(_));
                let (kernel, constants) = (self.kernel, &self.constants);
                self.linearized
                    .hess_vec(kernel, theta, constants, self.data, parallel, v, out)
            }
            Batch::Rows(_) => {
                self.kernel
                    .hess_vec(theta, &self.constants, self.rows(batch), v, out)
            }
        }
    }
    fn hess_diag(&self, theta: &[f64], out: &mut [f64]) -> f64 {
        self.kernel
            .hess_diag(theta, &self.constants, self.rows(Batch::Full), out)
    }
}
