//! Which expansions are safe: powers, numbers and sums small enough that
//! expanding them cannot blow up.

use super::*;

/// Whether the polynomial algorithms (factor, expand, common denominator)
/// can be run on an expression at no risk: every numeric exponent is a
/// rational with numerator and denominator of at most
/// [`MAX_POLYNOMIAL_DEGREE`], and a sum is raised to at most the
/// [`MAX_SUM_POWER`]-th power. `x^2.5e12` (which the polynomial
/// representation cannot hold), `(a + b)^1000` (which expands to a thousand
/// terms) or `log(1 + u^7.79)` (whose derivatives, over a common denominator,
/// are polynomials of degree 779 in u^(1/100): minutes of gcds) are left as
/// written.
pub(super) fn tame(a: AtomView<'_>) -> bool {
    powers_within(a, MAX_SUM_POWER, MAX_POLYNOMIAL_DEGREE)
}

/// Whether every numeric exponent is a rational with numerator and
/// denominator of at most `limit`, and every power of a sum at most
/// `sum_limit`.
pub(crate) fn powers_within(a: AtomView<'_>, sum_limit: u64, limit: u64) -> bool {
    let within = |x: AtomView<'_>| powers_within(x, sum_limit, limit);
    match a {
        AtomView::Num(_) | AtomView::Var(_) => true,
        AtomView::Fun(f) => f.iter().all(within),
        AtomView::Pow(p) => {
            let (base, exponent) = p.get_base_exp();
            let bounded = match exponent {
                AtomView::Num(n) => match n.get_coeff_view() {
                    CoefficientView::Natural(num, den, 0, _) => {
                        let top = if matches!(base, AtomView::Add(_)) {
                            sum_limit.min(limit)
                        } else {
                            limit
                        };
                        num.unsigned_abs() <= top && den.unsigned_abs() <= limit
                    }
                    _ => false,
                },
                // Symbolica's polynomial conversion splits `a^(a + c)` into
                // `a^a · a^c`: a symbolic exponent's numbers count as powers.
                other => within(other) && numbers_within(other, limit),
            };
            bounded && within(base)
        }
        AtomView::Mul(m) => m.iter().all(within),
        AtomView::Add(s) => s.iter().all(within),
    }
}

/// Whether `a` holds no variable (a number, `sqrt(2)`, `log(3)`).
pub(super) fn is_constant(a: AtomView<'_>) -> bool {
    !any_node(a, &|x| matches!(x, AtomView::Var(_)))
}

/// Whether every number in `a` has numerator and denominator of at most
/// `limit` (`a + 2.5e12` does not).
pub(super) fn numbers_within(a: AtomView<'_>, limit: u64) -> bool {
    let within = |x: AtomView<'_>| numbers_within(x, limit);
    match a {
        AtomView::Num(n) => match n.get_coeff_view() {
            CoefficientView::Natural(num, den, 0, _) => {
                num.unsigned_abs() <= limit && den.unsigned_abs() <= limit
            }
            _ => false,
        },
        AtomView::Var(_) => true,
        AtomView::Fun(f) => f.iter().all(within),
        AtomView::Pow(p) => {
            let (base, exponent) = p.get_base_exp();
            within(base) && within(exponent)
        }
        AtomView::Mul(m) => m.iter().all(within),
        AtomView::Add(s) => s.iter().all(within),
    }
}

/// Whether `a` is a polynomial with rational coefficients: numbers,
/// variables (not e), sums, products and powers with a natural exponent,
/// no function. Such an expression is expanded through Symbolica's
/// polynomial type (`Engine::simplest_polynomial_sum`).
pub(super) fn is_polynomial(a: AtomView<'_>) -> bool {
    match a {
        AtomView::Num(n) => match n.get_coeff_view() {
            CoefficientView::Natural(_, _, 0, _) => true,
            CoefficientView::Large(_, im) => im.is_zero(),
            _ => false,
        },
        AtomView::Var(v) => v.get_symbol() != Symbol::E,
        AtomView::Fun(_) => false,
        AtomView::Pow(p) => {
            let (base, exponent) = p.get_base_exp();
            let natural = matches!(exponent, AtomView::Num(n)
                if matches!(n.get_coeff_view(), CoefficientView::Natural(k, 1, 0, _) if k > 0));
            natural && is_polynomial(base)
        }
        AtomView::Mul(m) => m.iter().all(is_polynomial),
        AtomView::Add(s) => s.iter().all(is_polynomial),
    }
}

/// Whether a numeric exponent has numerator and denominator of at most
/// [`MAX_EXPONENT`].
pub(super) fn small_exponent(r: &Rational) -> bool {
    let bounded = |n: &BigInt| n.magnitude() <= &num_bigint::BigUint::from(MAX_EXPONENT);
    bounded(r.numer()) && bounded(r.denom())
}

/// The largest numerator or denominator of an exponent in [`tame`]: the
/// degree of the polynomials the algorithms would work with.
pub(super) const MAX_POLYNOMIAL_DEGREE: u64 = 64;

/// The largest power of a sum in [`tame`].
pub(super) const MAX_SUM_POWER: u64 = 16;

/// Sums of more terms than this are simplified term by term
/// ([`Engine::simplest`]).
pub(super) const LONG_SUM: usize = 8;
