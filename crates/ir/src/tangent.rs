//! Hessian–vector products by forward-mode differentiation of the gradient's
//! steps: ∇²L·v = ∂ε ∇L(θ + εv)|₀, Pearlmutter's R-operator (1994), the
//! product JAX computes as `jvp(grad)`.
//!
//! [`tangent_model`] turns a [`LoopProgram`] into another whose "gradient"
//! is ∇²L·v: every step that computes a buffer the gradient depends on gets
//! a tangent step over the same loop nest (d Σ f = Σ df), whose body is the
//! dual-number derivative of the step's body, reading the tangents of its
//! inputs — the direction `v` (a [`Source::Direction`] tensor per parameter
//! tensor) for θ, the tangent buffers for buffers, nothing for data and
//! constants. The model keeps only the steps that the loss and the tangents
//! of the gradient buffers need (so no Hessian term is ever computed), laid
//! out afresh, and is evaluated at [`Outputs::LossGrad`] by the ordinary
//! passes: rows in lanes, per-lane sums, parallel chunks. Its cost is about
//! two gradients per product, where contracting the Hessian terms with v
//! builds every per-sample term first.
//!
//! The derivative rules are the textbook ones for each instruction; a
//! tangent that is identically zero (a step function, data only) is never
//! written, and each tangent body keeps only the instructions its result
//! needs. The Hessian-term contraction ([`LoopProgram::hess_vec`] on the
//! original model) is the oracle in the tests.

use crate::canonical::map_operands;
use crate::loop_ir::{
    Axis, GradientTerm, Load, LoopProgram, Reduction, Source, Stage, Step, TensorLayout,
};
use crate::{Algebra, Func, Instr, InvalidProgram, Operand, Outputs, Program};
use std::collections::{HashMap, HashSet};

/// The tensors a tangent model of `m` starts with: `m`'s parameters, data
/// and constants, then each parameter tensor's direction (`dw` for `w`,
/// laid out like it in v).
pub fn tangent_inputs(m: &LoopProgram) -> Vec<TensorLayout> {
    let inputs = m.tensors.iter().filter(|t| t.source != Source::Scratch);
    let directions =
        (m.tensors.iter().filter(|t| t.source == Source::Theta)).map(|t| TensorLayout {
            name: format!("d{}", t.name),
            source: Source::Direction,
            offset: t.offset,
            shape: t.shape.clone(),
        });
    inputs.cloned().chain(directions).collect()
}

/// The model whose [`Outputs::LossGrad`] pass gives L(θ) and ∇²L(θ)·v,
/// v read from its [`Source::Direction`] tensors (laid out like θ).
pub fn tangent_model(m: &LoopProgram) -> Result<LoopProgram, InvalidProgram> {
    // Parameters, data and constants keep their ids; then each parameter
    // tensor's direction; the stages' buffers are appended by `Layout`.
    let mut tensors = tangent_inputs(m);
    let inputs = (m.tensors.iter().enumerate()).filter(|(_, t)| t.source != Source::Scratch);
    let ids: HashMap<usize, usize> = inputs
        .enumerate()
        .map(|(new, (old, _))| (old, new))
        .collect();
    let params = (m.tensors.iter().enumerate()).filter(|(_, t)| t.source == Source::Theta);
    let direction: HashMap<usize, usize> = (params.enumerate())
        .map(|(k, (old, _))| (old, ids.len() + k))
        .collect();
    let mut stages = Vec::new();
    for stage in [&m.sample, &m.regularizer] {
        let mut layout = Layout {
            model: m,
            tensors: &mut tensors,
            ids: ids.clone(),
            direction: &direction,
            tangents: HashMap::new(),
            scratch: 0,
        };
        stages.push(layout.stage(stage));
    }
    let regularizer = stages.pop().unwrap_or_default();
    let sample = stages.pop().unwrap_or_default();
    let tangent = LoopProgram {
        name: m.name.clone(),
        params: m.params.clone(),
        data: m.data.clone(),
        constants: m.constants.clone(),
        constant_defaults: m.constant_defaults.clone(),
        tensors,
        sample,
        regularizer,
        plans: Default::default(),
        tangent: None,
    };
    tangent.validate()?;
    Ok(tangent)
}

/// How a tangent model's per-sample stage splits into the primal steps and
/// the tangent steps ([`crate::loop_ir::Phase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimalPrefix {
    /// The stage's first `steps` steps read neither the direction nor a
    /// tangent.
    pub steps: usize,
    /// They write scratch entries below `scratch` only, and no later step
    /// writes there: what a product at the same θ can read back.
    pub scratch: usize,
}

/// The primal prefix of a tangent model's per-sample stage ([`tangent_model`]
/// lays the primal steps and buffers out first); `None` when there is no
/// primal step, or when a later step writes below the primal buffers.
pub fn primal_prefix(tangent: &LoopProgram) -> Option<PrimalPrefix> {
    let steps = &tangent.sample.steps;
    // No tangent buffer is written before the first step that reads v.
    let reads_direction = |s: &Step| {
        s.inputs.iter().any(|l| {
            matches!(l, Load::Entry { tensor, .. }
                if tangent.tensors[*tensor].source == Source::Direction)
        })
    };
    let primal = steps
        .iter()
        .position(reads_direction)
        .unwrap_or(steps.len());
    if primal == 0 {
        return None;
    }
    let end = |s: &Step| {
        let t = &tangent.tensors[s.out];
        t.offset + t.len()
    };
    let scratch = steps[..primal].iter().map(end).max()?;
    if steps[primal..]
        .iter()
        .any(|s| tangent.tensors[s.out].offset < scratch)
    {
        return None;
    }
    Some(PrimalPrefix {
        steps: primal,
        scratch,
    })
}

/// Building one stage of the tangent model.
struct Layout<'a> {
    model: &'a LoopProgram,
    tensors: &'a mut Vec<TensorLayout>,
    /// Old tensor id → new id, for the tensors kept.
    ids: HashMap<usize, usize>,
    /// Old parameter tensor id → its direction's id.
    direction: &'a HashMap<usize, usize>,
    /// Old buffer id → its tangent buffer's new id.
    tangents: HashMap<usize, usize>,
    /// Scratch entries laid out so far.
    scratch: usize,
}

/// A step's tangent before it is placed: the body and its loads, in the old
/// model's tensor ids, with tangent loads marked.
struct TangentStep {
    /// The primal step.
    step: usize,
    inputs: Vec<TangentLoad>,
    body: Program,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TangentLoad {
    /// The primal step's load k.
    Primal(usize),
    /// The tangent of the primal step's load k (of θ or of a buffer).
    Tangent(usize),
    /// The primal step's own value at this entry, read from its buffer
    /// instead of computed again ([`tangent_body`]'s `reuse_value`).
    Value,
}

impl Layout<'_> {
    fn stage(&mut self, stage: &Stage) -> Stage {
        let m = self.model;
        let steps: Vec<&Step> = stage.steps.iter().filter(|s| s.level.rank() <= 1).collect();
        // Forward: which buffers have a tangent that is not identically 0.
        let mut active: HashSet<usize> = HashSet::new();
        let mut bodies: Vec<Option<TangentStep>> = Vec::new();
        for (k, s) in steps.iter().enumerate() {
            let tangent_of_load: Vec<bool> = s
                .inputs
                .iter()
                .map(|l| match l {
                    Load::Entry { tensor, .. } => {
                        m.tensors[*tensor].source == Source::Theta || active.contains(tensor)
                    }
                    Load::Position(_) | Load::Delta(..) => false,
                })
                .collect();
            // d exp(u) = exp(u) du, d tanh(u) = (1 − tanh² u) du: the
            // tangent of a step that calls a function and writes one entry
            // per iteration reads the value the step stored, rather than
            // calling the function again (the same bits: the same program).
            let reuse_value = s.loops.len() == m.tensors[s.out].shape.len()
                && s.body
                    .instructions
                    .iter()
                    .any(|i| matches!(i, Instr::Call { .. }));
            // A maximum has no tangent: what is computed with it does not
            // depend on its value (see `Reduction::Max`).
            let body = match s.reduction {
                Reduction::Sum => tangent_body(&s.body, &tangent_of_load, reuse_value),
                Reduction::Max => None,
            };
            if body.is_some() {
                active.insert(s.out);
            }
            bodies.push(body.map(|(body, inputs)| TangentStep {
                step: k,
                inputs,
                body,
            }));
        }
        // Backward: the tangents the gradient buffers need, and the primal
        // buffers those tangents and the loss need.
        let mut wanted: HashSet<usize> = stage
            .gradient
            .iter()
            .map(|g| g.value)
            .filter(|b| active.contains(b))
            .collect();
        let mut primal: HashSet<usize> = stage.loss.into_iter().collect();
        let mut keep_tangent = vec![false; steps.len()];
        for (k, s) in steps.iter().enumerate().rev() {
            if !wanted.contains(&s.out) {
                continue;
            }
            let Some(t) = &bodies[k] else { continue };
            keep_tangent[k] = true;
            for load in &t.inputs {
                match *load {
                    TangentLoad::Tangent(i) => {
                        if let Load::Entry { tensor, .. } = &s.inputs[i]
                            && m.tensors[*tensor].source == Source::Scratch
                        {
                            wanted.insert(*tensor);
                        }
                    }
                    TangentLoad::Primal(i) => {
                        if let Load::Entry { tensor, .. } = &s.inputs[i]
                            && m.tensors[*tensor].source == Source::Scratch
                        {
                            primal.insert(*tensor);
                        }
                    }
                    TangentLoad::Value => {
                        primal.insert(s.out);
                    }
                }
            }
        }
        let mut keep_primal = vec![false; steps.len()];
        for (k, s) in steps.iter().enumerate().rev() {
            if primal.contains(&s.out) {
                keep_primal[k] = true;
                for l in &s.inputs {
                    if let Load::Entry { tensor, .. } = l
                        && m.tensors[*tensor].source == Source::Scratch
                    {
                        primal.insert(*tensor);
                    }
                }
            }
        }
        // Lay out the kept buffers: the primal ones in order, then the
        // tangents in order.
        let mut out_steps = Vec::new();
        for (k, s) in steps.iter().enumerate() {
            if keep_primal[k] {
                let out = self.buffer(s.out, false);
                let inputs = s.inputs.iter().map(|l| self.load(l, false)).collect();
                out_steps.push(Step {
                    out,
                    loops: s.loops.clone(),
                    reduction: s.reduction,
                    inputs,
                    body: s.body.clone(),
                    level: s.level,
                });
            }
        }
        for (k, t) in bodies.into_iter().enumerate() {
            let Some(t) = t.filter(|_| keep_tangent[k]) else {
                continue;
            };
            let s = steps[t.step];
            let out = self.buffer(s.out, true);
            let inputs = t
                .inputs
                .iter()
                .map(|l| match *l {
                    TangentLoad::Primal(i) => self.load(&s.inputs[i], false),
                    TangentLoad::Tangent(i) => self.load(&s.inputs[i], true),
                    TangentLoad::Value => {
                        let rank = m.tensors[s.out].shape.len();
                        let index = Axis::each_loop(rank);
                        self.load(
                            &Load::Entry {
                                tensor: s.out,
                                index,
                            },
                            false,
                        )
                    }
                })
                .collect();
            out_steps.push(Step {
                out,
                loops: s.loops.clone(),
                reduction: Reduction::Sum,
                inputs,
                body: t.body,
                level: Outputs::LossGrad,
            });
        }
        let gradient = stage
            .gradient
            .iter()
            .filter_map(|g| {
                let value = *self.tangents.get(&g.value)?;
                Some(GradientTerm {
                    param: self.ids[&g.param],
                    value,
                    outer: None,
                })
            })
            .collect();
        Stage {
            scratch: self.scratch,
            steps: out_steps,
            loss: stage.loss.map(|l| self.ids[&l]),
            gradient,
            hessian: Vec::new(),
        }
    }

    /// The new id of buffer `old` (or of its tangent), laid out on first use.
    fn buffer(&mut self, old: usize, tangent: bool) -> usize {
        let known = if tangent {
            self.tangents.get(&old)
        } else {
            self.ids.get(&old)
        };
        if let Some(&id) = known {
            return id;
        }
        let t = &self.model.tensors[old];
        let id = self.tensors.len();
        self.tensors.push(TensorLayout {
            name: if tangent {
                format!("d{}", t.name)
            } else {
                t.name.clone()
            },
            source: Source::Scratch,
            offset: self.scratch,
            shape: t.shape.clone(),
        });
        self.scratch += t.len();
        if tangent {
            self.tangents.insert(old, id);
        } else {
            self.ids.insert(old, id);
        }
        id
    }

    /// A load of the primal step in the new ids, or the load of its tangent.
    fn load(&mut self, load: &Load, tangent: bool) -> Load {
        match load {
            Load::Entry { tensor, index } => {
                let source = self.model.tensors[*tensor].source;
                let tensor = match (tangent, source) {
                    (true, Source::Theta) => self.direction[tensor],
                    (true, _) => self.buffer(*tensor, true),
                    (false, Source::Scratch) => self.buffer(*tensor, false),
                    (false, _) => self.ids[tensor],
                };
                Load::Entry {
                    tensor,
                    index: index.clone(),
                }
            }
            other => other.clone(),
        }
    }
}

/// The forward-mode derivative of a step's body: a program whose one
/// output is d(output), reading the primal loads it still needs and the
/// tangents of the loads marked in `has_tangent`; `None` when the
/// derivative is identically 0. With `reuse_value`, the derivative reads
/// the body's own value as a load ([`TangentLoad::Value`]) wherever it
/// needs it, and the primal instructions only that value needed are
/// dropped.
fn tangent_body(
    body: &Program,
    has_tangent: &[bool],
    reuse_value: bool,
) -> Option<(Program, Vec<TangentLoad>)> {
    let n_loads = has_tangent.len();
    // The tangent of load k is read as parameter n_loads + k.
    let mut dual = Dual {
        instructions: body.instructions.clone(),
        next: body.n_regs,
        regs: HashMap::new(),
        loads: has_tangent
            .iter()
            .enumerate()
            .map(|(k, &t)| t.then_some(Operand::Param((n_loads + k) as u32)))
            .collect(),
    };
    for ins in &body.instructions {
        let d = dual.derivative(ins);
        dual.regs.insert(ins.dst(), d);
    }
    let mut out = dual.of(body.outputs.first()?)?;
    if reuse_value && let Some(&value @ Operand::Reg(_)) = body.outputs.first() {
        // The value is read as parameter 2 · n_loads.
        let stored = Operand::Param((2 * n_loads) as u32);
        let swap = |o: Operand| if o == value { stored } else { o };
        for ins in &mut dual.instructions[body.instructions.len()..] {
            *ins = map_operands(ins, ins.dst(), swap);
        }
        out = swap(out);
    }
    let program = Program {
        n_regs: dual.next,
        instructions: dual.instructions,
        outputs: vec![out],
    };
    Some(prune(program, n_loads))
}

/// Instructions being written: the primal body, then the tangents.
struct Dual {
    instructions: Vec<Instr>,
    next: u32,
    /// Each register's tangent (None: 0), for its latest write.
    regs: HashMap<u32, Option<Operand>>,
    /// Each load's tangent.
    loads: Vec<Option<Operand>>,
}

impl Dual {
    fn of(&self, o: &Operand) -> Option<Operand> {
        match *o {
            Operand::Param(k) => self.loads.get(k as usize).copied().flatten(),
            Operand::Reg(r) => self.regs.get(&r).copied().flatten(),
            Operand::Data(_) | Operand::Constant(_) | Operand::Literal(_) => None,
        }
    }

    fn emit(&mut self, make: impl FnOnce(u32) -> Instr) -> Operand {
        let dst = self.next;
        self.next += 1;
        self.instructions.push(make(dst));
        Operand::Reg(dst)
    }

    fn mul(&mut self, args: Vec<Operand>) -> Operand {
        if let [one] = args.as_slice() {
            return *one;
        }
        self.emit(|dst| Instr::Mul { dst, args })
    }

    fn sum(&mut self, terms: Vec<Operand>) -> Option<Operand> {
        match terms.as_slice() {
            [] => None,
            [one] => Some(*one),
            _ => Some(self.emit(|dst| Instr::Add { dst, args: terms })),
        }
    }

    fn call(&mut self, func: Func, arg: Operand) -> Operand {
        self.emit(|dst| Instr::Call { dst, func, arg })
    }

    /// The tangent of the register `ins` writes, from its operands'.
    fn derivative(&mut self, ins: &Instr) -> Option<Operand> {
        let r = Operand::Reg(ins.dst());
        match ins {
            Instr::Add { args, .. } => {
                let terms = args.iter().filter_map(|a| self.of(a)).collect();
                self.sum(terms)
            }
            Instr::Mul { args, .. } => {
                let mut terms = Vec::new();
                for (i, a) in args.iter().enumerate() {
                    if let Some(da) = self.of(a) {
                        let mut factors = vec![da];
                        factors.extend(
                            args.iter()
                                .enumerate()
                                .filter(|&(j, _)| j != i)
                                .map(|(_, o)| *o),
                        );
                        terms.push(self.mul(factors));
                    }
                }
                self.sum(terms)
            }
            Instr::Neg { arg, .. } => {
                let da = self.of(arg)?;
                Some(self.emit(|dst| Instr::Neg { dst, arg: da }))
            }
            Instr::Div { num, den, .. } => {
                // d(a/b) = (da − (a/b)·db) / b
                let (dn, dd) = (self.of(num), self.of(den));
                let mut terms: Vec<Operand> = dn.into_iter().collect();
                if let Some(dd) = dd {
                    let m = self.mul(vec![Operand::Literal(-1.0), r, dd]);
                    terms.push(m);
                }
                let top = self.sum(terms)?;
                let den = *den;
                Some(self.emit(|dst| Instr::Div { dst, num: top, den }))
            }
            Instr::Powi { base, exp, .. } => {
                let db = self.of(base)?;
                match *exp {
                    0 => None,
                    1 => Some(db),
                    n => {
                        let base = *base;
                        let q = self.emit(|dst| Instr::Powi {
                            dst,
                            base,
                            exp: n - 1,
                        });
                        Some(self.mul(vec![Operand::Literal(f64::from(n)), q, db]))
                    }
                }
            }
            Instr::Powf { base, exp, .. } => {
                // d(aᵇ) = b·a^(b−1)·da + aᵇ·ln(a)·db
                let (base, exp) = (*base, *exp);
                let mut terms = Vec::new();
                if let Some(da) = self.of(&base) {
                    let e1 = self.emit(|dst| Instr::Add {
                        dst,
                        args: vec![exp, Operand::Literal(-1.0)],
                    });
                    let q = self.emit(|dst| Instr::Powf { dst, base, exp: e1 });
                    terms.push(self.mul(vec![exp, q, da]));
                }
                if let Some(de) = self.of(&exp) {
                    let ln = self.call(Func::Log, base);
                    terms.push(self.mul(vec![r, ln, de]));
                }
                self.sum(terms)
            }
            Instr::Call { func, arg, .. } => {
                let da = self.of(arg)?;
                func.chain(self, *arg, r, da)
            }
            Instr::Copy { src, .. } => self.of(src),
            Instr::Max { left, right, .. } => {
                // d max(a, b) = db + step(a − b)·(da − db): the derivative
                // of the larger one (of b at a tie).
                let (left, right) = (*left, *right);
                let (da, db) = (self.of(&left), self.of(&right));
                if da.is_none() && db.is_none() {
                    return None;
                }
                let minus_right = self.mul(vec![Operand::Literal(-1.0), right]);
                let gap = self.emit(|dst| Instr::Add {
                    dst,
                    args: vec![left, minus_right],
                });
                let larger = self.call(Func::Step, gap);
                let zero = Operand::Literal(0.0);
                let minus_db = self.mul(vec![Operand::Literal(-1.0), db.unwrap_or(zero)]);
                let change = self.sum(vec![da.unwrap_or(zero), minus_db])?;
                let scaled = self.mul(vec![larger, change]);
                self.sum(db.into_iter().chain([scaled]).collect())
            }
        }
    }
}

/// The derivative rules of [`Func::chain`] as IR instructions: a sum with
/// a literal keeps the literal last, as the tangent's other sums do.
impl Algebra for Dual {
    type Term = Operand;

    fn int(&mut self, n: i64) -> Operand {
        Operand::Literal(n as f64)
    }

    fn half(&mut self) -> Operand {
        Operand::Literal(0.5)
    }

    fn add(&mut self, a: Operand, b: Operand) -> Operand {
        let args = match a {
            Operand::Literal(_) => vec![b, a],
            _ => vec![a, b],
        };
        self.emit(|dst| Instr::Add { dst, args })
    }

    fn mul(&mut self, a: Operand, b: Operand) -> Operand {
        Dual::mul(self, vec![a, b])
    }

    fn neg(&mut self, a: Operand) -> Operand {
        self.emit(|dst| Instr::Neg { dst, arg: a })
    }

    fn div(&mut self, a: Operand, b: Operand) -> Operand {
        self.emit(|dst| Instr::Div {
            dst,
            num: a,
            den: b,
        })
    }

    fn square(&mut self, a: Operand) -> Operand {
        Dual::mul(self, vec![a, a])
    }

    fn call(&mut self, f: Func, u: Operand) -> Operand {
        Dual::call(self, f, u)
    }
}

/// Only the instructions the output needs, and only the loads they read
/// (renumbered in order); parameter `n_loads + k` is the tangent of load k.
fn prune(program: Program, n_loads: usize) -> (Program, Vec<TangentLoad>) {
    let mut live: HashSet<u32> = HashSet::new();
    let mut reads: HashSet<u32> = HashSet::new();
    let mut note = |o: &Operand, live: &mut HashSet<u32>| match *o {
        Operand::Reg(r) => {
            live.insert(r);
        }
        Operand::Param(k) => {
            reads.insert(k);
        }
        _ => {}
    };
    for o in &program.outputs {
        note(o, &mut live);
    }
    let mut kept = Vec::new();
    for ins in program.instructions.into_iter().rev() {
        if live.remove(&ins.dst()) {
            for o in ins.operands() {
                note(&o, &mut live);
            }
            kept.push(ins);
        }
    }
    kept.reverse();
    let mut order: Vec<u32> = reads.into_iter().collect();
    order.sort_unstable();
    let renumber: HashMap<u32, u32> = order
        .iter()
        .enumerate()
        .map(|(new, &old)| (old, new as u32))
        .collect();
    let loads = order
        .iter()
        .map(|&k| {
            let k = k as usize;
            if k < n_loads {
                TangentLoad::Primal(k)
            } else if k < 2 * n_loads {
                TangentLoad::Tangent(k - n_loads)
            } else {
                TangentLoad::Value
            }
        })
        .collect();
    let map = |o: &mut Operand| {
        if let Operand::Param(k) = o {
            *k = renumber[k];
        }
    };
    for ins in &mut kept {
        match ins {
            Instr::Add { args, .. } | Instr::Mul { args, .. } => args.iter_mut().for_each(map),
            Instr::Neg { arg, .. } | Instr::Call { arg, .. } => map(arg),
            Instr::Div { num, den, .. } => {
                map(num);
                map(den);
            }
            Instr::Max { left, right, .. } => {
                map(left);
                map(right);
            }
            Instr::Powi { base, .. } => map(base),
            Instr::Powf { base, exp, .. } => {
                map(base);
                map(exp);
            }
            Instr::Copy { src, .. } => map(src),
        }
    }
    let mut outputs = program.outputs;
    outputs.iter_mut().for_each(map);
    let body = Program {
        n_regs: program.n_regs,
        instructions: kept,
        outputs,
    };
    (body, loads)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// d/dε of the body at (loads + ε·tangents), by central differences.
    fn numeric(body: &Program, loads: &[f64], tangents: &[f64]) -> f64 {
        let at = |eps: f64| {
            let x: Vec<f64> = loads
                .iter()
                .zip(tangents)
                .map(|(a, t)| a + eps * t)
                .collect();
            let mut regs = vec![0.0; body.n_regs as usize];
            let mut out = [0.0];
            body.run(&x, &[], &[], &mut regs, &mut out);
            out[0]
        };
        let h = 1e-6;
        (at(h) - at(-h)) / (2.0 * h)
    }

    fn exact(body: &Program, has: &[bool], loads: &[f64], tangents: &[f64]) -> f64 {
        exact_reusing(body, has, loads, tangents, false)
    }

    /// The tangent body's value; the step's own value, where it reads it,
    /// from the primal body.
    fn exact_reusing(
        body: &Program,
        has: &[bool],
        loads: &[f64],
        tangents: &[f64],
        reuse_value: bool,
    ) -> f64 {
        let (d, inputs) = tangent_body(body, has, reuse_value).expect("not identically 0");
        let value = {
            let mut regs = vec![0.0; body.n_regs as usize];
            let mut out = [0.0];
            body.run(loads, &[], &[], &mut regs, &mut out);
            out[0]
        };
        let x: Vec<f64> = inputs
            .iter()
            .map(|l| match *l {
                TangentLoad::Primal(k) => loads[k],
                TangentLoad::Tangent(k) => tangents[k],
                TangentLoad::Value => value,
            })
            .collect();
        let mut regs = vec![0.0; d.n_regs as usize];
        let mut out = [0.0];
        d.run(&x, &[], &[], &mut regs, &mut out);
        out[0]
    }

    fn reg(r: u32) -> Operand {
        Operand::Reg(r)
    }
    fn load(k: u32) -> Operand {
        Operand::Param(k)
    }

    #[test]
    fn every_instruction_matches_central_differences() {
        let mut instructions = vec![
            Instr::Mul {
                dst: 0,
                args: vec![load(0), load(1), Operand::Literal(0.5)],
            },
            Instr::Div {
                dst: 1,
                num: reg(0),
                den: load(2),
            },
            Instr::Powi {
                dst: 2,
                base: reg(1),
                exp: -2,
            },
            Instr::Powf {
                dst: 3,
                base: load(2),
                exp: load(0),
            },
            Instr::Neg {
                dst: 4,
                arg: reg(3),
            },
            Instr::Add {
                dst: 5,
                args: vec![reg(2), reg(4), Operand::Literal(2.0)],
            },
        ];
        let mut last = 5;
        for func in Func::all() {
            let arg = match func {
                Func::Log | Func::Log1p | Func::Sqrt => load(2),
                _ => reg(5),
            };
            instructions.push(Instr::Call {
                dst: last + 1,
                func,
                arg,
            });
            instructions.push(Instr::Add {
                dst: last + 2,
                args: vec![reg(last), reg(last + 1)],
            });
            last += 2;
        }
        instructions.push(Instr::Copy {
            dst: last + 1,
            src: reg(last),
        });
        let body = Program {
            n_regs: last + 2,
            instructions,
            outputs: vec![reg(last + 1)],
        };
        body.validate(3, 0, 0).expect("valid");
        let loads = [0.3, -0.7, 1.9];
        let tangents = [0.5, 0.25, -1.0];
        let has = [true, true, true];
        let (e, n) = (
            exact(&body, &has, &loads, &tangents),
            numeric(&body, &loads, &tangents),
        );
        assert!((e - n).abs() <= 1e-6 * n.abs().max(1.0), "{e} vs {n}");
        // Only load 1 moving: the others' tangents are not read.
        let only = [false, true, false];
        let (d, inputs) = tangent_body(&body, &only, false).expect("depends on load 1");
        assert!(!inputs.contains(&TangentLoad::Tangent(0)));
        assert!(d.validate(inputs.len(), 0, 0).is_ok());
        let e = exact(&body, &only, &loads, &tangents);
        let n = numeric(&body, &loads, &[0.0, 0.25, 0.0]);
        assert!((e - n).abs() <= 1e-6 * n.abs().max(1.0), "{e} vs {n}");
    }

    #[test]
    fn max_has_the_derivative_of_the_larger_argument() {
        // max(2·p0, p1 · p2): on either side of the switch, the tangent is
        // that of the larger argument, as central differences say.
        let body = Program {
            n_regs: 3,
            instructions: vec![
                Instr::Mul {
                    dst: 0,
                    args: vec![load(0), Operand::Literal(2.0)],
                },
                Instr::Mul {
                    dst: 1,
                    args: vec![load(1), load(2)],
                },
                Instr::Max {
                    dst: 2,
                    left: reg(0),
                    right: reg(1),
                },
            ],
            outputs: vec![reg(2)],
        };
        body.validate(3, 0, 0).expect("valid");
        let tangents = [0.5, 0.25, -1.0];
        let has = [true, true, true];
        for loads in [[1.0, 0.3, 0.4], [-1.0, 0.3, 0.4]] {
            let (e, n) = (
                exact(&body, &has, &loads, &tangents),
                numeric(&body, &loads, &tangents),
            );
            assert!(
                (e - n).abs() <= 1e-6 * n.abs().max(1.0),
                "{loads:?}: {e} vs {n}"
            );
        }
        // The interpreter's max drops a NaN operand, as `f64::max`.
        let nan = Program {
            n_regs: 1,
            instructions: vec![Instr::Max {
                dst: 0,
                left: Operand::Literal(f64::NAN),
                right: load(0),
            }],
            outputs: vec![reg(0)],
        };
        let (mut regs, mut out) = ([0.0], [0.0]);
        nan.run(&[3.0], &[], &[], &mut regs, &mut out);
        assert_eq!(out[0], 3.0);
    }

    #[test]
    fn a_function_value_is_read_back_not_computed_again() {
        // exp(p0 · p1) and tanh(p0 + p1): d exp(u) = exp(u) du and
        // d tanh(u) = (1 − tanh² u) du read the value the step stored.
        for func in [Func::Exp, Func::Tanh] {
            let body = Program {
                n_regs: 2,
                instructions: vec![
                    Instr::Mul {
                        dst: 0,
                        args: vec![load(0), load(1)],
                    },
                    Instr::Call {
                        dst: 1,
                        func,
                        arg: reg(0),
                    },
                ],
                outputs: vec![reg(1)],
            };
            let (loads, tangents, has) = ([0.4, -1.3], [0.7, 0.2], [true, true]);
            let (d, inputs) = tangent_body(&body, &has, true).expect("not 0");
            assert!(inputs.contains(&TangentLoad::Value), "{func:?}: {inputs:?}");
            assert!(
                !d.instructions
                    .iter()
                    .any(|i| matches!(i, Instr::Call { .. })),
                "{func:?} is not called again: {d:?}"
            );
            let (reused, computed) = (
                exact_reusing(&body, &has, &loads, &tangents, true),
                exact(&body, &has, &loads, &tangents),
            );
            assert_eq!(reused.to_bits(), computed.to_bits(), "{func:?}");
            let n = numeric(&body, &loads, &tangents);
            assert!(
                (reused - n).abs() <= 1e-6 * n.abs().max(1.0),
                "{reused} vs {n}"
            );
        }
    }

    #[test]
    fn identically_zero_tangents_are_none() {
        let body = Program {
            n_regs: 2,
            instructions: vec![
                Instr::Call {
                    dst: 0,
                    func: Func::Step,
                    arg: load(0),
                },
                Instr::Mul {
                    dst: 1,
                    args: vec![reg(0), load(1)],
                },
            ],
            outputs: vec![reg(1)],
        };
        assert!(tangent_body(&body, &[true, false], false).is_none());
        let (d, inputs) = tangent_body(&body, &[true, true], false).expect("through load 1");
        // step(p0)·dp1: the primal product is not computed.
        assert_eq!(inputs, [TangentLoad::Primal(0), TangentLoad::Tangent(1)]);
        assert_eq!(d.instructions.len(), 2);
    }
}
