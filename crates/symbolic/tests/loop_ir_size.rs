//! The loop IR's size does not grow with the tensors' lengths. A binary of
//! its own: the size is counted on programs Symbolica has put in canonical
//! order, which follows the order its symbols were first seen in the
//! process; beside other tests lowering other models on other threads,
//! that order (and a count of instructions after value numbering) changed
//! from run to run.

#[path = "it/common.rs"]
mod common;
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
    // The first network lowered in the process sees Symbolica's symbols in
    // another order than the next ones, and value numbering across steps
    // finds other repeats in it: it is lowered once before the sizes are
    // compared. Three hidden units, not two: with as many hidden units as
    // inputs, steps over different tensors of the same lengths can be the
    // same step.
    lowered(&common::mlp(2));
    let small = size(&lowered(&common::mlp(3)));
    for h in [16, 256] {
        assert_eq!(size(&lowered(&common::mlp(h))), small, "H = {h}");
    }
}
