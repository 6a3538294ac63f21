//! The pass as a DataFusion aggregate, on Parquet files the tests write:
//! partitions' partial states merge into the in-memory pass (1e-12
//! relative), the same query gives the same bits, SQL users get the same
//! numbers, and fits on the DataFusion objective reach the in-memory
//! optimum.

use datafusion::logical_expr::AggregateUDF;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use hessforge_datafusion::{DataFusionObjective, PassFunction, PassKind};
use hessforge_driver::{Prepared, Problem, prepare};
use hessforge_optim::{Objective, Rows, Settings, Status, Stopping, build, minimize};
use std::path::{Path, PathBuf};

const ROWS: usize = 120_000;
const SEED: u64 = 4;

fn in_memory() -> Prepared {
    let problem = Problem {
        synthetic: Some(ROWS),
        seed: SEED,
        init: Some("zeros".into()),
        ..Problem::default()
    };
    prepare("logistic_regression", &problem).unwrap()
}

/// The same rows (the synthetic draws of [`in_memory`]) as a Parquet file
/// of row groups of 10 000 rows.
fn write(prepared: &Prepared, path: &Path) {
    hessforge_driver::data::write_sample(&prepared.model, ROWS, SEED, path, Some(10_000)).unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    path: PathBuf,
    memory: Prepared,
    streamed: Prepared,
}

fn setup() -> Setup {
    let memory = in_memory();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    write(&memory, &path);
    let streamed = prepare(
        "logistic_regression",
        &Problem {
            data: Some(path.clone()),
            init: Some("zeros".into()),
            ..Problem::default()
        },
    )
    .unwrap();
    Setup {
        _dir: dir,
        path,
        memory,
        streamed,
    }
}

fn assert_close(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-12 * scale,
            "{what}[{i}]: {x:e} by DataFusion, {y:e} in memory"
        );
    }
}

fn point(p: usize) -> (Vec<f64>, Vec<f64>) {
    let theta = (0..p).map(|i| 0.2 * ((i as f64) * 0.9).sin()).collect();
    let v = (0..p).map(|i| ((i as f64) * 1.7).cos()).collect();
    (theta, v)
}

#[test]
fn four_partitions_merge_into_the_in_memory_pass_with_the_same_bits_every_time() {
    let s = setup();
    let df = DataFusionObjective::new(&s.streamed, 4).unwrap();
    assert_eq!(
        df.partitions_read().unwrap(),
        4,
        "the plan must split the file"
    );
    let memory = s.memory.objective();
    let p = memory.n_params();
    let (theta, v) = point(p);
    let (mut g1, mut h1, mut g2, mut h2) = (
        vec![0.0; p],
        vec![0.0; p * p],
        vec![0.0; p],
        vec![0.0; p * p],
    );
    let l1 = df.loss_grad_hess(&theta, Rows::All, &mut g1, &mut h1);
    let l2 = memory.loss_grad_hess(&theta, Rows::All, &mut g2, &mut h2);
    assert_close("loss", &[l1], &[l2]);
    assert_close("gradient", &g1, &g2);
    assert_close("hessian", &h1, &h2);
    let (mut o1, mut o2) = (vec![0.0; p], vec![0.0; p]);
    df.hess_vec(&theta, Rows::All, &v, &mut o1);
    memory.hess_vec(&theta, Rows::All, &v, &mut o2);
    assert_close("hess_vec", &o1, &o2);
    assert_close(
        "loss alone",
        &[df.loss(&theta, Rows::All)],
        &[memory.loss(&theta, Rows::All)],
    );
    // The same query again: the same bits.
    for _ in 0..3 {
        let (mut g3, mut h3) = (vec![0.0; p], vec![0.0; p * p]);
        let l3 = df.loss_grad_hess(&theta, Rows::All, &mut g3, &mut h3);
        assert_eq!(l3.to_bits(), l1.to_bits());
        assert!(g3.iter().zip(&g1).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(h3.iter().zip(&h1).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    assert!(df.failure().is_none());
}

#[test]
fn a_sql_user_gets_the_in_memory_gradient() {
    let s = setup();
    let memory = s.memory.objective();
    let p = memory.n_params();
    let (theta, _) = point(p);
    let function = PassFunction::new(
        s.memory.backend.clone(),
        &s.memory.constants,
        &theta,
        PassKind::Gradient,
        None,
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let value = rt.block_on(async {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(3));
        ctx.register_udaf(AggregateUDF::from(function.clone()));
        ctx.register_parquet("t", s.path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap();
        let names: Vec<String> = s.memory.model.data.iter().map(|d| d.id.clone()).collect();
        let sql = format!("SELECT hessforge_pass({}) AS pass FROM t", names.join(", "));
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        datafusion::common::ScalarValue::try_from_array(batches[0].column(0), 0).unwrap()
    });
    let result = function.result(&value).unwrap();
    let mut g = vec![0.0; p];
    let l = memory.loss_grad(&theta, Rows::All, &mut g);
    assert_eq!(result.rows, ROWS as f64);
    assert_close("loss", &[result.loss], &[l]);
    assert_close("gradient", &result.gradient, &g);
}

#[test]
fn fits_on_datafusion_passes_reach_the_in_memory_optimum() {
    let s = setup();
    let df = DataFusionObjective::new(&s.streamed, 4).unwrap();
    let memory = s.memory.objective();
    let stop = |grad_tol| Stopping {
        grad_tol,
        ..Stopping::default()
    };
    let start = &s.memory.start;
    let mut newton = build("newton", &Settings::default()).unwrap();
    let best = minimize(
        memory.as_ref(),
        newton.as_mut(),
        start,
        &stop(1e-13),
        &mut [],
    );
    assert_eq!(best.status, Status::Converged, "{}", best.message);
    let (lambda_min, _) = hessforge_driver::hessian_spectrum(memory.as_ref(), &best.theta);
    let root_p = (best.theta.len() as f64).sqrt();
    for (name, grad_tol) in [("newton", 1e-12), ("newton-cg", 1e-12), ("lbfgs", 1e-8)] {
        let mut method = build(name, &Settings::default()).unwrap();
        let fit = minimize(&df, method.as_mut(), start, &stop(grad_tol), &mut []);
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
fn a_csv_file_is_refused_with_the_reason() {
    let memory = in_memory();
    let e = DataFusionObjective::new(&memory, 2).err().unwrap();
    assert!(e.to_string().contains("Parquet and Arrow IPC"), "{e}");
}
