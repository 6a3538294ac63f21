//! `hessforge-cluster fit` as a user runs it: a Parquet file written by
//! the library's sampler, fitted with DataFusion passes, gives the JSON of
//! `hessforge run --json` with the in-memory fit's optimum; bad input exits
//! 2 naming what is wrong.

use assert_cmd::Command;
use hessforge_driver::{Problem, fit, optimizer, prepare};
use hessforge_optim::{Settings, Stopping};
use std::path::Path;

fn cluster() -> Command {
    Command::cargo_bin("hessforge-cluster").unwrap()
}

fn sample(path: &Path, rows: usize) {
    let model = hessforge_driver::models::load("logistic_regression").unwrap();
    hessforge_driver::data::write_sample(&model, rows, 9, path, None).unwrap();
}

#[test]
fn a_fit_on_datafusion_passes_prints_the_in_memory_optimum_as_run_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    sample(&path, 20_000);
    let out = cluster()
        .args([
            "fit",
            "logistic_regression",
            "--optimizer",
            "newton",
            "--partitions",
            "2",
        ])
        .args(["--tol", "1e-12", "--json", "--data"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "converged");
    assert_eq!(json["rows"], 20_000);
    assert!(
        json["data"]
            .as_str()
            .unwrap()
            .contains("DataFusion, 2 partitions")
    );
    // The same rows in memory, the same method.
    let memory = prepare(
        "logistic_regression",
        &Problem {
            synthetic: Some(20_000),
            seed: 9,
            ..Problem::default()
        },
    )
    .unwrap();
    let stopping = Stopping {
        grad_tol: 1e-12,
        ..Stopping::default()
    };
    let mut newton = optimizer("newton", &Settings::default()).unwrap();
    let best = fit(&memory, "newton", newton.as_mut(), &stopping, &mut []);
    assert_eq!(json["iterations"], best.iterations);
    for (x, y) in json["theta"].as_array().unwrap().iter().zip(&best.theta) {
        let x = x.as_f64().unwrap();
        assert!((x - y).abs() <= 1e-10, "{x} against {y}");
    }
}

#[test]
fn bad_input_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    sample(&path, 100);
    let csv = dir.path().join("rows.csv");
    sample(&csv, 100);
    let refused = |extra: &[&str], data: &Path, says: &str| {
        let out = cluster()
            .args(["fit", "logistic_regression"])
            .args(extra)
            .arg("--data")
            .arg(data)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(stderr.contains(says), "`{says}` not in {stderr}");
    };
    refused(&["--optimizer", "newton"], &csv, "Parquet and Arrow IPC");
    refused(&["--optimizer", "sgd"], &path, "--in-memory");
    refused(
        &["--optimizer", "newton", "--column", "y=label"],
        &path,
        "label",
    );
    refused(
        &["--optimizer", "newton", "--partitions", "0"],
        &path,
        "--partitions",
    );
    refused(&["--optimizer", "newtonn"], &path, "newtonn");
}
