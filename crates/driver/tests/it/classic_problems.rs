//! The classic unconstrained test problems (Moré, Garbow & Hillstrom 1981;
//! `tests/problems/*.toml`, run by the interpreter from their standard
//! starts with the default stopping rule, ‖∇L‖∞ ≤ 10⁻⁸ or 10 000
//! iterations): for every Newton-type and quasi-Newton method, how the run
//! ends and after how many iterations. A change of any entry is a change of
//! an optimizer's behaviour, to be reviewed like a snapshot.
//!
//! What the table shows: pure Newton is the teaching counterexample (it
//! stops at saddles on Beale, Kowalik–Osborne, Powell badly scaled and
//! Wood, and diverges on Osborne 2 and Gulf); damped Newton with modified
//! Cholesky solves what it used to crawl on (Osborne 2 in 11 iterations, Wood
//! in 40; its shift scaled by each parameter's curvature), but from Biggs
//! EXP6's start it is drawn to the symmetric region x₁ = x₅, x₃ = x₆
//! (f = 0.24), where ∇²L stays indefinite and the shifted steps crawl to
//! the iteration limit (with an unscaled shift it happened to reach the
//! global minimum); the exact trust region is the most robust Newton-type method
//! (Gulf, Freudenstein–Roth), finds Biggs EXP6's global minimum, and
//! solves every problem but Meyer; Hessian-free
//! Newton–CG solves Freudenstein–Roth and Jennrich–Sampson too. `F` on
//! Freudenstein–Roth is honest: the runs reach the minimum (f = 48.98)
//! where ‖∇L‖∞ stalls near 10⁻⁷, the precision to which L can be evaluated
//! there, and stop instead of looping. Meyer, the badly scaled exponential
//! fit, defeats all.
//!
//! `newton-tr` is `newton-exact-tr` at these sizes (P ≤ 200); its column is
//! Steihaug's CG (`--subproblem steihaug`), and the test checks that plain
//! `newton-tr` ends as `newton-exact-tr` does on every problem.

use hessforge_driver::{Problem, fit, optimizer, prepare, start_curvature};
use hessforge_optim::{Settings, Status, Stopping, Subproblem};

use Status::{Converged as C, Diverged as D, Failed as F, MaxIterations as M, SaddlePoint as S};

const METHODS: [&str; 9] = [
    "newton",
    "newton-damped",
    "newton-lm",
    "newton-saddle-free",
    "newton-tr --subproblem steihaug",
    "newton-exact-tr",
    "newton-cg",
    "bfgs",
    "lbfgs",
];

/// Per problem, per method of [`METHODS`]: (status, iterations).
const EXPECTED: &[(&str, [(Status, u64); 9])] = &[
    (
        "bard",
        [
            (C, 8),
            (C, 9),
            (C, 11),
            (C, 8),
            (C, 11),
            (C, 14),
            (C, 12),
            (C, 19),
            (C, 26),
        ],
    ),
    (
        "beale",
        [
            (S, 1),
            (C, 70),
            (C, 11),
            (C, 7),
            (C, 12),
            (C, 8),
            (C, 12),
            (C, 13),
            (C, 16),
        ],
    ),
    (
        "biggs_exp6",
        [
            (S, 23),
            (M, 10000),
            (C, 84),
            (S, 18),
            (C, 173),
            (C, 35),
            (C, 113),
            (S, 36),
            (S, 43),
        ],
    ),
    (
        "box_3d",
        [
            (C, 9),
            (C, 15),
            (C, 16),
            (C, 11),
            (C, 18),
            (C, 16),
            (C, 18),
            (C, 22),
            (C, 32),
        ],
    ),
    (
        "brown_badly_scaled",
        [
            (D, 3),
            (C, 8),
            (C, 12),
            (C, 7),
            (C, 52),
            (C, 34),
            (C, 4),
            (C, 18),
            (C, 15),
        ],
    ),
    (
        "brown_dennis",
        [
            (C, 8),
            (C, 8),
            (C, 8),
            (C, 8),
            (C, 20),
            (C, 11),
            (F, 514),
            (C, 27),
            (C, 27),
        ],
    ),
    (
        "extended_rosenbrock",
        [
            (C, 6),
            (C, 21),
            (C, 21),
            (C, 21),
            (C, 42),
            (C, 24),
            (C, 64),
            (C, 90),
            (C, 38),
        ],
    ),
    (
        "freudenstein_roth",
        [
            (C, 7),
            (F, 8),
            (F, 7),
            (F, 9),
            (C, 14),
            (C, 8),
            (C, 9),
            (C, 12),
            (C, 21),
        ],
    ),
    (
        "gaussian",
        [
            (C, 2),
            (C, 2),
            (C, 2),
            (C, 2),
            (C, 2),
            (C, 2),
            (C, 2),
            (C, 3),
            (C, 3),
        ],
    ),
    (
        "gulf",
        [
            (D, 1),
            (F, 22),
            (F, 31),
            (C, 27),
            (C, 47),
            (C, 24),
            (F, 2967),
            (C, 31),
            (C, 32),
        ],
    ),
    (
        "jennrich_sampson",
        [
            (C, 10),
            (C, 10),
            (C, 10),
            (C, 10),
            (C, 12),
            (C, 12),
            (C, 12),
            (C, 22),
            (C, 20),
        ],
    ),
    (
        "kowalik_osborne",
        [
            (S, 9),
            (C, 10),
            (C, 9),
            (C, 9),
            (C, 16),
            (C, 11),
            (C, 13),
            (C, 28),
            (C, 29),
        ],
    ),
    (
        "meyer",
        [
            (M, 10000),
            (F, 176),
            (F, 224),
            (F, 8),
            (F, 966),
            (F, 273),
            (F, 331),
            (F, 324),
            (F, 385),
        ],
    ),
    (
        "osborne1",
        [
            (C, 16),
            (C, 36),
            (C, 36),
            (C, 47),
            (C, 66),
            (C, 36),
            (C, 69),
            (C, 53),
            (C, 100),
        ],
    ),
    (
        "osborne2",
        [
            (D, 1),
            (C, 11),
            (C, 17),
            (C, 12),
            (C, 41),
            (C, 16),
            (C, 31),
            (C, 54),
            (C, 97),
        ],
    ),
    (
        "penalty_1",
        [
            (C, 20),
            (C, 33),
            (C, 33),
            (C, 33),
            (C, 35),
            (C, 37),
            (C, 36),
            (C, 58),
            (C, 54),
        ],
    ),
    (
        "powell_badly_scaled",
        [
            (S, 16),
            (C, 90),
            (C, 96),
            (F, 9),
            (C, 122),
            (C, 120),
            (C, 117),
            (C, 149),
            (C, 148),
        ],
    ),
    (
        "powell_singular",
        [
            (C, 20),
            (C, 20),
            (C, 20),
            (C, 20),
            (C, 26),
            (C, 20),
            (C, 25),
            (C, 42),
            (C, 54),
        ],
    ),
    (
        "trigonometric",
        [
            (C, 42),
            (C, 10),
            (C, 10),
            (C, 10),
            (C, 16),
            (C, 11),
            (C, 11),
            (C, 28),
            (C, 29),
        ],
    ),
    (
        "variably_dimensioned",
        [
            (C, 14),
            (C, 14),
            (C, 14),
            (C, 14),
            (C, 14),
            (C, 14),
            (C, 14),
            (C, 22),
            (C, 19),
        ],
    ),
    (
        "watson",
        [
            (C, 12),
            (C, 12),
            (C, 12),
            (C, 12),
            (C, 15),
            (C, 12),
            (C, 15),
            (C, 36),
            (C, 52),
        ],
    ),
    (
        "watson9",
        [
            (C, 13),
            (C, 13),
            (C, 13),
            (C, 13),
            (C, 28),
            (C, 13),
            (C, 17),
            (C, 70),
            (C, 287),
        ],
    ),
    (
        "wood",
        [
            (S, 14),
            (C, 40),
            (C, 41),
            (C, 38),
            (C, 134),
            (C, 45),
            (C, 360),
            (C, 83),
            (C, 89),
        ],
    ),
];

#[test]
fn every_newton_type_and_quasi_newton_method_on_the_classic_problems() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/problems");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|e| e.0).collect();
    assert_eq!(
        files, listed,
        "every problem file has a row, and every row a file"
    );
    let mut wrong = Vec::new();
    for (name, expected) in EXPECTED {
        let file = dir.join(format!("{name}.toml"));
        let prepared = prepare(file.to_str().unwrap(), &Problem::default()).unwrap();
        let run = |column: &str| {
            let method = column.split_whitespace().next().unwrap();
            let mut settings = Settings::default();
            if column.ends_with("--subproblem steihaug") {
                settings.subproblem = Subproblem::Steihaug;
            }
            start_curvature(&mut settings, &[method], &prepared);
            let mut m = optimizer(method, &settings).unwrap();
            fit(&prepared, method, m.as_mut(), &Stopping::default(), &mut [])
        };
        for (column, &(status, iterations)) in METHODS.iter().zip(expected) {
            let o = run(column);
            if (o.status, o.iterations) != (status, iterations) {
                wrong.push(format!(
                    "{name}, {column}: ({:?}, {}) — {}; the table says ({status:?}, {iterations})",
                    o.status, o.iterations, o.message
                ));
            }
        }
        // At these sizes the default trust region is the exact one.
        let (tr, exact) = (run("newton-tr"), run("newton-exact-tr"));
        if (tr.status, tr.iterations, &tr.theta) != (exact.status, exact.iterations, &exact.theta) {
            wrong.push(format!(
                "{name}: newton-tr ({:?}, {}) is not newton-exact-tr ({:?}, {})",
                tr.status, tr.iterations, exact.status, exact.iterations
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
