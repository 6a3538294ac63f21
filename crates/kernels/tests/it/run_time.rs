//! The run-time compiled kernels (the loop IR compiled by Cranelift when a
//! model is loaded) against the loop IR's interpreter, the oracle, and the
//! build-time kernels of the same models: every evaluation kind, over all
//! rows, a mini-batch, the parallel pass and passes too short for lanes,
//! to 1e-12; the same bits on every run and for any number of threads;
//! invalid IR refused before anything is compiled.

use crate::close;
use hessforge_ir::loop_ir::{Axis, Factor, HessianTerm, Load, LoopProgram, Source};
use hessforge_kernels::{At, JitError, Kernel, LOOP_REGISTRY, Rows, RunTimeKernel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn program(dir: &str, name: &str) -> LoopProgram {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(format!("{name}.toml"));
    let model = hessforge_spec::load_file(&file).unwrap();
    hessforge_symbolic::lower_loop_ir(&model).unwrap()
}

type Pass = (f64, Vec<f64>, Vec<f64>);

fn pass(k: &dyn Kernel, at: At<'_>) -> Pass {
    let p = k.n_params();
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    let f = k.loss_grad_hess(at, &mut g, &mut h);
    (f, g, h)
}

fn agree(what: &str, a: &[f64], b: &[f64], rel: f64) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (j, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(close(*x, *y, rel), "{what} [{j}]: {x} vs {y}");
    }
}

/// Every evaluation kind of `compiled` against `oracle` (the interpreter of
/// the same program) at random points over `n` random rows.
fn check_against(name: &str, compiled: &dyn Kernel, oracle: &dyn Kernel, n: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (p, cols) = (oracle.n_params(), oracle.n_data());
    let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
    let c = oracle.default_constants().to_vec();
    let batch: Vec<usize> = [5, 0, 5, n - 1, 3].iter().map(|r| r % n).collect();
    for rows in [Rows::All, Rows::Selected(&batch), Rows::Parallel] {
        let at = At::new(&theta, &c, &data).rows(rows);
        let what = |k: &str| format!("{name} {rows:?} {k}");
        let (f, g, h) = pass(compiled, at);
        let (f0, g0, h0) = pass(oracle, at);
        assert!(close(f, f0, 1e-12), "{}: {f} vs {f0}", what("loss"));
        agree(&what("gradient"), &g, &g0, 1e-12);
        agree(&what("Hessian"), &h, &h0, 1e-12);
        let mut gl = vec![0.0; p];
        assert_eq!(compiled.loss_grad(at, &mut gl), f, "{}", what("loss_grad"));
        assert_eq!(gl, g, "{}", what("loss_grad"));
        assert_eq!(compiled.loss(at), f, "{}", what("loss"));
        let v: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let (mut hv, mut hv0) = (vec![0.0; p], vec![0.0; p]);
        let fv = compiled.hess_vec(at, &v, &mut hv);
        oracle.hess_vec(at, &v, &mut hv0);
        assert!(close(fv, f0, 1e-12), "{}", what("loss of hess_vec"));
        agree(&what("Hv"), &hv, &hv0, 1e-11);
        if let Some(lin) = compiled.linearize(at) {
            let mut hl = vec![0.0; p];
            compiled.hess_vec_linearized(&lin, at, &v, &mut hl);
            assert_eq!(hl, hv, "{}: through the linearization", what("Hv"));
        }
        let (mut d, mut d0) = (vec![0.0; p], vec![0.0; p]);
        compiled.hess_diag(at, &mut d);
        oracle.hess_diag(at, &mut d0);
        agree(&what("diag"), &d, &d0, 1e-12);
    }
}

/// Each built-in in index form, compiled at run time from its derivation
/// file, agrees with the interpreter of its loop IR and with its
/// build-time kernel; over 300 rows (lanes and the rows after them), 5
/// rows (fewer than a block of lanes) and 1.
#[test]
fn run_time_kernels_agree_with_the_interpreter_on_every_builtin() {
    for built in LOOP_REGISTRY {
        let name = built.name();
        let interpreted = program("../../derivations", name);
        let compiled = RunTimeKernel::compile(interpreted.clone()).unwrap();
        assert_eq!(compiled.param_names(), built.param_names(), "{name}");
        for (n, seed) in [(300, 1), (5, 2), (1, 3)] {
            check_against(name, &compiled, &interpreted, n, seed);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (p, cols) = (built.n_params(), built.n_data());
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let data: Vec<f64> = (0..200 * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
        let at = At::new(&theta, built.default_constants(), &data);
        let (f, g, h) = pass(&compiled, at);
        let (f0, g0, h0) = pass(*built, at);
        assert!(close(f, f0, 1e-12), "{name}: build-time loss");
        agree(&format!("{name}: build-time gradient"), &g, &g0, 1e-12);
        agree(&format!("{name}: build-time Hessian"), &h, &h0, 1e-12);
    }
}

/// A random expression over the derivation language (the grammar of the
/// symbolic crate's fuzzer: every operator and function, powers, sums,
/// dot products, entries of vectors), at most `depth` deep.
fn expression(rng: &mut ChaCha8Rng, depth: usize) -> String {
    const LEAVES: &[&str] = &[
        "a",
        "b",
        "w[1]",
        "w[2]",
        "w[3]",
        "x[1]",
        "x[2]",
        "x[3]",
        "y",
        "k",
        "dot(w, x)",
        "sum(w)",
        "sum(j = 1..3, w[j] * x[j])",
        "0.5",
        "2",
        "1.75",
    ];
    const FUNCTIONS: &[&str] = &[
        "exp", "log1p", "sin", "cos", "atan", "tanh", "sigmoid", "softplus", "relu", "abs", "sqrt",
        "log",
    ];
    if depth == 0 || rng.gen_bool(0.3) {
        return LEAVES[rng.gen_range(0..LEAVES.len())].to_string();
    }
    let form = rng.gen_range(0..7);
    let mut sub = || expression(rng, depth - 1);
    match form {
        0 => format!("({} + {})", sub(), sub()),
        1 => format!("({} - {})", sub(), sub()),
        2 => format!("({} * {})", sub(), sub()),
        3 => format!("({} / (2 + ({})^2))", sub(), sub()),
        4 => {
            let base = sub();
            format!("({base})^{}", rng.gen_range(-2i32..4))
        }
        5 => {
            let arg = sub();
            let f = FUNCTIONS[rng.gen_range(0..FUNCTIONS.len())];
            // log and sqrt of something positive.
            match f {
                "log" | "sqrt" => format!("{f}(1 + ({arg})^2)"),
                _ => format!("{f}({arg})"),
            }
        }
        _ => format!("dot([{}, {}, {}], w)", sub(), sub(), sub()),
    }
}

/// Random models in index form (a vector parameter `w`, a vector data
/// field `x`, a definition and a regularizer), compiled at run time and
/// interpreted: every evaluation kind agrees to 1e-12 of the output's
/// magnitude, and a non-finite value is the same non-finite value.
#[test]
fn run_time_kernels_agree_with_the_interpreter_on_random_models() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut checked = 0;
    for case in 0..60 {
        let (u, loss) = (expression(&mut rng, 3), expression(&mut rng, 4));
        let regularizer = if rng.gen_bool(0.5) {
            "regularizer = \"k / 2 * dot(w, w)\"\n"
        } else {
            ""
        };
        let (text, interpreted) = random_model(case, &format!("{loss} + u"), regularizer, &u);
        let Some(interpreted) = interpreted else {
            continue;
        };
        let compiled =
            RunTimeKernel::compile(interpreted.clone()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        check_random(&text, &compiled, &interpreted, case as u64);
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} random models were accepted");
}

/// A random model of parameters a, b and w (3), data x (3) and y and the
/// constant k = 0.5: `loss` (over `u`, defined as `u`) plus `regularizer`
/// (a line of the file, or empty); its text, and its loop IR unless the
/// loader or the lowering refuses it.
fn random_model(
    case: usize,
    loss: &str,
    regularizer: &str,
    u: &str,
) -> (String, Option<LoopProgram>) {
    let text = format!(
        "name = \"random_{case}\"\ntitle = \"Random\"\ndescription = \"generated\"\n\
         loss = \"{loss}\"\n{regularizer}\n[parameters]\na = {{}}\nb = {{}}\n\
         w = {{ shape = [3] }}\n\n[data]\nx = {{ shape = [3] }}\ny = {{}}\n\n\
         [constants]\nk = 0.5\n\n[[define]]\nname = \"u\"\nexpr = \"{u}\"\n"
    );
    let program = hessforge_spec::load_str("random.toml", &text)
        .ok()
        .and_then(|model| hessforge_symbolic::lower_loop_ir(&model).ok());
    (text, program)
}

/// [`check_against`] for a random model: each output vector to 1e-12 of
/// its largest magnitude (a random expression's terms cancel), non-finite
/// values equal.
fn check_random(text: &str, compiled: &dyn Kernel, oracle: &dyn Kernel, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (p, cols, n) = (oracle.n_params(), oracle.n_data(), 37);
    let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
    let c = oracle.default_constants().to_vec();
    let same = |what: &str, a: &[f64], b: &[f64]| {
        let scale = b
            .iter()
            .filter(|v| v.is_finite())
            .fold(1.0f64, |m, v| m.max(v.abs()));
        for (j, (x, y)) in a.iter().zip(b).enumerate() {
            let ok = if y.is_finite() {
                (x - y).abs() <= 1e-12 * scale
            } else {
                x.is_nan() && y.is_nan() || x == y
            };
            assert!(ok, "{what} [{j}]: {x} vs {y}\n{text}");
        }
    };
    for rows in [Rows::All, Rows::Parallel] {
        let at = At::new(&theta, &c, &data).rows(rows);
        let (f, g, h) = pass(compiled, at);
        let (f0, g0, h0) = pass(oracle, at);
        same("loss", &[f], &[f0]);
        same("gradient", &g, &g0);
        same("Hessian", &h, &h0);
        let v: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let (mut hv, mut hv0) = (vec![0.0; p], vec![0.0; p]);
        compiled.hess_vec(at, &v, &mut hv);
        oracle.hess_vec(at, &v, &mut hv0);
        same("Hv", &hv, &hv0);
    }
}

/// The run-time compiler writes a stage whose steps are in level order as
/// the generated code does (a level's steps, then a check of the level,
/// the values kept from step to step), and one out of order one guarded
/// step at a time: `mlp_tanh` with its first step (a loss-level one)
/// repeated after the Hessian's, which changes no value, gives the bits of
/// the model as it is at every level, and agrees with the interpreter.
#[test]
fn steps_out_of_level_order_are_compiled_one_guarded_step_at_a_time() {
    let ordered = program("../../derivations", "mlp_tanh");
    let mut unordered = ordered.clone();
    let first = unordered.sample.steps[0].clone();
    assert_eq!(first.level.rank(), 0);
    assert!(unordered.sample.steps.iter().any(|s| s.level.rank() == 2));
    unordered.sample.steps.push(first);
    let (a, b) = (
        RunTimeKernel::compile(ordered).unwrap(),
        RunTimeKernel::compile(unordered.clone()).unwrap(),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(45);
    let (p, cols) = (a.n_params(), a.n_data());
    for n in [300, 5, 1] {
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
        let at = At::new(&theta, a.default_constants(), &data);
        assert_eq!(pass(&a, at), pass(&b, at), "{n} rows");
        let (mut ga, mut gb) = (vec![0.0; p], vec![0.0; p]);
        assert_eq!(a.loss_grad(at, &mut ga), b.loss_grad(at, &mut gb));
        assert_eq!(ga, gb, "{n} rows");
        assert_eq!(a.loss(at), b.loss(at), "{n} rows");
        check_against("mlp_tanh, unordered", &b, &unordered, n, 46);
    }
}

/// A short pass's Hessian terms compiled entry by entry (a model of at
/// most `ENTRY_BY_ENTRY_PARAMS` parameters) add what the shared code adds
/// when it walks the terms itself, in its order: the same bits, on every
/// built-in and on random models, for one row, five, and three selected of
/// nine; slices shorter than the code's are refused with nothing written.
#[test]
fn compiled_row_terms_give_the_shared_codes_bits() {
    use hessforge_ir::loop_ir::{ENTRY_BY_ENTRY_PARAMS, Steps};
    use hessforge_ir::{At as IrAt, Outputs};
    use hessforge_jit::{CompiledProgram, CompiledSteps};
    /// The compiled steps, their Hessian terms left to the shared code.
    struct Shared<'a>(CompiledSteps<'a>);
    impl Steps for Shared<'_> {
        fn sample(&self, l: Outputs, t: &[f64], r: &[f64], c: &[f64], s: &mut [f64]) {
            self.0.sample(l, t, r, c, s);
        }
        fn regularizer(&self, l: Outputs, t: &[f64], c: &[f64], s: &mut [f64]) {
            self.0.regularizer(l, t, c, s);
        }
    }
    fn bits(f: f64, g: &[f64], h: &[f64]) -> Vec<u64> {
        let all = std::iter::once(f)
            .chain(g.iter().copied())
            .chain(h.iter().copied());
        all.map(f64::to_bits).collect()
    }
    let check = |what: &str, program: &LoopProgram, seed: u64| {
        let compiled = CompiledProgram::compile(program.clone()).unwrap();
        let steps = compiled.steps();
        let (p, cols) = (program.n_params(), program.data.len());
        let written = p <= ENTRY_BY_ENTRY_PARAMS && !program.row_terms().is_empty();
        assert_eq!(steps.writes_row_terms(), written, "{what}");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let data: Vec<f64> = (0..9 * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
        let c = program.constant_defaults.clone();
        let selected = [8, 0, 3];
        let passes = [
            IrAt::new(&theta, &c, &data[..cols]),
            IrAt::new(&theta, &c, &data[..5 * cols]),
            IrAt::new(&theta, &c, &data).rows(Rows::Selected(&selected)),
        ];
        let level = Outputs::LossGradHess;
        for at in passes {
            let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
            let (mut g2, mut h2) = (vec![0.0; p], vec![0.0; p * p]);
            let f = program.evaluate_with(&steps, level, at, &mut g, &mut h);
            let f2 = program.evaluate_with(&Shared(steps), level, at, &mut g2, &mut h2);
            assert!(
                bits(f, &g, &h) == bits(f2, &g2, &h2),
                "{what}: not the shared code's bits"
            );
        }
        if written {
            // The scratch the terms read: the stage's and the pass's fills.
            let additions = program
                .row_terms()
                .iter()
                .flat_map(|t| t.additions(p))
                .collect::<Vec<_>>();
            let read = additions
                .iter()
                .flat_map(|a| std::iter::once(a.u).chain(a.v));
            let end = read
                .filter(|&(in_row, _)| !in_row)
                .map(|(_, at)| at + 1)
                .max();
            let scratch = vec![0.0; end.unwrap_or(0)];
            let mut h = vec![1.0; p * p];
            assert!(steps.row_terms(&scratch, &data[..cols], &mut h), "{what}");
            if !scratch.is_empty() {
                let short = &scratch[..scratch.len() - 1];
                assert!(!steps.row_terms(short, &data[..cols], &mut h), "{what}");
            }
            assert!(
                !steps.row_terms(&scratch, &data[..cols], &mut h[..p]),
                "{what}"
            );
        }
        written
    };
    let mut written = 0;
    for (k, built) in LOOP_REGISTRY.iter().enumerate() {
        let name = built.name();
        written += check(name, &program("../../derivations", name), k as u64) as usize;
    }
    assert!(
        written >= 3,
        "only {written} built-ins have their terms compiled"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut checked = 0;
    for case in 0..30 {
        let (u, loss) = (expression(&mut rng, 3), expression(&mut rng, 4));
        let (text, program) = random_model(case, &format!("{loss} * u"), "", &u);
        if let Some(program) = program {
            checked += check(&text, &program, case as u64) as usize;
        }
    }
    assert!(
        checked >= 15,
        "only {checked} random models had terms compiled"
    );
}

/// A parallel pass over many chunks: the same bits with one thread and
/// two, and on a second run.
#[test]
fn a_run_time_kernel_gives_the_same_bits_for_any_number_of_threads() {
    use hessforge_kernels::runtime::PARALLEL_CHUNK_ROWS;
    let compiled = RunTimeKernel::compile(program("../../derivations", "mlp_tanh")).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(43);
    let (p, cols) = (compiled.n_params(), compiled.n_data());
    let n = 9 * PARALLEL_CHUNK_ROWS + 17;
    let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
    let c = compiled.default_constants().to_vec();
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| pass(&compiled, At::new(&theta, &c, &data).rows(Rows::Parallel)))
    };
    let one = on(1);
    assert_eq!(one, on(2));
    assert_eq!(one, on(2));
}

/// A parallel pass of one chunk of rows gives the bits of the same pass
/// run serially, but for −0, which a parallel pass turns into +0 (it adds
/// its chunks into cleared outputs), with one thread and two, for
/// L + ∇ + H and ∇²L·v, on every built-in's generated kernel and on its
/// file compiled at run time.
#[test]
fn a_parallel_pass_of_one_chunk_gives_the_serial_bits() {
    use hessforge_kernels::runtime::PARALLEL_CHUNK_ROWS;
    let positive_zero = |x: &[f64]| -> Vec<u64> { x.iter().map(|v| (v + 0.0).to_bits()).collect() };
    let bits = |x: &[f64]| -> Vec<u64> { x.iter().map(|v| v.to_bits()).collect() };
    let check = |what: &str, k: &dyn Kernel, seed: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (p, cols) = (k.n_params(), k.n_data());
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let v: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let c = k.default_constants().to_vec();
        for n in [1, 5, 37, 300, PARALLEL_CHUNK_ROWS] {
            let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
            let at = At::new(&theta, &c, &data);
            let (f, g, h) = pass(k, at);
            let mut hv = vec![0.0; p];
            let fv = k.hess_vec(at, &v, &mut hv);
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let parallel = at.rows(Rows::Parallel);
                let (fp, gp, hp) = pool.install(|| pass(k, parallel));
                let mut hvp = vec![0.0; p];
                let fvp = pool.install(|| k.hess_vec(parallel, &v, &mut hvp));
                let what = format!("{what}, {n} rows, {threads} threads");
                assert_eq!(f.to_bits(), fp.to_bits(), "{what}: L");
                assert_eq!(positive_zero(&g), bits(&gp), "{what}: ∇L");
                assert_eq!(positive_zero(&h), bits(&hp), "{what}: ∇²L");
                assert_eq!(fv.to_bits(), fvp.to_bits(), "{what}: L of ∇²L·v");
                assert_eq!(positive_zero(&hv), bits(&hvp), "{what}: ∇²L·v");
            }
        }
    };
    for (k, built) in LOOP_REGISTRY.iter().enumerate() {
        let name = built.name();
        let generated = hessforge_kernels::loop_kernel(name).expect("a loop kernel");
        check(name, generated, k as u64);
        let compiled = RunTimeKernel::compile(program("../../derivations", name)).unwrap();
        check(&format!("{name} at run time"), &compiled, k as u64);
    }
}

/// A program that does not validate is refused, and nothing runs: a load
/// past its tensor, a buffer past the stage's scratch, a data row read by
/// the regularizer, a Hessian term's factor the runtime cannot read, a
/// Hessian term below the diagonal.
#[test]
fn invalid_loop_ir_is_refused_before_it_is_compiled() {
    let valid = program("../../derivations", "logistic_regression");
    fn first_load(p: &mut LoopProgram) -> &mut Load {
        let step = p
            .sample
            .steps
            .iter_mut()
            .find(|s| !s.inputs.is_empty())
            .unwrap();
        &mut step.inputs[0]
    }
    let mut past_the_tensor = valid.clone();
    if let Load::Entry { index, .. } = first_load(&mut past_the_tensor) {
        index.iter_mut().for_each(|a| *a = Axis::Fixed(1_000_000));
    }
    let mut past_the_scratch = valid.clone();
    let buffer = past_the_scratch
        .tensors
        .iter()
        .position(|t| t.source == Source::Scratch)
        .unwrap();
    past_the_scratch.tensors[buffer].offset = 1 << 40;
    let mut row_in_regularizer = valid.clone();
    let row = valid
        .tensors
        .iter()
        .position(|t| t.source == Source::Row && t.shape.len() == 1)
        .unwrap();
    let step = row_in_regularizer
        .regularizer
        .steps
        .iter_mut()
        .find(|s| s.loops.len() == 1)
        .unwrap();
    step.inputs.push(Load::Entry {
        tensor: row,
        index: vec![Axis::Loop { var: 0, shift: 0 }],
    });
    // Hessian factors: the data row in the regularizer's λ·δ term, a
    // scalar where the term's rows are w's ten, a parameter as a weight.
    let tensor = |name: &str| valid.tensors.iter().position(|t| t.name == name);
    let (x, y, b) = (tensor("x"), tensor("y"), tensor("b"));
    let with_factor = |regularizer: bool, set: &dyn Fn(&mut Factor, &mut Factor)| {
        let mut bad = valid.clone();
        let stage = if regularizer {
            &mut bad.regularizer
        } else {
            &mut bad.sample
        };
        let Some(HessianTerm::Product { weight, u, .. }) = stage.hessian.first_mut() else {
            panic!("logistic regression's first Hessian term is a product")
        };
        set(weight, u);
        bad
    };
    let factor_row_in_regularizer = with_factor(true, &|_, u| *u = x);
    let factor_of_the_wrong_shape = with_factor(false, &|_, u| *u = y);
    let parameter_as_weight = with_factor(false, &|w, _| *w = b);
    for (what, bad) in [
        ("a load past its tensor", past_the_tensor),
        ("a buffer past the scratch", past_the_scratch),
        ("a data row in the regularizer", row_in_regularizer),
        (
            "a Hessian factor from the data row in the regularizer",
            factor_row_in_regularizer,
        ),
        (
            "a Hessian factor of the wrong shape",
            factor_of_the_wrong_shape,
        ),
        ("a parameter as a Hessian weight", parameter_as_weight),
    ] {
        match RunTimeKernel::compile(bad) {
            Err(JitError::Invalid(e)) => assert!(!e.0.is_empty(), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // A term in a block below the diagonal (the passes sum only the upper
    // blocks and mirror the whole upper triangle).
    let mut below = valid.clone();
    let term = below
        .sample
        .hessian
        .iter_mut()
        .find(|h| h.block().0 != h.block().1)
        .expect("logistic regression has a (w, b) term");
    match term {
        HessianTerm::Product { row, col, .. } | HessianTerm::Dense { row, col, .. } => {
            std::mem::swap(row, col)
        }
    }
    match RunTimeKernel::compile(below) {
        Err(JitError::Invalid(e)) => assert!(e.0.contains("below the diagonal"), "{e:?}"),
        other => panic!("a block below the diagonal: {other:?}"),
    }
    assert!(RunTimeKernel::compile(valid).is_ok());
}

/// Sanity of the comparison itself: the run-time kernel's loss moves with
/// θ (a kernel that returned a constant would agree with nothing).
#[test]
fn a_run_time_kernel_computes_the_loss_of_its_model() {
    let compiled =
        RunTimeKernel::compile(program("../../derivations", "logistic_regression")).unwrap();
    let p = compiled.n_params();
    let data = [0.5; 11 * 3];
    let c = compiled.default_constants().to_vec();
    let zero = vec![0.0; p];
    let f0 = compiled.loss(At::new(&zero, &c, &data));
    // θ = 0: σ(0) = 1/2 on every row, so ℓ = log 2 whatever y.
    assert!(close(f0, std::f64::consts::LN_2, 1e-15), "{f0}");
    let mut g = vec![0.0; p];
    compiled.loss_grad(At::new(&zero, &c, &data), &mut g);
    let mut h = vec![0.0; p * p];
    let mut g2 = vec![0.0; p];
    compiled.loss_grad_hess(At::new(&zero, &c, &data), &mut g2, &mut h);
    assert_eq!(g, g2);
}

/// Softmax scores in the thousands (e^{zₖ} far beyond f64's range): the
/// build-time kernel, the run-time compiled one and the interpreter all
/// take the scores' maximum out (the lowering's log-sum-exp), so the loss,
/// the gradient, the Hessian and its products are finite and agree.
#[test]
fn softmax_kernels_keep_their_range_at_scores_in_the_thousands() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for name in ["softmax_regression", "digits"] {
        let interpreted = program("../../derivations", name);
        let compiled = RunTimeKernel::compile(interpreted.clone()).unwrap();
        let built = LOOP_REGISTRY.iter().find(|k| k.name() == name).unwrap();
        let p = built.n_params();
        let cols = interpreted.data.len();
        let n = 40;
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-3000.0..3000.0)).collect();
        let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
        let c = built.default_constants().to_vec();
        let at = At::new(&theta, &c, &data);
        let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
        let f = interpreted.evaluate(hessforge_ir::Outputs::LossGradHess, at, &mut g, &mut h);
        assert!(f.is_finite() && f > 100.0, "{name}: ℓ = {f}");
        assert!(g.iter().chain(&h).all(|x| x.is_finite()), "{name}");
        for k in [&compiled as &dyn Kernel, *built] {
            let (fk, gk, hk) = pass(k, at);
            agree(&format!("{name}: loss"), &[fk], &[f], 1e-12);
            agree(&format!("{name}: gradient"), &gk, &g, 1e-12);
            agree(&format!("{name}: Hessian"), &hk, &h, 1e-12);
            let v: Vec<f64> = (0..p).map(|j| ((j * 7) % 5) as f64 - 2.0).collect();
            let mut hv = vec![0.0; p];
            k.hess_vec(at, &v, &mut hv);
            assert!(hv.iter().all(|x| x.is_finite()), "{name}: ∇²L·v");
        }
    }
}
