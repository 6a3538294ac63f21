//! Numerical self-check: every gradient and Hessian entry of every built-in
//! derivation against central finite differences, at seeded random points.

use crate::common;
use hessforge_spec::Model;
use hessforge_symbolic::{Derivation, derive};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The objective of one sample (ℓ + R) at θ.
fn objective(m: &Model, theta: &[f64], row: &[f64]) -> f64 {
    let env = m.environment(theta, row);
    let reg = m
        .regularizer()
        .as_ref()
        .map_or(0.0, |r| r.eval(&env).unwrap());
    m.loss().eval(&env).unwrap() + reg
}

/// The derived gradient of ℓ + R at θ.
fn gradient(d: &Derivation, theta: &[f64], row: &[f64]) -> Vec<f64> {
    let env = d.model.environment(theta, row);
    (0..theta.len())
        .map(|j| {
            let reg = d
                .regularizer_gradient
                .get(j)
                .map_or(0.0, |r| r.eval(&env).unwrap());
            d.gradient[j].expr.eval(&env).unwrap() + reg
        })
        .collect()
}

fn hessian(d: &Derivation, theta: &[f64], row: &[f64]) -> Vec<Vec<f64>> {
    let env = d.model.environment(theta, row);
    let p = theta.len();
    (0..p)
        .map(|j| {
            (0..p)
                .map(|k| {
                    let reg = d
                        .regularizer_hessian
                        .get(j)
                        .map_or(0.0, |r| r[k].eval(&env).unwrap());
                    d.hessian[j][k].eval(&env).unwrap() + reg
                })
                .collect()
        })
        .collect()
}

/// A data row that makes sense for the model: labels in {0, 1} (one-hot for
/// vectors), features standard normal-ish.
fn random_row(m: &Model, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut row: Vec<f64> = m.data.iter().map(|_| rng.gen_range(-1.5..1.5)).collect();
    for t in &m.data_tensors {
        if t.name == "y" {
            let idx: Vec<usize> = t
                .ids
                .iter()
                .map(|id| m.data.iter().position(|s| &s.id == id).unwrap())
                .collect();
            if idx.len() == 1 {
                row[idx[0]] = f64::from(rng.gen_bool(0.5) as u8);
            } else {
                let hot = rng.gen_range(0..idx.len());
                for (n, i) in idx.iter().enumerate() {
                    row[*i] = f64::from(n == hot);
                }
            }
        }
    }
    row
}

// Central differences have truncation error O(h²·f''') and rounding error
// O(ε·|f|/h). With h = 1e-5 (relative to max(1, |θⱼ|)) and well-scaled
// points (|θ|, |x| ≤ 1.5, function values O(1)–O(100)), both are below ~1e-8
// of the local scale; a wrong derivative is off by O(1). The tolerance
// 1e-6 · max(1, |exact|) sits between the two with margin either way.
const H: f64 = 1e-5;
const TOL: f64 = 1e-6;

fn close(fd: f64, exact: f64) -> bool {
    common::close(fd, exact, TOL)
}

#[test]
fn every_builtin_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(20261122);
    for m in common::builtins() {
        let d = derive(&m).unwrap();
        let p = m.n_params();
        for point in 0..5 {
            let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let row = random_row(&m, &mut rng);
            let g = gradient(&d, &theta, &row);
            let h = hessian(&d, &theta, &row);
            for j in 0..p {
                let step = H * theta[j].abs().max(1.0);
                let mut plus = theta.clone();
                let mut minus = theta.clone();
                plus[j] += step;
                minus[j] -= step;
                let fd = (objective(&m, &plus, &row) - objective(&m, &minus, &row)) / (2.0 * step);
                assert!(
                    close(fd, g[j]),
                    "{} point {point}: ∂/∂{} exact {} fd {fd}",
                    m.name,
                    m.params[j].id,
                    g[j]
                );
                let (gp, gm) = (gradient(&d, &plus, &row), gradient(&d, &minus, &row));
                for k in 0..p {
                    let fd = (gp[k] - gm[k]) / (2.0 * step);
                    assert!(
                        close(fd, h[k][j]),
                        "{} point {point}: ∂²/∂{}∂{} exact {} fd {fd}",
                        m.name,
                        m.params[k].id,
                        m.params[j].id,
                        h[k][j]
                    );
                    assert_eq!(
                        h[j][k], h[k][j],
                        "{}: Hessian not symmetric at ({j}, {k})",
                        m.name
                    );
                }
            }
        }
    }
}

#[test]
fn finite_differences_catch_a_wrong_derivative() {
    // The check itself must be able to fail: perturb one derived entry.
    let m = common::builtin("logistic_regression");
    let mut d = derive(&m).unwrap();
    d.gradient[0].expr = hessforge_spec::parse_expression(&m, "(p - y) * x[2]").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let theta: Vec<f64> = (0..m.n_params())
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let row = random_row(&m, &mut rng);
    let g = gradient(&d, &theta, &row);
    let mut plus = theta.clone();
    let mut minus = theta.clone();
    plus[0] += H;
    minus[0] -= H;
    let fd = (objective(&m, &plus, &row) - objective(&m, &minus, &row)) / (2.0 * H);
    assert!(!close(fd, g[0]));
}
