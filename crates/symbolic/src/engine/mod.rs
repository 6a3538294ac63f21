//! Everything that touches Symbolica: converting our [`Expr`] trees to
//! Symbolica atoms and back, the derivative rules of the functions Symbolica
//! does not know (σ, softplus, tanh, …), the chain rule through the named
//! intermediates, and the choice of the simplest equivalent form.
//!
//! Only the worker thread (see `worker.rs`) ever holds an [`Engine`].
//!
//! This module is the [`Engine`]: derivation, simplification and the
//! choice of forms. [`functions`] holds our functions' symbols and
//! derivative rules, [`convert`] the conversions between [`Expr`] and
//! atoms, [`limits`] which expansions are safe, and [`chain`] the chain
//! rule through the intermediates.

use hessforge_derivation::{
    Derivation, GradientEntry, LOSS, LocalPartial, NormalForms, REGULARIZER, SymbolicaForms,
};
use hessforge_ir::Algebra;
use hessforge_spec::{Expr, Func, Model, Rational};
use num_bigint::{BigInt, Sign};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;
use symbolica::atom::{AddView, Atom, AtomCore, AtomView, EvaluationInfo, Symbol};
use symbolica::coefficient::CoefficientView;
use symbolica::domains::integer::Integer;
use symbolica::domains::rational::Q;
use symbolica::id::Pattern;
use symbolica::poly::polynomial::MultivariatePolynomial;
use symbolica::symbol;

mod chain;
mod convert;
mod functions;
mod limits;
mod pool;
#[cfg(test)]
mod tests;
use chain::*;
pub(crate) use convert::coefficient;
use convert::*;
use functions::*;
pub(crate) use functions::{any_node, call, exp_of};
pub(crate) use limits::powers_within;
use limits::*;

/// The Symbolica side of hessforge, owned by the worker thread.
pub(crate) struct Engine {
    /// Functions without a Symbolica built-in, by our function (expm1 is
    /// introduced only by the stable rewrites of the lowering).
    pub(crate) custom: HashMap<Func, Symbol>,
    /// max(a, b): only the range-safe log-sum-exp writes it (see
    /// `range_safe`); lowered to [`hessforge_ir::Instr::Max`].
    pub(crate) max: Symbol,
    /// e^z where z ≤ 0 by construction (z = Lᵢ − max L): the terms of the
    /// bounded sum of a range-safe log-sum-exp, which the range-safe
    /// rewrites must not take for a factor that can grow. Lowered to exp.
    pub(crate) exp_at_most_one: Symbol,
    /// together(x) = x: an association barrier (as GCC's
    /// `__builtin_assoc_barrier`). The evaluator adds a sum inside it
    /// before the terms around it; lowered to a copy.
    pub(crate) together: Symbol,
    /// How many index-form expressions have been simplified: each gets
    /// stand-in symbols of its own (see `index_simplify`).
    pub(crate) index_simplifications: std::cell::Cell<u64>,
    /// The symbols of the model's scalars in the current job.
    pub(crate) pool: pool::SymbolPool,
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
        let max = symbol!(
            "hessforge::max",
            eval = EvaluationInfo::new().register(|args: &[f64]| args[0].max(args[1]))
        );
        let exp_at_most_one = symbol!("hessforge::exp_at_most_one", eval = numeric(f64::exp));
        let together = symbol!(
            "hessforge::together",
            eval = EvaluationInfo::new().register(|args: &[f64]| args[0])
        );
        Engine {
            custom,
            max,
            exp_at_most_one,
            together,
            index_simplifications: std::cell::Cell::new(0),
            pool: pool::SymbolPool::new(),
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

    /// The symbol of a model scalar in this job, from the pool (see
    /// [`pool`]): never Symbolica's own symbol of that name (a parameter
    /// called `gamma` is not the Γ function), and the same symbol for the
    /// same model whatever the process did before.
    pub(crate) fn var(&self, id: &str) -> Symbol {
        self.pool.symbol(id)
    }

    /// The model name behind a symbol: the pool's in this job, else the
    /// symbol's own name.
    pub(crate) fn name_of(&self, s: Symbol) -> String {
        self.pool
            .name(s)
            .unwrap_or_else(|| s.get_stripped_name().to_string())
    }

    /// Symbolica's own printing of an atom, with the model's names for the
    /// pool's symbols (what `derive --format json` shows as Symbolica's
    /// forms; nothing computes with it). The names are put into the printed
    /// text, not into the atom: symbols made for them would order the terms
    /// by when the process first met each name.
    pub(crate) fn display(&self, a: &Atom) -> String {
        let printed = a.to_string().replace(pool::NAMESPACE, "");
        let mut out = String::with_capacity(printed.len());
        let mut rest = printed.as_str();
        while let Some(at) = rest.find(pool::PREFIX) {
            out.push_str(&rest[..at]);
            let after = &rest[at + pool::PREFIX.len_utf8()..];
            let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            match after[..digits]
                .parse()
                .ok()
                .and_then(|k| self.pool.name_at(k))
            {
                Some(name) => out.push_str(&name),
                None => out.push_str(&rest[at..at + pool::PREFIX.len_utf8() + digits]),
            }
            rest = &after[digits..];
        }
        out.push_str(rest);
        out
    }

    /// Start a job: the pool's symbols stand for no name yet.
    pub(crate) fn begin_job(&self) {
        self.pool.begin_job();
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
                    Expr::Var(self.name_of(s))
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
            return if is_polynomial(a.as_view()) {
                self.simplest_polynomial_sum(terms)
            } else {
                self.simplest_long_sum(a, terms)
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

    /// [`Engine::simplest`] of a long sum: each term as is or expanded, or
    /// (for a polynomial) the whole sum expanded, whichever is cheaper.
    fn simplest_long_sum(&self, a: &Atom, terms: AddView<'_>) -> Atom {
        let mut termwise = Atom::num(0);
        for t in terms.iter() {
            let t = t.to_owned();
            let e = t.expand();
            termwise += self.cheaper(e, t);
        }
        // Terms with functions (e^{−t·x} of each data row) hardly ever
        // merge, and expanding their products whole is most of the time
        // of a large derivation: only polynomials are expanded whole.
        if calls_a_function(a.as_view()) {
            return termwise;
        }
        self.cheaper(a.expand(), termwise)
    }

    /// [`Engine::simplest_long_sum`] of a sum that is a polynomial
    /// ([`is_polynomial`]), with the same result: the expansions are computed in
    /// Symbolica's polynomial type over ℚ, once per term; the whole sum is
    /// the sum of the terms' polynomials. The same forms as `expand()` (a
    /// test checks), several times faster where the coefficients are long
    /// exact decimals (Watson's function: powers of i/29 to 16 digits).
    fn simplest_polynomial_sum(&self, terms: AddView<'_>) -> Atom {
        let terms: Vec<Atom> = terms.iter().map(|t| t.to_owned()).collect();
        let mut polynomials: Vec<MultivariatePolynomial<_, u32>> =
            terms.iter().map(|t| t.to_polynomial(&Q, None)).collect();
        let chosen: Vec<Atom> = terms
            .into_iter()
            .zip(&polynomials)
            .map(|(t, p)| self.cheaper(p.to_expression(), t))
            .collect();
        let termwise = pairwise(&chosen, &|t: &Atom| t.clone(), &|a, b| a + b, Atom::num(0));
        MultivariatePolynomial::unify_variables_list(&mut polynomials);
        let whole = polynomials
            .into_iter()
            .reduce(|a, b| a + b)
            .map_or(Atom::num(0), |p| p.to_expression());
        self.cheaper(whole, termwise)
    }

    /// `candidate` where it costs less than `incumbent` ([`Engine::cost_of`]),
    /// else `incumbent`: a tie keeps the incumbent.
    fn cheaper(&self, candidate: Atom, incumbent: Atom) -> Atom {
        if self.cost_of(&candidate) < self.cost_of(&incumbent) {
            candidate
        } else {
            incumbent
        }
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
                AtomView::Num(n) if in_f64_range(n.get_coeff_view(), a) => 1,
                AtomView::Num(_) => return None,
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
            for d in model.definitions().iter().rev() {
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
    /// not grow with the tensors' lengths. The model back where it has no
    /// tensor parameter or its index form does not simplify (the caller
    /// then derives in full, which decides).
    pub(crate) fn derive_unexpanded(&self, model: Model) -> Result<Derivation, Box<Model>> {
        let start = Instant::now();
        let derived = model
            .index
            .as_ref()
            .filter(|_| model.has_tensor_parameter())
            .and_then(|ix| {
                let index = hessforge_derivation::index_calculus::differentiate(ix)
                    .and_then(|derived| self.simplify_index_derivation(ix, &derived))
                    .ok()?;
                let backprop = hessforge_derivation::backprop::backpropagate(ix)
                    .and_then(|b| self.simplify_backpropagation(ix, &b))
                    .ok()?;
                Some((index, backprop))
            });
        let Some((index, backprop)) = derived else {
            return Err(Box::new(model));
        };
        Ok(Derivation {
            // The scalar forms belong to the expansion (`expanded` is false).
            forms: None,
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
            rewrites: Vec::new(),
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The scalar derivation; with `with_index`, the index form and its
    /// back-propagation too (for documents).
    pub(crate) fn derive(&self, model: &Model, with_index: bool) -> Result<Derivation, String> {
        let start = Instant::now();
        let mut chain = Chain::new(self, model)?;
        let p = model.params.len();

        let loss = self.to_atom(model.loss());
        let mut gradient = Vec::with_capacity(p);
        let mut grad_atoms = Vec::with_capacity(p);
        for j in 0..p {
            let g = chain.total(&loss, Some(LOSS), &model.loss().free_vars(), j);
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

        let (reg_grad_atoms, reg_hess_atoms, reg_atom) = match model.regularizer() {
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
                .definitions()
                .iter()
                .map(|d| (d.scalar.id.clone(), self.display(&self.to_atom(&d.expr))))
                .collect(),
            loss: self.display(&loss),
            regularizer: reg_atom.map(|r| self.display(&r)),
            gradient: grad_atoms.iter().map(|g| self.display(g)).collect(),
            hessian: strings(self, &hessian_atoms),
            regularizer_gradient: reg_grad_atoms.iter().map(|g| self.display(g)).collect(),
            regularizer_hessian: strings(self, &reg_hess_atoms),
        };
        let local_partials = chain.local_partials();
        let newton_step = (p <= 2 && model.data.is_empty()).then(|| {
            let total = |j: usize| {
                if model.has_regularizer() {
                    &grad_atoms[j] + &reg_grad_atoms[j]
                } else {
                    grad_atoms[j].clone()
                }
            };
            let hess = |j: usize, k: usize| {
                if model.has_regularizer() {
                    &hessian_atoms[j][k] + &reg_hess_atoms[j][k]
                } else {
                    hessian_atoms[j][k].clone()
                }
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
                .definitions()
                .iter()
                .map(|d| normal(&d.expr, &d.scalar.id))
                .collect::<Result<_, _>>()?,
            loss: normal(model.loss(), "the loss")?,
            regularizer: model
                .regularizer()
                .map(|r| normal(r, "the regularizer"))
                .transpose()?,
        };
        // The scalar derivation above decides whether the model can be
        // derived; the index form is added where it simplifies to real
        // numbers too (a form with a removable 0/0 may not).
        let index = match &model.index {
            Some(ix) if with_index && model.has_tensor_parameter() => {
                hessforge_derivation::index_calculus::differentiate(ix)
                    .and_then(|derived| self.simplify_index_derivation(ix, &derived))
                    .ok()
            }
            _ => None,
        };
        // How the lecture note tells the index form: back-propagation.
        let backprop = match (&model.index, &index) {
            (Some(ix), Some(_)) => hessforge_derivation::backprop::backpropagate(ix)
                .and_then(|b| self.simplify_backpropagation(ix, &b))
                .ok(),
            _ => None,
        };
        Ok(Derivation {
            forms: Some(forms),
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
            rewrites: Vec::new(),
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// [`Engine::to_expr`], with the failure said of `what` (e.g. `∂ℓ/∂x`).
    pub(crate) fn checked(&self, a: &Atom, what: impl FnOnce() -> String) -> Result<Expr, String> {
        self.to_expr(a.as_view())
            .map_err(|reason| format!("{} is undefined: it contains {reason}", what()))
    }
}

/// Whether a number is real and its f64 value finite, and not zero unless
/// the number is. A long exact number (a coefficient of Watson's function)
/// is decided by the lengths of its numerator and denominator when they
/// put it well inside the range, and by the exact [`coefficient`] otherwise: the answer is the
/// exact one's, without its conversion through digits on the common path.
fn in_f64_range(c: CoefficientView<'_>, a: AtomView<'_>) -> bool {
    if let CoefficientView::Large(re, im) = &c
        && im.is_zero()
    {
        // |p/q| lies within a factor 2 of 2^(bits(p) − bits(q)).
        let r = re.to_rat();
        let bits = |n: &Integer| i64::try_from(n.significant_bits()).unwrap_or(i64::MAX);
        if (bits(r.numerator_ref()) - bits(r.denominator_ref())).abs() < 1000 {
            return true;
        }
    }
    coefficient(c, a).is_ok_and(|r| {
        let v = r.to_f64();
        v.is_finite() && (v != 0.0 || r.is_zero())
    })
}

/// The largest numerator or denominator of a numeric exponent that is
/// computed as a power; beyond it a power is an exponential.
pub(crate) const MAX_EXPONENT: u64 = 1000;
