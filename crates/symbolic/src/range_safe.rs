//! Range-safe forms: where a value the lowering would compute can over- or
//! underflow f64 while the true value is representable, it is written in a
//! form that stays in range (applied to the scalar programs after the
//! stable rewrites of [`crate::lower`], before Symbolica's evaluator
//! optimises the program; the loop IR keeps the stable rewrites only).
//!
//! - **A product at risk in log space.** A ratio whose two sides can both
//!   leave the range (u²⁶·(1 + u¹⁴)⁻²), an exponential or σ against
//!   anything that varies (x·σ(−z)), or a power of degree ≥ 8 against
//!   anything (a¹⁴·x¹⁴) — degrees from [`Engine::degree`] — is computed as
//!   `sign · F · e^E` over its varying factors ([`LogParts`]): E adds
//!   eᵢ·log|bᵢ|, with the scores of exponentials and the maxima of
//!   log-sum-exps added first, apart from the logs
//!   ([`Engine::together`](crate::engine::Engine)); F is the bounded sum
//!   of a positive sum's log-sum-exp. u²⁶·(1 + u¹⁴)⁻² at u = 10¹² is
//!   10⁻²⁴, where the naive form makes ∞·0. A product with a sum of both
//!   signs is distributed first (x·(A − B) with A, B tiny and x huge), and a
//!   power of such a sum becomes one power of a ratio. Products of low
//!   powers (a·(b − a²), x·(w·x − y)) keep their arithmetic: they leave
//!   the range only beyond 10^(308/degree).
//! - **The logarithm of a sum of terms ≥ 0** (log Σ e^{z_k}, log(1 + u¹⁴))
//!   is folded pairwise, lse(a, b) = max(a, b) + softplus(−|a − b|), with
//!   log|t| of every term taken range-safe (log|u¹⁴| = 14·log|u|,
//!   log eᶻ = z); ln(1 + t) of such a t is softplus(log t).
//!
//! Each rewrite applied is recorded ([`Applied`]); `derive --format json`
//! lists them. The cost is a few `log`/`exp` calls per rewritten product,
//! paid only where a product is at risk.

use crate::engine::{Engine, call, coefficient, exp_of};
use crate::lower::{is_e, is_log};
use hessforge_spec::{Func, Rational};
use symbolica::atom::{Atom, AtomCore, AtomView, Symbol};

/// The degree given to a factor that grows exponentially (eᶻ with z
/// depending on the inputs): beyond every polynomial's.
const EXPONENTIAL: f64 = 1e3;

/// A product is rewritten when both its growing side and its dividing side
/// reach this degree: u/(1 + u) cannot leave f64's range unless u itself
/// does, u²/(1 + u²) can (at |u| > 10¹⁵⁴).
const RISKY_DEGREE: f64 = 2.0;

/// A factor of this degree (u⁸) can leave f64's range at |u| > 10³⁸
/// while a product with it need not: with anything else that varies, the
/// product is taken into log space.
const HIGH_POWER: f64 = 8.0;

/// One range-safe rewrite applied by the lowering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Applied {
    /// The rule's name (`ratio-in-log-space`, `log-of-positive-sum`).
    pub(crate) rule: &'static str,
    /// The expression before, in Symbolica's syntax.
    pub(crate) from: String,
    /// The expression after.
    pub(crate) to: String,
}

/// The rule that turns a dividing product into one exponential.
pub(crate) const RATIO_IN_LOG_SPACE: &str = "ratio-in-log-space";
/// The rule that writes a product of powers with a common exponent as one
/// power of a product.
pub(crate) const POWER_OF_A_PRODUCT: &str = "power-of-a-product";
/// The rule that folds the logarithm of a positive sum with softplus.
pub(crate) const LOG_OF_POSITIVE_SUM: &str = "log-of-positive-sum";
/// The rule of the loop IR that factors the largest term out of a sum of
/// exponentials (log-sum-exp and softmax with the max subtracted).
pub(crate) const MAX_SUBTRACTED: &str = "max-subtracted";

/// |a| as e^{large + small} · bounded. `large` holds the exponents that
/// can be huge (a score z of e^z, the maximum m of a log-sum-exp), `small`
/// the logarithms (log|x|, at most ±745 each), `bounded` a factor that
/// cannot leave f64's range (Σ e^{Lᵢ − m} ∈ [1, n]). A product in log
/// space adds its large parts first ([`Engine::together`]): softmax's
/// e^{z_k}/Σⱼ e^{z_j} becomes e^{z_k − m}/Σⱼ e^{z_j − m}, z_k − m exact
/// where z_k is the largest.
struct LogParts {
    large: Atom,
    small: Atom,
    bounded: Atom,
}

impl LogParts {
    fn large(a: Atom) -> LogParts {
        LogParts {
            large: a,
            small: Atom::num(0),
            bounded: Atom::num(1),
        }
    }

    fn small(a: Atom) -> LogParts {
        LogParts {
            large: Atom::num(0),
            small: a,
            bounded: Atom::num(1),
        }
    }

    /// The parts of a product.
    fn times(self, other: LogParts) -> LogParts {
        LogParts {
            large: self.large + other.large,
            small: self.small + other.small,
            bounded: self.bounded * other.bounded,
        }
    }

    /// The parts of a power with a numeric exponent.
    fn power(self, n: AtomView<'_>) -> LogParts {
        LogParts {
            large: n.to_owned() * self.large,
            small: n.to_owned() * self.small,
            bounded: self.bounded.pow(n.to_owned()),
        }
    }
}

/// A numeric exponent as an exact rational, if it is one.
fn numeric(a: AtomView<'_>) -> Option<Rational> {
    match a {
        AtomView::Num(n) => coefficient(n.get_coeff_view(), a).ok(),
        _ => None,
    }
}

impl Engine {
    /// The exponent z of an exponential eᶻ (Symbolica's, ours, or e^z as a
    /// power), if `a` is one.
    fn exponent_of_exp(&self, a: AtomView<'_>) -> Option<Atom> {
        match a {
            AtomView::Fun(f)
                if f.get_nargs() == 1 && self.function(f.get_symbol()) == Some(Func::Exp) =>
            {
                Some(f.get(0).to_owned())
            }
            AtomView::Pow(p) if is_e(p.get_base_exp().0) => Some(p.get_base_exp().1.to_owned()),
            _ => None,
        }
    }

    /// How fast |a| can grow with its inputs, as a power of them: a variable
    /// is 1, uᵏ is k·deg(u), a product adds, a sum takes the largest, eᶻ is
    /// [`EXPONENTIAL`], a bounded function (σ, tanh, sin, …) or a logarithm
    /// is 0. It judges whether a product can leave f64's range while its
    /// value does not.
    pub(crate) fn degree(&self, a: AtomView<'_>) -> f64 {
        if let Some(z) = self.exponent_of_exp(a) {
            return if varies(z.as_view()) {
                EXPONENTIAL
            } else {
                0.0
            };
        }
        match a {
            AtomView::Num(_) => 0.0,
            AtomView::Var(v) if v.get_symbol() == Symbol::E || v.get_symbol() == Symbol::PI => 0.0,
            AtomView::Var(_) => 1.0,
            AtomView::Add(s) => s.iter().map(|t| self.degree(t)).fold(0.0, f64::max),
            AtomView::Mul(m) => m.iter().map(|t| self.degree(t)).sum(),
            AtomView::Pow(p) => {
                let (base, exponent) = p.get_base_exp();
                match numeric(exponent) {
                    Some(n) => n.to_f64().abs() * self.degree(base),
                    None if self.degree(base) + self.degree(exponent) > 0.0 => EXPONENTIAL,
                    None => 0.0,
                }
            }
            AtomView::Fun(f) if f.get_symbol() == self.exp_at_most_one => 0.0,
            AtomView::Fun(f) => {
                let inner = || f.iter().map(|x| self.degree(x)).fold(0.0, f64::max);
                match self.function(f.get_symbol()) {
                    // σ(z) is e^z for z ≪ 0: x·σ(−z) underflows where the
                    // product need not (x = 10²⁰⁰, z = 800). softplus(z)
                    // grows as z (and is e^z only in the far tail, where a
                    // product y·softplus(z) in log space would cost the
                    // exact cancellation of y·softplus(z) − y·z).
                    Some(Func::Sigmoid) if f.iter().any(varies) => EXPONENTIAL,
                    Some(Func::Softplus) if f.iter().any(varies) => 1.0,
                    Some(Func::Abs | Func::Relu) => inner(),
                    Some(Func::Sqrt) => inner() / 2.0,
                    Some(Func::Expm1) if f.iter().any(varies) => EXPONENTIAL,
                    _ => 0.0,
                }
            }
        }
    }

    /// Whether `a` is positive wherever it is defined and never 0: a
    /// positive number, an exponential, σ, softplus, or sums and products
    /// of such and of even powers of anything (an even power can be 0; a
    /// sum with a term that never is, cannot).
    fn never_zero_positive(&self, a: AtomView<'_>) -> bool {
        if self.exponent_of_exp(a).is_some() {
            return true;
        }
        match a {
            AtomView::Num(_) => numeric(a).is_some_and(|r| !r.is_negative() && !r.is_zero()),
            AtomView::Var(v) => v.get_symbol() == Symbol::E || v.get_symbol() == Symbol::PI,
            AtomView::Add(s) => {
                s.iter().all(|t| self.non_negative(t))
                    && s.iter().any(|t| self.never_zero_positive(t))
            }
            AtomView::Mul(m) => m.iter().all(|t| self.never_zero_positive(t)),
            AtomView::Pow(p) => self.never_zero_positive(p.get_base_exp().0),
            AtomView::Fun(f) => {
                f.get_symbol() == self.exp_at_most_one
                    || matches!(
                        self.function(f.get_symbol()),
                        Some(Func::Exp | Func::Sigmoid | Func::Softplus)
                    )
            }
        }
    }

    /// Whether `a` is ≥ 0 wherever it is defined.
    fn non_negative(&self, a: AtomView<'_>) -> bool {
        if self.never_zero_positive(a) {
            return true;
        }
        match a {
            AtomView::Pow(p) => {
                let (base, exponent) = p.get_base_exp();
                numeric(exponent).is_some_and(|n| n.is_integer() && !n.is_odd_integer())
                    || self.non_negative(base)
            }
            AtomView::Mul(m) => m.iter().all(|t| self.non_negative(t)),
            AtomView::Add(s) => s.iter().all(|t| self.non_negative(t)),
            AtomView::Fun(f) => matches!(
                self.function(f.get_symbol()),
                Some(Func::Abs | Func::Relu | Func::Sqrt | Func::Step)
            ),
            _ => false,
        }
    }

    /// log|a| in a form that stays in range where |a| itself would not:
    /// log|uⁿ| = n·log|u|, log|eᶻ| = z, the log of a product is the sum of
    /// logs, the log of a positive sum its log-sum-exp
    /// ([`Engine::log_of_positive_sum`]); anything else is log|a|.
    fn log_abs(&self, a: AtomView<'_>) -> Atom {
        if matches!(a, AtomView::Add(_)) && self.non_negative(a) && self.degree(a) > 0.0 {
            return self.log_of_positive_sum(a);
        }
        let parts = self.log_parts(a);
        let logs = parts.large + parts.small;
        if parts.bounded == Atom::num(1) {
            logs
        } else {
            logs + parts.bounded.log()
        }
    }

    /// |a| = e^{large + small} · bounded (see [`LogParts`]).
    fn log_parts(&self, a: AtomView<'_>) -> LogParts {
        if let Some(z) = self.exponent_of_exp(a) {
            return self.split_exponent(z.as_view());
        }
        // A positive value that cannot grow (the bounded sum of a
        // log-sum-exp) is a factor as it is.
        if self.degree(a) == 0.0 && self.never_zero_positive(a) {
            return LogParts {
                large: Atom::num(0),
                small: Atom::num(0),
                bounded: a.to_owned(),
            };
        }
        let abs = self.custom[&Func::Abs];
        match a {
            AtomView::Num(_) => LogParts::small(match numeric(a) {
                Some(r) if r.is_negative() => (-a.to_owned()).log(),
                _ => a.to_owned().log(),
            }),
            AtomView::Mul(m) => m.iter().fold(LogParts::small(Atom::num(0)), |acc, x| {
                acc.times(self.log_parts(x))
            }),
            AtomView::Pow(p) => {
                let (base, exponent) = p.get_base_exp();
                match numeric(exponent) {
                    Some(_) => self.log_parts(base).power(exponent),
                    None if self.never_zero_positive(base) => {
                        LogParts::small(exponent.to_owned() * self.log_abs(base))
                    }
                    None => LogParts::small(call(abs, &a.to_owned()).log()),
                }
            }
            AtomView::Add(s) if self.never_zero_positive(a) => {
                // e^m · Σ e^{Lᵢ − m}, m = max Lᵢ: the sum lies in [1, n].
                let logs: Vec<Atom> = s.iter().map(|t| self.log_abs(t)).collect();
                let largest = logs
                    .iter()
                    .cloned()
                    .reduce(|m, l| self.max.call(&[m.as_view(), l.as_view()][..]))
                    .unwrap_or_else(|| Atom::num(0));
                let sum = logs.iter().fold(Atom::num(0), |acc, l| {
                    acc + call(self.exp_at_most_one, &(l - &largest))
                });
                LogParts {
                    large: largest,
                    small: Atom::num(0),
                    bounded: sum,
                }
            }
            // A sum of terms ≥ 0 that can all be 0 (b² + b⁴y⁴): its
            // log-sum-exp, −∞ where it is 0.
            AtomView::Add(_) if self.non_negative(a) => {
                LogParts::large(self.log_of_positive_sum(a))
            }
            AtomView::Fun(f)
                if f.get_nargs() == 1 && self.function(f.get_symbol()) == Some(Func::Sigmoid) =>
            {
                // log σ(z) = −softplus(−z): σ(−800) underflows, its log does not.
                LogParts::large(-call(self.custom[&Func::Softplus], &(-f.get(0).to_owned())))
            }
            _ => LogParts::small(call(abs, &a.to_owned()).log()),
        }
    }

    /// An exponent z of e^z as its parts: the logarithms (a term with a
    /// log in it, as an earlier rewrite wrote) are small, the rest large;
    /// an earlier rewrite's `together(w)` is w among the large.
    fn split_exponent(&self, z: AtomView<'_>) -> LogParts {
        let terms: Vec<AtomView<'_>> = match z {
            AtomView::Add(s) => s.iter().collect(),
            _ => vec![z],
        };
        let has_log = |t: AtomView<'_>| crate::engine::any_node(t, &is_log);
        let mut parts = LogParts::small(Atom::num(0));
        for t in terms {
            match t {
                AtomView::Fun(f) if f.get_symbol() == self.together && f.get_nargs() == 1 => {
                    parts.large += f.get(0).to_owned();
                }
                _ if has_log(t) => parts.small += t.to_owned(),
                _ => parts.large += t.to_owned(),
            }
        }
        parts
    }

    /// log(t₁ + … + tₙ) for positive terms, folded pairwise:
    /// lse(a, b) = max(a, b) + softplus(−|a − b|), each Lᵢ = log tᵢ
    /// range-safe. Each step is exact to rounding, also where the result is
    /// near 0 (log(1 + 10⁻¹⁵) = 10⁻¹⁵, which m + log Σ e^{Lᵢ − m} would
    /// round to 8.9·10⁻¹⁶).
    fn log_of_positive_sum(&self, a: AtomView<'_>) -> Atom {
        let AtomView::Add(s) = a else {
            return self.log_abs(a);
        };
        let softplus = self.custom[&Func::Softplus];
        let abs = self.custom[&Func::Abs];
        s.iter()
            .map(|t| self.log_abs(t))
            .reduce(|acc, l| {
                // −|a − b|, or −10³⁰⁰ where a − b is NaN (a = b = −∞:
                // max drops a NaN operand), whose softplus is 0.
                let gap = -call(abs, &(&acc - &l));
                let floor = -Atom::num(10).pow(Atom::num(300));
                let gap = self.max.call(&[gap.as_view(), floor.as_view()][..]);
                self.max.call(&[acc.as_view(), l.as_view()][..]) + call(softplus, &gap)
            })
            .unwrap_or_else(|| Atom::num(0))
    }

    /// The sign of `a` as a factor, or `None` where `a` is positive: a
    /// product's sign is the product of its factors' (so that a product
    /// that underflows keeps its sign), an even power's is 1.
    fn sign_factor(&self, a: AtomView<'_>) -> Option<Atom> {
        // A sum of terms ≥ 0 is positive where its log is finite (where it
        // is 0, e^{−∞} is 0 whatever the sign).
        if self.never_zero_positive(a) || (matches!(a, AtomView::Add(_)) && self.non_negative(a)) {
            return None;
        }
        let sign = self.custom[&Func::Sign];
        match a {
            AtomView::Num(_) => numeric(a)
                .filter(|r| r.is_negative())
                .map(|_| Atom::num(-1)),
            AtomView::Mul(m) => m
                .iter()
                .filter_map(|f| self.sign_factor(f))
                .reduce(|x, y| x * y),
            AtomView::Pow(p) => {
                let (base, exponent) = p.get_base_exp();
                match numeric(exponent) {
                    Some(n) if n.is_integer() && !n.is_odd_integer() => None,
                    Some(n) if n.is_integer() => self.sign_factor(base),
                    // A real power of a negative base is NaN, as `powf`'s:
                    // only bases known positive reach here.
                    _ => None,
                }
            }
            _ => Some(call(sign, &a.to_owned())),
        }
    }

    /// How far a factor `f` of a product can move its magnitude (its
    /// [`Engine::degree`]), if it can go into the exponential of a product
    /// in log space: a factor that varies, with a numeric exponent (an
    /// integer one, or of a positive base) or none. Bounded functions
    /// (tanh, sin, …) and numbers stay outside.
    fn factor_growth(&self, f: AtomView<'_>) -> Option<f64> {
        let growth = self.degree(f);
        if growth <= 0.0 {
            return None;
        }
        if self.exponent_of_exp(f).is_some() {
            return Some(growth);
        }
        match f {
            AtomView::Pow(p) => {
                let (base, exponent) = p.get_base_exp();
                let n = numeric(exponent)?;
                (n.is_integer() || self.never_zero_positive(base)).then_some(growth)
            }
            _ => Some(growth),
        }
    }

    /// Whether a factor is a power (other than 1) of a sum of both signs.
    fn power_of_signed_sum(&self, f: AtomView<'_>) -> bool {
        matches!(f, AtomView::Pow(p) if matches!(p.get_base_exp().0, AtomView::Add(_))
            && !self.non_negative(p.get_base_exp().0))
    }

    /// Whether a factor divides: a power with a negative exponent.
    fn divides(&self, f: AtomView<'_>) -> bool {
        matches!(f, AtomView::Pow(p) if numeric(p.get_base_exp().1).is_some_and(|n| n.is_negative()))
    }

    /// The largest g ≥ 2 dividing every factor's exponent, if the factors
    /// are all integer powers (a factor without exponent has 1).
    fn common_power(&self, factors: &[AtomView<'_>]) -> Option<i64> {
        let mut g = 0i64;
        for f in factors {
            let n = match f {
                AtomView::Pow(p) => numeric(p.get_base_exp().1)?.to_i64()?,
                _ => 1,
            };
            g = gcd(g, n.abs());
        }
        (g >= 2).then_some(g)
    }

    /// `a` with every range-unsafe product and logarithm rewritten (see the
    /// module's documentation), bottom-up; each rewrite is pushed to
    /// `applied`.
    pub(crate) fn range_safe(&self, a: AtomView<'_>, applied: &mut Vec<Applied>) -> Atom {
        if !might_need_range_safety(a) {
            return a.to_owned();
        }
        match a {
            AtomView::Num(_) | AtomView::Var(_) => a.to_owned(),
            AtomView::Add(s) => s
                .iter()
                .fold(Atom::num(0), |acc, t| acc + self.range_safe(t, applied)),
            AtomView::Pow(p) => {
                let (base, exponent) = p.get_base_exp();
                let (base, exponent) = (
                    self.range_safe(base, applied),
                    self.range_safe(exponent, applied),
                );
                // e^X with a logarithm inside X is our opaque exp (see
                // `exp_of`: Symbolica mis-normalises it).
                let rebuilt = if is_e(base.as_view()) {
                    exp_of(exponent)
                } else {
                    base.pow(exponent)
                };
                self.ratio_in_log_space(rebuilt, applied)
            }
            AtomView::Fun(f) => {
                let args: Vec<Atom> = f.iter().map(|x| self.range_safe(x, applied)).collect();
                if f.get_symbol() == Symbol::LOG
                    && let [arg] = args.as_slice()
                    && matches!(arg.as_view(), AtomView::Add(_))
                    && self.never_zero_positive(arg.as_view())
                    && self.degree(arg.as_view()) >= RISKY_DEGREE
                {
                    let to = self.log_of_positive_sum(arg.as_view());
                    applied.push(Applied {
                        rule: LOG_OF_POSITIVE_SUM,
                        from: a.to_string(),
                        to: to.to_string(),
                    });
                    return to;
                }
                if self.function(f.get_symbol()) == Some(Func::Log1p)
                    && let [arg] = args.as_slice()
                    && self.non_negative(arg.as_view())
                    && self.degree(arg.as_view()) >= RISKY_DEGREE
                {
                    // The function ln(1 + t) of a t ≥ 0 that can overflow:
                    // softplus(log t), which for t = e^z is softplus(z).
                    let to = call(self.custom[&Func::Softplus], &self.log_abs(arg.as_view()));
                    applied.push(Applied {
                        rule: LOG_OF_POSITIVE_SUM,
                        from: a.to_string(),
                        to: to.to_string(),
                    });
                    return to;
                }
                if f.get_symbol() == Symbol::EXP
                    && let [arg] = args.as_slice()
                {
                    return exp_of(arg.clone());
                }
                let views: Vec<AtomView<'_>> = args.iter().map(|x| x.as_view()).collect();
                f.get_symbol().call(&views[..])
            }
            AtomView::Mul(m) => {
                let rebuilt = m
                    .iter()
                    .fold(Atom::num(1), |acc, t| acc * self.range_safe(t, applied));
                self.ratio_in_log_space(rebuilt, applied)
            }
        }
    }

    /// A product (or a single power) that divides, as one exponential of
    /// the sum of its growing factors' logarithms; anything else as it is.
    fn ratio_in_log_space(&self, a: Atom, applied: &mut Vec<Applied>) -> Atom {
        let factors: Vec<AtomView<'_>> = match a.as_view() {
            AtomView::Mul(m) => m.iter().collect(),
            AtomView::Pow(_) => vec![a.as_view()],
            _ => return a,
        };
        let mut growing = Vec::new();
        let mut others = Vec::new();
        let (mut grows, mut divides, mut largest) = (0.0, 0.0, 0.0f64);
        for f in factors {
            match self.factor_growth(f) {
                Some(g) => {
                    if self.divides(f) {
                        divides += g;
                    } else {
                        grows += g;
                    }
                    largest = largest.max(g);
                    growing.push(f);
                }
                None => others.push(f),
            }
        }
        // Factors with a common power and a power of a sum of both signs
        // among them, as one power of their product:
        // (x·e^a + y·e^b)² / (e^a + e^b)² is the square of a ratio, whose
        // inner product is made safe in its turn. (A power of a product,
        // (b·y)⁴, Symbolica writes b⁴·y⁴ again: only sums stay grouped.)
        if growing.len() >= 2
            && let Some(g) = self.common_power(&growing)
            && growing.iter().any(|f| self.power_of_signed_sum(*f))
        {
            let root = growing.iter().fold(Atom::num(1), |acc, f| match f {
                AtomView::Pow(p) => {
                    let (base, exponent) = p.get_base_exp();
                    acc * base.to_owned().pow(exponent.to_owned() / Atom::num(g))
                }
                _ => acc * f.to_owned(),
            });
            let inner = self.ratio_in_log_space(root, applied);
            let rest = others
                .iter()
                .fold(Atom::num(1), |acc, f| acc * f.to_owned());
            let to = rest * inner.pow(Atom::num(g));
            applied.push(Applied {
                rule: POWER_OF_A_PRODUCT,
                from: a.to_string(),
                to: to.to_string(),
            });
            return to;
        }
        // At risk: a ratio whose two sides can both leave f64's range
        // (u²⁶·(1 + u¹⁴)⁻²), an exponential against anything that varies
        // (x·σ(−z), x²·e^z: e^z under- or overflows alone), or a high
        // power against anything (a¹⁴·x¹⁴). Products of low powers
        // (Rosenbrock's a·(b − a²), a regression's x·(w·x − y)) leave the
        // range only beyond 10^(308/degree), and stay as they are: the
        // built-in polynomial kernels keep their arithmetic.
        let at_risk = growing.len() >= 2
            && ((grows >= RISKY_DEGREE && divides >= RISKY_DEGREE)
                || largest >= EXPONENTIAL
                || largest >= HIGH_POWER);
        if !at_risk {
            return a;
        }
        // A sum of both signs among the factors: x·(A − B) with A and B
        // tiny and x huge underflows inside the sum, before x could bring
        // it back. Distributed, each x·A is a product of its own.
        if let Some(i) = growing
            .iter()
            .position(|f| matches!(f, AtomView::Add(_)) && !self.never_zero_positive(*f))
            && let AtomView::Add(terms) = growing[i]
        {
            let rest = growing
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, f)| *f)
                .chain(others.iter().copied())
                .fold(Atom::num(1), |acc, f| acc * f.to_owned());
            return terms.iter().fold(Atom::num(0), |acc, t| {
                acc + self.ratio_in_log_space(&rest * t.to_owned(), applied)
            });
        }
        let parts = growing
            .iter()
            .fold(LogParts::small(Atom::num(0)), |acc, x| {
                acc.times(self.log_parts(*x))
            });
        // The large parts (scores, maxima) are added first, apart from the
        // logs: z_k − m is exact where z_k is the largest, and stays exact
        // beside log|x| (added to 10⁸ first, log|x| would cost 10⁻⁸).
        let exponent = if parts.large == Atom::num(0) {
            parts.small
        } else {
            call(self.together, &parts.large) + parts.small
        };
        let bounded = parts.bounded;
        let sign = growing
            .iter()
            .filter_map(|f| self.sign_factor(*f))
            .fold(Atom::num(1), |acc, s| acc * s);
        let rest = others
            .iter()
            .fold(Atom::num(1), |acc, f| acc * f.to_owned());
        let to = rest * sign * bounded * call(self.custom[&Func::Exp], &exponent);
        applied.push(Applied {
            rule: RATIO_IN_LOG_SPACE,
            from: a.to_string(),
            to: to.to_string(),
        });
        to
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Whether `a` depends on a variable (is not a number, e or π).
fn varies(a: AtomView<'_>) -> bool {
    crate::engine::any_node(
        a,
        &|x| matches!(x, AtomView::Var(v) if v.get_symbol() != Symbol::E && v.get_symbol() != Symbol::PI),
    )
}

/// Whether a range-safe rewrite could apply somewhere in `a`: it has a
/// product, a power or a logarithm.
fn might_need_range_safety(a: AtomView<'_>) -> bool {
    crate::engine::any_node(a, &|x| match x {
        AtomView::Mul(_) | AtomView::Pow(_) => true,
        AtomView::Fun(f) => f.get_symbol() == Symbol::LOG,
        _ => false,
    })
}
