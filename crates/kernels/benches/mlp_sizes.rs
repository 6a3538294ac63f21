//! `mlp_tanh` with 1, 4 and 16 hidden units (P = 5, 17, 65): loss, gradient
//! and Hessian per sample, against CasADi's generated C (`benches/compare`;
//! the results pages have both, timed in turn). Two measurements each: a
//! pass over 1 000 seeded samples (divide by 1 000 for the time per sample:
//! what a pass over a data set pays), and one call with a single sample
//! (which also pays a pass's fixed work: zeroing ∇²L, mirroring its upper
//! triangle; time it with `-- one_sample --sample-size 1000`, since divan
//! otherwise times each call alone against a 20 ns timer).
//! The same three models compiled at run time from their files
//! (`run_time::…`, the loop IR through Cranelift) beside their build-time
//! kernels.
//! `cargo bench -p hessforge-kernels --features bench-models --bench mlp_sizes`

use divan::{Bencher, black_box};
use hessforge_kernels::{
    At, Kernel, mlp_tanh::MlpTanh, mlp_tanh_1::MlpTanh1, mlp_tanh_16::MlpTanh16,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    divan::main();
}

/// Samples per pass in the pass measurements.
const PASS_ROWS: usize = 1_000;

/// 1 000 seeded rows (x₁, x₂, y) with entries in [−1, 1].
fn rows() -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..PASS_ROWS * 3)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect()
}

fn theta(p: usize) -> Vec<f64> {
    (0..p).map(|i| 0.3 * ((i % 7) as f64 - 3.0) / 3.0).collect()
}

macro_rules! pass_bench {
    ($name:ident, $kernel:expr, $p:expr) => {
        #[divan::bench]
        fn $name(bencher: Bencher) {
            let (theta, data) = (theta($p), rows());
            let (mut g, mut h) = (vec![0.0; $p], vec![0.0; $p * $p]);
            let kernel = $kernel;
            bencher.bench_local(|| {
                kernel.loss_grad_hess(At::new(&theta, &[], black_box(&data)), &mut g, &mut h)
            });
        }
    };
}

pass_bench!(p05_pass_of_1000_samples, MlpTanh1, 5);
pass_bench!(p17_pass_of_1000_samples, MlpTanh, 17);
pass_bench!(p65_pass_of_1000_samples, MlpTanh16, 65);

macro_rules! sample_bench {
    ($name:ident, $kernel:expr, $p:expr) => {
        #[divan::bench]
        fn $name(bencher: Bencher) {
            let theta = theta($p);
            let x = [0.4, -0.7, 0.25];
            let (mut g, mut h) = (vec![0.0; $p], vec![0.0; $p * $p]);
            let kernel = $kernel;
            bencher.bench_local(|| {
                kernel.loss_grad_hess(At::new(&theta, &[], black_box(&x)), &mut g, &mut h)
            });
        }
    };
}

sample_bench!(p05_one_sample, MlpTanh1, 5);
sample_bench!(p17_one_sample, MlpTanh, 17);
sample_bench!(p65_one_sample, MlpTanh16, 65);

/// The same models compiled at run time from their derivation files.
mod run_time {
    use super::*;
    use hessforge_kernels::RunTimeKernel;

    fn compiled(file: &str) -> RunTimeKernel {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let model = hessforge_spec::load_file(&path).expect("derivation loads");
        let program = hessforge_symbolic::lower_loop_ir(&model).expect("lowers");
        RunTimeKernel::compile(program).expect("compiles")
    }

    fn p05() -> RunTimeKernel {
        compiled("benches/models/mlp_tanh_1.toml")
    }
    fn p17() -> RunTimeKernel {
        compiled("../../derivations/mlp_tanh.toml")
    }
    fn p65() -> RunTimeKernel {
        compiled("benches/models/mlp_tanh_16.toml")
    }

    pass_bench!(p05_pass_of_1000_samples, p05(), 5);
    pass_bench!(p17_pass_of_1000_samples, p17(), 17);
    pass_bench!(p65_pass_of_1000_samples, p65(), 65);
    sample_bench!(p05_one_sample, p05(), 5);
    sample_bench!(p17_one_sample, p17(), 17);
    sample_bench!(p65_one_sample, p65(), 65);
}
