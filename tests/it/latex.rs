//! The LaTeX derivations compile with pdflatex, with no errors and no
//! overfull lines (math running off the page), as articles and as beamer
//! slides; and the articles are as short as a lecture note: logistic
//! regression at most 2 pages, `mlp_tanh` and `softmax_regression` at most
//! 3, the same length for F = 10 and F = 1 000 features; logistic
//! regression's derivation fits one slide. Uses the committed
//! `generated/*.tex`, which `cli.rs` keeps equal to the current output.
//!
//! Needs `pdflatex` with beamer (Debian: texlive-latex-base,
//! texlive-latex-recommended, texlive-pictures): the tests are ignored by a
//! plain `cargo test`, and `.ci/run` installs it and runs them
//! (`cargo test --test it -- --ignored latex::`).

use crate::common;
use common::{hessforge, symbolica_lock};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compile one file; fail on an error or an overfull line; the page count.
fn compile(tex: &Path, work: &Path) -> usize {
    let out = Command::new("pdflatex")
        .args([
            "-interaction=nonstopmode",
            "-halt-on-error",
            "-output-directory",
        ])
        .arg(work)
        .arg(tex)
        .output()
        .expect(
            "pdflatex with beamer is needed: apt-get install texlive-latex-base \
             texlive-latex-recommended texlive-pictures",
        );
    let stem = tex.file_stem().unwrap().to_string_lossy().to_string();
    let log = std::fs::read_to_string(work.join(format!("{stem}.log"))).unwrap_or_default();
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
    assert!(work.join(format!("{stem}.pdf")).exists());
    // "Output written on x.pdf (2 pages, 120000 bytes)."
    let written = log
        .lines()
        .find_map(|l| l.split("Output written on ").nth(1))
        .unwrap_or_else(|| panic!("no output line in the log of {}", tex.display()));
    written
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("page count in {written:?}"))
}

fn generated() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("generated");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tex"))
        .collect();
    files.sort();
    files
}

#[test]
#[ignore = "needs pdflatex with beamer: .ci/run runs it (--ignored latex::)"]
fn generated_latex_compiles_without_overfull_lines() {
    let files = generated();
    let slides = files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".slides.tex"))
        .count();
    assert!(
        files.len() >= 14,
        "an article and slides per built-in model"
    );
    assert_eq!(slides * 2, files.len(), "as many slides as articles");
    // pdflatex runs on one core: the files are shared out over the cores,
    // each worker in a directory of its own.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(workers);
    std::thread::scope(|scope| {
        for part in files.chunks(chunk) {
            scope.spawn(move || {
                let work = tempfile::tempdir().unwrap();
                for tex in part {
                    compile(tex, work.path());
                }
            });
        }
    });
}

#[test]
#[ignore = "needs pdflatex with beamer: .ci/run runs it (--ignored latex::)"]
fn the_lecture_notes_are_short_whatever_the_number_of_features() {
    let work = tempfile::tempdir().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("generated");
    let pages = |name: &str| compile(&dir.join(format!("{name}.tex")), work.path());
    let logistic = pages("logistic_regression");
    assert!(logistic <= 2, "logistic regression: {logistic} pages");
    for name in ["mlp_tanh", "softmax_regression"] {
        let n = pages(name);
        assert!(n <= 3, "{name}: {n} pages");
    }
    // The same model with 1 000 features: the same document, but for the
    // numbers that are the sizes.
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("derivations/logistic_regression.toml"),
    )
    .unwrap();
    let wide =
        source[..source.find("[synthetic]").unwrap()].replace("shape = [10]", "shape = [1000]");
    let file = work.path().join("logistic_1000.toml");
    std::fs::write(&file, wide).unwrap();
    let tex = work.path().join("logistic_1000.tex");
    {
        let _g = symbolica_lock();
        hessforge()
            .args(["derive", file.to_str().unwrap(), "--format", "latex", "-o"])
            .arg(&tex)
            .assert()
            .success();
    }
    let text = std::fs::read_to_string(&tex).unwrap();
    let ten = std::fs::read_to_string(dir.join("logistic_regression.tex")).unwrap();
    assert_eq!(
        text.replace("1000", "10").replace("1001", "11"),
        ten,
        "F = 1000 and F = 10 differ in more than their sizes"
    );
    assert_eq!(compile(&tex, work.path()), logistic);
}

#[test]
#[ignore = "needs pdflatex with beamer: .ci/run runs it (--ignored latex::)"]
fn the_logistic_derivation_fits_one_slide() {
    let slides = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("generated/logistic_regression.slides.tex"),
    )
    .unwrap();
    // The preamble and the one frame alone: with allowframebreaks, a frame
    // too full for one slide would continue on a second page.
    let begin = slides.find("\\begin{document}").unwrap();
    let frame = slides
        .find("\\begin{frame}[allowframebreaks]{The derivation at a glance}")
        .expect("a frame with the whole derivation");
    let end = frame + slides[frame..].find("\\end{frame}").unwrap() + "\\end{frame}".len();
    let one = format!(
        "{}\\begin{{document}}\n{}\n\\end{{document}}\n",
        &slides[..begin],
        &slides[frame..end]
    );
    let work = tempfile::tempdir().unwrap();
    let tex = work.path().join("glance.tex");
    std::fs::write(&tex, one).unwrap();
    assert_eq!(
        compile(&tex, work.path()),
        1,
        "the derivation takes more than one slide"
    );
}
