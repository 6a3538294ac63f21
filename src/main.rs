//! The `hessforge` command line: list models, derive and render them, check
//! gradients, keep `generated/` fresh, and run and compare the optimizers. Errors are printed with miette (file, line,
//! column, hint); exit code 2 means bad input.

mod backend;
mod cli;
mod data;
mod figures;
mod fit;
mod gradcheck;
mod models;
mod report;
mod synthetic;

use std::process::ExitCode;

fn main() -> ExitCode {
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .terminal_links(false)
                .context_lines(2)
                .build(),
        )
    }));
    cli::main()
}
