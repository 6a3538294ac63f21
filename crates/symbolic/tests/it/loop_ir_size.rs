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

/// The index-form track — `derive` of a tensor model (the derivation, its
/// rewrites, the JSON document) and the loop IR — never builds the scalar
/// expressions, whose size grows with the tensors.
#[test]
fn the_index_form_track_builds_no_scalar_expression() {
    for m in [common::logistic(1000), common::mlp(16)] {
        let name = m.name.clone();
        lowered(&m);
        let mut d = hessforge_symbolic::derive_unexpanded(m).unwrap();
        d.rewrites = hessforge_symbolic::rewrites(&d).unwrap();
        let json =
            hessforge_derivation::render::render(&d, hessforge_derivation::render::Format::Json);
        assert!(json.contains("\"index_form\""), "{name}");
        assert!(
            !d.model.scalar.definitions_are_built(),
            "{name}: definitions"
        );
        assert!(!d.model.scalar.objective_is_built(), "{name}: loss");
    }
}
