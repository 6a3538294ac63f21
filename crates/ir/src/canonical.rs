//! A canonical form of a [`Program`]: the same computation written the same
//! way whatever order its instructions and the operands of + and × came in.
//!
//! The CAS that writes a program may return the same expression with its
//! terms in another order depending on what it evaluated before in the
//! process; the sums then round differently and the generated code differs
//! from one process to another. Here every value gets a structural hash
//! (its operation and its operands' hashes, those of + and × as a multiset),
//! the operands of + and × are ordered by hash, and the instructions are
//! emitted depth first from the outputs, each value once, into fresh
//! registers. Values no output needs are dropped.

use crate::{Instr, Operand, Program};

/// Mixes `word` into `h` (a 64-bit FNV-1a step over a whole word followed by
/// a multiply–xorshift, so that nearby integers spread).
fn mix(h: u64, word: u64) -> u64 {
    let h = (h ^ word).wrapping_mul(0x0000_0100_0000_01b3);
    (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

impl Program {
    /// This program in canonical form (see the module documentation): the
    /// same outputs from the same operations, with the operands of every
    /// sum and product in an order that depends only on what they compute.
    pub fn canonical(&self) -> Program {
        // Single assignment: node k is instruction k, its register operands
        // the nodes that last wrote them.
        let mut last: Vec<Option<u32>> = vec![None; self.n_regs as usize];
        let mut nodes: Vec<Instr> = Vec::with_capacity(self.instructions.len());
        let resolve = |o: Operand, last: &[Option<u32>]| match o {
            Operand::Reg(r) => Operand::Reg(last[r as usize].unwrap_or(u32::MAX)),
            other => other,
        };
        for instr in &self.instructions {
            let node = map_operands(instr, nodes.len() as u32, |o| resolve(o, &last));
            last[instr.dst() as usize] = Some(nodes.len() as u32);
            nodes.push(node);
        }
        let outputs: Vec<Operand> = self.outputs.iter().map(|&o| resolve(o, &last)).collect();

        // Structural hashes, operands before their users; then the operands
        // of + and × ordered by hash (a stable sort: equal hashes are equal
        // values, whose order does not matter).
        let mut hashes: Vec<u64> = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let h = hash_node(node, &hashes);
            hashes.push(h);
        }
        for node in &mut nodes {
            if let Instr::Add { args, .. } | Instr::Mul { args, .. } = node {
                args.sort_by_key(|o| operand_hash(o, &hashes));
            }
        }

        // Depth first from the outputs, each value once, into fresh registers.
        let mut emitted: Vec<Option<u32>> = vec![None; nodes.len()];
        let mut instructions = Vec::new();
        for out in &outputs {
            let Operand::Reg(root) = *out else { continue };
            let mut stack = vec![(root, false)];
            while let Some((n, expanded)) = stack.pop() {
                if emitted[n as usize].is_some() {
                    continue;
                }
                let node = &nodes[n as usize];
                if !expanded {
                    stack.push((n, true));
                    for o in node.operands().iter().rev() {
                        if let Operand::Reg(m) = *o {
                            stack.push((m, false));
                        }
                    }
                    continue;
                }
                let dst = instructions.len() as u32;
                instructions.push(map_operands(node, dst, |o| renamed(o, &emitted)));
                emitted[n as usize] = Some(dst);
            }
        }
        let outputs = outputs.into_iter().map(|o| renamed(o, &emitted)).collect();
        Program {
            n_regs: instructions.len() as u32,
            instructions,
            outputs,
        }
    }
}

/// `instr` writing `dst`, each operand passed through `f`.
pub(crate) fn map_operands(instr: &Instr, dst: u32, f: impl Fn(Operand) -> Operand) -> Instr {
    match instr {
        Instr::Add { args, .. } => Instr::Add {
            dst,
            args: args.iter().map(|&a| f(a)).collect(),
        },
        Instr::Mul { args, .. } => Instr::Mul {
            dst,
            args: args.iter().map(|&a| f(a)).collect(),
        },
        Instr::Neg { arg, .. } => Instr::Neg { dst, arg: f(*arg) },
        Instr::Div { num, den, .. } => Instr::Div {
            dst,
            num: f(*num),
            den: f(*den),
        },
        Instr::Powi { base, exp, .. } => Instr::Powi {
            dst,
            base: f(*base),
            exp: *exp,
        },
        Instr::Powf { base, exp, .. } => Instr::Powf {
            dst,
            base: f(*base),
            exp: f(*exp),
        },
        Instr::Call { func, arg, .. } => Instr::Call {
            dst,
            func: *func,
            arg: f(*arg),
        },
        Instr::Copy { src, .. } => Instr::Copy { dst, src: f(*src) },
        Instr::Max { left, right, .. } => Instr::Max {
            dst,
            left: f(*left),
            right: f(*right),
        },
    }
}

/// `o` with a node's register replaced by the register it was emitted into.
fn renamed(o: Operand, emitted: &[Option<u32>]) -> Operand {
    match o {
        Operand::Reg(m) => Operand::Reg(emitted[m as usize].unwrap_or(u32::MAX)),
        other => other,
    }
}

fn operand_hash(o: &Operand, hashes: &[u64]) -> u64 {
    match *o {
        Operand::Param(i) => mix(mix(SEED, 1), u64::from(i)),
        Operand::Data(i) => mix(mix(SEED, 2), u64::from(i)),
        Operand::Constant(i) => mix(mix(SEED, 3), u64::from(i)),
        Operand::Literal(x) => mix(mix(SEED, 4), x.to_bits()),
        Operand::Reg(n) => hashes.get(n as usize).copied().unwrap_or(SEED),
    }
}

fn hash_node(node: &Instr, hashes: &[u64]) -> u64 {
    let of = |o: &Operand| operand_hash(o, hashes);
    let (tag, extra) = match node {
        Instr::Add { .. } => (10, 0),
        Instr::Mul { .. } => (11, 0),
        Instr::Neg { .. } => (12, 0),
        Instr::Div { .. } => (13, 0),
        Instr::Powi { exp, .. } => (14, *exp as u64),
        Instr::Powf { .. } => (15, 0),
        Instr::Call { func, .. } => (16, *func as u64),
        Instr::Max { .. } => (17, 0),
        // A copy is the value it copies.
        Instr::Copy { src, .. } => return of(src),
    };
    let mut operands: Vec<u64> = node.operands().iter().map(of).collect();
    if matches!(
        node,
        Instr::Add { .. } | Instr::Mul { .. } | Instr::Max { .. }
    ) {
        operands.sort_unstable();
    }
    operands.into_iter().fold(mix(mix(SEED, tag), extra), mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &Program, data: &[f64]) -> Vec<f64> {
        let mut regs = vec![0.0; p.n_regs as usize];
        let val = |o: &Operand, regs: &[f64]| match *o {
            Operand::Data(i) => data[i as usize],
            Operand::Literal(x) => x,
            Operand::Reg(r) => regs[r as usize],
            _ => unreachable!("only data and literals here"),
        };
        for i in &p.instructions {
            let v = match i {
                Instr::Add { args, .. } => args.iter().fold(0.0, |s, a| s + val(a, &regs)),
                Instr::Mul { args, .. } => args.iter().fold(1.0, |s, a| s * val(a, &regs)),
                Instr::Neg { arg, .. } => -val(arg, &regs),
                Instr::Call { arg, .. } => val(arg, &regs).tanh(),
                _ => unreachable!("not used here"),
            };
            regs[i.dst() as usize] = v;
        }
        p.outputs.iter().map(|o| val(o, &regs)).collect()
    }

    /// x0·x1 + x2·x3 − x4, written in two orders with registers reused
    /// differently, and a dead instruction in one.
    fn two_orders() -> (Program, Program) {
        let (d, r) = (Operand::Data, Operand::Reg);
        let a = Program {
            n_regs: 3,
            instructions: vec![
                Instr::Mul {
                    dst: 0,
                    args: vec![d(0), d(1)],
                },
                Instr::Mul {
                    dst: 1,
                    args: vec![d(2), d(3)],
                },
                Instr::Neg { dst: 2, arg: d(4) },
                Instr::Add {
                    dst: 0,
                    args: vec![r(0), r(1), r(2)],
                },
            ],
            outputs: vec![r(0)],
        };
        let b = Program {
            n_regs: 4,
            instructions: vec![
                Instr::Call {
                    dst: 3,
                    func: crate::Func::Tanh,
                    arg: d(0),
                },
                Instr::Neg { dst: 0, arg: d(4) },
                Instr::Mul {
                    dst: 1,
                    args: vec![d(3), d(2)],
                },
                Instr::Mul {
                    dst: 2,
                    args: vec![d(1), d(0)],
                },
                Instr::Add {
                    dst: 1,
                    args: vec![r(0), r(2), r(1)],
                },
            ],
            outputs: vec![r(1)],
        };
        (a, b)
    }

    #[test]
    fn the_same_computation_in_any_order_has_one_canonical_form() {
        let (a, b) = two_orders();
        assert_ne!(a, b);
        let (ca, cb) = (a.canonical(), b.canonical());
        assert_eq!(ca, cb);
        assert_eq!(ca.canonical(), ca, "canonical twice is canonical once");
        assert_eq!(ca.instructions.len(), 4, "the dead tanh is dropped");
        let data = [0.3, -1.7, 2.5, 0.125, 1e-3];
        let want = run(&a, &data)[0];
        assert!((run(&ca, &data)[0] - want).abs() <= 1e-15 * want.abs().max(1.0));
        ca.validate(0, 5, 0).expect("a valid program");
    }
}
