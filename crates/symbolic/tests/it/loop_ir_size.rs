//! The loop IR's size does not grow with the tensors' lengths.

use crate::common;
use hessforge_ir::loop_ir::LoopProgram;
use hessforge_spec::Model;
use hessforge_symbolic::lower_loop_ir;

fn lowered(m: &Model) -> LoopProgram {
    lower_loop_ir(m).unwrap_or_else(|e| panic!("{}: {e}", m.name))
}

/// The program's size (steps, loads, instructions, terms) is the same for
/// every tensor length.
#[test]
fn the_loop_ir_does_not_grow_with_the_tensors() {
    let size = |t: &LoopProgram| {
        [&t.sample, &t.regularizer]
            .iter()
            .map(|s| {
                s.steps
                    .iter()
                    .map(|st| 1 + st.inputs.len() + st.body.instructions.len())
                    .sum::<usize>()
                    + s.gradient.len()
                    + s.hessian.len()
            })
            .sum::<usize>()
    };
    let small = size(&lowered(&common::logistic(3)));
    for f in [10, 1000, 10_000] {
        assert_eq!(size(&lowered(&common::logistic(f))), small, "F = {f}");
    }
    // Three hidden units, not two: with as many hidden units as inputs,
    // steps over different tensors of the same lengths can be the same step.
    let small = size(&lowered(&common::mlp(3)));
    for h in [16, 256] {
        assert_eq!(size(&lowered(&common::mlp(h))), small, "H = {h}");
    }
}
