//! Embeds every `derivations/*.toml` and every default data set
//! `data/*.csv` into the driver library (and so the `hessforge` binary), so the built-in models and
//! their data work wherever the binary is run.

use std::fmt::Write;
use std::path::Path;

/// Write `const NAME: &[(&str, &str)]` = (file stem, file text) of every
/// `*.ext` in `folder`, sorted by name, into `$OUT_DIR/out_file`.
fn embed(folder: &str, ext: &str, name: &str, doc: &str, out_file: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(folder);
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{folder}/ exists: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    let mut out = format!("/// {doc}\npub const {name}: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let stem = f.file_stem().expect("file name").to_string_lossy();
        let _ = writeln!(
            out,
            "    ({stem:?}, include_str!({:?})),",
            f.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join(out_file);
    std::fs::write(dest, out).unwrap_or_else(|e| panic!("write {out_file}: {e}"));
}

fn main() {
    embed(
        "derivations",
        "toml",
        "BUILTIN",
        "(name, file text) of every built-in derivation, sorted by name.",
        "builtin_derivations.rs",
    );
    embed(
        "data",
        "csv",
        "BUILTIN_DATA",
        "(model name, CSV text) of every embedded default data set.",
        "builtin_data.rs",
    );
}
