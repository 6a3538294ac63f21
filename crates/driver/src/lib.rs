//! hessforge from Rust: everything the `hessforge` command does between
//! reading its flags and printing — load a model (a built-in by name, with
//! its compiled kernel, or any derivation file, derived and run by the
//! interpreter), its data and start ([`problem`]); run one optimizer with
//! observers or compare several ([`run`]); the tables and reports of the
//! runs ([`summary`]); the figures that explain them ([`figures`]); and the
//! gradient check ([`gradcheck`]).
//!
//! ```
//! use hessforge_driver::{Problem, fit, prepare, optimizer, start_curvature};
//! use hessforge_optim::{History, Settings, Status, Stopping};
//!
//! // Logistic regression on its embedded data, with the compiled kernel.
//! let prepared = prepare("logistic_regression", &Problem::default()).unwrap();
//! let mut settings = Settings::default();
//! start_curvature(&mut settings, &["newton", "gd"], &prepared); // L for gd's 1/L
//! let mut history = History::for_params(prepared.model.n_params());
//! let mut newton = optimizer("newton", &settings).unwrap();
//! let outcome = fit(&prepared, "newton", newton.as_mut(), &Stopping::default(), &mut [&mut history]);
//! assert_eq!(outcome.status, Status::Converged);
//! assert!(outcome.iterations < 20 && history.rows.len() as u64 == outcome.iterations + 1);
//! println!("{}", hessforge_driver::summary::describe(&prepared, &outcome));
//! ```
//!
//! Compare several with [`run_all`] and print [`summary::table`]; draw the
//! figures with [`figures::draw`].
#![warn(missing_docs)]

pub mod backend;
pub mod data;
pub mod figures;
pub mod gradcheck;
pub mod models;
pub mod problem;
pub mod reference;
pub mod run;
pub mod streamed;
pub mod summary;
mod synthetic;

pub use backend::{Backend, BackendChoice};
pub use data::Dataset;
pub use problem::{OptionError, PrepareError, Prepared, Problem, prepare, prepare_without_data};
pub use run::{
    DENSE_HESSIAN_MAX_BYTES, Run, Spectrum, best_converged, default_comparison,
    dense_hessian_bytes, fit, hessian_spectrum, optimizer, optimizer_for, optimizer_names,
    optimum_spectrum, run_all, start_curvature,
};
pub use synthetic::SyntheticError;
