//! The loop IR lowered from the index form against its oracle, the scalar
//! programs lowered from the scalarized derivation: loss, gradient, Hessian
//! and Hessian–vector products agree to 1e-12 on every built-in, every test
//! problem and models of shapes the built-ins do not have (that the IR's
//! size does not grow with the tensors' lengths is `loop_ir_size.rs`).

use crate::common::{self, close};
use hessforge_ir::At;
use hessforge_ir::loop_ir::{Interpreter, LoopProgram, Steps};
use hessforge_ir::{ModelPrograms, Outputs};
use hessforge_spec::Model;
use hessforge_symbolic::{derive_scalar, lower, lower_loop_ir};
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
    progs.evaluate(
        Outputs::LossGradHess,
        hessforge_ir::At::new(theta, consts, data)
            .rows(rows.map_or(hessforge_ir::Rows::All, hessforge_ir::Rows::Selected)),
        &mut out,
    );
    let mut hess = vec![0.0; p * p];
    hessforge_ir::unpack_upper(p, &out[1 + p..], &mut hess);
    (out[0], out[1..=p].to_vec(), hess)
}

fn lowered(m: &Model) -> LoopProgram {
    lower_loop_ir(m).unwrap_or_else(|e| panic!("{}: {e}", m.name))
}

/// Loss, gradient, Hessian, H·v and diag(H) of the loop IR equal the oracle's, at
/// every level, over all rows and over a mini-batch.
fn agrees(m: &Model, rng: &mut ChaCha8Rng, n_rows: usize) {
    let scalar = lower(&derive_scalar(m).unwrap()).unwrap();
    let tensor = lowered(m);
    let p = m.n_params();
    assert_eq!(tensor.params, scalar.params, "{}", m.name);
    // The tangent model computes no Hessian term and reads v.
    let tangent = tensor.tangent.as_deref().expect("lowering attaches it");
    assert!(tangent.sample.hessian.is_empty() && tangent.regularizer.hessian.is_empty());
    assert!(
        tangent.sample.steps.len() + tangent.regularizer.steps.len() > 0 || p == 0,
        "{}",
        m.name
    );
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
                rows: rows.map_or(hessforge_ir::Rows::All, hessforge_ir::Rows::Selected),
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
            // H·v by the tangent model (forward derivative of the
            // gradient's steps) and by contracting the Hessian terms.
            let v: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let (mut hv, mut terms) = (vec![0.0; p], vec![0.0; p]);
            let l3 = tensor.hess_vec(at, &v, &mut hv);
            assert!(close(l3, l, 1e-12), "{what}: loss {l3} vs {l}");
            let l4 = tensor.hess_vec_terms(at, &v, &mut terms);
            assert!(close(l4, l, 1e-12), "{what}: loss {l4} vs {l}");
            for j in 0..p {
                let want: f64 = (0..p).map(|k| h[j * p + k] * v[k]).sum();
                assert!(
                    close(hv[j], want, 1e-11),
                    "{what}: (Hv)_{j}: {} vs {want}",
                    hv[j]
                );
                assert!(
                    close(terms[j], want, 1e-11),
                    "{what}: (Hv)_{j} by the terms: {} vs {want}",
                    terms[j]
                );
            }
            // diag(H) from the diagonal entries of the terms alone.
            let mut diag = vec![f64::NAN; p];
            let l5 = tensor.hess_diag(at, &mut diag);
            assert!(close(l5, l, 1e-12), "{what}: loss {l5} vs {l}");
            for j in 0..p {
                assert!(
                    close(diag[j], h[j * p + j], 1e-12),
                    "{what}: ∂²/∂{}²: {} vs {}",
                    tensor.params[j],
                    diag[j],
                    h[j * p + j]
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

#[test]
fn small_fixtures_agree_with_the_scalar_programs() {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    agrees(&common::logistic(3), &mut rng, 5);
    agrees(&common::mlp(2), &mut rng, 5);
}

/// At sizes the scalar path cannot reach in a test, the loop IR against the
/// index-form derivation evaluated directly (sums written out at the
/// point): the whole gradient and a spread of Hessian entries, one row;
/// and H·v against the Hessian it forms.
fn agrees_with_the_index_form(m: &Model, rng: &mut ChaCha8Rng) {
    let tensor = lowered(m);
    let ix = m.index.as_ref().unwrap();
    let derived = hessforge_symbolic::derive_index(m).unwrap();
    let p = m.n_params();
    let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-0.3..0.3)).collect();
    let row: Vec<f64> = m.data.iter().map(|_| rng.gen_range(-1.0..1.0)).collect();
    let consts: Vec<f64> = m.constants.iter().map(|(_, v)| *v).collect();
    let at = At {
        theta: &theta,
        constants: &consts,
        data: &row,
        rows: hessforge_ir::Rows::All,
    };
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    tensor.evaluate(Outputs::LossGradHess, at, &mut g, &mut h);
    let env = m.environment(&theta, &row);
    let eval = |e: &hessforge_spec::index::IExpr, at: &[(&[String], &[usize])]| {
        let mut map = std::collections::HashMap::new();
        for (names, pos) in at {
            for (n, q) in names.iter().zip(pos.iter()) {
                map.insert(n.clone(), *q);
            }
        }
        ix.eval(e, &env, &mut map).unwrap()
    };
    // 1-based position of flat entry k of a shape.
    let position = |shape: &[usize], mut k: usize| -> Vec<usize> {
        let mut out = vec![0; shape.len()];
        for a in (0..shape.len()).rev() {
            out[a] = k % shape[a] + 1;
            k /= shape[a];
        }
        out
    };
    let layout = |name: &str| tensor.tensors.iter().find(|t| t.name == name).unwrap();
    for gr in &derived.gradient {
        let t = layout(&gr.tensor);
        for k in 0..t.len() {
            let pos = position(&t.shape, k);
            let want = eval(&gr.loss, &[(&gr.indices, &pos)])
                + eval(&gr.regularizer, &[(&gr.indices, &pos)]);
            let got = g[t.offset + k];
            assert!(
                close(got, want, 1e-12),
                "{}: ∂/∂{}{pos:?}: {got} vs {want}",
                m.name,
                gr.tensor
            );
        }
    }
    for b in &derived.hessian {
        let (tr, tc) = (layout(&b.row), layout(&b.col));
        for _ in 0..40 {
            let (i, j) = (rng.gen_range(0..tr.len()), rng.gen_range(0..tc.len()));
            // Half of the samples on the diagonal of the block, where the
            // Kronecker deltas are.
            let j = if rng.gen_bool(0.5) && tr.len() == tc.len() {
                i
            } else {
                j
            };
            let (pr, pc) = (position(&tr.shape, i), position(&tc.shape, j));
            let at = [(&b.row_indices[..], &pr[..]), (&b.col_indices[..], &pc[..])];
            let want = eval(&b.loss, &at) + eval(&b.regularizer, &at);
            let (got, mirror) = (
                h[(tr.offset + i) * p + tc.offset + j],
                h[(tc.offset + j) * p + tr.offset + i],
            );
            assert!(
                close(got, want, 1e-12),
                "{}: ∂²/∂{}{pr:?}∂{}{pc:?}: {got} vs {want}",
                m.name,
                b.row,
                b.col
            );
            assert_eq!(got, mirror, "{}: symmetric", m.name);
        }
    }
    let v: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let mut hv = vec![0.0; p];
    tensor.hess_vec(at, &v, &mut hv);
    for j in 0..p {
        let want: f64 = (0..p).map(|k| h[j * p + k] * v[k]).sum();
        assert!(
            close(hv[j], want, 1e-11),
            "{}: (Hv)_{j}: {} vs {want}",
            m.name,
            hv[j]
        );
    }
}

#[test]
fn large_fixtures_agree_with_the_index_form() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for m in [
        common::logistic(100),
        common::logistic(1000),
        common::mlp(16),
        common::mlp(64),
    ] {
        agrees_with_the_index_form(&m, &mut rng);
    }
}

/// The stable rewrites reach the loop IR: at |z| = 800, where σ(z) rounds
/// to 0 or 1, the loss is softplus(±z) and every derivative is finite.
#[test]
fn the_loop_ir_is_stable_where_the_naive_formula_overflows() {
    let m = common::logistic(3);
    let tensor = lowered(&m);
    let theta = [400.0, 400.0, 0.0, 0.0];
    let reg = 0.01 / 2.0 * (2.0 * 400.0 * 400.0);
    for (x, y) in [([1.0, 1.0, 0.0], 0.0), ([-1.0, -1.0, 0.0], 1.0)] {
        let row = [x[0], x[1], x[2], y];
        let at = At {
            theta: &theta,
            constants: &[0.01],
            data: &row,
            rows: hessforge_ir::Rows::All,
        };
        let (mut g, mut h) = ([0.0; 4], [0.0; 16]);
        let loss = tensor.evaluate(Outputs::LossGradHess, at, &mut g, &mut h);
        assert_eq!(loss, 800.0 + reg, "z = {}", 800.0 * x[0]);
        assert!(g.iter().chain(&h).all(|v| v.is_finite()), "{g:?} {h:?}");
    }
}

/// A block above the direct-update size (70² entries): over 300 rows its
/// rank-1 terms go through two full gathered blocks and a remainder, and
/// agree with the mean of the rows taken one at a time.
#[test]
fn gathered_matrix_products_agree_with_rows_one_at_a_time() {
    let m = common::logistic(70);
    let tensor = lowered(&m);
    let mut rng = ChaCha8Rng::seed_from_u64(18);
    let p = m.n_params();
    let (n, cols) = (300, m.data.len());
    let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-0.2..0.2)).collect();
    let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let consts = [0.01];
    let all = At {
        theta: &theta,
        constants: &consts,
        data: &data,
        rows: hessforge_ir::Rows::All,
    };
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    tensor.evaluate(Outputs::LossGradHess, all, &mut g, &mut h);
    let mut mean = vec![0.0; p * p];
    let (mut g1, mut h1) = (vec![0.0; p], vec![0.0; p * p]);
    for r in 0..n {
        let one = [r];
        let at = At {
            rows: hessforge_ir::Rows::Selected(&one[..]),
            ..all
        };
        tensor.evaluate(Outputs::LossGradHess, at, &mut g1, &mut h1);
        for (a, b) in mean.iter_mut().zip(&h1) {
            // The regularizer's λ on the diagonal is in every row's value.
            *a += b / n as f64;
        }
    }
    for k in 0..p * p {
        assert!(
            close(h[k], mean[k], 1e-12),
            "entry {k}: {} vs {}",
            h[k],
            mean[k]
        );
    }
}

/// The interpreter's steps presented W = 8 rows at a time, in the layout
/// of [`Steps::sample_lanes`]: a pass in lanes (per-lane sums, gathered
/// rows copied out of lanes, the other terms lane by lane) against the
/// same steps one row at a time.
struct InLanes<'a>(Interpreter<'a>);

impl Steps for InLanes<'_> {
    fn sample(&self, level: Outputs, theta: &[f64], row: &[f64], c: &[f64], s: &mut [f64]) {
        self.0.sample(level, theta, row, c, s);
    }
    fn regularizer(&self, level: Outputs, theta: &[f64], c: &[f64], s: &mut [f64]) {
        self.0.regularizer(level, theta, c, s);
    }
    fn lanes(&self) -> usize {
        8
    }
    fn sample_lanes(&self, level: Outputs, theta: &[f64], rows: &[f64], c: &[f64], s: &mut [f64]) {
        // Only the stage's buffers, as generated and compiled steps write:
        // the scratch past them holds the pass's fills.
        let (cols, len) = (rows.len() / 8, self.0.0.sample.scratch);
        let (mut row, mut one) = (vec![0.0; cols], vec![0.0; len]);
        for lane in 0..8 {
            for (j, x) in row.iter_mut().enumerate() {
                *x = rows[j * 8 + lane];
            }
            self.0.sample(level, theta, &row, c, &mut one);
            for (e, v) in one.iter().enumerate() {
                s[e * 8 + lane] = *v;
            }
        }
    }
}

/// Logistic regression with 70 features (a block of 4 900 entries:
/// gathered) and the network with 16 hidden units (paired and small
/// rank-1 terms: per-lane sums and lane by lane), over 301 rows (37 blocks
/// of eight and a remainder of five; more than one gathered block) and a
/// mini-batch: the pass in lanes equals the pass one row at a time.
#[test]
fn a_pass_in_lanes_agrees_with_rows_one_at_a_time() {
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    for m in [common::logistic(70), common::mlp(16)] {
        let tensor = lowered(&m);
        let p = m.n_params();
        let (n, cols) = (301, m.data.len());
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-0.5..0.5)).collect();
        let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let consts = m.constants.iter().map(|(_, v)| *v).collect::<Vec<_>>();
        let batch: Vec<usize> = (0..20).map(|k| (k * 37) % n).collect();
        for rows in [None, Some(&batch[..])] {
            let at = At {
                theta: &theta,
                constants: &consts,
                data: &data,
                rows: rows.map_or(hessforge_ir::Rows::All, hessforge_ir::Rows::Selected),
            };
            for level in [Outputs::Loss, Outputs::LossGrad, Outputs::LossGradHess] {
                let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
                let (mut g8, mut h8) = (vec![0.0; p], vec![0.0; p * p]);
                let f = tensor.evaluate(level, at, &mut g, &mut h);
                let f8 = tensor.evaluate_with(
                    &InLanes(Interpreter(&tensor)),
                    level,
                    at,
                    &mut g8,
                    &mut h8,
                );
                let name = &m.name;
                assert!(close(f, f8, 1e-12), "{name} {level:?}: loss {f} vs {f8}");
                for k in 0..p {
                    assert!(close(g[k], g8[k], 1e-12), "{name}: grad {k}");
                }
                for k in 0..p * p {
                    assert!(
                        close(h[k], h8[k], 1e-12),
                        "{name}: hess {k}: {} vs {}",
                        h[k],
                        h8[k]
                    );
                }
            }
        }
    }
}

/// A pass's plan is built on first use and kept: passes of every kind
/// (short and long, each level, H·v) in any order give the bits of the first
/// pass of that kind; a clone and a serde round trip of the model compare
/// equal and give the same bits with plans of their own.
#[test]
fn kept_plans_give_the_bits_of_fresh_ones() {
    let m = common::mlp(3);
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let p = m.n_params();
    let cols = m.data.len();
    let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let v: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let data: Vec<f64> = (0..300 * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
    let short = &data[..20 * cols];
    let run = |t: &LoopProgram, rows: &[f64]| {
        let at = At {
            theta: &theta,
            constants: &[],
            data: rows,
            rows: hessforge_ir::Rows::All,
        };
        let mut out = Vec::new();
        for level in [Outputs::Loss, Outputs::LossGrad, Outputs::LossGradHess] {
            let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
            out.push(t.evaluate(level, at, &mut g, &mut h));
            out.extend(g.iter().chain(&h));
        }
        let mut hv = vec![0.0; p];
        out.push(t.hess_vec(at, &v, &mut hv));
        out.extend(hv);
        out
    };
    let first = lowered(&m);
    let (short_once, long_once) = (run(&first, short), run(&first, &data));
    assert_eq!(run(&first, short), short_once);
    assert_eq!(run(&first, &data), long_once);
    let clone = first.clone();
    let round_trip: LoopProgram =
        serde_json::from_str(&serde_json::to_string(&first).unwrap()).unwrap();
    for copy in [&clone, &round_trip] {
        assert_eq!(*copy, first);
        assert_eq!(run(copy, &data), long_once);
        assert_eq!(run(copy, short), short_once);
    }
}

/// The per-sample gradients that are outer products — (p − y)·x of
/// logistic regression, (s − y) xᵀ of softmax regression — are summed as
/// matrix products, in the model and in its tangent model, and the step
/// that wrote them row by row is gone; the passes still agree with the
/// scalar programs (above, over more rows than one block too).
#[test]
fn outer_product_gradients_are_gathered() {
    for m in common::builtins() {
        let tensor = lowered(&m);
        let expected = match m.name.as_str() {
            "logistic_regression" | "linear_regression" | "softmax_regression" => 1,
            _ => continue,
        };
        for model in [&tensor, tensor.tangent.as_deref().unwrap()] {
            let outer: Vec<_> = model
                .sample
                .gradient
                .iter()
                .filter(|g| g.outer.is_some())
                .collect();
            assert_eq!(outer.len(), expected, "{}", m.name);
            for g in outer {
                assert!(
                    model.sample.steps.iter().all(|s| s.out != g.value),
                    "{}: the buffer is still written",
                    m.name
                );
            }
        }
    }
}
