//! Load → derive → minimize from Rust: a derivation file given at run time
//! (derived and run by the interpreter, no rebuild), Newton's method with an
//! observer printing every iteration, then every full-batch optimizer
//! compared from the same start.
//!
//! `cargo run -p hessforge-driver --example minimize [MODEL|FILE.toml]`

use hessforge_driver::summary::table;
use hessforge_driver::{Problem, fit, optimizer, optimizer_names, prepare, run_all};
use hessforge_optim::{Record, Settings, Stopping};

fn main() -> miette::Result<()> {
    let model = std::env::args()
        .nth(1)
        .unwrap_or("derivations/rosenbrock.toml".into());
    let problem = Problem {
        seed: 7,
        ..Problem::default()
    };
    let prepared = prepare(&model, &problem)?;
    let (settings, stopping) = (Settings::default(), Stopping::default());

    let mut newton = optimizer("newton", &settings)?;
    let mut print = |r: &Record| {
        println!(
            "k = {:>2}  L = {:.6e}  ‖∇L‖∞ = {:.2e}",
            r.iteration, r.loss, r.grad_norm
        )
    };
    let outcome = fit(
        &prepared,
        "newton",
        newton.as_mut(),
        &stopping,
        &mut [&mut print],
    );
    println!(
        "newton: {} after {} iterations, θ = {:?}\n",
        outcome.status.as_str(),
        outcome.iterations,
        outcome.theta
    );

    let names = optimizer_names(&prepared, vec![]);
    let runs = run_all(
        &prepared,
        &names,
        &mut settings.clone(),
        &stopping,
        false,
        &mut |_| None,
    )?;
    print!(
        "{}",
        table(&runs.into_iter().map(|r| r.outcome).collect::<Vec<_>>())
    );
    Ok(())
}
