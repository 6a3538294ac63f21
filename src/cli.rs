//! Command-line parsing (clap) and the commands: `models`, `derive`,
//! `generate`. Each command returns a [`Failure`] with the exit code it
//! deserves; `main` prints it with miette.

use crate::models;
use clap::{Parser, Subcommand, ValueEnum};
use hessforge_symbolic::render::{Format, render};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Derive loss, gradient and Hessian symbolically; print the derivation.
#[derive(Parser)]
#[command(name = "hessforge", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in derivations with their parameter counts.
    Models,
    /// Derive a model and print the derivation.
    Derive {
        /// A built-in model name (see `hessforge models`) or a path to a .toml file.
        model: String,
        /// Output format.
        #[arg(long, short, value_enum, default_value = "text")]
        format: OutputFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Check the derived gradient and Hessian against finite differences
    /// (compiled kernel for a built-in model, IR interpreter for a file).
    Gradcheck {
        /// A built-in model name or a path to a .toml file.
        model: String,
        /// Number of random points.
        #[arg(long, default_value_t = 5)]
        points: usize,
        /// Seed of the random points and data.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Largest relative error that passes.
        #[arg(long, default_value_t = 1e-6)]
        tol: f64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Refresh generated/ (the committed derivations of every built-in model).
    Generate {
        /// Do not write; fail (exit 1) if generated/ is stale, showing a diff.
        #[arg(long)]
        check: bool,
        /// The folder to write (default: generated/ of this source tree).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Latex,
    Markdown,
    Text,
    Json,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Latex => Format::Latex,
            OutputFormat::Markdown => Format::Markdown,
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
        }
    }
}

/// A failed command: the report and the exit code.
struct Failure {
    report: miette::Report,
    code: u8,
}

impl Failure {
    fn bad_input(e: impl Into<miette::Report>) -> Failure {
        Failure {
            report: e.into(),
            code: 2,
        }
    }
    fn failed(e: impl Into<miette::Report>) -> Failure {
        Failure {
            report: e.into(),
            code: 1,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Models => models_command(),
        Command::Derive {
            model,
            format,
            output,
        } => derive_command(&model, format.into(), output.as_deref()),
        Command::Generate { check, dir } => generate_command(check, dir),
        Command::Gradcheck {
            model,
            points,
            seed,
            tol,
            json,
        } => gradcheck_command(&model, points, seed, tol, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{:?}", f.report);
            ExitCode::from(f.code)
        }
    }
}

fn models_command() -> Result<(), Failure> {
    let models = models::builtins().map_err(Failure::failed)?;
    let width = models.iter().map(|m| m.name.len()).max().unwrap_or(4);
    let mut out = String::new();
    out.push_str(&format!(
        "{:<width$}  {:>3}  {:>4}  description\n",
        "name", "P", "data"
    ));
    for m in &models {
        out.push_str(&format!(
            "{:<width$}  {:>3}  {:>4}  {}\n",
            m.name,
            m.n_params(),
            m.data.len(),
            m.description
        ));
    }
    print!("{out}");
    Ok(())
}

fn derive_command(model: &str, format: Format, output: Option<&Path>) -> Result<(), Failure> {
    let model = models::load(model).map_err(Failure::bad_input)?;
    let derivation = hessforge_symbolic::derive(&model).map_err(Failure::failed)?;
    let text = render(&derivation, format);
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

fn gradcheck_command(
    name: &str,
    points: usize,
    seed: u64,
    tol: f64,
    json: bool,
) -> Result<(), Failure> {
    let model = models::load(name).map_err(Failure::bad_input)?;
    let backend = crate::backend::Backend::resolve(name, &model).map_err(Failure::failed)?;
    let report = crate::gradcheck::run(&model, &backend, points.max(1), seed, tol)
        .map_err(Failure::bad_input)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("JSON of plain data")
        );
    } else {
        println!("{report}");
    }
    if report.passed {
        Ok(())
    } else {
        Err(Failure::failed(miette::miette!(
            help = "a derivative rule or a simplification is wrong; compare `hessforge derive` with a hand derivation",
            "the gradient check of `{}` failed: relative error over {tol:e}",
            model.name
        )))
    }
}

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot write `{path}`: {source}")]
#[diagnostic(help("check that the folder exists and is writable"))]
struct WriteError {
    path: String,
    source: std::io::Error,
}

/// Write through a temporary file in the same folder and rename it into
/// place, so a failure never leaves a half-written file behind.
fn write_atomically(path: &Path, text: &str) -> Result<(), WriteError> {
    let err = |source| WriteError {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    tmp.write_all(text.as_bytes()).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// The files of generated/ and their expected content.
fn generated_files() -> Result<Vec<(String, String)>, Failure> {
    let models = models::builtins().map_err(Failure::failed)?;
    let mut files = Vec::new();
    for m in &models {
        let d = hessforge_symbolic::derive(m).map_err(Failure::failed)?;
        files.push((format!("{}.tex", m.name), render(&d, Format::Latex)));
        files.push((format!("{}.md", m.name), render(&d, Format::Markdown)));
        let kernel = hessforge_build::kernel_source_of(&d).map_err(Failure::failed)?;
        files.push((format!("{}.rs", m.name), kernel));
    }
    Ok(files)
}

/// Stale generated files.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("generated/ is stale: {}", files.join(", "))]
#[diagnostic(help("run `cargo run --release -- generate` and commit the result"))]
struct Stale {
    files: Vec<String>,
}

fn generate_command(check: bool, dir: Option<PathBuf>) -> Result<(), Failure> {
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
    std::fs::create_dir_all(&dir).map_err(|source| {
        Failure::bad_input(WriteError {
            path: dir.display().to_string(),
            source,
        })
    })?;
    for (name, text) in &files {
        write_atomically(&dir.join(name), text).map_err(Failure::bad_input)?;
    }
    println!("wrote {} files to {}", files.len(), dir.display());
    Ok(())
}
