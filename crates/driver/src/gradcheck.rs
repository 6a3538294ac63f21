//! `hessforge gradcheck`: the derived gradient and Hessian against central
//! finite differences (`hessforge_optim::gradient_check`), at seeded random
//! points, on the back-end a user would run (the compiled kernel of a
//! built-in; else a file's IR — its loop IR or, with scalar parameters
//! only, its straight-line programs — compiled at run time).

use crate::backend::Backend;
use hessforge_kernels::KernelObjective;
use hessforge_optim::gradient_check::{Errors, check};
use hessforge_spec::Model;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The report of `gradcheck`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The model.
    pub model: String,
    /// "compiled", "run-time compiled" or "interpreter".
    pub backend: &'static str,
    /// Points checked.
    pub points: usize,
    /// Data rows per point (0 for a model without data).
    pub rows: usize,
    /// Gradient errors.
    pub gradient: Errors,
    /// Hessian errors.
    pub hessian: Errors,
    /// Largest relative error allowed.
    pub tolerance: f64,
    /// Whether both stayed within the tolerance.
    pub passed: bool,
}

/// Rows of data for the check: the model's synthetic process if it has one,
/// else standard-normal columns.
fn data(
    model: &Model,
    rows: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>, crate::synthetic::SyntheticError> {
    if model.data.is_empty() {
        return Ok(vec![]);
    }
    if model.synthetic.is_some() {
        return crate::synthetic::sample(model, rows, rng.r#gen());
    }
    Ok((0..rows * model.data.len())
        .map(|_| rng.gen_range(-2.0..2.0))
        .collect())
}

/// Check `points` random points near the model's starting point.
pub fn run(
    model: &Model,
    backend: &Backend,
    points: usize,
    seed: u64,
    tolerance: f64,
) -> Result<Report, crate::synthetic::SyntheticError> {
    const ROWS: usize = 16;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let constants: Vec<f64> = model.constants.iter().map(|(_, v)| *v).collect();
    let (mut gradient, mut hessian) = (Errors::default(), Errors::default());
    for _ in 0..points {
        let theta: Vec<f64> = model
            .init
            .iter()
            .map(|v| v + rng.gen_range(-0.5..0.5))
            .collect();
        let data = data(model, ROWS, &mut rng)?;
        let objective = KernelObjective::new(backend.kernel(), &constants, &data);
        let (g, h) = check(&objective, &theta);
        gradient.merge(g);
        hessian.merge(h);
    }
    let passed = gradient.max_rel <= tolerance && hessian.max_rel <= tolerance;
    Ok(Report {
        model: model.name.clone(),
        backend: backend.kind(),
        points,
        rows: if model.data.is_empty() { 0 } else { ROWS },
        gradient,
        hessian,
        tolerance,
        passed,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "gradient check of {} ({}), {} points{}",
            self.model,
            self.backend,
            self.points,
            if self.rows > 0 {
                format!(", {} data rows each", self.rows)
            } else {
                String::new()
            }
        )?;
        writeln!(f, "            max abs error   max rel error")?;
        writeln!(
            f,
            "  gradient  {:>13.3e}   {:>13.3e}",
            self.gradient.max_abs, self.gradient.max_rel
        )?;
        writeln!(
            f,
            "  Hessian   {:>13.3e}   {:>13.3e}",
            self.hessian.max_abs, self.hessian.max_rel
        )?;
        write!(
            f,
            "{}: relative errors {} the tolerance {:.0e}",
            if self.passed { "passed" } else { "FAILED" },
            if self.passed { "within" } else { "exceed" },
            self.tolerance
        )
    }
}
