//! The `hessforge` command's tests, one binary: what a user runs and
//! sees — the CLI and its errors, fits and comparisons, reports in a
//! browser, the LaTeX notes through pdflatex, the comparison's scripts and
//! the docs. They run `hessforge` processes, one at a time where it
//! derives (`common::symbolica_lock`). `snapshots.rs` is a binary of its
//! own: it runs Symbolica in its own process, which a `hessforge` process
//! started beside it would wait for.

mod browser;
mod cli;
mod columnar;
mod common;
mod compare_scripts;
mod docs;
mod fit;
mod latex;
mod mlp;
mod nist;
mod reliability;
mod report;
