//! A user's crate: `build.rs` compiled `derivations/poisson_regression.toml`
//! into a kernel; this program draws a seeded data set from known
//! parameters, minimises the kernel with Newton's method and L-BFGS, and
//! prints where each ended next to the truth.

hessforge_kernels::include_kernels!();

use hessforge_kernels::{Kernel, KernelObjective};
use hessforge_optim::{Settings, Stopping, build, minimize};
use poisson_regression::PoissonRegression;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use std::process::ExitCode;

/// The parameters the data are drawn from: w₁, w₂, w₃, b.
const TRUTH: [f64; 4] = [0.5, -0.3, 0.2, 1.0];
const ROWS: usize = 2_000;

/// `ROWS` rows of (x₁, x₂, x₃, y): x ~ N(0, 0.5²), y ~ Poisson(exp(w·x + b)).
fn data(seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0, 0.5).expect("a valid normal");
    let mut rows = Vec::with_capacity(ROWS * PoissonRegression.n_data());
    for _ in 0..ROWS {
        let x: [f64; 3] = std::array::from_fn(|_| normal.sample(&mut rng));
        let z = x.iter().zip(&TRUTH).map(|(x, w)| x * w).sum::<f64>() + TRUTH[3];
        let y = Poisson::new(z.exp())
            .expect("a positive rate")
            .sample(&mut rng);
        rows.extend(x);
        rows.push(y);
    }
    rows
}

fn main() -> ExitCode {
    let data = data(7);
    let model = PoissonRegression;
    let objective = KernelObjective::new(&model, model.default_constants(), &data);
    let start = vec![0.0; model.n_params()];
    let stopping = Stopping {
        grad_tol: 1e-10,
        ..Stopping::default()
    };
    println!("{} rows; θ = ({})", ROWS, model.param_names().join(", "));
    let mut all_converged = true;
    for name in ["newton", "lbfgs"] {
        let mut method = build(name, &Settings::default()).expect("a catalogued optimizer");
        let outcome = minimize(&objective, method.as_mut(), &start, &stopping, &mut []);
        let theta: Vec<String> = outcome.theta.iter().map(|t| format!("{t:.4}")).collect();
        println!(
            "{name:>6}: {:?} after {} iterations, L = {:.10}, θ = ({})",
            outcome.status,
            outcome.iterations,
            outcome.final_loss,
            theta.join(", ")
        );
        all_converged &= outcome.status.is_success();
    }
    let truth: Vec<String> = TRUTH.iter().map(|t| format!("{t:.4}")).collect();
    println!(" truth: θ = ({})", truth.join(", "));
    if all_converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
