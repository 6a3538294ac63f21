//! The lowered IR programs compute what the derivation says, and do so
//! stably where a naive evaluation overflows.

use crate::common;
use hessforge_ir::{ModelPrograms, Outputs};
use hessforge_spec::Model;
use hessforge_symbolic::{Derivation, derive, lower};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// ℓ, ∇ℓ and the Hessian's upper triangle (plus R) from the derivation's
/// expressions, averaged over rows: the reference the programs must match.
fn direct(d: &Derivation, theta: &[f64], rows: &[Vec<f64>]) -> Vec<f64> {
    let m = &d.model;
    let p = m.n_params();
    let eval_all = |env: &std::collections::HashMap<String, f64>,
                    with_sample: bool,
                    with_reg: bool| {
        let mut out = Vec::new();
        let s = |e: &hessforge_spec::Expr| {
            if with_sample {
                e.eval(env).unwrap()
            } else {
                0.0
            }
        };
        let r = |e: Option<&hessforge_spec::Expr>| {
            if with_reg {
                e.map_or(0.0, |e| e.eval(env).unwrap())
            } else {
                0.0
            }
        };
        out.push(s(m.loss()) + r(m.regularizer()));
        for j in 0..p {
            out.push(s(&d.gradient[j].expr) + r(d.regularizer_gradient.get(j)));
        }
        for j in 0..p {
            for k in j..p {
                out.push(s(&d.hessian[j][k]) + r(d.regularizer_hessian.get(j).map(|row| &row[k])));
            }
        }
        out
    };
    if m.data.is_empty() {
        return eval_all(&m.environment(theta, &[]), true, true);
    }
    let mut total = vec![0.0; Outputs::LossGradHess.len(p)];
    for row in rows {
        for (t, v) in total
            .iter_mut()
            .zip(eval_all(&m.environment(theta, row), true, false))
        {
            *t += v / rows.len() as f64;
        }
    }
    let reg = eval_all(&m.environment(theta, &rows[0]), false, true);
    total.iter().zip(reg).map(|(a, b)| a + b).collect()
}

fn programs(m: &Model) -> (Derivation, ModelPrograms) {
    let d = derive(m).unwrap();
    let p = lower(&d).unwrap_or_else(|e| panic!("{}: {e}", m.name));
    (d, p)
}

#[test]
fn programs_match_the_derivation_for_every_builtin() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for m in common::builtins() {
        let (d, progs) = programs(&m);
        let p = m.n_params();
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let rows: Vec<Vec<f64>> = (0..5)
            .map(|_| m.data.iter().map(|_| rng.gen_range(-1.0..1.0)).collect())
            .collect();
        let flat: Vec<f64> = rows.concat();
        let consts: Vec<f64> = m.constants.iter().map(|(_, v)| *v).collect();
        let reference = direct(&d, &theta, &rows);
        for level in [Outputs::Loss, Outputs::LossGrad, Outputs::LossGradHess] {
            let n = level.len(p);
            let mut out = vec![0.0; n];
            progs.evaluate(
                level,
                hessforge_ir::At::new(&theta, &consts, &flat),
                &mut out,
            );
            for (k, (a, b)) in out.iter().zip(&reference[..n]).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "{} {level:?} output {k}: program {a} vs derivation {b}",
                    m.name
                );
            }
        }
    }
}

#[test]
fn mini_batches_use_only_the_selected_rows() {
    let m = common::builtin("linear_regression");
    let (_, progs) = programs(&m);
    let theta = vec![0.5; 11];
    let data: Vec<f64> = (0..3 * 11).map(|i| (i as f64 * 0.37).sin()).collect();
    let mut all = [0.0];
    let mut one = [0.0];
    let mut batch = [0.0];
    progs.evaluate(
        Outputs::Loss,
        hessforge_ir::At::new(&theta, &[], &data[11..22]),
        &mut one,
    );
    progs.evaluate(
        Outputs::Loss,
        hessforge_ir::At::new(&theta, &[], &data).rows(hessforge_ir::Rows::Selected(&[1])),
        &mut batch,
    );
    progs.evaluate(
        Outputs::Loss,
        hessforge_ir::At::new(&theta, &[], &data),
        &mut all,
    );
    assert_eq!(one, batch);
    assert_ne!(all, batch);
}

/// Logistic regression at one sample with score z: every weight 0 but the
/// bias, so z = b exactly.
fn logistic_at(z: f64, y: f64, progs: &ModelPrograms) -> Vec<f64> {
    let mut theta = vec![0.0; 11];
    theta[10] = z;
    let mut row = vec![0.5; 11];
    row[10] = y;
    let mut out = vec![0.0; Outputs::LossGradHess.len(11)];
    progs.evaluate(
        Outputs::LossGradHess,
        hessforge_ir::At::new(&theta, &[0.0], &row),
        &mut out,
    );
    out
}

/// −log σ(z) and −log(1 − σ(z)) in closed, overflow-free form.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

#[test]
fn logistic_regression_is_stable_at_large_scores() {
    let m = common::builtin("logistic_regression");
    let (d, progs) = programs(&m);
    let b_index = 10;
    let hbb = progs.params.len() * (progs.params.len() + 1) / 2 - 1;
    for z in [1.0, 30.0, 800.0, -1.0, -30.0, -800.0] {
        for y in [0.0, 1.0] {
            let out = logistic_at(z, y, &progs);
            // Closed forms: ℓ = softplus(z) − y z, ∂ℓ/∂b = σ(z) − y,
            // ∂²ℓ/∂b² = σ(z)(1 − σ(z)) (λ = 0 here).
            let sigma = 1.0 / (1.0 + (-z).exp());
            let loss = softplus(z) - y * z;
            let grad_b = sigma - y;
            let hess_bb = sigma * (1.0 - sigma);
            let checks = [
                ("loss", out[0], loss),
                ("∂ℓ/∂b", out[1 + b_index], grad_b),
                ("∂²ℓ/∂b²", out[1 + 11 + hbb], hess_bb),
            ];
            for (what, got, want) in checks {
                assert!(got.is_finite(), "z = {z}, y = {y}: {what} is {got}");
                assert!(
                    (got - want).abs() <= 1e-14 * want.abs().max(1.0)
                        || (want != 0.0 && ((got - want) / want).abs() < 1e-12),
                    "z = {z}, y = {y}: {what} = {got}, closed form {want}"
                );
            }
        }
    }
    // The naive evaluation of the same loss (through p = σ(z) and log) is
    // not finite at z = 800 when y = 0: log(1 − p) = log(0).
    let env = m.environment(
        &{
            let mut t = vec![0.0; 11];
            t[10] = 800.0;
            t
        },
        &{
            let mut r = vec![0.5; 11];
            r[10] = 0.0;
            r
        },
    );
    assert!(!d.model.loss().eval(&env).unwrap().is_finite());
}

/// The bench model `mlp_tanh_scalar` (17 scalar parameters) with every
/// name prefixed.
fn prefixed_mlp(prefix: &str) -> Model {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kernels/benches/models/mlp_tanh_scalar.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let name = regex::Regex::new(r"\b(W\d\d|[cvhx]\d|d|y|yhat)\b").unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with('#') || l.starts_with("title") || l.starts_with("description") {
                l.to_string()
            } else {
                name.replace_all(l, format!("{prefix}$1")).into_owned()
            }
        })
        .collect();
    hessforge_spec::load_str("history.toml", &lines.join("\n"))
        .unwrap_or_else(|e| panic!("{}", e.one_line()))
}

/// A model that names the MLP's scalars (prefixed) in the reverse order.
fn reversed_names(prefix: &str) -> Model {
    let mut names: Vec<String> = (1..=4)
        .flat_map(|i| [format!("W{i}1"), format!("W{i}2")])
        .chain((1..=4).map(|i| format!("c{i}")))
        .chain((1..=4).map(|i| format!("v{i}")))
        .chain(["d".to_string()])
        .map(|n| format!("{prefix}{n}"))
        .collect();
    names.reverse();
    let loss = names
        .iter()
        .map(|n| format!("({n} - {prefix}y * {prefix}x2 * {prefix}x1)^2"))
        .collect::<Vec<_>>()
        .join(" + ");
    let params: String = names.iter().map(|n| format!("{n} = {{}}\n")).collect();
    hessforge_spec::load_str(
        "reversed.toml",
        &format!(
            "name = \"reversed\"\ntitle = \"t\"\ndescription = \"t\"\nloss = \"{loss}\"\n\
             [parameters]\n{params}[data]\n{prefix}y = {{}}\n{prefix}x2 = {{}}\n{prefix}x1 = {{}}\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{}", e.one_line()))
}

/// Symbolica orders symbols by when it first saw them. A model derived and
/// lowered after another one that used the same names in another order (as
/// a build script lowers a crate's files one after the other) must get the
/// same programs as in a process that saw only it: here, the same model
/// over names no earlier work used.
#[test]
fn a_model_lowers_the_same_whatever_the_process_lowered_before() {
    let programs = |m: &Model| lower(&derive(m).unwrap()).unwrap();
    programs(&reversed_names("history_"));
    let after = programs(&prefixed_mlp("history_"));
    let fresh = programs(&prefixed_mlp("fresh_"));
    assert_eq!(after.loss_grad_hess, fresh.loss_grad_hess);
    assert_eq!(after.loss_grad, fresh.loss_grad);
}

/// Symbolica's programs depend on the symbols' identities, not only on
/// their order: the same model lowered again after others (which made new
/// symbols in between) must give the same programs as the first time.
#[test]
fn a_model_lowers_the_same_after_other_models() {
    let load = |name: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../tests/problems/{name}.toml"));
        hessforge_spec::load_file(&path).unwrap_or_else(|e| panic!("{}", e.one_line()))
    };
    let programs = |m: &Model| lower(&derive(m).unwrap()).unwrap();
    let watson9 = load("watson9");
    let first = programs(&watson9);
    for other in ["watson", "trigonometric"] {
        programs(&load(other));
        let again = programs(&watson9);
        assert!(
            again.loss_grad_hess == first.loss_grad_hess && again.loss_grad == first.loss_grad,
            "watson9's programs changed after {other} was lowered"
        );
    }
}
