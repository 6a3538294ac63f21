//! Derivation + lowering + code generation (`kernel_source`: derive with
//! Symbolica, optimise and export the evaluator, lower to the IR, generate
//! and format Rust) for `mlp_tanh` with 1, 4 and 16 hidden units
//! (P = 5, 17, 65). The bar: under 1 s at P = 65.
//! `cargo bench -p hessforge-build`

use divan::Bencher;
use std::path::Path;

fn main() {
    divan::main();
}

fn model(file: &str) -> hessforge_spec::Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(file);
    hessforge_spec::load_file(&path).expect("the derivation loads")
}

const FILES: &[&str] = &[
    "crates/kernels/benches/models/mlp_tanh_1.toml",
    "derivations/mlp_tanh.toml",
    "crates/kernels/benches/models/mlp_tanh_16.toml",
];

#[divan::bench(args = FILES, sample_count = 5)]
fn kernel_source(bencher: Bencher, file: &str) {
    let m = model(file);
    bencher.bench_local(|| hessforge_build::kernel_source(&m).expect("generates"));
}
