//! The index-form derivation against its oracle, the scalarized derivation
//! (Symbolica's derivatives of the expanded model): at points spread over
//! parameters and data, every gradient entry and every Hessian entry of every
//! block agree to 1e-12, for every built-in, every test problem and models
//! of shapes the built-ins do not have.

use crate::common;
use hessforge_spec::Model;
use hessforge_spec::index::{IExpr, IndexModel};
use hessforge_symbolic::{derive, derive_index};
use std::collections::HashMap;
use std::path::Path;

fn repository_models() -> Vec<Model> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/problems");
    let mut paths: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
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

/// A deterministic point: values in (-1.5, 1.5), away from 0.
fn point(n: usize, salt: usize) -> Vec<f64> {
    (0..n)
        .map(|k| {
            let v = ((k * 7 + salt * 13 + 1) as f64 * 0.618_034).sin() * 1.5;
            if v.abs() < 0.1 { v + 0.3 } else { v }
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || common::close(a, b, 1e-12)
}

/// Every 1-based position of a shape, row-major.
fn positions(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &n in shape {
        out = out
            .into_iter()
            .flat_map(|p| {
                (1..=n).map(move |k| {
                    let mut q = p.clone();
                    q.push(k);
                    q
                })
            })
            .collect();
    }
    out
}

fn value(
    ix: &IndexModel,
    e: &IExpr,
    at: &[(&[String], &[usize])],
    env: &HashMap<String, f64>,
) -> f64 {
    let mut map = HashMap::new();
    for (names, pos) in at {
        for (n, p) in names.iter().zip(pos.iter()) {
            map.insert(n.clone(), *p);
        }
    }
    ix.eval(e, env, &mut map).unwrap()
}

fn check(m: &Model) {
    let ix = m.index.as_ref().expect("index form");
    let oracle = derive(m).unwrap_or_else(|e| panic!("{e}"));
    let derived = derive_index(m).unwrap_or_else(|e| panic!("{}: {e}", m.source));
    let param_at: HashMap<&str, usize> = m
        .params
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let zero = hessforge_spec::Expr::int(0);
    for salt in 0..3 {
        let theta = point(m.n_params(), salt);
        let row = point(m.data.len(), salt + 50);
        let env = m.environment(&theta, &row);
        for g in &derived.gradient {
            let t = ix.tensor(&g.tensor).unwrap();
            for pos in positions(&t.shape) {
                let j = param_at[t.id_at(&pos).unwrap()];
                let got = value(ix, &g.loss, &[(&g.indices, &pos)], &env);
                let want = oracle.gradient[j].expr.eval(&env).unwrap();
                assert!(
                    close(got, want),
                    "{}: ∂ℓ/∂{}{pos:?} = {got}, scalarized {want}\n{:?}",
                    m.source,
                    g.tensor,
                    g.loss
                );
                let got = value(ix, &g.regularizer, &[(&g.indices, &pos)], &env);
                let want = oracle
                    .regularizer_gradient
                    .get(j)
                    .unwrap_or(&zero)
                    .eval(&env)
                    .unwrap();
                assert!(
                    close(got, want),
                    "{}: ∂R/∂{}{pos:?} = {got}, scalarized {want}",
                    m.source,
                    g.tensor
                );
            }
        }
        for b in &derived.hessian {
            let (tr, tc) = (ix.tensor(&b.row).unwrap(), ix.tensor(&b.col).unwrap());
            for pr in positions(&tr.shape) {
                for pc in positions(&tc.shape) {
                    let (j, k) = (
                        param_at[tr.id_at(&pr).unwrap()],
                        param_at[tc.id_at(&pc).unwrap()],
                    );
                    let (lo, hi) = (j.min(k), j.max(k));
                    let at = [(&b.row_indices[..], &pr[..]), (&b.col_indices[..], &pc[..])];
                    let got = value(ix, &b.loss, &at, &env);
                    let want = oracle.hessian[lo][hi].eval(&env).unwrap();
                    assert!(
                        close(got, want),
                        "{}: ∂²ℓ/∂{}{pr:?}∂{}{pc:?} = {got}, scalarized {want}\n{:?}",
                        m.source,
                        b.row,
                        b.col,
                        b.loss
                    );
                    let got = value(ix, &b.regularizer, &at, &env);
                    let want = oracle
                        .regularizer_hessian
                        .get(lo)
                        .map_or(&zero, |r| &r[hi])
                        .eval(&env)
                        .unwrap();
                    assert!(
                        close(got, want),
                        "{}: ∂²R/∂{}{pr:?}∂{}{pc:?} = {got}, scalarized {want}",
                        m.source,
                        b.row,
                        b.col
                    );
                }
            }
        }
    }
}

#[test]
fn the_index_form_agrees_with_the_scalarized_oracle_on_every_repository_model() {
    for m in repository_models() {
        check(&m);
    }
}

#[test]
fn the_index_form_agrees_on_shapes_the_builtins_do_not_have() {
    let text = r#"
name = "shapes"
title = "shapes"
description = "matrices, slices, literals, fixed indices, index values"
loss = "sum(j = 1..3, j * w[j]^2) + dot([1, 2, 3], w) * q + W[2, 1] * q^3 + sum(h) * g[2] + dot(W[1, :], x)^2 + log(1 + exp(-q * w[1])) + dot(transpose(W) @ h, w)^2"
regularizer = "lambda / 2 * (dot(w, w) + sum(j = 1..3, W[1, j]^2 + W[2, j]^2))"
[parameters]
w = { shape = [3] }
W = { shape = [2, 3] }
q = {}
[data]
x = { shape = [3] }
[constants]
lambda = 0.1
[[define]]
name = "a"
for = "i = 1..2"
expr = "dot(W[i, :], x) + w[i] / (1 + q^2)"
[[define]]
name = "h"
expr = "tanh(a) * 2 - [q, 1]"
[[define]]
name = "g"
expr = "sigmoid(w * x) + sqrt(1 + w^2)"
"#;
    let m = hessforge_spec::load_str("shapes.toml", text)
        .unwrap_or_else(|e| panic!("{}", e.one_line()));
    check(&m);
}

/// Logistic regression with F features, as the built-in writes it.
fn logistic(f: usize) -> Model {
    let text = format!(
        "name = \"l\"\ntitle = \"l\"\ndescription = \"l\"\n\
         loss = \"-(y * log(p) + (1 - y) * log(1 - p))\"\n\
         regularizer = \"lambda / 2 * dot(w, w)\"\n\
         [parameters]\nw = {{ shape = [{f}] }}\nb = {{}}\n\
         [data]\nx = {{ shape = [{f}] }}\ny = {{}}\n[constants]\nlambda = 0.01\n\
         [[define]]\nname = \"z\"\nexpr = \"dot(w, x) + b\"\n\
         [[define]]\nname = \"p\"\nexpr = \"sigmoid(z)\"\n"
    );
    hessforge_spec::load_str("logistic.toml", &text).unwrap_or_else(|e| panic!("{}", e.one_line()))
}

/// Every derived expression as text, gradient then blocks.
fn forms(m: &Model) -> Vec<String> {
    let d = derive_index(m).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for g in &d.gradient {
        out.push(format!("∂ℓ/∂{} = {}", g.tensor, g.loss));
        out.push(format!("∂R/∂{} = {}", g.tensor, g.regularizer));
    }
    for b in &d.hessian {
        out.push(format!("∂²ℓ/∂{}∂{} = {}", b.row, b.col, b.loss));
        out.push(format!("∂²R/∂{}∂{} = {}", b.row, b.col, b.regularizer));
    }
    out
}

/// The tanh network of `mlp_tanh` with H hidden units, in matrix form.
fn mlp(hidden: usize) -> Model {
    let text = format!(
        "name = \"mlp\"\ntitle = \"m\"\ndescription = \"m\"\nloss = \"(yhat - y)^2 / 2\"\n\
         [parameters]\nW = {{ shape = [{hidden}, 2] }}\nc = {{ shape = [{hidden}] }}\n\
         v = {{ shape = [{hidden}] }}\nd = {{}}\n\
         [data]\nx = {{ shape = [2] }}\ny = {{}}\n\
         [[define]]\nname = \"h\"\nexpr = \"tanh(W @ x + c)\"\n\
         [[define]]\nname = \"yhat\"\nexpr = \"dot(v, h) + d\"\n"
    );
    hessforge_spec::load_str("mlp.toml", &text).unwrap_or_else(|e| panic!("{}", e.one_line()))
}

#[test]
fn the_network_in_matrix_form_agrees_with_the_oracle_and_does_not_grow() {
    check(&mlp(3));
    assert_eq!(forms(&mlp(4)), forms(&mlp(256)));
}

#[test]
fn the_derivation_is_the_same_for_ten_and_ten_thousand_features() {
    let small = forms(&logistic(10));
    assert_eq!(small, forms(&logistic(10_000)));
    assert!(
        small.contains(&"∂R/∂w = lambda * w[j]".to_string()),
        "{small:#?}"
    );
    assert!(
        small.contains(&"∂²R/∂w∂w = lambda * δ(j, k)".to_string()),
        "{small:#?}"
    );
    assert!(small.contains(&"∂²R/∂w∂b = 0".to_string()), "{small:#?}");
}

#[test]
fn back_propagation_is_contracted_to_one_term_per_index() {
    let m = common::builtin("mlp_tanh");
    let d = derive_index(&m).unwrap_or_else(|e| panic!("{e}"));
    let g = |name: &str| {
        d.gradient
            .iter()
            .find(|g| g.tensor == name)
            .unwrap()
            .loss
            .clone()
    };
    // ∂ℓ/∂W_jl = (ŷ − y) v_j (1 − h_j²) x_l: no sum over hidden units and no
    // δ left, every factor present (the grouping of 1 − h² is the
    // document's to choose).
    let dw = g("W");
    let text = dw.to_string();
    assert!(!text.contains('Σ') && !text.contains('δ'), "{text}");
    for factor in ["v[j]", "x[l]", "h[j]", "yhat", "y"] {
        assert!(text.contains(factor), "{factor} not in {text}");
    }
    assert!(dw.size() < 30, "{text}");
    let dv = g("v").to_string();
    assert!(
        dv == "(-y + yhat) * h[j]" || dv == "(yhat - y) * h[j]" || dv == "h[j] * (yhat - y)",
        "{dv}"
    );
    let vv = d
        .hessian
        .iter()
        .find(|b| b.row == "v" && b.col == "v")
        .unwrap();
    assert_eq!(vv.loss.to_string(), "h[j] * h[k]");
    // The W–W block: a Gauss–Newton part and a δ_jk part, whatever H is.
    let ww = d
        .hessian
        .iter()
        .find(|b| b.row == "W" && b.col == "W")
        .unwrap();
    assert!(ww.loss.to_string().contains("δ(j, k)"), "{}", ww.loss);
    let linear = forms(&common::builtin("linear_regression"));
    assert!(
        linear.contains(&"∂²ℓ/∂w∂w = x[j] * x[k]".to_string()),
        "{linear:#?}"
    );
}

#[test]
fn the_forms_do_not_depend_on_what_was_derived_before() {
    let first = forms(&common::builtin("mlp_tanh"));
    for m in common::builtins() {
        forms(&m);
    }
    let logistic_first = forms(&logistic(7));
    let again = forms(&common::builtin("mlp_tanh"));
    assert_eq!(first, again);
    assert_eq!(logistic_first, forms(&logistic(7)));
}

/// `mlp_tanh` and `softmax_regression` are written with `@` and vector
/// definitions; their per-index originals (`for = "i = 1..4"`) are kept as
/// fixtures. Same loss, gradient and Hessian values, entry by entry.
#[test]
fn the_builtins_in_matrix_form_derive_the_values_of_their_per_index_originals() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["mlp_tanh", "softmax_regression"] {
        let new = common::builtin(name);
        let old = hessforge_spec::load_file(&fixtures.join(format!("{name}_per_index.toml")))
            .unwrap_or_else(|e| panic!("{}", e.one_line()));
        let ids = |m: &Model| m.params.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&new),
            ids(&old),
            "{name}: the same parameters in the same order"
        );
        let (dn, dold) = (derive(&new).unwrap(), derive(&old).unwrap());
        for salt in 0..3 {
            let theta = point(new.n_params(), salt);
            let row = point(new.data.len(), salt + 50);
            let (en, eo) = (new.environment(&theta, &row), old.environment(&theta, &row));
            let pairs = std::iter::once((new.loss(), old.loss()))
                .chain(
                    dn.gradient
                        .iter()
                        .map(|g| &g.expr)
                        .zip(dold.gradient.iter().map(|g| &g.expr)),
                )
                .chain(
                    dn.hessian
                        .iter()
                        .flatten()
                        .zip(dold.hessian.iter().flatten()),
                )
                .chain(
                    dn.regularizer_hessian
                        .iter()
                        .flatten()
                        .zip(dold.regularizer_hessian.iter().flatten()),
                );
            let mut compared = 0;
            for (a, b) in pairs {
                let (x, y) = (a.eval(&en).unwrap(), b.eval(&eo).unwrap());
                assert!(close(x, y), "{name}: {x} ≠ {y} ({a:?} vs {b:?})");
                compared += 1;
            }
            assert!(compared > new.n_params() * new.n_params());
        }
    }
}
