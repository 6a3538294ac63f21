//! `hessforge generate`: refresh the files of the source tree that are
//! written from code — `generated/` (every built-in model's derivation as
//! LaTeX, slides and Markdown, its kernel source, the committed figures) and
//! the book's reference pages `docs/src/reference/{optimizers,functions}.md`
//! — or, with `--check`, fail with a diff when one is stale.

use crate::output::{Failure, create_dir, write_atomically};
use hessforge_derivation::render::{Format, render};
use hessforge_driver::{models, reference};
use std::path::PathBuf;

/// The generated files, by their path in the source tree, and their
/// expected content.
fn generated_files() -> Result<Vec<(String, String)>, Failure> {
    let models = models::builtins().map_err(Failure::failed)?;
    let mut files = Vec::new();
    // The kernels first, each as the kernels' build script makes it and in
    // its order (the sorted files of derivations/): the forms Symbolica
    // returns depend on what the process derived before (the order it
    // first saw each symbol), so only the same sequence of derivations
    // gives the build script's sources.
    for m in &models {
        let kernel = hessforge_build::main_kernel_source(m).map_err(Failure::failed)?;
        files.push((hessforge_build::kernel_file_name(m), kernel));
    }
    // Then the documents: the index-form derivation of a model in index
    // form (milliseconds at any P), the full scalar one otherwise.
    for m in &models {
        let d = if m.has_tensor_parameter() {
            hessforge_symbolic::derive_unexpanded(m.clone()).map_err(Failure::engine)?
        } else {
            hessforge_symbolic::derive(m).map_err(Failure::engine)?
        };
        let name = &m.name;
        files.push((format!("{name}.tex"), render(&d, Format::Latex)));
        files.push((format!("{name}.slides.tex"), render(&d, Format::Beamer)));
        files.push((format!("{name}.md"), render(&d, Format::Markdown)));
    }
    files.extend(hessforge_driver::figures::committed_figures().map_err(Failure::failed)?);
    let mut files: Vec<_> = files
        .into_iter()
        .map(|(name, text)| (format!("generated/{name}"), text))
        .collect();
    files.push((
        "docs/src/reference/optimizers.md".into(),
        reference::optimizers_page(),
    ));
    files.push((
        "docs/src/reference/functions.md".into(),
        reference::functions_page(),
    ));
    Ok(files)
}

/// Stale generated files.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("generated files are stale: {}", files.join(", "))]
#[diagnostic(help("run `cargo run --release -- generate` and commit the result"))]
struct Stale {
    files: Vec<String>,
}

/// Write the generated files into this source tree (or the tree at
/// `root`), or with `check` fail with a diff when one is stale.
pub fn run(check: bool, root: Option<PathBuf>) -> Result<(), Failure> {
    let dir = root.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
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
            println!("generated files are fresh ({} files)", files.len());
            return Ok(());
        }
        return Err(Failure::failed(Stale { files: stale }));
    }
    for (name, text) in &files {
        let path = dir.join(name);
        if let Some(folder) = path.parent() {
            create_dir(folder).map_err(Failure::bad_input)?;
        }
        write_atomically(&path, text).map_err(Failure::bad_input)?;
    }
    println!("wrote {} files to {}", files.len(), dir.display());
    Ok(())
}
