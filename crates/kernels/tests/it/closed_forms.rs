//! Linear and logistic regression against their closed forms:
//! ∇L = X̃ᵀ(ŷ − y)/N + ∇R and ∇²L = X̃ᵀ diag(w) X̃/N + ∇²R, with X̃ = [X, 1],
//! w = 1 (linear) or p(1 − p) (logistic), R = λ/2‖w‖² for logistic.

use hessforge_kernels::{
    At, Kernel, linear_regression::LinearRegression, logistic_regression::LogisticRegression,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N: usize = 50;
const F: usize = 10;
const P: usize = F + 1;

fn data(rng: &mut ChaCha8Rng, binary: bool) -> Vec<f64> {
    let mut d = Vec::with_capacity(N * (F + 1));
    for _ in 0..N {
        for _ in 0..F {
            d.push(rng.gen_range(-2.0..2.0));
        }
        d.push(if binary {
            f64::from(rng.gen_bool(0.4) as u8)
        } else {
            rng.gen_range(-3.0..3.0)
        });
    }
    d
}

/// (∇, H) by the closed forms; `link` maps the score to the prediction,
/// `weight` to the Hessian weight.
fn closed_form(
    theta: &[f64],
    data: &[f64],
    lambda: f64,
    link: fn(f64) -> f64,
    weight: fn(f64) -> f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut g = vec![0.0; P];
    let mut h = vec![0.0; P * P];
    for row in data.chunks(F + 1) {
        let xt: Vec<f64> = row[..F].iter().copied().chain([1.0]).collect();
        let z: f64 = xt.iter().zip(theta).map(|(a, b)| a * b).sum();
        let (r, w) = (link(z) - row[F], weight(z));
        for i in 0..P {
            g[i] += xt[i] * r / N as f64;
            for j in 0..P {
                h[i * P + j] += xt[i] * w * xt[j] / N as f64;
            }
        }
    }
    for i in 0..F {
        g[i] += lambda * theta[i];
        h[i * P + i] += lambda;
    }
    (g, h)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

#[test]
fn logistic_regression_matches_the_closed_form() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let d = data(&mut rng, true);
    let theta: Vec<f64> = (0..P).map(|_| rng.gen_range(-0.5..0.5)).collect();
    let lambda = 0.05;
    let (mut g, mut h) = ([0.0; P], [0.0; P * P]);
    LogisticRegression.loss_grad_hess(At::new(&theta, &[lambda], &d), &mut g, &mut h);
    let (cg, ch) = closed_form(&theta, &d, lambda, sigmoid, |z| {
        sigmoid(z) * (1.0 - sigmoid(z))
    });
    assert_close(&g, &cg, "∇");
    assert_close(&h, &ch, "H");
}

#[test]
fn linear_regression_matches_the_closed_form() {
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let d = data(&mut rng, false);
    let theta: Vec<f64> = (0..P).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let (mut g, mut h) = ([0.0; P], [0.0; P * P]);
    LinearRegression.loss_grad_hess(At::new(&theta, &[], &d), &mut g, &mut h);
    let (cg, ch) = closed_form(&theta, &d, 0.0, |z| z, |_| 1.0);
    assert_close(&g, &cg, "∇");
    assert_close(&h, &ch, "H");
}

/// The compiled kernel (its vector lanes, not only the one-row program) at
/// scores z = ±1, ±30, ±800 with y = 0 and 1: loss, gradient and Hessian
/// finite and equal to the overflow-free closed forms. 24 rows: three full
/// groups of eight, so every row goes through the lanes.
#[test]
fn compiled_logistic_regression_is_stable_at_large_scores_in_every_lane() {
    let softplus = |z: f64| z.max(0.0) + (-z.abs()).exp().ln_1p();
    // σ without overflow: e^{−800} underflows to 0 instead of e^{800} = ∞.
    let stable_sigmoid = |z: f64| {
        let e = (-z.abs()).exp();
        if z >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        }
    };
    let mut d = Vec::new();
    let mut rows = Vec::new();
    for z in [1.0, 30.0, 800.0, -1.0, -30.0, -800.0] {
        for y in [0.0, 1.0] {
            for _ in 0..2 {
                // x₁ = z and w = (1, 0, …, 0), b = 0: the score is z.
                let mut row = vec![0.0; F + 1];
                row[0] = z;
                row[F] = y;
                d.extend_from_slice(&row);
                rows.push((z, y));
            }
        }
    }
    assert_eq!(rows.len() % 8, 0);
    let mut theta = [0.0; P];
    theta[0] = 1.0;
    let (mut g, mut h) = ([0.0; P], [0.0; P * P]);
    let loss = LogisticRegression.loss_grad_hess(At::new(&theta, &[0.0], &d), &mut g, &mut h);
    let n = rows.len() as f64;
    let want_loss: f64 = rows.iter().map(|&(z, y)| softplus(z) - y * z).sum::<f64>() / n;
    let want_g0: f64 = rows
        .iter()
        .map(|&(z, y)| (stable_sigmoid(z) - y) * z)
        .sum::<f64>()
        / n;
    let want_h00: f64 = rows
        .iter()
        .map(|&(z, _)| stable_sigmoid(z) * (1.0 - stable_sigmoid(z)) * z * z)
        .sum::<f64>()
        / n;
    assert!(g.iter().chain(&h).all(|v| v.is_finite()) && loss.is_finite());
    assert_close(
        &[loss, g[0], h[0]],
        &[want_loss, want_g0, want_h00],
        "ℓ, ∂ℓ/∂w₁, ∂²ℓ/∂w₁²",
    );
}
