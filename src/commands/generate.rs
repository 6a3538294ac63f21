//! `hessforge generate`: refresh `generated/` — every built-in model's
//! derivation (LaTeX, slides, Markdown), its kernel source, and the
//! committed figures — or, with `--check`, fail with a diff when it is stale.

use crate::output::{Failure, create_dir, write_atomically};
use hessforge_driver::models;
use hessforge_symbolic::render::{Format, render};
use std::path::{Path, PathBuf};

/// The files of generated/ and their expected content.
fn generated_files() -> Result<Vec<(String, String)>, Failure> {
    let models = models::builtins().map_err(Failure::failed)?;
    let mut files = Vec::new();
    for m in &models {
        // The kernel the build script compiles: the loop kernel of a model
        // in index form, whose documents need only the index-form derivation
        // (milliseconds at any P), or the straight-line one, from the full
        // scalar derivation the documents then share.
        let (d, kernel) = match hessforge_build::loop_kernel_source(m).map_err(Failure::failed)? {
            Some(loops) => (
                hessforge_symbolic::derive_unexpanded(m).map_err(Failure::engine)?,
                loops,
            ),
            None => {
                let d = hessforge_symbolic::derive(m).map_err(Failure::engine)?;
                let kernel = hessforge_build::kernel_source_of(&d).map_err(Failure::failed)?;
                (d, kernel)
            }
        };
        files.push((format!("{}.tex", m.name), render(&d, Format::Latex)));
        files.push((format!("{}.slides.tex", m.name), render(&d, Format::Beamer)));
        files.push((format!("{}.md", m.name), render(&d, Format::Markdown)));
        files.push((hessforge_build::kernel_file_name(m), kernel));
    }
    files.extend(hessforge_driver::figures::committed_figures().map_err(Failure::failed)?);
    Ok(files)
}

/// Stale generated files.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("generated/ is stale: {}", files.join(", "))]
#[diagnostic(help("run `cargo run --release -- generate` and commit the result"))]
struct Stale {
    files: Vec<String>,
}

/// Write generated/ (or `dir`), or with `check` fail with a diff when it is stale.
pub fn run(check: bool, dir: Option<PathBuf>) -> Result<(), Failure> {
    let dir = dir.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("generated"));
    let files = generated_files()?;
    if check {
        let mut stale = Vec::new();
        for (name, expected) in &files {
            let path = dir.join(name);
            let actual = std::fs::read_to_string(&path).unwrap_or_default();
            if &actual != expected {
                let diff = similar::TextDiff::from_lines(&actual, expected);
                eprintln!(
                    "{}",
                    diff.unified_diff().context_radius(2).header(
                        &format!("{} (committed)", path.display()),
                        &format!("{name} (current)")
                    )
                );
                stale.push(name.clone());
            }
        }
        if stale.is_empty() {
            println!("generated/ is fresh ({} files)", files.len());
            return Ok(());
        }
        return Err(Failure::failed(Stale { files: stale }));
    }
    create_dir(&dir.join("figures")).map_err(Failure::bad_input)?;
    for (name, text) in &files {
        write_atomically(&dir.join(name), text).map_err(Failure::bad_input)?;
    }
    println!("wrote {} files to {}", files.len(), dir.display());
    Ok(())
}
