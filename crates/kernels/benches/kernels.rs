//! One full pass of logistic regression (10 features + bias) over N seeded
//! synthetic samples — X ~ N(0, 1), w = linspace(−1, 1, 10), b = 0.5,
//! y ~ Bernoulli(σ(Xw + b)) — single thread, float64:
//!
//! - the streaming floor: summing the same N×11 array once (eight
//!   accumulators, AVX2 when the CPU has it);
//! - a straightforward hand-written Rust implementation of the closed forms;
//! - the compiled kernel (in index form: loops; loss+gradient,
//!   loss+gradient+Hessian), and with `--features bench-models` the
//!   straight-line kernel of the same model written with scalar parameters;
//! - the IR interpreter;
//! - model files with scalar parameters only, their straight-line programs
//!   compiled at run time against interpreted (`-- scalar_files`).
//!
//! And one sample of `mlp_tanh` (P = 17). `cargo bench -p hessforge-kernels`

use divan::{Bencher, black_box};
use hessforge_ir::{ModelPrograms, Outputs};
use hessforge_kernels::{At, Kernel, logistic_regression::LogisticRegression, mlp_tanh::MlpTanh};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
const F: usize = 10;
const P: usize = F + 1;
const LAMBDA: f64 = 0.01;

fn main() {
    divan::main();
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn logistic_data(n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let w: Vec<f64> = (0..F)
        .map(|i| -1.0 + 2.0 * i as f64 / (F - 1) as f64)
        .collect();
    let mut data = Vec::with_capacity(n * P);
    for _ in 0..n {
        let x: Vec<f64> = (0..F).map(|_| StandardNormal.sample(&mut rng)).collect();
        let z: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() + 0.5;
        data.extend(&x);
        data.push(f64::from(u8::from(rng.gen_bool(sigmoid(z)))));
    }
    data
}

fn theta() -> [f64; P] {
    let mut t = [0.0; P];
    for (i, v) in t.iter_mut().enumerate() {
        *v = 0.1 * (i as f64 - 5.0);
    }
    t
}

/// Sum with eight independent accumulators, so the adds overlap and the
/// compiler vectorises them: bound by memory bandwidth, not add latency.
#[inline(always)]
fn wide_sum(data: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let chunks = data.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// The same, compiled for AVX2 (the C references use `-march=native`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn wide_sum_avx2(data: &[f64]) -> f64 {
    wide_sum(data)
}

fn floor_sum(data: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { wide_sum_avx2(data) };
    }
    wide_sum(data)
}

/// The streaming floor: summing the N×11 array once (AVX2 when available).
#[divan::bench(args = SIZES)]
fn streaming_floor(bencher: Bencher, n: usize) {
    let data = logistic_data(n);
    bencher.bench(|| floor_sum(black_box(&data)));
}

/// The closed forms, written by hand: one pass, scalar loop (compiled for
/// AVX2 when the CPU has it, like the kernels and the `-march=native` C
/// references; the compiler may vectorise its inner loops).
fn hand_written(
    theta: &[f64; P],
    data: &[f64],
    grad: &mut [f64; P],
    hess: Option<&mut [f64; P * P]>,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { hand_written_avx2(theta, data, grad, hess) };
    }
    hand_written_portable(theta, data, grad, hess)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn hand_written_avx2(
    theta: &[f64; P],
    data: &[f64],
    grad: &mut [f64; P],
    hess: Option<&mut [f64; P * P]>,
) -> f64 {
    hand_written_portable(theta, data, grad, hess)
}

#[inline(always)]
fn hand_written_portable(
    theta: &[f64; P],
    data: &[f64],
    grad: &mut [f64; P],
    hess: Option<&mut [f64; P * P]>,
) -> f64 {
    let n = data.len() / P;
    let mut loss = 0.0;
    grad.fill(0.0);
    let mut h = [0.0; P * P];
    let with_hess = hess.is_some();
    for row in data.chunks_exact(P) {
        let mut z = theta[F];
        for j in 0..F {
            z += theta[j] * row[j];
        }
        let y = row[F];
        // softplus(z) − y z, stable
        loss += z.max(0.0) + (-z.abs()).exp().ln_1p() - y * z;
        let p = sigmoid(z);
        let r = p - y;
        for j in 0..F {
            grad[j] += r * row[j];
        }
        grad[F] += r;
        if with_hess {
            let w = p * (1.0 - p);
            for i in 0..P {
                let xi = if i < F { row[i] } else { 1.0 };
                for j in i..P {
                    let xj = if j < F { row[j] } else { 1.0 };
                    h[i * P + j] += w * xi * xj;
                }
            }
        }
    }
    let inv = 1.0 / n as f64;
    loss *= inv;
    grad.iter_mut().for_each(|g| *g *= inv);
    let mut reg = 0.0;
    for j in 0..F {
        reg += theta[j] * theta[j];
        grad[j] += LAMBDA * theta[j];
    }
    if let Some(hess) = hess {
        for i in 0..P {
            for j in i..P {
                let v = h[i * P + j] * inv + if i == j && i < F { LAMBDA } else { 0.0 };
                hess[i * P + j] = v;
                hess[j * P + i] = v;
            }
        }
    }
    loss + 0.5 * LAMBDA * reg
}

#[divan::bench(args = SIZES)]
fn hand_written_loss_grad(bencher: Bencher, n: usize) {
    let data = logistic_data(n);
    let t = theta();
    let mut g = [0.0; P];
    bencher.bench_local(|| hand_written(&t, black_box(&data), &mut g, None));
}

#[divan::bench(args = SIZES)]
fn hand_written_loss_grad_hess(bencher: Bencher, n: usize) {
    let data = logistic_data(n);
    let t = theta();
    let (mut g, mut h) = ([0.0; P], [0.0; P * P]);
    bencher.bench_local(|| hand_written(&t, black_box(&data), &mut g, Some(&mut h)));
}

/// A logistic-regression kernel's L + ∇ over N samples.
fn logistic_loss_grad<K: Kernel + ?Sized>(bencher: Bencher, n: usize, kernel: &K) {
    let data = logistic_data(n);
    let t = theta();
    let mut g = [0.0; P];
    bencher.bench_local(|| kernel.loss_grad(At::new(&t, &[LAMBDA], black_box(&data)), &mut g));
}

/// A logistic-regression kernel's L + ∇ + H over N samples.
fn logistic_loss_grad_hess<K: Kernel + ?Sized>(bencher: Bencher, n: usize, kernel: &K) {
    let data = logistic_data(n);
    let t = theta();
    let (mut g, mut h) = ([0.0; P], [0.0; P * P]);
    bencher.bench_local(|| {
        kernel.loss_grad_hess(At::new(&t, &[LAMBDA], black_box(&data)), &mut g, &mut h)
    });
}

#[divan::bench(args = SIZES)]
fn compiled_loss_grad(bencher: Bencher, n: usize) {
    logistic_loss_grad(bencher, n, &LogisticRegression);
}

#[divan::bench(args = SIZES)]
fn compiled_loss_grad_hess(bencher: Bencher, n: usize) {
    logistic_loss_grad_hess(bencher, n, &LogisticRegression);
}

fn programs(name: &str) -> ModelPrograms {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../derivations/{name}.toml"));
    let model = hessforge_spec::load_file(&path).expect("derivation loads");
    hessforge_symbolic::lower(&hessforge_symbolic::derive_scalar(&model).expect("derives"))
        .expect("lowers")
}

#[divan::bench(args = SIZES, sample_count = 10)]
fn interpreter_loss_grad_hess(bencher: Bencher, n: usize) {
    let data = logistic_data(n);
    let progs = programs("logistic_regression");
    let t = theta();
    let mut out = vec![0.0; Outputs::LossGradHess.len(P)];
    bencher.bench_local(|| {
        progs.evaluate(
            Outputs::LossGradHess,
            hessforge_ir::At::new(&t, &[LAMBDA], black_box(&data)),
            &mut out,
        )
    });
}

/// An `mlp_tanh` kernel's L + ∇ + H over `data` (3 columns) at θ = 0.3.
fn mlp_loss_grad_hess<K: Kernel + ?Sized>(bencher: Bencher, data: &[f64], kernel: &K) {
    let t = [0.3; 17];
    let (mut g, mut h) = ([0.0; 17], [0.0; 17 * 17]);
    bencher
        .bench_local(|| kernel.loss_grad_hess(At::new(&t, &[], black_box(data)), &mut g, &mut h));
}

/// One sample of the network's 2 inputs and target.
const MLP_SAMPLE: [f64; 3] = [0.4, -0.7, 0.25];

#[divan::bench]
fn mlp_tanh_one_sample_loss_grad_hess(bencher: Bencher) {
    mlp_loss_grad_hess(bencher, &MLP_SAMPLE, &MlpTanh);
}

/// 10 000 samples of the network's 2 inputs and target, from a seed.
fn mlp_data() -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..10_000 * 3)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

/// `mlp_tanh` (P = 17) L + ∇ + H over 10 000 samples, per sample in a pass
/// (divide by 10⁴).
#[divan::bench]
fn mlp_tanh_pass_loss_grad_hess(bencher: Bencher) {
    mlp_loss_grad_hess(bencher, &mlp_data(), &MlpTanh);
}

/// The built-ins compiled at run time from their derivation files
/// ([`RunTimeKernel`]: the loop IR through Cranelift), on the same data as
/// their build-time kernels above: `-- run_time`.
mod run_time {
    use super::*;
    use hessforge_kernels::RunTimeKernel;

    /// `derivations/NAME.toml` loaded, lowered to the loop IR and compiled.
    pub fn compiled(name: &str) -> RunTimeKernel {
        compiled_file(&format!("../../derivations/{name}.toml"))
    }

    /// A derivation file (relative to this crate) loaded, lowered to the
    /// loop IR and compiled.
    pub fn compiled_file(file: &str) -> RunTimeKernel {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let model = hessforge_spec::load_file(&path).expect("derivation loads");
        let program = hessforge_symbolic::lower_loop_ir(&model).expect("lowers");
        RunTimeKernel::compile(program).expect("compiles")
    }

    #[divan::bench(args = SIZES)]
    fn loss_grad(bencher: Bencher, n: usize) {
        logistic_loss_grad(bencher, n, &compiled("logistic_regression"));
    }

    #[divan::bench(args = SIZES)]
    fn loss_grad_hess(bencher: Bencher, n: usize) {
        logistic_loss_grad_hess(bencher, n, &compiled("logistic_regression"));
    }

    #[divan::bench]
    fn mlp_tanh_one_sample_loss_grad_hess(bencher: Bencher) {
        mlp_loss_grad_hess(bencher, &MLP_SAMPLE, &compiled("mlp_tanh"));
    }

    #[divan::bench]
    fn mlp_tanh_pass_loss_grad_hess(bencher: Bencher) {
        mlp_loss_grad_hess(bencher, &mlp_data(), &compiled("mlp_tanh"));
    }

    /// Preparation: the file loaded, lowered to the loop IR and compiled.
    #[divan::bench(args = ["logistic_regression", "mlp_tanh", "softmax_regression"], sample_count = 20)]
    fn prepare(bencher: Bencher, name: &str) {
        bencher.bench_local(|| compiled(name));
    }

    /// Of which the compilation of the loop IR (model and tangent model).
    #[divan::bench(args = ["logistic_regression", "mlp_tanh", "softmax_regression"], sample_count = 20)]
    fn compile_only(bencher: Bencher, name: &str) {
        let program = compiled(name).program().clone();
        bencher.bench_local(|| RunTimeKernel::compile(program.clone()).expect("compiles"));
    }
}

/// Model files with scalar parameters only (the classic problems and NIST's):
/// compiling all six straight-line programs against one L + ∇ + H pass,
/// interpreted and compiled — over 100 rows (every value 0.3) for a file
/// with data, at θ = 0.5: the measurements behind the tier-up count
/// (`hessforge_kernels::TIER_UP_RUNS`). `-- scalar_files`.
mod scalar_files {
    use super::*;
    use hessforge_kernels::CompiledStraightLine;

    const FILES: [&str; 9] = [
        "problems/osborne2",
        "problems/watson9",
        "problems/gulf",
        "problems/meyer",
        "nist/hahn1",
        "nist/mgh09",
        "nist/bennett5",
        "nist/misra1a",
        "../derivations/rosenbrock",
    ];

    /// `tests/FILE.toml` derived and lowered.
    fn programs(file: &str) -> ModelPrograms {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../tests/{file}.toml"));
        let model = hessforge_spec::load_file(&path).expect("derivation loads");
        let derivation = hessforge_symbolic::derive_scalar(&model).expect("derives");
        hessforge_symbolic::lower(&derivation).expect("lowers")
    }

    /// An L + ∇ + H pass of `evaluate` over the file's rows.
    fn pass(bencher: Bencher, programs: &ModelPrograms, evaluate: impl Fn(At<'_>, &mut [f64])) {
        let rows = if programs.data.is_empty() { 0 } else { 100 };
        let theta = vec![0.5; programs.params.len()];
        let data = vec![0.3; rows * programs.data.len()];
        let c = programs.constant_defaults.clone();
        let mut out = vec![0.0; Outputs::LossGradHess.len(theta.len())];
        bencher.bench_local(|| evaluate(At::new(&theta, &c, black_box(&data)), &mut out));
    }

    #[divan::bench(args = FILES, sample_count = 5)]
    fn compile_all(bencher: Bencher, file: &str) {
        let programs = programs(file);
        bencher.bench_local(|| CompiledStraightLine::compile(programs.clone()).expect("compiles"));
    }

    #[divan::bench(args = FILES)]
    fn interpreted_pass(bencher: Bencher, file: &str) {
        let programs = programs(file);
        pass(bencher, &programs, |at, out| {
            programs.evaluate(Outputs::LossGradHess, at, out)
        });
    }

    #[divan::bench(args = FILES)]
    fn compiled_pass(bencher: Bencher, file: &str) {
        let programs = programs(file);
        let compiled = CompiledStraightLine::compile(programs.clone()).expect("compiles");
        pass(bencher, &programs, |at, out| {
            compiled.evaluate(Outputs::LossGradHess, at, out)
        });
    }
}

/// The same models written with scalar parameters only
/// (`benches/models/logistic_scalar.toml`, `mlp_tanh_scalar.toml`), so
/// they get the straight-line kernel the built-ins had before they moved
/// to the kernels in index form: `cargo bench -p hessforge-kernels
/// --features bench-models --bench kernels -- straight_line`.
#[cfg(feature = "bench-models")]
mod straight_line {
    use super::*;
    use hessforge_kernels::{logistic_scalar::LogisticScalar, mlp_tanh_scalar::MlpTanhScalar};

    #[divan::bench(args = SIZES)]
    fn loss_grad(bencher: Bencher, n: usize) {
        logistic_loss_grad(bencher, n, &LogisticScalar);
    }

    #[divan::bench(args = SIZES)]
    fn loss_grad_hess(bencher: Bencher, n: usize) {
        logistic_loss_grad_hess(bencher, n, &LogisticScalar);
    }

    #[divan::bench]
    fn mlp_tanh_one_sample_loss_grad_hess(bencher: Bencher) {
        mlp_loss_grad_hess(bencher, &MLP_SAMPLE, &MlpTanhScalar);
    }

    #[divan::bench]
    fn mlp_tanh_pass_loss_grad_hess(bencher: Bencher) {
        mlp_loss_grad_hess(bencher, &mlp_data(), &MlpTanhScalar);
    }

    /// The same files' straight-line programs compiled at run time
    /// (`CompiledStraightLine`, every program compiled before the first
    /// pass), and interpreted: `-- straight_line::run_time`.
    mod run_time {
        use super::*;
        use hessforge_ir::ModelPrograms;
        use hessforge_kernels::CompiledStraightLine;

        const ROWS: [usize; 2] = [1_000, 100_000];

        /// `benches/models/NAME.toml` derived and lowered.
        fn programs(name: &str) -> ModelPrograms {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("benches/models/{name}.toml"));
            let model = hessforge_spec::load_file(&path).expect("derivation loads");
            let derivation = hessforge_symbolic::derive_scalar(&model).expect("derives");
            hessforge_symbolic::lower(&derivation).expect("lowers")
        }

        fn compiled(name: &str) -> CompiledStraightLine {
            CompiledStraightLine::compile(programs(name)).expect("compiles")
        }

        #[divan::bench(args = ROWS)]
        fn loss_grad(bencher: Bencher, n: usize) {
            logistic_loss_grad(bencher, n, &compiled("logistic_scalar"));
        }

        #[divan::bench(args = ROWS)]
        fn loss_grad_hess(bencher: Bencher, n: usize) {
            logistic_loss_grad_hess(bencher, n, &compiled("logistic_scalar"));
        }

        #[divan::bench]
        fn mlp_tanh_pass_loss_grad_hess(bencher: Bencher) {
            mlp_loss_grad_hess(bencher, &mlp_data(), &compiled("mlp_tanh_scalar"));
        }

        #[divan::bench(args = ROWS)]
        fn interpreted_loss_grad_hess(bencher: Bencher, n: usize) {
            logistic_loss_grad_hess(bencher, n, &programs("logistic_scalar"));
        }

        #[divan::bench]
        fn interpreted_mlp_tanh_pass_loss_grad_hess(bencher: Bencher) {
            mlp_loss_grad_hess(bencher, &mlp_data(), &programs("mlp_tanh_scalar"));
        }

        /// Compiling every program of a model (its six).
        #[divan::bench(args = ["logistic_scalar", "mlp_tanh_scalar"], sample_count = 10)]
        fn compile_only(bencher: Bencher, name: &str) {
            let programs = programs(name);
            bencher
                .bench_local(|| CompiledStraightLine::compile(programs.clone()).expect("compiles"));
        }
    }
}

/// The issue-34 pair on larger models, over 10⁴ seeded rows: a 1 000-feature
/// logistic regression (P = 1 001) and a 64-unit tanh MLP (P = 257), each
/// as a build-time kernel and compiled at run time from the same file:
/// `cargo bench -p hessforge-kernels --features bench-models --bench kernels -- larger`.
#[cfg(feature = "bench-models")]
mod larger {
    use super::run_time::compiled_file as compiled;
    use super::*;
    use hessforge_kernels::{logistic_1000::Logistic1000, mlp_tanh_64::MlpTanh64};

    const ROWS: usize = 10_000;

    fn rows(cols: usize) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        (0..ROWS * cols)
            .map(|k| {
                if k % cols == cols - 1 {
                    f64::from(u8::from(rng.gen_bool(0.5)))
                } else {
                    StandardNormal.sample(&mut rng)
                }
            })
            .collect()
    }

    fn full_pass<K: Kernel + ?Sized>(bencher: Bencher, kernel: &K) {
        let p = kernel.n_params();
        let data = rows(kernel.n_data());
        let theta: Vec<f64> = (0..p).map(|i| 0.01 * ((i % 13) as f64 - 6.0)).collect();
        let c = kernel.default_constants().to_vec();
        let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
        bencher.bench_local(|| {
            kernel.loss_grad_hess(At::new(&theta, &c, black_box(&data)), &mut g, &mut h)
        });
    }

    #[divan::bench(sample_count = 20)]
    fn logistic_1000_build_time(bencher: Bencher) {
        full_pass(bencher, &Logistic1000);
    }

    #[divan::bench(sample_count = 20)]
    fn logistic_1000_run_time(bencher: Bencher) {
        full_pass(bencher, &compiled("benches/models/logistic_1000.toml"));
    }

    #[divan::bench(sample_count = 20)]
    fn mlp_tanh_64_build_time(bencher: Bencher) {
        full_pass(bencher, &MlpTanh64);
    }

    #[divan::bench(sample_count = 20)]
    fn mlp_tanh_64_run_time(bencher: Bencher) {
        full_pass(bencher, &compiled("benches/models/mlp_tanh_64.toml"));
    }

    /// Preparation of each file: loaded, its index form derived and
    /// lowered to the loop IR, compiled (the bars: ≤ 50 ms at
    /// P = 1 001, ≤ 200 ms for the 64-unit MLP).
    #[divan::bench(args = ["logistic_1000", "mlp_tanh_64"], sample_count = 20)]
    fn prepare(bencher: Bencher, name: &str) {
        bencher.bench_local(|| compiled(&format!("benches/models/{name}.toml")));
    }
}
