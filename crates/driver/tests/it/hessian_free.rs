//! The Hessian-free paths end where dense Newton ends, through the library:
//! digits (P = 650) by `newton-cg` and `newton-tr` on products only;
//! `newton-cg` with the Jacobi preconditioner, one diagonal pass per Newton
//! step, on a loop kernel and on a straight-line kernel; `newton-tr`'s
//! subproblem solved exactly at small P and by CG on request. (The flags'
//! errors are the CLI's tests.)

use crate::common::run;
use hessforge_driver::{Prepared, Problem, prepare};
use hessforge_optim::{Outcome, Preconditioner, Settings, Status, Stopping, Subproblem};

fn fit(prepared: &Prepared, name: &str, settings: &Settings) -> Outcome {
    let outcome = run(prepared, name, settings, &Stopping::default()).0;
    assert_eq!(
        outcome.status,
        Status::Converged,
        "{name}: {}",
        outcome.message
    );
    outcome
}

#[test]
fn digits_is_solved_hessian_free_and_dense_to_the_same_optimum() {
    let prepared = prepare("digits", &Problem::default()).unwrap();
    assert_eq!(prepared.data.rows, 1797);
    let settings = Settings::default();
    let cg = fit(&prepared, "newton-cg", &settings);
    let tr = fit(&prepared, "newton-tr", &settings);
    let dense = fit(&prepared, "newton", &settings);
    // P = 650 > 200: newton-tr goes Hessian-free; newton-cg always is.
    for o in [&cg, &tr] {
        assert_eq!(o.evaluations.hessian, 0, "{:?}", o.evaluations);
        assert!(o.evaluations.hess_vec > 20, "{:?}", o.evaluations);
    }
    assert!(dense.evaluations.hessian > 0);
    for o in [&cg, &tr] {
        assert!(
            (o.final_loss - dense.final_loss).abs() < 1e-12,
            "{}",
            o.optimizer
        );
    }
    // The penalty λ = 10⁻³ on every parameter bounds λ_min below.
    assert!(dense.lambda_min.unwrap() >= 1e-3 - 1e-9);
}

#[test]
fn newton_cg_with_the_diagonal_preconditioner_reaches_the_same_optimum() {
    // Digits on its loop kernel (the diagonal from the Hessian terms) and
    // the unscaled breast-cancer features on the straight-line kernel (the
    // diagonal of the dense Hessian).
    for model in ["digits", "logistic_regression"] {
        let prepared = prepare(model, &Problem::default()).unwrap();
        let plain = fit(&prepared, "newton-cg", &Settings::default());
        let jacobi = Settings {
            precondition: Preconditioner::Diagonal,
            ..Settings::default()
        };
        let jacobi = fit(&prepared, "newton-cg", &jacobi);
        assert_eq!(plain.evaluations.hess_diag, 0);
        assert_eq!(
            jacobi.evaluations.hess_diag, jacobi.iterations,
            "{model}: one diagonal pass per Newton step"
        );
        assert!(
            (plain.final_loss - jacobi.final_loss).abs() < 1e-12,
            "{model}"
        );
    }
}

#[test]
fn newton_tr_solves_its_subproblem_exactly_at_small_p_and_by_cg_on_request() {
    let prepared = prepare("rosenbrock", &Problem::default()).unwrap();
    let tr = fit(&prepared, "newton-tr", &Settings::default());
    let exact = fit(&prepared, "newton-exact-tr", &Settings::default());
    let steihaug = Settings {
        subproblem: Subproblem::Steihaug,
        ..Settings::default()
    };
    let steihaug = fit(&prepared, "newton-tr", &steihaug);
    assert_eq!(tr.iterations, exact.iterations);
    assert_eq!(tr.theta, exact.theta);
    assert_eq!(tr.final_loss.to_bits(), exact.final_loss.to_bits());
    assert_ne!(steihaug.iterations, exact.iterations);
}
