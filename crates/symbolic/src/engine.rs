//! Everything that touches Symbolica: converting our [`Expr`] trees to
//! Symbolica atoms and back, the derivative rules of the functions Symbolica
//! does not know (σ, softplus, tanh, …), the chain rule through the named
//! intermediates, and the choice of the simplest equivalent form.
//!
//! Only the worker thread (see `worker.rs`) ever holds an [`Engine`].

use crate::derivation::{
    Derivation, GradientEntry, LOSS, LocalPartial, NormalForms, REGULARIZER, SymbolicaForms,
};
use hessforge_ir::Algebra;
use hessforge_spec::{Expr, Func, Model, Rational};
use num_bigint::{BigInt, Sign};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;
use symbolica::atom::{Atom, AtomCore, AtomView, EvaluationInfo, Symbol};
use symbolica::coefficient::CoefficientView;
use symbolica::domains::integer::Integer;
use symbolica::id::Pattern;
use symbolica::symbol;

/// The Symbolica side of hessforge, owned by the worker thread.
pub(crate) struct Engine {
    /// Functions without a Symbolica built-in, by our function (expm1 is
    /// introduced only by the stable rewrites of the lowering).
    pub(crate) custom: HashMap<Func, Symbol>,
    /// How many index-form expressions have been simplified: each gets
    /// stand-in symbols of its own (see `index_simplify`).
    pub(crate) index_simplifications: std::cell::Cell<u64>,
}

/// How the CAS evaluates a function numerically (the same stable forms the
/// IR uses), so that evaluators can be built over it.
fn numeric(f: fn(f64) -> f64) -> EvaluationInfo {
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
const SYMBOLICA_OWN: [Func; 4] = [Func::Log, Func::Sin, Func::Cos, Func::Sqrt];

/// The name of one of our functions' Symbolica symbol (see
/// [`Engine::new`]); `abs` is `absval`.
fn our_symbol_name(f: Func) -> String {
    match f {
        Func::Abs => "hessforge::absval".to_string(),
        other => format!("hessforge::{}", other.name()),
    }
}

/// The Symbolica symbol of one of our functions.
fn our_symbol(f: Func) -> Symbol {
    symbol!(&our_symbol_name(f))
}

/// f′(u) for the call `view` = f(u) of one of our functions: the function
/// table's rule with du = 1.
fn derivative_at(f: Func, view: AtomView<'_>) -> Atom {
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
struct AtomTerms;

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
fn first_arg(view: AtomView<'_>) -> Atom {
    match view {
        AtomView::Fun(f) if f.get_nargs() >= 1 => f.get(0).to_owned(),
        other => other.to_owned(),
    }
}

impl Engine {
    /// Define the functions Symbolica does not know (σ, softplus, tanh, …,
    /// and our opaque exp, see [`exp_of`]): their values from
    /// [`Func::eval`] and their derivatives from the function table's rule
    /// ([`Func::chain`], through [`derivative_at`]). Symbolica's own exp,
    /// log, sin, cos and sqrt keep Symbolica's rules, which a test checks
    /// against the table's.
    pub(crate) fn new() -> Engine {
        let custom: HashMap<Func, Symbol> = Func::all()
            .filter(|f| !SYMBOLICA_OWN.contains(f))
            .map(|func| {
                let symbol = symbol!(
                    &our_symbol_name(func),
                    eval = numeric(func.info().eval),
                    der = move |f, _arg, out| {
                        **out = derivative_at(func, f);
                    }
                );
                (func, symbol)
            })
            .collect();
        let sigmoid = custom[&Func::Sigmoid];
        // Touch the engine once so that its start-up (and banner) happens here.
        let warm = call(sigmoid, &Atom::var(symbol!("hessforge::warmup_u")))
            .derivative(symbol!("hessforge::warmup_u"));
        let _ = warm.factor();
        Engine {
            custom,
            index_simplifications: std::cell::Cell::new(0),
        }
    }

    /// Our function behind a Symbolica function symbol, if it is one of ours
    /// or a built-in we use (exp, log, sin, cos, sqrt).
    pub(crate) fn function(&self, s: Symbol) -> Option<Func> {
        let builtin = [
            (Symbol::EXP, Func::Exp),
            (Symbol::LOG, Func::Log),
            (Symbol::SIN, Func::Sin),
            (Symbol::COS, Func::Cos),
            (Symbol::SQRT, Func::Sqrt),
        ];
        builtin
            .into_iter()
            .find(|(sym, _)| *sym == s)
            .map(|(_, f)| f)
            .or_else(|| {
                self.custom
                    .iter()
                    .find(|(_, sym)| **sym == s)
                    .map(|(f, _)| *f)
            })
    }

    /// The symbol of a model scalar. Model names live in their own namespace
    /// so that a parameter called `gamma` never means Symbolica's Γ function.
    pub(crate) fn var(&self, id: &str) -> Symbol {
        symbol!(&format!("hessforge_model::{id}"))
    }

    /// Our tree → a Symbolica atom.
    pub(crate) fn to_atom(&self, e: &Expr) -> Atom {
        match e {
            Expr::Num(r) => number(r),
            Expr::Var(id) => Atom::var(self.var(id)),
            // Pairwise: adding terms one by one to a growing sum costs
            // quadratic time in its length (every step merges the sum).
            Expr::Add(xs) => pairwise(xs, &|x| self.to_atom(x), &|a, b| a + b, Atom::num(0)),
            Expr::Mul(xs) => pairwise(xs, &|x| self.to_atom(x), &|a, b| a * b, Atom::num(1)),
            // A number to a number with a numerator or denominator beyond
            // MAX_EXPONENT (`2.73929^5.27598`): Symbolica would compute its
            // exact value, with hundreds of thousands of digits, for
            // minutes. It is kept as e^{x·log b}, written expm1(…) + 1 so
            // that it is not turned back into the power (see `lower`).
            Expr::Pow(b, x) => {
                let (base, exponent) = (self.to_atom(b), self.to_atom(x));
                let huge = match exponent.as_view() {
                    AtomView::Num(e) => coefficient(e.get_coeff_view(), exponent.as_view())
                        .ok()
                        .filter(|r| !small_exponent(r)),
                    _ => None,
                };
                match (huge, base.as_view()) {
                    // A constant base (`2.73929`, `sqrt(2)` = 2^(1/2)): Symbolica
                    // would compute the power exactly, with hundreds of
                    // thousands of digits, for minutes, or panic beyond 2^32.
                    (Some(n), _) if is_constant(base.as_view()) && !base.is_zero() => {
                        self.power_as_exponential(base.clone(), exponent, &n)
                    }
                    // (c·u)^n with a constant factor c: Symbolica would
                    // compute c^n exactly (and panics beyond 2^32, even for
                    // c = −1). It is kept as an exponential too.
                    (Some(n), AtomView::Mul(m)) if m.iter().any(is_constant) => {
                        self.power_as_exponential(base.clone(), exponent, &n)
                    }
                    _ => base.pow(exponent),
                }
            }
            Expr::Call(f, a) => AtomTerms.call(*f, self.to_atom(a)),
        }
    }

    /// A Symbolica atom → our tree. Fails on what a real-valued model
    /// cannot hold: ∞ or an undefined value (a division by zero on the
    /// way), a complex or floating-point number, or a function that is not
    /// ours.
    pub(crate) fn to_expr(&self, a: AtomView<'_>) -> Result<Expr, String> {
        Ok(match a {
            AtomView::Num(n) => Expr::Num(coefficient(n.get_coeff_view(), a)?),
            AtomView::Var(v) => {
                let s = v.get_symbol();
                if s == Symbol::E {
                    Expr::Call(Func::Exp, Box::new(Expr::int(1)))
                } else {
                    Expr::Var(s.get_stripped_name().to_string())
                }
            }
            AtomView::Fun(f) => {
                let s = f.get_symbol();
                let func = self
                    .function(s)
                    .ok_or_else(|| format!("an unexpected function `{}`", s.get_name()))?;
                Expr::Call(func, Box::new(self.to_expr(f.get(0))?))
            }
            AtomView::Pow(p) => {
                let (b, x) = p.get_base_exp();
                if let AtomView::Var(v) = b
                    && v.get_symbol() == Symbol::E
                {
                    return Ok(Expr::Call(Func::Exp, Box::new(self.to_expr(x)?)));
                }
                Expr::Pow(Box::new(self.to_expr(b)?), Box::new(self.to_expr(x)?))
            }
            AtomView::Mul(m) => Expr::Mul(
                m.iter()
                    .map(|x| self.to_expr(x))
                    .collect::<Result<_, _>>()?,
            ),
            AtomView::Add(s) => Expr::Add(
                s.iter()
                    .map(|x| self.to_expr(x))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// The simplest of a few equivalent forms (factored, as is, expanded,
    /// over a common denominator), by [`Engine::cost_of`]; ties go to the earlier form,
    /// so a factored form wins over an equally long expanded one.
    pub(crate) fn simplest(&self, a: &Atom) -> Atom {
        if !tame(a.as_view()) {
            return a.clone();
        }
        // A long sum (the derivative of a sum of many data residuals) is
        // simplified term by term, each term as is or expanded: factoring
        // the sum whole, or bringing it over one denominator, makes exact
        // coefficients swell to hundreds of digits and takes minutes, and
        // no textbook writes it that way. Expanded whole, a polynomial's like
        // terms still merge; that form is taken when it is shorter.
        if let AtomView::Add(terms) = a.as_view()
            && terms.get_nargs() > LONG_SUM
        {
            let mut termwise = Atom::num(0);
            for t in terms.iter() {
                let t = t.to_owned();
                let e = t.expand();
                termwise += if self.cost_of(&e) < self.cost_of(&t) {
                    e
                } else {
                    t
                };
            }
            // Terms with functions (e^{−t·x} of each data row) hardly ever
            // merge, and expanding their products whole is most of the time
            // of a large derivation: only polynomials are expanded whole.
            if calls_a_function(a.as_view()) {
                return termwise;
            }
            let whole = a.expand();
            return if self.cost_of(&whole) < self.cost_of(&termwise) {
                whole
            } else {
                termwise
            };
        }
        let mut best = a.clone();
        let mut best_cost = usize::MAX;
        for candidate in [a.factor(), a.clone(), a.expand(), a.together()] {
            let c = self.cost_of(&candidate);
            if c < best_cost {
                best = candidate;
                best_cost = c;
            }
        }
        best
    }

    /// The measure of "simpler": the number of nodes of the tree
    /// [`Engine::to_expr`] would make of an atom, plus one for every
    /// repeated occurrence of a variable (so `x(1 − h²)` beats `x − h²x`);
    /// computed on the atom itself (no tree is built: this is the inner loop
    /// of simplification). `usize::MAX` for an atom that is not a real
    /// expression or has a number beyond the range of f64 (a factored
    /// `(2a + 1.5·10⁶⁰⁰)/10³⁰⁰` of `2·10⁻³⁰⁰a + 1.5·10³⁰⁰`, which the
    /// programs could not evaluate): it is never the simplest.
    fn cost_of(&self, a: &Atom) -> usize {
        fn walk(
            engine: &Engine,
            a: AtomView<'_>,
            seen: &mut HashMap<Symbol, usize>,
        ) -> Option<usize> {
            Some(match a {
                AtomView::Num(n) => {
                    let r = coefficient(n.get_coeff_view(), a).ok()?;
                    let v = r.to_f64();
                    if !v.is_finite() || (v == 0.0 && !r.is_zero()) {
                        return None;
                    }
                    1
                }
                AtomView::Var(v) if v.get_symbol() == Symbol::E => 2, // exp(1)
                AtomView::Var(v) => {
                    *seen.entry(v.get_symbol()).or_default() += 1;
                    1
                }
                AtomView::Fun(f) => {
                    engine.function(f.get_symbol())?;
                    1 + walk(engine, f.get(0), seen)?
                }
                AtomView::Pow(p) => match p.get_base_exp() {
                    (AtomView::Var(v), x) if v.get_symbol() == Symbol::E => {
                        1 + walk(engine, x, seen)?
                    }
                    (b, x) => 1 + walk(engine, b, seen)? + walk(engine, x, seen)?,
                },
                AtomView::Mul(m) => {
                    let mut n = 1;
                    for x in m.iter() {
                        n += walk(engine, x, seen)?;
                    }
                    n
                }
                AtomView::Add(s) => {
                    let mut n = 1;
                    for x in s.iter() {
                        n += walk(engine, x, seen)?;
                    }
                    n
                }
            })
        }
        let mut seen = HashMap::new();
        walk(self, a.as_view(), &mut seen).map_or(usize::MAX, |nodes| {
            nodes + seen.values().map(|n| n - 1).sum::<usize>()
        })
    }
    /// Whether `a − b` simplifies to zero once every intermediate is inlined.
    pub(crate) fn equivalent(&self, model: &Model, a: &Expr, b: &Expr) -> bool {
        let inline = |e: &Expr| {
            let mut e = e.clone();
            for d in model.definitions.iter().rev() {
                let map = HashMap::from([(d.scalar.id.clone(), d.expr.clone())]);
                e = e.substitute(&map);
            }
            e
        };
        let diff = self.to_atom(&inline(a)) - self.to_atom(&inline(b));
        diff.is_zero()
            || tame(diff.as_view()) && diff.expand().is_zero()
            || tame(diff.as_view()) && diff.together().expand().is_zero()
            || tame(diff.as_view()) && diff.factor().is_zero()
    }

    /// The whole derivation of a model.
    /// The index form alone, without the scalar lists: what the lecture
    /// note of a model with tensor parameters needs, in a time that does
    /// not grow with the tensors' lengths. `None` where the model has no
    /// tensor parameter or its index form does not simplify (the caller
    /// then derives in full, which decides).
    pub(crate) fn derive_unexpanded(&self, model: Model) -> Option<Derivation> {
        let start = Instant::now();
        let ix = model.index.as_ref()?;
        if !ix.parameters().any(|t| !t.shape.is_empty()) {
            return None;
        }
        let index = crate::index_calculus::differentiate(ix)
            .and_then(|derived| self.simplify_index_derivation(ix, &derived))
            .ok()?;
        let backprop = crate::backprop::backpropagate(ix)
            .and_then(|b| self.simplify_backpropagation(ix, &b))
            .ok()?;
        Some(Derivation {
            // The scalar forms belong to the expansion (`expanded` is false).
            forms: NormalForms {
                definitions: Vec::new(),
                loss: model.loss.clone(),
                regularizer: model.regularizer.clone(),
            },
            newton_step: None,
            index: Some(index),
            backprop: Some(backprop),
            expanded: false,
            model,
            local_partials: Vec::new(),
            gradient: Vec::new(),
            hessian: Vec::new(),
            regularizer_gradient: Vec::new(),
            regularizer_hessian: Vec::new(),
            symbolica: SymbolicaForms::default(),
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The scalar derivation; with `with_index`, the index form and its
    /// back-propagation too (for documents).
    pub(crate) fn derive(&self, model: &Model, with_index: bool) -> Result<Derivation, String> {
        let start = Instant::now();
        let mut chain = Chain::new(self, model)?;
        let p = model.params.len();

        let loss = self.to_atom(&model.loss);
        let mut gradient = Vec::with_capacity(p);
        let mut grad_atoms = Vec::with_capacity(p);
        for j in 0..p {
            let g = chain.total(&loss, Some(LOSS), &model.loss.free_vars(), j);
            let expr = self.checked(&g, || format!("∂ℓ/∂{}", model.params[j].id))?;
            gradient.push(GradientEntry {
                param: model.params[j].id.clone(),
                paths: chain.paths(LOSS, &model.params[j].id),
                expr,
            });
            grad_atoms.push(g);
        }
        let hessian_atoms = chain.hessian(&grad_atoms);
        let hessian = atoms_to_matrix(self, &hessian_atoms, model, "ℓ")?;

        let (reg_grad_atoms, reg_hess_atoms, reg_atom) = match &model.regularizer {
            Some(r) => {
                let atom = self.to_atom(r);
                let grads: Vec<Atom> = (0..p)
                    .map(|j| chain.total(&atom, Some(REGULARIZER), &r.free_vars(), j))
                    .collect();
                let hess = chain.hessian(&grads);
                (grads, hess, Some(atom))
            }
            None => (vec![], vec![], None),
        };
        let regularizer_gradient: Vec<Expr> = reg_grad_atoms
            .iter()
            .zip(&model.params)
            .map(|(g, p)| self.checked(g, || format!("∂R/∂{}", p.id)))
            .collect::<Result<_, _>>()?;
        let regularizer_hessian = atoms_to_matrix(self, &reg_hess_atoms, model, "R")?;

        let symbolica = SymbolicaForms {
            definitions: model
                .definitions
                .iter()
                .map(|d| (d.scalar.id.clone(), self.to_atom(&d.expr).to_string()))
                .collect(),
            loss: loss.to_string(),
            regularizer: reg_atom.map(|r| r.to_string()),
            gradient: grad_atoms.iter().map(|g| g.to_string()).collect(),
            hessian: strings(&hessian_atoms),
            regularizer_gradient: reg_grad_atoms.iter().map(|g| g.to_string()).collect(),
            regularizer_hessian: strings(&reg_hess_atoms),
        };
        let local_partials = chain.local_partials();
        let newton_step = (p <= 2 && model.data.is_empty()).then(|| {
            let total = |j: usize| match &model.regularizer {
                Some(_) => &grad_atoms[j] + &reg_grad_atoms[j],
                None => grad_atoms[j].clone(),
            };
            let hess = |j: usize, k: usize| match &model.regularizer {
                Some(_) => &hessian_atoms[j][k] + &reg_hess_atoms[j][k],
                None => hessian_atoms[j][k].clone(),
            };
            let step: Vec<Atom> = if p == 1 {
                vec![-(total(0) / hess(0, 0))]
            } else {
                let det = hess(0, 0) * hess(1, 1) - hess(0, 1) * hess(0, 1);
                vec![
                    -((hess(1, 1) * total(0) - hess(0, 1) * total(1)) / &det),
                    -((hess(0, 0) * total(1) - hess(0, 1) * total(0)) / &det),
                ]
            };
            // The closed-form step is an extra for the document: where it
            // is undefined (a singular Hessian), it is left out.
            step.iter()
                .map(|d| self.to_expr(chain.tidy(d).as_view()))
                .collect::<Result<Vec<Expr>, String>>()
                .ok()
        });
        let newton_step = newton_step.flatten();
        let normal = |e: &Expr, what: &str| self.checked(&self.to_atom(e), || what.to_string());
        let forms = NormalForms {
            definitions: model
                .definitions
                .iter()
                .map(|d| normal(&d.expr, &d.scalar.id))
                .collect::<Result<_, _>>()?,
            loss: normal(&model.loss, "the loss")?,
            regularizer: model
                .regularizer
                .as_ref()
                .map(|r| normal(r, "the regularizer"))
                .transpose()?,
        };
        // The scalar derivation above decides whether the model can be
        // derived; the index form is added where it simplifies to real
        // numbers too (a form with a removable 0/0 may not).
        let index = match &model.index {
            Some(ix) if with_index && ix.parameters().any(|t| !t.shape.is_empty()) => {
                crate::index_calculus::differentiate(ix)
                    .and_then(|derived| self.simplify_index_derivation(ix, &derived))
                    .ok()
            }
            _ => None,
        };
        // How the lecture note tells the index form: back-propagation.
        let backprop = match (&model.index, &index) {
            (Some(ix), Some(_)) => crate::backprop::backpropagate(ix)
                .and_then(|b| self.simplify_backpropagation(ix, &b))
                .ok(),
            _ => None,
        };
        Ok(Derivation {
            forms,
            newton_step,
            index,
            backprop,
            expanded: true,
            model: model.clone(),
            local_partials,
            gradient,
            hessian,
            regularizer_gradient,
            regularizer_hessian,
            symbolica,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// [`Engine::to_expr`], with the failure said of `what` (e.g. `∂ℓ/∂x`).
    pub(crate) fn checked(&self, a: &Atom, what: impl FnOnce() -> String) -> Result<Expr, String> {
        self.to_expr(a.as_view())
            .map_err(|reason| format!("{} is undefined: it contains {reason}", what()))
    }
}

/// A Hessian of atoms (of ℓ or R, named by `of`) as trees.
fn atoms_to_matrix(
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

fn strings(m: &[Vec<Atom>]) -> Vec<Vec<String>> {
    m.iter()
        .map(|row| row.iter().map(|a| a.to_string()).collect())
        .collect()
}

/// Whether the polynomial algorithms (factor, expand, common denominator)
/// can be run on an expression at no risk: every numeric exponent is a
/// rational with numerator and denominator of at most
/// [`MAX_POLYNOMIAL_DEGREE`], and a sum is raised to at most the
/// [`MAX_SUM_POWER`]-th power. `x^2.5e12` (which the polynomial
/// representation cannot hold), `(a + b)^1000` (which expands to a thousand
/// terms) or `log(1 + u^7.79)` (whose derivatives, over a common denominator,
/// are polynomials of degree 779 in u^(1/100): minutes of gcds) are left as
/// written.
fn tame(a: AtomView<'_>) -> bool {
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
fn is_constant(a: AtomView<'_>) -> bool {
    !any_node(a, &|x| matches!(x, AtomView::Var(_)))
}

/// Whether every number in `a` has numerator and denominator of at most
/// `limit` (`a + 2.5e12` does not).
fn numbers_within(a: AtomView<'_>, limit: u64) -> bool {
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

/// Whether a numeric exponent has numerator and denominator of at most
/// [`MAX_EXPONENT`].
fn small_exponent(r: &Rational) -> bool {
    let bounded = |n: &BigInt| n.magnitude() <= &num_bigint::BigUint::from(MAX_EXPONENT);
    bounded(r.numer()) && bounded(r.denom())
}

/// The largest numerator or denominator of a numeric exponent that is
/// computed as a power; beyond it a power is an exponential.
pub(crate) const MAX_EXPONENT: u64 = 1000;

/// The largest numerator or denominator of an exponent in [`tame`]: the
/// degree of the polynomials the algorithms would work with.
const MAX_POLYNOMIAL_DEGREE: u64 = 64;

/// The largest power of a sum in [`tame`].
const MAX_SUM_POWER: u64 = 16;

/// Sums of more terms than this are simplified term by term
/// ([`Engine::simplest`]).
const LONG_SUM: usize = 8;

/// An exact rational as a Symbolica number, of any size: numerator and
/// denominator are built from their 64-bit digits.
fn number(r: &Rational) -> Atom {
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

/// Number of nodes of a tree.
pub(crate) fn size(e: &Expr) -> usize {
    match e {
        Expr::Num(_) | Expr::Var(_) => 1,
        Expr::Add(xs) | Expr::Mul(xs) => 1 + xs.iter().map(size).sum::<usize>(),
        Expr::Pow(a, b) => 1 + size(a) + size(b),
        Expr::Call(_, a) => 1 + size(a),
    }
}

/// One back-substitution of [`Chain::tidy`]: an intermediate's right-hand
/// side (or a power or product of them) → its name, as Symbolica patterns
/// built once, with the variables each side uses.
struct Resubstitution {
    pattern: Pattern,
    name: Pattern,
    variables: HashSet<Symbol>,
    name_variables: HashSet<Symbol>,
}

impl Resubstitution {
    fn new(rhs: &Atom, name: &Atom) -> Self {
        Resubstitution {
            pattern: rhs.to_pattern(),
            name: name.to_pattern(),
            variables: variables(rhs.as_view()),
            name_variables: variables(name.as_view()),
        }
    }
}

/// `op` over the atoms of `xs` as a balanced tree (`empty` for none).
fn pairwise(
    xs: &[Expr],
    atom: &dyn Fn(&Expr) -> Atom,
    op: &dyn Fn(Atom, Atom) -> Atom,
    empty: Atom,
) -> Atom {
    match xs {
        [] => empty,
        [x] => atom(x),
        _ => {
            let (left, right) = xs.split_at(xs.len() / 2);
            op(
                pairwise(left, atom, op, empty.clone()),
                pairwise(right, atom, op, empty),
            )
        }
    }
}

/// Whether an expression calls a function (e^u counts) of something that
/// is not a number.
fn calls_a_function(a: AtomView<'_>) -> bool {
    match a {
        AtomView::Num(_) | AtomView::Var(_) => false,
        AtomView::Fun(f) => !f.iter().all(|x| matches!(x, AtomView::Num(_))),
        AtomView::Pow(p) => {
            let (base, exponent) = p.get_base_exp();
            let e_to_the = matches!(base, AtomView::Var(v) if v.get_symbol() == Symbol::E);
            (e_to_the && !matches!(exponent, AtomView::Num(_)))
                || calls_a_function(base)
                || calls_a_function(exponent)
        }
        AtomView::Mul(m) => m.iter().any(calls_a_function),
        AtomView::Add(s) => s.iter().any(calls_a_function),
    }
}

/// The variables (symbols other than function names) an expression uses.
fn variables(a: AtomView) -> HashSet<Symbol> {
    fn walk(a: AtomView, out: &mut HashSet<Symbol>) {
        match a {
            AtomView::Var(v) => {
                out.insert(v.get_symbol());
            }
            AtomView::Fun(f) => f.iter().for_each(|x| walk(x, out)),
            AtomView::Pow(p) => {
                let (b, e) = p.get_base_exp();
                walk(b, out);
                walk(e, out);
            }
            AtomView::Mul(m) => m.iter().for_each(|x| walk(x, out)),
            AtomView::Add(s) => s.iter().for_each(|x| walk(x, out)),
            AtomView::Num(_) => {}
        }
    }
    let mut out = HashSet::new();
    walk(a, &mut out);
    out
}

/// The chain rule through the intermediates, with memoized total derivatives.
struct Chain<'a> {
    engine: &'a Engine,
    model: &'a Model,
    /// Intermediate id → (index, its right-hand side as an atom).
    defs: HashMap<String, (usize, Atom)>,
    /// Intermediate id → the parameters it depends on (transitively).
    def_params: HashMap<String, BTreeSet<String>>,
    /// (intermediate id, parameter index) → d(intermediate)/dθ_j, simplified.
    memo: HashMap<(String, usize), Atom>,
    /// Back-substitution: each intermediate's right-hand side → its symbol.
    resubstitute: Vec<Resubstitution>,
    /// Local partials ∂owner/∂v recorded for the derivation text.
    partials: Vec<LocalPartial>,
    /// The same partials as simplified atoms, by (owner, v): reused by the
    /// chain rule where a total derivative is the local partial alone.
    local: HashMap<(String, String), Atom>,
}

impl<'a> Chain<'a> {
    fn new(engine: &'a Engine, model: &'a Model) -> Result<Chain<'a>, String> {
        let mut defs = HashMap::new();
        let mut def_params: HashMap<String, BTreeSet<String>> = HashMap::new();
        let param_ids: BTreeSet<&str> = model.params.iter().map(|s| s.id.as_str()).collect();
        let mut resubstitute = Vec::new();
        for (i, d) in model.definitions.iter().enumerate() {
            let atom = engine.to_atom(&d.expr);
            let mut params = BTreeSet::new();
            for v in d.expr.free_vars() {
                if param_ids.contains(v.as_str()) {
                    params.insert(v);
                } else if let Some(inner) = def_params.get(&v) {
                    params.extend(inner.iter().cloned());
                }
            }
            def_params.insert(d.scalar.id.clone(), params);
            // A right-hand side without variables (a constant, or one that
            // simplifies to a number such as `x - x`) is never named back:
            // its pattern would match that number everywhere.
            if !matches!(d.expr, Expr::Var(_) | Expr::Num(_))
                && !variables(atom.as_view()).is_empty()
            {
                // Products of the form u² also appear (σ(1−σ), softmax Hessians):
                // after expansion the CAS writes them as the square of the
                // right-hand side, which a plain match of u would miss.
                let name = Atom::var(engine.var(&d.scalar.id));
                resubstitute.push((atom.pow(Atom::num(2)), name.pow(Atom::num(2))));
                resubstitute.push((atom.clone(), name));
            }
            defs.insert(d.scalar.id.clone(), (i, atom));
        }
        // Products of two entries of one vector intermediate (s_1 s_2 in a
        // softmax Hessian) are merged by the CAS too; name them back.
        for (a, da) in model.definitions.iter().enumerate() {
            for db in &model.definitions[a + 1..] {
                if da.scalar.tensor != db.scalar.tensor || da.scalar.index.is_empty() {
                    continue;
                }
                let product = engine.to_atom(&da.expr) * engine.to_atom(&db.expr);
                if variables(product.as_view()).is_empty() {
                    continue;
                }
                let names =
                    Atom::var(engine.var(&da.scalar.id)) * Atom::var(engine.var(&db.scalar.id));
                resubstitute.push((product, names));
            }
        }
        resubstitute.reverse();
        let resubstitute = resubstitute
            .iter()
            .map(|(rhs, name): &(Atom, Atom)| Resubstitution::new(rhs, name))
            .collect();
        let mut chain = Chain {
            engine,
            model,
            defs,
            def_params,
            memo: HashMap::new(),
            resubstitute,
            partials: Vec::new(),
            local: HashMap::new(),
        };
        chain.record_local_partials()?;
        Ok(chain)
    }

    /// Replace right-hand sides of definitions by their names, then simplify.
    fn tidy(&self, a: &Atom) -> Atom {
        let mut a = a.clone();
        // A superset of the variables in `a`: a right-hand side that uses a
        // variable not in it cannot occur in it, and is not searched for
        // (the search is most of the time of a large derivation).
        let mut present = variables(a.as_view());
        for r in &self.resubstitute {
            if !r.variables.is_subset(&present) {
                continue;
            }
            let replaced = a.replace(&r.pattern).with(&r.name);
            if replaced != a {
                present.extend(&r.name_variables);
                a = replaced;
            }
        }
        self.engine.simplest(&a)
    }

    fn depends_on(&self, var: &str, j: usize) -> bool {
        let pid = &self.model.params[j].id;
        var == pid || self.def_params.get(var).is_some_and(|ps| ps.contains(pid))
    }

    /// d(expr)/dθ_j, where `vars` are the free variables of `expr`, and
    /// `owner` its name when it is the loss, the regularizer or an
    /// intermediate (whose simplified local partials are already known).
    fn total(
        &mut self,
        expr: &Atom,
        owner: Option<&str>,
        vars: &BTreeSet<String>,
        j: usize,
    ) -> Atom {
        let pid = self.model.params[j].id.clone();
        let mut chain_terms = Atom::num(0);
        for v in vars {
            if !self.defs.contains_key(v) || !self.depends_on(v, j) {
                continue;
            }
            let inner = self.total_of_definition(v, j);
            if inner.is_zero() {
                continue;
            }
            let outer = expr.derivative(self.engine.var(v));
            if outer.is_zero() {
                continue;
            }
            chain_terms += outer * inner;
        }
        let known = owner.and_then(|o| self.local.get(&(o.to_string(), pid.clone())));
        match known {
            // The direct partial alone, simplified once already.
            Some(direct) if chain_terms.is_zero() => direct.clone(),
            _ if !vars.contains(&pid) => self.tidy(&chain_terms),
            _ => self.tidy(&(expr.derivative(self.engine.var(&pid)) + chain_terms)),
        }
    }

    fn total_of_definition(&mut self, id: &str, j: usize) -> Atom {
        if let Some(a) = self.memo.get(&(id.to_string(), j)) {
            return a.clone();
        }
        let (i, atom) = self.defs[id].clone();
        let vars = self.model.definitions[i].expr.free_vars();
        let result = self.total(&atom, Some(id), &vars, j);
        self.memo.insert((id.to_string(), j), result.clone());
        result
    }

    /// The upper triangle by the chain rule, mirrored.
    #[allow(clippy::needless_range_loop)] // writes both h[j][k] and h[k][j]
    fn hessian(&mut self, gradient: &[Atom]) -> Vec<Vec<Atom>> {
        let p = gradient.len();
        let mut h = vec![vec![Atom::num(0); p]; p];
        for j in 0..p {
            let vars: BTreeSet<String> = variables(gradient[j].as_view())
                .into_iter()
                .filter(|s| *s != Symbol::E)
                .map(|s| s.get_stripped_name().to_string())
                .collect();
            for k in j..p {
                let hjk = self.total(&gradient[j], None, &vars, k);
                h[k][j] = hjk.clone();
                h[j][k] = hjk;
            }
        }
        h
    }

    /// ∂owner/∂v for the loss, the regularizer and every intermediate, over
    /// their direct dependencies that are intermediates or parameters.
    fn record_local_partials(&mut self) -> Result<(), String> {
        let mut owners: Vec<(String, Expr)> = self
            .model
            .definitions
            .iter()
            .map(|d| (d.scalar.id.clone(), d.expr.clone()))
            .collect();
        owners.push((LOSS.to_string(), self.model.loss.clone()));
        if let Some(r) = &self.model.regularizer {
            owners.push((REGULARIZER.to_string(), r.clone()));
        }
        let param_ids: BTreeSet<&str> = self.model.params.iter().map(|s| s.id.as_str()).collect();
        for (owner, expr) in owners {
            let atom = self.engine.to_atom(&expr);
            for v in expr.free_vars() {
                if !(self.defs.contains_key(&v) || param_ids.contains(v.as_str())) {
                    continue;
                }
                let d = atom.derivative(self.engine.var(&v));
                if d.is_zero() {
                    continue;
                }
                let d = self.tidy(&d);
                let expr = self.engine.checked(&d, || format!("∂{owner}/∂{v}"))?;
                self.local.insert((owner.clone(), v.clone()), d);
                self.partials.push(LocalPartial {
                    of: owner.clone(),
                    wrt: v.clone(),
                    expr,
                });
            }
        }
        Ok(())
    }

    fn local_partials(&self) -> Vec<LocalPartial> {
        self.partials.clone()
    }

    /// Every chain from `from` down to the parameter `param` through
    /// intermediates (each a list of ids, `from` first, `param` last).
    fn paths(&self, from: &str, param: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![from.to_string()];
        self.walk(&mut stack, param, &mut out);
        out
    }

    fn walk(&self, stack: &mut Vec<String>, param: &str, out: &mut Vec<Vec<String>>) {
        /// Beyond this many chains the text shows the sum, not each chain.
        const MAX_PATHS: usize = 64;
        let here = stack.last().expect("non-empty").clone();
        for lp in self.partials.iter().filter(|lp| lp.of == here) {
            if out.len() >= MAX_PATHS {
                return;
            }
            stack.push(lp.wrt.clone());
            if lp.wrt == param {
                out.push(stack.clone());
            } else if self.defs.contains_key(&lp.wrt)
                && self
                    .def_params
                    .get(&lp.wrt)
                    .is_some_and(|ps| ps.contains(param))
            {
                self.walk(stack, param, out);
            }
            stack.pop();
        }
    }
}
