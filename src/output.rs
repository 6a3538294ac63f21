//! What a command hands back and how it writes: [`Failure`] (the report and
//! the exit code it deserves: 1 the work failed, 2 bad input, 3 a bug), and
//! output files written atomically, so a failure never leaves half a file.

use hessforge_driver::PrepareError;
use hessforge_symbolic::EngineError;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A failed command: the report and the exit code.
pub struct Failure {
    /// What went wrong, for miette to print.
    pub report: miette::Report,
    /// The exit code.
    pub code: u8,
}

/// Exit code of an internal error (a bug in hessforge), kept apart from
/// 1 (the work failed) and 2 (bad input).
pub const INTERNAL_ERROR: u8 = 3;

impl Failure {
    /// Bad input: exit 2 — unless the report is the symbolic engine's
    /// internal error, which is a bug (exit 3).
    pub fn bad_input(e: impl Into<miette::Report>) -> Failure {
        let report: miette::Report = e.into();
        let code = match report.downcast_ref::<EngineError>() {
            Some(engine) if engine.is_internal() => INTERNAL_ERROR,
            Some(engine) if !engine.is_bad_input() => 1,
            _ => 2,
        };
        Failure { report, code }
    }
    /// The symbolic engine failed: bad input (exit 2) when the model's
    /// mathematics is undefined, 1 when Symbolica was busy in another
    /// process past the time limit, an internal error (exit 3) for a panic.
    pub fn engine(e: EngineError) -> Failure {
        Failure::bad_input(e)
    }
    /// A problem could not be prepared: bad input, or the engine's verdict
    /// for an interpreted model (see [`Failure::engine`]).
    pub fn prepare(e: PrepareError) -> Failure {
        match e {
            PrepareError::Engine(engine) => Failure::engine(engine),
            other => Failure::bad_input(other),
        }
    }
    /// The work failed: exit 1.
    pub fn failed(e: impl Into<miette::Report>) -> Failure {
        Failure {
            report: e.into(),
            code: 1,
        }
    }
}

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot write `{path}`: {source}")]
#[diagnostic(help("check that the folder exists and is writable"))]
pub struct WriteError {
    path: String,
    source: std::io::Error,
}

/// Create a folder (and its parents) for output.
pub fn create_dir(dir: &Path) -> Result<(), WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError {
        path: dir.display().to_string(),
        source,
    })
}

/// Write through a temporary file in the same folder and rename it into
/// place, so a failure never leaves a half-written file behind.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), WriteError> {
    let err = |source| WriteError {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(text.as_bytes()).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}
