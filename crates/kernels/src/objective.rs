//! A [`Kernel`] bound to its constants and a data set, as the optimizers'
//! [`Objective`]: the one binding of every evaluation back end (a
//! generated kernel, or an interpreter of a model derived at run time).

use crate::{At, Kernel, LinearizationCache, Rows};
use hessforge_optim::Objective;

/// Full passes over at least this many rows run in parallel (rayon, fixed
/// chunks summed in order: the same bits on every run, see [`Rows::Parallel`]).
pub const PARALLEL_ROWS: usize = 65_536;

/// A kernel with the values of its constants and its data (row-major,
/// [`Kernel::n_data`] columns per row).
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
    kernel: &'a dyn Kernel,
    constants: Vec<f64>,
    data: &'a [f64],
    parallel_from: usize,
    gauss_newton: bool,
    linearized: LinearizationCache,
}

impl<'a> KernelObjective<'a> {
    /// Bind `kernel` to `constants` (in the model's constant order) and
    /// `data` (a whole number of rows).
    ///
    /// # Panics
    /// When `constants` or `data` do not fit the kernel: a programming
    /// error, not bad input (check the lengths against the kernel first when
    /// they come from a user).
    pub fn new(kernel: &'a dyn Kernel, constants: &[f64], data: &'a [f64]) -> Self {
        assert_eq!(
            constants.len(),
            kernel.default_constants().len(),
            "{}: {} constants expected",
            kernel.name(),
            kernel.default_constants().len()
        );
        let columns = kernel.n_data();
        assert!(
            data.len().is_multiple_of(columns.max(1)),
            "{}: the data must be whole rows of {columns} columns",
            kernel.name()
        );
        KernelObjective {
            kernel,
            constants: constants.to_vec(),
            data,
            parallel_from: PARALLEL_ROWS,
            gauss_newton: false,
            linearized: LinearizationCache::default(),
        }
    }

    /// Run full passes in parallel from this many rows on ([`PARALLEL_ROWS`]
    /// unless set; `usize::MAX`: always on the calling thread).
    pub fn parallel_from(mut self, rows: usize) -> Self {
        self.parallel_from = rows;
        self
    }

    /// Offer the Gauss–Newton matrix ([`Kernel::loss_grad_gauss_newton`]):
    /// only for a loss that is c·r² per row with c > 0, which the caller
    /// has checked, and with a regularizer only where the kernel
    /// evaluates it alone ([`Kernel::regularizer_alone`]); off unless set.
    pub fn gauss_newton(mut self, square_loss: bool, has_regularizer: bool) -> Self {
        self.gauss_newton = offers_gauss_newton(self.kernel, square_loss, has_regularizer);
        self
    }

    /// The bound kernel.
    pub fn kernel(&self) -> &'a dyn Kernel {
        self.kernel
    }

    /// The constants' values.
    pub fn constants(&self) -> &[f64] {
        &self.constants
    }

    /// The point θ over `rows`: a full pass in parallel from
    /// [`KernelObjective::parallel_from`] rows.
    fn at<'b>(&'b self, theta: &'b [f64], rows: Rows<'b>) -> At<'b> {
        let rows = match rows {
            Rows::All if self.n_rows() >= self.parallel_from => Rows::Parallel,
            rows => rows,
        };
        At {
            theta,
            constants: &self.constants,
            data: self.data,
            rows,
        }
    }
}

/// Whether an objective over `kernel` offers the Gauss–Newton matrix: for
/// a loss that is c·r² per row with c > 0 (the caller has checked), and
/// with a regularizer only where the kernel evaluates it alone
/// ([`Kernel::regularizer_alone`]).
pub fn offers_gauss_newton(kernel: &dyn Kernel, square_loss: bool, has_regularizer: bool) -> bool {
    square_loss && (!has_regularizer || kernel.regularizer_alone())
}

impl Objective for KernelObjective<'_> {
    fn n_params(&self) -> usize {
        self.kernel.n_params()
    }
    fn n_rows(&self) -> usize {
        self.data
            .len()
            .checked_div(self.kernel.n_data())
            .unwrap_or(0)
    }
    fn loss(&self, theta: &[f64], rows: Rows<'_>) -> f64 {
        self.kernel.loss(self.at(theta, rows))
    }
    fn loss_grad(&self, theta: &[f64], rows: Rows<'_>, grad: &mut [f64]) -> f64 {
        self.kernel.loss_grad(self.at(theta, rows), grad)
    }
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        rows: Rows<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        self.kernel.loss_grad_hess(self.at(theta, rows), grad, hess)
    }
    /// Over all rows, the products at one θ share its primal values
    /// ([`LinearizationCache`]).
    fn hess_vec(&self, theta: &[f64], rows: Rows<'_>, v: &[f64], out: &mut [f64]) -> f64 {
        let at = self.at(theta, rows);
        match rows {
            Rows::Selected(_) => self.kernel.hess_vec(at, v, out),
            Rows::All | Rows::Parallel => self.linearized.hess_vec(self.kernel, at, v, out),
        }
    }
    fn hess_diag(&self, theta: &[f64], out: &mut [f64]) -> f64 {
        self.kernel.hess_diag(self.at(theta, Rows::All), out)
    }
    fn loss_grad_gauss_newton(
        &self,
        theta: &[f64],
        grad: &mut [f64],
        gn: &mut [f64],
    ) -> Option<f64> {
        let at = self.at(theta, Rows::All).rows(Rows::All);
        self.gauss_newton
            .then(|| self.kernel.loss_grad_gauss_newton(at, grad, gn))
    }
    fn gauss_newton_vec(&self, theta: &[f64], v: &[f64], out: &mut [f64]) -> Option<f64> {
        let at = self.at(theta, Rows::All).rows(Rows::All);
        self.gauss_newton
            .then(|| self.kernel.gauss_newton_vec(at, v, out))
    }
}
