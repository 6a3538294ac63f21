//! The mathematics of the optimizers on the textbook problems, with
//! hand-written derivatives: Newton's one step on a quadratic, GD's
//! contraction rate (κ−1)/(κ+1), Rosenbrock from (−1.2, 1), the saddle,
//! mini-batch determinism.

mod common;

use common::line;
use hessforge_optim::{
    FnObjective, History, Objective, Settings, Status, Stopping, build, minimize,
};

fn bowl() -> impl Objective {
    FnObjective {
        n_params: 2,
        loss: |t: &[f64]| 0.5 * (t[0] * t[0] + 25.0 * t[1] * t[1]),
        grad: |t: &[f64], g: &mut [f64]| g.copy_from_slice(&[t[0], 25.0 * t[1]]),
        hess: |_: &[f64], h: &mut [f64]| h.copy_from_slice(&[1.0, 0.0, 0.0, 25.0]),
    }
}

fn rosenbrock() -> impl Objective {
    FnObjective {
        n_params: 2,
        loss: |t: &[f64]| (1.0 - t[0]).powi(2) + 100.0 * (t[1] - t[0] * t[0]).powi(2),
        grad: |t: &[f64], g: &mut [f64]| {
            let q = t[1] - t[0] * t[0];
            g[0] = -2.0 * (1.0 - t[0]) - 400.0 * t[0] * q;
            g[1] = 200.0 * q;
        },
        hess: |t: &[f64], h: &mut [f64]| {
            let hxx = 2.0 - 400.0 * (t[1] - 3.0 * t[0] * t[0]);
            let hxy = -400.0 * t[0];
            h.copy_from_slice(&[hxx, hxy, hxy, 200.0]);
        },
    }
}

/// x² − y² + y⁴/4: a saddle at 0, minima at (0, ±√2) with L = −1.
fn saddle() -> impl Objective {
    FnObjective {
        n_params: 2,
        loss: |t: &[f64]| t[0] * t[0] - t[1] * t[1] + t[1].powi(4) / 4.0,
        grad: |t: &[f64], g: &mut [f64]| {
            g.copy_from_slice(&[2.0 * t[0], -2.0 * t[1] + t[1].powi(3)])
        },
        hess: |t: &[f64], h: &mut [f64]| {
            h.copy_from_slice(&[2.0, 0.0, 0.0, -2.0 + 3.0 * t[1] * t[1]])
        },
    }
}

fn run(
    objective: &dyn Objective,
    name: &str,
    settings: &Settings,
    start: &[f64],
    stop: &Stopping,
) -> (hessforge_optim::Outcome, History) {
    let mut method = build(name, settings).unwrap();
    let mut history = History {
        keep_theta: true,
        ..History::default()
    };
    let out = minimize(objective, method.as_mut(), start, stop, &mut [&mut history]);
    (out, history)
}

#[test]
fn newton_solves_a_quadratic_in_one_step() {
    for name in ["newton", "newton-damped", "newton-saddle-free"] {
        let (out, _) = run(
            &bowl(),
            name,
            &Settings::default(),
            &[-4.0, 1.5],
            &Stopping::default(),
        );
        assert_eq!(out.status, Status::Converged, "{name}: {}", out.message);
        assert_eq!(out.iterations, 1, "{name}");
        assert!(
            out.theta.iter().all(|t| t.abs() < 1e-12),
            "{name}: {:?}",
            out.theta
        );
        assert_eq!(out.lambda_min, Some(1.0));
    }
    // The trust region's CG is truncated (inexact Newton, forcing term
    // min(½, √‖g‖)): a few steps, converging superlinearly.
    let settings = Settings {
        radius: Some(100.0),
        ..Settings::default()
    };
    let (out, _) = run(
        &bowl(),
        "newton-tr",
        &settings,
        &[-4.0, 1.5],
        &Stopping::default(),
    );
    assert_eq!(out.status, Status::Converged, "{}", out.message);
    assert!(out.iterations <= 6, "{}", out.iterations);
}

#[test]
fn gradient_descent_contracts_at_the_theoretical_rate() {
    // Step 2/(λmin + λmax) = 2/26: the error in each eigendirection shrinks
    // by (κ − 1)/(κ + 1) = 24/26 per step (the x direction: 1 − 2/26).
    let settings = Settings {
        lr: Some(2.0 / 26.0),
        ..Settings::default()
    };
    let stop = Stopping {
        max_iters: 50,
        ..Stopping::default()
    };
    let (_, history) = run(&bowl(), "gd", &settings, &[-4.0, 1.5], &stop);
    let rate = 24.0 / 26.0;
    let norms: Vec<f64> = history
        .rows
        .iter()
        .map(|r| (r.theta[0].powi(2) + r.theta[1].powi(2)).sqrt())
        .collect();
    for w in norms.windows(2) {
        let measured = w[1] / w[0];
        assert!(
            (measured - rate).abs() < 1e-12,
            "measured {measured}, theory {rate}"
        );
    }
}

#[test]
fn rosenbrock_damped_newton_bfgs_lbfgs_converge_and_gd_crawls() {
    let start = [-1.2, 1.0];
    let stop = Stopping {
        max_iters: 30,
        ..Stopping::default()
    };
    let (out, history) = run(
        &rosenbrock(),
        "newton-damped",
        &Settings::default(),
        &start,
        &stop,
    );
    let best = history
        .rows
        .iter()
        .map(|r| r.loss)
        .fold(f64::INFINITY, f64::min);
    assert!(
        best < 1e-12,
        "damped Newton: {best} after {} iterations",
        out.iterations
    );
    for name in ["bfgs", "lbfgs", "newton-tr", "newton-lm"] {
        let stop = Stopping {
            max_iters: 500,
            ..Stopping::default()
        };
        let (out, _) = run(&rosenbrock(), name, &Settings::default(), &start, &stop);
        assert_eq!(out.status, Status::Converged, "{name}: {}", out.message);
        assert!(
            (out.theta[0] - 1.0).abs() < 1e-6 && (out.theta[1] - 1.0).abs() < 1e-6,
            "{name}"
        );
    }
    // GD with a stable constant step (1/L at the start is not stable
    // along the valley; 1e-3 is): still far from (1, 1) after 1000 steps.
    let gd = Settings {
        lr: Some(1e-3),
        ..Settings::default()
    };
    let (out, _) = run(
        &rosenbrock(),
        "gd",
        &gd,
        &start,
        &Stopping {
            max_iters: 1000,
            ..Stopping::default()
        },
    );
    assert_eq!(out.status, Status::MaxIterations);
    assert!(
        out.final_loss.is_finite() && out.final_loss > 1e-3,
        "GD loss {}",
        out.final_loss
    );
    assert!((out.theta[0] - 1.0).abs() > 0.05, "GD at {:?}", out.theta);
}

#[test]
fn pure_newton_finds_the_saddle_and_says_so_while_others_escape() {
    let start = [1.0, 0.01];
    let (out, _) = run(
        &saddle(),
        "newton",
        &Settings::default(),
        &start,
        &Stopping::default(),
    );
    assert_eq!(out.status, Status::SaddlePoint, "{}", out.message);
    assert!(out.theta.iter().all(|t| t.abs() < 1e-8));
    assert!(out.lambda_min.unwrap() < -1.9);
    assert!(out.message.contains("saddle"), "{}", out.message);
    for name in ["newton-saddle-free", "gd", "newton-tr"] {
        let settings = Settings {
            lr: Some(0.1),
            ..Settings::default()
        };
        let (out, _) = run(&saddle(), name, &settings, &start, &Stopping::default());
        assert_eq!(out.status, Status::Converged, "{name}: {}", out.message);
        assert!(
            (out.final_loss + 1.0).abs() < 1e-10,
            "{name}: {}",
            out.final_loss
        );
        assert!(
            (out.theta[1].abs() - 2f64.sqrt()).abs() < 1e-6,
            "{name}: {:?}",
            out.theta
        );
    }
}

#[test]
fn a_maximum_is_not_a_minimum() {
    let hill = FnObjective {
        n_params: 1,
        loss: |t: &[f64]| -t[0] * t[0],
        grad: |t: &[f64], g: &mut [f64]| g[0] = -2.0 * t[0],
        hess: |_: &[f64], h: &mut [f64]| h[0] = -2.0,
    };
    let (out, _) = run(
        &hill,
        "newton",
        &Settings::default(),
        &[0.3],
        &Stopping::default(),
    );
    assert_eq!(out.status, Status::Maximum, "{}", out.message);
    assert!(!out.converged);
}

#[test]
fn a_singular_hessian_does_not_crash_and_is_reported() {
    // L = x⁴ + y²: H = diag(12x², 2) is singular on x = 0, nearly so nearby.
    let flat = FnObjective {
        n_params: 2,
        loss: |t: &[f64]| t[0].powi(4) + t[1] * t[1],
        grad: |t: &[f64], g: &mut [f64]| g.copy_from_slice(&[4.0 * t[0].powi(3), 2.0 * t[1]]),
        hess: |t: &[f64], h: &mut [f64]| h.copy_from_slice(&[12.0 * t[0] * t[0], 0.0, 0.0, 2.0]),
    };
    let (out, _) = run(
        &flat,
        "newton",
        &Settings::default(),
        &[0.0, 1.0],
        &Stopping::default(),
    );
    assert_eq!(out.status, Status::Converged, "{}", out.message);
    assert_eq!(
        out.modified_steps, 1,
        "the singular step used the pseudo-inverse"
    );
}

#[test]
fn divergence_stops_with_the_last_finite_iterate() {
    let settings = Settings {
        lr: Some(1.0),
        ..Settings::default()
    };
    let (out, _) = run(&bowl(), "gd", &settings, &[-4.0, 1.5], &Stopping::default());
    assert_eq!(out.status, Status::Diverged, "{}", out.message);
    assert!(out.final_loss.is_finite());
    assert!(out.message.contains("blew up"), "{}", out.message);
}

#[test]
fn minibatch_runs_are_reproducible_by_seed() {
    let stop = Stopping {
        max_iters: 5,
        ..Stopping::default()
    };
    let with_seed = |seed| {
        let s = Settings {
            seed,
            lr: Some(0.1),
            ..Settings::default()
        };
        run(&line(), "minibatch", &s, &[0.0, 0.0], &stop)
            .1
            .rows
            .iter()
            .map(|r| r.theta.clone())
            .collect::<Vec<_>>()
    };
    let (a, b, c) = (with_seed(7), with_seed(7), with_seed(8));
    assert_eq!(
        a.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>(),
        b.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    assert_ne!(a, c);
    let sgd = Settings {
        seed: 1,
        lr: Some(0.05),
        ..Settings::default()
    };
    let (out, _) = run(
        &line(),
        "sgd",
        &sgd,
        &[0.0, 0.0],
        &Stopping {
            max_iters: 50,
            ..Stopping::default()
        },
    );
    assert!(
        (out.theta[1] - 2.0).abs() < 0.2,
        "SGD near the least-squares line: {:?}",
        out.theta
    );
}

/// y = a·exp(b·x) fitted by least squares, ℓᵢ = ½(a e^{b xᵢ} − yᵢ)²:
/// a nonlinear sum of squares with its true residual Jacobian.
struct ExpFit;

const EXP_ROWS: [(f64, f64); 6] = [
    (0.0, 2.1),
    (0.5, 2.9),
    (1.0, 4.2),
    (1.5, 6.1),
    (2.0, 8.7),
    (2.5, 12.4),
];

impl ExpFit {
    fn sums(&self, t: &[f64], g: &mut [f64], m: Option<&mut [f64]>) -> f64 {
        let n = EXP_ROWS.len() as f64;
        let (mut l, mut gg, mut mm) = (0.0, [0.0; 2], [0.0; 4]);
        for &(x, y) in &EXP_ROWS {
            let e = (t[1] * x).exp();
            let r = t[0] * e - y;
            let j = [e, t[0] * x * e];
            l += 0.5 * r * r;
            for a in 0..2 {
                gg[a] += r * j[a];
                for b in 0..2 {
                    mm[a * 2 + b] += j[a] * j[b];
                }
            }
        }
        g.iter_mut().zip(gg).for_each(|(o, v)| *o = v / n);
        if let Some(m) = m {
            m.iter_mut().zip(mm).for_each(|(o, v)| *o = v / n);
        }
        l / n
    }
}

impl hessforge_optim::Objective for ExpFit {
    fn n_params(&self) -> usize {
        2
    }
    fn n_rows(&self) -> usize {
        0
    }
    fn loss(&self, t: &[f64], _: hessforge_optim::Rows<'_>) -> f64 {
        self.sums(t, &mut [0.0; 2], None)
    }
    fn loss_grad(&self, t: &[f64], _: hessforge_optim::Rows<'_>, g: &mut [f64]) -> f64 {
        self.sums(t, g, None)
    }
    fn loss_grad_hess(
        &self,
        t: &[f64],
        b: hessforge_optim::Rows<'_>,
        g: &mut [f64],
        h: &mut [f64],
    ) -> f64 {
        // Exact Hessian by central differences of the gradient (test fixture).
        let l = self.loss_grad(t, b, g);
        for k in 0..2 {
            let (mut p, mut m) = ([t[0], t[1]], [t[0], t[1]]);
            p[k] += 1e-6;
            m[k] -= 1e-6;
            let (mut gp, mut gm) = ([0.0; 2], [0.0; 2]);
            self.loss_grad(&p, b, &mut gp);
            self.loss_grad(&m, b, &mut gm);
            for i in 0..2 {
                h[i * 2 + k] = (gp[i] - gm[i]) / 2e-6;
            }
        }
        l
    }
    fn loss_grad_gauss_newton(&self, t: &[f64], g: &mut [f64], gn: &mut [f64]) -> Option<f64> {
        Some(self.sums(t, g, Some(gn)))
    }
}

#[test]
fn gauss_newton_is_newton_on_linear_least_squares_and_fits_a_nonlinear_model() {
    let (out, _) = run(
        &line(),
        "gauss-newton",
        &Settings::default(),
        &[0.0, 0.0],
        &Stopping::default(),
    );
    assert_eq!(out.status, Status::Converged, "{}", out.message);
    assert_eq!(out.iterations, 1, "G = H for a linear residual");
    let (out, _) = run(
        &ExpFit,
        "gauss-newton",
        &Settings::default(),
        &[1.0, 0.1],
        &Stopping {
            grad_tol: 1e-10,
            ..Stopping::default()
        },
    );
    assert_eq!(out.status, Status::Converged, "{}", out.message);
    assert!(out.iterations < 30, "{}", out.iterations);
    assert!(
        (out.theta[0] - 2.1).abs() < 0.2 && (out.theta[1] - 0.72).abs() < 0.05,
        "{:?}",
        out.theta
    );
    // Without a square loss it says so instead of guessing.
    let (out, _) = run(
        &bowl(),
        "gauss-newton",
        &Settings::default(),
        &[1.0, 1.0],
        &Stopping::default(),
    );
    assert_eq!(out.status, Status::Failed);
    assert!(out.message.contains("square"), "{}", out.message);
}

/// A trust-region method on Rosenbrock from (−1.2, 1), its products and
/// subproblem as asked.
fn trust_region_on_rosenbrock(
    name: &str,
    hessian: hessforge_optim::HessianPath,
    subproblem: hessforge_optim::Subproblem,
) -> hessforge_optim::Outcome {
    let settings = Settings {
        hessian,
        subproblem,
        ..Settings::default()
    };
    let mut method = build(name, &settings).unwrap();
    minimize(
        &rosenbrock(),
        method.as_mut(),
        &[-1.2, 1.0],
        &Stopping::default(),
        &mut [],
    )
}

#[test]
fn newton_tr_hessian_free_takes_the_dense_path_without_ever_forming_the_hessian() {
    use hessforge_optim::{HessianPath, Subproblem};
    let run = trust_region_on_rosenbrock;
    let (dense, free) = (
        run("newton-tr", HessianPath::Dense, Subproblem::Steihaug),
        run("newton-tr", HessianPath::Free, Subproblem::Steihaug),
    );
    assert_eq!(dense.status, Status::Converged);
    // The same products, so the same iterates, bit for bit.
    assert_eq!(free.theta, dense.theta);
    assert_eq!(free.iterations, dense.iterations);
    // Dense: one Hessian per accepted iterate, no products asked of the objective;
    // free: the other way round. The one Hessian of the free run is the
    // end-of-run curvature check, dense below DENSE_CHECK_MAX_PARAMS.
    assert!(dense.evaluations.hessian > 10);
    assert_eq!(dense.evaluations.hess_vec, 0);
    assert_eq!(free.evaluations.hessian, 1);
    assert!(free.evaluations.hess_vec > dense.iterations);
    // Free with no subproblem named: Steihaug's CG, as asked for.
    let free_auto = run("newton-tr", HessianPath::Free, Subproblem::Auto);
    assert_eq!(free_auto.theta, free.theta);
    assert_eq!(free_auto.iterations, free.iterations);
}

#[test]
fn newton_tr_below_200_parameters_is_newton_exact_tr_and_steihaug_on_request() {
    use hessforge_optim::{HessianPath, Subproblem};
    let run = trust_region_on_rosenbrock;
    let exact = run("newton-exact-tr", HessianPath::Auto, Subproblem::Auto);
    assert_eq!(exact.status, Status::Converged, "{}", exact.message);
    // Auto, with the dense Hessian asked for or not, and Exact: the same
    // iterates as newton-exact-tr, bit for bit, and no products.
    for (hessian, subproblem) in [
        (HessianPath::Auto, Subproblem::Auto),
        (HessianPath::Dense, Subproblem::Auto),
        (HessianPath::Auto, Subproblem::Exact),
    ] {
        let tr = run("newton-tr", hessian, subproblem);
        assert_eq!(tr.theta, exact.theta, "{hessian:?} {subproblem:?}");
        assert_eq!(
            tr.iterations, exact.iterations,
            "{hessian:?} {subproblem:?}"
        );
        assert_eq!(tr.evaluations.hess_vec, 0);
    }
    // Steihaug's CG is another method: other iterates, more of them here
    // (30 against 25 on Rosenbrock from (−1.2, 1); README, comparison 4).
    let steihaug = run("newton-tr", HessianPath::Auto, Subproblem::Steihaug);
    assert_eq!(steihaug.status, Status::Converged);
    assert!(
        steihaug.iterations > exact.iterations,
        "{} vs {}",
        steihaug.iterations,
        exact.iterations
    );
    // The exact solution needs the dense Hessian.
    let conflict = Settings {
        hessian: HessianPath::Free,
        subproblem: Subproblem::Exact,
        ..Settings::default()
    };
    let e = build("newton-tr", &conflict).err().unwrap();
    assert!(e.to_string().contains("--subproblem exact"), "{e}");
}
