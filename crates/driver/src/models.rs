//! Finding derivation files: a built-in model by name (embedded in the
//! binary from `derivations/` at build time), or any path to a `.toml` file.

use hessforge_spec::{Model, SpecError};
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/builtin_derivations.rs"));

/// Why a model could not be found or loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LookupError {
    /// Neither a built-in name nor a file.
    #[error("no model named `{name}`")]
    #[diagnostic(help("{hint}"))]
    Unknown {
        /// What was asked for.
        name: String,
        /// The suggestion.
        hint: String,
    },
    /// The file exists but is not a valid derivation.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Spec(#[from] SpecError),
}

/// Every built-in model, loaded, in name order.
pub fn builtins() -> Result<Vec<Model>, SpecError> {
    BUILTIN
        .iter()
        .map(|(name, text)| load_builtin(name, text))
        .collect()
}

fn load_builtin(name: &str, text: &str) -> Result<Model, SpecError> {
    hessforge_spec::load_str(&format!("derivations/{name}.toml"), text)
}

/// Whether `name` is a built-in model (not a path).
pub fn is_builtin(name: &str) -> bool {
    BUILTIN.iter().any(|(n, _)| *n == name)
}

/// Resolve `MODEL|FILE.toml`.
pub fn load(name_or_path: &str) -> Result<Model, LookupError> {
    let as_path = Path::new(name_or_path);
    if name_or_path.ends_with(".toml") || as_path.components().count() > 1 {
        return Ok(hessforge_spec::load_file(as_path)?);
    }
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        return Ok(load_builtin(name, text)?);
    }
    let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    let closest = known
        .iter()
        .map(|k| (strsim::jaro_winkler(name_or_path, k), k))
        .filter(|(s, _)| *s > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.to_string());
    let hint = match closest {
        Some(k) => format!("did you mean `{k}`? `hessforge models` lists the built-in models"),
        None => format!(
            "built-in models: {}; or give the path to a .toml derivation file",
            known.join(", ")
        ),
    };
    Err(LookupError::Unknown {
        name: name_or_path.to_string(),
        hint,
    })
}
