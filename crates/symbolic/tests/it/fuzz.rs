//! Fuzzing the whole path from a derivation file to the lowered programs:
//! random expression trees over the whole grammar and random mutations of
//! the built-in files. For each file: no panic, no hang; a rejected file is
//! a [`hessforge_spec::SpecError`] or an [`EngineError::Undefined`] that
//! names the file (the command line exits 2 for both); an accepted one is
//! derived and lowered, and its gradient and Hessian agree with central
//! finite differences of its loss.
//!
//! Why proptest: it runs on stable Rust inside `cargo test` (cargo-fuzz
//! needs nightly and a separate harness), its strategies describe a grammar
//! directly (`prop_recursive`), and it shrinks a failing file to a small one.
//! The runner is seeded (`HESSFORGE_FUZZ_SEED`, default 0): same seed, same
//! files. A few hundred cases run in `cargo test`; `cargo test --release
//! --workspace -- --ignored fuzz` runs 10 000.

use crate::common;
use hessforge_ir::Outputs;
use hessforge_spec::Model;
use hessforge_symbolic::{EngineError, derive, lower};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::cell::RefCell;
use std::sync::mpsc;
use std::time::Duration;

/// The time one file may take to derive and lower (debug builds included).
const CASE_LIMIT: Duration = Duration::from_secs(60);

/// The file name every generated file is loaded under.
const FILE: &str = "fuzzed.toml";

/// A leaf of an expression: a parameter, a data field, a constant, an entry
/// of a vector, or a number from ordinary to absurd.
fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("w[1]".to_string()),
        Just("w[2]".to_string()),
        Just("x[1]".to_string()),
        Just("x[2]".to_string()),
        Just("y".to_string()),
        Just("k".to_string()),
        Just("u".to_string()),
        Just("dot(w, x)".to_string()),
        Just("sum(w)".to_string()),
        Just("sum(j = 1..2, w[j] * x[j])".to_string()),
        (0u32..20).prop_map(|n| n.to_string()),
        prop_oneof![
            Just("0.1957"),
            Just("0.00000004875397277841432"),
            Just("12345678901234567890123456789.5"),
            Just("1e-30"),
            Just("2.5e12"),
            Just("0.5"),
            Just("0"),
            Just("1e-300"),
            Just("6.02214076e23"),
        ]
        .prop_map(str::to_string),
        (1u32..100_000, 1u32..9).prop_map(|(m, d)| format!("{}.{m}", d)),
    ]
}

const FUNCTIONS: &[&str] = &[
    "exp", "log", "log1p", "sqrt", "sin", "cos", "tan", "atan", "tanh", "sigmoid", "softplus",
    "relu", "abs",
];

/// Random expression trees: every operator, every function, powers with
/// constant and variable exponents, nesting up to depth 5.
fn expression() -> impl Strategy<Value = String> {
    leaf().prop_recursive(5, 48, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone(), 0usize..4).prop_map(|(l, r, op)| {
                let op = ["+", "-", "*", "/"][op];
                format!("({l} {op} {r})")
            }),
            (inner.clone(), -3i32..5).prop_map(|(b, n)| format!("({b})^{n}")),
            (inner.clone(), inner.clone()).prop_map(|(b, x)| format!("({b})^({x})")),
            (inner.clone(), prop::sample::select(FUNCTIONS)).prop_map(|(a, f)| format!("{f}({a})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("dot([{a}, {b}], w)")),
        ]
    })
}

/// A whole derivation file around a random loss, with a random definition
/// `u` (possibly constant or identically zero) and a random regularizer.
fn generated_file() -> impl Strategy<Value = String> {
    (
        expression(),
        prop_oneof![expression().prop_map(|e| format!("{e} + u")), expression(),],
        prop::option::of(prop_oneof![
            Just("k / 2 * dot(w, w)".to_string()),
            Just("a^2 + b^2".to_string()),
        ]),
        any::<bool>(),
    )
        .prop_map(|(definition, loss, regularizer, with_data)| {
            let regularizer = regularizer
                .map(|r| format!("regularizer = \"{r}\"\n"))
                .unwrap_or_default();
            // Without data, data names are not declared: such a file must be
            // rejected with the unknown name.
            let data = if with_data {
                "[data]\nx = { shape = [2] }\ny = {}\n"
            } else {
                ""
            };
            format!(
                "name = \"fuzzed\"\ntitle = \"Fuzzed\"\ndescription = \"generated\"\n\
                 loss = \"{loss}\"\n{regularizer}\n[parameters]\na = {{}}\nb = {{}}\n\
                 w = {{ shape = [2] }}\n\n{data}\n[constants]\nk = 0.5\n\n\
                 [[define]]\nname = \"u\"\nexpr = \"{definition}\"\n"
            )
        })
}

/// The texts of the built-in derivation files the scalar engine derives in
/// a test's time (see `common::builtins`).
fn builtin_texts() -> Vec<String> {
    common::builtin_files()
        .iter()
        .filter(|p| hessforge_spec::load_file(p).is_ok_and(|m| m.n_params() <= 64))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// One mutation of a file's text.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Replace the n-th identifier-like word by another word.
    Rename(usize, String),
    Truncate(usize),
    /// Bytes that are not UTF-8, at a position.
    Garbage(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let word = prop::sample::select(vec![
        "w", "x", "y", "b", "z", "p", "lambda", "exp", "sigmoid", "h", "W", "c", "q", "r", "nope",
        "shape", "expr", "name", "for", "i",
    ]);
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), word).prop_map(|(n, w)| Mutation::Rename(n, w.to_string())),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::Garbage),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        let s = String::from_utf8_lossy(&bytes).into_owned();
        let mut lines: Vec<&str> = s.lines().collect();
        let n = lines.len().max(1);
        bytes = match m {
            Mutation::DeleteLine(i) => {
                if !lines.is_empty() {
                    lines.remove(i % n);
                }
                lines.join("\n").into_bytes()
            }
            Mutation::DuplicateLine(i) => {
                if !lines.is_empty() {
                    lines.insert(i % n, lines[i % n]);
                }
                lines.join("\n").into_bytes()
            }
            Mutation::SwapLines(a, b) => {
                if !lines.is_empty() {
                    lines.swap(a % n, b % n);
                }
                lines.join("\n").into_bytes()
            }
            Mutation::Rename(k, to) => {
                let words: Vec<(usize, usize)> = word_spans(&s);
                match words.get(k % words.len().max(1)) {
                    Some(&(start, end)) => format!("{}{to}{}", &s[..start], &s[end..]).into_bytes(),
                    None => bytes,
                }
            }
            Mutation::Truncate(at) => bytes[..at % (bytes.len() + 1)].to_vec(),
            Mutation::Garbage(at) => {
                let at = at % (bytes.len() + 1);
                let mut b = bytes[..at].to_vec();
                b.extend_from_slice(&[0xff, 0xfe, 0xc3]);
                b.extend_from_slice(&bytes[at..]);
                b
            }
        };
    }
    bytes
}

/// Byte ranges of identifier-like words.
fn word_spans(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
        let word = c.is_ascii_alphanumeric() || c == '_';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(st)) => {
                out.push((st, i));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// How one file ended.
enum Outcome {
    Rejected,
    Accepted,
}

/// Load, derive and lower `bytes` as the file `FILE`, then check the
/// derivatives; a failure is a bug this fuzzer exists to find.
fn check_file(bytes: &[u8], seed: u64) -> Result<Outcome, TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join(FILE);
    std::fs::write(&path, bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let model = match hessforge_spec::load_file(&path) {
        Ok(m) => m,
        Err(e) => {
            let shown = e.one_line();
            prop_assert!(
                shown.contains(FILE),
                "a rejected file must be named: {shown}"
            );
            return Ok(Outcome::Rejected);
        }
    };
    let name = path.display().to_string();
    let (tx, rx) = mpsc::channel();
    let job = model.clone();
    std::thread::spawn(move || {
        let result = derive(&job).and_then(|d| lower(&d).map(|p| (d, p)));
        let _ = tx.send(result);
    });
    let Ok(result) = rx.recv_timeout(CASE_LIMIT) else {
        // A hang cannot be shrunk: the engine's one thread is still busy
        // with it, and every later case would wait behind it. Show the file
        // and stop the whole test binary.
        eprintln!(
            "no answer within {CASE_LIMIT:?} for this file:\n{}",
            String::from_utf8_lossy(bytes)
        );
        std::process::exit(1);
    };
    let (_, programs) = match result {
        Ok(done) => done,
        Err(e @ EngineError::Undefined { .. }) => {
            prop_assert!(e.to_string().contains(&name), "must name the file: {e}");
            return Ok(Outcome::Rejected);
        }
        Err(e) => return Err(TestCaseError::fail(format!("engine failure: {e}"))),
    };
    check_derivatives(&model, &programs, seed)?;
    Ok(Outcome::Accepted)
}

/// The lowered gradient and Hessian against central differences of the
/// lowered loss. Random expressions have poles, kinks and overflow: a point
/// where the values are not finite, or are too large to difference, is
/// skipped, and a mismatch counts only if it repeats at every one of three
/// points where the check could be made (a wrong derivative is wrong almost
/// everywhere; a kink inside the difference step is not).
fn check_derivatives(
    model: &Model,
    programs: &hessforge_ir::ModelPrograms,
    seed: u64,
) -> Result<(), TestCaseError> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let p = model.n_params();
    let consts: Vec<f64> = model.constants.iter().map(|(_, v)| *v).collect();
    let loss = |theta: &[f64], row: &[f64]| {
        let mut out = [0.0];
        programs.evaluate(
            Outputs::Loss,
            hessforge_ir::At::new(theta, &consts, row),
            &mut out,
        );
        out[0]
    };
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for _ in 0..12 {
        if checked == 3 {
            break;
        }
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(0.2..1.2)).collect();
        let row: Vec<f64> = model.data.iter().map(|_| rng.gen_range(0.2..1.2)).collect();
        let mut out = vec![0.0; Outputs::LossGradHess.len(p)];
        programs.evaluate(
            Outputs::LossGradHess,
            hessforge_ir::At::new(&theta, &consts, &row),
            &mut out,
        );
        if out.iter().any(|v| !v.is_finite() || v.abs() > 1e6) {
            continue;
        }
        checked += 1;
        let h = 1e-5;
        let shifted = |j: usize, d: f64| {
            let mut t = theta.clone();
            t[j] += d;
            t
        };
        let mut bad = None;
        // A difference that is exactly 0 while the function does change
        // over a larger step means θ ± h is below the resolution of what the
        // model computes (sin(2.5e12 + a): the sum rounds a away); such an
        // entry cannot be checked by differences.
        let unresolved = |fd: f64, changes: &dyn Fn(f64) -> bool| fd == 0.0 && changes(1e-2);
        // Gradient: differences of the loss.
        for j in 0..p {
            let fd = (loss(&shifted(j, h), &row) - loss(&shifted(j, -h), &row)) / (2.0 * h);
            let exact = out[1 + j];
            let changes =
                |step: f64| loss(&shifted(j, step), &row) != loss(&shifted(j, -step), &row);
            if (!fd.is_finite() || (fd - exact).abs() > 1e-4 * exact.abs().max(1.0))
                && !unresolved(fd, &changes)
            {
                bad = Some(format!("∂/∂θ{j}: derived {exact}, differences {fd}"));
            }
        }
        // Hessian: differences of the derived gradient.
        let grad = |t: &[f64]| {
            let mut g = vec![0.0; Outputs::LossGrad.len(p)];
            programs.evaluate(
                Outputs::LossGrad,
                hessforge_ir::At::new(t, &consts, &row),
                &mut g,
            );
            g
        };
        let mut at = 1 + p;
        for j in 0..p {
            let (gp, gm) = (grad(&shifted(j, h)), grad(&shifted(j, -h)));
            for k in j..p {
                let fd = (gp[1 + k] - gm[1 + k]) / (2.0 * h);
                let exact = out[at];
                at += 1;
                let changes =
                    |step: f64| grad(&shifted(j, step))[1 + k] != grad(&shifted(j, -step))[1 + k];
                if (!fd.is_finite() || (fd - exact).abs() > 1e-4 * exact.abs().max(1.0))
                    && !unresolved(fd, &changes)
                {
                    bad = Some(format!("∂²/∂θ{j}∂θ{k}: derived {exact}, differences {fd}"));
                }
            }
        }
        match bad {
            Some(b) => mismatches.push(b),
            None => return Ok(()),
        }
    }
    prop_assert!(
        checked == 0 || mismatches.len() < checked,
        "derivatives disagree with finite differences at every point: {mismatches:?}"
    );
    Ok(())
}

fn runner(cases: u32) -> TestRunner {
    let seed: u64 = std::env::var("HESSFORGE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// (rejected, accepted) among the outcomes.
fn tally(outcomes: &[Outcome]) -> (usize, usize) {
    let rejected = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Rejected))
        .count();
    (rejected, outcomes.len() - rejected)
}

/// Random files and mutated built-ins, `cases` of each; prints the counts.
fn fuzz(cases: u32) {
    let outcomes = RefCell::new(Vec::new());
    runner(cases)
        .run(&(generated_file(), any::<u64>()), |(text, seed)| {
            let outcome = check_file(text.as_bytes(), seed)?;
            outcomes.borrow_mut().push(outcome);
            Ok(())
        })
        .unwrap();
    let (rejected, accepted) = tally(&outcomes.take());
    println!("generated files: {rejected} rejected, {accepted} accepted");
    let builtins = builtin_texts();
    let outcomes = RefCell::new(Vec::new());
    runner(cases)
        .run(
            &(
                0..builtins.len(),
                prop::collection::vec(mutation(), 1..4),
                any::<u64>(),
            ),
            |(which, mutations, seed)| {
                let bytes = mutate(&builtins[which], &mutations);
                let outcome = check_file(&bytes, seed)?;
                outcomes.borrow_mut().push(outcome);
                Ok(())
            },
        )
        .unwrap();
    let (rejected, accepted) = tally(&outcomes.take());
    println!("mutated built-ins: {rejected} rejected, {accepted} accepted");
}

#[test]
fn fuzz_derivation_files() {
    fuzz(300);
}

#[test]
#[ignore = "10 000 cases of each kind: run with `cargo test --release --workspace -- --ignored fuzz`"]
fn fuzz_derivation_files_10000() {
    fuzz(10_000);
}
