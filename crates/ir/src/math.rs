//! The numerically stable scalar functions used by the interpreter and by
//! the generated kernels (which call them by name).

/// σ(x) = 1 / (1 + e^{−x}), without overflow for either sign.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// softplus(x) = log(1 + e^x) = max(x, 0) + ln(1 + e^{−|x|}), without overflow.
#[inline]
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// max(0, x).
#[inline]
pub fn relu(x: f64) -> f64 {
    x.max(0.0)
}

/// 1 for x > 0, else 0 (the derivative of ReLU, taken as 0 at 0).
#[inline]
pub fn step(x: f64) -> f64 {
    if x > 0.0 { 1.0 } else { 0.0 }
}

/// −1, 0 or 1.
#[inline]
pub fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// The error function erf(x) = (2/√π) ∫₀ˣ e^(−t²) dt (the `libm` crate's,
/// a port of FreeBSD's msun: std has none).
#[inline]
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// erf′(x) = (2/√π)·e^(−x²), the derivative of [`erf`].
#[inline]
pub fn erf_prime(x: f64) -> f64 {
    std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_overflow_at_the_extremes() {
        assert_eq!(sigmoid(800.0), 1.0);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(softplus(800.0), 800.0);
        assert_eq!(softplus(-800.0), 0.0);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-16);
        // σ(−30) = e^{−30}/(1 + e^{−30}), within rounding of e^{−30}(1 − e^{−30}).
        let e = (-30f64).exp();
        assert!((sigmoid(-30.0) - e * (1.0 - e)).abs() <= 4.0 * f64::EPSILON * e);
    }
}
