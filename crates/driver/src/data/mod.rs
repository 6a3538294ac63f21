//! The rows a model is fitted to: a CSV file whose header names the model's
//! data columns (`x_1` or `x1` for entry 1 of vector `x`), read into
//! memory; a Parquet or Arrow IPC file, streamed a record batch at a time
//! on every pass ([`columnar`]); the derivation's seeded `[synthetic]`
//! process; or the embedded default data set of a built-in model
//! (`data/<model>.csv` when it exists, else its synthetic set with seed
//! 42). Errors point at file, line and column (or column and row).

// The errors carry the file text for miette's labelled snippet; they are
// built once, on the way out, so their size costs nothing that matters.
#![allow(clippy::result_large_err)]

pub mod columnar;

use crate::synthetic::{self, SyntheticError};
use columnar::{ColumnarTable, Format};
use hessforge_spec::Model;
use miette::{NamedSource, SourceSpan};
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/builtin_data.rs"));

/// The seed of a built-in model's default synthetic data set.
pub const DEFAULT_SEED: u64 = 42;

/// Rows of data, one column per data scalar in model order.
#[derive(Debug)]
pub struct Dataset {
    /// The values, in memory or streamed from a file.
    pub storage: Storage,
    /// Number of rows.
    pub rows: usize,
    /// Where they came from, in words.
    pub source: String,
}

/// Where a data set's values are.
#[derive(Debug)]
pub enum Storage {
    /// In memory, row-major.
    Memory(Vec<f64>),
    /// In a Parquet or Arrow IPC file, read a record batch at a time on
    /// every pass.
    Streamed(ColumnarTable),
}

impl Dataset {
    /// Rows in memory, row-major.
    pub fn in_memory(values: Vec<f64>, rows: usize, source: impl Into<String>) -> Dataset {
        Dataset {
            storage: Storage::Memory(values),
            rows,
            source: source.into(),
        }
    }

    /// The values when they are in memory (row-major), `None` when streamed.
    pub fn values(&self) -> Option<&[f64]> {
        match &self.storage {
            Storage::Memory(values) => Some(values),
            Storage::Streamed(_) => None,
        }
    }

    /// Whether the rows are streamed from a file on every pass.
    pub fn is_streamed(&self) -> bool {
        matches!(self.storage, Storage::Streamed(_))
    }
}

/// Why data could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DataError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {message}")]
    #[diagnostic(help("check the path"))]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The rows could not be written.
    #[error("cannot write `{path}`: {message}")]
    #[diagnostic(help("check that the folder exists and can be written to"))]
    Write {
        /// The file (or `-`, standard output).
        path: String,
        /// Why.
        message: String,
    },
    /// No header or no rows.
    #[error("`{path}` has no data rows")]
    #[diagnostic(help(
        "a CSV file needs a header line naming the columns ({expected}) and at least one row"
    ))]
    Empty {
        /// The file.
        path: String,
        /// The expected header.
        expected: String,
    },
    /// A column the model needs is not in the header.
    #[error("{path}:1: missing column `{column}`")]
    #[diagnostic(help("the header must name every data column of the model: {expected}"))]
    MissingColumn {
        /// The file.
        path: String,
        /// The column.
        column: String,
        /// The expected header.
        expected: String,
        /// The text.
        #[source_code]
        src: NamedSource<String>,
        /// The header.
        #[label("this header has no `{column}`")]
        span: SourceSpan,
    },
    /// A row with the wrong number of fields.
    #[error("{path}:{line}: the row has {found} fields, the header has {expected}")]
    #[diagnostic(help("every row needs one value per header column"))]
    Ragged {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// Fields found.
        found: usize,
        /// Fields expected.
        expected: usize,
        /// The text.
        #[source_code]
        src: NamedSource<String>,
        /// The row.
        #[label("this row")]
        span: SourceSpan,
    },
    /// A cell that is not a number, or not finite.
    #[error("{path}:{line}:{column}: `{value}` in column `{name}` is not a finite number")]
    #[diagnostic(help("{hint}"))]
    BadCell {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// 1-based column (characters).
        column: usize,
        /// The column's name.
        name: String,
        /// The cell.
        value: String,
        /// What to do.
        hint: String,
        /// The text.
        #[source_code]
        src: NamedSource<String>,
        /// The cell.
        #[label("here")]
        span: SourceSpan,
    },
    /// A Parquet or Arrow IPC file has no column for a data scalar.
    #[error("`{path}`: no column `{column}` (for the model's data `{id}`)")]
    #[diagnostic(help(
        "the file's columns are {available}; name a column for `{id}` with --column {id}=COLUMN"
    ))]
    NoSuchColumn {
        /// The file.
        path: String,
        /// The column looked for.
        column: String,
        /// The model's data scalar.
        id: String,
        /// The file's columns.
        available: String,
    },
    /// A column that does not hold numbers.
    #[error("`{path}`: column `{column}` holds {found}, not numbers")]
    #[diagnostic(help(
        "integer, floating-point, decimal and boolean columns are read as f64; convert this one, or map another with --column"
    ))]
    WrongType {
        /// The file.
        path: String,
        /// The column.
        column: String,
        /// Its type.
        found: String,
    },
    /// A null, NaN or infinite value in a column the model reads.
    #[error("`{path}`: column `{column}` has {value} at {place}")]
    #[diagnostic(help("nulls, NaN and infinite values cannot be fitted; drop or impute the row"))]
    BadValue {
        /// The file.
        path: String,
        /// The column.
        column: String,
        /// The row (and row group).
        place: String,
        /// The value.
        value: String,
    },
    /// A file that is not in the format its extension says.
    #[error("`{path}` is not a readable {format} file: {message}")]
    #[diagnostic(help(
        "the extension chooses the reader: .parquet/.pq Parquet, .arrow/.ipc/.feather the Arrow IPC file format, anything else CSV"
    ))]
    NotFormat {
        /// The file.
        path: String,
        /// The format its extension names.
        format: &'static str,
        /// The reader's message.
        message: String,
    },
    /// Rows asked of a model without data fields.
    #[error("model `{0}` has no data fields")]
    #[diagnostic(help("a model without data has no rows to draw or read"))]
    NoData(String),
    /// `--column` mapping a name that is not a data scalar of the model.
    #[error("--column `{0}`: the model has no data `{1}`")]
    #[diagnostic(help("the model's data columns are {2}"))]
    UnknownMapping(String, String, String),
    /// `--synthetic` without a `[synthetic]` section, or a bad draw.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Synthetic(#[from] SyntheticError),
    /// `--standardize` of a field the model does not have.
    #[error("cannot standardise `{0}`: not a data field of the model")]
    #[diagnostic(help("data fields: {1}"))]
    UnknownField(String, String),
    /// A row-group size (`sample --row-group-rows`) of 0, or for a file
    /// that has no row groups.
    #[error("`{path}`: row groups of {rows} rows: {why}")]
    #[diagnostic(help(
        "--row-group-rows takes a number ≥ 1 and an output file named .parquet or .pq"
    ))]
    RowGroups {
        /// The destination.
        path: String,
        /// The size asked for.
        rows: usize,
        /// What is wrong with it.
        why: &'static str,
    },
}

fn expected_header(model: &Model) -> String {
    model
        .data
        .iter()
        .map(|s| s.id.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether header `name` is the data scalar `id` (`x_1` also as `x1`).
fn names(name: &str, id: &str) -> bool {
    let name = name.trim();
    name == id || name == id.replace('_', "")
}

/// A model data scalar's column named otherwise in a file (`--column
/// x_1=age`): the model's id and the file's column.
pub type ColumnMapping = (String, String);

/// Read a data file, by its extension: Parquet (`.parquet`, `.pq`) and
/// Arrow IPC (`.arrow`, `.ipc`, `.feather`) streamed on every pass (or read
/// into memory with `in_memory`), anything else as CSV into memory.
/// `mapping` names the file's column for some of the model's data scalars.
pub fn load(
    path: &Path,
    model: &Model,
    mapping: &[ColumnMapping],
    in_memory: bool,
) -> Result<Dataset, DataError> {
    let ids: Vec<&str> = model.data.iter().map(|s| s.id.as_str()).collect();
    if let Some((id, column)) = mapping.iter().find(|(id, _)| !ids.contains(&id.as_str())) {
        return Err(DataError::UnknownMapping(
            format!("{id}={column}"),
            id.clone(),
            ids.join(", "),
        ));
    }
    let Some(format) = Format::of(path) else {
        return load_csv(path, model, mapping);
    };
    let table = ColumnarTable::open(path, format, &ids, mapping)?;
    let rows = table.rows();
    if in_memory {
        let values = table.read_all()?;
        return Ok(Dataset::in_memory(values, rows, path.display().to_string()));
    }
    Ok(Dataset {
        source: table.describe(),
        rows,
        storage: Storage::Streamed(table),
    })
}

/// Read a CSV file.
pub fn load_csv(
    path: &Path,
    model: &Model,
    mapping: &[ColumnMapping],
) -> Result<Dataset, DataError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| DataError::Io {
        path: display.clone(),
        message: e.to_string(),
    })?;
    parse_mapped_csv(&display, &text, model, mapping)
}

/// Parse CSV text (`#` starts a comment line).
pub fn parse_csv(path: &str, text: &str, model: &Model) -> Result<Dataset, DataError> {
    parse_mapped_csv(path, text, model, &[])
}

fn parse_mapped_csv(
    path: &str,
    text: &str,
    model: &Model,
    mapping: &[ColumnMapping],
) -> Result<Dataset, DataError> {
    let src = || NamedSource::new(path, text.to_string());
    let expected = expected_header(model);
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .flexible(true)
        .from_reader(text.as_bytes());
    let empty = || DataError::Empty {
        path: path.to_string(),
        expected: expected.clone(),
    };
    let header = reader.headers().map_err(|_| empty())?.clone();
    if header.is_empty() {
        return Err(empty());
    }
    let header_start = reader.position().byte() as usize;
    let header_line = text[..header_start.min(text.len())]
        .lines()
        .last()
        .unwrap_or_default()
        .len();
    let columns: Vec<usize> = model
        .data
        .iter()
        .map(|s| {
            let mapped = mapping.iter().find(|(id, _)| *id == s.id).map(|(_, c)| c);
            header
                .iter()
                .position(|h| match mapped {
                    Some(column) => h.trim() == column,
                    None => names(h, &s.id),
                })
                .ok_or_else(|| DataError::MissingColumn {
                    path: path.to_string(),
                    column: mapped.unwrap_or(&s.id).clone(),
                    expected: expected.clone(),
                    src: src(),
                    span: (header_start.saturating_sub(header_line + 1), header_line).into(),
                })
        })
        .collect::<Result<_, _>>()?;
    let mut values = Vec::new();
    let mut rows = 0;
    let mut record = csv::StringRecord::new();
    loop {
        let start = reader.position().clone();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(DataError::Io {
                    path: path.to_string(),
                    message: e.to_string(),
                });
            }
        }
        let pos = record.position().cloned().unwrap_or(start);
        let line = pos.line();
        let row_start = pos.byte() as usize;
        if record.len() != header.len() {
            let row_len = text[row_start..].lines().next().unwrap_or_default().len();
            return Err(DataError::Ragged {
                path: path.to_string(),
                line,
                found: record.len(),
                expected: header.len(),
                src: src(),
                span: (row_start, row_len).into(),
            });
        }
        for (k, &c) in columns.iter().enumerate() {
            let cell = &record[c];
            let parsed = cell.trim().parse::<f64>();
            match parsed {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    // Unquoted fields: the cell starts after the earlier
                    // fields and their commas (summed only here: per cell it
                    // made a row quadratic in its width).
                    let offset: usize = (0..c).map(|i| record[i].len() + 1).sum();
                    let hint = if parsed.is_ok() {
                        "NaN and infinite values cannot be fitted; drop or impute the row"
                            .to_string()
                    } else {
                        format!("column `{}` must hold numbers", model.data[k].id)
                    };
                    return Err(DataError::BadCell {
                        path: path.to_string(),
                        line,
                        column: text[row_start..row_start + offset].chars().count() + 1,
                        name: model.data[k].id.clone(),
                        value: cell.to_string(),
                        hint,
                        src: src(),
                        span: (row_start + offset, cell.len().max(1)).into(),
                    });
                }
            }
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(empty());
    }
    Ok(Dataset::in_memory(values, rows, path))
}

/// Write `n` rows of the model's `[synthetic]` process (seeded: the rows
/// of `--synthetic n --seed seed`) to `path`, in the format its extension
/// names (Parquet, Arrow IPC, else CSV), a block of rows at a time: the
/// memory does not grow with `n`. A Parquet file's row groups hold at most
/// `row_group_rows` rows (default [`columnar::ROW_GROUP_ROWS`]); the other
/// formats take no row-group size. The file appears whole or not at all
/// (written beside it, then renamed).
pub fn write_sample(
    model: &Model,
    n: usize,
    seed: u64,
    path: &Path,
    row_group_rows: Option<usize>,
) -> Result<(), DataError> {
    let io = |message: String| DataError::Write {
        path: path.display().to_string(),
        message,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    // A data file others may read, as any file a command writes (the
    // temporary file's own mode is 0600).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let tmp = builder.tempfile_in(dir).map_err(|e| io(e.to_string()))?;
    let file = std::io::BufWriter::new(tmp.reopen().map_err(|e| io(e.to_string()))?);
    write_sample_to(
        model,
        n,
        seed,
        Format::of(path),
        row_group_rows,
        file,
        &path.display().to_string(),
    )?;
    tmp.persist(path).map_err(|e| io(e.error.to_string()))?;
    Ok(())
}

/// [`write_sample`] into any writer: `format` (None: CSV), `name` the
/// destination in errors.
pub fn write_sample_to<W: std::io::Write + Send>(
    model: &Model,
    n: usize,
    seed: u64,
    format: Option<Format>,
    row_group_rows: Option<usize>,
    sink: W,
    name: &str,
) -> Result<(), DataError> {
    let io = |message: String| DataError::Write {
        path: name.to_string(),
        message,
    };
    let names: Vec<String> = model.data.iter().map(|s| s.id.clone()).collect();
    if names.is_empty() {
        return Err(DataError::NoData(model.name.clone()));
    }
    // The row-group size is checked here, once: the writer takes a non-zero
    // size, and only for Parquet.
    let row_groups = match row_group_rows {
        None => None,
        Some(rows) => {
            let checked = match (format, std::num::NonZeroUsize::new(rows)) {
                (Some(Format::Parquet), Some(rows)) => Ok(rows),
                (_, None) => Err("a row group holds at least one row"),
                (Some(Format::ArrowIpc), _) => {
                    Err("an Arrow IPC file has record batches, not row groups")
                }
                (None, _) => Err("a CSV file has no row groups"),
            };
            Some(checked.map_err(|why| DataError::RowGroups {
                path: name.to_string(),
                rows,
                why,
            })?)
        }
    };
    let mut sampler = synthetic::Sampler::new(model, seed)?;
    let cols = names.len();
    let mut out = match (format, row_groups) {
        (Some(_), Some(rows)) => BlockWriter::Columnar(
            columnar::ColumnarWriter::parquet(sink, &names, rows).map_err(io)?,
        ),
        (Some(format), None) => {
            BlockWriter::Columnar(columnar::ColumnarWriter::new(sink, format, &names).map_err(io)?)
        }
        (None, _) => {
            let mut csv = csv::Writer::from_writer(sink);
            csv.write_record(&names).map_err(|e| io(e.to_string()))?;
            BlockWriter::Csv(csv)
        }
    };
    let mut block = Vec::new();
    for start in (0..n).step_by(columnar::CHUNK_ROWS) {
        let rows = columnar::CHUNK_ROWS.min(n - start);
        sampler.draw(rows, &mut block)?;
        match &mut out {
            BlockWriter::Columnar(w) => w.write(rows, &block).map_err(io)?,
            BlockWriter::Csv(w) => {
                for row in block.chunks(cols) {
                    w.write_record(row.iter().map(f64::to_string))
                        .map_err(|e| io(e.to_string()))?;
                }
            }
        }
    }
    match out {
        BlockWriter::Columnar(w) => w.finish().map_err(io),
        BlockWriter::Csv(w) => w
            .into_inner()
            .map_err(|e| io(e.to_string()))?
            .flush()
            .map_err(|e| io(e.to_string())),
    }
}

/// Where [`write_sample`] writes its blocks of rows.
enum BlockWriter<W: std::io::Write + Send> {
    Columnar(columnar::ColumnarWriter<W>),
    Csv(csv::Writer<W>),
}

/// `n` rows from the model's `[synthetic]` process.
pub fn synthetic(model: &Model, n: usize, seed: u64) -> Result<Dataset, DataError> {
    Ok(Dataset::in_memory(
        synthetic::sample(model, n, seed)?,
        n,
        format!("synthetic, {n} rows, seed {seed}"),
    ))
}

/// The default data of a model: none without data fields; the embedded
/// `data/<name>.csv` of a built-in model; else its synthetic set.
pub fn default_for(model: &Model, builtin: bool) -> Result<Dataset, DataError> {
    if model.data.is_empty() {
        return Ok(Dataset::in_memory(
            vec![],
            0,
            "none (the model has no data)",
        ));
    }
    if builtin && let Some((_, text)) = BUILTIN_DATA.iter().find(|(n, _)| *n == model.name) {
        let mut d = parse_csv(&format!("data/{}.csv", model.name), text, model)?;
        d.source = format!("data/{}.csv (embedded)", model.name);
        return Ok(d);
    }
    let n = model.synthetic.as_ref().map_or(0, |s| s.samples);
    synthetic(model, n, DEFAULT_SEED)
}

impl Dataset {
    /// Standardise the columns of these data fields to mean 0, standard
    /// deviation 1 (a constant column is only centred).
    pub fn standardize(&mut self, model: &Model, fields: &[String]) -> Result<(), DataError> {
        let cols = model.data.len();
        for field in fields {
            let members: Vec<usize> = (0..cols)
                .filter(|&c| model.data[c].tensor == *field)
                .collect();
            if members.is_empty() {
                let all: Vec<&str> = model.data_tensors.iter().map(|t| t.name.as_str()).collect();
                return Err(DataError::UnknownField(field.clone(), all.join(", ")));
            }
            let values = match &mut self.storage {
                Storage::Memory(values) => values,
                Storage::Streamed(table) => {
                    members.iter().for_each(|&c| table.standardize(c));
                    continue;
                }
            };
            for c in members {
                let n = self.rows as f64;
                let column = || values.iter().skip(c).step_by(cols);
                let mean = column().sum::<f64>() / n;
                let sd = (column().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
                let scale = if sd > 0.0 { sd } else { 1.0 };
                for v in values.iter_mut().skip(c).step_by(cols) {
                    *v = (*v - mean) / scale;
                }
            }
        }
        self.source
            .push_str(&format!(", standardised: {}", fields.join(", ")));
        Ok(())
    }
}

/// The fields `--standardize` scales by default: every data field but the
/// last declared one (the response, by the convention of the built-ins).
pub fn default_standardized(model: &Model) -> Vec<String> {
    let n = model.data_tensors.len();
    model
        .data_tensors
        .iter()
        .take(n.saturating_sub(1))
        .map(|t| t.name.clone())
        .collect()
}
