//! Newton on neural networks: every Newton-type and quasi-Newton method on
//! tanh MLPs (`tests/mlp/mlp_tanh_H.toml`: 2 inputs, H = 4, 16 and 64 tanh
//! hidden units, a linear output, the mean of (ŷ − y)²/2 and a weight decay
//! λ/2·(‖W‖² + ‖v‖²), λ = 10⁻⁴) fitted to the 1 000 generated rows of
//! `tests/mlp/rows.csv` from the seeded starts `tests/mlp/start_H.txt`
//! (`tests/mlp/make_data.py` writes both), each model a derivation file
//! compiled at run time, to ‖∇L‖∞ ≤ 10⁻⁸. Without the weight decay the
//! 64-unit net has no minimum within reach: its weights grow without end
//! (‖θ‖ from 8 to 2 417 in 25 000 iterations of `newton-exact-tr`, the
//! loss still falling below the noise's). One `hessforge compare … --json` process per size
//! (its own process: see `nist.rs`). The table asserts how every run ended
//! and after how many iterations; a change of any entry is a change of an
//! optimizer's behaviour, to be reviewed like a snapshot.
//! `docs/src/results/neural-networks.md` (comparison 8) sets it beside SciPy's
//! `trust-exact`, `BFGS` and `Newton-CG` with JAX's derivatives.

use crate::common::{expected_table, hessforge, symbolica_lock};
use std::path::{Path, PathBuf};

const METHODS: [&str; 10] = [
    "newton",
    "newton-damped",
    "newton-lm",
    "newton-saddle-free",
    "newton-tr",
    "newton-exact-tr",
    "newton-cg",
    "gauss-newton",
    "bfgs",
    "lbfgs",
];

/// Hidden units and the iteration budget of the runs (at 64 units, where
/// an iteration of the dense methods takes tens of milliseconds, what the
/// default `newton-tr` needs and a little more; comparison 8 gives every
/// method 10 000).
const SIZES: [(usize, u32); 3] = [(4, 10_000), (16, 4_000), (64, 400)];

/// Hidden units, method, how the run ended, iterations. `gauss-newton`
/// (its matrix plus the weight decay's Hessian) converges at 4 and 16
/// units, to other local minima than the trust region's (losses 0.0640
/// and 0.0159), at a linear rate.
const EXPECTED: &str = "
# hidden method status iterations
 4 newton             saddle_point       34
 4 newton-damped      converged          46
 4 newton-lm          converged          35
 4 newton-saddle-free converged          57
 4 newton-tr          converged          32
 4 newton-exact-tr    converged          32
 4 newton-cg          converged          48
 4 gauss-newton       converged          71
 4 bfgs               converged         231
 4 lbfgs              converged         859
16 newton             saddle_point       58
16 newton-damped      converged         150
16 newton-lm          converged         145
16 newton-saddle-free converged         186
16 newton-tr          converged         166
16 newton-exact-tr    converged         166
16 newton-cg          converged         125
16 gauss-newton       converged         132
16 bfgs               converged        1286
16 lbfgs              converged        3925
64 newton             saddle_point      156
64 newton-damped      converged         326
64 newton-lm          converged         288
64 newton-saddle-free converged         303
64 newton-tr          converged         330
64 newton-exact-tr    converged         352
64 newton-cg          converged         177
64 gauss-newton       max_iterations    400
64 bfgs               max_iterations    400
64 lbfgs              max_iterations    400
";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn every_newton_type_and_quasi_newton_method_on_tanh_mlps_of_4_16_and_64_units() {
    let _g = symbolica_lock();
    let mut table = String::new();
    for (hidden, budget) in SIZES {
        let mlp = root().join("tests/mlp");
        let start = std::fs::read_to_string(mlp.join(format!("start_{hidden}.txt"))).unwrap();
        let out = hessforge()
            .arg("compare")
            .arg(mlp.join(format!("mlp_tanh_{hidden}.toml")))
            .arg("--data")
            .arg(mlp.join("rows.csv"))
            .args(["--optimizers", &METHODS.join(",")])
            .arg(format!("--max-iters={budget}"))
            .arg(format!("--init={}", start.trim()))
            .arg("--json")
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{hidden} units: {e}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        for method in METHODS {
            let run = (doc["runs"].as_array().unwrap().iter())
                .find(|r| r["optimizer"] == method)
                .unwrap_or_else(|| panic!("{hidden} units: no run of {method}"));
            table.push_str(&format!(
                "{hidden:>2} {method:<18} {:<14} {:>6}\n",
                run["status"].as_str().unwrap(),
                run["iterations"].as_u64().unwrap()
            ));
        }
    }
    let expected = expected_table(EXPECTED);
    assert_eq!(
        table, expected,
        "the table (hidden units, method, status, iterations) is now:\n{table}"
    );
}
