//! Generates the kernels of every `derivations/*.toml` of this workspace
//! (and, with the `bench-models` feature, of `benches/models/*.toml`).
fn main() {
    let derivations = concat!(env!("CARGO_MANIFEST_DIR"), "/../../derivations");
    if std::env::var_os("CARGO_FEATURE_BENCH_MODELS").is_some() {
        let bench_models = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/models");
        hessforge_build::compile_dirs(&[derivations.as_ref(), bench_models.as_ref()]);
    } else {
        hessforge_build::compile(derivations);
    }
}
