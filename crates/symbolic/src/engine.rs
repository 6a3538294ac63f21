//! Everything that touches Symbolica: converting our [`Expr`] trees to
//! Symbolica atoms and back, the derivative rules of the functions Symbolica
//! does not know (σ, softplus, tanh, …), the chain rule through the named
//! intermediates, and the choice of the simplest equivalent form.
//!
//! Only the worker thread (see `worker.rs`) ever holds an [`Engine`].

use crate::derivation::{
    Derivation, GradientEntry, LOSS, LocalPartial, NormalForms, REGULARIZER, SymbolicaForms,
};
use hessforge_spec::{Expr, Func, Model, Rational};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;
use symbolica::atom::{Atom, AtomCore, AtomView, EvaluationInfo, Symbol};
use symbolica::coefficient::CoefficientView;
use symbolica::id::Pattern;
use symbolica::symbol;

/// The Symbolica side of hessforge, owned by the worker thread.
pub(crate) struct Engine {
    /// Functions without a Symbolica built-in, by our function (expm1 is
    /// introduced only by the stable rewrites of the lowering).
    pub(crate) custom: HashMap<Func, Symbol>,
}

/// How the CAS evaluates a function numerically (the same stable forms the
/// IR uses), so that evaluators can be built over it.
fn numeric(f: fn(f64) -> f64) -> EvaluationInfo {
    EvaluationInfo::new().register(move |args: &[f64]| f(args[0]))
}

pub(crate) fn call(f: Symbol, arg: &Atom) -> Atom {
    f.call(&[arg.as_view()][..])
}

/// The argument of a one-argument function view, as an owned atom.
fn first_arg(view: AtomView<'_>) -> Atom {
    match view {
        AtomView::Fun(f) if f.get_nargs() >= 1 => f.get(0).to_owned(),
        other => other.to_owned(),
    }
}

impl Engine {
    /// Define the functions and their derivative rules. The rules, with u the
    /// argument: σ' = σ(1−σ); softplus' = σ; tanh' = 1 − tanh²; tan' = 1 + tan²;
    /// atan' = 1/(1+u²); log1p' = 1/(1+u); relu' = step; |u|' = sign(u);
    /// step' = sign' = 0 (almost everywhere).
    pub(crate) fn new() -> Engine {
        let sigmoid = symbol!(
            "hessforge::sigmoid",
            eval = numeric(hessforge_ir::math::sigmoid),
            der = |f, _arg, out| {
                let s = f.to_owned();
                **out = &s * (Atom::num(1) - &s);
            }
        );
        let step = symbol!(
            "hessforge::step",
            eval = numeric(hessforge_ir::math::step),
            der = |_f, _arg, out| {
                **out = Atom::num(0);
            }
        );
        let sign = symbol!(
            "hessforge::sign",
            eval = numeric(hessforge_ir::math::sign),
            der = |_f, _arg, out| {
                **out = Atom::num(0);
            }
        );
        let softplus = symbol!(
            "hessforge::softplus",
            eval = numeric(hessforge_ir::math::softplus),
            der = |f, _arg, out| {
                **out = call(symbol!("hessforge::sigmoid"), &first_arg(f));
            }
        );
        let tanh = symbol!(
            "hessforge::tanh",
            eval = numeric(f64::tanh),
            der = |f, _arg, out| {
                let t = f.to_owned();
                **out = Atom::num(1) - t.pow(Atom::num(2));
            }
        );
        let tan = symbol!(
            "hessforge::tan",
            eval = numeric(f64::tan),
            der = |f, _arg, out| {
                let t = f.to_owned();
                **out = Atom::num(1) + t.pow(Atom::num(2));
            }
        );
        let atan = symbol!(
            "hessforge::atan",
            eval = numeric(f64::atan),
            der = |f, _arg, out| {
                let u = first_arg(f);
                **out = (Atom::num(1) + u.pow(Atom::num(2))).pow(Atom::num(-1));
            }
        );
        let log1p = symbol!(
            "hessforge::log1p",
            eval = numeric(f64::ln_1p),
            der = |f, _arg, out| {
                let u = first_arg(f);
                **out = (Atom::num(1) + u).pow(Atom::num(-1));
            }
        );
        let relu = symbol!(
            "hessforge::relu",
            eval = numeric(hessforge_ir::math::relu),
            der = |f, _arg, out| {
                **out = call(symbol!("hessforge::step"), &first_arg(f));
            }
        );
        let absval = symbol!(
            "hessforge::absval",
            eval = numeric(f64::abs),
            der = |f, _arg, out| {
                **out = call(symbol!("hessforge::sign"), &first_arg(f));
            }
        );
        let expm1 = symbol!(
            "hessforge::expm1",
            eval = numeric(f64::exp_m1),
            der = |f, _arg, out| {
                **out = first_arg(f).exp();
            }
        );
        let custom = HashMap::from([
            (Func::Sigmoid, sigmoid),
            (Func::Step, step),
            (Func::Sign, sign),
            (Func::Softplus, softplus),
            (Func::Tanh, tanh),
            (Func::Tan, tan),
            (Func::Atan, atan),
            (Func::Log1p, log1p),
            (Func::Expm1, expm1),
            (Func::Relu, relu),
            (Func::Abs, absval),
        ]);
        // Touch the engine once so that its start-up (and banner) happens here.
        let warm = call(sigmoid, &Atom::var(symbol!("hessforge::warmup_u")))
            .derivative(symbol!("hessforge::warmup_u"));
        let _ = warm.factor();
        Engine { custom }
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
            Expr::Num(r) => number(*r),
            Expr::Var(id) => Atom::var(self.var(id)),
            Expr::Add(xs) => {
                let mut acc = Atom::num(0);
                for x in xs {
                    acc += self.to_atom(x);
                }
                acc
            }
            Expr::Mul(xs) => {
                let mut acc = Atom::num(1);
                for x in xs {
                    acc *= self.to_atom(x);
                }
                acc
            }
            Expr::Pow(b, x) => self.to_atom(b).pow(self.to_atom(x)),
            Expr::Call(f, a) => {
                let arg = self.to_atom(a);
                match f {
                    Func::Exp => arg.exp(),
                    Func::Log => arg.log(),
                    Func::Sqrt => arg.sqrt(),
                    Func::Sin => arg.sin(),
                    Func::Cos => arg.cos(),
                    other => call(self.custom[other], &arg),
                }
            }
        }
    }

    /// A Symbolica atom → our tree.
    pub(crate) fn to_expr(&self, a: AtomView<'_>) -> Expr {
        match a {
            AtomView::Num(n) => match n.get_coeff_view() {
                CoefficientView::Natural(num, den, _, _) => Expr::Num(Rational {
                    num: num as i128,
                    den: den as i128,
                }),
                _ => parse_rational(&a.to_owned().to_string())
                    .map(Expr::Num)
                    .unwrap_or_else(|| {
                        panic!("unsupported number `{}` in a derivative", a.to_owned())
                    }),
            },
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
                let func = self.function(s).unwrap_or_else(|| {
                    panic!("unexpected function `{}` in a derivative", s.get_name())
                });
                Expr::Call(func, Box::new(self.to_expr(f.get(0))))
            }
            AtomView::Pow(p) => {
                let (b, x) = p.get_base_exp();
                if let AtomView::Var(v) = b
                    && v.get_symbol() == Symbol::E
                {
                    return Expr::Call(Func::Exp, Box::new(self.to_expr(x)));
                }
                Expr::Pow(Box::new(self.to_expr(b)), Box::new(self.to_expr(x)))
            }
            AtomView::Mul(m) => Expr::Mul(m.iter().map(|x| self.to_expr(x)).collect()),
            AtomView::Add(s) => Expr::Add(s.iter().map(|x| self.to_expr(x)).collect()),
        }
    }

    /// The simplest of a few equivalent forms (factored, as is, expanded,
    /// over a common denominator), by [`cost`]; ties go to the earlier form,
    /// so a factored form wins over an equally long expanded one.
    fn simplest(&self, a: &Atom) -> Atom {
        let mut best = a.factor();
        let mut best_cost = cost(&self.to_expr(best.as_view()));
        for candidate in [a.clone(), a.expand(), a.together()] {
            let c = cost(&self.to_expr(candidate.as_view()));
            if c < best_cost {
                best = candidate;
                best_cost = c;
            }
        }
        best
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
            || diff.expand().is_zero()
            || diff.together().expand().is_zero()
            || diff.factor().is_zero()
    }

    /// The whole derivation of a model.
    pub(crate) fn derive(&self, model: &Model) -> Derivation {
        let start = Instant::now();
        let mut chain = Chain::new(self, model);
        let p = model.params.len();

        let loss = self.to_atom(&model.loss);
        let mut gradient = Vec::with_capacity(p);
        let mut grad_atoms = Vec::with_capacity(p);
        for j in 0..p {
            let g = chain.total(&loss, &model.loss.free_vars(), j);
            let expr = self.to_expr(g.as_view());
            gradient.push(GradientEntry {
                param: model.params[j].id.clone(),
                paths: chain.paths(LOSS, &model.params[j].id),
                expr,
            });
            grad_atoms.push(g);
        }
        let hessian_atoms = chain.hessian(&grad_atoms);
        let hessian = atoms_to_matrix(self, &hessian_atoms);

        let (reg_grad_atoms, reg_hess_atoms, reg_atom) = match &model.regularizer {
            Some(r) => {
                let atom = self.to_atom(r);
                let grads: Vec<Atom> = (0..p)
                    .map(|j| chain.total(&atom, &r.free_vars(), j))
                    .collect();
                let hess = chain.hessian(&grads);
                (grads, hess, Some(atom))
            }
            None => (vec![], vec![], None),
        };
        let regularizer_gradient: Vec<Expr> = reg_grad_atoms
            .iter()
            .map(|g| self.to_expr(g.as_view()))
            .collect();
        let regularizer_hessian = atoms_to_matrix(self, &reg_hess_atoms);

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
            step.iter()
                .map(|d| self.to_expr(chain.tidy(d).as_view()))
                .collect()
        });
        let normal = |e: &Expr| self.to_expr(self.to_atom(e).as_view());
        let forms = NormalForms {
            definitions: model.definitions.iter().map(|d| normal(&d.expr)).collect(),
            loss: normal(&model.loss),
            regularizer: model.regularizer.as_ref().map(normal),
        };
        Derivation {
            forms,
            newton_step,
            model: model.clone(),
            local_partials,
            gradient,
            hessian,
            regularizer_gradient,
            regularizer_hessian,
            symbolica,
            seconds: start.elapsed().as_secs_f64(),
        }
    }
}

fn atoms_to_matrix(engine: &Engine, m: &[Vec<Atom>]) -> Vec<Vec<Expr>> {
    m.iter()
        .map(|row| row.iter().map(|a| engine.to_expr(a.as_view())).collect())
        .collect()
}

fn strings(m: &[Vec<Atom>]) -> Vec<Vec<String>> {
    m.iter()
        .map(|row| row.iter().map(|a| a.to_string()).collect())
        .collect()
}

fn number(r: Rational) -> Atom {
    match (i64::try_from(r.num), i64::try_from(r.den)) {
        (Ok(n), Ok(d)) => Atom::num((n, d)),
        _ => Atom::num(r.num as f64 / r.den as f64),
    }
}

fn parse_rational(s: &str) -> Option<Rational> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    Some(Rational {
        num: n.trim().parse().ok()?,
        den: d.trim().parse().ok()?,
    })
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

/// The measure of "simpler": the number of nodes of the tree, plus one for
/// every repeated occurrence of a variable (so `x(1 − h²)` beats `x − h²x`).
fn cost(e: &Expr) -> usize {
    fn walk(e: &Expr, seen: &mut HashMap<String, usize>) -> usize {
        match e {
            Expr::Num(_) => 1,
            Expr::Var(v) => {
                *seen.entry(v.clone()).or_default() += 1;
                1
            }
            Expr::Add(xs) | Expr::Mul(xs) => 1 + xs.iter().map(|x| walk(x, seen)).sum::<usize>(),
            Expr::Pow(a, b) => 1 + walk(a, seen) + walk(b, seen),
            Expr::Call(_, a) => 1 + walk(a, seen),
        }
    }
    let mut seen = HashMap::new();
    let nodes = walk(e, &mut seen);
    nodes + seen.values().map(|n| n - 1).sum::<usize>()
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
}

impl<'a> Chain<'a> {
    fn new(engine: &'a Engine, model: &'a Model) -> Chain<'a> {
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
            if !matches!(d.expr, Expr::Var(_) | Expr::Num(_)) {
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
        };
        chain.record_local_partials();
        chain
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

    /// d(expr)/dθ_j, where `vars` are the free variables of `expr`.
    fn total(&mut self, expr: &Atom, vars: &BTreeSet<String>, j: usize) -> Atom {
        let pid = self.model.params[j].id.clone();
        let mut acc = if vars.contains(&pid) {
            expr.derivative(self.engine.var(&pid))
        } else {
            Atom::num(0)
        };
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
            acc += outer * inner;
        }
        self.tidy(&acc)
    }

    fn total_of_definition(&mut self, id: &str, j: usize) -> Atom {
        if let Some(a) = self.memo.get(&(id.to_string(), j)) {
            return a.clone();
        }
        let (i, atom) = self.defs[id].clone();
        let vars = self.model.definitions[i].expr.free_vars();
        let result = self.total(&atom, &vars, j);
        self.memo.insert((id.to_string(), j), result.clone());
        result
    }

    /// The upper triangle by the chain rule, mirrored.
    #[allow(clippy::needless_range_loop)] // writes both h[j][k] and h[k][j]
    fn hessian(&mut self, gradient: &[Atom]) -> Vec<Vec<Atom>> {
        let p = gradient.len();
        let mut h = vec![vec![Atom::num(0); p]; p];
        for j in 0..p {
            let vars = self.engine.to_expr(gradient[j].as_view()).free_vars();
            for k in j..p {
                let hjk = self.total(&gradient[j], &vars, k);
                h[k][j] = hjk.clone();
                h[j][k] = hjk;
            }
        }
        h
    }

    /// ∂owner/∂v for the loss, the regularizer and every intermediate, over
    /// their direct dependencies that are intermediates or parameters.
    fn record_local_partials(&mut self) {
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
                self.partials.push(LocalPartial {
                    of: owner.clone(),
                    wrt: v.clone(),
                    expr: self.engine.to_expr(d.as_view()),
                });
            }
        }
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
