//! Parquet and Arrow IPC data at the command line: `hessforge sample`
//! writes a model's synthetic rows to a file, `run --data FILE` streams it
//! and fits what `--synthetic N --seed S` fits in memory; a bad file or a
//! bad flag exits 2 naming the file and the column, and a damaged file
//! never crashes the process.

use crate::common::hessforge;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn sample(dir: &Path, name: &str, rows: usize, seed: u64) -> PathBuf {
    let path = dir.join(name);
    hessforge()
        .args(["sample", "logistic_regression", "--rows"])
        .arg(rows.to_string())
        .args(["--seed", &seed.to_string(), "-o"])
        .arg(&path)
        .assert()
        .success()
        .stdout("");
    path
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = hessforge()
        .args([
            "run",
            "logistic_regression",
            "--optimizer",
            "newton",
            "--json",
        ])
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_sampled_file_fits_as_the_same_rows_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let memory = json(&["--synthetic", "3000", "--seed", "3"]);
    for name in ["rows.parquet", "rows.arrow", "rows.csv"] {
        let path = sample(dir.path(), name, 3000, 3);
        let file = json(&["--data", path.to_str().unwrap()]);
        assert_eq!(file["rows"], 3000);
        assert_eq!(file["iterations"], memory["iterations"], "{name}");
        let (a, b) = (
            file["theta"].as_array().unwrap(),
            memory["theta"].as_array().unwrap(),
        );
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                "{name}: {x} against {y}"
            );
        }
        if name != "rows.csv" {
            assert!(
                file["data"].as_str().unwrap().contains("streamed"),
                "{file}"
            );
        }
    }
    // CSV on standard output: the same rows as the file.
    let out = hessforge()
        .args([
            "sample",
            "logistic_regression",
            "--rows",
            "5",
            "--seed",
            "3",
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    let written = std::fs::read_to_string(dir.path().join("rows.csv")).unwrap();
    assert!(written.starts_with(&printed), "{printed}");
    assert!(printed.starts_with("x_1,x_2,"));
}

#[test]
fn sample_writes_the_row_groups_asked_for_and_refuses_them_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let groups = |path: &Path| {
        let file = std::fs::File::open(path).unwrap();
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(file).unwrap();
        let meta = parquet::file::reader::FileReader::metadata(&reader);
        (0..meta.num_row_groups())
            .map(|g| meta.row_group(g).num_rows())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        groups(&sample(dir.path(), "default.parquet", 2500, 1)),
        [2500]
    );
    let path = dir.path().join("small.parquet");
    hessforge()
        .args([
            "sample",
            "logistic_regression",
            "--rows",
            "2500",
            "--seed",
            "1",
        ])
        .args(["--row-group-rows", "1000", "-o"])
        .arg(&path)
        .assert()
        .success()
        .stdout("");
    assert_eq!(groups(&path), [1000, 1000, 500]);
    // The same rows, in row groups or not.
    let (a, b) = (
        json(&["--data", path.to_str().unwrap()]),
        json(&[
            "--data",
            dir.path().join("default.parquet").to_str().unwrap(),
        ]),
    );
    assert_eq!(a["iterations"], b["iterations"]);
    for (x, y) in a["theta"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["theta"].as_array().unwrap())
    {
        let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
        assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{x} against {y}");
    }
    for (name, rows, says) in [
        ("zero.parquet", "0", "a row group holds at least one row"),
        ("rows.csv", "10", "a CSV file has no row groups"),
        ("rows.arrow", "10", "an Arrow IPC file has record batches"),
        // A folder that is not there: the rows cannot be written.
        ("no/such/rows.parquet", "10", "cannot write"),
    ] {
        let out = dir.path().join(name);
        let done = hessforge()
            .args(["sample", "logistic_regression", "--rows", "100"])
            .args(["--row-group-rows", rows, "-o"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(done.status.code(), Some(2), "{name}");
        assert!(done.stdout.is_empty(), "{name}");
        // The message as words (miette wraps long lines behind a `│`).
        let stderr = String::from_utf8_lossy(&done.stderr).replace('│', " ");
        let words = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains(says), "{name}: {words}");
        assert!(!out.exists(), "{name} was written");
    }
}

#[test]
fn a_missing_column_a_stochastic_optimizer_and_a_bad_mapping_exit_2_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(dir.path(), "rows.parquet", 100, 0);
    let data = path.to_str().unwrap();
    let refused = |args: &[&str], says: &[&str]| {
        let out = hessforge()
            .args(["run", "logistic_regression"])
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(out.stdout.is_empty());
        for s in says {
            assert!(stderr.contains(s), "`{s}` not in {stderr}");
        }
    };
    refused(
        &[
            "--optimizer",
            "newton",
            "--data",
            data,
            "--column",
            "y=label",
        ],
        &["rows.parquet", "no column `label`", "`x_1`", "y=COLUMN"],
    );
    refused(
        &["--optimizer", "sgd", "--data", data],
        &["mini-batches", "--in-memory"],
    );
    refused(
        &["--optimizer", "newton", "--data", data, "--column", "y"],
        &["--column", "ID=COLUMN"],
    );
    hessforge()
        .args([
            "run",
            "logistic_regression",
            "--optimizer",
            "sgd",
            "--max-iters",
            "2",
        ])
        .args(["--data", data, "--in-memory"])
        .assert()
        .code(predicates::ord::lt(2));
}

/// Damaged Parquet files (bytes overwritten at random): exit 0 or 1 with a
/// JSON document, or exit 2 naming the file; never a panic, a signal or a
/// hang.
#[test]
fn damaged_parquet_files_are_errors_never_crashes() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(sample(dir.path(), "good.parquet", 300, 1)).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut codes = [0usize; 3];
    for case in 0..40 {
        let mut bytes = good.clone();
        for _ in 0..rng.gen_range(1..8) {
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = rng.r#gen();
        }
        let path = dir.path().join("damaged.parquet");
        std::fs::write(&path, &bytes).unwrap();
        let out = hessforge()
            .args(["run", "logistic_regression", "--optimizer", "newton"])
            .args(["--max-iters", "3", "--json", "--data"])
            .arg(&path)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let context = format!("case {case}: {stderr}");
        assert!(!stderr.contains("panicked"), "{context}");
        match out.status.code() {
            Some(code @ (0 | 1)) => {
                serde_json::from_slice::<serde_json::Value>(&out.stdout).expect(&context);
                codes[code as usize] += 1;
            }
            Some(2) => {
                assert!(out.stdout.is_empty(), "{context}");
                assert!(stderr.contains("damaged.parquet"), "{context}");
                codes[2] += 1;
            }
            other => panic!("exit {other:?}: {context}"),
        }
    }
    assert!(codes[2] > 0, "{codes:?}");
    println!(
        "damaged Parquet files: {} ran, {} ran without converging, {} rejected",
        codes[0], codes[1], codes[2]
    );
}
