//! No silent loss of range: the lowered programs' loss, gradient and
//! Hessian against an arbitrary-precision evaluation (astro-float, 2 560-bit
//! mantissas, an exponent range far beyond f64's) of the derivation's own
//! expressions, at inputs drawn across the whole f64 exponent range
//! (±10⁻³⁰⁰ … 10³⁰⁰, log-uniform). Wherever the true value is a normal
//! f64, the program must agree to a relative 10⁻¹⁰.
//!
//! The families are the range-prone forms of the fuzzer's grammar, each a
//! derivation file: a power under `log1p` (the fuzzer's seed-2 find:
//! log1p(u¹⁴) at u ≈ 10¹², whose Hessian the naive form evaluated as ∞·0),
//! ratios of powers, the log-sum-exp, softplus and σ of a linear score (the
//! GLMs), and exponentials against powers. Their inputs keep sums free of
//! cancellation (positive where a sum could cancel): cancellation is a
//! matter of the inputs' conditioning, which no lowering can repair, while
//! this test is about range. The interpreter of the lowered program is the
//! one under test; the compiled and run-time-compiled kernels are tested
//! against it elsewhere.

use astro_float::{BigFloat, Consts, RoundingMode};
use hessforge_ir::{At, Outputs};
use hessforge_spec::{Expr, Func, Model, Rational};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

/// Mantissa bits of the reference evaluation.
const PRECISION: usize = 2560;
const RM: RoundingMode = RoundingMode::ToEven;

/// Cases per family: the bar.
const CASES: usize = 10_000;

/// The relative agreement required where the true value is a normal f64.
const TOLERANCE: f64 = 1e-10;

/// Arbitrary-precision evaluation of a model's expressions.
struct Reference {
    consts: Consts,
}

fn big(x: f64) -> BigFloat {
    BigFloat::from_f64(x, PRECISION)
}

impl Reference {
    fn new() -> Reference {
        Reference {
            consts: Consts::new().expect("astro-float's constants"),
        }
    }

    fn rational(&mut self, r: &Rational) -> BigFloat {
        let parse = |s: String, cc: &mut Consts| {
            BigFloat::parse(&s, astro_float::Radix::Dec, PRECISION, RM, cc)
        };
        let n = parse(r.numer().to_string(), &mut self.consts);
        let d = parse(r.denom().to_string(), &mut self.consts);
        n.div(&d, PRECISION, RM)
    }

    fn exp(&mut self, x: &BigFloat) -> BigFloat {
        x.exp(PRECISION, RM, &mut self.consts)
    }

    fn ln(&mut self, x: &BigFloat) -> BigFloat {
        x.ln(PRECISION, RM, &mut self.consts)
    }

    /// log(1 + x), by its series where 1 + x would round x away.
    fn log1p(&mut self, x: &BigFloat) -> BigFloat {
        if x.abs() < big(2f64.powi(-80)) {
            let x2 = x.mul(x, PRECISION, RM);
            let x3 = x2.mul(x, PRECISION, RM);
            x.sub(&x2.div(&big(2.0), PRECISION, RM), PRECISION, RM).add(
                &x3.div(&big(3.0), PRECISION, RM),
                PRECISION,
                RM,
            )
        } else {
            let one_plus = x.add(&big(1.0), PRECISION, RM);
            self.ln(&one_plus)
        }
    }

    /// eˣ − 1, by its series near 0.
    fn expm1(&mut self, x: &BigFloat) -> BigFloat {
        if x.abs() < big(2f64.powi(-80)) {
            let x2 = x.mul(x, PRECISION, RM);
            x.add(&x2.div(&big(2.0), PRECISION, RM), PRECISION, RM)
        } else {
            self.exp(x).sub(&big(1.0), PRECISION, RM)
        }
    }

    fn call(&mut self, f: Func, x: &BigFloat) -> BigFloat {
        let huge = big(2f64.powi(40));
        match f {
            Func::Exp => self.exp(x),
            Func::Log => self.ln(x),
            Func::Log1p => self.log1p(x),
            Func::Expm1 => self.expm1(x),
            Func::Sqrt => x.sqrt(PRECISION, RM),
            Func::Tanh => x.tanh(PRECISION, RM, &mut self.consts),
            Func::Atan => x.atan(PRECISION, RM, &mut self.consts),
            Func::Sin => x.sin(PRECISION, RM, &mut self.consts),
            Func::Cos => x.cos(PRECISION, RM, &mut self.consts),
            Func::Tan => x.tan(PRECISION, RM, &mut self.consts),
            Func::Asinh => x.asinh(PRECISION, RM, &mut self.consts),
            // softplus(x) = log(1 + eˣ): x + log1p(e^{−x}) for large x.
            Func::Softplus if *x > huge => x.clone(),
            Func::Softplus if *x > big(0.0) => {
                let e = self.exp(&x.neg());
                x.add(&self.log1p(&e), PRECISION, RM)
            }
            Func::Softplus => {
                let e = self.exp(x);
                self.log1p(&e)
            }
            Func::Sigmoid => {
                let e = self.exp(&x.neg());
                big(1.0).div(&e.add(&big(1.0), PRECISION, RM), PRECISION, RM)
            }
            Func::Abs => x.abs(),
            Func::Relu if x.is_negative() => big(0.0),
            Func::Relu => x.clone(),
            Func::Step if x.is_positive() && !x.is_zero() => big(1.0),
            Func::Step => big(0.0),
            Func::Sign if x.is_zero() => big(0.0),
            Func::Sign if x.is_negative() => big(-1.0),
            Func::Sign => big(1.0),
            Func::Erf | Func::ErfPrime => panic!("no family uses erf"),
        }
    }

    fn eval(&mut self, e: &Expr, env: &HashMap<String, BigFloat>) -> BigFloat {
        match e {
            Expr::Num(r) => self.rational(r),
            Expr::Var(v) => env
                .get(v)
                .unwrap_or_else(|| panic!("no value for {v}"))
                .clone(),
            Expr::Add(xs) => xs.iter().fold(big(0.0), |acc, x| {
                let x = self.eval(x, env);
                acc.add(&x, PRECISION, RM)
            }),
            Expr::Mul(xs) => xs.iter().fold(big(1.0), |acc, x| {
                let x = self.eval(x, env);
                acc.mul(&x, PRECISION, RM)
            }),
            Expr::Pow(b, n) => {
                let base = self.eval(b, env);
                match &**n {
                    Expr::Num(r) if r.is_integer() => {
                        let k = r.to_i64().expect("a small exponent");
                        let p = base.powi(k.unsigned_abs() as usize, PRECISION, RM);
                        if k < 0 {
                            big(1.0).div(&p, PRECISION, RM)
                        } else {
                            p
                        }
                    }
                    other => {
                        let exponent = self.eval(other, env);
                        base.pow(&exponent, PRECISION, RM, &mut self.consts)
                    }
                }
            }
            Expr::Call(f, x) => {
                let x = self.eval(x, env);
                self.call(*f, &x)
            }
        }
    }
}

/// A family: a derivation file and whether its inputs may be negative.
struct Family {
    name: &'static str,
    loss: &'static str,
    definitions: &'static [(&'static str, &'static str)],
    /// Parameters and data may take both signs (no sum can cancel).
    signed: bool,
    /// Whether the Hessian is compared too. The log-sum-exp's is a
    /// variance, Σ xᵢ² sᵢ − (Σ xᵢ sᵢ)², which cancels wherever one term
    /// dominates, in any f64 evaluation of that form: not a matter of range.
    hessian: bool,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "power under log1p",
        loss: "log1p(u^14)",
        definitions: &[("u", "a * x")],
        signed: true,
        hessian: true,
    },
    Family {
        name: "ratio of powers",
        loss: "u^3 / (1 + u^4)",
        definitions: &[("u", "a * x")],
        signed: true,
        hessian: true,
    },
    Family {
        name: "ratio of two parameters' powers",
        loss: "(a * x)^2 / (b^2 + (b * y)^4)",
        definitions: &[],
        signed: true,
        hessian: true,
    },
    Family {
        name: "log-sum-exp",
        loss: "log(exp(a * x) + exp(b * y) + exp(a * y))",
        definitions: &[],
        signed: true,
        hessian: false,
    },
    Family {
        name: "softplus of a score",
        loss: "softplus(a * x + b * y)",
        definitions: &[],
        signed: false,
        hessian: true,
    },
    Family {
        name: "logistic loss of a positive example",
        loss: "-log(p)",
        definitions: &[("z", "a * x + b * y"), ("p", "sigmoid(z)")],
        signed: false,
        hessian: true,
    },
    Family {
        name: "exponential over a power",
        loss: "exp(a * x) / (1 + b^2)",
        definitions: &[],
        signed: true,
        hessian: true,
    },
];

fn file(f: &Family) -> String {
    let mut text = format!(
        "name = \"range\"\ntitle = \"{}\"\ndescription = \"range\"\nloss = \"{}\"\n\
         [parameters]\na = {{}}\nb = {{}}\n[data]\nx = {{}}\ny = {{}}\n",
        f.name, f.loss
    );
    for (name, expr) in f.definitions {
        text.push_str(&format!(
            "[[define]]\nname = \"{name}\"\nexpr = \"{expr}\"\n"
        ));
    }
    text
}

/// A number of magnitude 10⁻³⁰⁰ … 10³⁰⁰, log-uniform, of either sign if
/// `signed`.
fn draw(rng: &mut impl Rng, signed: bool) -> f64 {
    let magnitude = 10f64.powf(rng.gen_range(-300.0..300.0));
    if signed && rng.gen_bool(0.5) {
        -magnitude
    } else {
        magnitude
    }
}

/// The derivation's outputs in the order of [`Outputs::LossGradHess`].
fn expressions(d: &hessforge_derivation::Derivation) -> Vec<(String, Expr)> {
    let m = &d.model;
    let p = m.n_params();
    let mut out = vec![("ℓ".to_string(), d.forms.as_ref().unwrap().loss.clone())];
    for (j, g) in d.gradient.iter().enumerate() {
        out.push((format!("∂ℓ/∂{}", m.params[j].id), g.expr.clone()));
    }
    for j in 0..p {
        for k in j..p {
            out.push((
                format!("∂²ℓ/∂{}∂{}", m.params[j].id, m.params[k].id),
                d.hessian[j][k].clone(),
            ));
        }
    }
    out
}

/// Runs one family; returns how many values were compared.
fn check(family: &Family, seed: u64) -> usize {
    let model: Model = hessforge_spec::load_str("range.toml", &file(family))
        .unwrap_or_else(|e| panic!("{}", e.one_line()));
    let d = hessforge_symbolic::derive(&model).unwrap();
    let programs = hessforge_symbolic::lower(&d).unwrap();
    let outputs = expressions(&d);
    let mut reference = Reference::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // A sum's terms may be larger than the sum (the Hessian of
    // log1p(u¹⁴) is 182/u² − 196/u², each term 14 times the value):
    // values within 2¹⁰ of f64::MAX, whose terms can overflow, are left out.
    let (min, max) = (big(f64::MIN_POSITIVE), big(f64::MAX / 1024.0));
    let mut compared = 0;
    let mut failures = Vec::new();
    for _ in 0..CASES {
        let theta: Vec<f64> = (0..model.n_params())
            .map(|_| draw(&mut rng, family.signed))
            .collect();
        let row: Vec<f64> = model
            .data
            .iter()
            .map(|_| draw(&mut rng, family.signed))
            .collect();
        let mut env: HashMap<String, BigFloat> = HashMap::new();
        for (s, v) in model.params.iter().zip(&theta) {
            env.insert(s.id.clone(), big(*v));
        }
        for (s, v) in model.data.iter().zip(&row) {
            env.insert(s.id.clone(), big(*v));
        }
        for def in model.definitions() {
            let v = reference.eval(&def.expr, &env);
            env.insert(def.scalar.id.clone(), v);
        }
        let mut got = vec![0.0; Outputs::LossGradHess.len(model.n_params())];
        programs.evaluate(Outputs::LossGradHess, At::new(&theta, &[], &row), &mut got);
        let checked = if family.hessian {
            outputs.len()
        } else {
            1 + model.n_params()
        };
        for ((name, expr), got) in outputs.iter().zip(&got).take(checked) {
            let truth = reference.eval(expr, &env);
            let size = truth.abs();
            if truth.is_nan() || truth.is_inf() || size < min || size > max {
                continue;
            }
            compared += 1;
            let error = big(*got).sub(&truth, PRECISION, RM).abs();
            let bound = size.mul(&big(TOLERANCE), PRECISION, RM);
            if got.is_nan() || error > bound {
                failures.push(format!(
                    "{name} at θ = {theta:?}, row = {row:?}: got {got:e}, true {}",
                    truth
                        .format(
                            astro_float::Radix::Dec,
                            RM,
                            &mut Consts::new().expect("constants")
                        )
                        .unwrap_or_default()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {compared} values lost range or precision, e.g.\n{}",
        family.name,
        failures.len(),
        failures[..failures.len().min(8)].join("\n")
    );
    compared
}

#[test]
fn no_silent_loss_of_range_across_the_f64_exponent_range() {
    for (i, family) in FAMILIES.iter().enumerate() {
        let compared = check(family, 2026 + i as u64);
        // Most draws leave f64's range (a·x spans 10⁻⁶⁰⁰ … 10⁶⁰⁰), but a
        // family that compared few values would test little.
        assert!(
            compared >= CASES / 2,
            "{}: only {compared} values were normal f64s",
            family.name
        );
    }
}

/// The seed-2 find: at u = 10¹², ∂²/∂w² log1p(u¹⁴) (u = w) is
/// 14·13·u¹²/(1 + u¹⁴) − 196·u²⁶/(1 + u¹⁴)², about −14·10⁻²⁴.
#[test]
fn log1p_of_a_14th_power_at_ten_to_the_twelve_has_the_right_hessian() {
    let model = hessforge_spec::load_str(
        "log1p.toml",
        "name = \"log1p\"\ntitle = \"t\"\ndescription = \"t\"\nloss = \"log1p(w^14)\"\n\
         [parameters]\nw = {}\n",
    )
    .unwrap();
    let d = hessforge_symbolic::derive(&model).unwrap();
    let programs = hessforge_symbolic::lower(&d).unwrap();
    let mut out = [0.0; 3];
    programs.evaluate(Outputs::LossGradHess, At::new(&[1e12], &[], &[]), &mut out);
    let u: f64 = 1e12;
    // 182/u² − 196/u² · (1 + u⁻¹⁴)⁻² + O(u⁻¹⁶): the correction is far below
    // rounding at u = 10¹².
    let expected = (182.0 - 196.0) / (u * u);
    assert!(
        ((out[2] - expected) / expected).abs() < 1e-12,
        "∂²ℓ/∂w² = {}, expected {expected}",
        out[2]
    );
}

/// Which output of a pass a value is.
#[derive(Clone, Copy)]
enum Output {
    Loss,
    Grad(usize),
    Hess(usize),
}

/// The loop kernels' log-sum-exp (softmax scores z = W x over three classes,
/// ℓ = log Σₖ e^{zₖ}). The scores are drawn across the f64 range: a base
/// z₀ of magnitude 10⁻³⁰⁰ … 10³⁰⁰ plus a spread of 10⁻³ … 10³ per class,
/// x = ±2ⁿ (n in −10 … 10), W = z / x — so that zₖ = Wₖ x is exact in f64
/// and the scores' own rounding (a matter of the inputs' conditioning) does
/// not enter. The datum stays within 2^±10: a probability below f64's
/// normal range times a datum of 10¹⁵² is a normal number that only a
/// product in log space keeps, which the scalar programs write and the
/// loop kernels do not (a limit stated in the reliability page). About half the draws put e^{zₖ} beyond f64's range while
/// the loss, the probabilities and the gradient are ordinary numbers.
/// Against a closed form at 2 560 bits (with the scores' maximum taken out,
/// an identity, so that e^{zₖ} of any size is representable): the loss,
/// every gradient entry sₖ x and the Hessian's entries between two classes
/// (−sₖ sₗ x²; the diagonal sₖ(1 − sₖ) x² cancels wherever one class
/// dominates, in any f64 form: not a matter of range). The Hessian–vector
/// product of the tangent model (which treats the maximum as a constant)
/// must be the Hessian's own product, to rounding.
#[test]
fn the_loop_kernels_log_sum_exp_keeps_its_range() {
    let model = hessforge_spec::load_str(
        "lse.toml",
        "name = \"lse\"\ntitle = \"t\"\ndescription = \"t\"\nloss = \"log(sum(exp(z)))\"\n\
         [parameters]\nW = { shape = [3, 1] }\n[data]\nx = { shape = [1] }\n\
         [[define]]\nname = \"z\"\nexpr = \"W @ x\"\n",
    )
    .unwrap_or_else(|e| panic!("{}", e.one_line()));
    let program = hessforge_symbolic::lower_loop_ir(&model).unwrap();
    let p = 3;
    // Ties: at W = 0 every score is the maximum (the log-sum-exp counts
    // them), ℓ = log 3 and ∂ℓ/∂Wₖ = x/3.
    let (mut grad, mut hess) = (vec![0.0; p], vec![0.0; p * p]);
    let at = At::new(&[0.0; 3], &[], &[1.5]);
    let loss = program.evaluate(Outputs::LossGradHess, at, &mut grad, &mut hess);
    assert!((loss - 3f64.ln()).abs() < 1e-15, "ℓ = {loss} at W = 0");
    assert!(
        grad.iter().all(|g| (g - 0.5).abs() < 1e-15),
        "∇ℓ = {grad:?} at W = 0"
    );
    let mut reference = Reference::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2027);
    let (min, max) = (big(f64::MIN_POSITIVE), big(f64::MAX / 1024.0));
    let (mut compared, mut beyond_exp, mut cases) = (0, 0, 0);
    let mut failures = Vec::new();
    while cases < CASES {
        let x = 2f64.powi(rng.gen_range(-10..=10)) * if rng.gen_bool(0.5) { -1.0 } else { 1.0 };
        let base = draw(&mut rng, true);
        let theta: Vec<f64> = (0..p)
            .map(|_| {
                let spread = 10f64.powf(rng.gen_range(-3.0..3.0));
                (base + if rng.gen_bool(0.5) { -spread } else { spread }) / x
            })
            .collect();
        if theta.iter().any(|w| !w.is_normal()) {
            continue;
        }
        cases += 1;
        let v: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let z: Vec<f64> = theta.iter().map(|w| w * x).collect();
        if z.iter().any(|z| z.abs() > 709.0) {
            beyond_exp += 1;
        }
        // The closed form, exact to 2 560 bits: m = maxₖ zₖ,
        // ℓ = m + log Σₖ e^{zₖ − m}, sₖ = e^{zₖ − m}/Σ, ∂ℓ/∂Wₖ = sₖ x.
        let xb = big(x);
        let zb: Vec<BigFloat> = theta
            .iter()
            .map(|&w| big(w).mul(&xb, PRECISION, RM))
            .collect();
        let top = zb
            .iter()
            .skip(1)
            .fold(zb[0].clone(), |m, z| if *z > m { z.clone() } else { m });
        let e: Vec<BigFloat> = zb
            .iter()
            .map(|z| reference.exp(&z.sub(&top, PRECISION, RM)))
            .collect();
        let total = e.iter().fold(big(0.0), |acc, e| acc.add(e, PRECISION, RM));
        let s: Vec<BigFloat> = e.iter().map(|e| e.div(&total, PRECISION, RM)).collect();
        let loss_truth = top.add(&reference.ln(&total), PRECISION, RM);
        let mut truths = vec![("ℓ".to_string(), Output::Loss, loss_truth)];
        for (k, s_k) in s.iter().enumerate() {
            let g = s_k.mul(&xb, PRECISION, RM);
            truths.push((format!("∂ℓ/∂W{k}"), Output::Grad(k), g));
        }
        for (k, l) in [(0, 1), (0, 2), (1, 2)] {
            let h = s[k]
                .mul(&s[l], PRECISION, RM)
                .mul(&xb, PRECISION, RM)
                .mul(&xb, PRECISION, RM)
                .neg();
            truths.push((format!("∂²ℓ/∂W{k}∂W{l}"), Output::Hess(k * p + l), h));
        }
        let mut grad = vec![0.0; p];
        let mut hess = vec![0.0; p * p];
        let row = [x];
        let at = At::new(&theta, &[], &row);
        let loss = program.evaluate(Outputs::LossGradHess, at, &mut grad, &mut hess);
        for (name, output, truth) in &truths {
            let got = match *output {
                Output::Loss => loss,
                Output::Grad(i) => grad[i],
                Output::Hess(i) => hess[i],
            };
            let size = truth.abs();
            if truth.is_nan() || truth.is_inf() || size < min || size > max {
                continue;
            }
            compared += 1;
            let error = big(got).sub(truth, PRECISION, RM).abs();
            if !got.is_finite() || error > size.mul(&big(TOLERANCE), PRECISION, RM) {
                failures.push(format!("{name} at W = {theta:?}, x = {x:e}: got {got:e}"));
            }
        }
        // The tangent model's product against the Hessian's own, to the
        // rounding of the terms before they cancel: each entry of row k is
        // sₖ(δₖₗ − sₗ) x², each part at most sₖ x².
        let mut product = vec![0.0; p];
        program.hess_vec(at, &v, &mut product);
        let top = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = z.iter().map(|z| (z - top).exp()).sum();
        for k in 0..p {
            let row_k = &hess[k * p..(k + 1) * p];
            let expected: f64 = row_k.iter().zip(&v).map(|(h, v)| h * v).sum();
            let s_k = (z[k] - top).exp() / sum;
            let scale: f64 = v.iter().map(|v| s_k * (x * x * v).abs()).sum();
            let close = (product[k] - expected).abs() <= 1e-12 * scale + 1e-300;
            if !close && scale.is_finite() {
                failures.push(format!(
                    "(∇²ℓ v){k} at W = {theta:?}, x = {x:e}: got {:e}, H v = {expected:e}",
                    product[k]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} values lost range or precision, e.g.\n{}",
        failures.len(),
        failures[..failures.len().min(8)].join("\n")
    );
    // Most draws must reach scores beyond e^{±709}, and most values must
    // be compared, or the test would test little.
    assert!(
        beyond_exp >= CASES * 2 / 5,
        "only {beyond_exp} draws left exp's range"
    );
    assert!(
        compared >= 6 * CASES,
        "only {compared} values were normal f64s"
    );
    eprintln!("{beyond_exp} draws beyond exp's range, {compared} values compared");
}
