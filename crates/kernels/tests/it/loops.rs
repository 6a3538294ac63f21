//! The kernels in index form (generated from the loop IR) against the
//! scalar programs of the same models (the scalarized engine, interpreted)
//! and against the loop IR's interpreter: loss, gradient and Hessian over
//! all rows, a mini-batch and the parallel pass, and Hessian–vector
//! products, to 1e-12; the passes in lanes against rows one at a time; the
//! lane sums written out into each kernel against the shared sweep, to the
//! bit.

use crate::close;
use hessforge_ir::Outputs;
use hessforge_ir::loop_ir::Steps;
use hessforge_kernels::{At, Kernel, LANES, LOOP_REGISTRY, LoopModel, REGISTRY, Rows, kernel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn pass(k: &dyn Kernel, at: At<'_>) -> (f64, Vec<f64>, Vec<f64>) {
    let p = k.n_params();
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    let f = k.loss_grad_hess(at, &mut g, &mut h);
    (f, g, h)
}

#[test]
fn every_model_with_a_tensor_parameter_has_loop_kernels() {
    let names: Vec<&str> = LOOP_REGISTRY.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "digits",
            "linear_regression",
            "logistic_regression",
            "mlp_tanh",
            "softmax_regression"
        ]
    );
}

/// Every built-in with a tensor parameter runs on its kernel in index form:
/// the registry's kernel is the loop kernel.
#[test]
fn the_builtins_with_tensor_parameters_run_on_their_loop_kernels() {
    for looped in LOOP_REGISTRY {
        let main = kernel(looped.name()).unwrap();
        assert!(std::ptr::addr_eq(main, *looped), "{}", looped.name());
    }
    assert_eq!(REGISTRY.len(), 9);
}

/// The scalar programs' loss, gradient and Hessian (the oracle: the
/// scalarized derivation, interpreted), as a kernel pass writes them.
fn scalar_pass(programs: &hessforge_ir::ModelPrograms, at: At<'_>) -> (f64, Vec<f64>, Vec<f64>) {
    let p = at.theta.len();
    let mut out = vec![0.0; Outputs::LossGradHess.len(p)];
    programs.evaluate(Outputs::LossGradHess, at, &mut out);
    let mut h = vec![0.0; p * p];
    hessforge_ir::unpack_upper(p, &out[1 + p..], &mut h);
    (out[0], out[1..1 + p].to_vec(), h)
}

#[test]
fn loop_kernels_agree_with_the_scalar_programs_and_the_interpreter() {
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    for looped in LOOP_REGISTRY {
        let name = looped.name();
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../derivations")
            .join(format!("{name}.toml"));
        let model = hessforge_spec::load_file(&file).unwrap();
        let interpreted = hessforge_symbolic::lower_loop_ir(&model).unwrap();
        let p = looped.n_params();
        // The scalarized derivation is the oracle up to 64 parameters;
        // digits (P = 650) is checked against its own dense pass (its ∇²L·v
        // takes another path, the δ-pattern terms by their keys) and the
        // interpreter, and against finite differences in agreement.rs.
        let scalar = (p <= 64).then(|| {
            hessforge_symbolic::lower(&hessforge_symbolic::derive_scalar(&model).unwrap()).unwrap()
        });
        if let Some(scalar) = &scalar {
            assert_eq!(looped.param_names(), scalar.params, "{name}");
        }
        let cols = model.data.len();
        let n = 300;
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
        let c = looped.default_constants().to_vec();
        let batch = [5, 0, 5, 299, 17];
        for rows in [Rows::All, Rows::Selected(&batch), Rows::Parallel] {
            let at = At::new(&theta, &c, &data).rows(rows);
            let (f, g, h) = pass(*looped, at);
            let (f0, g0, h0) = match &scalar {
                Some(scalar) => scalar_pass(scalar, at),
                None => (f, g.clone(), h.clone()),
            };
            assert!(close(f, f0, 1e-12), "{name}: loss {f} vs {f0}");
            for j in 0..p {
                assert!(
                    close(g[j], g0[j], 1e-12),
                    "{name}: grad {j}: {} vs {}",
                    g[j],
                    g0[j]
                );
            }
            for j in 0..p * p {
                assert!(
                    close(h[j], h0[j], 1e-12),
                    "{name}: hess {j}: {} vs {}",
                    h[j],
                    h0[j]
                );
            }
            // The interpreter of the same loop IR (one row at a time, where
            // the kernel takes eight rows in lanes: sums in another order).
            let (mut gi, mut hi) = (vec![0.0; p], vec![0.0; p * p]);
            let fi = interpreted.evaluate(Outputs::LossGradHess, at, &mut gi, &mut hi);
            assert!(close(fi, f, 1e-12), "{name}: interpreter's loss");
            assert!(
                gi.iter().zip(&g).all(|(a, b)| close(*a, *b, 1e-12)),
                "{name}"
            );
            assert!(
                hi.iter().zip(&h).all(|(a, b)| close(*a, *b, 1e-12)),
                "{name}"
            );
            let v: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut hv = vec![0.0; p];
            let fv = looped.hess_vec(at, &v, &mut hv);
            assert!(close(fv, f0, 1e-12), "{name}: loss of hess_vec");
            for j in 0..p {
                let want: f64 = (0..p).map(|k| h0[j * p + k] * v[k]).sum();
                assert!(
                    close(hv[j], want, 1e-11),
                    "{name}: (Hv)_{j}: {} vs {want}",
                    hv[j]
                );
            }
            // diag(H) from the diagonal entries of the Hessian terms (over
            // all rows: a preconditioner's).
            if let Rows::All = rows {
                let mut diag = vec![f64::NAN; p];
                let fd = looped.hess_diag(at, &mut diag);
                assert!(close(fd, f0, 1e-12), "{name}: loss of hess_diag");
                for j in 0..p {
                    assert!(
                        close(diag[j], h0[j * p + j], 1e-12),
                        "{name}: H_{j}{j}: {} vs {}",
                        diag[j],
                        h0[j * p + j]
                    );
                }
            }
            let lg = looped.loss_grad(at, &mut gi);
            assert_eq!((lg, &gi), (f, &g), "{name}: loss_grad");
            assert_eq!(looped.loss(at), f, "{name}: loss");
        }
    }
}

/// The kernels this crate compiled are the ones committed in `generated/`
/// (made by `hessforge generate` in another process, after other work: the
/// generated code does not depend on what the process did before).
#[test]
fn the_compiled_kernels_are_the_committed_ones() {
    let generated = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../generated");
    for k in LOOP_REGISTRY {
        let file = format!("{}.loops.rs", k.name());
        let built = std::fs::read_to_string(Path::new(env!("OUT_DIR")).join(&file)).unwrap();
        let committed = std::fs::read_to_string(generated.join(&file)).unwrap();
        assert!(
            built == committed,
            "{file}: the build script's differs from generated/"
        );
    }
}

/// A parallel pass over many chunks (more than are summed at once): the
/// same bits with one thread and with two, and the serial pass's values.
#[test]
fn the_parallel_pass_of_a_loop_kernel_does_not_depend_on_the_threads() {
    use hessforge_kernels::runtime::PARALLEL_CHUNK_ROWS;
    let looped = hessforge_kernels::loop_kernel("logistic_regression").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(43);
    let (p, cols) = (looped.n_params(), looped.n_data());
    let n = 9 * PARALLEL_CHUNK_ROWS + 17;
    let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let data: Vec<f64> = (0..n * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
    let c = looped.default_constants().to_vec();
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| pass(looped, At::new(&theta, &c, &data).rows(Rows::Parallel)))
    };
    let (one, two) = (on(1), on(2));
    assert_eq!(one, two);
    let (f, g, h) = pass(looped, At::new(&theta, &c, &data));
    assert!(close(one.0, f, 1e-12));
    assert!(one.1.iter().zip(&g).all(|(a, b)| close(*a, *b, 1e-12)));
    assert!(one.2.iter().zip(&h).all(|(a, b)| close(*a, *b, 1e-12)));
}

/// A generated model's steps, eight rows in lanes (`lanes`) or one row at
/// a time, with the Hessian terms' additions written out
/// ([`LoopModel::lane_sums`], [`LoopModel::row_terms`]) or left to the
/// shared code, counting the blocks of rows (or rows) the written-out code
/// took.
struct WrittenOut<M> {
    lanes: bool,
    written_out: bool,
    taken: std::cell::Cell<usize>,
    model: std::marker::PhantomData<M>,
}

impl<M: LoopModel> WrittenOut<M> {
    fn count(&self, took: bool) -> bool {
        self.taken.set(self.taken.get() + usize::from(took));
        took
    }
}

impl<M: LoopModel> Steps for WrittenOut<M> {
    fn sample(&self, level: Outputs, t: &[f64], x: &[f64], c: &[f64], s: &mut [f64]) {
        M::sample::<1>(level, t, x, c, s);
    }
    fn regularizer(&self, level: Outputs, t: &[f64], c: &[f64], s: &mut [f64]) {
        M::regularizer(level, t, c, s);
    }
    fn lanes(&self) -> usize {
        if self.lanes { LANES } else { 0 }
    }
    fn sample_lanes(&self, level: Outputs, t: &[f64], x: &[f64], c: &[f64], s: &mut [f64]) {
        M::sample::<LANES>(level, t, x, c, s);
    }
    fn writes_lane_sums(&self) -> bool {
        self.written_out && M::WRITES_LANE_SUMS
    }
    fn lane_sums(&self, s: &[f64], x: &[f64], sums: &mut [f64]) -> bool {
        self.count(M::lane_sums(s, x, sums))
    }
    fn writes_row_terms(&self) -> bool {
        self.written_out && M::WRITES_ROW_TERMS
    }
    fn row_terms(&self, s: &[f64], x: &[f64], h: &mut [f64]) -> bool {
        self.count(M::row_terms(s, x, h))
    }
}

/// A pass of L, ∇L and ∇²L over `n` seeded rows, in lanes or not, with the
/// terms written out or not: its bits, and what the written-out code took.
fn written_out_pass<M: LoopModel>(lanes: bool, written_out: bool, n: usize) -> (Vec<u64>, usize) {
    let p = M::N_PARAMS;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let data: Vec<f64> = (0..n * M::N_DATA)
        .map(|_| rng.gen_range(-1.5..1.5))
        .collect();
    let steps = WrittenOut::<M> {
        lanes,
        written_out,
        taken: std::cell::Cell::new(0),
        model: std::marker::PhantomData,
    };
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    let at = At::new(&theta, M::DEFAULT_CONSTANTS, &data);
    let f = M::plan().evaluate_with(&steps, Outputs::LossGradHess, at, &mut g, &mut h);
    let bits = std::iter::once(f)
        .chain(g)
        .chain(h)
        .map(f64::to_bits)
        .collect();
    (bits, steps.taken.get())
}

/// The written-out additions against the shared code's on model `M`: a
/// pass of `n` rows, in lanes or not, whose written-out code takes `taken`
/// blocks of rows (or rows).
fn same_bits_written_out<M: LoopModel>(lanes: bool, n: usize, taken: usize) {
    let (shared, none) = written_out_pass::<M>(lanes, false, n);
    let (written, took) = written_out_pass::<M>(lanes, true, n);
    assert_eq!(none, 0);
    assert_eq!(took, taken, "{}: what the written-out code took", M::NAME);
    assert!(shared == written, "{}: not the shared code's bits", M::NAME);
}

/// The lane-summed Hessian terms written out into each generated kernel
/// add what the shared sweep adds, in its order: the same bits over 37
/// rows (four blocks of eight in lanes, five rows one at a time), on every
/// built-in loop kernel (and each one's written-out code really runs).
#[test]
fn written_out_lane_sums_give_the_shared_sweeps_bits() {
    fn check<M: LoopModel>() {
        same_bits_written_out::<M>(true, 37, 4);
    }
    check::<hessforge_kernels::digits::Digits>();
    check::<hessforge_kernels::linear_regression::LinearRegression>();
    check::<hessforge_kernels::logistic_regression::LogisticRegression>();
    check::<hessforge_kernels::mlp_tanh::MlpTanh>();
    check::<hessforge_kernels::softmax_regression::SoftmaxRegression>();
}

/// The Hessian terms a short pass adds one row at a time, written out into
/// each generated kernel, add what the shared code adds, in its order: the
/// same bits (a pass of one row, as one call with one sample, and of
/// five), on every built-in loop kernel.
#[test]
fn written_out_row_terms_give_the_shared_codes_bits() {
    fn check<M: LoopModel>() {
        for n in [1, 5] {
            same_bits_written_out::<M>(false, n, n);
        }
    }
    check::<hessforge_kernels::digits::Digits>();
    check::<hessforge_kernels::linear_regression::LinearRegression>();
    check::<hessforge_kernels::logistic_regression::LogisticRegression>();
    check::<hessforge_kernels::mlp_tanh::MlpTanh>();
    check::<hessforge_kernels::softmax_regression::SoftmaxRegression>();
}

/// A short pass written out whole into a generated kernel
/// ([`LoopModel::short_pass`]: the scratch on the stack, each row's steps,
/// fills, loss, gradient and Hessian terms) gives the shared code's bits:
/// one call with one sample, five rows, three rows of nine selected and
/// none, at each level, through the kernel (which evaluates such a pass
/// whole, the outputs' earlier contents overwritten), against the same
/// pass run by the shared code. The models whose short pass gathers an
/// outer-product gradient (`digits`, `softmax_regression`) have none and
/// keep the shared code.
#[test]
fn written_out_short_passes_give_the_shared_codes_bits() {
    fn bits(f: f64, g: &[f64], h: &[f64]) -> Vec<u64> {
        std::iter::once(f)
            .chain(g.iter().copied())
            .chain(h.iter().copied())
            .map(f64::to_bits)
            .collect()
    }
    fn check<M: LoopModel>(writes: bool) {
        let k = hessforge_kernels::loop_kernel(M::NAME).expect("a loop kernel");
        let (p, cols) = (M::N_PARAMS, M::N_DATA);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let data: Vec<f64> = (0..9 * cols).map(|_| rng.gen_range(-1.5..1.5)).collect();
        let c = M::DEFAULT_CONSTANTS;
        let shared = WrittenOut::<M> {
            lanes: false,
            written_out: false,
            taken: std::cell::Cell::new(0),
            model: std::marker::PhantomData,
        };
        assert_eq!(M::WRITES_SHORT_PASS, writes, "{}", M::NAME);
        let selected = [8, 0, 3];
        let passes = [
            At::new(&theta, c, &data[..cols]),
            At::new(&theta, c, &data[..5 * cols]),
            At::new(&theta, c, &data).rows(Rows::Selected(&selected)),
            At::new(&theta, c, &data).rows(Rows::Selected(&[])),
        ];
        for at in passes {
            let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
            let (mut g2, mut h2) = (vec![0.0; p], vec![0.0; p * p]);
            for level in [Outputs::Loss, Outputs::LossGrad, Outputs::LossGradHess] {
                // Whatever the outputs held before is overwritten (a
                // short pass evaluated whole clears what it adds into and
                // mirrors the rest).
                g.fill(7.5);
                h.fill(f64::NAN);
                let f = match level {
                    Outputs::Loss => k.loss(at),
                    Outputs::LossGrad => k.loss_grad(at, &mut g),
                    Outputs::LossGradHess => k.loss_grad_hess(at, &mut g, &mut h),
                };
                let f2 = M::plan().evaluate_with(&shared, level, at, &mut g2, &mut h2);
                let (g, h, g2, h2) = match level.rank() {
                    0 => (&[][..], &[][..], &[][..], &[][..]),
                    1 => (&g[..], &[][..], &g2[..], &[][..]),
                    _ => (&g[..], &h[..], &g2[..], &h2[..]),
                };
                assert!(
                    bits(f, g, h) == bits(f2, g2, h2),
                    "{} at {level:?}: not the shared code's bits",
                    M::NAME
                );
            }
        }
        // The written-out pass runs (and reports its rows).
        let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
        let rows = data.chunks_exact(cols).take(5);
        let level = Outputs::LossGradHess;
        let taken = M::short_pass(level, &theta, c, rows, &mut g, &mut h).map(|(_, n)| n);
        assert_eq!(taken, writes.then_some(5), "{}", M::NAME);
        // Outputs shorter than the model's: nothing added.
        let rows = data.chunks_exact(cols).take(1);
        assert_eq!(M::short_pass(level, &theta, c, rows, &mut g, &mut []), None);
    }
    check::<hessforge_kernels::digits::Digits>(false);
    check::<hessforge_kernels::linear_regression::LinearRegression>(true);
    check::<hessforge_kernels::logistic_regression::LogisticRegression>(true);
    check::<hessforge_kernels::mlp_tanh::MlpTanh>(true);
    check::<hessforge_kernels::softmax_regression::SoftmaxRegression>(false);
}
