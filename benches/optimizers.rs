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
use hessforge_kernels::{Kernel, Rows, logistic_regression::LogisticRegression};
use hessforge_optim::{Batch, Objective, Point, Settings, Stopping, build, minimize};
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

/// The compiled kernel over the whole data set (single thread).
struct Logistic;

impl Objective for Logistic {
    fn n_params(&self) -> usize {
        P
    }
    fn n_rows(&self) -> usize {
        N
    }
    fn loss(&self, theta: &[f64], _: Batch<'_>) -> f64 {
        LogisticRegression.loss(theta, &LAMBDA, Rows::All(&DATA))
    }
    fn loss_grad(&self, theta: &[f64], _: Batch<'_>, grad: &mut [f64]) -> f64 {
        LogisticRegression.loss_grad(theta, &LAMBDA, Rows::All(&DATA), grad)
    }
    fn loss_grad_hess(
        &self,
        theta: &[f64],
        _: Batch<'_>,
        grad: &mut [f64],
        hess: &mut [f64],
    ) -> f64 {
        LogisticRegression.loss_grad_hess(theta, &LAMBDA, Rows::All(&DATA), grad, hess)
    }
}

#[divan::bench]
fn kernel_pass(bencher: Bencher) {
    let theta = [0.1; P];
    let (mut g, mut h) = ([0.0; P], [0.0; P * P]);
    LazyLock::force(&DATA);
    bencher.bench_local(|| Logistic.loss_grad_hess(black_box(&theta), Batch::Full, &mut g, &mut h));
}

#[divan::bench]
fn newton_iteration(bencher: Bencher) {
    let mut newton = build("newton", &Settings::default()).unwrap();
    newton.reset(P, N);
    let mut at = Point::new(&[0.1; P]);
    LazyLock::force(&DATA);
    bencher.bench_local(|| {
        at.theta.fill(0.1);
        at.loss = Logistic.loss_grad_hess(&at.theta, Batch::Full, &mut at.grad, &mut at.hess);
        newton.step(&Logistic, &mut at, 1)
    });
}

#[divan::bench(sample_count = 5)]
fn newton_to_1e_10(bencher: Bencher) {
    let stop = Stopping {
        grad_tol: 1e-10,
        ..Stopping::default()
    };
    bencher.bench_local(|| {
        let mut newton = build("newton", &Settings::default()).unwrap();
        let out = minimize(&Logistic, newton.as_mut(), &[0.0; P], &stop, &mut []);
        assert!(out.converged);
        out.iterations
    });
}

#[divan::bench(sample_count = 3)]
fn gd_to_newtons_loss(bencher: Bencher) {
    let mut newton = build("newton", &Settings::default()).unwrap();
    let target = minimize(
        &Logistic,
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
    let (mut g, mut h) = ([0.0; P], [0.0; P * P]);
    Logistic.loss_grad_hess(&[0.0; P], Batch::Full, &mut g, &mut h);
    let l = nalgebra::SymmetricEigen::new(nalgebra::DMatrix::from_row_slice(P, P, &h))
        .eigenvalues
        .max();
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
        let out = minimize(&Logistic, gd.as_mut(), &[0.0; P], &stop, &mut []);
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
    LazyLock::force(&DATA);
    bencher.bench_local(|| {
        let mut m = build(name, &settings).unwrap();
        minimize(&Logistic, m.as_mut(), &[0.0; P], &stop, &mut [])
    });
}
