//! Every optimizer on every 2-D test problem, optax-style: the table says
//! how each run ends from the model's start with the default
//! hyper-parameters and stopping rule. What it encodes: on the convex
//! quadratic bowl Newton's family needs one step (its trust-region and
//! damped cousins a few) and everything else gets there; on Rosenbrock's
//! curved valley the second-order and quasi-Newton methods converge while
//! the first-order ones at their default steps run out of iterations (SGD's
//! fixed 0.01 step is beyond 2/λ_max and diverges); at the saddle's start
//! pure Newton walks to the saddle point and says so, while the methods
//! that keep descending find a minimum. Gauss–Newton refuses losses that
//! are not squares.

use hessforge_driver::{Problem, fit, optimizer, prepare, start_curvature};
use hessforge_optim::{Optimizer, Settings, Status, Stopping};

use Status::{Converged as C, Diverged as D, Failed as F, MaxIterations as M, SaddlePoint as S};

/// (optimizer, quadratic_bowl, rosenbrock, saddle).
const EXPECTED: &[(Optimizer, Status, Status, Status)] = &[
    (Optimizer::Gd, C, M, M),
    (Optimizer::Sgd, C, D, C),
    (Optimizer::Minibatch, C, D, C),
    (Optimizer::Momentum, C, M, C),
    (Optimizer::Nesterov, C, C, D),
    (Optimizer::AdaGrad, C, M, C),
    (Optimizer::RmsProp, M, M, C),
    (Optimizer::Adam, C, C, C),
    (Optimizer::AdamW, C, M, M),
    (Optimizer::Newton, C, C, S),
    (Optimizer::NewtonDamped, C, C, C),
    (Optimizer::NewtonLm, C, C, C),
    (Optimizer::NewtonSaddleFree, C, C, C),
    (Optimizer::NewtonTr, C, C, C),
    (Optimizer::NewtonExactTr, C, C, C),
    (Optimizer::NewtonCg, C, C, C),
    (Optimizer::GaussNewton, F, F, F),
    (Optimizer::Bfgs, C, C, C),
    (Optimizer::Lbfgs, C, C, C),
];

#[test]
fn every_optimizer_on_every_2d_problem_ends_as_the_table_says() {
    assert_eq!(
        EXPECTED.iter().map(|e| e.0).collect::<Vec<_>>(),
        Optimizer::all().collect::<Vec<_>>(),
        "the table lists every optimizer of the catalogue, in order"
    );
    let models = ["quadratic_bowl", "rosenbrock", "saddle"];
    let mut wrong = Vec::new();
    for (k, model) in models.iter().enumerate() {
        let prepared = prepare(model, &Problem::default()).unwrap();
        for &(o, bowl, rosenbrock, saddle) in EXPECTED {
            let expected = [bowl, rosenbrock, saddle][k];
            let mut settings = Settings::default();
            start_curvature(&mut settings, &[o.name()], &prepared);
            let mut method = optimizer(o.name(), &settings).unwrap();
            let outcome = fit(
                &prepared,
                o.name(),
                method.as_mut(),
                &Stopping::default(),
                &mut [],
            );
            if outcome.status != expected {
                wrong.push(format!(
                    "{o} on {model}: {:?} after {} iterations ({}), expected {expected:?}",
                    outcome.status, outcome.iterations, outcome.message
                ));
            }
            if model == &"quadratic_bowl"
                && matches!(
                    o,
                    Optimizer::Newton | Optimizer::NewtonDamped | Optimizer::NewtonSaddleFree
                )
            {
                assert_eq!(
                    outcome.iterations, 1,
                    "{o}: one Newton step solves a quadratic"
                );
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
