//! Drawing a data set from a model's `[synthetic]` process: each data field
//! in drawing order, each entry from its distribution, with the parameters at
//! their `[synthetic.truth]` values. Seeded: the same seed gives the same data.

use hessforge_spec::{Distribution, Expr, Func, Model};
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
    let mut out = Vec::new();
    Sampler::new(model, seed)?.draw(n, &mut out)?;
    Ok(out)
}

/// A model's `[synthetic]` process, seeded, drawing rows in as many calls
/// as the caller likes: the rows of `draw(a)` then `draw(b)` are the rows of
/// `sample(model, a + b, seed)` — so a file of many rows is written a block
/// at a time with the same bits as `--synthetic N --seed S` in memory.
pub struct Sampler<'m> {
    process: &'m hessforge_spec::Synthetic,
    rng: ChaCha8Rng,
    base: Vec<Option<f64>>,
    draws: Vec<BoundDraw>,
    cols: usize,
}

impl<'m> Sampler<'m> {
    /// The process of `model`, seeded.
    pub fn new(model: &'m Model, seed: u64) -> Result<Sampler<'m>, SyntheticError> {
        let process = model
            .synthetic
            .as_ref()
            .ok_or_else(|| SyntheticError::Missing(model.name.clone()))?;
        // One slot per name a draw may read: the truth, the constants, the data
        // (absent in a row until drawn, as `Expr::eval` finds them).
        let mut slot: HashMap<&str, usize> = HashMap::new();
        let mut base: Vec<Option<f64>> = Vec::new();
        let named = process.truth.iter().map(|(id, v)| (id.as_str(), Some(*v)));
        let constants = model
            .constants
            .iter()
            .map(|(s, v)| (s.id.as_str(), Some(*v)));
        let data = model.data.iter().map(|s| (s.id.as_str(), None));
        for (id, value) in named.chain(constants).chain(data) {
            match slot.get(id) {
                Some(&k) => base[k] = value.or(base[k]),
                None => {
                    slot.insert(id, base.len());
                    base.push(value);
                }
            }
        }
        let column: HashMap<&str, usize> = model
            .data
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let draws: Vec<BoundDraw> = process
            .draws
            .iter()
            .map(|draw| {
                let ids = &model
                    .data_tensors
                    .iter()
                    .find(|t| t.name == draw.field)
                    .expect("validated field")
                    .ids;
                BoundDraw {
                    args: draw
                        .args
                        .iter()
                        .map(|arg| arg.iter().map(|e| Bound::new(e, &slot)).collect())
                        .collect(),
                    slots: ids.iter().map(|id| slot[id.as_str()]).collect(),
                    columns: ids.iter().map(|id| column[id.as_str()]).collect(),
                }
            })
            .collect();
        Ok(Sampler {
            process,
            rng: ChaCha8Rng::seed_from_u64(seed),
            base,
            draws,
            cols: model.data.len(),
        })
    }

    /// The next `n` rows, into `out` (cleared first; row-major).
    pub fn draw(&mut self, n: usize, out: &mut Vec<f64>) -> Result<(), SyntheticError> {
        let (process, draws, base, cols) = (self.process, &self.draws, &self.base, self.cols);
        let rng = &mut self.rng;
        out.clear();
        out.resize(n * cols, 0.0);
        let mut env = base.clone();
        for r in 0..n {
            env.copy_from_slice(base);
            for (draw, bound) in process.draws.iter().zip(draws) {
                let slots = &bound.slots;
                let invalid = |message: String| SyntheticError::Invalid {
                    field: draw.field.clone(),
                    message,
                };
                let args: Vec<Vec<f64>> = bound
                    .args
                    .iter()
                    .map(|arg| {
                        arg.iter()
                            .map(|e| e.eval(&env).unwrap_or(f64::NAN))
                            .collect()
                    })
                    .collect();
                let values: Vec<f64> = match draw.distribution {
                    Distribution::Normal => (0..slots.len())
                        .map(|i| {
                            Normal::new(args[0][i], args[1][i])
                                .map(|d| d.sample(rng))
                                .map_err(|e| {
                                    invalid(format!("normal({}, {}): {e}", args[0][i], args[1][i]))
                                })
                        })
                        .collect::<Result<_, _>>()?,
                    Distribution::Uniform => (0..slots.len())
                        .map(|i| {
                            let (lo, hi) = (args[0][i], args[1][i]);
                            if lo < hi {
                                Ok(rng.gen_range(lo..hi))
                            } else {
                                Err(invalid(format!("uniform({lo}, {hi}) needs low < high")))
                            }
                        })
                        .collect::<Result<_, _>>()?,
                    Distribution::Bernoulli => (0..slots.len())
                        .map(|i| {
                            let p = args[0][i];
                            if (0.0..=1.0).contains(&p) {
                                Ok(f64::from(u8::from(rng.gen_bool(p))))
                            } else {
                                Err(invalid(format!("bernoulli({p}) needs a probability")))
                            }
                        })
                        .collect::<Result<_, _>>()?,
                    Distribution::Poisson => (0..slots.len())
                        .map(|i| {
                            let rate = args[0][i];
                            Poisson::new(rate)
                                .map(|d| d.sample(rng))
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
                for ((&k, &c), v) in slots.iter().zip(&bound.columns).zip(values) {
                    env[k] = Some(v);
                    out[r * cols + c] = v;
                }
            }
        }
        Ok(())
    }
}

/// A draw with its arguments bound to slots, and where its entries go.
struct BoundDraw {
    args: Vec<Vec<Bound>>,
    /// The environment slot of each entry.
    slots: Vec<usize>,
    /// The output column of each entry.
    columns: Vec<usize>,
}

/// A draw argument with its names resolved to slots of the row's
/// environment and its numbers to f64, so a row costs no hashing and no
/// rational arithmetic (20 000 rows of a 1 000-feature logistic draw took
/// 6 s through `Expr::eval` and its map). The same values as `Expr::eval`:
/// an absent name makes the argument absent.
enum Bound {
    Num(f64),
    Slot(usize),
    Unknown,
    Add(Vec<Bound>),
    Mul(Vec<Bound>),
    Powi(Box<Bound>, i32),
    Powf(Box<Bound>, Box<Bound>),
    Call(Func, Box<Bound>),
}

impl Bound {
    fn new(e: &Expr, slot: &HashMap<&str, usize>) -> Bound {
        let bind = |x: &Expr| Box::new(Bound::new(x, slot));
        match e {
            Expr::Num(r) => Bound::Num(r.to_f64()),
            Expr::Var(v) => slot
                .get(v.as_str())
                .map_or(Bound::Unknown, |&k| Bound::Slot(k)),
            Expr::Add(xs) => Bound::Add(xs.iter().map(|x| Bound::new(x, slot)).collect()),
            Expr::Mul(xs) => Bound::Mul(xs.iter().map(|x| Bound::new(x, slot)).collect()),
            Expr::Pow(a, b) => match &**b {
                Expr::Num(r) => match r.to_i64().and_then(|n| i32::try_from(n).ok()) {
                    Some(n) => Bound::Powi(bind(a), n),
                    None => Bound::Powf(bind(a), bind(b)),
                },
                _ => Bound::Powf(bind(a), bind(b)),
            },
            Expr::Call(f, a) => Bound::Call(*f, bind(a)),
        }
    }

    fn eval(&self, env: &[Option<f64>]) -> Option<f64> {
        Some(match self {
            Bound::Num(v) => *v,
            Bound::Slot(k) => env[*k]?,
            Bound::Unknown => return None,
            Bound::Add(xs) => {
                let mut s = 0.0;
                for x in xs {
                    s += x.eval(env)?;
                }
                s
            }
            Bound::Mul(xs) => {
                let mut p = 1.0;
                for x in xs {
                    p *= x.eval(env)?;
                }
                p
            }
            Bound::Powi(a, n) => a.eval(env)?.powi(*n),
            Bound::Powf(a, b) => a.eval(env)?.powf(b.eval(env)?),
            Bound::Call(f, a) => f.eval(a.eval(env)?),
        })
    }
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

    /// A bound argument gives `Expr::eval`'s value: integer and real
    /// powers, functions, constants, a field drawn before it.
    #[test]
    fn bound_arguments_evaluate_as_the_expressions_do() {
        let m = poisson_model("exp(w * x + b) / (1 + x^2) + x^0.5 + sigmoid(b)^-3");
        let draw = &m.synthetic.as_ref().unwrap().draws[1];
        let slot = HashMap::from([("w", 0), ("b", 1), ("x", 2)]);
        for x in [0.0, 0.25, 0.9] {
            let env =
                HashMap::from([("w", 0.5), ("b", 1.0), ("x", x)].map(|(k, v)| (k.to_string(), v)));
            let want = draw.args[0][0].eval(&env).unwrap();
            let got = Bound::new(&draw.args[0][0], &slot).eval(&[Some(0.5), Some(1.0), Some(x)]);
            assert_eq!(got.map(f64::to_bits), Some(want.to_bits()), "x = {x}");
        }
        // Not drawn yet, or unknown: absent, as `Expr::eval` has it.
        let bound = Bound::new(&draw.args[0][0], &slot);
        assert_eq!(bound.eval(&[Some(0.5), Some(1.0), None]), None);
        assert_eq!(
            Bound::new(&draw.args[0][0], &HashMap::new()).eval(&[]),
            None
        );
    }

    #[test]
    fn a_negative_poisson_rate_is_an_error() {
        let m = poisson_model("-1");
        let e = sample(&m, 3, 1).unwrap_err();
        assert!(e.to_string().contains("poisson(-1)"), "{e}");
    }
}
