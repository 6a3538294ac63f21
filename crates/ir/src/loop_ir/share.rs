//! Value numbering across steps: a step that computes what an earlier step
//! of its stage computed — the same loops and the same value of the same
//! loads (the operands of its sums and products in any order), into a
//! buffer of the same shape — is dropped, and everything that read its buffer
//! (later steps' loads, the loss, the gradient and Hessian terms) reads the
//! earlier one. Lowering writes each definition's derivative where it is
//! needed, so the same product (tanh′ · v in a network) can be written
//! several times; after this pass it is computed once per row. The
//! buffers no step writes any more are then dropped and the scratch laid
//! out again. A step that only copies a buffer into one of its shape is
//! dropped the same way, its readers reading the buffer.

use super::*;
use std::collections::{HashMap, HashSet};

impl LoopProgram {
    /// Drop every step that repeats an earlier step of its stage (see the
    /// module's doc). A repeat needed at a lower output level than the
    /// step it repeats is kept (the earlier step would not run there).
    pub fn share_identical_steps(&mut self) {
        let tensors = &self.tensors;
        share_in(&mut self.sample, tensors);
        share_in(&mut self.regularizer, tensors);
        self.drop_unwritten_buffers();
    }

    /// Drop the buffers no step writes (the repeats [`share_in`] dropped)
    /// and lay each stage's scratch out again, its buffers in order.
    fn drop_unwritten_buffers(&mut self) {
        let written: HashSet<usize> = (self.sample.steps.iter())
            .chain(&self.regularizer.steps)
            .map(|s| s.out)
            .collect();
        let keep: Vec<bool> = (self.tensors.iter().enumerate())
            .map(|(k, t)| t.source != Source::Scratch || written.contains(&k))
            .collect();
        self.retain_tensors(&keep);
        for stage in [&mut self.sample, &mut self.regularizer] {
            let mut order: Vec<usize> = stage.steps.iter().map(|s| s.out).collect();
            order.sort_unstable();
            stage.scratch = 0;
            for b in order {
                self.tensors[b].offset = stage.scratch;
                stage.scratch += self.tensors[b].len();
            }
        }
    }

    /// Keep the tensors `keep` marks, in order, and number every reference
    /// to them (steps, loss, gradient and Hessian terms) again; the layouts
    /// do not change. Nothing may refer to a tensor that is dropped.
    pub fn retain_tensors(&mut self, keep: &[bool]) {
        let mut new_index = vec![usize::MAX; self.tensors.len()];
        let mut kept = Vec::with_capacity(self.tensors.len());
        for (k, t) in std::mem::take(&mut self.tensors).into_iter().enumerate() {
            if keep[k] {
                new_index[k] = kept.len();
                kept.push(t);
            }
        }
        self.tensors = kept;
        let renumbered = |b: &mut usize| *b = new_index[*b];
        for stage in [&mut self.sample, &mut self.regularizer] {
            for step in &mut stage.steps {
                renumbered(&mut step.out);
                for load in &mut step.inputs {
                    if let Load::Entry { tensor, .. } = load {
                        renumbered(tensor);
                    }
                }
            }
            stage.output_tensors_mut().into_iter().for_each(renumbered);
        }
    }

    /// What the runtime of a generated kernel reads of the program: its
    /// layouts and terms without the steps (the generated code runs them),
    /// and of the buffers only those the terms read.
    pub fn plan_without_steps(&self) -> LoopProgram {
        let mut plan = LoopProgram {
            sample: Stage {
                steps: Vec::new(),
                ..self.sample.clone()
            },
            regularizer: Stage {
                steps: Vec::new(),
                ..self.regularizer.clone()
            },
            tangent: None,
            plans: Default::default(),
            ..self.clone()
        };
        let mut read = vec![false; plan.tensors.len()];
        for stage in [&mut plan.sample, &mut plan.regularizer] {
            for b in stage.output_tensors_mut() {
                read[*b] = true;
            }
        }
        let keep: Vec<bool> = (plan.tensors.iter().zip(&read))
            .map(|(t, &read)| t.source != Source::Scratch || read)
            .collect();
        plan.retain_tensors(&keep);
        plan
    }
}

fn share_in(stage: &mut Stage, tensors: &[TensorLayout]) {
    let mut same_as: HashMap<usize, usize> = HashMap::new();
    let mut first: HashMap<String, usize> = HashMap::new();
    let mut kept: Vec<Step> = Vec::with_capacity(stage.steps.len());
    for mut step in std::mem::take(&mut stage.steps) {
        for load in &mut step.inputs {
            if let Load::Entry { tensor, .. } = load {
                *tensor = *same_as.get(tensor).unwrap_or(tensor);
            }
        }
        merge_repeated_loads(&mut step);
        if let Some(source) = copied_buffer(&step, tensors) {
            same_as.insert(step.out, source);
            continue;
        }
        let key = format!(
            "{:?} {:?} {:?} {}",
            step.reduction,
            step.loops,
            tensors[step.out].shape,
            value_key(&step.body, &step.inputs)
        );
        match first.get(&key) {
            Some(&k) if kept[k].level.rank() <= step.level.rank() => {
                same_as.insert(step.out, kept[k].out);
            }
            _ => {
                first.insert(key, kept.len());
                kept.push(step);
            }
        }
    }
    stage.steps = kept;
    for b in stage.output_tensors_mut() {
        *b = *same_as.get(b).unwrap_or(b);
    }
}

impl Stage {
    /// Every reference to a tensor in what the stage outputs: the loss,
    /// each gradient term's parameter, value and outer factors, each
    /// Hessian term's parameters and buffers — to read or to renumber.
    fn output_tensors_mut(&mut self) -> Vec<&mut usize> {
        let mut refs: Vec<&mut usize> = self.loss.iter_mut().collect();
        for g in &mut self.gradient {
            refs.extend([&mut g.param, &mut g.value]);
            if let Some(outer) = &mut g.outer {
                refs.extend([&mut outer.u, &mut outer.v]);
            }
        }
        for h in &mut self.hessian {
            match h {
                HessianTerm::Dense { row, col, value } => refs.extend([row, col, value]),
                HessianTerm::Product {
                    row,
                    col,
                    weight,
                    u,
                    v,
                    ..
                } => {
                    refs.extend([row, col]);
                    refs.extend([weight, u, v].into_iter().flatten());
                }
            }
        }
        refs
    }
}

/// The buffer a step copies entry by entry into a buffer of its shape
/// (`t43[i] = h[i]`), whose readers can read it instead. Only a buffer:
/// the loss and the gradient terms read buffers (the lowering writes no
/// copy of the data row for a Hessian term, which reads the row itself).
fn copied_buffer(step: &Step, tensors: &[TensorLayout]) -> Option<usize> {
    let [Load::Entry { tensor, index }] = step.inputs.as_slice() else {
        return None;
    };
    let (from, to) = (&tensors[*tensor], &tensors[step.out]);
    let identity = step.loops.len() == to.shape.len() && Axis::is_each_loop(index);
    let value = match step.body.instructions.as_slice() {
        [] => step.body.outputs.first(),
        [Instr::Copy { dst, src }] if step.body.outputs == [Operand::Reg(*dst)] => Some(src),
        _ => None,
    };
    let reads_it = matches!(
        value,
        Some(Operand::Param(0) | Operand::Data(0) | Operand::Constant(0))
    );
    (identity && reads_it && from.source == Source::Scratch && from.shape == to.shape)
        .then_some(*tensor)
}

/// Read each load of a step once: two loads of buffers found to be the
/// same become one input of its body.
fn merge_repeated_loads(step: &mut Step) {
    let mut inputs: Vec<Load> = Vec::with_capacity(step.inputs.len());
    let new_index: Vec<u32> = (step.inputs.iter())
        .map(|load| match inputs.iter().position(|l| l == load) {
            Some(k) => k as u32,
            None => {
                inputs.push(load.clone());
                inputs.len() as u32 - 1
            }
        })
        .collect();
    if inputs.len() == step.inputs.len() {
        return;
    }
    step.inputs = inputs;
    let body = &mut step.body;
    let reads = (body.instructions.iter_mut())
        .flat_map(|i| i.operands_mut())
        .chain(body.outputs.iter_mut());
    for op in reads {
        if let Operand::Param(k) | Operand::Data(k) | Operand::Constant(k) = op {
            *k = new_index[*k as usize];
        }
    }
}

/// A step's value as one expression over its loads, the operands of every
/// sum and product in sorted order: two steps whose bodies Symbolica wrote
/// with their terms or their loads in another order (it orders symbols by
/// when the process first saw them) have the same key.
fn value_key(body: &Program, inputs: &[Load]) -> String {
    let mut regs: HashMap<u32, String> = HashMap::new();
    let text = |op: &Operand, regs: &HashMap<u32, String>| match *op {
        Operand::Reg(r) => regs.get(&r).cloned().unwrap_or_default(),
        Operand::Literal(v) => format!("{v:e}"),
        Operand::Param(k) | Operand::Data(k) | Operand::Constant(k) => {
            format!("{:?}", inputs.get(k as usize))
        }
    };
    let sorted = |args: &[Operand], regs: &HashMap<u32, String>| {
        let mut parts: Vec<String> = args.iter().map(|a| text(a, regs)).collect();
        parts.sort_unstable();
        parts.join(", ")
    };
    for ins in &body.instructions {
        let value = match ins {
            Instr::Add { args, .. } => format!("add({})", sorted(args, &regs)),
            Instr::Mul { args, .. } => format!("mul({})", sorted(args, &regs)),
            Instr::Copy { src, .. } => text(src, &regs),
            other => {
                let name = format!("{other:?}");
                let name = name
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let operands: Vec<String> =
                    other.operands().iter().map(|o| text(o, &regs)).collect();
                match other {
                    Instr::Powi { exp, .. } => format!("{name}{exp}({})", operands.join(", ")),
                    Instr::Call { func, .. } => format!("{}({})", func.name(), operands.join(", ")),
                    _ => format!("{name}({})", operands.join(", ")),
                }
            }
        };
        regs.insert(ins.dst(), value);
    }
    let outputs: Vec<String> = body.outputs.iter().map(|o| text(o, &regs)).collect();
    outputs.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `out[i] = p0·p0` (`square`) or `out[i] = p0`, reading `tensor[i]`.
    fn step(out: usize, tensor: usize, square: bool) -> Step {
        let index = vec![Axis::Loop { var: 0, shift: 0 }];
        let (instructions, outputs) = if square {
            let args = vec![Operand::Param(0), Operand::Param(0)];
            (vec![Instr::Mul { dst: 0, args }], vec![Operand::Reg(0)])
        } else {
            (Vec::new(), vec![Operand::Param(0)])
        };
        Step {
            out,
            loops: vec![3],
            reduction: Reduction::Sum,
            inputs: vec![Load::Entry { tensor, index }],
            body: Program {
                n_regs: instructions.len() as u32,
                instructions,
                outputs,
            },
            level: Outputs::LossGradHess,
        }
    }

    #[test]
    fn a_copy_of_a_buffer_is_read_from_the_buffer_and_a_copy_of_the_row_stays() {
        // w (θ), x (a row of 3); a = x², b = a (a copy), c = x (a copy of
        // the row); the Hessian term reads b and c.
        let mut m = LoopProgram {
            name: "m".into(),
            params: vec!["w1".into(), "w2".into(), "w3".into()],
            data: vec!["x1".into(), "x2".into(), "x3".into()],
            constants: Vec::new(),
            constant_defaults: Vec::new(),
            tensors: vec![
                TensorLayout::new("w", Source::Theta, 0, &[3]),
                TensorLayout::new("x", Source::Row, 0, &[3]),
                TensorLayout::new("a", Source::Scratch, 0, &[3]),
                TensorLayout::new("b", Source::Scratch, 3, &[3]),
                TensorLayout::new("c", Source::Scratch, 6, &[3]),
            ],
            sample: Stage {
                scratch: 9,
                steps: vec![step(2, 1, true), step(3, 2, false), step(4, 1, false)],
                loss: None,
                gradient: Vec::new(),
                hessian: vec![HessianTerm::Product {
                    row: 0,
                    col: 0,
                    pairs: Vec::new(),
                    weight: None,
                    u: Some(3),
                    v: Some(4),
                }],
            },
            regularizer: Stage::default(),
            plans: Default::default(),
            tangent: None,
        };
        m.share_identical_steps();
        let names: Vec<&str> = m.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["w", "x", "a", "c"]);
        assert_eq!(m.sample.steps.len(), 2);
        assert_eq!(m.sample.scratch, 6);
        let HessianTerm::Product { u, v, .. } = m.sample.hessian[0] else {
            panic!("a product term")
        };
        let name = |f: Factor| f.map(|b| m.tensors[b].name.as_str());
        assert_eq!((name(u), name(v)), (Some("a"), Some("c")));
        m.validate().expect("a valid program");
    }
}
