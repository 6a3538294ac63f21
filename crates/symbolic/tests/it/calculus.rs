//! Calculus facts, one line each: the derived result and the textbook form
//! must be equal as functions (their difference simplifies to zero after
//! inlining the intermediates), not merely print alike.

use crate::common;
use common::{builtin, tiny};
use hessforge_ir::Algebra;
use hessforge_spec::{Expr, Func, Model, Rational, parse_expression};
use hessforge_symbolic::{Derivation, derive, equivalent};

fn same(model: &Model, derived: &hessforge_spec::Expr, textbook: &str) -> bool {
    let expected = parse_expression(model, textbook).unwrap_or_else(|e| panic!("{}", e.one_line()));
    equivalent(model, derived, &expected).unwrap()
}

fn param(d: &Derivation, id: &str) -> usize {
    d.model.params.iter().position(|p| p.id == id).unwrap()
}

/// d/dw of `loss` equals `derivative` (both in w and x).
fn rule(loss: &str, derivative: &str) {
    let m = tiny(loss);
    let d = derive(&m).unwrap();
    assert!(
        same(&m, &d.gradient[0].expr, derivative),
        "d/dw {loss} = {derivative}"
    );
}

/// d²/dw² of `loss` equals `second`.
fn second(loss: &str, second: &str) {
    let m = tiny(loss);
    let d = derive(&m).unwrap();
    assert!(
        same(&m, &d.hessian[0][0], second),
        "d²/dw² {loss} = {second}"
    );
}

/// The function table's derivative rules as model expressions.
struct ExprTerms;

impl Algebra for ExprTerms {
    type Term = Expr;
    fn int(&mut self, n: i64) -> Expr {
        Expr::int(n)
    }
    fn half(&mut self) -> Expr {
        Expr::Num(Rational::ratio(1, 2))
    }
    fn add(&mut self, a: Expr, b: Expr) -> Expr {
        Expr::Add(vec![a, b])
    }
    fn mul(&mut self, a: Expr, b: Expr) -> Expr {
        Expr::Mul(vec![a, b])
    }
    fn neg(&mut self, a: Expr) -> Expr {
        Expr::Mul(vec![Expr::int(-1), a])
    }
    fn div(&mut self, a: Expr, b: Expr) -> Expr {
        Expr::Mul(vec![a, Expr::Pow(Box::new(b), Box::new(Expr::int(-1)))])
    }
    fn square(&mut self, a: Expr) -> Expr {
        Expr::Pow(Box::new(a), Box::new(Expr::int(2)))
    }
    fn call(&mut self, f: Func, u: Expr) -> Expr {
        Expr::Call(f, Box::new(u))
    }
}

/// The derivative Symbolica takes of every function a file may call — by
/// its own rule for exp, log, sin, cos and sqrt, by the function table's
/// for the others — is the table's rule (`Func::chain`), and the second
/// derivative is the rule applied twice.
#[test]
fn every_derivative_is_the_function_tables_rule() {
    for f in Func::in_files() {
        let m = tiny(&format!("{}(x * w)", f.name()));
        let d = derive(&m).unwrap();
        let u = Expr::Mul(vec![Expr::Var("x".into()), Expr::Var("w".into())]);
        let value = Expr::Call(f, Box::new(u.clone()));
        let x = Expr::Var("x".into());
        let first = f
            .chain(&mut ExprTerms, u.clone(), value, x.clone())
            .unwrap_or_else(|| Expr::int(0));
        assert!(
            equivalent(&m, &d.gradient[0].expr, &first).unwrap(),
            "d/dw {}(x w)",
            f.name()
        );
    }
    // erf″ = −2u·erf′, by the rule of erf′ (a function files do not call).
    let m = tiny("erf(w)");
    let d = derive(&m).unwrap();
    let w = Expr::Var("w".into());
    let erf_prime = Expr::Call(Func::ErfPrime, Box::new(w.clone()));
    assert!(equivalent(&m, &d.gradient[0].expr, &erf_prime).unwrap());
    let second = Expr::Mul(vec![Expr::int(-2), w, erf_prime]);
    assert!(equivalent(&m, &d.hessian[0][0], &second).unwrap());
}

#[test]
fn derivative_rules() {
    rule("sigmoid(w)", "sigmoid(w) * (1 - sigmoid(w))");
    rule("softplus(w)", "sigmoid(w)");
    rule("tanh(w)", "1 - tanh(w)^2");
    rule("tan(w)", "1 + tan(w)^2");
    rule("atan(w)", "1 / (1 + w^2)");
    rule("log1p(w)", "1 / (1 + w)");
    rule("log(w)", "1 / w");
    rule("exp(x * w)", "x * exp(x * w)");
    rule("sqrt(w)", "1 / (2 * sqrt(w))");
    rule("sin(w)", "cos(w)");
    rule("cos(w)", "-sin(w)");
    rule("relu(w)", "step(w)");
    rule("abs(w)", "sign(w)");
    rule("w^3 / 3", "w^2");
    rule("softplus(-x * w)", "-x * sigmoid(-x * w)");
    rule("asinh(w)", "1 / sqrt(1 + w^2)");
    rule("asinh(x * w)", "x / sqrt(1 + x^2 * w^2)");
    second("relu(w)", "0");
    second("abs(w)", "0");
    second(
        "sigmoid(w)",
        "sigmoid(w) * (1 - sigmoid(w)) * (1 - 2 * sigmoid(w))",
    );
    second("tanh(w)", "-2 * tanh(w) * (1 - tanh(w)^2)");
}

#[test]
fn logistic_regression_is_prediction_minus_target() {
    let m = builtin("logistic_regression");
    let d = derive(&m).unwrap();
    for j in 1..=10 {
        let g = &d.gradient[param(&d, &format!("w_{j}"))].expr;
        assert!(same(&m, g, &format!("(p - y) * x[{j}]")), "∂ℓ/∂w_{j}");
        assert!(same(&m, g, &format!("(sigmoid(z) - y) * x[{j}]")));
        for k in 1..=10 {
            let h = &d.hessian[param(&d, &format!("w_{j}"))][param(&d, &format!("w_{k}"))];
            assert!(
                same(&m, h, &format!("p * (1 - p) * x[{j}] * x[{k}]")),
                "H w_{j} w_{k}"
            );
        }
    }
    assert!(same(&m, &d.gradient[param(&d, "b")].expr, "p - y"));
    assert!(same(&m, &d.regularizer_gradient[0], "lambda * w[1]"));
    // Shown through the intermediate p, as a teacher writes it: no σ left.
    let shown = format!("{:?}", d.gradient[0].expr);
    assert!(!shown.contains("Sigmoid"), "{shown}");
}

#[test]
fn linear_regression_is_residual_times_feature() {
    let m = builtin("linear_regression");
    let d = derive(&m).unwrap();
    for j in 1..=10 {
        let g = &d.gradient[param(&d, &format!("w_{j}"))].expr;
        assert!(same(&m, g, &format!("(yhat - y) * x[{j}]")));
        assert!(same(&m, g, &format!("(dot(w, x) + b - y) * x[{j}]")));
    }
    assert!(same(&m, &d.hessian[0][1], "x[1] * x[2]"));
    assert!(same(&m, &d.hessian[10][10], "1"));
}

#[test]
fn quadratic_bowl_hessian_is_its_constant_matrix() {
    let m = builtin("quadratic_bowl");
    let d = derive(&m).unwrap();
    let constant = |e: &hessforge_spec::Expr| match e {
        hessforge_spec::Expr::Num(r) => r.to_f64(),
        other => panic!("not a constant: {other:?}"),
    };
    let h: Vec<Vec<f64>> = d
        .hessian
        .iter()
        .map(|r| r.iter().map(constant).collect())
        .collect();
    assert_eq!(h, [[1.0, 0.0], [0.0, 25.0]]);
    // Newton lands on the minimum in one step: d = −θ.
    let step = d.newton_step.as_ref().unwrap();
    assert!(same(&m, &step[0], "-x"));
    assert!(same(&m, &step[1], "-y"));
}

#[test]
fn softmax_regression_is_probability_minus_one_hot() {
    let m = builtin("softmax_regression");
    let d = derive(&m).unwrap();
    for k in 1..=3 {
        for j in 1..=4 {
            let g = &d.gradient[param(&d, &format!("W_{k}_{j}"))].expr;
            assert!(
                same(&m, g, &format!("(s[{k}] - y[{k}]) * x[{j}]")),
                "W_{k}_{j}"
            );
        }
    }
    let h = &d.hessian[param(&d, "W_1_1")][param(&d, "W_2_1")];
    assert!(same(&m, h, "-s[1] * s[2] * x[1]^2"));
}

#[test]
fn mlp_is_back_propagation() {
    let m = builtin("mlp_tanh");
    let d = derive(&m).unwrap();
    for i in 1..=4 {
        let g = &d.gradient[param(&d, &format!("v_{i}"))].expr;
        assert!(same(&m, g, &format!("(yhat - y) * h[{i}]")));
        for j in 1..=2 {
            let g = &d.gradient[param(&d, &format!("W_{i}_{j}"))].expr;
            assert!(same(
                &m,
                g,
                &format!("(yhat - y) * v[{i}] * (1 - h[{i}]^2) * x[{j}]")
            ));
        }
    }
}

#[test]
fn rosenbrock_and_saddle() {
    let m = builtin("rosenbrock");
    let d = derive(&m).unwrap();
    assert!(same(
        &m,
        &d.gradient[0].expr,
        "-2 * (a - x) - 4 * c * x * (y - x^2)"
    ));
    assert!(same(&m, &d.gradient[1].expr, "2 * c * (y - x^2)"));
    assert!(same(&m, &d.hessian[0][0], "2 - 4 * c * (y - 3 * x^2)"));
    let m = builtin("saddle");
    let d = derive(&m).unwrap();
    assert!(same(&m, &d.gradient[1].expr, "-2 * y + y^3"));
    assert!(same(&m, &d.hessian[1][1], "3 * y^2 - 2"));
}

#[test]
fn equivalence_can_say_no() {
    let m = builtin("logistic_regression");
    let d = derive(&m).unwrap();
    assert!(!same(&m, &d.gradient[0].expr, "(y - p) * x[1]"));
    assert!(!same(&m, &d.gradient[0].expr, "(p - y) * x[2]"));
}
