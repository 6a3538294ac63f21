//! Helpers shared by the symbolic engine's tests.
#![allow(dead_code)]

use hessforge_spec::Model;
use std::path::{Path, PathBuf};

/// A built-in derivation by name.
pub fn builtin(name: &str) -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../derivations")
        .join(format!("{name}.toml"));
    hessforge_spec::load_file(&path).unwrap_or_else(|e| panic!("{}", e.one_line()))
}

/// The paths of the built-in derivation files, by name order.
pub fn builtin_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../derivations");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// Every built-in derivation the scalar engine derives in a test's time,
/// by name order: up to 64 parameters. `digits` (P = 650) is derived in
/// index form only; its kernel is checked against finite differences in
/// `crates/kernels/tests/agreement.rs`, its model at P = 15 as
/// `softmax_regression` here.
pub fn builtins() -> Vec<Model> {
    builtin_files()
        .iter()
        .map(|p| hessforge_spec::load_file(p).unwrap_or_else(|e| panic!("{}", e.one_line())))
        .filter(|m| m.n_params() <= 64)
        .collect()
}

/// A one-parameter model `w` with data `x` and the given loss.
pub fn tiny(loss: &str) -> Model {
    hessforge_spec::load_str(
        "tiny.toml",
        &format!(
            "name = \"tiny\"\ntitle = \"t\"\ndescription = \"t\"\nloss = \"{loss}\"\n[parameters]\nw = {{}}\n[data]\nx = {{}}\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{}", e.one_line()))
}

/// Logistic regression with F features, as the built-in writes it.
pub fn logistic(f: usize) -> Model {
    let text = format!(
        r#"name = "logistic_{f}"
title = "Logistic regression, {f} features"
description = "fixture"
loss = "-(y * log(p) + (1 - y) * log(1 - p))"
regularizer = "lambda / 2 * dot(w, w)"
[parameters]
w = {{ shape = [{f}] }}
b = {{}}
[data]
x = {{ shape = [{f}] }}
y = {{}}
[constants]
lambda = 0.01
[[define]]
name = "z"
expr = "dot(w, x) + b"
[[define]]
name = "p"
expr = "sigmoid(z)"
"#
    );
    hessforge_spec::load_str("logistic.toml", &text).unwrap_or_else(|e| panic!("{}", e.one_line()))
}

/// The built-in network with H hidden units.
pub fn mlp(h: usize) -> Model {
    let text = format!(
        r#"name = "mlp_{h}"
title = "A network with {h} hidden units"
description = "fixture"
loss = "(yhat - y)^2 / 2"
[parameters]
W = {{ shape = [{h}, 2] }}
c = {{ shape = [{h}] }}
v = {{ shape = [{h}] }}
d = {{}}
[data]
x = {{ shape = [2] }}
y = {{}}
[[define]]
name = "a"
expr = "W @ x + c"
[[define]]
name = "h"
expr = "tanh(a)"
[[define]]
name = "yhat"
expr = "dot(v, h) + d"
"#
    );
    hessforge_spec::load_str("mlp.toml", &text).unwrap_or_else(|e| panic!("{}", e.one_line()))
}

/// Whether `a` and `b` agree to `rel`, relative to the larger magnitude
/// (absolutely below 1). The one tolerance test of these tests.
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}
