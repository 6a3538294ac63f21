//! What a user sees at the command line: output, files, exit codes, errors.

use crate::common;
use common::{hessforge, symbolica_lock};
use predicates::prelude::*;
use std::path::Path;

#[test]
fn models_lists_every_builtin_with_its_parameter_count() {
    let out = hessforge()
        .arg("models")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    for (name, p) in [
        ("linear_regression", 11),
        ("logistic_regression", 11),
        ("mlp_tanh", 17),
        ("quadratic_bowl", 2),
        ("rosenbrock", 2),
        ("saddle", 2),
        ("softmax_regression", 15),
        ("digits", 650),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{out}"));
        assert!(
            line.split_whitespace().nth(1) == Some(&p.to_string()),
            "{line}"
        );
    }
}

/// `hessforge derive <model> --format text [extra]`, its runs of white
/// space made one space (the text format wraps prose at 78 columns).
fn derived_text(model: &str, extra: &[&str]) -> String {
    let out = hessforge()
        .args(["derive", model, "--format", "text"])
        .args(extra)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn derive_text_shows_the_textbook_gradient() {
    let _g = symbolica_lock();
    // Index form: the chain rule once per tensor, the signal δ named as a
    // step, vector and data-set forms, the Hessian blocks, the convexity line.
    let text = derived_text("logistic_regression", &[]);
    for line in [
        "ℓ(θ; x, y) =",
        "z = wᵀx + b",
        "R(θ) = (lambda·‖w‖²)/2",
        "δ(z) = δ(p)·∂p/∂z",
        "∂ℓ/∂w_j = δ(z)·∂z/∂w_j = δ(z)·x_j = (p - y)·x_j",
        "∇_w ℓ = δ(z)·x = (p - y)·x",
        "∂²ℓ/∂w_j∂w_k = p·(1 - p)·x_j·x_k",
        "∇L = (1/N) X̃ᵀr + ∇R",
        "∇²R = diag(lambda·I, 0) over (w, b)",
        "so L is convex",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(!text.contains("x_1"), "no scalar entry without --expand");
    // --expand: every entry, as before.
    let expanded = derived_text("logistic_regression", &["--expand"]);
    for line in [
        "∂ℓ/∂w_1 = ∂ℓ/∂p · ∂p/∂z · ∂z/∂w_1",
        "= (p - y)·x_1",
        "∂²ℓ/∂w_1∂w_2 = p·(1 - p)·x_1·x_2",
    ] {
        assert!(expanded.contains(line), "{line} not in\n{expanded}");
    }
}

#[test]
fn the_document_tells_the_truth_about_each_hessian() {
    let _g = symbolica_lock();
    // Softmax: convex, but singular at every θ (b ↦ b + t·1), with the fix;
    // never "positive definite".
    let softmax = derived_text("softmax_regression", &[]);
    for line in [
        "diag(s) - s sᵀ",
        "The Hessian is singular at every θ",
        "fix one class's bias",
    ] {
        assert!(softmax.contains(line), "{line} not in\n{softmax}");
    }
    assert!(!softmax.contains("positive definite"), "{softmax}");
    // The network: back-propagation as the δ recursion, the Hessian as
    // Gauss–Newton plus residual, not convex.
    let mlp = derived_text("mlp_tanh", &[]);
    for line in [
        "δ(a) = δ(h) ⊙ (1 - h^2)",
        "∇_W ℓ = δ(a) xᵀ",
        "= ∇yhat∇yhatᵀ + (yhat - y)·∇²yhat",
        "L is not convex",
    ] {
        assert!(mlp.contains(line), "{line} not in\n{mlp}");
    }
    assert!(!mlp.contains("L is convex"), "{mlp}");
    // Rosenbrock: a sum of squares, zero where r = q = 0, solved in turn.
    let rosenbrock = derived_text("rosenbrock", &[]);
    assert!(
        rosenbrock.contains("exactly where r = q = 0: x = a, y = a^2 (here (1, 1))"),
        "{rosenbrock}"
    );
    // The saddle's loss is not a sum of squares: nothing is claimed.
    assert!(!derived_text("saddle", &[]).contains("The minimum:"));
}

#[test]
fn derive_json_is_valid_json_on_stdout_with_the_banner_elsewhere() {
    let _g = symbolica_lock();
    let out = hessforge()
        .args(["derive", "rosenbrock", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).expect("stdout is one JSON document");
    assert_eq!(doc["name"], "rosenbrock");
    assert_eq!(doc["params"], serde_json::json!(["x", "y"]));
    assert_eq!(doc["gradient"].as_array().unwrap().len(), 2);
    assert_eq!(doc["hessian"][0].as_array().unwrap().len(), 2);
    assert_eq!(doc["hessian"][0][1], doc["hessian"][1][0]);
    assert!(doc["gradient_latex"][0].as_str().unwrap().contains("x"));
}

/// Symbolica's forms in the JSON are printed with the model's names in the
/// same order by every process: the names were once made into symbols in
/// the order of a hash set, so a model of four names (Misra 1a: b1, b2, x,
/// y) printed its sums in one of 24 orders, another in each process.
#[test]
fn derive_json_is_the_same_in_every_process() {
    let _g = symbolica_lock();
    let derived = || {
        hessforge()
            .args(["derive", "tests/nist/misra1a.toml", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    };
    let first = derived();
    for _ in 0..3 {
        assert!(derived() == first, "another process printed another JSON");
    }
}

/// The JSON says which rewrites the kernel's lowering applied: for the
/// fuzzer's log1p(u¹⁴), the logarithm of a positive sum as softplus and
/// the Hessian's ratio u²⁶·(1 + u¹⁴)⁻² in log space; for logistic
/// regression (loop IR), log σ and log(1 − σ) as softplus; for softmax
/// regression (loop IR), the scores' maximum subtracted; for Rosenbrock,
/// none.
#[test]
fn derive_json_lists_the_rewrites_of_the_lowering() {
    let _g = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log1p_power.toml");
    std::fs::write(
        &file,
        "name = \"log1p_power\"\ntitle = \"t\"\ndescription = \"t\"\n\
         loss = \"log1p(u^14)\"\n[parameters]\nw = {}\n\
         [[define]]\nname = \"u\"\nexpr = \"2.5e12 * w\"\n",
    )
    .unwrap();
    let rules = |model: &str| -> Vec<String> {
        let out = hessforge()
            .args(["derive", model, "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let doc: serde_json::Value = serde_json::from_slice(&out).expect("one JSON document");
        doc["rewrites"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| {
                assert!(r["from"].is_string() && r["to"].is_string(), "{r}");
                r["rule"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let power = rules(file.to_str().unwrap());
    for rule in ["log-of-positive-sum", "ratio-in-log-space"] {
        assert!(power.iter().any(|r| r == rule), "{rule} in {power:?}");
    }
    let logistic = rules("logistic_regression");
    for rule in ["log-sigmoid", "log-one-minus-sigmoid"] {
        assert!(logistic.iter().any(|r| r == rule), "{rule} in {logistic:?}");
    }
    assert_eq!(rules("softmax_regression"), ["max-subtracted"]);
    assert_eq!(rules("rosenbrock"), Vec::<String>::new());
}

#[test]
fn derive_json_carries_the_index_form_per_tensor_and_block() {
    let _g = symbolica_lock();
    let out = hessforge()
        .args(["derive", "logistic_regression", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).expect("one JSON document");
    // The regularizer as written, a sum over j (not 10 scalar terms).
    assert_eq!(
        doc["regularizer_latex"],
        "\\frac{\\lambda \\, \\left(\\sum_{i=1}^{10} w_{i} \\, w_{i}\\right)}{2}"
    );
    let index = &doc["index_form"];
    let w = &index["gradient"][0];
    assert_eq!(w["tensor"], "w");
    assert_eq!(
        w["indices"],
        serde_json::json!([{ "name": "j", "from": 1, "to": 10 }])
    );
    assert_eq!(w["loss"], "(p - y)·x_j");
    assert_eq!(w["loss_latex"], "\\left(p - y\\right) \\, x_{j}");
    assert_eq!(w["regularizer"], "lambda·w_j");
    let ww = &index["hessian"][0];
    assert_eq!(
        (ww["row"].as_str(), ww["col"].as_str()),
        (Some("w"), Some("w"))
    );
    assert_eq!(ww["loss"], "p·(1 - p)·x_j·x_k");
    assert_eq!(ww["regularizer"], "lambda·δ_jk");
    assert_eq!(
        index["hessian"].as_array().unwrap().len(),
        3,
        "blocks (w,w), (w,b), (b,b)"
    );
    // Softmax: prediction minus target, and s_j(δ_jk − s_k), written
    // through the definition s.
    let softmax = |tensor: usize| -> serde_json::Value {
        let out = hessforge()
            .args(["derive", "softmax_regression", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        doc["index_form"]["hessian"][tensor].clone()
    };
    assert_eq!(softmax(0)["loss"], "s_j·(δ_jk - s_k)·x_l·x_m");
    assert_eq!(softmax(0)["regularizer"], "lambda·δ_jk·δ_lm");
    // Every parameter of Rosenbrock is a scalar: no index form.
    let out = hessforge()
        .args(["derive", "rosenbrock", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(doc["index_form"].is_null());
}

#[test]
fn derive_a_file_given_by_path() {
    let _g = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cubic.toml");
    std::fs::write(
        &file,
        "name = \"cubic\"\ntitle = \"A cubic\"\ndescription = \"t^3 - t\"\nloss = \"t^3 - t\"\n[parameters]\nt = {}\n",
    )
    .unwrap();
    hessforge()
        .args(["derive", file.to_str().unwrap(), "--format", "markdown"])
        .assert()
        .success()
        .stdout(predicate::str::contains("# A cubic"))
        .stdout(predicate::str::contains("3 \\, t^{2}"));
}

#[test]
fn derive_latex_to_a_file() {
    let _g = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("logistic.tex");
    hessforge()
        .args(["derive", "logistic_regression", "--format", "latex", "-o"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::is_empty().or(predicate::str::contains("\\documentclass").not()));
    let tex = std::fs::read_to_string(&out).unwrap();
    assert!(tex.starts_with("% Generated by hessforge"));
    assert!(tex.contains("\\documentclass[11pt]{article}"));
    assert!(tex.trim_end().ends_with("\\end{document}"));
    assert!(
        tex.is_ascii(),
        "LaTeX output must be plain ASCII for pdflatex"
    );
}

#[test]
fn unknown_model_suggests_the_closest_name() {
    hessforge()
        .args(["derive", "logistic_regresion"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no model named `logistic_regresion`",
        ))
        .stderr(predicate::str::contains(
            "did you mean `logistic_regression`?",
        ));
}

#[test]
fn missing_file_is_bad_input() {
    hessforge()
        .args(["derive", "no/such/model.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read the derivation file"));
}

#[test]
fn bad_derivation_file_points_at_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "name = \"bad\"\ntitle = \"B\"\ndescription = \"b\"\nloss = \"dot(w, x)\"\n[parameters]\nw = { shape = [10] }\n[data]\nx = { shape = [9] }\n",
    )
    .unwrap();
    hessforge()
        .args(["derive", file.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml:4:9"))
        .stderr(predicate::str::contains("length 10"))
        .stderr(predicate::str::contains("length 9"));
}

#[test]
fn bad_flag_is_bad_input() {
    hessforge()
        .args(["derive", "rosenbrock", "--format", "pdf"])
        .assert()
        .code(2);
    hessforge().args(["frobnicate"]).assert().code(2);
}

#[test]
fn unwritable_output_leaves_no_file() {
    let _g = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("missing-folder").join("x.tex");
    hessforge()
        .args(["derive", "saddle", "--format", "latex", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot write"));
    assert!(!out.exists());
    assert!(!Path::new(&out).parent().unwrap().exists());
}

#[test]
fn generated_folder_is_fresh() {
    let _g = symbolica_lock();
    hessforge()
        .args(["generate", "--check"])
        .assert()
        .success()
        .stdout(predicate::str::contains("generated files are fresh"));
}

#[test]
fn generate_check_names_stale_files() {
    let _g = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    hessforge()
        .args(["generate", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
    std::fs::write(dir.path().join("generated/saddle.md"), "edited by hand\n").unwrap();
    hessforge()
        .args(["generate", "--check", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "generated files are stale: generated/saddle.md",
        ))
        .stderr(predicate::str::contains("-edited by hand"))
        .stderr(predicate::str::contains("cargo run --release -- generate"));
}

#[test]
fn gradcheck_of_a_builtin_uses_the_compiled_kernel() {
    let out = hessforge()
        .args([
            "gradcheck",
            "logistic_regression",
            "--json",
            "--points",
            "3",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["backend"], "compiled");
    assert_eq!(doc["passed"], true);
    assert!(doc["gradient"]["max_rel"].as_f64().unwrap() < 1e-6);
    assert!(doc["hessian"]["max_rel"].as_f64().unwrap() < 1e-6);
}

#[test]
fn gradcheck_of_a_file_uses_its_programs_compiled_at_run_time() {
    let _g = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huber.toml");
    std::fs::write(
        &file,
        "name = \"smooth_huber\"\ntitle = \"Pseudo-Huber regression\"\ndescription = \"sqrt(1 + r^2) - 1\"\n\
         loss = \"sqrt(1 + (a * x + b - y)^2) - 1\"\n[parameters]\na = {}\nb = {}\n[data]\nx = {}\ny = {}\n",
    )
    .unwrap();
    hessforge()
        .args(["gradcheck", file.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "gradient check of smooth_huber (run-time compiled)",
        ))
        .stdout(predicate::str::contains("passed"));
}

#[test]
fn gradcheck_over_tolerance_exits_1() {
    hessforge()
        .args(["gradcheck", "rosenbrock", "--tol", "0"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAILED"))
        .stderr(predicate::str::contains(
            "the gradient check of `rosenbrock` failed",
        ));
}

#[test]
fn a_derivation_does_not_depend_on_what_the_process_derived_before() {
    // `generate` derives every model in one process; `derive` one model in a
    // fresh process. The CAS orders symbols by first use, which must not show.
    let _g = symbolica_lock();
    let generated = Path::new(env!("CARGO_MANIFEST_DIR")).join("generated");
    for name in [
        "logistic_regression",
        "mlp_tanh",
        "saddle",
        "softmax_regression",
    ] {
        let out = hessforge()
            .args(["derive", name, "--format", "markdown"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let committed = std::fs::read_to_string(generated.join(format!("{name}.md"))).unwrap();
        assert!(
            String::from_utf8(out).unwrap() == committed,
            "{name}: `derive` differs from generated/{name}.md"
        );
    }
}

#[test]
fn derive_beamer_writes_slides_a_frame_per_section() {
    let _g = symbolica_lock();
    let out = hessforge()
        .args(["derive", "logistic_regression", "--format", "beamer"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let tex = String::from_utf8(out).unwrap();
    assert!(tex.contains("\\documentclass[aspectratio=169,11pt]{beamer}"));
    assert_eq!(
        tex.matches("\\begin{frame}").count(),
        8,
        "title, the derivation at a glance, six sections"
    );
    assert!(tex.contains("{The derivation at a glance}"));
    assert!(tex.contains(
        "\\begin{frame}[allowframebreaks]{Back-propagation: the chain rule once per tensor}"
    ));
    assert!(!tex.contains("--set"), "no CLI flags on a slide");
}

/// A logistic regression with F features in a file of its own, drawn
/// from `samples` rows.
fn wide_logistic(dir: &Path, f: usize, samples: usize) -> std::path::PathBuf {
    let truth: Vec<String> = (0..f)
        .map(|k| format!("{:.1}", ((k % 7) as f64 - 3.0) / 10.0))
        .collect();
    let file = dir.join(format!("logistic_{f}.toml"));
    std::fs::write(
        &file,
        format!(
            "name = \"logistic_{f}\"\ntitle = \"Logistic regression, {f} features\"\n\
             description = \"wide\"\nloss = \"-(y * log(p) + (1 - y) * log(1 - p))\"\n\
             regularizer = \"lambda / 2 * dot(w, w)\"\n\
             [parameters]\nw = {{ shape = [{f}] }}\nb = {{}}\n\
             [data]\nx = {{ shape = [{f}] }}\ny = {{}}\n[constants]\nlambda = 0.01\n\
             [[define]]\nname = \"z\"\nexpr = \"dot(w, x) + b\"\n\
             [[define]]\nname = \"p\"\nexpr = \"sigmoid(z)\"\n\
             [synthetic]\nsamples = {samples}\n[synthetic.truth]\nw = [{}]\nb = 0.5\n\
             [synthetic.draw]\nx = \"normal(0, 1)\"\ny = \"bernoulli(sigmoid(dot(w, x) + b))\"\n",
            truth.join(", ")
        ),
    )
    .unwrap();
    file
}

#[test]
fn a_wide_model_in_a_file_runs_on_the_loop_ir() {
    // 300 features: the scalarized path needed more than 15 minutes to
    // prepare this file; the index form's loops take milliseconds.
    let _g = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = wide_logistic(dir.path(), 300, 600);
    let out = hessforge()
        .args([
            "run",
            file.to_str().unwrap(),
            "--optimizer",
            "newton",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "converged", "{doc}");
    assert!(doc["iterations"].as_u64().unwrap() <= 10, "{doc}");
    assert!(doc["grad_norm"].as_f64().unwrap() < 1e-8, "{doc}");
    assert_eq!(doc["params"].as_object().unwrap().len(), 301);
}

#[test]
fn gradcheck_checks_the_run_time_compiled_loop_ir_by_finite_differences() {
    let _g = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = wide_logistic(dir.path(), 12, 50);
    hessforge()
        .args(["gradcheck", file.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "gradient check of logistic_12 (run-time compiled)",
        ))
        .stdout(predicate::str::contains("passed"));
}

#[test]
fn an_unknown_momentum_form_is_bad_input_naming_the_library_s_choices() {
    hessforge()
        .args([
            "run",
            "rosenbrock",
            "-O",
            "momentum",
            "--momentum-form",
            "nesterov",
        ])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "possible values: classic, average",
        ));
}

#[test]
fn an_unknown_preconditioner_is_bad_input() {
    hessforge()
        .args(["run", "digits", "-O", "newton-cg", "--precondition", "ilu"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("possible values: none, diagonal"));
}

#[test]
fn the_exact_subproblem_needs_the_dense_hessian() {
    let _lock = symbolica_lock();
    hessforge()
        .args(["run", "rosenbrock", "-O", "newton-tr"])
        .args(["--subproblem", "exact", "--hessian", "free"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "--subproblem exact needs the dense Hessian",
        ));
}

#[test]
fn a_dense_hessian_over_512_mib_is_refused_with_the_memory_it_needs() {
    let _lock = symbolica_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wide.toml");
    std::fs::write(
        &file,
        r#"name = "wide"
title = "Wide least squares"
description = "9 000 weights, 4 rows."
loss = "(dot(w, x) - y)^2"
[parameters]
w = { shape = [9000] }
[data]
x = { shape = [9000] }
y = {}
[synthetic]
samples = 4
[synthetic.draw]
x = "normal(0, 1)"
y = "normal(0, 1)"
"#,
    )
    .unwrap();
    for (method, matrix) in [
        ("newton", "forms the dense 9000 × 9000 Hessian"),
        ("newton-exact-tr", "forms the dense 9000 × 9000 Hessian"),
        (
            "bfgs",
            "keeps a dense 9000 × 9000 inverse-Hessian approximation",
        ),
    ] {
        let out = hessforge()
            .args(["run", file.to_str().unwrap(), "-O", method])
            .assert()
            .code(2)
            .stdout("")
            .get_output()
            .stderr
            .clone();
        // miette wraps the message at the terminal width; compare words.
        let words: Vec<String> = String::from_utf8(out)
            .unwrap()
            .split_whitespace()
            .filter(|w| *w != "│")
            .map(String::from)
            .collect();
        let text = words.join(" ");
        for expected in [
            &format!("{method} {matrix}")[..],
            "648 MB (P² × 8 bytes), over the limit of 537 MB",
            "newton-cg and newton-tr work on Hessian–vector products",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
    }
    // A Hessian-free method runs, and Gauss–Newton on products.
    for method in ["newton-cg", "gauss-newton"] {
        hessforge()
            .args(["run", file.to_str().unwrap(), "-O", method])
            .assert()
            .success();
    }
}

#[test]
fn a_start_with_negative_values_reaches_nists_certified_parameters() {
    // Bennett5's Start 1 begins with a minus sign (`--init -2000,50,0.8`
    // without `=` used to be read as an unknown option); Gauss–Newton from
    // there reaches NIST's certified values to 6 significant digits.
    let _g = symbolica_lock();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = hessforge()
        .args([
            "run",
            "tests/nist/bennett5.toml",
            "--data",
            "tests/nist/bennett5.csv",
        ])
        .args(["-O", "gauss-newton", "--tol", "1e-13", "--json"])
        .args(["--init", "-2000,50,0.8"])
        .current_dir(root)
        .assert()
        .code(predicate::in_iter([0, 1]))
        .get_output()
        .stdout
        .clone();
    let run: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let theta: Vec<f64> = (run["theta"].as_array().unwrap().iter())
        .map(|t| t.as_f64().unwrap())
        .collect();
    let (_, certified) = crate::nist::starts_and_certified("Bennett5");
    let digits = crate::nist::digits(&theta, &certified);
    assert!(digits >= 6.0, "{theta:?}: {digits} digits of {certified:?}");
}
