//! Fits on Ballista clusters, on data the tests write: an in-process
//! standalone cluster (scheduler and executor in this process) and a real
//! one — a `hessforge-cluster scheduler` and two `executor` processes on
//! 127.0.0.1, bounded in time and killed by pid — reach the in-memory
//! optimum within 1e-10, for a built-in model and a model file (shipped
//! as loop IR); a fit whose executor is killed mid-fit either finishes
//! with the right answer or fails saying why.

use assert_cmd::cargo::CommandCargoExt;
use hessforge_driver::{Prepared, Problem, fit, optimizer, prepare};
use hessforge_optim::{Settings, Status, Stopping, minimize};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROWS: usize = 60_000;
const SEED: u64 = 8;

/// The in-memory problem and the same rows as a Parquet file of row
/// groups of 5 000 rows (so that the scan splits into partitions).
fn data(dir: &Path, model: &str) -> (Prepared, PathBuf) {
    let memory = prepare(
        model,
        &Problem {
            synthetic: Some(ROWS),
            seed: SEED,
            init: Some("zeros".into()),
            ..Problem::default()
        },
    )
    .unwrap();
    let path = dir.join("rows.parquet");
    hessforge_driver::data::write_sample(&memory.model, ROWS, SEED, &path, Some(5_000)).unwrap();
    (memory, path)
}

fn streamed(model: &str, path: &Path) -> Prepared {
    prepare(
        model,
        &Problem {
            data: Some(path.to_path_buf()),
            init: Some("zeros".into()),
            ..Problem::default()
        },
    )
    .unwrap()
}

fn stopping(grad_tol: f64) -> Stopping {
    Stopping {
        grad_tol,
        ..Stopping::default()
    }
}

/// The in-memory optimum: Newton's θ at ‖∇L‖∞ ≤ 1e-12.
fn optimum(memory: &Prepared) -> Vec<f64> {
    let mut m = optimizer("newton", &Settings::default()).unwrap();
    let best = fit(memory, "newton", m.as_mut(), &stopping(1e-12), &mut []);
    assert_eq!(best.status, Status::Converged, "{}", best.message);
    best.theta
}

fn assert_near(what: &str, theta: &[f64], best: &[f64]) {
    assert_eq!(theta.len(), best.len(), "{what}");
    for (i, (x, y)) in theta.iter().zip(best).enumerate() {
        assert!((x - y).abs() <= 1e-10, "{what}: θ[{i}] = {x} against {y}");
    }
}

/// (method, ‖∇L‖∞ tolerance) of the fits compared.
const METHODS: [(&str, f64); 3] = [("newton", 1e-12), ("newton-cg", 1e-11), ("lbfgs", 1e-12)];

#[test]
fn a_standalone_cluster_in_this_process_reaches_the_in_memory_optimum() {
    let dir = tempfile::tempdir().unwrap();
    let model_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../derivations/logistic_regression.toml")
        .to_string_lossy()
        .into_owned();
    let (memory, path) = data(dir.path(), "logistic_regression");
    let best = optimum(&memory);
    // The built-in (shipped by name) with every method; the model file
    // (shipped as IR, compiled by the executor) with Newton.
    for (model, methods) in [
        ("logistic_regression", &METHODS[..]),
        (model_file.as_str(), &METHODS[..1]),
    ] {
        let prepared = streamed(model, &path);
        let objective = hessforge_cluster::standalone(&prepared, 3).unwrap();
        for &(method, grad_tol) in methods {
            let mut m = optimizer(method, &Settings::default()).unwrap();
            let got = minimize(
                &objective,
                m.as_mut(),
                &prepared.start,
                &stopping(grad_tol),
                &mut [],
            );
            assert_eq!(
                got.status,
                Status::Converged,
                "{model} {method}: {} {:?}",
                got.message,
                objective.failure()
            );
            assert_near(&format!("{model} {method}"), &got.theta, &best);
            // The 12 row groups were read as partitions of their own.
            assert_eq!(objective.partials_merged(), 3, "{model} {method}");
        }
    }
}

/// `n` distinct free ports on 127.0.0.1 (bound together, then released
/// for the processes).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn wait_for_port(port: u16, within: Duration) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < within, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Child processes killed (by pid) when the test ends, however it ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn cluster() -> Command {
    Command::cargo_bin("hessforge-cluster").unwrap()
}

/// A scheduler and two executors on 127.0.0.1: the scheduler's address.
fn start_cluster(processes: &mut Processes) -> String {
    let ports = free_ports(5);
    let scheduler = ports[0];
    let address = format!("127.0.0.1:{scheduler}");
    processes.0.push(
        cluster()
            .args(["scheduler", "--bind", &address, "--executor-timeout", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(scheduler, Duration::from_secs(30));
    for executor in 0..2 {
        let (data, tasks) = (ports[1 + 2 * executor], ports[2 + 2 * executor]);
        processes.0.push(
            cluster()
                .args(["executor", "--scheduler", &address])
                .args(["--bind", &format!("127.0.0.1:{data}")])
                .args(["--grpc-port", &tasks.to_string()])
                .args(["--concurrent-tasks", "2", "--heartbeat", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for_port(data, Duration::from_secs(30));
        wait_for_port(tasks, Duration::from_secs(30));
    }
    // Registered by their first heartbeat.
    std::thread::sleep(Duration::from_secs(2));
    address
}

/// `hessforge-cluster fit … --json` on the cluster at `scheduler`, or on
/// this machine's DataFusion for None.
fn fit_command(
    model: &str,
    path: &Path,
    scheduler: Option<&str>,
    method: &str,
    grad_tol: f64,
) -> Command {
    let mut c = cluster();
    c.args(["fit", model, "--optimizer", method, "--partitions", "4"])
        .args(["--init", "zeros", "--json"])
        .args(["--tol", &grad_tol.to_string(), "--data"])
        .arg(path);
    if let Some(at) = scheduler {
        c.args(["--scheduler", at]);
    }
    c
}

fn theta_of(json: &serde_json::Value) -> Vec<f64> {
    json["theta"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// `child`'s exit and what it printed (stdout, stderr), or None after
/// `within` (then it is killed).
fn wait(child: &mut Child, within: Duration) -> Option<(std::process::ExitStatus, String, String)> {
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |pipe: Option<&mut dyn std::io::Read>| {
        let mut text = String::new();
        if let Some(pipe) = pipe {
            pipe.read_to_string(&mut text).unwrap();
        }
        text
    };
    let stdout = read(child.stdout.as_mut().map(|p| p as &mut dyn std::io::Read));
    let stderr = read(child.stderr.as_mut().map(|p| p as &mut dyn std::io::Read));
    Some((status, stdout, stderr))
}

#[test]
fn a_scheduler_and_two_executor_processes_fit_and_survive_a_killed_executor() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, path) = data(dir.path(), "logistic_regression");
    let mut processes = Processes(vec![]);
    let scheduler = start_cluster(&mut processes);
    let best = optimum(&memory);
    for (method, grad_tol) in METHODS {
        let out = fit_command(
            "logistic_regression",
            &path,
            Some(&scheduler),
            method,
            grad_tol,
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{method}: {stderr}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["status"], "converged");
        assert_eq!(json["rows"], ROWS);
        assert!(json["data"].as_str().unwrap().contains("Ballista at"));
        assert_near(method, &theta_of(&json), &best);
    }

    // A long fit (gradient descent, many passes); one executor is killed
    // while it runs. Either Ballista runs the lost tasks again and the fit
    // ends where the same fit on this machine's DataFusion ends, or it
    // fails saying so — within bounds.
    let (method, iterations) = ("gd", "60");
    let here = fit_command("logistic_regression", &path, None, method, 0.0)
        .args(["--max-iters", iterations])
        .output()
        .unwrap();
    let expected: serde_json::Value = serde_json::from_slice(&here.stdout).unwrap();
    let mut child = fit_command("logistic_regression", &path, Some(&scheduler), method, 0.0)
        .args(["--max-iters", iterations, "--pass-timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the fit ended before an executor could be killed"
    );
    let mut victim = processes.0.remove(2);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let (status, stdout, stderr) = wait(&mut child, Duration::from_secs(180))
        .expect("the fit neither finished nor failed within 3 minutes of the kill");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    eprintln!(
        "after the kill: {} in {} iterations ({})",
        json["status"], json["iterations"], json["message"]
    );
    if json["status"] == "failed" {
        // Failed, and said so: exit 1 and the pass's error.
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            json["message"].as_str().unwrap().contains("a pass failed"),
            "{json}"
        );
    } else {
        // Survived: the same iterations, the same answer.
        assert_eq!(json["iterations"], expected["iterations"], "{json}");
        assert_eq!(json["iterations"], 60, "{json}");
        assert_near("after the kill", &theta_of(&json), &theta_of(&expected));
    }
}

#[test]
fn an_unreachable_scheduler_and_bad_addresses_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    let model = hessforge_driver::models::load("logistic_regression").unwrap();
    hessforge_driver::data::write_sample(&model, 100, 1, &path, None).unwrap();
    let nobody = format!("127.0.0.1:{}", free_ports(1)[0]);
    let mut fit = fit_command("logistic_regression", &path, Some(&nobody), "newton", 1e-8);
    let mut child = fit
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stdout, stderr) =
        wait(&mut child, Duration::from_secs(60)).expect("a fit with no scheduler hangs");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains(&format!("cannot reach the scheduler at {nobody}")),
        "{stderr}"
    );
    let out = cluster()
        .args(["executor", "--scheduler", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not HOST:PORT"));
    let out = cluster()
        .args(["scheduler", "--bind", "127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
