//! Hessian-free Newton (`newton-cg`) through the library: it reaches dense
//! Newton's optimum using Hessian–vector products only — on the compiled
//! loop kernel of logistic regression and on the loop IR of a 300-feature
//! file — and escapes the saddle instead of stopping on it.

use crate::common;
use hessforge_driver::{Prepared, Problem, prepare};
use hessforge_optim::{HessianPath, History, Modification, Outcome, Settings, Status, Stopping};

fn run(prepared: &Prepared, name: &str) -> (Outcome, History) {
    common::run(prepared, name, &Settings::default(), &Stopping::default())
}

/// Newton–CG and Newton end at the same θ; Newton–CG formed ∇²L only for
/// the end-of-run check up to 200 parameters, and never above (Lanczos on
/// Hessian–vector products); every step says how many CG iterations it
/// took.
fn agrees_with_newton_without_the_hessian(prepared: &Prepared) {
    let (dense, _) = run(prepared, "newton");
    let (cg, history) = run(prepared, "newton-cg");
    assert_eq!(
        (dense.status, cg.status),
        (Status::Converged, Status::Converged),
        "{}",
        cg.message
    );
    // Both stop at ‖∇L‖∞ ≤ 1e-8, so θ agrees to about that over λ_min:
    // relative to the size of the parameter (breast cancer's unscaled
    // features put one near 30).
    for (a, b) in dense.theta.iter().zip(&cg.theta) {
        assert!((a - b).abs() < 1e-6 * a.abs().max(1.0), "{a} vs {b}");
    }
    let e = cg.evaluations;
    let dense_check =
        prepared.model.n_params() <= hessforge_optim::run_loop::DENSE_CHECK_MAX_PARAMS;
    assert_eq!(
        e.hessian,
        u64::from(dense_check),
        "only the dense final check forms ∇²L: {e:?}"
    );
    assert!(e.hess_vec >= cg.iterations, "{e:?}");
    let steps: u64 = history
        .rows
        .iter()
        .filter_map(|r| r.curvature)
        .map(|c| match c.modification {
            Modification::TruncatedCg { iterations, .. } => iterations,
            other => panic!("a Newton–CG step recorded {other:?}"),
        })
        .sum();
    // The rest are the Lanczos steps of the check above 200 parameters:
    // from 10 (where it may stop once the sign is plain) to 60.
    let lanczos = e.hess_vec - steps;
    let expected = if dense_check { 0..=0 } else { 10..=60 };
    assert!(
        expected.contains(&lanczos),
        "one Hessian–vector product per CG iteration (and per Lanczos step): {steps} CG, {e:?}"
    );
}

#[test]
fn newton_cg_reaches_newtons_optimum_on_the_compiled_loop_kernel() {
    let prepared = prepare("logistic_regression", &Problem::default()).unwrap();
    assert_eq!(prepared.backend.kind(), "compiled");
    agrees_with_newton_without_the_hessian(&prepared);
}

#[test]
fn newton_cg_reaches_newtons_optimum_on_a_300_feature_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = 300;
    let truth: Vec<String> = (0..f)
        .map(|k| format!("{:.1}", ((k % 7) as f64 - 3.0) / 10.0))
        .collect();
    let file = dir.path().join("wide.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"wide\"\ntitle = \"Logistic regression, {f} features\"\ndescription = \"wide\"\n\
             loss = \"-(y * log(p) + (1 - y) * log(1 - p))\"\nregularizer = \"lambda / 2 * dot(w, w)\"\n\
             [parameters]\nw = {{ shape = [{f}] }}\nb = {{}}\n[data]\nx = {{ shape = [{f}] }}\ny = {{}}\n\
             [constants]\nlambda = 0.01\n[[define]]\nname = \"z\"\nexpr = \"dot(w, x) + b\"\n\
             [[define]]\nname = \"p\"\nexpr = \"sigmoid(z)\"\n[synthetic]\nsamples = 600\n\
             [synthetic.truth]\nw = [{}]\nb = 0.5\n[synthetic.draw]\nx = \"normal(0, 1)\"\n\
             y = \"bernoulli(sigmoid(dot(w, x) + b))\"\n",
            truth.join(", ")
        ),
    )
    .unwrap();
    let problem = Problem {
        synthetic: Some(600),
        ..Problem::default()
    };
    let prepared = prepare(file.to_str().unwrap(), &problem).unwrap();
    assert_eq!(prepared.model.n_params(), 301);
    agrees_with_newton_without_the_hessian(&prepared);
}

#[test]
fn newton_cg_escapes_the_saddle_along_negative_curvature() {
    // L = x² − y² + y⁴/4 from near the saddle at the origin: pure
    // Newton stops on the saddle, Newton–CG meets pᵀHp ≤ 0 and goes down.
    let prepared = prepare("saddle", &Problem::default()).unwrap();
    let (newton, _) = run(&prepared, "newton");
    assert_eq!(newton.status, Status::SaddlePoint);
    let (cg, history) = run(&prepared, "newton-cg");
    assert_eq!(cg.status, Status::Converged, "{}", cg.message);
    assert!(
        cg.final_loss < newton.final_loss,
        "{} vs {}",
        cg.final_loss,
        newton.final_loss
    );
    assert!(
        history
            .rows
            .iter()
            .filter_map(|r| r.curvature)
            .any(|c| matches!(
                c.modification,
                Modification::TruncatedCg {
                    negative_curvature: true,
                    ..
                }
            )),
        "no step met negative curvature"
    );
}

/// A nonlinear least-squares file with `f` features: ℓ = (σ(wᵀx + b) − y)²/2.
fn least_squares_file(dir: &std::path::Path, f: usize) -> String {
    let truth: Vec<String> = (0..f)
        .map(|k| format!("{:.2}", ((k % 5) as f64 - 2.0) / 20.0))
        .collect();
    let file = dir.join("squares.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"squares\"\ntitle = \"Nonlinear least squares, {f} features\"\ndescription = \"squares\"\n\
             loss = \"(p - y)^2 / 2\"\n\
             [parameters]\nw = {{ shape = [{f}] }}\nb = {{}}\n[data]\nx = {{ shape = [{f}] }}\ny = {{}}\n\
             [[define]]\nname = \"p\"\nexpr = \"sigmoid(dot(w, x) + b)\"\n[synthetic]\nsamples = 400\n\
             [synthetic.truth]\nw = [{}]\nb = 0.5\n[synthetic.draw]\nx = \"normal(0, 1)\"\n\
             y = \"normal(sigmoid(dot(w, x) + b), 0.05)\"\n",
            truth.join(", ")
        ),
    )
    .unwrap();
    file.to_str().unwrap().to_string()
}

#[test]
fn gauss_newton_works_on_products_above_200_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let file = least_squares_file(dir.path(), 250);
    let problem = Problem {
        synthetic: Some(400),
        ..Problem::default()
    };
    let prepared = prepare(&file, &problem).unwrap();
    assert_eq!(prepared.model.n_params(), 251);
    let fit_with = |hessian: HessianPath| {
        let settings = Settings {
            hessian,
            ..Settings::default()
        };
        common::run(&prepared, "gauss-newton", &settings, &Stopping::default()).0
    };
    // Auto: above 200 parameters the Gauss–Newton matrix is never formed.
    let free = fit_with(HessianPath::Auto);
    let dense = fit_with(HessianPath::Dense);
    for o in [&free, &dense] {
        assert_eq!(o.status, Status::Converged, "{}", o.message);
    }
    assert_eq!(free.evaluations.hessian, 0, "{:?}", free.evaluations);
    assert!(free.evaluations.hess_vec > free.iterations);
    assert!(dense.evaluations.hessian >= dense.iterations);
    // The same minimum (‖∇L‖∞ ≤ 1e-8 leaves θ uncertain by about κ·1e-8),
    // and the one Newton finds.
    let (newton, _) = run(&prepared, "newton");
    for other in [&dense, &newton] {
        for (a, b) in free.theta.iter().zip(&other.theta) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
