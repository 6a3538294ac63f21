//! Our functions in Symbolica: their symbols, numeric evaluation for
//! evaluators, and their derivative rules — the function table's rule
//! ([`hessforge_ir::Func::chain`]) on atoms, except for the functions
//! Symbolica differentiates itself.

use super::*;

/// How the CAS evaluates a function numerically (the same stable forms the
/// IR uses), so that evaluators can be built over it.
pub(super) fn numeric(f: fn(f64) -> f64) -> EvaluationInfo {
    EvaluationInfo::new().register(move |args: &[f64]| f(args[0]))
}

pub(crate) fn call(f: Symbol, arg: &Atom) -> Atom {
    f.call(&[arg.as_view()][..])
}

/// e^arg. Symbolica 3.0.0 normalises e^X wrongly when X holds a logarithm
/// other than as a plain factor (`exp(sin(log(a)))` becomes 0,
/// `exp(log(a)^2)` too; `exp(2 log a)` = a² is right): such an exponential
/// is kept as our own opaque function `hessforge::exp`, which the
/// evaluator, the renderers and the IR read as exp.
pub(crate) fn exp_of(arg: Atom) -> Atom {
    let is_log = |x: AtomView<'_>| matches!(x, AtomView::Fun(f) if f.get_symbol() == Symbol::LOG);
    if any_node(arg.as_view(), &is_log) {
        call(symbol!("hessforge::exp"), &arg)
    } else {
        arg.exp()
    }
}

/// Whether `test` holds at some node of an expression.
pub(crate) fn any_node(a: AtomView<'_>, test: &dyn Fn(AtomView<'_>) -> bool) -> bool {
    test(a)
        || match a {
            AtomView::Num(_) | AtomView::Var(_) => false,
            AtomView::Fun(f) => f.iter().any(|x| any_node(x, test)),
            AtomView::Pow(p) => {
                let (b, e) = p.get_base_exp();
                any_node(b, test) || any_node(e, test)
            }
            AtomView::Mul(m) => m.iter().any(|x| any_node(x, test)),
            AtomView::Add(s) => s.iter().any(|x| any_node(x, test)),
        }
}

/// The functions Symbolica knows and differentiates itself (its exp is
/// used too, beside our opaque one: see [`exp_of`]). A test checks their
/// rules against the function table's.
pub(super) const SYMBOLICA_OWN: [Func; 4] = [Func::Log, Func::Sin, Func::Cos, Func::Sqrt];

/// The name of one of our functions' Symbolica symbol (see
/// [`Engine::new`]); `abs` is `absval`.
pub(super) fn our_symbol_name(f: Func) -> String {
    match f {
        Func::Abs => "hessforge::absval".to_string(),
        other => format!("hessforge::{}", other.name()),
    }
}

/// The Symbolica symbol of one of our functions.
pub(super) fn our_symbol(f: Func) -> Symbol {
    symbol!(&our_symbol_name(f))
}

/// f′(u) for the call `view` = f(u) of one of our functions: the function
/// table's rule with du = 1.
pub(super) fn derivative_at(f: Func, view: AtomView<'_>) -> Atom {
    let u = first_arg(view);
    // Our opaque exp's derivative is e^u as `exp_of` writes it.
    let value = match f {
        Func::Exp => exp_of(u.clone()),
        _ => view.to_owned(),
    };
    f.chain(&mut AtomTerms, u, value, Atom::num(1))
        .unwrap_or_else(|| Atom::num(0))
}

/// The derivative rules' terms as Symbolica atoms.
pub(super) struct AtomTerms;

impl Algebra for AtomTerms {
    type Term = Atom;

    fn int(&mut self, n: i64) -> Atom {
        Atom::num(n)
    }

    fn half(&mut self) -> Atom {
        Atom::num(2).pow(Atom::num(-1))
    }

    fn add(&mut self, a: Atom, b: Atom) -> Atom {
        a + b
    }

    fn mul(&mut self, a: Atom, b: Atom) -> Atom {
        a * b
    }

    fn neg(&mut self, a: Atom) -> Atom {
        Atom::num(-1) * a
    }

    fn div(&mut self, a: Atom, b: Atom) -> Atom {
        a * b.pow(Atom::num(-1))
    }

    fn square(&mut self, a: Atom) -> Atom {
        a.pow(Atom::num(2))
    }

    fn call(&mut self, f: Func, u: Atom) -> Atom {
        match f {
            Func::Exp => exp_of(u),
            Func::Log => u.log(),
            Func::Sin => u.sin(),
            Func::Cos => u.cos(),
            Func::Sqrt => u.sqrt(),
            other => call(our_symbol(other), &u),
        }
    }
}

/// The argument of a one-argument function view, as an owned atom.
pub(super) fn first_arg(view: AtomView<'_>) -> Atom {
    match view {
        AtomView::Fun(f) if f.get_nargs() >= 1 => f.get(0).to_owned(),
        other => other.to_owned(),
    }
}
