//! Generates the kernels of every `derivations/*.toml` of this workspace.
fn main() {
    hessforge_build::compile(concat!(env!("CARGO_MANIFEST_DIR"), "/../../derivations"));
}
