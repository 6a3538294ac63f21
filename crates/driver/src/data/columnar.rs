//! Columnar data files — Parquet and Arrow IPC — read with the Arrow
//! ecosystem's own readers (`parquet`'s Arrow reader, `arrow-ipc`), a
//! record batch at a time.
//!
//! A [`ColumnarTable`] is a file checked once when opened: every column
//! the model needs exists (matched by the model's data names, `x_1` also as
//! `x1`, or mapped with `--column x_1=age`), holds numbers (any integer,
//! float, decimal or boolean type, read as f64), and has no null, NaN or
//! infinity — an error names the file, the column and the row (and the
//! Parquet row group). That first pass also counts the rows and each
//! column's mean and standard deviation (for `--standardize`).
//!
//! After that, [`ColumnarTable::for_each_chunk`] streams the file again on
//! every pass: only the model's columns are decoded, each record batch of up
//! to [`CHUNK_ROWS`] rows is converted into one reused row-major buffer (the
//! layout the kernels read), and the caller evaluates it — so a pass holds
//! one batch in memory however many rows the file has.

use super::DataError;
use arrow_array::cast::AsArray;
use arrow_array::{Array, Float64Array, RecordBatch};
use arrow_schema::{DataType, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows per record batch a pass reads (and evaluates at once): the size
/// from which a compiled kernel runs a pass in parallel
/// ([`hessforge_kernels::PARALLEL_ROWS`]).
pub const CHUNK_ROWS: usize = hessforge_kernels::PARALLEL_ROWS;

/// The most rows of a row group of a Parquet file hessforge writes, unless
/// asked otherwise (`hessforge sample --row-group-rows`): arrow-rs's
/// default, 2²⁰.
pub const ROW_GROUP_ROWS: usize = parquet::file::properties::DEFAULT_MAX_ROW_GROUP_ROW_COUNT;

/// The two columnar formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet (`.parquet`, `.pq`).
    Parquet,
    /// The Arrow IPC file format (`.arrow`, `.ipc`, `.feather`).
    ArrowIpc,
}

impl Format {
    /// The format of a path, by its extension; `None` for anything else
    /// (read as CSV).
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "parquet" | "pq" => Some(Format::Parquet),
            "arrow" | "ipc" | "feather" => Some(Format::ArrowIpc),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Parquet => "Parquet",
            Format::ArrowIpc => "Arrow IPC",
        }
    }
}

/// One model data column's mean and standard deviation over the file
/// (population, divided by N), merged batch by batch in file order.
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    count: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    /// Chan et al.'s merge of a batch's moments into the running ones.
    fn merge(&mut self, batch: &[f64]) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as f64;
        let mean = batch.iter().sum::<f64>() / n;
        let m2: f64 = batch.iter().map(|v| (v - mean) * (v - mean)).sum();
        let total = self.count + n;
        let delta = mean - self.mean;
        self.mean += delta * n / total;
        self.m2 += m2 + delta * delta * self.count * n / total;
        self.count = total;
    }

    fn sd(&self) -> f64 {
        if self.count > 0.0 {
            (self.m2 / self.count).sqrt()
        } else {
            0.0
        }
    }
}

/// A Parquet or Arrow IPC file checked against a model: which of its
/// columns hold the model's data, how many rows it has, and the
/// standardisation applied as it is read.
#[derive(Debug)]
pub struct ColumnarTable {
    path: PathBuf,
    format: Format,
    /// The file's column feeding each model data column, by name.
    sources: Vec<String>,
    /// Those columns' indices in the file's schema, sorted and unique (the
    /// projection).
    projection: Vec<usize>,
    rows: usize,
    /// Rows per Parquet row group (empty for Arrow IPC), to name the row
    /// group of a bad value.
    row_groups: Vec<usize>,
    moments: Vec<Moments>,
    /// (shift, scale) per model column: the value read is (v − shift)/scale.
    scaling: Vec<(f64, f64)>,
}

/// A reader of record batches of the projected columns, either format.
type Batches = Box<dyn Iterator<Item = Result<RecordBatch, String>>>;

impl ColumnarTable {
    /// Open `path` for a model whose data columns are `ids` (in model
    /// order), `mapping` giving a file column for some of them (model id,
    /// file column): checks the schema and reads the file once (see the
    /// module documentation).
    pub fn open(
        path: &Path,
        format: Format,
        ids: &[&str],
        mapping: &[(String, String)],
    ) -> Result<ColumnarTable, DataError> {
        let display = path.display().to_string();
        let (schema, row_groups) = schema_of(path, format)?;
        let available = || {
            schema
                .fields()
                .iter()
                .map(|f| format!("`{}`", f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut sources = Vec::with_capacity(ids.len());
        let mut indices = Vec::with_capacity(ids.len());
        for id in ids {
            let mapped = mapping.iter().find(|(m, _)| m == id).map(|(_, s)| s);
            let index = match mapped {
                Some(source) => schema.index_of(source).ok(),
                None => schema
                    .fields()
                    .iter()
                    .position(|f| super::names(f.name(), id)),
            };
            let Some(index) = index else {
                return Err(DataError::NoSuchColumn {
                    path: display,
                    column: mapped.cloned().unwrap_or_else(|| id.to_string()),
                    id: id.to_string(),
                    available: available(),
                });
            };
            let field = schema.field(index);
            if !is_numeric(field.data_type()) {
                return Err(DataError::WrongType {
                    path: display,
                    column: field.name().clone(),
                    found: field.data_type().to_string(),
                });
            }
            sources.push(field.name().clone());
            indices.push(index);
        }
        let mut projection = indices.clone();
        projection.sort_unstable();
        projection.dedup();
        let mut table = ColumnarTable {
            path: path.to_path_buf(),
            format,
            sources,
            projection,
            rows: usize::MAX,
            row_groups,
            moments: vec![Moments::default(); ids.len()],
            scaling: vec![(0.0, 1.0); ids.len()],
        };
        // The first pass: checks every value, counts the rows, takes the
        // columns' moments.
        let mut moments = vec![Moments::default(); ids.len()];
        let mut column = Vec::new();
        let rows = table.for_each_chunk(&mut |chunk, n| {
            for (k, m) in moments.iter_mut().enumerate() {
                column.clear();
                column.extend((0..n).map(|r| chunk[r * ids.len() + k]));
                m.merge(&column);
            }
        })?;
        if rows == 0 {
            return Err(DataError::Empty {
                path: display,
                expected: ids.join(","),
            });
        }
        table.rows = rows;
        table.moments = moments;
        Ok(table)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The file's column read for each model data column.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// (shift, scale) per model data column: a value is read as
    /// (x − shift)/scale (identity unless standardised).
    pub fn scaling(&self) -> &[(f64, f64)] {
        &self.scaling
    }

    /// The file, its format and the columns read, in words.
    pub fn describe(&self) -> String {
        format!("{} ({}, streamed)", self.path.display(), self.format.name())
    }

    /// Standardise model column `k` to mean 0, sd 1 as it is read (a
    /// constant column only centred), as [`super::Dataset::standardize`]
    /// does in memory.
    pub fn standardize(&mut self, k: usize) {
        let m = self.moments[k];
        let sd = m.sd();
        self.scaling[k] = (m.mean, if sd > 0.0 { sd } else { 1.0 });
    }

    /// Read the whole file into memory, row-major.
    pub fn read_all(&self) -> Result<Vec<f64>, DataError> {
        let mut values = Vec::with_capacity(self.rows.saturating_mul(self.sources.len()));
        self.for_each_chunk(&mut |chunk, _| values.extend_from_slice(chunk))?;
        Ok(values)
    }

    /// One pass over the file: `f` gets each record batch as row-major
    /// f64 (the model's columns, standardised where asked) and its number of
    /// rows, in file order; returns the number of rows read. An error names
    /// the file, the column and the row; a file that no longer has the rows
    /// it had when opened is an error too.
    pub fn for_each_chunk(&self, f: &mut dyn FnMut(&[f64], usize)) -> Result<usize, DataError> {
        let cols = self.sources.len();
        let mut chunk: Vec<f64> = Vec::new();
        let mut offset = 0usize;
        for read in self.batches()? {
            let whole = read.map_err(|message| self.io(message))?;
            // An Arrow IPC file's record batches are as long as their writer
            // made them: at most CHUNK_ROWS rows are turned into rows at once.
            for start in (0..whole.num_rows()).step_by(CHUNK_ROWS) {
                let n = CHUNK_ROWS.min(whole.num_rows() - start);
                let batch = whole.slice(start, n);
                // Every entry is written below: no need to clear it.
                chunk.resize(n * cols, 0.0);
                // Each column as f64, checked; then the rows written one after
                // another, reading every column in step (writing a column at a
                // time strides through the whole block once per column).
                let mut arrays = Vec::with_capacity(cols);
                for source in &self.sources {
                    let Some(array) = batch.column_by_name(source) else {
                        return Err(self.io(format!("column `{source}` disappeared")));
                    };
                    let values = as_f64(array.as_ref()).ok_or_else(|| {
                        let t = array.data_type();
                        self.io(format!("column `{source}`: {t} is not read as f64"))
                    })?;
                    if values.null_count() > 0 {
                        let row = (0..n).find(|&r| values.is_null(r)).unwrap_or(0);
                        return Err(self.bad_value(source, offset + row, "a null".into()));
                    }
                    let all_finite = values.values().iter().all(|v| v.is_finite());
                    if !all_finite {
                        let column = values.values();
                        let (r, v) = column
                            .iter()
                            .enumerate()
                            .find(|(_, v)| !v.is_finite())
                            .unwrap_or((0, &0.0));
                        return Err(self.bad_value(source, offset + r, format!("`{v}`")));
                    }
                    arrays.push(values);
                }
                let columns: Vec<&[f64]> = arrays.iter().map(|a| &a.values()[..n]).collect();
                let identity = self.scaling.iter().all(|&s| s == (0.0, 1.0));
                for (r, row) in chunk.chunks_exact_mut(cols).enumerate() {
                    for ((x, column), &(shift, scale)) in
                        row.iter_mut().zip(&columns).zip(&self.scaling)
                    {
                        *x = if identity {
                            column[r]
                        } else {
                            (column[r] - shift) / scale
                        };
                    }
                }
                f(&chunk, n);
                offset += n;
            }
        }
        if self.rows != usize::MAX && offset != self.rows {
            return Err(self.io(format!(
                "it had {} rows when opened and has {offset} now; was it changed during the fit?",
                self.rows
            )));
        }
        Ok(offset)
    }

    fn batches(&self) -> Result<Batches, DataError> {
        let file = File::open(&self.path).map_err(|e| self.io(e.to_string()))?;
        match self.format {
            Format::Parquet => {
                let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| self.io(e.to_string()))?;
                let mask = ProjectionMask::roots(builder.parquet_schema(), self.projection.clone());
                let reader = builder
                    .with_projection(mask)
                    .with_batch_size(CHUNK_ROWS)
                    .build()
                    .map_err(|e| self.io(e.to_string()))?;
                Ok(Box::new(reader.map(|b| b.map_err(|e| e.to_string()))))
            }
            Format::ArrowIpc => {
                let reader = arrow_ipc::reader::FileReader::try_new_buffered(
                    file,
                    Some(self.projection.clone()),
                )
                .map_err(|e| self.io(e.to_string()))?;
                Ok(Box::new(reader.map(|b| b.map_err(|e| e.to_string()))))
            }
        }
    }

    fn io(&self, message: String) -> DataError {
        DataError::Io {
            path: self.path.display().to_string(),
            message,
        }
    }

    /// A null or non-finite value at row `row` (from 0) of `column`.
    fn bad_value(&self, column: &str, row: usize, value: String) -> DataError {
        let mut place = format!("row {row} (counting from 0)");
        let mut start = 0;
        for (g, &n) in self.row_groups.iter().enumerate() {
            if row < start + n {
                place.push_str(&format!(", row group {g}"));
                break;
            }
            start += n;
        }
        DataError::BadValue {
            path: self.path.display().to_string(),
            column: column.to_string(),
            place,
            value,
        }
    }
}

/// The file's Arrow schema, and the rows of each Parquet row group.
fn schema_of(
    path: &Path,
    format: Format,
) -> Result<(std::sync::Arc<Schema>, Vec<usize>), DataError> {
    let display = path.display().to_string();
    let io = |message: String| DataError::Io {
        path: display.clone(),
        message,
    };
    let file = File::open(path).map_err(|e| io(e.to_string()))?;
    let not_format = |e: String| DataError::NotFormat {
        path: display.clone(),
        format: format.name(),
        message: e,
    };
    match format {
        Format::Parquet => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| not_format(e.to_string()))?;
            let groups = builder
                .metadata()
                .row_groups()
                .iter()
                .map(|g| usize::try_from(g.num_rows()).unwrap_or(0))
                .collect();
            Ok((builder.schema().clone(), groups))
        }
        Format::ArrowIpc => {
            let reader = arrow_ipc::reader::FileReader::try_new_buffered(file, None)
                .map_err(|e| not_format(e.to_string()))?;
            Ok((reader.schema(), vec![]))
        }
    }
}

/// The column types read as f64: integers, floats, decimals, booleans.
fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Boolean)
}

/// A column of a type [`is_numeric`] accepts as f64, nulls kept, with the
/// values arrow-cast's `cast` gives: integers and floats converted by `as`
/// (exact but for integers beyond 2⁵³), decimals as x / 10^scale, booleans
/// as 1 and 0. `None` for any other type. Written here over arrow-array's
/// typed arrays rather than with arrow-cast, whose general casts (strings,
/// dates, decimals both ways) and arrow-ord under them were about 100 s of
/// one core of a fresh release build for this one conversion
/// (results/build).
fn as_f64(array: &dyn Array) -> Option<Float64Array> {
    use arrow_array::types::*;
    use num_traits::ToPrimitive;
    fn map<T: ArrowPrimitiveType>(a: &dyn Array, f: impl Fn(T::Native) -> f64) -> Float64Array {
        a.as_primitive::<T>().unary(f)
    }
    let scaled = |scale: &i8| 10_f64.powi(i32::from(*scale));
    Some(match array.data_type() {
        DataType::Float64 => array.as_primitive::<Float64Type>().clone(),
        DataType::Float32 => map::<Float32Type>(array, f64::from),
        DataType::Float16 => map::<Float16Type>(array, |x| x.to_f64()),
        DataType::Int8 => map::<Int8Type>(array, f64::from),
        DataType::Int16 => map::<Int16Type>(array, f64::from),
        DataType::Int32 => map::<Int32Type>(array, f64::from),
        DataType::Int64 => map::<Int64Type>(array, |x| x as f64),
        DataType::UInt8 => map::<UInt8Type>(array, f64::from),
        DataType::UInt16 => map::<UInt16Type>(array, f64::from),
        DataType::UInt32 => map::<UInt32Type>(array, f64::from),
        DataType::UInt64 => map::<UInt64Type>(array, |x| x as f64),
        DataType::Decimal32(_, s) => {
            let d = scaled(s);
            map::<Decimal32Type>(array, |x| f64::from(x) / d)
        }
        DataType::Decimal64(_, s) => {
            let d = scaled(s);
            map::<Decimal64Type>(array, |x| x as f64 / d)
        }
        DataType::Decimal128(_, s) => {
            let d = scaled(s);
            map::<Decimal128Type>(array, |x| x as f64 / d)
        }
        DataType::Decimal256(_, s) => {
            // Every i256 has an f64 (arrow-buffer's `to_f64` never fails).
            let d = scaled(s);
            map::<Decimal256Type>(array, |x| x.to_f64().unwrap_or(f64::NAN) / d)
        }
        DataType::Boolean => array
            .as_boolean()
            .iter()
            .map(|b| b.map(|b| f64::from(u8::from(b))))
            .collect(),
        _ => return None,
    })
}

/// Writes row-major blocks of f64 rows as a Parquet file (Snappy-compressed
/// row groups of up to [`ROW_GROUP_ROWS`] rows, or as many as asked) or an
/// Arrow IPC file (one record batch per block), one Float64 column per name.
/// A Parquet file's row groups are the unit its readers decode, and what
/// DataFusion splits a scan into partitions by.
pub struct ColumnarWriter<W: std::io::Write + Send> {
    names: Vec<String>,
    schema: std::sync::Arc<Schema>,
    sink: Sink<W>,
}

enum Sink<W: std::io::Write + Send> {
    Parquet(parquet::arrow::ArrowWriter<W>),
    ArrowIpc(arrow_ipc::writer::FileWriter<W>),
}

impl<W: std::io::Write + Send> ColumnarWriter<W> {
    /// A writer of columns `names` in `format` to `out` (a Parquet file's
    /// row groups of at most [`ROW_GROUP_ROWS`] rows).
    pub fn new(out: W, format: Format, names: &[String]) -> Result<Self, String> {
        Self::with_row_groups(out, format, names, ROW_GROUP_ROWS)
    }

    /// A Parquet writer of columns `names` to `out` whose row groups hold at
    /// most `row_group_rows` rows (an Arrow IPC file has none to choose).
    pub fn parquet(
        out: W,
        names: &[String],
        row_group_rows: std::num::NonZeroUsize,
    ) -> Result<Self, String> {
        Self::with_row_groups(out, Format::Parquet, names, row_group_rows.get())
    }

    fn with_row_groups(
        out: W,
        format: Format,
        names: &[String],
        row_group_rows: usize,
    ) -> Result<Self, String> {
        let fields: Vec<arrow_schema::Field> = names
            .iter()
            .map(|n| arrow_schema::Field::new(n, DataType::Float64, false))
            .collect();
        let schema = std::sync::Arc::new(Schema::new(fields));
        let sink = match format {
            Format::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(row_group_rows))
                    .build();
                Sink::Parquet(
                    parquet::arrow::ArrowWriter::try_new(out, schema.clone(), Some(props))
                        .map_err(|e| e.to_string())?,
                )
            }
            Format::ArrowIpc => Sink::ArrowIpc(
                arrow_ipc::writer::FileWriter::try_new(out, &schema).map_err(|e| e.to_string())?,
            ),
        };
        Ok(ColumnarWriter {
            names: names.to_vec(),
            schema,
            sink,
        })
    }

    /// Append `rows` rows, row-major.
    pub fn write(&mut self, rows: usize, values: &[f64]) -> Result<(), String> {
        let cols = self.names.len();
        let columns: Vec<arrow_array::ArrayRef> = (0..cols)
            .map(|k| {
                let column: Vec<f64> = (0..rows).map(|r| values[r * cols + k]).collect();
                std::sync::Arc::new(arrow_array::Float64Array::from(column))
                    as arrow_array::ArrayRef
            })
            .collect();
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| e.to_string())?;
        match &mut self.sink {
            Sink::Parquet(w) => w.write(&batch).map_err(|e| e.to_string()),
            Sink::ArrowIpc(w) => w.write(&batch).map_err(|e| e.to_string()),
        }
    }

    /// Write the footer.
    pub fn finish(self) -> Result<(), String> {
        match self.sink {
            Sink::Parquet(w) => w.close().map(|_| ()).map_err(|e| e.to_string()),
            Sink::ArrowIpc(mut w) => w.finish().map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::{Decimal256Type, Float16Type};
    use arrow_array::{ArrayRef, ArrowPrimitiveType};
    use arrow_array::{
        BooleanArray, Decimal32Array, Decimal64Array, Decimal128Array, Decimal256Array,
        Float32Array, Int8Array, Int16Array, Int32Array, Int64Array, PrimitiveArray, UInt8Array,
        UInt16Array, UInt32Array, UInt64Array,
    };
    use std::sync::Arc;

    /// Every type [`is_numeric`] accepts is read as f64 with the value it
    /// stands for, nulls kept; any other type is refused.
    #[test]
    fn every_numeric_type_reads_as_the_f64_it_stands_for() {
        let f16 = |x: f64| <Float16Type as ArrowPrimitiveType>::Native::from_f64(x);
        let i256 = |x: i128| <Decimal256Type as ArrowPrimitiveType>::Native::from_i128(x);
        let columns: Vec<(ArrayRef, Vec<Option<f64>>)> = vec![
            (
                Arc::new(Float32Array::from(vec![Some(0.1), None])),
                vec![Some(f64::from(0.1f32)), None],
            ),
            (
                Arc::new(PrimitiveArray::<Float16Type>::from(vec![
                    f16(0.5),
                    f16(-2.0),
                ])),
                vec![Some(0.5), Some(-2.0)],
            ),
            (
                Arc::new(Int8Array::from(vec![-128, 127])),
                vec![Some(-128.0), Some(127.0)],
            ),
            (Arc::new(Int16Array::from(vec![-3])), vec![Some(-3.0)]),
            (
                Arc::new(Int32Array::from(vec![i32::MIN])),
                vec![Some(-2_147_483_648.0)],
            ),
            (
                Arc::new(Int64Array::from(vec![1 << 53, -7])),
                vec![Some(9_007_199_254_740_992.0), Some(-7.0)],
            ),
            (Arc::new(UInt8Array::from(vec![255])), vec![Some(255.0)]),
            (
                Arc::new(UInt16Array::from(vec![65_535])),
                vec![Some(65_535.0)],
            ),
            (
                Arc::new(UInt32Array::from(vec![u32::MAX])),
                vec![Some(4_294_967_295.0)],
            ),
            (
                Arc::new(UInt64Array::from(vec![u64::MAX])),
                vec![Some(18_446_744_073_709_551_616.0)],
            ),
            (
                Arc::new(
                    Decimal32Array::from(vec![12_345])
                        .with_precision_and_scale(9, 2)
                        .unwrap(),
                ),
                vec![Some(123.45)],
            ),
            (
                Arc::new(
                    Decimal64Array::from(vec![-5])
                        .with_precision_and_scale(18, 1)
                        .unwrap(),
                ),
                vec![Some(-0.5)],
            ),
            (
                Arc::new(
                    Decimal128Array::from(vec![Some(7), None])
                        .with_precision_and_scale(38, 3)
                        .unwrap(),
                ),
                vec![Some(0.007), None],
            ),
            (
                Arc::new(
                    Decimal256Array::from(vec![i256(-25)])
                        .with_precision_and_scale(76, 2)
                        .unwrap(),
                ),
                vec![Some(-0.25)],
            ),
            (
                Arc::new(
                    Decimal128Array::from(vec![15])
                        .with_precision_and_scale(38, -2)
                        .unwrap(),
                ),
                vec![Some(1500.0)],
            ),
            (
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
                vec![Some(1.0), Some(0.0), None],
            ),
        ];
        for (column, expected) in columns {
            let t = column.data_type().clone();
            assert!(is_numeric(&t), "{t}");
            let read = as_f64(column.as_ref()).unwrap_or_else(|| panic!("{t} refused"));
            let read: Vec<Option<f64>> = read.iter().collect();
            assert_eq!(read, expected, "{t}");
        }
        let text = arrow_array::StringArray::from(vec!["1.5"]);
        assert!(as_f64(&text).is_none());
    }
}
