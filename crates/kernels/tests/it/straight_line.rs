//! The straight-line programs compiled at run time (what a model file with
//! scalar parameters only runs on) against their interpreter, the oracle:
//! the same bits — loss, gradient and Hessian, over all rows, a
//! mini-batch and the parallel pass — on every such file of the project
//! (the built-ins' derivations, the classic problems, NIST's); invalid
//! programs refused before anything is compiled.

use hessforge_ir::{Instr, ModelPrograms, Operand, Outputs, Part};
use hessforge_kernels::{At, CompiledStraightLine, JitError, Kernel, Rows, TIER_UP_RUNS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// The lowered straight-line programs of every derivation file with scalar
/// parameters only under `dirs` (relative to the workspace root).
fn scalar_files(dirs: &[&str]) -> Vec<(PathBuf, ModelPrograms)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for file in files {
            let model = hessforge_spec::load_file(&file).unwrap();
            if model.has_tensor_parameter() {
                continue;
            }
            let derivation = hessforge_symbolic::derive_scalar(&model).unwrap();
            out.push((file, hessforge_symbolic::lower(&derivation).unwrap()));
        }
    }
    out
}

/// Bit for bit, a NaN as any NaN.
fn same_bits(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (j, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan(),
            "{what} [{j}]: {x:e} vs {y:e}"
        );
    }
}

/// Each level of `compiled` against `oracle` at a random point near
/// `start` over `n` random rows.
fn check(what: &str, compiled: &dyn Kernel, oracle: &dyn Kernel, start: &[f64], n: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
    let (p, cols) = (oracle.n_params(), oracle.n_data());
    let theta: Vec<f64> = start
        .iter()
        .map(|s| s + 0.1 * s.abs().max(1.0) * rng.gen_range(-1.0..1.0))
        .collect();
    let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
    let c = oracle.default_constants().to_vec();
    let batch: Vec<usize> = [2, 0, 2, n - 1].map(|r| r % n).to_vec();
    for rows in [Rows::All, Rows::Selected(&batch), Rows::Parallel] {
        let at = At::new(&theta, &c, &data).rows(rows);
        let what = |k: &str| format!("{what} {rows:?} {k}");
        same_bits(&what("loss"), &[compiled.loss(at)], &[oracle.loss(at)]);
        let (mut g, mut g0) = (vec![0.0; p], vec![0.0; p]);
        let f = compiled.loss_grad(at, &mut g);
        let f0 = oracle.loss_grad(at, &mut g0);
        same_bits(&what("loss_grad"), &[f], &[f0]);
        same_bits(&what("gradient"), &g, &g0);
        let (mut h, mut h0) = (vec![0.0; p * p], vec![0.0; p * p]);
        let f = compiled.loss_grad_hess(at, &mut g, &mut h);
        let f0 = oracle.loss_grad_hess(at, &mut g0, &mut h0);
        same_bits(&what("loss_grad_hess"), &[f], &[f0]);
        same_bits(&what("gradient of loss_grad_hess"), &g, &g0);
        same_bits(&what("Hessian"), &h, &h0);
    }
}

/// Every file with scalar parameters only — the built-ins' derivations,
/// the classic problems, NIST's — compiled at run time gives its
/// interpreter's bits: over 37 rows, 1 row and (a file without data) none.
#[test]
fn compiled_straight_line_programs_give_the_interpreters_bits_on_every_scalar_file() {
    let files = scalar_files(&["derivations", "tests/problems", "tests/nist"]);
    assert!(files.len() >= 40, "only {} scalar files", files.len());
    for (file, programs) in files {
        let what = file.display().to_string();
        let compiled = CompiledStraightLine::compile(programs.clone())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(compiled.param_names(), programs.param_names(), "{what}");
        let start = vec![0.5; programs.n_params()];
        for n in [37, 1] {
            check(&what, &compiled, &programs, &start, n);
        }
        for level in [Outputs::Loss, Outputs::LossGrad, Outputs::LossGradHess] {
            for part in [Part::PerRow, Part::ThetaOnly] {
                assert!(compiled.is_compiled(level, part), "{what}: {level:?}");
            }
        }
    }
}

/// Sanity of the comparison itself: the compiled kernel of Rosenbrock's
/// file computes Rosenbrock's function (a kernel that returned a constant
/// would agree with nothing).
#[test]
fn a_compiled_straight_line_kernel_computes_its_model() {
    let (_, programs) = scalar_files(&["derivations"])
        .into_iter()
        .find(|(_, p)| p.name == "rosenbrock")
        .unwrap();
    let k = CompiledStraightLine::compile(programs).unwrap();
    let c = k.default_constants().to_vec();
    let (mut g, mut h) = (vec![0.0; 2], vec![0.0; 4]);
    // f(x, y) = (a − x)² + b (y − x²)² with a = 1, b = 100, at (0, 0).
    let f = k.loss_grad_hess(At::new(&[0.0, 0.0], &c, &[]), &mut g, &mut h);
    assert_eq!(
        (f, g, h),
        (1.0, vec![-2.0, 0.0], vec![2.0, 0.0, 0.0, 200.0])
    );
}

/// A program that does not validate is refused, and nothing is compiled:
/// a parameter past θ, a register read before it is written, a data
/// column read by the θ-only program, an output missing.
#[test]
fn invalid_straight_line_programs_are_refused_before_they_are_compiled() {
    let (_, valid) = scalar_files(&["tests/problems"])
        .into_iter()
        .find(|(_, p)| p.name == "meyer")
        .unwrap();
    let mut past_theta = valid.clone();
    let ins = &mut past_theta.loss_grad.theta_only.instructions;
    let at = ins
        .iter()
        .position(|i| i.operands().iter().any(|o| matches!(o, Operand::Param(_))))
        .unwrap();
    for o in ins[at].operands_mut() {
        if let Operand::Param(i) = o {
            *i = 1_000_000;
        }
    }
    let mut read_before_write = valid.clone();
    let n_regs = read_before_write.loss.per_row.n_regs;
    read_before_write.loss.per_row.instructions.insert(
        0,
        Instr::Copy {
            dst: 0,
            src: Operand::Reg(n_regs - 1),
        },
    );
    let mut data_in_theta_only = valid.clone();
    data_in_theta_only
        .loss_grad_hess
        .theta_only
        .instructions
        .push(Instr::Copy {
            dst: 0,
            src: Operand::Data(0),
        });
    let mut missing_output = valid.clone();
    missing_output.loss_grad.per_row.outputs.pop();
    for (what, bad) in [
        ("a parameter past θ", past_theta),
        ("a register read before it is written", read_before_write),
        ("a data column in the θ-only program", data_in_theta_only),
        ("an output missing", missing_output),
    ] {
        match CompiledStraightLine::compile(bad) {
            Err(JitError::Invalid(e)) => assert!(!e.0.is_empty(), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(CompiledStraightLine::compile(valid).is_ok());
}

/// A tiered kernel (what a model file runs on) interprets a program until
/// a pass would take its runs to [`TIER_UP_RUNS`], compiles it before that
/// pass, and gives the interpreter's bits before and after.
#[test]
fn a_tiered_kernel_compiles_a_program_once_it_has_run_often_enough() {
    let (_, programs) = scalar_files(&["tests/nist"])
        .into_iter()
        .find(|(_, p)| p.name == "misra1a")
        .unwrap();
    let k = CompiledStraightLine::tiered(programs.clone()).unwrap();
    let rows = 100;
    let data: Vec<f64> = (0..rows * 2).map(|i| (i as f64 * 0.37).sin()).collect();
    let (theta, c) = ([250.0, 5e-4], programs.constant_defaults.clone());
    let at = At::new(&theta, &c, &data);
    let passes = TIER_UP_RUNS as usize / rows;
    for pass in 0..passes {
        let (mut g, mut g0) = ([0.0; 2], [0.0; 2]);
        let f = k.loss_grad(at, &mut g);
        assert_eq!((f, g), (programs.loss_grad(at, &mut g0), g0), "pass {pass}");
        let compiled = k.is_compiled(Outputs::LossGrad, Part::PerRow);
        assert_eq!(compiled, pass + 2 > passes, "pass {pass}");
    }
    // The θ-only program runs once per pass: still interpreted; the other
    // levels have not run.
    assert!(!k.is_compiled(Outputs::LossGrad, Part::ThetaOnly));
    assert!(!k.is_compiled(Outputs::LossGradHess, Part::PerRow));
}
