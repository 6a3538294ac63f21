//! Learning-rate schedules (seed 002, "Learning Rate Schedules"; seed 004,
//! "Changing learning rates"): α_t = base · decay(t) for update t = 0, 1, …,
//! with an optional linear warm-up over the first `warmup` updates,
//! α_t = base · (t + 1)/warmup, after which the decay starts from t = 0.

use crate::optimizer::{DefaultValue, Hyper, Range};
use std::fmt;
use std::str::FromStr;

/// The shape of the decay.
#[derive(Debug, Clone, PartialEq)]
pub enum Decay {
    /// α_t = α.
    Constant,
    /// α_t = α · factor^(number of milestones ≤ t): reduce at fixed points.
    Step {
        /// Updates at which the rate is multiplied by `factor`.
        milestones: Vec<u64>,
        /// The factor (0, 1].
        factor: f64,
    },
    /// α_t = α · γ^t.
    Exponential {
        /// γ in (0, 1].
        gamma: f64,
    },
    /// α_t = α_min + (α − α_min)(1 + cos(π t / T))/2 for t ≤ T, α_min after.
    Cosine {
        /// T, the horizon (0: the run's maximum number of updates).
        horizon: u64,
        /// α_min as a fraction of α.
        floor: f64,
    },
    /// α_t = α (1 − (1 − floor) t / T) for t ≤ T, α·floor after.
    Linear {
        /// T (0: the run's maximum number of updates).
        horizon: u64,
        /// The final fraction of α.
        floor: f64,
    },
    /// α_t = α / √(1 + t).
    InverseSqrt,
    /// Triangular cyclic rate: from α up to α·peak and back every `period` updates.
    Cyclic {
        /// Updates per full cycle.
        period: u64,
        /// The top of the cycle as a multiple of α (> 1).
        peak: f64,
    },
}

/// A schedule: a decay and an optional warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The decay after warm-up.
    pub decay: Decay,
    /// Updates of linear warm-up (0: none).
    pub warmup: u64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            decay: Decay::Constant,
            warmup: 0,
        }
    }
}

impl Schedule {
    /// The rate at update `t` for base rate `base`; `horizon` replaces a
    /// zero horizon (the run's update budget).
    pub fn rate(&self, base: f64, t: u64, horizon: u64) -> f64 {
        if t < self.warmup {
            return base * (t + 1) as f64 / self.warmup as f64;
        }
        let t = t - self.warmup;
        let horizon_or = |h: u64| if h == 0 { horizon.max(1) } else { h } as f64;
        match &self.decay {
            Decay::Constant => base,
            Decay::Step { milestones, factor } => {
                let passed = milestones.iter().filter(|&&m| m <= t).count();
                base * factor.powi(passed as i32)
            }
            Decay::Exponential { gamma } => base * gamma.powf(t as f64),
            Decay::Cosine { horizon, floor } => {
                let progress = (t as f64 / horizon_or(*horizon)).min(1.0);
                base * (floor
                    + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
            }
            Decay::Linear { horizon, floor } => {
                let progress = (t as f64 / horizon_or(*horizon)).min(1.0);
                base * (1.0 - (1.0 - floor) * progress)
            }
            Decay::InverseSqrt => base / (1.0 + t as f64).sqrt(),
            Decay::Cyclic { period, peak } => {
                let period = (*period).max(2) as f64;
                let phase = (t as f64 % period) / period;
                let tri = 1.0 - (2.0 * phase - 1.0).abs();
                base * (1.0 + (peak - 1.0) * tri)
            }
        }
    }
}

/// Why a schedule string did not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleError(pub String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

/// The `--schedule` of every first-order optimizer.
pub const SCHEDULE: Hyper = Hyper {
    flag: "--schedule",
    default: DefaultValue::Described("constant"),
    range: Range::Described(SCHEDULE_SYNTAX),
};

/// The accepted spellings, for error messages and `--help`.
pub const SCHEDULE_SYNTAX: &str = "constant | step:M1,M2,...[:FACTOR] | exp:GAMMA | cosine[:T[:FLOOR]] | linear[:T[:FLOOR]] | invsqrt | cyclic:PERIOD[:PEAK], each optionally followed by +warmup:N";

fn number<T: FromStr>(text: &str, what: &str) -> Result<T, ScheduleError> {
    text.parse()
        .map_err(|_| ScheduleError(format!("`{text}` is not a valid {what}")))
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    /// Parse e.g. `cosine:1000:0.01+warmup:50`, `step:100,200:0.5`, `exp:0.99`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (body, warmup) = match text.split_once("+warmup:") {
            Some((b, w)) => (b, number::<u64>(w, "warm-up length")?),
            None => (text, 0),
        };
        let mut parts = body.split(':');
        let kind = parts.next().unwrap_or_default();
        let args: Vec<&str> = parts.collect();
        let arg = |i: usize| args.get(i).copied().filter(|a| !a.is_empty());
        let fraction = |i: usize, default: f64, what: &str| -> Result<f64, ScheduleError> {
            let v = arg(i).map_or(Ok(default), |a| number::<f64>(a, what))?;
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(ScheduleError(format!("{what} must be in [0, 1], got {v}")))
            }
        };
        let decay = match kind {
            "constant" => Decay::Constant,
            "step" => {
                let milestones = arg(0)
                    .ok_or_else(|| {
                        ScheduleError("step needs milestones: step:100,200[:0.1]".into())
                    })?
                    .split(',')
                    .map(|m| number::<u64>(m, "milestone"))
                    .collect::<Result<Vec<_>, _>>()?;
                Decay::Step {
                    milestones,
                    factor: fraction(1, 0.1, "step factor")?,
                }
            }
            "exp" => Decay::Exponential {
                gamma: fraction(0, 0.99, "decay γ")?,
            },
            "cosine" => Decay::Cosine {
                horizon: arg(0).map_or(Ok(0), |a| number(a, "horizon"))?,
                floor: fraction(1, 0.0, "floor")?,
            },
            "linear" => Decay::Linear {
                horizon: arg(0).map_or(Ok(0), |a| number(a, "horizon"))?,
                floor: fraction(1, 0.0, "floor")?,
            },
            "invsqrt" => Decay::InverseSqrt,
            "cyclic" => {
                let period = arg(0).map_or(Ok(100), |a| number::<u64>(a, "period"))?;
                let peak = arg(1).map_or(Ok(10.0), |a| number::<f64>(a, "peak"))?;
                if period < 2 || peak < 1.0 {
                    return Err(ScheduleError(format!(
                        "cyclic needs period ≥ 2 and peak ≥ 1, got {period} and {peak}"
                    )));
                }
                Decay::Cyclic { period, peak }
            }
            other => {
                return Err(ScheduleError(format!(
                    "unknown schedule `{other}`; expected {SCHEDULE_SYNTAX}"
                )));
            }
        };
        Ok(Schedule { decay, warmup })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_schedule_has_its_shape() {
        let r = |s: &str, t| s.parse::<Schedule>().unwrap().rate(1.0, t, 100);
        assert_eq!(r("constant", 50), 1.0);
        assert_eq!(r("step:10,20:0.5", 9), 1.0);
        assert_eq!(r("step:10,20:0.5", 10), 0.5);
        assert_eq!(r("step:10,20:0.5", 25), 0.25);
        assert!((r("exp:0.9", 2) - 0.81).abs() < 1e-15);
        assert!((r("cosine", 50) - 0.5).abs() < 1e-15);
        assert!(r("cosine", 100).abs() < 1e-15);
        assert!((r("linear:10:0.1", 5) - 0.55).abs() < 1e-15);
        assert!((r("invsqrt", 3) - 0.5).abs() < 1e-15);
        assert_eq!(r("cyclic:10:3", 0), 1.0);
        assert!((r("cyclic:10:3", 5) - 3.0).abs() < 1e-15);
        assert!((r("constant+warmup:4", 1) - 0.5).abs() < 1e-15);
        assert_eq!(r("exp:0.5+warmup:4", 4), 1.0);
    }

    #[test]
    fn bad_schedules_say_what_is_expected() {
        for bad in [
            "nope",
            "exp:2",
            "step",
            "cyclic:1",
            "cosine:x",
            "constant+warmup:-1",
        ] {
            let e = bad.parse::<Schedule>().unwrap_err();
            assert!(!e.0.is_empty(), "{bad}");
        }
    }
}
