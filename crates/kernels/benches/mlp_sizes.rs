//! One sample of `mlp_tanh` with 1, 4 and 16 hidden units (P = 5, 17, 65):
//! loss + gradient + Hessian, against CasADi's generated C (~52, ~139 and
//! ~996 ns per sample on this machine).
//! `cargo bench -p hessforge-kernels --features bench-models --bench mlp_sizes`

use divan::{Bencher, black_box};
use hessforge_kernels::{
    Kernel, Rows, mlp_tanh::MlpTanh, mlp_tanh_1::MlpTanh1, mlp_tanh_16::MlpTanh16,
};

fn main() {
    divan::main();
}

macro_rules! sample_bench {
    ($name:ident, $kernel:expr, $p:expr) => {
        #[divan::bench]
        fn $name(bencher: Bencher) {
            let theta: Vec<f64> = (0..$p)
                .map(|i| 0.3 * ((i % 7) as f64 - 3.0) / 3.0)
                .collect();
            let x = [0.4, -0.7, 0.25];
            let (mut g, mut h) = (vec![0.0; $p], vec![0.0; $p * $p]);
            bencher.bench_local(|| {
                $kernel.loss_grad_hess(&theta, &[], Rows::All(black_box(&x)), &mut g, &mut h)
            });
        }
    };
}

sample_bench!(p05_one_hidden_unit, MlpTanh1, 5);
sample_bench!(p17_four_hidden_units, MlpTanh, 17);
sample_bench!(p65_sixteen_hidden_units, MlpTanh16, 65);
