//! Every built-in derivation file loads, with the shapes the README promises.

use std::path::Path;

fn builtin(name: &str) -> hessforge_spec::Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../derivations")
        .join(format!("{name}.toml"));
    hessforge_spec::load_file(&path).unwrap_or_else(|e| panic!("{}", e.one_line()))
}

#[test]
fn parameter_counts() {
    for (name, p, data) in [
        ("quadratic_bowl", 2, 0),
        ("rosenbrock", 2, 0),
        ("saddle", 2, 0),
        ("linear_regression", 11, 11),
        ("logistic_regression", 11, 11),
        ("softmax_regression", 15, 7),
        ("mlp_tanh", 17, 3),
    ] {
        let m = builtin(name);
        assert_eq!(m.n_params(), p, "{name}");
        assert_eq!(m.data.len(), data, "{name}");
        assert_eq!(m.name, name);
    }
}

#[test]
fn logistic_regression_shape() {
    let m = builtin("logistic_regression");
    let ids: Vec<&str> = m.params.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids[0], "w_1");
    assert_eq!(ids[10], "b");
    assert_eq!(m.params[2].latex, "w_{3}");
    let defs: Vec<&str> = m
        .definitions()
        .iter()
        .map(|d| d.scalar.id.as_str())
        .collect();
    assert_eq!(defs, ["z", "p"]);
    assert_eq!(m.constants[0].0.latex, "\\lambda");
    assert_eq!(m.constants[0].1, 0.01);
    let syn = m.synthetic.as_ref().unwrap();
    assert_eq!(syn.draws.len(), 2);
    assert_eq!(syn.draws[0].args[1].len(), 10);
}

#[test]
fn scalar_expressions_are_built_when_asked_for() {
    let m = builtin("mlp_tanh");
    let built = |m: &hessforge_spec::Model| {
        (
            m.scalar.definitions_are_built(),
            m.scalar.objective_is_built(),
        )
    };
    assert_eq!(
        built(&m),
        (false, false),
        "loading builds no scalar expression"
    );
    // What the index-form track reads is there without them.
    let first: Vec<&str> = m.definition_scalars.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(first.len(), 9);
    assert_eq!(m.scalars().count(), 17 + 3 + 9);
    assert!(!m.has_regularizer());
    assert_eq!(built(&m), (false, false));
    // The loss alone, then the definitions.
    assert_eq!(m.loss().to_input_syntax(), "(yhat+(-1)*y)^2*2^(-1)");
    assert_eq!(built(&m), (false, true));
    let defs: Vec<&str> = m
        .definitions()
        .iter()
        .map(|d| d.scalar.id.as_str())
        .collect();
    assert_eq!(built(&m), (true, true));
    assert_eq!(
        defs, first,
        "the built definitions have the scalars known before"
    );
    // A clone keeps what was built, and compares equal to a fresh load.
    assert_eq!(built(&m.clone()), (true, true));
    assert_eq!(m.clone(), builtin("mlp_tanh"));
    for name in ["rosenbrock", "logistic_regression", "softmax_regression"] {
        let m = builtin(name);
        assert_eq!(m.has_regularizer(), m.regularizer().is_some(), "{name}");
    }
}

#[test]
fn matrices_are_row_major_with_two_subscripts() {
    let m = builtin("mlp_tanh");
    assert_eq!(m.params[1].id, "W_1_2");
    assert_eq!(m.params[1].latex, "W_{1,2}");
    assert_eq!(m.params[2].id, "W_2_1");
    assert_eq!(m.init[1], -0.3);
    let defs: Vec<&str> = m
        .definitions()
        .iter()
        .map(|d| d.scalar.id.as_str())
        .collect();
    assert_eq!(defs.len(), 9);
    assert_eq!(*defs.last().unwrap(), "yhat");
}

#[test]
fn definitions_may_come_in_any_order() {
    let m = hessforge_spec::load_str(
        "t.toml",
        r#"
name = "t"
title = "t"
description = "t"
loss = "q^2"
[parameters]
a = {}
[[define]]
name = "q"
expr = "r + 1"
[[define]]
name = "r"
expr = "a * 2"
"#,
    )
    .unwrap();
    let defs: Vec<&str> = m
        .definitions()
        .iter()
        .map(|d| d.scalar.id.as_str())
        .collect();
    assert_eq!(defs, ["r", "q"]);
}

#[test]
fn matrix_products_and_transpose_expand_to_sums() {
    let text = "name = \"m\"\ntitle = \"m\"\ndescription = \"m\"\n\
                loss = \"sum(tanh(W @ x + c)) + dot(w, transpose(W) @ v) + sum(W @ transpose(W))\"\n\
                [parameters]\nW = { shape = [2, 3] }\nc = { shape = [2] }\nw = { shape = [3] }\nv = { shape = [2] }\n\
                [data]\nx = { shape = [3] }\n";
    let m = hessforge_spec::load_str("m.toml", text).unwrap_or_else(|e| panic!("{}", e.one_line()));
    let explicit = "name = \"m\"\ntitle = \"m\"\ndescription = \"m\"\n\
                loss = \"tanh(dot(W[1, :], x) + c[1]) + tanh(dot(W[2, :], x) + c[2]) \
                + sum(j = 1..3, w[j] * (W[1, j] * v[1] + W[2, j] * v[2])) \
                + sum(i = 1..2, sum(k = 1..2, dot(W[i, :], W[k, :])))\"\n\
                [parameters]\nW = { shape = [2, 3] }\nc = { shape = [2] }\nw = { shape = [3] }\nv = { shape = [2] }\n\
                [data]\nx = { shape = [3] }\n";
    let e =
        hessforge_spec::load_str("e.toml", explicit).unwrap_or_else(|e| panic!("{}", e.one_line()));
    let theta: Vec<f64> = (0..m.n_params()).map(|k| (k as f64 * 0.7).sin()).collect();
    let row = [0.3, -0.8, 1.1];
    let value = |m: &hessforge_spec::Model| m.loss().eval(&m.environment(&theta, &row)).unwrap();
    assert!(
        (value(&m) - value(&e)).abs() < 1e-12,
        "{} vs {}",
        value(&m),
        value(&e)
    );
}
