//! `run`, `compare` and `optimizers` as a user sees them: the README's main
//! command, the JSON contract, how runs end (saddle, divergence, target),
//! the history file, and every kind of bad input. The mathematics of the
//! runs (Newton's quadratic rate, GD's linear one, Gauss–Newton,
//! determinism) is tested through the library, in `crates/driver/tests/fit.rs`.

use crate::common;
use common::{hessforge, symbolica_lock};
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn json_of(args: &[&str]) -> Value {
    let out = hessforge().args(args).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn compare_logistic_regression_runs_on_the_embedded_data() {
    let out = hessforge()
        .args(["compare", "logistic_regression"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("data/logistic_regression.csv (embedded) (569 rows)"),
        "{out}"
    );
    for name in [
        "gd",
        "momentum",
        "nesterov",
        "adam",
        "newton",
        "newton-damped",
        "newton-tr",
        "bfgs",
        "lbfgs",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing:\n{out}"
        );
    }
    let newton = out.lines().find(|l| l.starts_with("newton ")).unwrap();
    assert!(newton.contains("converged"), "{newton}");
    let gd = out.lines().find(|l| l.starts_with("gd ")).unwrap();
    assert!(
        gd.contains("max_iterations"),
        "GD crawls on the unscaled data: {gd}"
    );
    assert!(out.contains("condition number"), "{out}");
    // Sorted: the converged runs first.
    let first = out
        .lines()
        .skip_while(|l| !l.starts_with("optimizer"))
        .nth(1)
        .unwrap();
    assert!(first.contains("converged"), "{first}");
}

#[test]
fn run_json_has_the_contract_fields() {
    let v = json_of(&[
        "run",
        "rosenbrock",
        "--optimizer",
        "newton-damped",
        "--json",
    ]);
    for field in [
        "model",
        "optimizer",
        "status",
        "converged",
        "iterations",
        "final_loss",
        "grad_norm",
        "params",
        "seconds",
    ] {
        assert!(v.get(field).is_some(), "{field} missing: {v}");
    }
    assert_eq!(v["status"], "converged");
    assert_eq!(v["converged"], true);
    assert!(
        (v["params"]["x"].as_f64().unwrap() - 1.0).abs() < 1e-8,
        "{v}"
    );
    assert!(v["iterations"].as_u64().unwrap() <= 30);
}

#[test]
fn saddle_is_reported_not_converged() {
    hessforge()
        .args(["run", "saddle", "--optimizer", "newton"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("saddle_point"))
        .stdout(predicate::str::contains("λ_min"));
    hessforge()
        .args(["run", "saddle", "--optimizer", "newton-saddle-free"])
        .assert()
        .success()
        .stdout(predicate::str::contains("converged"));
}

#[test]
fn divergence_exits_1_with_the_last_finite_iterate() {
    let v = json_of(&[
        "run",
        "quadratic_bowl",
        "--optimizer",
        "gd",
        "--lr",
        "1",
        "--json",
    ]);
    assert_eq!(v["status"], "diverged", "{v}");
    assert!(v["final_loss"].as_f64().unwrap().is_finite());
    hessforge()
        .args(["run", "quadratic_bowl", "--optimizer", "gd", "--lr", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("diverged"));
}

#[test]
fn history_csv_has_one_row_per_iteration_with_theta() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.csv");
    hessforge()
        .args([
            "run",
            "quadratic_bowl",
            "--optimizer",
            "gd",
            "--lr",
            "0.05",
            "--max-iters",
            "7",
            "--history",
        ])
        .arg(&path)
        .assert()
        .code(1);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "iteration,loss,grad_norm,step_size,alpha,seconds,lambda_min,modification,x,y"
    );
    assert_eq!(lines.count(), 8, "iterations 0..=7");
}

/// A copy of built-in `name`'s derivation file in `dir` (a model file, not
/// the built-in).
fn copy_of_builtin(dir: &Path, name: &str) -> PathBuf {
    let file = dir.join(format!("my_{name}.toml"));
    let builtin = format!("derivations/{name}.toml");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(builtin), &file).unwrap();
    file
}

/// `run FILE ARGS --json` on the default back-end and on the interpreter:
/// both outputs, each checked to name its back-end. (The caller holds the
/// Symbolica lock.)
fn run_file_on_both_backends(file: &Path, args: &[&str]) -> (Value, Value) {
    let run = |backend: &str| -> Value {
        let out = hessforge()
            .arg("run")
            .arg(file)
            .args(["--json", "--backend", backend])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (compiled, interpreted) = (run("auto"), run("interpreter"));
    assert_eq!(compiled["backend"], "run-time compiled");
    assert_eq!(interpreted["backend"], "interpreter");
    (compiled, interpreted)
}

/// A model file with scalar parameters only runs on its straight-line
/// programs compiled at run time; `--backend interpreter` runs the same
/// fit on the interpreter of the same programs: the same bits, so the same
/// iterations and the same loss to the last bit.
#[test]
fn a_scalar_derivation_file_runs_compiled_at_run_time() {
    let _g = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = copy_of_builtin(dir.path(), "rosenbrock");
    let (compiled, interpreted) = run_file_on_both_backends(&file, &["--optimizer", "bfgs"]);
    assert_eq!(compiled["status"], "converged", "{compiled}");
    for key in ["iterations", "final_loss", "theta"] {
        assert_eq!(compiled[key], interpreted[key], "{key}");
    }
}

/// A model file in index form runs on its loop IR compiled at run time;
/// `--backend interpreter` runs the same fit on the interpreter (the
/// oracle): the same iterations and the same optimum.
#[test]
fn a_derivation_file_in_index_form_runs_compiled_at_run_time() {
    let _g = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = copy_of_builtin(dir.path(), "mlp_tanh");
    let args = ["-O", "newton-damped", "--synthetic", "300"];
    let (compiled, interpreted) = run_file_on_both_backends(&file, &args);
    assert_eq!(compiled["status"], interpreted["status"], "{compiled}");
    assert_eq!(compiled["iterations"], interpreted["iterations"]);
    let loss = |v: &Value| v["final_loss"].as_f64().unwrap();
    assert!(
        (loss(&compiled) - loss(&interpreted)).abs() <= 1e-12 * loss(&interpreted).abs().max(1.0)
    );
    hessforge()
        .args([
            "run",
            file.to_str().unwrap(),
            "-O",
            "gd",
            "--max-iters",
            "2",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("run-time compiled kernel"));
}

#[test]
fn optimizers_lists_every_rule_with_its_conventions() {
    let out = hessforge()
        .arg("optimizers")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    for name in [
        "gd",
        "sgd",
        "minibatch",
        "momentum",
        "nesterov",
        "adagrad",
        "rmsprop",
        "adam",
        "adamw",
        "newton",
        "newton-damped",
        "newton-lm",
        "newton-saddle-free",
        "newton-tr",
        "bfgs",
        "lbfgs",
    ] {
        assert!(out.contains(&format!("{name} — ")), "{name}");
    }
    assert!(out.contains("ε outside the square root"));
    assert!(out.contains("v ← ρ v + g"));
    hessforge()
        .args(["optimizers", "--latex"])
        .assert()
        .success()
        .stdout(predicate::str::contains(r"\theta \leftarrow"));
}

fn bad_input(args: &[&str], expect: &[&str]) {
    let mut a = hessforge().args(args).assert().code(2);
    for e in expect {
        a = a.stderr(predicate::str::contains(*e));
    }
}

fn csv_file(dir: &Path, text: &str) -> String {
    let p = dir.join("d.csv");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn bad_data_files_point_at_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let header = "x_1,x_2,x_3,x_4,x_5,x_6,x_7,x_8,x_9,x_10,y\n";
    let row = "1,2,3,4,5,6,7,8,9,10,1\n";
    let run = |text: &str| {
        vec![
            "run".to_string(),
            "logistic_regression".into(),
            "--optimizer".into(),
            "newton".into(),
            "--data".into(),
            csv_file(dir.path(), text),
        ]
    };
    let check = |text: &str, expect: &[&str]| {
        let args = run(text);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bad_input(&args, expect);
    };
    check("", &["has no data rows"]);
    check(header, &["has no data rows"]);
    check("x_1,x_2,y\n1,2,3\n", &["missing column `x_3`", "d.csv:1"]);
    check(
        &format!("{header}{row}1,2,3\n"),
        &["d.csv:3", "the row has 3 fields, the header has 11"],
    );
    check(
        &format!("{header}{row}1,2,abc,4,5,6,7,8,9,10,0\n"),
        &["d.csv:3:5", "`abc` in column `x_3`"],
    );
    check(
        &format!("{header}1,2,3,4,5,6,7,8,9,NaN,0\n"),
        &["d.csv:2:19", "NaN and infinite"],
    );
    check(
        &format!("{header}1,2,3,4,5,6,7,8,9,10,inf\n"),
        &["not a finite number"],
    );
    // x1..x10 without underscores is the same header.
    let plain = "x1,x2,x3,x4,x5,x6,x7,x8,x9,x10,y\n1,2,3,4,5,6,7,8,9,10,1\n0,1,0,1,0,1,0,1,0,1,0\n";
    hessforge()
        .args([
            "run",
            "logistic_regression",
            "--optimizer",
            "newton",
            "--data",
            &csv_file(dir.path(), plain),
        ])
        .assert()
        .success();
    bad_input(
        &[
            "run",
            "logistic_regression",
            "--optimizer",
            "newton",
            "--data",
            "/no/such.csv",
        ],
        &["cannot read"],
    );
}

#[test]
fn bad_flags_say_what_is_expected() {
    let run = |extra: &[&str], expect: &[&str]| {
        let mut args = vec!["run", "logistic_regression", "--optimizer", "gd"];
        args.extend(extra);
        bad_input(&args, expect);
    };
    run(
        &["--set", "lamda=0"],
        &["no constant named `lamda`", "lambda"],
    );
    run(&["--set", "lambda"], &["is not NAME=VALUE"]);
    run(
        &["--init", "1,2"],
        &["2 values given, the model has 11 parameters"],
    );
    run(&["--init", "random:x"], &["no integer seed"]);
    run(&["--lr=-1"], &["--lr -1 is out of range"]);
    run(&["--schedule", "wobbly"], &["unknown schedule `wobbly`"]);
    run(&["--standardize", "z"], &["cannot standardise `z`"]);
    run(
        &["--synthetic", "10", "--data", "x.csv"],
        &["exclude each other"],
    );
    bad_input(
        &["run", "logistic_regression", "--optimizer", "newtonn"],
        &["unknown optimizer `newtonn`", "hessforge optimizers"],
    );
    bad_input(
        &[
            "run",
            "quadratic_bowl",
            "--optimizer",
            "gd",
            "--synthetic",
            "5",
        ],
        &["has no data"],
    );
    bad_input(
        &["compare", "rosenbrock", "--optimizers", "gd,nope"],
        &["unknown optimizer `nope`"],
    );
}

/// Gauss–Newton's mathematics is tested in the driver's `tests/fit.rs`;
/// here, what the command says when the loss is not a square.
#[test]
fn gauss_newton_on_a_loss_that_is_not_a_square_says_so() {
    hessforge()
        .args(["run", "logistic_regression", "--optimizer", "gauss-newton"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("square"));
}

#[test]
fn target_loss_stops_a_run_once_reached() {
    let run = json_of(&[
        "run",
        "quadratic_bowl",
        "--optimizer",
        "gd",
        "--target-loss",
        "1e-3",
        "--tol",
        "0",
        "--json",
    ]);
    assert_eq!(run["status"], "converged", "{run}");
    assert!(run["final_loss"].as_f64().unwrap() <= 1e-3, "{run}");
    assert!(run["message"].as_str().unwrap().contains("target"), "{run}");
    hessforge()
        .args([
            "run",
            "quadratic_bowl",
            "--optimizer",
            "gd",
            "--target-loss",
            "inf",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--target-loss"));
}

#[test]
fn run_and_compare_help_list_the_optimizers_by_family_from_the_catalogue() {
    for command in ["run", "compare"] {
        hessforge()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("first-order   gd, sgd, minibatch"))
            .stdout(predicate::str::contains(
                "Newton-type   newton, newton-damped",
            ))
            .stdout(predicate::str::contains("quasi-Newton  bfgs, lbfgs"));
    }
}
