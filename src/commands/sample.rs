//! `hessforge sample`: rows of a model's seeded `[synthetic]` process, as
//! CSV on standard output or written to a CSV, Parquet or Arrow IPC file (the
//! same rows as `--synthetic N --seed S`), a block at a time.

use crate::output::Failure;
use hessforge_driver::{data, models};
use std::path::Path;

/// Draw `rows` rows of `name`'s process with `seed`; to `output` (format by
/// extension; a Parquet file's row groups of at most `row_group_rows`) or,
/// as CSV, to standard output.
pub fn run(
    name: &str,
    rows: usize,
    seed: u64,
    output: Option<&Path>,
    row_group_rows: Option<usize>,
) -> Result<(), Failure> {
    let model = models::load(name).map_err(Failure::bad_input)?;
    match output {
        Some(path) => data::write_sample(&model, rows, seed, path, row_group_rows),
        None => {
            let stdout = std::io::BufWriter::new(std::io::stdout());
            data::write_sample_to(
                &model,
                rows,
                seed,
                None,
                row_group_rows,
                stdout,
                "standard output",
            )
        }
    }
    .map_err(Failure::bad_input)
}
