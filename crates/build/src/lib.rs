//! The build helper: a derivation file in, the Rust source of its compiled
//! kernel out: straight-line code for a model with scalar parameters only
//! (derive → lower → generate), loops in index form for a model with a
//! vector or matrix parameter (derive in index form → lower into the loop
//! IR → generate). `hessforge-kernels`' build script is one call of
//! [`compile`]; `hessforge generate` writes the same sources
//! ([`kernel_file_name`], [`main_kernel_source`]) to `generated/`. A user's own crate gets kernels
//! for its own derivation files with the same line in its `build.rs`.
#![warn(missing_docs)]

use hessforge_spec::{Model, SpecError};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why a kernel could not be built.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    /// The derivation file is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Spec(#[from] SpecError),
    /// The symbolic engine failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] hessforge_symbolic::EngineError),
    /// The generated code is not valid Rust.
    #[error(transparent)]
    Codegen(#[from] hessforge_codegen::CodegenError),
}

/// The label a model's derivation file has in generated files.
pub fn source_label(model: &Model) -> String {
    format!("derivations/{}.toml", model.name)
}

/// The formatted Rust source of a model's kernels.
pub fn kernel_source(model: &Model) -> Result<String, BuildError> {
    kernel_source_of(&hessforge_symbolic::derive_scalar(model)?)
}

/// The same, from a derivation already made (so `hessforge generate`, which
/// also renders it, derives each model once).
pub fn kernel_source_of(derivation: &hessforge_symbolic::Derivation) -> Result<String, BuildError> {
    let model = &derivation.model;
    let programs = hessforge_symbolic::lower(derivation)?;
    let source = source_label(model);
    let info = hessforge_codegen::KernelInfo {
        title: &model.title,
        description: &model.description,
        source: &source,
    };
    Ok(hessforge_codegen::generate(&programs, &info)?)
}

/// Whether a model's kernel is the straight-line one: a model with scalar
/// parameters only. A model with a vector or matrix parameter gets its
/// kernel in index form instead ([`loop_kernel_source`]), whose length, and
/// rustc's time, do not grow with the tensors (the straight-line kernel's
/// P(P + 1)/2 Hessian entries cost minutes of rustc at P = 65).
pub fn straight_line(model: &Model) -> bool {
    !model.has_tensor_parameter()
}

/// The formatted Rust source of a model's kernels in index form (loops whose
/// length does not depend on the tensors' lengths), for a model with a
/// vector or matrix parameter; `None` otherwise.
pub fn loop_kernel_source(model: &Model) -> Result<Option<String>, BuildError> {
    if !model.has_tensor_parameter() {
        return Ok(None);
    }
    let lowered = hessforge_symbolic::lower_loop_ir(model)?;
    let source = source_label(model);
    let info = hessforge_codegen::KernelInfo {
        title: &model.title,
        description: &model.description,
        source: &source,
    };
    Ok(Some(hessforge_codegen::generate_loops(&lowered, &info)?))
}

/// The name of the file holding a model's kernel: `<model>.rs` for the
/// straight-line kernel, `<model>.loops.rs` for the kernel in index form.
pub fn kernel_file_name(model: &Model) -> String {
    if straight_line(model) {
        format!("{}.rs", model.name)
    } else {
        format!("{}.loops.rs", model.name)
    }
}

/// The formatted Rust source of a model's kernel: straight-line for a model
/// with scalar parameters only, in index form otherwise (see
/// [`straight_line`]).
pub fn main_kernel_source(model: &Model) -> Result<String, BuildError> {
    match loop_kernel_source(model)? {
        Some(source) => Ok(source),
        None => kernel_source(model),
    }
}

/// The derivation files of a folder, sorted.
pub fn derivation_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// For a build script: generate the kernels of every `*.toml` in `dir` into
/// `$OUT_DIR` (one `<model>.rs` each, and `kernels.rs` with the modules and
/// the `REGISTRY`), to be `include!`d. Unchanged files reuse their previous
/// output. A bad file stops the build with the same file:line:column report
/// the CLI prints.
pub fn compile(dir: impl AsRef<Path>) {
    compile_dirs(&[dir.as_ref()]);
}

/// [`compile`] over the `*.toml` files of several folders, into one registry.
pub fn compile_dirs(dirs: &[&Path]) {
    let out_dir =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("compile() runs in a build script"));
    let mut files = Vec::new();
    for dir in dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
        files.extend(
            derivation_files(dir)
                .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display()))),
        );
    }
    // Outputs are reused when neither the file nor this generator changed:
    // the build script's own executable identifies the generator.
    let generator = std::env::current_exe()
        .and_then(|exe| exe.metadata())
        .map(|m| format!("{:?} {}", m.modified().ok(), m.len()))
        .unwrap_or_default();
    let mut modules = String::new();
    let mut registry = Vec::new();
    let mut loop_registry = Vec::new();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", file.display())));
        let folder = file.parent().and_then(Path::file_name).unwrap_or_default();
        let shown = format!(
            "{}/{}",
            folder.to_string_lossy(),
            file.file_name().unwrap_or_default().to_string_lossy()
        );
        let model = hessforge_spec::load_str(&shown, &text)
            .unwrap_or_else(|e| fail(&format!("{}\n{:?}", e.one_line(), miette::Report::new(e))));
        let looped = model.has_tensor_parameter();
        let file_name = kernel_file_name(&model);
        let rust_file = out_dir.join(&file_name);
        let stamp = out_dir.join(format!("{}.toml.stamp", model.name));
        let stamp_text = format!("{generator}\n{text}");
        let fresh =
            std::fs::read_to_string(&stamp).is_ok_and(|s| s == stamp_text) && rust_file.exists();
        let report = |e: BuildError| format!("{shown}: {:?}", miette::Report::new(e));
        if !fresh {
            let source = main_kernel_source(&model).unwrap_or_else(|e| fail(&report(e)));
            write(&rust_file, &source);
            write(&stamp, &stamp_text);
        }
        let ty = hessforge_codegen::type_name(&model.name);
        let _ = writeln!(
            modules,
            "#[doc = {doc:?}]\n#[allow(clippy::all, dead_code, unused_variables, unused_parens)]\npub mod {name} {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/{file_name}\"));\n}}\n",
            doc = format!("{}: {}", model.title, model.description),
            name = model.name,
        );
        registry.push(format!("&{}::{ty}", model.name));
        if looped {
            loop_registry.push(format!("&{}::{ty}", model.name));
        }
    }
    let _ = writeln!(
        modules,
        "/// Every compiled kernel, by model name order.\n#[allow(dead_code)]\npub static REGISTRY: &[&dyn ::hessforge_kernels::Kernel] = &[{}];",
        registry.join(", ")
    );
    let _ = writeln!(
        modules,
        "/// The kernels in index form of every model with a vector or matrix parameter, by model name order.\n#[allow(dead_code)]\npub static LOOP_REGISTRY: &[&dyn ::hessforge_kernels::Kernel] = &[{}];",
        loop_registry.join(", ")
    );
    write(&out_dir.join("kernels.rs"), &modules);
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
