//! Between our [`Expr`] trees and Symbolica's atoms: numbers,
//! coefficients, sizes and matrices of atoms as text.

use super::*;

/// A Hessian of atoms (of ℓ or R, named by `of`) as trees.
pub(super) fn atoms_to_matrix(
    engine: &Engine,
    m: &[Vec<Atom>],
    model: &Model,
    of: &str,
) -> Result<Vec<Vec<Expr>>, String> {
    let name = |j: usize| &model.params[j].id;
    m.iter()
        .enumerate()
        .map(|(j, row)| {
            row.iter()
                .enumerate()
                .map(|(k, a)| engine.checked(a, || format!("∂²{of}/∂{}∂{}", name(j), name(k))))
                .collect()
        })
        .collect()
}

pub(super) fn strings(engine: &Engine, m: &[Vec<Atom>]) -> Vec<Vec<String>> {
    m.iter()
        .map(|row| row.iter().map(|a| engine.display(a)).collect())
        .collect()
}

/// An exact rational as a Symbolica number, of any size: numerator and
/// denominator are built from their 64-bit digits.
pub(super) fn number(r: &Rational) -> Atom {
    fn integer(n: &BigInt) -> Atom {
        let (sign, digits) = n.to_u64_digits();
        let base = Integer::from(1i128 << 64);
        let mut acc = Integer::zero();
        for d in digits.iter().rev() {
            acc = &(&acc * &base) + &Integer::from(i128::from(*d));
        }
        match sign {
            Sign::Minus => Atom::num(-acc),
            _ => Atom::num(acc),
        }
    }
    match r.to_i64() {
        Some(n) => Atom::num(n),
        None => integer(r.numer()) / integer(r.denom()),
    }
}

/// A Symbolica coefficient → an exact rational, or why it is not one.
pub(crate) fn coefficient(c: CoefficientView<'_>, atom: AtomView<'_>) -> Result<Rational, String> {
    match c {
        CoefficientView::Natural(num, den, 0, _) => Ok(Rational::ratio(num, den)),
        CoefficientView::Large(re, im) if im.is_zero() => Rational::parse(&re.to_rat().to_string())
            .ok_or_else(|| format!("a number Symbolica wrote as `{}`", re.to_rat())),
        CoefficientView::Infinity(_) => Err("a division by zero (the value is infinite)".into()),
        CoefficientView::Indeterminate => Err("an undefined value such as 0/0".into()),
        CoefficientView::Natural(..) | CoefficientView::Large(..) => Err(format!(
            "a complex number `{}` (for example the root or logarithm of a negative constant)",
            atom.to_owned()
        )),
        _ => Err(format!(
            "a number that is not rational: `{}`",
            atom.to_owned()
        )),
    }
}
