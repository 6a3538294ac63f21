//! Drawing a data set from a model's `[synthetic]` process: each data field
//! in drawing order, each entry from its distribution, with the parameters at
//! their `[synthetic.truth]` values. Seeded: the same seed gives the same data.

use hessforge_spec::{Distribution, Model};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Normal, Poisson};
use std::collections::HashMap;

/// Why data could not be drawn.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SyntheticError {
    /// The model has no `[synthetic]` section.
    #[error("model `{0}` has no [synthetic] section to draw data from")]
    #[diagnostic(help("add [synthetic.truth] and [synthetic.draw] to the derivation file"))]
    Missing(String),
    /// An argument evaluated to something a distribution cannot take.
    #[error("cannot draw `{field}`: {message}")]
    #[diagnostic(help(
        "check the arguments in [synthetic.draw] (standard deviations ≥ 0, probabilities in [0, 1], rates > 0)"
    ))]
    Invalid {
        /// The data field.
        field: String,
        /// What was wrong.
        message: String,
    },
}

/// `n` rows (row-major, one column per data scalar in model order).
pub fn sample(model: &Model, n: usize, seed: u64) -> Result<Vec<f64>, SyntheticError> {
    let process = model
        .synthetic
        .as_ref()
        .ok_or_else(|| SyntheticError::Missing(model.name.clone()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut base: HashMap<String, f64> = process.truth.iter().cloned().collect();
    for (s, v) in &model.constants {
        base.insert(s.id.clone(), *v);
    }
    let column: HashMap<&str, usize> = model
        .data
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let cols = model.data.len();
    let mut out = vec![0.0; n * cols];
    for r in 0..n {
        let mut env = base.clone();
        for draw in &process.draws {
            let ids = &model
                .data_tensors
                .iter()
                .find(|t| t.name == draw.field)
                .expect("validated field")
                .ids;
            let invalid = |message: String| SyntheticError::Invalid {
                field: draw.field.clone(),
                message,
            };
            let args: Vec<Vec<f64>> = draw
                .args
                .iter()
                .map(|arg| {
                    arg.iter()
                        .map(|e| e.eval(&env).unwrap_or(f64::NAN))
                        .collect()
                })
                .collect();
            let values: Vec<f64> = match draw.distribution {
                Distribution::Normal => (0..ids.len())
                    .map(|i| {
                        Normal::new(args[0][i], args[1][i])
                            .map(|d| d.sample(&mut rng))
                            .map_err(|e| {
                                invalid(format!("normal({}, {}): {e}", args[0][i], args[1][i]))
                            })
                    })
                    .collect::<Result<_, _>>()?,
                Distribution::Uniform => (0..ids.len())
                    .map(|i| {
                        let (lo, hi) = (args[0][i], args[1][i]);
                        if lo < hi {
                            Ok(rng.gen_range(lo..hi))
                        } else {
                            Err(invalid(format!("uniform({lo}, {hi}) needs low < high")))
                        }
                    })
                    .collect::<Result<_, _>>()?,
                Distribution::Bernoulli => (0..ids.len())
                    .map(|i| {
                        let p = args[0][i];
                        if (0.0..=1.0).contains(&p) {
                            Ok(f64::from(u8::from(rng.gen_bool(p))))
                        } else {
                            Err(invalid(format!("bernoulli({p}) needs a probability")))
                        }
                    })
                    .collect::<Result<_, _>>()?,
                Distribution::Poisson => (0..ids.len())
                    .map(|i| {
                        let rate = args[0][i];
                        Poisson::new(rate)
                            .map(|d| d.sample(&mut rng))
                            .map_err(|e| invalid(format!("poisson({rate}): {e}")))
                    })
                    .collect::<Result<_, _>>()?,
                Distribution::Categorical => {
                    let logits = &args[0];
                    let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let weights: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    if !total.is_finite() || total <= 0.0 {
                        return Err(invalid(format!(
                            "categorical logits {logits:?} are not finite"
                        )));
                    }
                    let mut u = rng.gen_range(0.0..total);
                    let mut hot = weights.len() - 1;
                    for (k, w) in weights.iter().enumerate() {
                        if u < *w {
                            hot = k;
                            break;
                        }
                        u -= w;
                    }
                    (0..weights.len())
                        .map(|k| f64::from(u8::from(k == hot)))
                        .collect()
                }
            };
            for (id, v) in ids.iter().zip(values) {
                env.insert(id.clone(), v);
                out[r * cols + column[id.as_str()]] = v;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poisson_model(rate: &str) -> Model {
        let text = format!(
            "name = \"counts\"\ntitle = \"c\"\ndescription = \"c\"\n\
             loss = \"exp(w * x + b) - y * (w * x + b)\"\n\
             [parameters]\nw = {{}}\nb = {{}}\n[data]\nx = {{}}\ny = {{}}\n\
             [synthetic]\nsamples = 10\n[synthetic.truth]\nw = 0.5\nb = 1.0\n\
             [synthetic.draw]\nx = \"uniform(0, 1)\"\ny = \"poisson({rate})\"\n"
        );
        hessforge_spec::load_str("counts.toml", &text)
            .unwrap_or_else(|e| panic!("{}", e.one_line()))
    }

    #[test]
    fn poisson_draws_counts_with_the_given_rate() {
        let m = poisson_model("3.5");
        let rows = sample(&m, 4000, 7).unwrap();
        let y: Vec<f64> = rows.chunks(2).map(|r| r[1]).collect();
        assert!(y.iter().all(|v| *v >= 0.0 && v.fract() == 0.0), "counts");
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        // Standard error √(3.5/4000) ≈ 0.03.
        assert!((mean - 3.5).abs() < 0.15, "mean {mean}");
        assert_eq!(rows, sample(&m, 4000, 7).unwrap(), "same seed, same bits");
        // A rate that depends on the row, as a Poisson regression draws it.
        let m = poisson_model("exp(w * x + b)");
        assert!(sample(&m, 100, 1).is_ok());
    }

    #[test]
    fn a_negative_poisson_rate_is_an_error() {
        let m = poisson_model("-1");
        let e = sample(&m, 3, 1).unwrap_err();
        assert!(e.to_string().contains("poisson(-1)"), "{e}");
    }
}
