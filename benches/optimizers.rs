//! The optimizer driver end to end on logistic regression (10 features +
//! bias, 100 000 seeded samples: X ~ N(0, 1), w = linspace(−1, 1, 10),
//! b = 0.5, y ~ Bernoulli(σ(Xw + b)); λ = 0.01), single thread:
//!
//! - one kernel pass (loss + gradient + Hessian) and one Newton iteration
//!   (that pass + the 11×11 Cholesky solve and bookkeeping) — the bar is
//!   iteration ≤ 1.2 × pass;
//! - Newton to ‖∇L‖∞ < 1e-10 from zero, and GD (step 1/L) to Newton's loss + 1e-8;
//! - 20 iterations of every full-batch optimizer (per-iteration cost = time / 20).
//!
//! `cargo bench --bench optimizers`

use divan::{Bencher, black_box};
use hessforge_kernels::{KernelObjective, logistic_regression::LogisticRegression};
use hessforge_optim::{Objective, Point, Rows, Settings, Stopping, build, minimize};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::sync::LazyLock;

const N: usize = 100_000;
const F: usize = 10;
const P: usize = F + 1;
const LAMBDA: [f64; 1] = [0.01];

fn main() {
    divan::main();
}

static DATA: LazyLock<Vec<f64>> = LazyLock::new(|| {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let w: Vec<f64> = (0..F)
        .map(|i| -1.0 + 2.0 * i as f64 / (F - 1) as f64)
        .collect();
    let mut data = Vec::with_capacity(N * P);
    for _ in 0..N {
        let x: Vec<f64> = (0..F).map(|_| StandardNormal.sample(&mut rng)).collect();
        let z: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() + 0.5;
        data.extend(&x);
        data.push(f64::from(u8::from(rng.gen_bool(1.0 / (1.0 + (-z).exp())))));
    }
    data
});

/// The compiled kernel over the whole data set, on one thread.
fn logistic() -> KernelObjective<'static> {
    KernelObjective::new(&LogisticRegression, &LAMBDA, &DATA).parallel_from(usize::MAX)
}

#[divan::bench]
fn kernel_pass(bencher: Bencher) {
    let theta = [0.1; P];
    let (mut g, mut h) = ([0.0; P], [0.0; P * P]);
    let logistic = logistic();
    bencher.bench_local(|| logistic.loss_grad_hess(black_box(&theta), Rows::All, &mut g, &mut h));
}

#[divan::bench]
fn newton_iteration(bencher: Bencher) {
    let mut newton = build("newton", &Settings::default()).unwrap();
    newton.reset(P, N);
    let mut at = Point::new(&[0.1; P]);
    let logistic = logistic();
    bencher.bench_local(|| {
        at.theta.fill(0.1);
        at.loss = logistic.loss_grad_hess(&at.theta, Rows::All, &mut at.grad, &mut at.hess);
        newton.step(&logistic, &mut at, 1)
    });
}

#[divan::bench(sample_count = 5)]
fn newton_to_1e_10(bencher: Bencher) {
    let stop = Stopping {
        grad_tol: 1e-10,
        ..Stopping::default()
    };
    let logistic = logistic();
    bencher.bench_local(|| {
        let mut newton = build("newton", &Settings::default()).unwrap();
        let out = minimize(&logistic, newton.as_mut(), &[0.0; P], &stop, &mut []);
        assert!(out.converged);
        out.iterations
    });
}

#[divan::bench(sample_count = 3)]
fn gd_to_newtons_loss(bencher: Bencher) {
    let logistic = logistic();
    let mut newton = build("newton", &Settings::default()).unwrap();
    let target = minimize(
        &logistic,
        newton.as_mut(),
        &[0.0; P],
        &Stopping {
            grad_tol: 1e-10,
            ..Stopping::default()
        },
        &mut [],
    )
    .final_loss
        + 1e-8;
    let l = hessforge_driver::hessian_spectrum(&logistic, &[0.0; P]).1;
    let stop = Stopping {
        grad_tol: 0.0,
        target_loss: Some(target),
        max_iters: 100_000,
        ..Stopping::default()
    };
    bencher.bench_local(|| {
        let mut gd = build(
            "gd",
            &Settings {
                lr: Some(1.0 / l),
                ..Settings::default()
            },
        )
        .unwrap();
        let out = minimize(&logistic, gd.as_mut(), &[0.0; P], &stop, &mut []);
        assert!(out.converged, "{}", out.message);
        out.iterations
    });
}

const FULL_BATCH: &[&str] = &[
    "gd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "adamw",
    "newton",
    "newton-damped",
    "newton-lm",
    "newton-saddle-free",
    "newton-tr",
    "newton-exact-tr",
    "newton-cg",
    "bfgs",
    "lbfgs",
];

#[divan::bench(args = FULL_BATCH, sample_count = 5)]
fn twenty_iterations(bencher: Bencher, name: &str) {
    let settings = Settings {
        lr: Some(0.1),
        ..Settings::default()
    };
    let stop = Stopping {
        grad_tol: 0.0,
        max_iters: 20,
        ..Stopping::default()
    };
    let logistic = logistic();
    bencher.bench_local(|| {
        let mut m = build(name, &settings).unwrap();
        minimize(&logistic, m.as_mut(), &[0.0; P], &stop, &mut [])
    });
}
