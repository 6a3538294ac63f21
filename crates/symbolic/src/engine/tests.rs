//! The engine's own checks that need Symbolica's atoms (which never leave
//! this crate): a fast path must give the very forms of the general one.

use super::*;
use symbolica::parse;

/// Watson's function's residual i (MGH 20, n parameters) with tᵢ = i/29
/// written as 16-digit decimals, as the derivation file writes it (the
/// loader reads a decimal as the exact rational it spells).
fn watson_residual(i: u32, n: u32) -> String {
    let decimal = |k: u32| {
        let v = (f64::from(i) / 29.0).powi(k as i32);
        let digits = format!("{v:.e}");
        let (mantissa, exponent) = digits.split_once('e').expect("an exponent");
        let exponent: i32 = exponent.parse().expect("an integer");
        let decimals = mantissa.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
        let numerator: String = mantissa.chars().filter(|c| *c != '.').collect();
        let shift = decimals - exponent;
        if shift >= 0 {
            format!("({numerator}/1{})", "0".repeat(shift as usize))
        } else {
            format!("({numerator}*1{})", "0".repeat((-shift) as usize))
        }
    };
    let slope: Vec<String> = (2..=n)
        .map(|j| format!("{}*x{j}*{}", j - 1, decimal(j - 2)))
        .collect();
    let value: Vec<String> = (1..=n)
        .map(|j| format!("x{j}*{}", decimal(j - 1)))
        .collect();
    format!("({} - ({})^2 - 1)", slope.join(" + "), value.join(" + "))
}

/// Runs `check` on the Symbolica worker and fails the test on its panic.
fn on_worker(check: impl FnOnce(&mut Engine) + Send + 'static) {
    if let Err(
        crate::worker::WorkerError::Panic(why) | crate::worker::WorkerError::Unavailable(why),
    ) = crate::worker::run(check)
    {
        panic!("{why}");
    }
}

#[test]
fn a_polynomial_long_sum_is_simplified_as_the_general_path_does() {
    on_worker(|engine| {
        let watson: Vec<String> = (1..=29).map(|i| watson_residual(i, 6)).collect();
        let loss = parse!(
            watson
                .iter()
                .map(|r| format!("{r}^2"))
                .collect::<Vec<_>>()
                .join(" + ")
        );
        let sums = [
            // ∂/∂x₁ and ∂/∂x₃ of Watson's loss: the whole expansion wins.
            loss.derivative(symbol!("x1")),
            loss.derivative(symbol!("x3")),
            // Products of binomials in distinct variables: each term as is.
            parse!(
                (1..=10)
                    .map(|i| format!("(a{i} + b{i})^3*(c{i} + {i})"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
            // Terms whose expansions cancel and merge, with a constant.
            parse!(
                (1..=10)
                    .map(|i| format!("(x + {i})^2 - (x - {i})^2 + {i}/7*y^2"))
                    .collect::<Vec<_>>()
                    .join(" + ")
                    + " - 5/3"
            ),
        ];
        for sum in &sums {
            let AtomView::Add(terms) = sum.as_view() else {
                panic!("not a sum: {sum}");
            };
            assert!(terms.get_nargs() > LONG_SUM, "too short: {sum}");
            assert!(is_polynomial(sum.as_view()), "not a polynomial: {sum}");
            assert_eq!(
                engine.simplest_polynomial_sum(terms),
                engine.simplest_long_sum(sum, terms),
                "{sum}"
            );
        }
    });
}

#[test]
fn only_polynomials_take_the_polynomial_path() {
    on_worker(|_| {
        for (text, polynomial) in [
            ("x^2*y + 3/7*x - 1", true),
            ("(x + 2*y)^5*z", true),
            ("x^-1 + y", false),
            ("x^(1/2) + y", false),
            ("x^y + 1", false),
            ("exp(x) + 1", false),
            ("log(x)*x + 1", false),
            ("2^x + 1", false),
            ("1.5*x + 1", false),
        ] {
            assert_eq!(is_polynomial(parse!(text).as_view()), polynomial, "{text}");
        }
    });
}

/// A job that asks for more names than the pool was made with gets more
/// symbols, each name its own, and the names back; the next job starts
/// again from the pool's first symbol.
#[test]
fn the_symbol_pool_grows_past_its_first_symbols() {
    on_worker(|engine| {
        engine.begin_job();
        let symbols: Vec<Symbol> = (0..1500).map(|k| engine.var(&format!("v{k}"))).collect();
        let distinct: HashSet<Symbol> = symbols.iter().copied().collect();
        assert_eq!(distinct.len(), 1500);
        for (k, s) in symbols.iter().enumerate() {
            assert_eq!(engine.name_of(*s), format!("v{k}"));
            assert_eq!(engine.var(&format!("v{k}")), *s);
        }
        engine.begin_job();
        assert_eq!(engine.var("w"), symbols[0]);
        assert_eq!(engine.name_of(symbols[0]), "w");
    });
}

/// Symbolica's printing with the model's names (`derive --format json`):
/// each pool symbol is replaced by its name, σ1 and σ12 alike, and the
/// terms come in the pool's order (the order the job first asked for the
/// names), not in an order of the names themselves.
#[test]
fn display_puts_each_name_in_place_of_its_pool_symbol() {
    on_worker(|engine| {
        engine.begin_job();
        let vars: Vec<Atom> = (0..13)
            .map(|k| Atom::var(engine.var(&format!("z{}", 12 - k))))
            .collect();
        let sum = &vars[1] + &vars[12];
        assert_eq!(engine.display(&sum), "z11+z0");
        let product = &vars[12] * &vars[10] * &vars[10];
        assert_eq!(engine.display(&product), "z2^2*z0");
    });
}
