//! The index form of a model means what the scalarized model means: at
//! points spread over the parameter and data space, the loss, the
//! regularizer and every entry of every definition evaluate to the same
//! numbers both ways, and expanding the index form gives expressions with
//! the same values. Its size does not depend on tensor lengths.

use hessforge_spec::index::{IExpr, IndexModel};
use hessforge_spec::{Model, load_str};
use std::collections::HashMap;
use std::path::Path;

/// Every derivation file of the repository: the built-ins and the test problems.
fn repository_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    for dir in ["derivations", "tests/problems"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    out
}

/// A deterministic point: parameters and data in (-1.5, 1.5), away from 0.
fn point(n: usize, salt: usize) -> Vec<f64> {
    (0..n)
        .map(|k| {
            let v = ((k * 7 + salt * 13 + 1) as f64 * 0.618_034).sin() * 1.5;
            if v.abs() < 0.1 { v + 0.3 } else { v }
        })
        .collect()
}

/// Compare an index-form expression (with the given free indices ranging
/// over `shape`) against the scalar ids it stands for.
fn agree(
    ix: &IndexModel,
    e: &IExpr,
    free: &[String],
    shape: &[usize],
    expected: &[f64],
    env: &HashMap<String, f64>,
    what: &str,
) {
    let mut position = vec![1; shape.len()];
    for want in expected {
        let mut at: HashMap<String, usize> =
            free.iter().cloned().zip(position.iter().copied()).collect();
        let got = ix.eval(e, env, &mut at).unwrap();
        let close = |a: f64, b: f64| {
            a == b
                || (a.is_nan() && b.is_nan())
                || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
        };
        assert!(
            close(got, *want),
            "{what}{position:?}: index form {got}, scalarized {want}"
        );
        let expanded = ix.expand(e, &mut at).unwrap().eval(env).unwrap();
        assert!(
            close(expanded, *want),
            "{what}{position:?}: expanded {expanded}, scalarized {want}"
        );
        // Next position, row-major.
        for a in (0..shape.len()).rev() {
            position[a] += 1;
            if position[a] <= shape[a] {
                break;
            }
            position[a] = 1;
        }
    }
}

fn check_model(m: &Model) {
    let ix = m
        .index
        .as_ref()
        .unwrap_or_else(|| panic!("{}: no index form", m.source));
    for salt in 0..4 {
        let theta = point(m.n_params(), salt);
        let row = point(m.data.len(), salt + 100);
        let env = m.environment(&theta, &row);
        let what = format!("{} loss", m.source);
        agree(
            ix,
            &ix.loss,
            &[],
            &[],
            &[m.loss().eval(&env).unwrap()],
            &env,
            &what,
        );
        if let (Some(r), Some(ri)) = (&m.regularizer(), &ix.regularizer) {
            agree(
                ix,
                ri,
                &[],
                &[],
                &[r.eval(&env).unwrap()],
                &env,
                "regularizer",
            );
        }
        for d in &ix.definitions {
            let t = ix.tensor(&d.name).unwrap();
            let expected: Vec<f64> = t.ids.iter().map(|id| env[id]).collect();
            agree(
                ix,
                &d.expr,
                &d.indices,
                &t.shape,
                &expected,
                &env,
                &format!("{} {}", m.source, d.name),
            );
        }
    }
}

#[test]
fn every_repository_model_means_the_same_in_index_form() {
    for (path, text) in repository_files() {
        let m = load_str(&path, &text).unwrap_or_else(|e| panic!("{}", e.one_line()));
        check_model(&m);
    }
}

const SMALL: &str = r#"
name = "shapes"
title = "shapes"
description = "every construct of the expression language"
loss = "sum(j = 1..3, j * w[j]^2) + dot([1, 2, 3], w) + W[2, 1] * q + sum(h) + dot(W[1, :], x) + g[2] + sum(tanh(W @ x)) + dot(transpose(W) @ h, w) + sum(W @ transpose(W))"
regularizer = "lambda / 2 * dot(w, w)"
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
expr = "exp(-w) + x"
"#;

#[test]
fn every_construct_of_the_language_means_the_same_in_index_form() {
    let m = load_str("shapes.toml", SMALL).unwrap_or_else(|e| panic!("{}", e.one_line()));
    check_model(&m);
    let ix = m.index.as_ref().unwrap();
    let h = ix.definition("h").unwrap();
    assert_eq!(
        h.indices.len(),
        1,
        "an element-wise definition has one free index"
    );
    assert_eq!(ix.definition("a").unwrap().indices.len(), 1);
}

#[test]
fn the_index_form_does_not_grow_with_tensor_lengths() {
    let text = |f: usize| {
        format!(
            "name = \"l\"\ntitle = \"l\"\ndescription = \"l\"\n\
             loss = \"-(y * log(p) + (1 - y) * log(1 - p))\"\n\
             regularizer = \"lambda / 2 * dot(w, w)\"\n\
             [parameters]\nw = {{ shape = [{f}] }}\nb = {{}}\n\
             [data]\nx = {{ shape = [{f}] }}\ny = {{}}\n[constants]\nlambda = 0.01\n\
             [[define]]\nname = \"z\"\nexpr = \"dot(w, x) + b\"\n\
             [[define]]\nname = \"p\"\nexpr = \"sigmoid(z)\"\n"
        )
    };
    let size = |f: usize| {
        let m = load_str("l.toml", &text(f)).unwrap();
        let ix = m.index.unwrap();
        ix.definitions.iter().map(|d| d.expr.size()).sum::<usize>()
            + ix.loss.size()
            + ix.regularizer.map_or(0, |r| r.size())
    };
    assert_eq!(size(10), size(1000));
    assert_eq!(size(10), size(10_000));
}
