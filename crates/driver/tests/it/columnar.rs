//! Parquet and Arrow IPC data, written by the tests with the Arrow crates:
//! a streamed pass (record batch by record batch, several row groups)
//! equals the in-memory pass, fits reach the in-memory optimum, columns map
//! by name, and every bad file is an error naming the file, the column and
//! the row.

use crate::common::run;
use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{Field, Schema};
use hessforge_driver::data::DataError;
use hessforge_driver::{PrepareError, Prepared, Problem, prepare};
use hessforge_optim::{Objective, Rows, Settings, Status, Stopping};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// 150 000 rows: three record batches of the reader (65 536 rows each, the
/// last one shorter), written in row groups of 40 000.
const ROWS: usize = 150_000;
const ROW_GROUP: usize = 40_000;

/// Logistic regression's synthetic rows, in memory.
fn in_memory(rows: usize) -> Prepared {
    let problem = Problem {
        synthetic: Some(rows),
        seed: 11,
        init: Some("zeros".into()),
        ..Problem::default()
    };
    prepare("logistic_regression", &problem).unwrap()
}

/// The columns of a prepared in-memory data set, named `names`.
fn columns(prepared: &Prepared, names: &[String]) -> Vec<(String, ArrayRef)> {
    let values = prepared.data.values().unwrap();
    let cols = names.len();
    names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let column: Vec<f64> = values.iter().skip(k).step_by(cols).copied().collect();
            (
                name.clone(),
                Arc::new(Float64Array::from(column)) as ArrayRef,
            )
        })
        .collect()
}

fn batch(columns: Vec<(String, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(n, a.data_type().clone(), a.null_count() > 0))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

fn write_arrow(path: &Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = arrow_ipc::writer::FileWriter::try_new(file, &batch.schema()).unwrap();
    // Two record batches in the file.
    let half = batch.num_rows() / 2;
    writer.write(&batch.slice(0, half)).unwrap();
    writer
        .write(&batch.slice(half, batch.num_rows() - half))
        .unwrap();
    writer.finish().unwrap();
}

fn model_names(prepared: &Prepared) -> Vec<String> {
    prepared.model.data.iter().map(|s| s.id.clone()).collect()
}

// The error carries a file's text for its snippet (as in the library).
#[allow(clippy::result_large_err)]
fn from_file(path: &Path, columns: &[&str]) -> Result<Prepared, PrepareError> {
    prepare(
        "logistic_regression",
        &Problem {
            data: Some(path.to_path_buf()),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            init: Some("zeros".into()),
            ..Problem::default()
        },
    )
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
}

fn assert_close(what: &str, a: &[f64], b: &[f64], tol: f64) {
    let scale = b.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{i}]: {x:e} streamed, {y:e} in memory"
        );
    }
}

/// Every pass of the streamed objective against the in-memory one, at a
/// point away from the start.
fn assert_same_passes(streamed: &dyn Objective, memory: &dyn Objective) {
    let p = memory.n_params();
    assert_eq!(streamed.n_rows(), memory.n_rows());
    let theta: Vec<f64> = (0..p).map(|i| 0.3 * ((i as f64) * 0.7).sin()).collect();
    let v: Vec<f64> = (0..p).map(|i| ((i as f64) * 1.3).cos()).collect();
    let (mut g1, mut h1, mut g2, mut h2) = (
        vec![0.0; p],
        vec![0.0; p * p],
        vec![0.0; p],
        vec![0.0; p * p],
    );
    let l1 = streamed.loss_grad_hess(&theta, Rows::All, &mut g1, &mut h1);
    let l2 = memory.loss_grad_hess(&theta, Rows::All, &mut g2, &mut h2);
    assert!(close(l1, l2, 1e-12), "loss {l1} streamed, {l2} in memory");
    assert_close("grad", &g1, &g2, 1e-12);
    assert_close("hess", &h1, &h2, 1e-12);
    let (mut o1, mut o2) = (vec![0.0; p], vec![0.0; p]);
    streamed.hess_vec(&theta, Rows::All, &v, &mut o1);
    memory.hess_vec(&theta, Rows::All, &v, &mut o2);
    assert_close("hess_vec", &o1, &o2, 1e-12);
    streamed.hess_diag(&theta, &mut o1);
    memory.hess_diag(&theta, &mut o2);
    assert_close("hess_diag", &o1, &o2, 1e-12);
    assert!(close(
        streamed.loss(&theta, Rows::All),
        memory.loss(&theta, Rows::All),
        1e-12
    ));
}

struct Files {
    _dir: tempfile::TempDir,
    parquet: PathBuf,
    arrow: PathBuf,
    memory: Prepared,
}

fn files() -> Files {
    let memory = in_memory(ROWS);
    let dir = tempfile::tempdir().unwrap();
    let names = model_names(&memory);
    let b = batch(columns(&memory, &names));
    let parquet = dir.path().join("rows.parquet");
    let arrow = dir.path().join("rows.arrow");
    write_parquet(&parquet, &b);
    write_arrow(&arrow, &b);
    Files {
        _dir: dir,
        parquet,
        arrow,
        memory,
    }
}

#[test]
fn a_streamed_pass_equals_the_in_memory_pass_and_fits_reach_the_same_optimum() {
    let f = files();
    for path in [&f.parquet, &f.arrow] {
        let streamed = from_file(path, &[]).unwrap();
        assert!(streamed.data.is_streamed(), "{}", streamed.data.source);
        assert_eq!(streamed.data.rows, ROWS);
        assert_same_passes(streamed.objective().as_ref(), f.memory.objective().as_ref());
    }
    // The optimum, in memory: Newton to ‖∇L‖∞ ≤ 10⁻¹³.
    let tight = |grad_tol| Stopping {
        grad_tol,
        ..Stopping::default()
    };
    let (best, _) = run(&f.memory, "newton", &Settings::default(), &tight(1e-13));
    assert_eq!(best.status, Status::Converged, "{}", best.message);
    let (lambda_min, _) =
        hessforge_driver::hessian_spectrum(f.memory.objective().as_ref(), &best.theta);
    assert!(lambda_min > 0.0);
    // Each streamed fit is as near that optimum as its gradient says:
    // ‖θ − θ*‖₂ ≤ ‖∇L(θ)‖₂ / λ_min (+ the optimum's own share), ‖∇L‖₂ ≤ √P‖∇L‖∞.
    let streamed = from_file(&f.parquet, &[]).unwrap();
    let root_p = (best.theta.len() as f64).sqrt();
    for (name, grad_tol) in [("newton", 1e-12), ("newton-cg", 1e-12), ("lbfgs", 1e-8)] {
        let (fit, _) = run(&streamed, name, &Settings::default(), &tight(grad_tol));
        assert_eq!(fit.status, Status::Converged, "{name}: {}", fit.message);
        let distance = fit
            .theta
            .iter()
            .zip(&best.theta)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        let bound = root_p * (fit.grad_norm + 1e-13) / lambda_min;
        assert!(
            distance <= bound && (name == "lbfgs" || distance <= 1e-10),
            "{name}: ‖θ − θ*‖ = {distance:e} > {bound:e}"
        );
    }
}

#[test]
fn columns_map_by_name_and_take_any_numeric_type() {
    let memory = in_memory(1000);
    let dir = tempfile::tempdir().unwrap();
    // x_1 … x_10 spelled x1 … x10 (matched as CSV headers are), y renamed
    // and stored as a boolean, x10 as f32 — with the other columns around.
    let mut names = model_names(&memory);
    for n in names.iter_mut().take(10) {
        *n = n.replace('_', "");
    }
    names[10] = "clicked".into();
    let mut cols = columns(&memory, &names);
    let y = cols[10].1.as_any().downcast_ref::<Float64Array>().unwrap();
    cols[10].1 = Arc::new(
        y.iter()
            .map(|v| v.map(|v| v > 0.5))
            .collect::<BooleanArray>(),
    );
    let x10 = cols[9].1.as_any().downcast_ref::<Float64Array>().unwrap();
    let x10_f32: Float32Array = x10.iter().map(|v| v.map(|v| v as f32)).collect();
    cols[9].1 = Arc::new(x10_f32.clone());
    cols.insert(
        0,
        ("id".into(), Arc::new(Int64Array::from_iter_values(0..1000))),
    );
    cols.push((
        "note".into(),
        Arc::new(StringArray::from(vec!["row"; 1000])) as ArrayRef,
    ));
    let path = dir.path().join("mapped.parquet");
    write_parquet(&path, &batch(cols));
    let missing = from_file(&path, &[]).err().expect("y is missing");
    let PrepareError::Data(DataError::NoSuchColumn {
        column, available, ..
    }) = &missing
    else {
        panic!("{missing:?}")
    };
    assert_eq!(column, "y");
    assert!(available.contains("`clicked`"), "{available}");
    let streamed = from_file(&path, &["y=clicked"]).unwrap();
    // The same rows, x10 rounded to f32 as stored.
    let mut values = memory.data.values().unwrap().to_vec();
    for (r, v) in x10_f32.values().iter().enumerate() {
        values[r * 11 + 9] = f64::from(*v);
    }
    let rounded = hessforge_driver::Dataset::in_memory(values, 1000, "rounded");
    let memory = Prepared {
        data: rounded,
        ..memory
    };
    assert_same_passes(streamed.objective().as_ref(), memory.objective().as_ref());
    // A mapping to a column that holds text.
    let text = from_file(&path, &["y=note"]).err().unwrap();
    assert!(
        matches!(&text, PrepareError::Data(DataError::WrongType { column, .. }) if column == "note"),
        "{text:?}"
    );
    // A mapping of a name the model does not have.
    let unknown = from_file(&path, &["z=clicked"]).err().unwrap();
    assert!(
        matches!(&unknown, PrepareError::Data(DataError::UnknownMapping(..))),
        "{unknown:?}"
    );
}

#[test]
fn a_null_or_nan_is_an_error_naming_the_column_row_and_row_group() {
    let memory = in_memory(100_000);
    let dir = tempfile::tempdir().unwrap();
    let names = model_names(&memory);
    for (bad, what) in [(None, "a null"), (Some(f64::NAN), "`NaN`")] {
        let mut cols = columns(&memory, &names);
        let x3 = cols[2].1.as_any().downcast_ref::<Float64Array>().unwrap();
        // Row 81 234: the third row group (from 80 000).
        let with_bad: Float64Array = x3
            .iter()
            .enumerate()
            .map(|(r, v)| if r == 81_234 { bad } else { v })
            .collect();
        cols[2].1 = Arc::new(with_bad);
        let path = dir.path().join("bad.parquet");
        write_parquet(&path, &batch(cols));
        let e = from_file(&path, &[]).err().unwrap();
        let text = e.to_string();
        assert!(
            text.contains("column `x_3`")
                && text.contains(what)
                && text.contains("row 81234")
                && text.contains("row group 2")
                && text.contains("bad.parquet"),
            "{text}"
        );
    }
}

#[test]
fn a_file_that_is_not_parquet_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    std::fs::write(&path, "x_1,y\n1,0\n").unwrap();
    let e = from_file(&path, &[]).err().unwrap();
    assert!(
        matches!(
            &e,
            PrepareError::Data(DataError::NotFormat {
                format: "Parquet",
                ..
            })
        ),
        "{e:?}"
    );
    let e = from_file(&dir.path().join("absent.arrow"), &[])
        .err()
        .unwrap();
    assert!(
        matches!(&e, PrepareError::Data(DataError::Io { .. })),
        "{e:?}"
    );
}

#[test]
fn mini_batches_need_the_rows_in_memory() {
    let f = files();
    let streamed = from_file(&f.parquet, &[]).unwrap();
    let e = hessforge_driver::optimizer_for(&streamed, "sgd", &Settings::default())
        .err()
        .expect("sgd is refused on streamed rows");
    assert!(e.hint.contains("--in-memory"), "{e}");
    let loaded = prepare(
        "logistic_regression",
        &Problem {
            data: Some(f.parquet.clone()),
            in_memory: true,
            ..Problem::default()
        },
    )
    .unwrap();
    assert!(!loaded.data.is_streamed());
    assert_eq!(loaded.data.values(), f.memory.data.values());
    assert!(hessforge_driver::optimizer_for(&loaded, "sgd", &Settings::default()).is_ok());
}

#[test]
fn standardised_streaming_equals_standardised_memory() {
    let f = files();
    let standardize = Some(vec!["x".to_string()]);
    let streamed = prepare(
        "logistic_regression",
        &Problem {
            data: Some(f.parquet.clone()),
            standardize: standardize.clone(),
            ..Problem::default()
        },
    )
    .unwrap();
    let memory = prepare(
        "logistic_regression",
        &Problem {
            synthetic: Some(ROWS),
            seed: 11,
            standardize,
            ..Problem::default()
        },
    )
    .unwrap();
    assert_same_passes(streamed.objective().as_ref(), memory.objective().as_ref());
}

#[test]
fn a_file_changed_during_a_fit_fails_the_run_with_a_reason() {
    let memory = in_memory(1000);
    let dir = tempfile::tempdir().unwrap();
    let names = model_names(&memory);
    let path = dir.path().join("rows.parquet");
    write_parquet(&path, &batch(columns(&memory, &names)));
    let streamed = from_file(&path, &[]).unwrap();
    // Half the rows now.
    let half = in_memory(500);
    write_parquet(&path, &batch(columns(&half, &names)));
    let (outcome, _) = run(
        &streamed,
        "newton",
        &Settings::default(),
        &Stopping::default(),
    );
    assert_eq!(outcome.status, Status::Failed);
    assert!(
        outcome.message.contains("1000 rows when opened"),
        "{}",
        outcome.message
    );
}
