//! The chain rule through the named intermediates, with memoized total
//! derivatives and the back-substitution of each intermediate's
//! right-hand side by its name.

use super::*;

/// One back-substitution of [`Chain::tidy`]: an intermediate's right-hand
/// side (or a power or product of them) → its name, as Symbolica patterns
/// built once, with the variables each side uses.
pub(super) struct Resubstitution {
    pub(super) pattern: Pattern,
    pub(super) name: Pattern,
    pub(super) variables: HashSet<Symbol>,
    pub(super) name_variables: HashSet<Symbol>,
}

impl Resubstitution {
    pub(super) fn new(rhs: &Atom, name: &Atom) -> Self {
        Resubstitution {
            pattern: rhs.to_pattern(),
            name: name.to_pattern(),
            variables: variables(rhs.as_view()),
            name_variables: variables(name.as_view()),
        }
    }
}

/// `op` over the atoms of `xs` as a balanced tree (`empty` for none).
pub(super) fn pairwise<T>(
    xs: &[T],
    atom: &dyn Fn(&T) -> Atom,
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
pub(super) fn calls_a_function(a: AtomView<'_>) -> bool {
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
pub(super) fn variables(a: AtomView) -> HashSet<Symbol> {
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
pub(super) struct Chain<'a> {
    pub(super) engine: &'a Engine,
    pub(super) model: &'a Model,
    /// Intermediate id → (index, its right-hand side as an atom).
    pub(super) defs: HashMap<String, (usize, Atom)>,
    /// Intermediate id → the parameters it depends on (transitively).
    pub(super) def_params: HashMap<String, BTreeSet<String>>,
    /// (intermediate id, parameter index) → d(intermediate)/dθ_j, simplified.
    pub(super) memo: HashMap<(String, usize), Atom>,
    /// Back-substitution: each intermediate's right-hand side → its symbol.
    pub(super) resubstitute: Vec<Resubstitution>,
    /// Local partials ∂owner/∂v recorded for the derivation text.
    pub(super) partials: Vec<LocalPartial>,
    /// The same partials as simplified atoms, by (owner, v): reused by the
    /// chain rule where a total derivative is the local partial alone.
    pub(super) local: HashMap<(String, String), Atom>,
}

impl<'a> Chain<'a> {
    pub(super) fn new(engine: &'a Engine, model: &'a Model) -> Result<Chain<'a>, String> {
        let mut defs = HashMap::new();
        let mut def_params: HashMap<String, BTreeSet<String>> = HashMap::new();
        let param_ids: BTreeSet<&str> = model.params.iter().map(|s| s.id.as_str()).collect();
        let mut resubstitute = Vec::new();
        for (i, d) in model.definitions().iter().enumerate() {
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
        for (a, da) in model.definitions().iter().enumerate() {
            for db in &model.definitions()[a + 1..] {
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
    pub(super) fn tidy(&self, a: &Atom) -> Atom {
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

    pub(super) fn depends_on(&self, var: &str, j: usize) -> bool {
        let pid = &self.model.params[j].id;
        var == pid || self.def_params.get(var).is_some_and(|ps| ps.contains(pid))
    }

    /// d(expr)/dθ_j, where `vars` are the free variables of `expr`, and
    /// `owner` its name when it is the loss, the regularizer or an
    /// intermediate (whose simplified local partials are already known).
    pub(super) fn total(
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

    pub(super) fn total_of_definition(&mut self, id: &str, j: usize) -> Atom {
        if let Some(a) = self.memo.get(&(id.to_string(), j)) {
            return a.clone();
        }
        let (i, atom) = self.defs[id].clone();
        let vars = self.model.definitions()[i].expr.free_vars();
        let result = self.total(&atom, Some(id), &vars, j);
        self.memo.insert((id.to_string(), j), result.clone());
        result
    }

    /// The upper triangle by the chain rule, mirrored.
    #[allow(clippy::needless_range_loop)] // writes both h[j][k] and h[k][j]
    pub(super) fn hessian(&mut self, gradient: &[Atom]) -> Vec<Vec<Atom>> {
        let p = gradient.len();
        let mut h = vec![vec![Atom::num(0); p]; p];
        for j in 0..p {
            let vars: BTreeSet<String> = variables(gradient[j].as_view())
                .into_iter()
                .filter(|s| *s != Symbol::E)
                .map(|s| self.engine.name_of(s))
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
    pub(super) fn record_local_partials(&mut self) -> Result<(), String> {
        let mut owners: Vec<(String, Expr)> = self
            .model
            .definitions()
            .iter()
            .map(|d| (d.scalar.id.clone(), d.expr.clone()))
            .collect();
        owners.push((LOSS.to_string(), self.model.loss().clone()));
        if let Some(r) = self.model.regularizer() {
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

    pub(super) fn local_partials(&self) -> Vec<LocalPartial> {
        self.partials.clone()
    }

    /// Every chain from `from` down to the parameter `param` through
    /// intermediates (each a list of ids, `from` first, `param` last).
    pub(super) fn paths(&self, from: &str, param: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![from.to_string()];
        self.walk(&mut stack, param, &mut out);
        out
    }

    pub(super) fn walk(&self, stack: &mut Vec<String>, param: &str, out: &mut Vec<Vec<String>>) {
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
