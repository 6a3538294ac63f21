//! `hessforge derive`: derive a model and print (or write) the derivation
//! as text, LaTeX, slides, Markdown or JSON.

use crate::output::{Failure, write_atomically};
use hessforge_derivation::render::{Format, render};
use hessforge_driver::models;
use std::io::Write;
use std::path::Path;

/// Derive `model` and print the derivation in `format` (or write it to `output`).
pub fn run(
    model: &str,
    format: Format,
    output: Option<&Path>,
    expand: bool,
) -> Result<(), Failure> {
    let model = models::load(model).map_err(Failure::bad_input)?;
    let mut derivation = if expand {
        hessforge_symbolic::derive(&model)
    } else {
        hessforge_symbolic::derive_unexpanded(model)
    }
    .map_err(Failure::engine)?;
    // JSON lists the rewrites the kernel's lowering applies.
    if matches!(format, Format::Json) {
        derivation.rewrites = hessforge_symbolic::rewrites(&derivation).map_err(Failure::engine)?;
    }
    let text = if expand {
        hessforge_derivation::render::render_expanded(&derivation, format)
    } else {
        render(&derivation, format)
    };
    match output {
        Some(path) => write_atomically(path, &text).map_err(Failure::bad_input),
        None => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
            Ok(())
        }
    }
}
