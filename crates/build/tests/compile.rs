//! `compile` as a user's build script runs it: cargo starts the build script
//! as its own process with `OUT_DIR` set and fails the build when it exits
//! non-zero, showing its stderr. These tests start this test binary again as
//! that process (the `HESSFORGE_TEST_BUILD_SCRIPT` variable makes it call
//! `compile` and nothing else) on a user's `derivations/` folder.

use std::path::Path;
use std::process::{Command, Output};

/// When set, the test below is the build script: compile this folder.
const AS_BUILD_SCRIPT: &str = "HESSFORGE_TEST_BUILD_SCRIPT";

/// Run `hessforge_build::compile(derivations)` in a child process, as cargo
/// runs a build script.
fn build_script(derivations: &Path, out_dir: &Path) -> Output {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "the_build_script",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(AS_BUILD_SCRIPT, derivations)
        .env("OUT_DIR", out_dir)
        .output()
        .expect("the test binary starts")
}

#[test]
fn the_build_script() {
    if let Some(dir) = std::env::var_os(AS_BUILD_SCRIPT) {
        hessforge_build::compile(dir);
    }
}

/// A user's crate: `derivations/` with the given files, and an empty `out/`.
fn user_crate(files: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir(root.path().join("derivations")).unwrap();
    std::fs::create_dir(root.path().join("out")).unwrap();
    for (name, text) in files {
        std::fs::write(root.path().join("derivations").join(name), text).unwrap();
    }
    root
}

#[test]
fn a_bad_derivation_file_fails_the_build_with_its_file_line_and_column() {
    let root = user_crate(&[(
        "my_model.toml",
        "name = \"my_model\"\ntitle = \"Mine\"\ndescription = \"A user model.\"\nloss = \"(x - 3)^2 + exp(\"\n\n[parameters]\nx = {}\n",
    )]);
    let out = build_script(&root.path().join("derivations"), &root.path().join("out"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("error: derivations/my_model.toml:4:"),
        "no file:line:column in {stderr}"
    );
    assert!(stderr.contains("hint"), "no hint in {stderr}");
    assert!(
        !root.path().join("out/kernels.rs").exists(),
        "a failed build wrote the registry"
    );
}

#[test]
fn a_good_derivation_file_gets_its_module_and_registry_entry() {
    let root = user_crate(&[(
        "my_model.toml",
        "name = \"my_model\"\ntitle = \"Mine\"\ndescription = \"A user model.\"\nloss = \"(x - 3)^2 + (y + 1)^2\"\n\n[parameters]\nx = {}\ny = {}\n",
    )]);
    let out = build_script(&root.path().join("derivations"), &root.path().join("out"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let registry = std::fs::read_to_string(root.path().join("out/kernels.rs")).unwrap();
    assert!(registry.contains("pub mod my_model"), "{registry}");
    assert!(registry.contains("&my_model::MyModel"), "{registry}");
    let kernel = std::fs::read_to_string(root.path().join("out/my_model.rs")).unwrap();
    // Only paths of the library: the file compiles in any crate.
    assert!(!kernel.contains("crate::"), "{kernel}");
    assert!(
        kernel.contains("use ::hessforge_kernels::{At, Kernel, runtime};"),
        "{kernel}"
    );
}
