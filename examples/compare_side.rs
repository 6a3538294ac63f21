//! hessforge's side of `benches/compare/run.sh`: the measurements the
//! Python anchors are compared with, each printed as one JSON object.
//!
//! ```text
//! compare_side codegen FILE.toml REPEATS     derive + optimise + emit Rust; operation count
//! compare_side kernel-pass DATA.csv REPEATS [--parallel]
//!                                            one loss+gradient+Hessian pass of logistic regression
//! compare_side mlp-sample P REPEATS          one sample of mlp_tanh (P = 5, 17, 65)
//! compare_side wide-pass F N REPEATS [--parallel]
//!                                            one pass of logistic regression with F = 100
//!                                            or 1 000 features over N synthetic rows
//! compare_side fit-wide F N METHOD [--hessian dense|free] [--subproblem exact|steihaug]
//!                                    [--precondition diagonal]
//!                                            one optimizer from θ = 0 to ‖∇L‖∞ ≤ 1e-8 on that
//!                                            data (single thread): time, iterations, passes
//! compare_side write-wide F N PATH          that data as a CSV file (x_1 … x_F, y), for
//!                                            `hessforge run FILE --data PATH`
//! compare_side products MODEL REPEATS [--rows N]
//!                                            one loss+gradient pass and one Hessian–vector
//!                                            product, single thread: MODEL is digits (its
//!                                            embedded data) or wide-1000 (N rows, 1e5 unless given)
//! ```
//!
//! Built by `run.sh` with `cargo build --release --features bench-models
//! --example compare_side`; times are seconds, medians over the repeats
//! after one warm-up.

use hessforge_kernels::{
    At, Kernel, Rows, logistic_100::Logistic100, logistic_200::Logistic200,
    logistic_400::Logistic400, logistic_1000::Logistic1000, logistic_10000::Logistic10000,
    logistic_regression::LogisticRegression, mlp_tanh::MlpTanh, mlp_tanh_1::MlpTanh1,
    mlp_tanh_16::MlpTanh16,
};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, what: &str| -> String {
        args.get(i)
            .cloned()
            .unwrap_or_else(|| fail(&format!("missing {what}; see the usage in the file header")))
    };
    let count = |i: usize, what: &str| -> usize {
        arg(i, what)
            .parse()
            .unwrap_or_else(|_| fail(&format!("{what} is a count")))
    };
    if arg(0, "a task") == "fit-wide" {
        // A flag's value parsed by its type's FromStr, or the default.
        fn flag<T: std::str::FromStr<Err = String> + Default>(args: &[String], name: &str) -> T {
            match args.iter().position(|a| a == name) {
                Some(i) => args
                    .get(i + 1)
                    .unwrap_or_else(|| fail(&format!("{name} needs a value")))
                    .parse()
                    .unwrap_or_else(|e: String| fail(&format!("{name}: {e}"))),
                None => T::default(),
            }
        }
        let settings = hessforge_optim::Settings {
            hessian: flag(&args, "--hessian"),
            subproblem: flag(&args, "--subproblem"),
            precondition: flag(&args, "--precondition"),
            ..hessforge_optim::Settings::default()
        };
        let json = fit_wide(count(1, "F"), count(2, "N"), &arg(3, "METHOD"), &settings);
        println!("{json}");
        return;
    }
    if arg(0, "a task") == "write-wide" {
        let (f, rows, path) = (count(1, "F"), count(2, "N"), arg(3, "PATH"));
        write_wide(f, rows, Path::new(&path)).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
        println!(
            "{}",
            serde_json::json!({"task": "write-wide", "path": path})
        );
        return;
    }
    if arg(0, "a task") == "products" {
        let rows = match args.iter().position(|a| a == "--rows") {
            Some(i) => count(i + 1, "--rows N"),
            None => 100_000,
        };
        println!("{}", products(&arg(1, "MODEL"), count(2, "REPEATS"), rows));
        return;
    }
    if arg(0, "a task") == "wide-pass" {
        let parallel = args.iter().any(|a| a == "--parallel");
        let json = wide_pass(count(1, "F"), count(2, "N"), count(3, "REPEATS"), parallel);
        println!("{json}");
        return;
    }
    let repeats = count(2, "REPEATS");
    let json = match arg(0, "a task").as_str() {
        "codegen" => codegen(Path::new(&arg(1, "FILE.toml")), repeats),
        "kernel-pass" => kernel_pass(
            Path::new(&arg(1, "DATA.csv")),
            repeats,
            args.iter().any(|a| a == "--parallel"),
        ),
        "mlp-sample" => mlp_sample(
            arg(1, "P")
                .parse()
                .unwrap_or_else(|_| fail("P is 5, 17 or 65")),
            repeats,
        ),
        other => fail(&format!("unknown task `{other}`")),
    };
    println!("{json}");
}

fn fail(message: &str) -> ! {
    eprintln!("compare_side: {message}");
    std::process::exit(2)
}

/// Median, min and max of `repeats` timings of `f` after one warm-up call.
fn time(repeats: usize, mut f: impl FnMut()) -> serde_json::Value {
    f();
    let mut t: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    serde_json::json!({"median": t[t.len() / 2], "min": t[0], "max": t[t.len() - 1], "repeats": t.len()})
}

fn codegen(file: &Path, repeats: usize) -> serde_json::Value {
    let model = hessforge_spec::load_file(file).unwrap_or_else(|e| fail(&e.one_line()));
    let derivation =
        hessforge_symbolic::derive_scalar(&model).unwrap_or_else(|e| fail(&e.to_string()));
    let programs = hessforge_symbolic::lower(&derivation).unwrap_or_else(|e| fail(&e.to_string()));
    let split = programs.split(hessforge_kernels::ir::Outputs::LossGradHess);
    let operations = split.per_row.operation_count() + split.theta_only.operation_count();
    let derive = time(repeats, || {
        black_box(hessforge_symbolic::derive_scalar(&model).expect("derives"));
    });
    let total = time(repeats, || {
        black_box(hessforge_build::kernel_source(&model).expect("generates"));
    });
    // In index form: derive, lower into loops, emit the loop kernel.
    let index = model.has_tensor_parameter().then(|| {
        time(repeats, || {
            black_box(hessforge_build::loop_kernel_source(&model).expect("generates"));
        })
    });
    // Its derivation and lowering alone (the rest is emitting the Rust).
    let index_lower = model.has_tensor_parameter().then(|| {
        time(repeats, || {
            black_box(hessforge_symbolic::lower_loop_ir(&model).expect("lowers"));
        })
    });
    serde_json::json!({
        "task": "codegen", "model": model.name, "params": model.n_params(),
        "operations": operations, "derive_s": derive, "total_s": total, "index_s": index,
        "index_lower_s": index_lower,
    })
}

/// The CSV of `run.sh` (header x_1..x_10,y; no comments) as row-major rows.
fn read_rows(file: &Path) -> (Vec<f64>, usize) {
    let text =
        std::fs::read_to_string(file).unwrap_or_else(|e| fail(&format!("{}: {e}", file.display())));
    let mut values = Vec::new();
    let mut rows = 0;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        for cell in line.split(',') {
            values.push(
                cell.trim()
                    .parse::<f64>()
                    .unwrap_or_else(|_| fail(&format!("bad cell `{cell}`"))),
            );
        }
        rows += 1;
    }
    (values, rows)
}

fn kernel_pass(file: &Path, repeats: usize, parallel: bool) -> serde_json::Value {
    let (data, rows) = read_rows(file);
    let k = LogisticRegression;
    let p = k.n_params();
    assert_eq!(data.len(), rows * k.n_data(), "11 columns");
    let theta: Vec<f64> = (0..p).map(|i| 0.01 * (i as f64 - 5.0)).collect();
    let constants = [0.01];
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    let mut loss = 0.0;
    let t = time(repeats, || {
        let rows = if parallel { Rows::Parallel } else { Rows::All };
        let at = At::new(black_box(&theta), &constants, &data).rows(rows);
        loss = k.loss_grad_hess(at, &mut g, &mut h);
    });
    serde_json::json!({
        "task": "kernel-pass", "rows": rows, "parallel": parallel, "seconds": t,
        "loss": loss, "grad0": g[0], "hess00": h[0],
    })
}

/// One sample's loss + gradient + Hessian: (θ, gradient, Hessian) → loss.
type SampleKernel<'a> = dyn FnMut(&[f64], &mut [f64], &mut [f64]) -> f64 + 'a;

fn mlp_sample(p: usize, repeats: usize) -> serde_json::Value {
    let theta: Vec<f64> = (0..p).map(|i| 0.3 * ((i % 7) as f64 - 3.0) / 3.0).collect();
    let x = [0.4, -0.7, 0.25];
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    const CALLS: usize = 100_000;
    let mut loss = 0.0;
    let mut run = |f: &mut SampleKernel<'_>| {
        time(repeats, || {
            for _ in 0..CALLS {
                loss = f(black_box(&theta), &mut g, &mut h);
            }
        })
    };
    let t = match p {
        5 => run(&mut |t, g, h| MlpTanh1.loss_grad_hess(At::new(t, &[], black_box(&x)), g, h)),
        17 => run(&mut |t, g, h| MlpTanh.loss_grad_hess(At::new(t, &[], black_box(&x)), g, h)),
        65 => run(&mut |t, g, h| MlpTanh16.loss_grad_hess(At::new(t, &[], black_box(&x)), g, h)),
        _ => fail("P is 5, 17 or 65"),
    };
    let per_sample = |key: &str| t[key].as_f64().unwrap_or(0.0) / CALLS as f64;
    serde_json::json!({
        "task": "mlp-sample", "params": p, "calls_per_repeat": CALLS,
        "seconds_per_sample": {"median": per_sample("median"), "min": per_sample("min"), "max": per_sample("max")},
        "loss": loss,
    })
}

/// Entry k of the wide comparison's data (both sides compute the same
/// bits): x = 2 frac(k φ) − 1 for the features, and y = [frac(k √2) < ½]
/// for the label of row k.
fn wide_x(k: usize) -> f64 {
    let t = k as f64 * 0.618_033_988_749_894_9;
    2.0 * (t - t.floor()) - 1.0
}

fn wide_y(k: usize) -> f64 {
    let t = k as f64 * std::f64::consts::SQRT_2;
    if t - t.floor() < 0.5 { 1.0 } else { 0.0 }
}

/// The wide comparison's rows: F features then the label, row-major.
fn wide_data(f: usize, rows: usize) -> Vec<f64> {
    let mut data = Vec::with_capacity(rows * (f + 1));
    for i in 0..rows {
        data.extend((0..f).map(|j| wide_x(i * f + j)));
        data.push(wide_y(i));
    }
    data
}

/// [`wide_data`] as CSV: the columns a derivation file with data
/// `x = { shape = [F] }` and `y` reads (`x_1` … `x_F`, `y`), each value
/// written so that it reads back to the same bits.
fn write_wide(f: usize, rows: usize, path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let header: Vec<String> = (1..=f).map(|j| format!("x_{j}")).collect();
    writeln!(out, "{},y", header.join(","))?;
    for row in wide_data(f, rows).chunks(f + 1) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    out.flush()
}

/// One optimizer on the wide logistic regression from θ = 0 to
/// ‖∇L‖∞ ≤ 1e-8, single thread, through the library a user calls
/// (`KernelObjective`, `minimize`).
fn fit_wide(
    f: usize,
    rows: usize,
    method: &str,
    settings: &hessforge_optim::Settings,
) -> serde_json::Value {
    use hessforge_kernels::{Kernel, KernelObjective};
    use hessforge_optim::{Stopping, build, minimize};
    let k: &dyn Kernel = match f {
        100 => &Logistic100,
        200 => &Logistic200,
        400 => &Logistic400,
        1000 => &Logistic1000,
        10000 => &Logistic10000,
        _ => fail("F is 100, 200, 400, 1 000 or 10 000"),
    };
    let data = wide_data(f, rows);
    let objective = KernelObjective::new(k, &[0.01], &data).parallel_from(usize::MAX);
    let mut m = build(method, settings).unwrap_or_else(|e| fail(&e.to_string()));
    let start = Instant::now();
    let out = minimize(
        &objective,
        m.as_mut(),
        &vec![0.0; f + 1],
        &Stopping::default(),
        &mut [],
    );
    serde_json::json!({
        "task": "fit-wide", "features": f, "rows": rows, "method": method,
        "status": out.status, "iterations": out.iterations, "final_loss": out.final_loss,
        "grad_norm": out.grad_norm, "evaluations": out.evaluations,
        "seconds": start.elapsed().as_secs_f64(), "fit_seconds": out.seconds,
    })
}

/// One loss + gradient + Hessian pass of logistic regression with F
/// features over N rows (the generated loop kernels of the bench models).
fn wide_pass(f: usize, rows: usize, repeats: usize, parallel: bool) -> serde_json::Value {
    use hessforge_kernels::Kernel;
    let k: &dyn Kernel = match f {
        100 => &Logistic100,
        1000 => &Logistic1000,
        _ => fail("F is 100 or 1000"),
    };
    let p = f + 1;
    let data = wide_data(f, rows);
    let theta: Vec<f64> = (0..p).map(|i| 0.01 * ((i % 11) as f64 - 5.0)).collect();
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    let mut loss = 0.0;
    let t = time(repeats, || {
        let rows = if parallel { Rows::Parallel } else { Rows::All };
        let at = At::new(black_box(&theta), &[0.01], &data).rows(rows);
        loss = k.loss_grad_hess(at, &mut g, &mut h);
    });
    serde_json::json!({
        "task": "wide-pass", "features": f, "rows": rows, "parallel": parallel, "seconds": t,
        "loss": loss, "grad0": g[0], "hess00": h[0], "hess_last": h[p * p - 1],
    })
}

/// One loss + gradient pass and one Hessian–vector product at a fixed θ,
/// single thread: what a Newton–CG iteration costs per gradient and per
/// CG step.
fn products(model: &str, repeats: usize, rows: usize) -> serde_json::Value {
    use hessforge_kernels::Kernel;
    let (k, data, constants): (&dyn Kernel, Vec<f64>, Vec<f64>) = match model {
        "digits" => {
            let m =
                hessforge_driver::models::load("digits").unwrap_or_else(|e| fail(&e.to_string()));
            let d = hessforge_driver::data::default_for(&m, true)
                .unwrap_or_else(|e| fail(&e.to_string()));
            let values = match d.storage {
                hessforge_driver::data::Storage::Memory(values) => values,
                hessforge_driver::data::Storage::Streamed(_) => fail("digits is embedded"),
            };
            (&hessforge_kernels::digits::Digits, values, vec![1e-3])
        }
        "wide-1000" => (&Logistic1000, wide_data(1000, rows), vec![0.01]),
        _ => fail("MODEL is digits or wide-1000"),
    };
    let p = k.n_params();
    let theta: Vec<f64> = (0..p).map(|i| 0.01 * ((i % 11) as f64 - 5.0)).collect();
    let v: Vec<f64> = (0..p).map(|i| ((i % 7) as f64 - 3.0) / 3.0).collect();
    let (mut g, mut hv) = (vec![0.0; p], vec![0.0; p]);
    let gradient = time(repeats, || {
        black_box(k.loss_grad(At::new(black_box(&theta), &constants, &data), &mut g));
    });
    let product = time(repeats, || {
        black_box(k.hess_vec(At::new(black_box(&theta), &constants, &data), &v, &mut hv));
    });
    // The products of a CG run at one θ: the primal values recorded once,
    // then only the steps that read v.
    let at = At::new(&theta, &constants, &data);
    let linearize = time(repeats, || {
        black_box(k.linearize(black_box(at)));
    });
    let linearization = k
        .linearize(at)
        .unwrap_or_else(|| fail(&format!("{model}: no linearization")));
    let mut hv_shared = vec![0.0; p];
    let shared = time(repeats, || {
        black_box(k.hess_vec_linearized(&linearization, black_box(at), &v, &mut hv_shared));
    });
    if hv_shared != hv {
        fail("the linearized product differs from the product");
    }
    serde_json::json!({
        "task": "products", "model": model, "params": p, "gradient_s": gradient,
        "hess_vec_s": product, "linearize_s": linearize, "hess_vec_linearized_s": shared,
        "linearization_bytes": linearization.bytes(), "grad0": g[0], "hv0": hv[0],
        "hv_norm": hv.iter().map(|x| x * x).sum::<f64>().sqrt(),
    })
}
