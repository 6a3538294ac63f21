//! The functions of the derivation language and of the IR, as one table.
//!
//! [`FUNCTIONS`] holds one [`Function`] per [`Func`]: its name in files and
//! in generated code, whether a derivation file may call it, its domain, its
//! derivative as the reference page prints it, its spelling in LaTeX and in
//! text, and one line on what it is for. The loader's help ("supported: …"),
//! the renderer's spelling and the book's reference page
//! (`docs/src/reference/functions.md`, written by `hessforge generate`) are
//! read from it, so a function cannot be listed in one place and missing
//! from another. Its value is [`Func::eval`] ([`crate::math`] for the forms
//! that need care); its eight-lane form is in [`crate::lanes`].
//!
//! Its derivative is one rule, [`Func::chain`], written once against the
//! small [`Algebra`] trait and built by each back end in its own terms:
//! Symbolica atoms (the derivative rules of the functions Symbolica does not
//! know), index-form expressions (the index calculus) and IR instructions
//! (the tangent model of Hessian–vector products).

use crate::lanes::Lanes;
use crate::math;
use serde::{Deserialize, Serialize};

/// A function of derivation files and of the IR; [`Func::info`] describes
/// it and [`Func::eval`] evaluates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Func {
    Exp,
    Log,
    Log1p,
    Expm1,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Atan,
    Tanh,
    Sigmoid,
    Softplus,
    Relu,
    Step,
    Abs,
    Sign,
    Erf,
    #[serde(rename = "erf_prime")]
    ErfPrime,
    Asinh,
}

/// One function's entry in [`FUNCTIONS`].
#[derive(Debug, Clone, Copy)]
pub struct Function {
    /// The function.
    pub func: Func,
    /// Its name in derivation files, in the IR's text and in generated code
    /// (the name of its implementation in [`crate::math`] or `f64`).
    pub name: &'static str,
    /// Whether a derivation file may call it (`expm1` is introduced only by
    /// the lowering's stable rewrites).
    pub in_files: bool,
    /// Its value, in the numerically stable form every back end shares.
    pub eval: fn(f64) -> f64,
    /// The method of `f64` that computes it (`ln_1p`), which the eight-lane
    /// [`crate::lanes::Lanes`] has too; `None` for hessforge's own functions,
    /// which generated code calls by their [`Function::name`] in
    /// [`crate::math`] and on lanes.
    pub method: Option<&'static str>,
    /// Whether [`crate::lanes::Lanes`] has a method of its own for it (by
    /// the name above); otherwise generated code maps the scalar function
    /// over the lanes.
    pub on_lanes: bool,
    /// Where it is defined, in words.
    pub domain: &'static str,
    /// f′(u) in terms of u and f(u), in words.
    pub derivative: &'static str,
    /// Its LaTeX operator, written before the parenthesised argument
    /// (`\log(u)`). The renderer writes three functions in a form of their
    /// own: a short exponent as `e^{u}`, `\sqrt{u}` and `\left|u\right|`.
    pub latex: &'static str,
    /// How the plain-text rendering names it.
    pub text: &'static str,
    /// What it is for, in one line.
    pub about: &'static str,
}

/// Every function, in the order the reference page lists them.
pub const FUNCTIONS: [Function; 19] = [
    Function {
        func: Func::Exp,
        name: "exp",
        in_files: true,
        eval: f64::exp,
        method: Some("exp"),
        on_lanes: true,
        domain: "every real u",
        derivative: "exp(u)",
        latex: "\\exp",
        text: "exp",
        about: "the exponential",
    },
    Function {
        func: Func::Log,
        name: "log",
        in_files: true,
        eval: f64::ln,
        method: Some("ln"),
        on_lanes: true,
        domain: "u > 0",
        derivative: "1/u",
        latex: "\\log",
        text: "log",
        about: "the natural logarithm",
    },
    Function {
        func: Func::Log1p,
        name: "log1p",
        in_files: true,
        eval: f64::ln_1p,
        method: Some("ln_1p"),
        on_lanes: true,
        domain: "u > −1",
        derivative: "1/(1 + u)",
        latex: "\\operatorname{log1p}",
        text: "log1p",
        about: "log(1 + u), accurate for small u; the lowering writes log(1 + u) this way",
    },
    Function {
        func: Func::Expm1,
        name: "expm1",
        in_files: false,
        eval: f64::exp_m1,
        method: Some("exp_m1"),
        on_lanes: true,
        domain: "every real u",
        derivative: "exp(u)",
        latex: "\\operatorname{expm1}",
        text: "expm1",
        about: "eᵘ − 1, accurate for small u; introduced by the lowering for eᵘ − 1",
    },
    Function {
        func: Func::Sqrt,
        name: "sqrt",
        in_files: true,
        eval: f64::sqrt,
        method: Some("sqrt"),
        on_lanes: true,
        domain: "u ≥ 0 (its derivative u > 0)",
        derivative: "1/(2 sqrt(u))",
        latex: "\\sqrt",
        text: "sqrt",
        about: "the square root",
    },
    Function {
        func: Func::Sin,
        name: "sin",
        in_files: true,
        eval: f64::sin,
        method: Some("sin"),
        on_lanes: true,
        domain: "every real u",
        derivative: "cos(u)",
        latex: "\\sin",
        text: "sin",
        about: "the sine",
    },
    Function {
        func: Func::Cos,
        name: "cos",
        in_files: true,
        eval: f64::cos,
        method: Some("cos"),
        on_lanes: true,
        domain: "every real u",
        derivative: "−sin(u)",
        latex: "\\cos",
        text: "cos",
        about: "the cosine",
    },
    Function {
        func: Func::Tan,
        name: "tan",
        in_files: true,
        eval: f64::tan,
        method: Some("tan"),
        on_lanes: true,
        domain: "u ≠ π/2 + kπ",
        derivative: "1 + tan(u)²",
        latex: "\\tan",
        text: "tan",
        about: "the tangent",
    },
    Function {
        func: Func::Atan,
        name: "atan",
        in_files: true,
        eval: f64::atan,
        method: Some("atan"),
        on_lanes: true,
        domain: "every real u",
        derivative: "1/(1 + u²)",
        latex: "\\arctan",
        text: "atan",
        about: "the inverse tangent",
    },
    Function {
        func: Func::Tanh,
        name: "tanh",
        in_files: true,
        eval: f64::tanh,
        method: Some("tanh"),
        on_lanes: true,
        domain: "every real u",
        derivative: "1 − tanh(u)²",
        latex: "\\tanh",
        text: "tanh",
        about: "the hyperbolic tangent: a network's hidden units",
    },
    Function {
        func: Func::Sigmoid,
        name: "sigmoid",
        in_files: true,
        eval: math::sigmoid,
        method: None,
        on_lanes: true,
        domain: "every real u",
        derivative: "σ(u)(1 − σ(u))",
        latex: "\\sigma",
        text: "σ",
        about: "the logistic function 1/(1 + e⁻ᵘ), without overflow for either sign",
    },
    Function {
        func: Func::Softplus,
        name: "softplus",
        in_files: true,
        eval: math::softplus,
        method: None,
        on_lanes: true,
        domain: "every real u",
        derivative: "σ(u)",
        latex: "\\operatorname{softplus}",
        text: "softplus",
        about: "log(1 + eᵘ) = max(u, 0) + log1p(e^{−|u|}), without overflow; the lowering writes log(1 + eᵘ) this way",
    },
    Function {
        func: Func::Relu,
        name: "relu",
        in_files: true,
        eval: math::relu,
        method: None,
        on_lanes: true,
        domain: "every real u",
        derivative: "step(u)",
        latex: "\\operatorname{ReLU}",
        text: "relu",
        about: "max(0, u)",
    },
    Function {
        func: Func::Step,
        name: "step",
        in_files: true,
        eval: math::step,
        method: None,
        on_lanes: true,
        domain: "every real u",
        derivative: "0 (almost everywhere)",
        latex: "\\operatorname{step}",
        text: "step",
        about: "1 for u > 0, else 0 (ReLU's derivative, taken as 0 at 0)",
    },
    Function {
        func: Func::Abs,
        name: "abs",
        in_files: true,
        eval: f64::abs,
        method: Some("abs"),
        on_lanes: true,
        domain: "every real u",
        derivative: "sign(u)",
        latex: "\\operatorname{abs}",
        text: "abs",
        about: "the absolute value",
    },
    Function {
        func: Func::Sign,
        name: "sign",
        in_files: true,
        eval: math::sign,
        method: None,
        on_lanes: true,
        domain: "every real u",
        derivative: "0 (almost everywhere)",
        latex: "\\operatorname{sign}",
        text: "sign",
        about: "−1, 0 or 1 (the derivative of |u|)",
    },
    Function {
        func: Func::Erf,
        name: "erf",
        in_files: true,
        eval: math::erf,
        method: None,
        on_lanes: false,
        domain: "every real u",
        derivative: "erf′(u) = (2/√π)·e^(−u²)",
        latex: "\\operatorname{erf}",
        text: "erf",
        about: "the error function: a probit model's normal CDF is Φ(z) = (1 + erf(z/√2))/2",
    },
    Function {
        func: Func::ErfPrime,
        name: "erf_prime",
        in_files: false,
        eval: math::erf_prime,
        method: None,
        on_lanes: false,
        domain: "every real u",
        derivative: "−2u·erf′(u)",
        latex: "\\operatorname{erf}'",
        text: "erf′",
        about: "erf′(u) = (2/√π)·e^(−u²), the derivative of erf (its constant 2/√π has no exact form in the derivation language)",
    },
    Function {
        func: Func::Asinh,
        name: "asinh",
        in_files: true,
        eval: f64::asinh,
        method: Some("asinh"),
        on_lanes: false,
        domain: "every real u",
        derivative: "1/sqrt(1 + u²)",
        latex: "\\operatorname{arsinh}",
        text: "asinh",
        about: "the inverse hyperbolic sine: a log-like transform defined at 0 and for negative values",
    },
];

/// The operations a derivative rule is written with. Each back end builds
/// its own terms: Symbolica atoms, index-form expressions, IR operands.
/// The rules use the operations in a fixed order and shape, so each back end
/// gets the same terms it wrote by hand before the rule was shared.
pub trait Algebra {
    /// A term of this back end.
    type Term: Clone;
    /// The integer n.
    fn int(&mut self, n: i64) -> Self::Term;
    /// ½.
    fn half(&mut self) -> Self::Term;
    /// a + b.
    fn add(&mut self, a: Self::Term, b: Self::Term) -> Self::Term;
    /// a·b.
    fn mul(&mut self, a: Self::Term, b: Self::Term) -> Self::Term;
    /// −a.
    fn neg(&mut self, a: Self::Term) -> Self::Term;
    /// a / b.
    fn div(&mut self, a: Self::Term, b: Self::Term) -> Self::Term;
    /// a².
    fn square(&mut self, a: Self::Term) -> Self::Term;
    /// f(u).
    fn call(&mut self, f: Func, u: Self::Term) -> Self::Term;
}

impl Func {
    /// Every function, in the table's order.
    pub fn all() -> impl Iterator<Item = Func> {
        FUNCTIONS.iter().map(|f| f.func)
    }

    /// The functions a derivation file may call.
    pub fn in_files() -> impl Iterator<Item = Func> {
        FUNCTIONS.iter().filter(|f| f.in_files).map(|f| f.func)
    }

    /// A function of derivation files, by its name.
    pub fn from_name(name: &str) -> Option<Func> {
        Func::in_files().find(|f| f.name() == name)
    }

    /// The function's entry in [`FUNCTIONS`].
    pub fn info(self) -> &'static Function {
        // The table lists the functions in the enum's order (a unit test
        // checks it), so the discriminant is the index.
        &FUNCTIONS[self as usize]
    }

    /// The function's name (also its name in [`crate::math`]).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The chain rule through this function: f′(u)·du, given the argument
    /// u, the function's value f(u) (which several rules reuse) and the
    /// argument's derivative du; `None` where f′ is zero (step, sign).
    /// This is the only place a function's derivative is written.
    pub fn chain<A: Algebra>(
        self,
        alg: &mut A,
        u: A::Term,
        value: A::Term,
        du: A::Term,
    ) -> Option<A::Term> {
        let one = alg.int(1);
        let derivative = match self {
            // (e^u)' = e^u; (e^u − 1)' = e^u.
            Func::Exp => alg.mul(value, du),
            Func::Expm1 => {
                let e = alg.call(Func::Exp, u);
                alg.mul(e, du)
            }
            // 1/u, 1/(1 + u), 1/(1 + u²): the derivative divides du.
            Func::Log => alg.div(du, u),
            Func::Log1p => {
                let d = alg.add(one, u);
                alg.div(du, d)
            }
            Func::Atan => {
                let q = alg.square(u);
                let d = alg.add(one, q);
                alg.div(du, d)
            }
            // ½ / √u.
            Func::Sqrt => {
                let half = alg.half();
                let q = alg.div(du, value);
                alg.mul(half, q)
            }
            Func::Sin => {
                let c = alg.call(Func::Cos, u);
                alg.mul(c, du)
            }
            Func::Cos => {
                let s = alg.call(Func::Sin, u);
                let m = alg.neg(s);
                alg.mul(m, du)
            }
            // 1 + tan², 1 − tanh², σ(1 − σ): from the function's own value.
            Func::Tan => {
                let q = alg.square(value);
                let f = alg.add(one, q);
                alg.mul(f, du)
            }
            Func::Tanh => {
                let q = alg.square(value);
                let m = alg.neg(q);
                let f = alg.add(one, m);
                alg.mul(f, du)
            }
            Func::Sigmoid => {
                let m = alg.neg(value.clone());
                let c = alg.add(one, m);
                let f = alg.mul(value, c);
                alg.mul(f, du)
            }
            Func::Softplus => {
                let s = alg.call(Func::Sigmoid, u);
                alg.mul(s, du)
            }
            Func::Relu => {
                let s = alg.call(Func::Step, u);
                alg.mul(s, du)
            }
            Func::Abs => {
                let s = alg.call(Func::Sign, u);
                alg.mul(s, du)
            }
            Func::Step | Func::Sign => return None,
            // erf′(u) = (2/√π) e^(−u²), whose own derivative is −2u·erf′(u).
            Func::Erf => {
                let d = alg.call(Func::ErfPrime, u);
                alg.mul(d, du)
            }
            Func::ErfPrime => {
                let two = alg.int(2);
                let two_u = alg.mul(two, u);
                let m = alg.neg(two_u);
                let f = alg.mul(m, value);
                alg.mul(f, du)
            }
            // 1/√(1 + u²).
            Func::Asinh => {
                let q = alg.square(u);
                let s = alg.add(one, q);
                let r = alg.call(Func::Sqrt, s);
                alg.div(du, r)
            }
        };
        Some(derivative)
    }

    /// Evaluate.
    #[inline]
    pub fn eval(self, x: f64) -> f64 {
        (self.info().eval)(x)
    }

    /// Its value on W lanes, as generated code computes it: the method of
    /// [`Lanes`] where [`Function::on_lanes`], else [`Function::eval`] lane
    /// by lane (what the run-time compiled kernels call; inlined, so that a
    /// caller compiled for AVX2 gets the AVX2 code).
    #[inline(always)]
    pub fn eval_lanes<const W: usize>(self, x: Lanes<W>) -> Lanes<W> {
        match self {
            Func::Exp => x.exp(),
            Func::Log => x.ln(),
            Func::Log1p => x.ln_1p(),
            Func::Expm1 => x.exp_m1(),
            Func::Sqrt => x.sqrt(),
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tan => x.tan(),
            Func::Atan => x.atan(),
            Func::Tanh => x.tanh(),
            Func::Sigmoid => x.sigmoid(),
            Func::Softplus => x.softplus(),
            Func::Relu => x.relu(),
            Func::Step => x.step(),
            Func::Abs => x.abs(),
            Func::Sign => x.sign(),
            Func::Erf => x.map(math::erf),
            Func::ErfPrime => x.map(math::erf_prime),
            Func::Asinh => x.map(f64::asinh),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each function on lanes (what generated code and the run-time
    /// compiled kernels compute) agrees with its value one at a time.
    #[test]
    fn every_function_on_lanes_agrees_with_its_value() {
        use crate::lanes::Lanes;
        let xs = [0.05, 0.3, 0.75, 1.0, 1.6, 2.9, 7.5, 30.0];
        for f in Func::all() {
            for sign in [1.0, -1.0] {
                let x: [f64; 8] = xs.map(|v| v * sign);
                let lanes = f.eval_lanes(Lanes(x)).0;
                for (a, v) in lanes.iter().zip(x) {
                    let b = f.eval(v);
                    let ok = *a == b
                        || (a.is_nan() && b.is_nan())
                        || (a - b).abs() <= 4e-16 * b.abs().max(1e-300);
                    assert!(ok, "{}({v}): {a} on lanes, {b} alone", f.name());
                }
            }
        }
    }

    #[test]
    fn the_table_lists_each_function_once_in_the_enums_order() {
        for (i, f) in FUNCTIONS.iter().enumerate() {
            assert_eq!(f.func as usize, i, "{} is out of place", f.name);
            assert_eq!(Func::from_name(f.name).is_some(), f.in_files);
        }
        assert_eq!(Func::in_files().count(), 17);
        assert_eq!(Func::from_name("expm1"), None);
    }

    /// The rules on plain numbers.
    struct Numbers;

    impl Algebra for Numbers {
        type Term = f64;
        fn int(&mut self, n: i64) -> f64 {
            n as f64
        }
        fn half(&mut self) -> f64 {
            0.5
        }
        fn add(&mut self, a: f64, b: f64) -> f64 {
            a + b
        }
        fn mul(&mut self, a: f64, b: f64) -> f64 {
            a * b
        }
        fn neg(&mut self, a: f64) -> f64 {
            -a
        }
        fn div(&mut self, a: f64, b: f64) -> f64 {
            a / b
        }
        fn square(&mut self, a: f64) -> f64 {
            a * a
        }
        fn call(&mut self, f: Func, u: f64) -> f64 {
            f.eval(u)
        }
    }

    #[test]
    fn every_derivative_rule_agrees_with_central_differences() {
        for f in Func::all() {
            for u in [-1.3, -0.4, 0.3, 0.9, 2.1] {
                let value = f.eval(u);
                if !value.is_finite() || (matches!(f, Func::Log1p) && u <= -1.0) {
                    continue;
                }
                let h = 1e-6;
                let numeric = (f.eval(u + h) - f.eval(u - h)) / (2.0 * h);
                let rule = f.chain(&mut Numbers, u, value, 1.0).unwrap_or(0.0);
                // du scales the result.
                let scaled = f.chain(&mut Numbers, u, value, 3.0).unwrap_or(0.0);
                assert!(
                    (rule - numeric).abs() <= 1e-6 * (1.0 + numeric.abs()),
                    "{}'({u}) = {rule}, central differences {numeric}",
                    f.name()
                );
                assert!(
                    (scaled - 3.0 * rule).abs() <= 1e-15 * scaled.abs(),
                    "{}",
                    f.name()
                );
            }
        }
    }
}
