//! The index-form derivation against its oracle, the scalarized derivation
//! (Symbolica's derivatives of the expanded model): at points spread over
//! parameters and data, every gradient entry and every Hessian entry of every
//! block agree to 1e-12, for every built-in, every test problem and models
//! of shapes the built-ins do not have.

mod common;
use hessforge_spec::Model;
use hessforge_spec::index::{IExpr, IndexModel};
use hessforge_symbolic::derive;
use hessforge_symbolic::index_calculus::derive_index;
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
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
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
    let derived = derive_index(ix).unwrap_or_else(|e| panic!("{}: {e}", m.source));
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
loss = "sum(j = 1..3, j * w[j]^2) + dot([1, 2, 3], w) * q + W[2, 1] * q^3 + sum(h) * g[2] + dot(W[1, :], x)^2 + log(1 + exp(-q * w[1]))"
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
