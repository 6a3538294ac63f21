//! The LaTeX derivations compile with pdflatex, with no errors and no
//! overfull lines (math running off the page). Uses the committed
//! `generated/*.tex`, which `cli.rs` keeps equal to the current output.
//!
//! Needs `pdflatex` (Debian: texlive-latex-base). Without it the test says so
//! and passes, unless `HESSFORGE_REQUIRE_PDFLATEX=1` (set by `.ci/run`).

use std::path::Path;
use std::process::Command;

#[test]
fn generated_latex_compiles_without_overfull_lines() {
    if Command::new("pdflatex").arg("--version").output().is_err() {
        assert!(
            std::env::var("HESSFORGE_REQUIRE_PDFLATEX").is_err(),
            "pdflatex is required (HESSFORGE_REQUIRE_PDFLATEX is set): apt-get install texlive-latex-base"
        );
        eprintln!("pdflatex not found: skipping the LaTeX compile check");
        return;
    }
    let generated = Path::new(env!("CARGO_MANIFEST_DIR")).join("generated");
    let mut files: Vec<_> = std::fs::read_dir(&generated)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tex"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "expected a .tex file per built-in model");
    let work = tempfile::tempdir().unwrap();
    for tex in files {
        let out = Command::new("pdflatex")
            .args([
                "-interaction=nonstopmode",
                "-halt-on-error",
                "-output-directory",
            ])
            .arg(work.path())
            .arg(&tex)
            .output()
            .unwrap();
        let stem = tex.file_stem().unwrap().to_string_lossy().to_string();
        let log =
            std::fs::read_to_string(work.path().join(format!("{stem}.log"))).unwrap_or_default();
        assert!(
            out.status.success(),
            "pdflatex failed on {}:\n{log}",
            tex.display()
        );
        let overfull: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("Overfull \\hbox"))
            .collect();
        assert!(overfull.is_empty(), "{}: {overfull:?}", tex.display());
        assert!(work.path().join(format!("{stem}.pdf")).exists());
    }
}
