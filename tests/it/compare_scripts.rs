//! `benches/compare/` (the comparison with JAX, SymPy, CasADi, NumPy and
//! SciPy) needs minutes and a Python environment, so CI does not run it; it
//! checks that its scripts parse: `bash -n run.sh`, `python3 -m py_compile`
//! on the harness and every anchor.

use std::path::Path;
use std::process::Command;

fn compare_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/compare")
}

#[test]
fn run_sh_parses() {
    let out = Command::new("bash")
        .arg("-n")
        .arg(compare_dir().join("run.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_python_scripts_compile() {
    let mut scripts = vec![compare_dir().join("harness.py")];
    for entry in std::fs::read_dir(compare_dir().join("anchors")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            scripts.push(path);
        }
    }
    assert!(scripts.len() >= 7, "{scripts:?}");
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .env("PYTHONPYCACHEPREFIX", cache.path())
        .args(["-m", "py_compile"])
        .args(&scripts)
        .output()
        .expect("python3 is on the machine");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
