//! The optimizers of hessforge, independent of where the numbers come
//! from: an [`Objective`] gives loss, gradient and Hessian over all rows or
//! a mini-batch; a [`Method`] is an optimizer's state plus one step;
//! [`minimize`] runs a method under [`Stopping`] rules and reports an
//! honest [`Outcome`] to any [`Observer`]s.
//!
//! ```
//! use hessforge_optim::{FnObjective, Stopping, Status, build, minimize, Settings};
//! // L = ½(x² + 25y²)
//! let bowl = FnObjective {
//!     n_params: 2,
//!     loss: |t: &[f64]| 0.5 * (t[0] * t[0] + 25.0 * t[1] * t[1]),
//!     grad: |t: &[f64], g: &mut [f64]| g.copy_from_slice(&[t[0], 25.0 * t[1]]),
//!     hess: |_: &[f64], h: &mut [f64]| h.copy_from_slice(&[1.0, 0.0, 0.0, 25.0]),
//! };
//! let mut newton = build("newton", &Settings::default()).unwrap();
//! let out = minimize(&bowl, newton.as_mut(), &[-4.0, 1.5], &Stopping::default(), &mut []);
//! assert_eq!((out.status, out.iterations), (Status::Converged, 1));
//! ```
//!
//! Modules: [`objective`] (the trait, counting), [`first_order`] (GD,
//! momentum, Nesterov, AdaGrad, RMSProp, Adam, AdamW; mini-batches),
//! [`schedule`] (learning-rate schedules), [`newton`] (pure, damped,
//! Levenberg–Marquardt, saddle-free), [`trust_region`] (Steihaug–CG; the
//! exact subproblem up to 200 parameters), [`exact_trust_region`]
//! (Moré–Sorensen), [`newton_cg`] (Hessian-free), [`quasi_newton`] (BFGS,
//! L-BFGS), [`line_search`] (Armijo, strong Wolfe), [`run_loop`] (the run
//! loop, stopping, status), [`catalog`] (every optimizer by name,
//! documented, and built from [`Settings`]), [`optimizer`] (the leaf every
//! optimizer module imports: names, families, hyper-parameter descriptions,
//! settings chosen by name, build errors), [`gradient_check`].
#![warn(missing_docs)]

pub mod catalog;
pub mod exact_trust_region;
pub mod first_order;
pub mod gradient_check;
pub mod line_search;
pub mod method;
pub mod newton;
pub mod newton_cg;
pub mod objective;
pub mod optimizer;
pub mod quasi_newton;
pub mod run_loop;
pub mod schedule;
pub mod trust_region;

pub use catalog::{CATALOG, Entry, Settings, build};
pub use first_order::MomentumForm;
pub use method::{
    Curvature, HESSIAN_FREE_ABOVE, HessianPath, JACOBI_FLOOR, Method, Modification,
    PRODUCTS_IN_CACHE_BYTES, Point, Preconditioner, Step, dense_up_to,
};
pub use objective::{Counted, Evaluations, FnObjective, Objective, Rows};
pub use optimizer::{BuildError, Choice, DefaultValue, Family, Hyper, Optimizer, Range};
pub use run_loop::{History, HistoryRow, Observer, Outcome, Record, Status, Stopping, minimize};
pub use schedule::Schedule;
pub use trust_region::{EXACT_SUBPROBLEM_MAX, Subproblem};
