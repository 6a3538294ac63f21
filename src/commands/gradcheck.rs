//! `hessforge gradcheck`: the derived gradient and Hessian against finite
//! differences, on the back-end the model runs on.

use crate::output::Failure;
use hessforge_driver::{Backend, BackendChoice, gradcheck, models};

/// Check `name` at `points` seeded points; exit 1 over the tolerance.
pub fn run(name: &str, points: usize, seed: u64, tol: f64, json: bool) -> Result<(), Failure> {
    let model = models::load(name).map_err(Failure::bad_input)?;
    let backend = Backend::resolve(name, &model, BackendChoice::Auto).map_err(Failure::engine)?;
    let report =
        gradcheck::run(&model, &backend, points.max(1), seed, tol).map_err(Failure::bad_input)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("JSON of plain data")
        );
    } else {
        println!("{report}");
    }
    if report.passed {
        Ok(())
    } else {
        Err(Failure::failed(miette::miette!(
            help = "a derivative rule or a simplification is wrong; compare `hessforge derive` with a hand derivation",
            "the gradient check of `{}` failed: relative error over {tol:e}",
            model.name
        )))
    }
}
