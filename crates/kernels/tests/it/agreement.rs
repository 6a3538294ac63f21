//! For every built-in model, at seeded random points and data: the compiled
//! kernel, the IR interpreter and direct evaluation of the derived formulas
//! agree; gradients and Hessians match finite differences; the Hessian is
//! symmetric; mini-batches and the parallel pass behave.

use crate::close;
use hessforge_ir::Outputs;
use hessforge_kernels::{At, Kernel, REGISTRY, Rows, kernel};
use hessforge_spec::Model;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn builtins() -> Vec<Model> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../derivations");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| hessforge_spec::load_file(p).unwrap())
        .collect()
}

struct Case {
    theta: Vec<f64>,
    consts: Vec<f64>,
    data: Vec<f64>,
}

fn case(m: &Model, rng: &mut ChaCha8Rng, rows: usize) -> Case {
    Case {
        theta: (0..m.n_params())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect(),
        consts: m.constants.iter().map(|(_, v)| *v).collect(),
        data: (0..rows * m.data.len())
            .map(|_| rng.gen_range(-1.5..1.5))
            .collect(),
    }
}

/// [loss, gradient…, Hessian upper triangle…] from a compiled kernel.
fn compiled(k: &dyn Kernel, c: &Case, data: &[f64], rows: Rows<'_>) -> Vec<f64> {
    let p = k.n_params();
    let mut g = vec![0.0; p];
    let mut h = vec![0.0; p * p];
    let at = At::new(&c.theta, &c.consts, data).rows(rows);
    let f = k.loss_grad_hess(at, &mut g, &mut h);
    let mut out = vec![f];
    out.extend(&g);
    for i in 0..p {
        for j in i..p {
            assert_eq!(
                h[i * p + j],
                h[j * p + i],
                "{}: Hessian not symmetric",
                k.name()
            );
            out.push(h[i * p + j]);
        }
    }
    out
}

#[test]
fn registry_has_every_derivation() {
    let names: Vec<&str> = REGISTRY.iter().map(|k| k.name()).collect();
    for m in builtins() {
        assert!(
            names.contains(&m.name.as_str()),
            "{} missing from the registry",
            m.name
        );
        let k = kernel(&m.name).unwrap();
        assert_eq!(k.n_params(), m.n_params());
        assert_eq!(k.n_data(), m.data.len());
    }
}

/// The scalar derivation, the oracle of the index form, is made for models
/// up to this size: `digits` (P = 650, 211 575 Hessian entries to derive
/// one by one) is checked by finite differences below and through
/// `softmax_regression`, the same model at P = 15.
const SCALAR_ORACLE_MAX_PARAMS: usize = 64;

#[test]
fn compiled_equals_interpreter_equals_derivation() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for m in builtins()
        .into_iter()
        .filter(|m| m.n_params() <= SCALAR_ORACLE_MAX_PARAMS)
    {
        let d = hessforge_symbolic::derive(&m).unwrap();
        let programs = hessforge_symbolic::lower(&d).unwrap();
        let k = kernel(&m.name).unwrap();
        for _ in 0..3 {
            let c = case(&m, &mut rng, 13); // one group of eight rows and five single rows
            let fast = compiled(k, &c, &c.data, Rows::All);
            let mut slow = vec![0.0; Outputs::LossGradHess.len(m.n_params())];
            programs.evaluate(
                Outputs::LossGradHess,
                hessforge_ir::At::new(&c.theta, &c.consts, &c.data),
                &mut slow,
            );
            // Direct evaluation of the derived formulas (mean over rows + R).
            let cols = m.data.len();
            let rows: Vec<&[f64]> = if cols == 0 {
                vec![&[]]
            } else {
                c.data.chunks(cols).collect()
            };
            let mut direct = vec![0.0; slow.len()];
            for row in &rows {
                let env = m.environment(&c.theta, row);
                let mut v = vec![d.forms.as_ref().unwrap().loss.eval(&env).unwrap()];
                v.extend(d.gradient.iter().map(|g| g.expr.eval(&env).unwrap()));
                for j in 0..m.n_params() {
                    for l in j..m.n_params() {
                        v.push(d.hessian[j][l].eval(&env).unwrap());
                    }
                }
                for (a, b) in direct.iter_mut().zip(v) {
                    *a += b / rows.len() as f64;
                }
            }
            if let Some(r) = &m.regularizer() {
                let env = m.environment(&c.theta, rows[0]);
                let mut v = vec![r.eval(&env).unwrap()];
                v.extend(d.regularizer_gradient.iter().map(|g| g.eval(&env).unwrap()));
                for j in 0..m.n_params() {
                    for l in j..m.n_params() {
                        v.push(d.regularizer_hessian[j][l].eval(&env).unwrap());
                    }
                }
                for (a, b) in direct.iter_mut().zip(v) {
                    *a += b;
                }
            }
            for i in 0..slow.len() {
                assert!(
                    close(fast[i], slow[i], 1e-12),
                    "{} output {i}: compiled {} vs interpreter {}",
                    m.name,
                    fast[i],
                    slow[i]
                );
                assert!(
                    close(fast[i], direct[i], 1e-12),
                    "{} output {i}: compiled {} vs derivation {}",
                    m.name,
                    fast[i],
                    direct[i]
                );
            }
        }
    }
}

// Central differences: truncation O(h²) and rounding O(ε/h) are both ~1e-9
// at h = 1e-5 for these O(1) functions; a wrong entry is off by O(1).
#[test]
fn compiled_kernels_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for m in builtins() {
        let k = kernel(&m.name).unwrap();
        let c = case(&m, &mut rng, 11);
        let p = m.n_params();
        let at = At::new(&c.theta, &c.consts, &c.data);
        let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
        k.loss_grad_hess(at, &mut g, &mut h);
        for j in 0..p {
            let step = 1e-5;
            let (mut plus, mut minus) = (c.theta.clone(), c.theta.clone());
            plus[j] += step;
            minus[j] -= step;
            let fd = (k.loss(at.theta(&plus)) - k.loss(at.theta(&minus))) / (2.0 * step);
            assert!(
                close(fd, g[j], 1e-6),
                "{} ∂/∂θ{j}: {} vs fd {fd}",
                m.name,
                g[j]
            );
            let (mut gp, mut gm) = (vec![0.0; p], vec![0.0; p]);
            k.loss_grad(at.theta(&plus), &mut gp);
            k.loss_grad(at.theta(&minus), &mut gm);
            for i in 0..p {
                let fd = (gp[i] - gm[i]) / (2.0 * step);
                assert!(
                    close(fd, h[i * p + j], 1e-6),
                    "{} H[{i}][{j}]: {} vs fd {fd}",
                    m.name,
                    h[i * p + j]
                );
            }
        }
    }
}

#[test]
fn mini_batches_and_the_parallel_pass() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let m = builtins()
        .into_iter()
        .find(|m| m.name == "logistic_regression")
        .unwrap();
    let k = kernel(&m.name).unwrap();
    let c = case(&m, &mut rng, 20_000);
    // A mini-batch equals the same rows passed on their own.
    let picked = [3usize, 17, 17, 19_999];
    let own: Vec<f64> = picked
        .iter()
        .flat_map(|&i| c.data[i * 11..(i + 1) * 11].to_vec())
        .collect();
    assert_eq!(
        compiled(k, &c, &c.data, Rows::Selected(&picked)),
        compiled(k, &c, &own, Rows::All)
    );
    // The parallel pass: the same bits every run, and the serial value within rounding.
    let par = compiled(k, &c, &c.data, Rows::Parallel);
    for _ in 0..3 {
        assert_eq!(compiled(k, &c, &c.data, Rows::Parallel), par);
    }
    let serial = compiled(k, &c, &c.data, Rows::All);
    for (a, b) in par.iter().zip(&serial) {
        assert!(close(*a, *b, 1e-12));
    }
}
