//! The mathematics of the optimizers on the real kernels, through the
//! library as a Rust user calls it: Newton's quadratic convergence and GD's
//! linear rate on logistic regression, Gauss–Newton on the least-squares
//! models (with a regularizer too), and determinism of the seeded stochastic runs.

use crate::common::run;
use hessforge_driver::{BackendChoice, Problem, prepare};
use hessforge_optim::{Settings, Status, Stopping};

fn tol(grad_tol: f64) -> Stopping {
    Stopping {
        grad_tol,
        ..Stopping::default()
    }
}

#[test]
fn newton_converges_quadratically_on_logistic_regression_and_gd_linearly_to_the_same_optimum() {
    let problem = Problem {
        synthetic: Some(2000),
        seed: 5,
        standardize: Some(vec![]),
        init: Some("zeros".into()),
        ..Problem::default()
    };
    let prepared = prepare("logistic_regression", &problem).unwrap();
    assert_eq!(prepared.backend.kind(), "compiled");
    let (newton, history) = run(&prepared, "newton", &Settings::default(), &tol(1e-10));
    let g: Vec<f64> = history.rows.iter().map(|r| r.grad_norm).collect();
    assert_eq!(newton.status, Status::Converged);
    assert!(
        newton.iterations <= 12,
        "Newton took {}: {g:?}",
        newton.iterations
    );
    assert!(*g.last().unwrap() < 1e-10);
    // Quadratic convergence: once ‖g‖ < 10⁻², each step at least squares it
    // up to a constant: ‖g_{k+1}‖ ≤ C ‖g_k‖² with one C for all those steps.
    let tail: Vec<(f64, f64)> = g
        .windows(2)
        .filter(|w| w[0] < 1e-2 && w[0] > 1e-14)
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(tail.len() >= 2, "{g:?}");
    for (a, b) in &tail {
        assert!(*b <= 10.0 * a * a, "not quadratic: {a:e} → {b:e} in {g:?}");
    }
    // GD with step 1/L (the default) converges linearly: the gradient norm
    // shrinks by a steady factor < 1.
    let (gd, history) = run(&prepared, "gd", &Settings::default(), &tol(1e-9));
    assert_eq!(gd.status, Status::Converged);
    let gn: Vec<f64> = history.rows.iter().map(|r| r.grad_norm).collect();
    let k = gn.len();
    assert!(k > 20, "GD should need many steps, took {k}");
    let late: Vec<f64> = gn[k / 2..]
        .windows(10)
        .map(|w| (w[9] / w[0]).powf(1.0 / 9.0))
        .collect();
    let (lo, hi) = late
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), r| (l.min(*r), h.max(*r)));
    assert!(
        hi < 1.0 && hi - lo < 0.05,
        "linear rate between {lo} and {hi}"
    );
    for (a, b) in newton.theta.iter().zip(&gd.theta) {
        assert!((a - b).abs() < 1e-6, "{:?} vs {:?}", newton.theta, gd.theta);
    }
}

/// The built-in derivation `model` with `added` (a regularizer) after its
/// `loss` line, written into `dir`.
fn with_regularizer(
    dir: &std::path::Path,
    model: &str,
    loss: &str,
    added: &str,
) -> std::path::PathBuf {
    let built_in = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../derivations/{model}.toml"));
    let text = std::fs::read_to_string(built_in).unwrap();
    let changed = text.replacen(loss, &format!("{loss}\n{added}"), 1);
    assert_ne!(changed, text, "{model}: no line {loss}");
    let path = dir.join(format!("{model}_regularized.toml"));
    std::fs::write(&path, changed).unwrap();
    path
}

#[test]
fn gauss_newton_is_newton_on_linear_least_squares_and_converges_on_the_network() {
    // Linear regression: G = H, so Gauss–Newton is Newton — one step.
    let prepared = prepare("linear_regression", &Problem::default()).unwrap();
    let (outcome, _) = run(
        &prepared,
        "gauss-newton",
        &Settings::default(),
        &Stopping::default(),
    );
    assert_eq!((outcome.status, outcome.iterations), (Status::Converged, 1));
    // Ridge regression: G + ∇²R = H still, so one step again, to Newton's
    // optimum (a Gauss–Newton matrix without ∇²R would take many).
    let dir = tempfile::tempdir().unwrap();
    let ridge = with_regularizer(
        dir.path(),
        "linear_regression",
        "loss = \"(yhat - y)^2 / 2\"",
        "regularizer = \"lambda / 2 * dot(w, w)\"\n\n[constants]\nlambda = 0.5",
    );
    for backend in [BackendChoice::Auto, BackendChoice::Interpreter] {
        let problem = Problem {
            backend,
            ..Problem::default()
        };
        let prepared = prepare(ridge.to_str().unwrap(), &problem).unwrap();
        let (gauss_newton, _) = run(&prepared, "gauss-newton", &Settings::default(), &tol(1e-10));
        let (newton, _) = run(&prepared, "newton", &Settings::default(), &tol(1e-10));
        assert_eq!(
            (gauss_newton.status, gauss_newton.iterations),
            (Status::Converged, 1),
            "{backend:?}: {}",
            gauss_newton.message
        );
        for (a, b) in gauss_newton.theta.iter().zip(&newton.theta) {
            assert!(
                (a - b).abs() < 1e-9,
                "{backend:?}: {:?} vs {:?}",
                gauss_newton.theta,
                newton.theta
            );
        }
    }
    // A model of scalars with a regularizer runs on the straight-line
    // programs, whose pass over no rows is not the regularizer alone:
    // refused, and said so.
    let scalar_ridge = with_regularizer(
        dir.path(),
        "simple_linear_regression",
        "loss = \"(w * x + b - y)^2 / 2\"",
        "regularizer = \"w^2 / 2\"",
    );
    let prepared = prepare(scalar_ridge.to_str().unwrap(), &Problem::default()).unwrap();
    let (outcome, _) = run(&prepared, "gauss-newton", &Settings::default(), &tol(1e-10));
    assert_eq!(outcome.status, Status::Failed, "{}", outcome.message);
    assert!(
        outcome.message.contains("index form"),
        "{}",
        outcome.message
    );
    // The network's squared loss: G ≠ H, still a steady descent.
    let prepared = prepare("mlp_tanh", &Problem::default()).unwrap();
    let stopping = Stopping {
        grad_tol: 1e-6,
        max_iters: 500,
        ..Stopping::default()
    };
    let (outcome, history) = run(&prepared, "gauss-newton", &Settings::default(), &stopping);
    assert!(
        outcome.final_loss < history.rows[0].loss / 2.0,
        "{}",
        outcome.message
    );
    // Not a square loss: said, not guessed.
    let prepared = prepare("logistic_regression", &Problem::default()).unwrap();
    let (outcome, _) = run(
        &prepared,
        "gauss-newton",
        &Settings::default(),
        &Stopping::default(),
    );
    assert_ne!(outcome.status, Status::Converged);
    assert!(outcome.message.contains("square"), "{}", outcome.message);
}

#[test]
fn the_same_seed_gives_the_same_bits_and_another_seed_another_trajectory() {
    let sgd = |seed: u64| {
        let prepared = prepare(
            "linear_regression",
            &Problem {
                seed,
                ..Problem::default()
            },
        )
        .unwrap();
        let settings = Settings {
            lr: Some(0.001),
            seed,
            ..Settings::default()
        };
        let stopping = Stopping {
            max_iters: 3,
            ..Stopping::default()
        };
        let (outcome, _) = run(&prepared, "sgd", &settings, &stopping);
        outcome
            .theta
            .iter()
            .map(|t| t.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(sgd(3), sgd(3));
    assert_ne!(sgd(3), sgd(4));
}
