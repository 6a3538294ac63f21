//! Exponentials of arguments that hold a logarithm. Symbolica 3.0.0
//! normalises e^X wrongly when X holds a logarithm other than as a plain
//! factor (`exp(sin(log(a)))` became 0, `exp(1 + sin(log(1 + a)/1001))`
//! became 1/1001 — found by the 10 000-case fuzz run as a Hessian that
//! disagreed with finite differences); the engine keeps such exponentials
//! opaque. Each case is checked against its closed form.

use hessforge_ir::Outputs;
use hessforge_symbolic::{derive, lower};

/// Loss, gradient and Hessian (upper triangle) of a model in `a`, `b` at θ.
fn values(loss: &str, theta: [f64; 2]) -> Vec<f64> {
    let text = format!(
        "name = \"e\"\ntitle = \"e\"\ndescription = \"e\"\nloss = \"{loss}\"\n[parameters]\na = {{}}\nb = {{}}\n"
    );
    let m = hessforge_spec::load_str("exponentials.toml", &text).unwrap();
    let programs = lower(&derive(&m).unwrap()).unwrap();
    let mut out = vec![0.0; Outputs::LossGradHess.len(2)];
    programs.evaluate(
        Outputs::LossGradHess,
        hessforge_ir::At::new(&theta, &[], &[]),
        &mut out,
    );
    out
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "{what}: {got:?}, expected {want:?}"
        );
    }
}

#[test]
fn exp_of_a_function_of_a_logarithm() {
    let (a, b) = (0.5f64, 0.7f64);
    // f = e^{sin(log a)}: f' = f cos(log a)/a, f'' = f (cos² − sin − cos)(log a)/a².
    let (s, c) = (a.ln().sin(), a.ln().cos());
    let f = s.exp();
    let want = [f, f * c / a, 0.0, f * (c * c - s - c) / (a * a), 0.0, 0.0];
    assert_close(
        &values("exp(sin(log(a)))", [a, b]),
        &want,
        "exp(sin(log(a)))",
    );
    // g = b e^{(log a)²}: ∂a = g 2 log a / a, ∂b = e^{(log a)²},
    // ∂aa = g (4 log² a + 2 − 2 log a)/a², ∂ab = e^{(log a)²} 2 log a / a.
    let l = a.ln();
    let e = (l * l).exp();
    let want = [
        b * e,
        b * e * 2.0 * l / a,
        e,
        b * e * (4.0 * l * l + 2.0 - 2.0 * l) / (a * a),
        e * 2.0 * l / a,
        0.0,
    ];
    assert_close(
        &values("exp(log(a)^2) * b", [a, b]),
        &want,
        "exp(log(a)^2) * b",
    );
}

#[test]
fn exp_of_a_sum_with_a_logarithm_inside_a_function() {
    let (a, b) = (0.5f64, 0.7f64);
    // h = e^{b + tanh(2 log a)}: ∂a = h (1 − t²) 2/a, ∂b = h.
    let t = (2.0 * a.ln()).tanh();
    let h = (b + t).exp();
    let da = h * (1.0 - t * t) * 2.0 / a;
    let v = values("exp(b + tanh(2*log(a)))", [a, b]);
    assert_close(&v[..3], &[h, da, h], "exp(b + tanh(2*log(a)))");
    assert_close(&v[5..], &[h], "∂²/∂b²");
}

#[test]
fn exp_of_a_tiny_power_of_a_sum() {
    // (a + 1)^(1e-300) is ≈ 1 and kept as an exponential itself: e^{that}.
    let v = values("exp((a + 1)^(1e-300)) + exp(2 * log(b))", [0.5, 0.7]);
    assert_close(
        &v[..3],
        &[
            std::f64::consts::E + 0.49,
            1e-300 * std::f64::consts::E / 1.5,
            1.4,
        ],
        "tiny power",
    );
}
