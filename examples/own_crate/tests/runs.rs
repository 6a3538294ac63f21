//! The user's program, run as a user runs it: both optimizers converge on
//! the crate's own kernel to the same point, near the parameters the data
//! were drawn from.

use std::process::Command;

/// The θ printed on a line `name: … θ = (a, b, c, d)`.
fn theta(stdout: &str, name: &str) -> Vec<f64> {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no line for {name} in {stdout}"));
    let inside = line
        .rsplit_once("θ = (")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no θ in {line}"));
    inside.split(", ").map(|t| t.parse().unwrap()).collect()
}

#[test]
fn newton_and_lbfgs_converge_on_the_crates_own_kernel() {
    let out = Command::new(env!("CARGO_BIN_EXE_own_crate"))
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("Converged").count(), 2, "{stdout}");
    let (newton, lbfgs, truth) = (
        theta(&stdout, "newton"),
        theta(&stdout, "lbfgs"),
        theta(&stdout, "truth"),
    );
    assert_eq!(newton, lbfgs, "{stdout}");
    for (fit, true_value) in newton.iter().zip(&truth) {
        assert!((fit - true_value).abs() < 0.1, "{stdout}");
    }
}
