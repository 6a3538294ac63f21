//! Lowering the index-form derivation into the loop IR
//! ([`hessforge_ir::loop_ir`]): code whose size does not depend on the
//! tensors' lengths.
//!
//! Every expression (the loss, ∂ℓ/∂T per parameter tensor, the Hessian
//! blocks) has its definitions inlined and is then cut into steps by where
//! its parts vary: a sum becomes a reduction step over its free indices and
//! its own; a part that varies over fewer indices than its surroundings is
//! computed once into a smaller buffer (loop-invariant code motion: in
//! u[k, l] = v_k (1 − h_k²) x_l the factor v_k (1 − h_k²) is a buffer over k,
//! and p − y in (p − y) x_j a scalar). Identical parts share one buffer. A
//! step's body is index-free arithmetic of its loads, made numerically
//! stable and optimised by Symbolica as the scalar path's programs are
//! (the stable rewrites see the whole inlined expression: log σ(z) becomes
//! −softplus(−z)).
//!
//! A Hessian block is split into terms; a term δ-pattern · u(row) · v(col)
//! becomes a product term (a rank-1 update, or one per value of the paired
//! indices), the rest one dense block.

mod max_shift;

use crate::engine::Engine;
use crate::lower::{LowerFailure, Stabilizer, undefined_number};
use crate::range_safe::{Applied, MAX_SUBTRACTED};
use hessforge_derivation::index_calculus::IndexDerivation;
use hessforge_ir::loop_ir::{
    Axis, Factor, GradientTerm, HessianTerm, Load, LoopProgram, Reduction, Source, Stage, Step,
    TensorLayout,
};
use hessforge_ir::{Outputs, Program};
use hessforge_spec::index::{IExpr, IndexModel, Ix};
use hessforge_spec::{Expr, Func, Model, Role};
use max_shift::Shift;
use std::collections::HashMap;
use symbolica::atom::Atom;

/// An index variable of a step: its name, its first value (1-based) and
/// its number of values.
#[derive(Debug, Clone, PartialEq)]
struct Var {
    name: String,
    from: usize,
    len: usize,
}

impl Var {
    /// The variable of a sum from `from` to `to`.
    fn summed(var: &str, from: usize, to: usize) -> Var {
        Var {
            name: var.to_string(),
            from,
            len: (to + 1).saturating_sub(from),
        }
    }
}

/// What the loop IR takes from the scalar model: its name and the ids of
/// θ, of the data row and of the constants, in order (where each tensor's
/// entries sit), and the constants' values. A job takes this, not a copy of
/// the whole model.
pub(crate) struct ScalarLayout {
    name: String,
    params: Vec<String>,
    data: Vec<String>,
    constants: Vec<String>,
    constant_defaults: Vec<f64>,
}

impl ScalarLayout {
    pub(crate) fn of(model: &Model) -> ScalarLayout {
        ScalarLayout {
            name: model.name.clone(),
            params: model.params.iter().map(|s| s.id.clone()).collect(),
            data: model.data.iter().map(|s| s.id.clone()).collect(),
            constants: model.constants.iter().map(|(s, _)| s.id.clone()).collect(),
            constant_defaults: model.constants.iter().map(|(_, v)| *v).collect(),
        }
    }
}

/// Prefix of buffer names inside expressions (not a name a file can use).
const BUFFER: &str = "#buffer";

impl Engine {
    /// The loop-IR model of a derived model in index form.
    pub(crate) fn lower_index(
        &self,
        layout: ScalarLayout,
        index: &IndexModel,
        d: &IndexDerivation,
    ) -> Result<(LoopProgram, Vec<Applied>), LowerFailure> {
        let mut tensors = Vec::new();
        let mut inputs = HashMap::new();
        for t in &index.tensors {
            let (source, ids) = match t.role {
                Role::Parameter => (Source::Theta, &layout.params),
                Role::Data => (Source::Row, &layout.data),
                Role::Constant => (Source::Constants, &layout.constants),
                Role::Intermediate => continue,
            };
            let offset = t
                .ids
                .first()
                .and_then(|first| ids.iter().position(|id| id == first))
                .ok_or_else(|| format!("tensor `{}` is not in the scalar model", t.name))?;
            if ids
                .get(offset..offset + t.ids.len())
                .is_none_or(|run| run.iter().zip(&t.ids).any(|(a, b)| a != b))
            {
                return Err(
                    format!("tensor `{}` is not contiguous in the scalar model", t.name).into(),
                );
            }
            inputs.insert(t.name.clone(), tensors.len());
            tensors.push(TensorLayout {
                name: t.name.clone(),
                source,
                offset,
                shape: t.shape.clone(),
            });
        }
        let stabilizer = Stabilizer::new(self, false);
        let mut stages = Vec::new();
        let mut names = Vec::new();
        let mut applied = Vec::new();
        for regularizer in [false, true] {
            let mut plan = Planner {
                engine: self,
                stabilizer: &stabilizer,
                index,
                tensors: &mut tensors,
                inputs: &inputs,
                stage: Stage::default(),
                memo: HashMap::new(),
                made_from: HashMap::new(),
                inline_exps: Vec::new(),
                inlined: HashMap::new(),
                fresh: 0,
                level: Outputs::Loss,
                shifts: Vec::new(),
                applied: &mut applied,
            };
            let loss = if regularizer {
                index.regularizer.as_ref()
            } else {
                Some(&index.loss)
            };
            if let Some(loss) = loss {
                let loss = plan.inline(loss);
                let loss = plan.range_safe(loss)?;
                plan.stage.loss = Some(plan.make(&loss, &[], &[])?);
            }
            plan.level = Outputs::LossGrad;
            for g in &d.gradient {
                let e = if regularizer { &g.regularizer } else { &g.loss };
                if e.is_int(0) {
                    continue;
                }
                let param = inputs[&g.tensor];
                let vars = plan.vars_of(&g.indices, param);
                let e = plan.inline(e);
                let e = plan.range_safe(e)?;
                let value = plan.make(&e, &vars, &[])?;
                plan.stage.gradient.push(GradientTerm {
                    param,
                    value,
                    outer: None,
                });
            }
            plan.level = Outputs::LossGradHess;
            for b in &d.hessian {
                let e = if regularizer { &b.regularizer } else { &b.loss };
                if e.is_int(0) {
                    continue;
                }
                let (row, col) = (inputs[&b.row], inputs[&b.col]);
                let rows = plan.vars_of(&b.row_indices, row);
                let cols = plan.vars_of(&b.col_indices, col);
                let e = plan.inline(e);
                let e = plan.range_safe(e)?;
                plan.block(&e, row, col, &rows, &cols)?;
            }
            names.extend(plan.definitions_held());
            stages.push(plan.stage);
        }
        name_buffers(&mut tensors, names);
        let regularizer = stages.pop().unwrap_or_default();
        let sample = stages.pop().unwrap_or_default();
        let mut lowered = LoopProgram {
            name: layout.name,
            params: layout.params,
            data: layout.data,
            constants: layout.constants,
            constant_defaults: layout.constant_defaults,
            tensors,
            sample,
            regularizer,
            plans: Default::default(),
            tangent: None,
        };
        lowered.share_identical_steps();
        lowered.validate().map_err(|e| e.to_string())?;
        let mut lowered = lowered.with_tangent().map_err(|e| e.to_string())?;
        lowered.gather_outer_gradients();
        lowered.validate().map_err(|e| e.to_string())?;
        applied.extend(stabilizer.applied());
        Ok((lowered, applied))
    }
}

/// The state of lowering one stage.
struct Planner<'a> {
    engine: &'a Engine,
    stabilizer: &'a Stabilizer,
    index: &'a IndexModel,
    tensors: &'a mut Vec<TensorLayout>,
    /// Parameter, data and constant tensors by name.
    inputs: &'a HashMap<String, usize>,
    stage: Stage,
    /// A step's body in canonical form → the buffer it computes.
    memo: HashMap<String, usize>,
    /// The expression a buffer was made from ([`expression_key`]) → the
    /// buffer, for naming buffers after definitions.
    made_from: HashMap<String, usize>,
    /// The exp calls of the body being made that stay inline
    /// ([`rewritable_exps`]).
    inline_exps: Vec<IExpr>,
    /// Each definition's right-hand side with its own definitions inlined.
    inlined: HashMap<String, IExpr>,
    fresh: usize,
    /// The level the steps made now are needed from.
    level: Outputs,
    /// The sums of exponentials found so far and the buffers of their
    /// maxima ([`max_shift`]).
    shifts: Vec<Shift>,
    /// The range-safe rewrites of the index form, for the derivation's JSON.
    applied: &'a mut Vec<Applied>,
}

impl Planner<'_> {
    /// The buffers of the stage that hold a definition's value, with the
    /// definition's name: a buffer [`Planner::make`] made from the same
    /// expression as the definition's right-hand side (inlined, up to the
    /// names of its indices). A definition whose value no buffer holds
    /// (computed inside a larger step) is not named.
    fn definitions_held(&mut self) -> Vec<(usize, String)> {
        let mut held = Vec::new();
        for def in &self.index.definitions {
            let Some(t) = self.index.tensors.iter().find(|t| t.name == def.name) else {
                continue;
            };
            let vars: Vec<Var> = (def.indices.iter().zip(&t.shape))
                .map(|(name, &len)| Var {
                    name: name.clone(),
                    from: 1,
                    len,
                })
                .collect();
            let own: Vec<Ix> = vars.iter().map(|v| Ix::Var(v.name.clone())).collect();
            let e = self.inline(&IExpr::entry(&def.name, own));
            // A sum is made as a reduction of its body (see `hoist`).
            let key = match &e {
                IExpr::Sum {
                    var,
                    from,
                    to,
                    body,
                } => expression_key(body, &vars, &[Var::summed(var, *from, *to)]),
                _ => expression_key(&e, &vars, &[]),
            };
            if let Some(&b) = self.made_from.get(&key) {
                held.push((b, def.name.clone()));
            }
        }
        held
    }

    /// The variables of a parameter tensor's derivative indices.
    fn vars_of(&self, names: &[String], tensor: usize) -> Vec<Var> {
        names
            .iter()
            .zip(&self.tensors[tensor].shape)
            .map(|(name, &len)| Var {
                name: name.clone(),
                from: 1,
                len,
            })
            .collect()
    }

    /// `e` with every definition replaced by its right-hand side (bound
    /// variables renamed apart) and every vector literal's item written as
    /// a sum over a delta.
    fn inline(&mut self, e: &IExpr) -> IExpr {
        match e {
            IExpr::Entry { tensor, indices } => {
                let Some(def) = self.index.definition(tensor) else {
                    return e.clone();
                };
                let body = match self.inlined.get(tensor) {
                    Some(b) => b.clone(),
                    None => {
                        let b = self.inline(&def.expr);
                        self.inlined.insert(tensor.clone(), b.clone());
                        b
                    }
                };
                let rename: HashMap<String, Ix> = def
                    .indices
                    .iter()
                    .cloned()
                    .zip(indices.iter().cloned())
                    .collect();
                let renamed = body.rename(&rename);
                self.freshen(&renamed)
            }
            IExpr::Pick { index, items } => {
                // item_index = Σ_t δ(index, t) item_t
                let terms = items
                    .iter()
                    .enumerate()
                    .map(|(t, item)| {
                        IExpr::Mul(vec![
                            IExpr::Delta(index.clone(), Ix::Fixed(t + 1)),
                            self.inline(item),
                        ])
                    })
                    .collect();
                IExpr::Add(terms)
            }
            _ => e.map_children(|x| self.inline(x)),
        }
    }

    /// `e` (inlined) with its sums of exponentials' maxima subtracted
    /// ([`max_shift`]); the maximum of each new one is a step.
    fn range_safe(&mut self, e: IExpr) -> Result<IExpr, LowerFailure> {
        let mut found = Vec::new();
        let index = self.index;
        let axis_len = |tensor: &str, axis: usize| -> Option<usize> {
            index.tensor(tensor)?.shape.get(axis).copied()
        };
        max_shift::exp_sums(&e, &axis_len, &mut found);
        for sum in found {
            if self.shifts.iter().any(|s| s.key == sum.key) {
                continue;
            }
            let k = std::slice::from_ref(&sum.var);
            let scores = self.make(&sum.exponent, k, &[])?;
            let max = self.make_buffer(&buffer_entry(scores, k), &[], k, Reduction::Max)?;
            let exp_sum = IExpr::Sum {
                var: sum.var.name.clone(),
                from: 1,
                to: sum.var.len,
                body: Box::new(IExpr::Call(Func::Exp, Box::new(sum.exponent.clone()))),
            };
            // Shown with the scores called z and their maximum m.
            let shown = Shift {
                max: IExpr::entry("m", Vec::new()),
                scores: "z".into(),
                ..Shift::new(sum.key.clone(), scores, sum.var.len, max)
            };
            let inside = max_shift::shift_inside(&exp_sum, &[shown]);
            let name = sum.var.name.split('#').next().unwrap_or("k");
            self.applied.push(Applied {
                rule: MAX_SUBTRACTED,
                from: exp_sum.to_string(),
                to: format!(
                    "exp(m)·{inside}, z[{name}] = {}, m = max over {name} of z[{name}]",
                    sum.exponent
                ),
            });
            self.shifts
                .push(Shift::new(sum.key, scores, sum.var.len, max));
        }
        Ok(match max_shift::shifts_any(&e, &self.shifts) {
            true => max_shift::shift(&e, &self.shifts),
            false => e,
        })
    }

    /// Every sum of `e` with a fresh variable.
    fn freshen(&mut self, e: &IExpr) -> IExpr {
        e.rename_bound(&mut |var| {
            self.fresh += 1;
            format!("{}#i{}", var.split('#').next().unwrap_or(var), self.fresh)
        })
    }

    /// The buffer holding `e` (inlined) over `out` — summed over `reduce`.
    fn make(&mut self, e: &IExpr, out: &[Var], reduce: &[Var]) -> Result<usize, LowerFailure> {
        let made_from = expression_key(e, out, reduce);
        let buffer = self.make_buffer(e, out, reduce, Reduction::Sum)?;
        self.made_from.entry(made_from).or_insert(buffer);
        Ok(buffer)
    }

    /// [`Planner::make`] without recording what the buffer was made from,
    /// reducing `reduce` by `reduction`.
    fn make_buffer(
        &mut self,
        e: &IExpr,
        out: &[Var],
        reduce: &[Var],
        reduction: Reduction,
    ) -> Result<usize, LowerFailure> {
        let domain: Vec<Var> = out.iter().chain(reduce).cloned().collect();
        let mut inline_exps = Vec::new();
        rewritable_exps(e, false, &mut inline_exps);
        let outer = std::mem::replace(&mut self.inline_exps, inline_exps);
        let body = match e {
            // A shared call is this step's whole body: hoist only inside it.
            IExpr::Call(f, a) if shared_call(*f) || (*f == Func::Exp && reduce.is_empty()) => {
                self.hoist(a, &domain).map(|a| IExpr::Call(*f, Box::new(a)))
            }
            _ => self.hoist(e, &domain),
        };
        self.inline_exps = outer;
        let body = body?;
        // Canonical form: the domain's variables by position.
        let positional: HashMap<String, Ix> = domain
            .iter()
            .enumerate()
            .map(|(k, v)| (v.name.clone(), Ix::Var(format!("#{k}"))))
            .collect();
        let shape: Vec<(usize, usize)> = domain.iter().map(|v| (v.from, v.len)).collect();
        let key = format!(
            "{}|{reduction:?}|{shape:?}|{:?}",
            out.len(),
            body.rename(&positional)
        );
        if let Some(&b) = self.memo.get(&key) {
            return Ok(b);
        }
        let mut loads = Vec::new();
        // Stand-in names of its own for every body, so that no two bodies of
        // a job share a stand-in; their symbols come from the job's pool
        // (`engine/pool.rs`), so the program does not depend on what the
        // process lowered before.
        let serial = self.engine.index_simplifications.get() + 1;
        self.engine.index_simplifications.set(serial);
        let prefix = format!("λ{serial}_");
        let scalar = self.scalar_body(&body, &domain, &prefix, &mut loads)?;
        let program = self.program(&scalar, &prefix, &loads)?;
        let buffer = self.tensors.len();
        let shape: Vec<usize> = out.iter().map(|v| v.len).collect();
        let len: usize = shape.iter().product();
        self.tensors.push(TensorLayout {
            name: format!("t{buffer}"),
            source: Source::Scratch,
            offset: self.stage.scratch,
            shape,
        });
        self.stage.scratch += len;
        self.stage.steps.push(Step {
            out: buffer,
            loops: domain.iter().map(|v| v.len).collect(),
            reduction,
            inputs: loads,
            body: program,
            level: self.level,
        });
        self.memo.insert(key, buffer);
        Ok(buffer)
    }

    /// `e` with its sums and its parts that vary over fewer of `domain`'s
    /// variables than it does replaced by buffers.
    fn hoist(&mut self, e: &IExpr, domain: &[Var]) -> Result<IExpr, LowerFailure> {
        if is_scaled_leaf(e) {
            return Ok(e.clone());
        }
        let varies = in_domain(e, domain);
        if let IExpr::Sum {
            var,
            from,
            to,
            body,
        } = e
        {
            let reduce = [Var::summed(var, *from, *to)];
            let b = self.make(body, &varies, &reduce)?;
            return Ok(buffer_entry(b, &varies));
        }
        if varies.len() < domain.len() {
            let b = self.make(e, &varies, &[])?;
            return Ok(buffer_entry(b, &varies));
        }
        Ok(match e {
            IExpr::Add(xs) | IExpr::Mul(xs) => {
                // Group the operands by the variables they vary over; a group
                // over fewer than all is one buffer.
                let mut groups: Vec<(Vec<String>, Vec<&IExpr>)> = Vec::new();
                for x in xs {
                    let names: Vec<String> =
                        in_domain(x, domain).into_iter().map(|v| v.name).collect();
                    match groups.iter_mut().find(|(n, _)| *n == names) {
                        Some((_, g)) => g.push(x),
                        None => groups.push((names, vec![x])),
                    }
                }
                let is_add = matches!(e, IExpr::Add(_));
                let rebuild = |parts: Vec<IExpr>| {
                    if is_add {
                        IExpr::Add(parts)
                    } else {
                        IExpr::Mul(parts)
                    }
                };
                let mut parts = Vec::new();
                for (names, group) in groups {
                    let worth = group.len() > 1 || group.iter().any(|x| !is_scaled_leaf(x));
                    if names.len() < domain.len() && worth {
                        let vars: Vec<Var> = domain
                            .iter()
                            .filter(|v| names.contains(&v.name))
                            .cloned()
                            .collect();
                        let whole = rebuild(group.into_iter().cloned().collect());
                        let b = self.make(&whole, &vars, &[])?;
                        parts.push(buffer_entry(b, &vars));
                    } else {
                        for x in group {
                            parts.push(self.hoist(x, domain)?);
                        }
                    }
                }
                rebuild(parts)
            }
            IExpr::Pow(a, b) => IExpr::Pow(
                Box::new(self.hoist(a, domain)?),
                Box::new(self.hoist(b, domain)?),
            ),
            IExpr::Call(f, _)
                if !domain.is_empty()
                    && (shared_call(*f) || (*f == Func::Exp && !self.inline_exps.contains(e))) =>
            {
                let b = self.make(e, &varies, &[])?;
                buffer_entry(b, &varies)
            }
            IExpr::Call(f, a) => IExpr::Call(*f, Box::new(self.hoist(a, domain)?)),
            _ => {
                return Err(LowerFailure::Internal(format!(
                    "cannot lower `{e}` into a loop"
                )));
            }
        })
    }

    /// The body as a scalar expression over stand-ins, one per load.
    fn scalar_body(
        &self,
        e: &IExpr,
        domain: &[Var],
        prefix: &str,
        loads: &mut Vec<Load>,
    ) -> Result<Expr, LowerFailure> {
        let axis = |i: &Ix, buffer: bool| -> Result<Axis, LowerFailure> {
            match i {
                Ix::Fixed(k) => Ok(Axis::Fixed(k.saturating_sub(1))),
                Ix::Var(v) => {
                    let var = domain.iter().position(|d| d.name == *v).ok_or_else(|| {
                        LowerFailure::Internal(format!("the index `{v}` is not bound"))
                    })?;
                    // Inputs are indexed by 1-based position, buffers by
                    // the loop's own count.
                    let shift = if buffer { 0 } else { domain[var].from - 1 };
                    Ok(Axis::Loop { var, shift })
                }
            }
        };
        let mut stand_in = |load: Load| -> Expr {
            let k = match loads.iter().position(|l| *l == load) {
                Some(k) => k,
                None => {
                    loads.push(load);
                    loads.len() - 1
                }
            };
            Expr::Var(format!("{prefix}{k}"))
        };
        Ok(match e {
            IExpr::Num(r) => Expr::Num(r.clone()),
            IExpr::Entry { tensor, indices } => {
                let (id, buffer) = match tensor.strip_prefix(BUFFER) {
                    Some(b) => (b.parse::<usize>().ok(), true),
                    None => (self.inputs.get(tensor).copied(), false),
                };
                let id = id.ok_or_else(|| {
                    LowerFailure::Internal(format!("unknown tensor `{tensor}` in a step"))
                })?;
                let index = indices
                    .iter()
                    .map(|i| axis(i, buffer))
                    .collect::<Result<_, _>>()?;
                stand_in(Load::Entry { tensor: id, index })
            }
            IExpr::Index(v) => stand_in(Load::Position(axis(&Ix::Var(v.clone()), false)?)),
            IExpr::Delta(a, b) => stand_in(Load::Delta(axis(a, false)?, axis(b, false)?)),
            IExpr::Add(xs) => Expr::Add(
                xs.iter()
                    .map(|x| self.scalar_body(x, domain, prefix, loads))
                    .collect::<Result<_, _>>()?,
            ),
            IExpr::Mul(xs) => Expr::Mul(
                xs.iter()
                    .map(|x| self.scalar_body(x, domain, prefix, loads))
                    .collect::<Result<_, _>>()?,
            ),
            IExpr::Pow(a, b) => Expr::Pow(
                Box::new(self.scalar_body(a, domain, prefix, loads)?),
                Box::new(self.scalar_body(b, domain, prefix, loads)?),
            ),
            IExpr::Call(f, a) => {
                Expr::Call(*f, Box::new(self.scalar_body(a, domain, prefix, loads)?))
            }
            IExpr::Sum { .. } | IExpr::Pick { .. } => {
                return Err(LowerFailure::Internal(format!(
                    "`{e}` left in a step's body"
                )));
            }
        })
    }

    /// The optimised, numerically stable program of a step's body.
    fn program(&self, body: &Expr, prefix: &str, loads: &[Load]) -> Result<Program, LowerFailure> {
        let engine = self.engine;
        let atom = self.stabilizer.apply(
            engine,
            engine.huge_powers_as_exponentials(engine.to_atom(body).as_view()),
        );
        if let Some(reason) = undefined_number(atom.as_view()) {
            return Err(LowerFailure::Undefined(format!(
                "a derivative is undefined once the definitions are substituted: it contains {reason}"
            )));
        }
        let params: Vec<Atom> = (0..loads.len())
            .map(|k| Atom::var(engine.var(&format!("{prefix}{k}"))))
            .collect();
        // In our own canonical form: the form Symbolica returns depends on
        // what the process evaluated before, and the build script's kernels
        // must be `hessforge generate`'s to the byte.
        Ok(engine
            .program(&[atom], &params, loads.len(), 0)?
            .canonical())
    }

    /// A factor of a Hessian product term that needs no step: ones, or a
    /// data tensor, a buffer or (a scalar) a constant read whole, `vars` its
    /// axes in order.
    fn read_where_it_is(&self, e: &IExpr, vars: &[Var]) -> Option<Factor> {
        let IExpr::Entry { tensor, indices } = e else {
            return (*e == IExpr::int(1)).then_some(None);
        };
        let (id, buffer) = match tensor.strip_prefix(BUFFER) {
            Some(b) => (b.parse::<usize>().ok()?, true),
            None => (*self.inputs.get(tensor)?, false),
        };
        let t = &self.tensors[id];
        let whole = t.shape.len() == vars.len()
            && (indices.iter().zip(vars).zip(&t.shape)).all(|((i, v), &n)| {
                *i == Ix::Var(v.name.clone()) && v.len == n && (buffer || v.from == 1)
            });
        let readable = match t.source {
            Source::Scratch | Source::Row => true,
            Source::Constants => vars.is_empty(),
            Source::Theta | Source::Direction => false,
        };
        (whole && readable).then_some(Some(id))
    }

    /// The weight and the row factor of a Hessian product term whose row
    /// side is the product `factors`: its scalar factors as the weight when
    /// the rest is read where it is (p(1 − p) times the data row x), so
    /// that no step writes their product; else the whole product in a
    /// buffer.
    fn weight_and_factor(
        &mut self,
        factors: Vec<IExpr>,
        rows: &[Var],
    ) -> Result<(Factor, Factor), LowerFailure> {
        let (scalar, indexed): (Vec<IExpr>, Vec<IExpr>) =
            (factors.iter().cloned()).partition(|f| f.free_indices().is_empty());
        let Some(u) = self.read_where_it_is(&product(indexed), rows) else {
            return Ok((None, Some(self.make(&product(factors), rows, &[])?)));
        };
        let scalar = product(scalar);
        let weight = match self.read_where_it_is(&scalar, &[]) {
            Some(w) => w,
            None => Some(self.make(&scalar, &[], &[])?),
        };
        Ok((weight, u))
    }

    /// The terms of one Hessian block.
    fn block(
        &mut self,
        e: &IExpr,
        row: usize,
        col: usize,
        rows: &[Var],
        cols: &[Var],
    ) -> Result<(), LowerFailure> {
        let row_names: Vec<&str> = rows.iter().map(|v| v.name.as_str()).collect();
        let col_names: Vec<&str> = cols.iter().map(|v| v.name.as_str()).collect();
        let mut dense = Vec::new();
        // (pairs, v factor) → the u parts to add, each a list of factors.
        let mut products: Vec<(ProductKey, Vec<Vec<IExpr>>)> = Vec::new();
        for factors in terms(e) {
            let mut pairs: Vec<(usize, usize)> = Vec::new();
            let mut rest = Vec::new();
            for f in &factors {
                if let IExpr::Delta(Ix::Var(a), Ix::Var(b)) = f {
                    let pair = match (
                        row_names.iter().position(|r| r == a),
                        col_names.iter().position(|c| c == b),
                        row_names.iter().position(|r| r == b),
                        col_names.iter().position(|c| c == a),
                    ) {
                        (Some(r), Some(c), _, _) | (_, _, Some(r), Some(c)) => Some((r, c)),
                        _ => None,
                    };
                    if let Some((r, c)) = pair
                        && !pairs.iter().any(|&(pr, pc)| pr == r || pc == c)
                    {
                        pairs.push((r, c));
                        continue;
                    }
                }
                rest.push(f.clone());
            }
            let rename: HashMap<String, Ix> = pairs
                .iter()
                .map(|&(r, c)| (cols[c].name.clone(), Ix::Var(rows[r].name.clone())))
                .collect();
            let (mut u, mut v, mut both) = (Vec::new(), Vec::new(), false);
            for f in &rest {
                let f = f.rename(&rename);
                let names = f.free_indices();
                let on_rows = names.iter().any(|n| row_names.contains(&n.as_str()));
                let on_cols = names.iter().any(|n| col_names.contains(&n.as_str()));
                match (on_rows, on_cols) {
                    (_, false) => u.push(f),
                    (false, true) => v.push(f),
                    (true, true) => both = true,
                }
            }
            if both {
                dense.push(IExpr::Mul(factors));
                continue;
            }
            let v = product(v);
            let v = match self.read_where_it_is(&v, cols) {
                Some(v) => v,
                None => Some(self.make(&v, cols, &[])?),
            };
            let key = (pairs, v);
            match products.iter_mut().find(|(k, _)| *k == key) {
                Some((_, us)) => us.push(u),
                None => products.push((key, vec![u])),
            }
        }
        for ((pairs, v), mut us) in products {
            let (weight, u) = match &mut us[..] {
                [factors] => self.weight_and_factor(std::mem::take(factors), rows)?,
                _ => {
                    let sum = IExpr::Add(us.into_iter().map(product).collect());
                    (None, Some(self.make(&sum, rows, &[])?))
                }
            };
            self.stage.hessian.push(HessianTerm::Product {
                row,
                col,
                pairs,
                weight,
                u,
                v,
            });
        }
        if !dense.is_empty() {
            let vars: Vec<Var> = rows.iter().chain(cols).cloned().collect();
            let value = self.make(&IExpr::Add(dense), &vars, &[])?;
            self.stage
                .hessian
                .push(HessianTerm::Dense { row, col, value });
        }
        Ok(())
    }
}

/// Whether a call inside a loop gets a buffer of its own, computed once per
/// row and read by every step that needs it (the network's tanh(zᵢ) appears
/// in the loss, the gradient and several Hessian blocks): the functions no
/// stable rewrite looks through. log and σ stay inline, and so does an exp
/// that a rewrite may still need to see ([`rewritable_exps`]); every other
/// exp inside a loop is shared too (softmax's e^{z_k}: in the sum of the
/// log-sum-exp, in the probabilities of the gradient and in each of their
/// tangents, once per entry instead of four times). Steps without loops
/// share their calls by value numbering in the generated code.
fn shared_call(f: Func) -> bool {
    matches!(
        f,
        Func::Tanh | Func::Sin | Func::Cos | Func::Tan | Func::Atan | Func::Softplus
    )
}

/// Collects into `out` the exp calls of `e` that a stable rewrite of the
/// step's body may need whole, and that therefore stay inline: those under
/// a log (log(1 + eᵘ) → softplus, log σ) and those that are a term of a sum
/// (eᵘ − 1 → expm1). The body of a sum over an index becomes a buffer of
/// its own, so the search stops there.
fn rewritable_exps(e: &IExpr, under_log: bool, out: &mut Vec<IExpr>) {
    match e {
        IExpr::Call(Func::Exp, a) => {
            if under_log {
                out.push(e.clone());
            }
            rewritable_exps(a, false, out);
        }
        IExpr::Call(Func::Log | Func::Log1p, a) => rewritable_exps(a, true, out),
        IExpr::Call(_, a) => rewritable_exps(a, false, out),
        IExpr::Add(xs) => {
            for x in xs {
                if matches!(x, IExpr::Call(Func::Exp, _)) {
                    out.push(x.clone());
                }
                rewritable_exps(x, under_log, out);
            }
        }
        IExpr::Mul(xs) => {
            for x in xs {
                rewritable_exps(x, under_log, out);
            }
        }
        IExpr::Pow(a, b) => {
            rewritable_exps(a, under_log, out);
            rewritable_exps(b, under_log, out);
        }
        IExpr::Pick { items, .. } => {
            for x in items {
                rewritable_exps(x, under_log, out);
            }
        }
        IExpr::Sum { .. } | IExpr::Num(_) | IExpr::Entry { .. } | IExpr::Index(_) => {}
        IExpr::Delta(..) => {}
    }
}

/// The delta pairs and the column buffer of a product term: terms alike
/// in both are one term with their row parts added.
type ProductKey = (Vec<(usize, usize)>, Factor);

fn product(factors: Vec<IExpr>) -> IExpr {
    match factors.len() {
        0 => IExpr::int(1),
        1 => factors.into_iter().next().unwrap_or_else(|| IExpr::int(1)),
        _ => IExpr::Mul(factors),
    }
}

/// `e` as a sum of products (each a list of factors): products of sums
/// multiplied out while that gives at most 64 terms.
fn terms(e: &IExpr) -> Vec<Vec<IExpr>> {
    match e {
        IExpr::Add(xs) => xs.iter().flat_map(terms).collect(),
        IExpr::Mul(xs) => {
            let mut out: Vec<Vec<IExpr>> = vec![Vec::new()];
            for x in xs {
                // A sum whose operands vary alike and hold no delta stays
                // one factor: (ŷ − y) is not multiplied out.
                let tx = match x {
                    IExpr::Add(ys) if alike(ys) => vec![vec![x.clone()]],
                    _ => terms(x),
                };
                if out.len() * tx.len() > 64 {
                    return vec![vec![e.clone()]];
                }
                out = out
                    .iter()
                    .flat_map(|a| {
                        tx.iter().map(move |b| {
                            let mut c = a.clone();
                            c.extend(b.iter().cloned());
                            c
                        })
                    })
                    .collect();
            }
            out
        }
        _ if e.is_int(0) => Vec::new(),
        _ => vec![vec![e.clone()]],
    }
}

/// Whether the operands vary over the same index variables and none is a
/// product with a Kronecker delta.
fn alike(xs: &[IExpr]) -> bool {
    let has_delta = |x: &IExpr| match x {
        IExpr::Delta(..) => true,
        IExpr::Mul(fs) => fs.iter().any(|f| matches!(f, IExpr::Delta(..))),
        _ => false,
    };
    let mut sets = xs.iter().map(|x| {
        let mut v = x.free_indices();
        v.sort();
        v
    });
    let first = sets.next();
    sets.all(|s| Some(&s) == first.as_ref()) && !xs.iter().any(has_delta)
}

/// `e` over `out`, summed over `reduce`, with its free indices named by
/// position and its bound ones in order: the same text for the same
/// expression whatever its indices are called.
fn expression_key(e: &IExpr, out: &[Var], reduce: &[Var]) -> String {
    let names: Vec<&str> = out.iter().chain(reduce).map(|v| v.name.as_str()).collect();
    let e = canonical_indices(e, &names);
    let shape: Vec<(usize, usize)> = out.iter().chain(reduce).map(|v| (v.from, v.len)).collect();
    format!("{}|{shape:?}|{e:?}", out.len())
}

/// `e` with the free indices `free` named by position (`#0`, `#1`, …) and
/// its bound ones in order (`#b1`, …): one form whatever its indices are
/// called.
fn canonical_indices(e: &IExpr, free: &[&str]) -> IExpr {
    let positional: HashMap<String, Ix> = (free.iter().enumerate())
        .map(|(k, v)| (v.to_string(), Ix::Var(format!("#{k}"))))
        .collect();
    let mut bound = 0;
    e.rename(&positional).rename_bound(&mut |_| {
        bound += 1;
        format!("#b{bound}")
    })
}

/// Each buffer of `names` named after the definition it holds, where the
/// name is a plain identifier not taken by another tensor (the generated
/// kernels name functions and variables after buffers).
fn name_buffers(tensors: &mut [TensorLayout], names: Vec<(usize, String)>) {
    for (buffer, name) in names {
        let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain && tensors.iter().all(|t| t.name != name) {
            tensors[buffer].name = name;
        }
    }
}

fn buffer_entry(buffer: usize, vars: &[Var]) -> IExpr {
    IExpr::entry(
        &format!("{BUFFER}{buffer}"),
        vars.iter().map(|v| Ix::Var(v.name.clone())).collect(),
    )
}

fn is_leaf(e: &IExpr) -> bool {
    matches!(
        e,
        IExpr::Num(_) | IExpr::Entry { .. } | IExpr::Index(_) | IExpr::Delta(..)
    )
}

/// A leaf or a number times a leaf (the −m of a shifted exponent): not
/// worth a buffer of its own.
fn is_scaled_leaf(e: &IExpr) -> bool {
    match e {
        IExpr::Mul(xs) => {
            matches!(xs.as_slice(), [IExpr::Num(_), x] | [x, IExpr::Num(_)] if is_leaf(x))
        }
        _ => is_leaf(e),
    }
}

/// The variables of `domain` that `e` varies over, in the domain's order.
fn in_domain(e: &IExpr, domain: &[Var]) -> Vec<Var> {
    let free = e.free_indices();
    domain
        .iter()
        .filter(|v| free.contains(&v.name))
        .cloned()
        .collect()
}
