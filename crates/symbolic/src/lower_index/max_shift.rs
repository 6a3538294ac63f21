//! Sums of exponentials with their largest term factored out: the loop
//! IR's log-sum-exp "with the max subtracted".
//!
//! Softmax's Σₖ e^{zₖ} overflows once a score passes 709.8 and underflows
//! to 0 once every score is below −745, although log Σₖ e^{zₖ} and the
//! probabilities e^{zⱼ}/Σₖ e^{zₖ} are ordinary numbers. The scores zₖ
//! become a buffer and m = maxₖ zₖ a
//! [`Reduction::Max`](hessforge_ir::loop_ir::Reduction) step over it; every
//! e^{zᵢ} becomes e^m · e^{zᵢ − m}, and the factors e^m are counted rather
//! than written ([`Shifted::degree`]):
//!
//! - a product adds its factors' degrees, a power multiplies its base's by
//!   an integer exponent, a sum over an index keeps its body's;
//! - a sum whose terms have one degree keeps it; one whose terms differ
//!   (1 + Σₖ e^{zₖ}) has each term written back with its factor e^{d·m};
//! - a logarithm turns the degree into a term: log(e^{d·m} S) = d·m + log S;
//!   the log-sum-exp itself is m + log c + ln(1 + t/c), with c the number of
//!   scores equal to m and t the sum of the others' e^{zₖ − m} (each
//!   zₖ − m is exact, read from the same buffer as m): log S alone would
//!   lose the relative precision of a loss near 0, where one class
//!   dominates (log(1 + 10⁻¹⁴));
//! - any other function, and what is left at the top, gets e^{d·m} back.
//!
//! The probabilities are of degree 0 (e^{zⱼ − m}/Σₖ e^{zₖ − m}), so are
//! every gradient and Hessian term of the softmax, and the loss is
//! m + log Σₖ e^{zₖ − m}: each e^{zₖ − m} ≤ 1 and the largest is 1. The
//! rewrite is an identity whatever m is, so the derivatives do not flow
//! through m (its step has no tangent). An exponential whose exponent is
//! not a score of such a sum, and a sum of exponentials whose exponent
//! varies over more than the summed index or that does not run over the
//! whole axis the index reads, are left as they are.

use super::{BUFFER, Var, canonical_indices};
use hessforge_spec::Func;
use hessforge_spec::index::{IExpr, Ix};

/// One sum of exponentials Σₖ e^{u(k)} found in an expression: the scores
/// u(k) whose maximum is taken.
#[derive(Debug, Clone)]
pub(super) struct ExpSum {
    /// u with k named by position and its bound indices in order: the same
    /// text wherever the scores appear, under any index name.
    pub(super) key: String,
    /// u(k), as found.
    pub(super) exponent: IExpr,
    /// k and its range.
    pub(super) var: Var,
}

/// The sums of exponentials of `e` (each score function once) whose
/// exponent varies over the summed index only, and that run over the whole
/// of every axis the index reads (`axis_len`: a tensor's axis length).
pub(super) fn exp_sums(
    e: &IExpr,
    axis_len: &impl Fn(&str, usize) -> Option<usize>,
    out: &mut Vec<ExpSum>,
) {
    if let IExpr::Sum {
        var,
        from,
        to,
        body,
    } = e
        && let IExpr::Call(Func::Exp, u) = body.as_ref()
        && u.free_indices() == [var.clone()]
        && *from == 1
        && axis_lengths(u, var, axis_len) == Some(*to)
    {
        let key = score_key(u, var);
        if !out.iter().any(|s| s.key == key) {
            out.push(ExpSum {
                key,
                exponent: (**u).clone(),
                var: Var::summed(var, *from, *to),
            });
        }
    }
    e.for_each_child(|x| exp_sums(x, axis_len, out));
}

/// The one length of every axis `var` indexes in `u`; `None` when there is
/// none, or two that differ.
fn axis_lengths(
    u: &IExpr,
    var: &str,
    axis_len: &impl Fn(&str, usize) -> Option<usize>,
) -> Option<usize> {
    let mut lengths = Vec::new();
    let mut unknown = false;
    u.fold((), &mut |(), x| {
        if let IExpr::Entry { tensor, indices } = x {
            for (axis, ix) in indices.iter().enumerate() {
                if *ix == Ix::Var(var.to_string()) {
                    match axis_len(tensor, axis) {
                        Some(n) => lengths.push(n),
                        None => unknown = true,
                    }
                }
            }
        }
    });
    match lengths.split_first() {
        Some((&n, rest)) if !unknown && rest.iter().all(|&m| m == n) => Some(n),
        _ => None,
    }
}

/// The key of the scores `u` over the index `var`.
fn score_key(u: &IExpr, var: &str) -> String {
    format!("{:?}", canonical_indices(u, &[var]))
}

/// A score function, the buffer of its scores and the scalar buffer
/// holding their maximum.
#[derive(Debug, Clone)]
pub(super) struct Shift {
    pub(super) key: String,
    /// The buffer of the scores (over the summed index's whole range).
    pub(super) scores: String,
    /// Its length.
    pub(super) len: usize,
    /// The buffer of m, as an entry.
    pub(super) max: IExpr,
}

impl Shift {
    pub(super) fn new(key: String, scores: usize, len: usize, max: usize) -> Shift {
        Shift {
            key,
            scores: format!("{BUFFER}{scores}"),
            len,
            max: IExpr::entry(&format!("{BUFFER}{max}"), Vec::new()),
        }
    }

    /// zᵢ − m: the score at `i` less the maximum.
    fn shifted_score(&self, i: &str) -> IExpr {
        IExpr::Add(vec![
            IExpr::entry(&self.scores, vec![Ix::Var(i.to_string())]),
            IExpr::Mul(vec![IExpr::int(-1), self.max.clone()]),
        ])
    }
}

/// An expression with factors e^{m} taken out: its value is
/// `expr · Π_g e^{degree[g] · m_g}`.
#[derive(Debug, Clone)]
pub(super) struct Shifted {
    pub(super) expr: IExpr,
    /// One count per shift.
    pub(super) degree: Vec<i64>,
}

/// `e` with every exponential of a score of `shifts` shifted by its
/// maximum, the factors e^{m} that are left written back (see the module).
/// The value is `e`'s.
pub(super) fn shift(e: &IExpr, shifts: &[Shift]) -> IExpr {
    let s = shifted(e, shifts);
    restore(s, shifts)
}

/// `e` with its exponentials of scores shifted and the factors e^{m} left
/// out: Σₖ e^{zₖ − m} for Σₖ e^{zₖ}, to show the rewrite.
pub(super) fn shift_inside(e: &IExpr, shifts: &[Shift]) -> IExpr {
    shifted(e, shifts).expr
}

/// Whether `shift` applies to `e`: it has an exponential of scores, and
/// every sum of `e` starts at 1 (the buffer of the scores is read at the
/// loop's own count, which is the index less 1 only there).
pub(super) fn shifts_any(e: &IExpr, shifts: &[Shift]) -> bool {
    let has_scores =
        e.any(&mut |x| matches!(x, IExpr::Call(Func::Exp, u) if score_of(u, shifts).is_some()));
    has_scores && !e.any(&mut |x| matches!(x, IExpr::Sum { from, .. } if *from != 1))
}

/// Which shift's scores `u` is, and its one free index.
fn score_of(u: &IExpr, shifts: &[Shift]) -> Option<(usize, String)> {
    let [var] = u.free_indices().try_into().ok()?;
    let key = score_key(u, &var);
    shifts.iter().position(|s| s.key == key).map(|g| (g, var))
}

/// The shift and summed index of `e` when it is Σₖ e^{zₖ} itself.
fn log_sum_exp(e: &IExpr, shifts: &[Shift]) -> Option<(usize, String)> {
    match e {
        IExpr::Sum { var, body, .. } => match body.as_ref() {
            IExpr::Call(Func::Exp, u) => score_of(u, shifts).filter(|(_, i)| i == var),
            _ => None,
        },
        _ => None,
    }
}

impl Shift {
    /// log Σₖ e^{zₖ} as m + log c + ln(1 + t/c): c = Σₖ [zₖ = m] (1 −
    /// step(m − zₖ)), t = Σₖ step(m − zₖ) e^{zₖ − m}, both over the
    /// scores' whole range.
    fn log_sum_exp(&self, k: &str) -> IExpr {
        let len = self.len;
        let below = IExpr::Call(
            Func::Step,
            Box::new(IExpr::Add(vec![
                self.max.clone(),
                IExpr::Mul(vec![
                    IExpr::int(-1),
                    IExpr::entry(&self.scores, vec![Ix::Var(k.to_string())]),
                ]),
            ])),
        );
        let sum = |body: IExpr| IExpr::Sum {
            var: k.to_string(),
            from: 1,
            to: len,
            body: Box::new(body),
        };
        let ties = sum(IExpr::Add(vec![
            IExpr::int(1),
            IExpr::Mul(vec![IExpr::int(-1), below.clone()]),
        ]));
        let others = sum(IExpr::Mul(vec![
            below,
            IExpr::Call(Func::Exp, Box::new(self.shifted_score(k))),
        ]));
        IExpr::Add(vec![
            self.max.clone(),
            IExpr::Call(Func::Log, Box::new(ties.clone())),
            IExpr::Call(
                Func::Log1p,
                Box::new(IExpr::Mul(vec![
                    others,
                    IExpr::Pow(Box::new(ties), Box::new(IExpr::int(-1))),
                ])),
            ),
        ])
    }
}

fn shifted(e: &IExpr, shifts: &[Shift]) -> Shifted {
    let zero = || vec![0; shifts.len()];
    let plain = |expr: IExpr| Shifted {
        expr,
        degree: vec![0; shifts.len()],
    };
    match e {
        IExpr::Call(Func::Exp, u) => match score_of(u, shifts) {
            Some((g, i)) => {
                let mut degree = zero();
                degree[g] = 1;
                Shifted {
                    expr: IExpr::Call(Func::Exp, Box::new(shifts[g].shifted_score(&i))),
                    degree,
                }
            }
            None => plain(IExpr::Call(
                Func::Exp,
                Box::new(restore(shifted(u, shifts), shifts)),
            )),
        },
        IExpr::Call(Func::Log, a) => {
            if let Some((g, k)) = log_sum_exp(a, shifts) {
                return plain(shifts[g].log_sum_exp(&k));
            }
            let a = shifted(a, shifts);
            let mut terms = vec![IExpr::Call(Func::Log, Box::new(a.expr))];
            for (g, &d) in a.degree.iter().enumerate() {
                if d != 0 {
                    terms.push(IExpr::Mul(vec![IExpr::int(d), shifts[g].max.clone()]));
                }
            }
            plain(if terms.len() == 1 {
                terms.remove(0)
            } else {
                IExpr::Add(terms)
            })
        }
        IExpr::Call(f, a) => plain(IExpr::Call(*f, Box::new(shift(a, shifts)))),
        IExpr::Add(xs) => {
            let parts: Vec<Shifted> = xs.iter().map(|x| shifted(x, shifts)).collect();
            match parts.first() {
                Some(first) if parts.iter().all(|p| p.degree == first.degree) => Shifted {
                    degree: first.degree.clone(),
                    expr: IExpr::Add(parts.into_iter().map(|p| p.expr).collect()),
                },
                _ => plain(IExpr::Add(
                    parts.into_iter().map(|p| restore(p, shifts)).collect(),
                )),
            }
        }
        IExpr::Mul(xs) => {
            let mut degree = zero();
            let mut factors = Vec::with_capacity(xs.len());
            for x in xs {
                let p = shifted(x, shifts);
                for (d, e) in degree.iter_mut().zip(&p.degree) {
                    *d += e;
                }
                factors.push(p.expr);
            }
            Shifted {
                expr: IExpr::Mul(factors),
                degree,
            }
        }
        IExpr::Pow(base, exponent) => {
            let base = shifted(base, shifts);
            let exponent = shift(exponent, shifts);
            let n = match &exponent {
                IExpr::Num(r) if r.is_integer() && r.to_f64().abs() <= 64.0 => {
                    Some(r.to_f64() as i64)
                }
                _ => None,
            };
            match n {
                Some(n) => Shifted {
                    degree: base.degree.iter().map(|d| d * n).collect(),
                    expr: IExpr::Pow(Box::new(base.expr), Box::new(exponent)),
                },
                None => plain(IExpr::Pow(
                    Box::new(restore(base, shifts)),
                    Box::new(exponent),
                )),
            }
        }
        IExpr::Sum {
            var,
            from,
            to,
            body,
        } => {
            let body = shifted(body, shifts);
            Shifted {
                degree: body.degree,
                expr: IExpr::Sum {
                    var: var.clone(),
                    from: *from,
                    to: *to,
                    body: Box::new(body.expr),
                },
            }
        }
        IExpr::Pick { index, items } => plain(IExpr::Pick {
            index: index.clone(),
            items: items.iter().map(|x| shift(x, shifts)).collect(),
        }),
        IExpr::Num(_) | IExpr::Entry { .. } | IExpr::Index(_) | IExpr::Delta(..) => {
            plain(e.clone())
        }
    }
}

/// The value of `s` as one expression: its factors e^{d·m} written back.
fn restore(s: Shifted, shifts: &[Shift]) -> IExpr {
    let exponent: Vec<IExpr> = (s.degree.iter().enumerate())
        .filter(|(_, d)| **d != 0)
        .map(|(g, &d)| IExpr::Mul(vec![IExpr::int(d), shifts[g].max.clone()]))
        .collect();
    if exponent.is_empty() {
        return s.expr;
    }
    IExpr::Mul(vec![
        s.expr,
        IExpr::Call(Func::Exp, Box::new(IExpr::Add(exponent))),
    ])
}
