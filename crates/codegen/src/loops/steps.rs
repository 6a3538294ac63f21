//! One step as Rust: its loop nest with literal trip counts, its
//! straight-line body, the store (or the sum of a reduction, jammed four
//! ways), and its doc comment.

use super::*;
use hessforge_ir::Program;
use hessforge_ir::loop_ir::TensorLayout;

/// How many entries of a reduction's innermost free index are summed side
/// by side ([`JammedSum`]).
pub(super) const JAM: usize = 4;

/// A reduction `out[…, i] = Σ_j f(…, i, j)` written with [`JAM`] entries of
/// `i` summed side by side in one sweep over `j` (unroll and jam): each
/// sum is a chain of dependent additions, and one chain at a time leaves
/// the adder waiting on its latency, where four independent chains keep
/// it busy and share the loads that do not depend on `i` (the data row of
/// W x). Every entry's additions stay in the same order, so the result has
/// the same bits as one entry at a time.
pub(super) struct JammedSum<'a, S: Fn(&Ident) -> TokenStream> {
    /// The free index jammed (`i{rank − 1}`) and its length.
    pub(super) var: Ident,
    pub(super) len: usize,
    pub(super) ty: &'a TokenStream,
    pub(super) zero: &'a TokenStream,
    /// How the terms combine (a sum, or their maximum).
    pub(super) reduction: Reduction,
    /// The statements of one term of the sum, with the free index bound,
    /// and its value.
    pub(super) term: (TokenStream, TokenStream),
    /// The store of one entry's sum (with the free index bound).
    pub(super) store: S,
}

impl<S: Fn(&Ident) -> TokenStream> JammedSum<'_, S> {
    /// The blocks of [`JAM`] entries and the plain loop over the rest
    /// (`one_entry`, the statements for one value of the index); `None`
    /// when the index is shorter than a block.
    fn tokens(
        &self,
        reduce: impl Fn(TokenStream) -> TokenStream,
        one_entry: &TokenStream,
    ) -> Option<TokenStream> {
        let blocks = self.len / JAM;
        if blocks == 0 {
            return None;
        }
        let (var, ty, zero) = (&self.var, self.ty, self.zero);
        let (statements, value) = &self.term;
        let jam = n(JAM);
        let combined = combine(self.reduction, quote!(*sum), value);
        let summed = reduce(quote! {
            for (k, sum) in sums.iter_mut().enumerate() {
                let #var = block + k;
                #statements
                *sum = #combined;
            }
        });
        let store = (self.store)(&format_ident!("sum"));
        let (blocks, done) = (n(blocks), n(blocks * JAM));
        let rest = (!self.len.is_multiple_of(JAM)).then(|| {
            let len = n(self.len);
            quote!(for #var in #done..#len { #one_entry })
        });
        Some(quote! {
            for block in 0..#blocks {
                let block = block * #jam;
                let mut sums: [#ty; #jam] = [#zero; #jam];
                #summed
                for (k, sum) in sums.into_iter().enumerate() {
                    let #var = block + k;
                    #store
                }
            }
            #rest
        })
    }
}

/// `acc` with a term combined in: `acc + term`, or `acc.max(term)` (a NaN
/// term dropped, as `f64::max` and the interpreter do).
fn combine(reduction: Reduction, acc: TokenStream, term: &TokenStream) -> TokenStream {
    match reduction {
        Reduction::Sum => {
            let term = operand_of(term);
            quote!(#acc + #term)
        }
        Reduction::Max => quote!(#acc.max(#term)),
    }
}

/// Whether a load differs from row to row: in a pass in lanes, a data entry
/// or a buffer of the per-sample stage.
pub(super) fn load_in_lanes(m: &LoopProgram, load: &Load, with_row: bool) -> bool {
    match load {
        Load::Entry { tensor, .. } => {
            let source = m.tensors[*tensor].source;
            source == Source::Row || (with_row && source == Source::Scratch)
        }
        Load::Position(_) | Load::Delta(..) => false,
    }
}

/// A step's statements, before they are placed: the loads (`pI`), the
/// body's registers, and the value of one iteration.
pub(super) struct StepParts {
    pub(super) loads: Vec<TokenStream>,
    pub(super) body: Vec<TokenStream>,
    pub(super) result: TokenStream,
    /// Whether the value differs from lane to lane (else it is an `f64`).
    pub(super) result_in_lanes: bool,
}

/// The parts of one step, for one row (`lanes` = 0) or for `lanes` rows at
/// once (every value that differs from row to row in a lane type, the rest
/// `f64`; rows and buffers laid out entry by entry, one value per lane).
pub(super) fn step_parts(m: &LoopProgram, step: &Step, lanes: usize, with_row: bool) -> StepParts {
    let lane_ty = lane_type();
    let lanes_fn = lane_path();
    let mut in_lanes = vec![false; step.inputs.len()];
    let loads: Vec<TokenStream> = step
        .inputs
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let p = format_ident!("p{k}");
            if lanes > 0 && load_in_lanes(m, l, with_row) {
                in_lanes[k] = true;
                let Load::Entry { tensor, index } = l else {
                    unreachable!("only entries are in lanes")
                };
                let t = &m.tensors[*tensor];
                let slice = if t.source == Source::Row {
                    quote!(x)
                } else {
                    quote!(s)
                };
                let at = lane_index(t.offset, index, &t.shape);
                quote!(let #p: #lane_ty = #lanes_fn::load(&#slice[#at..]);)
            } else {
                let value = load_tokens(m, l);
                quote!(let #p: f64 = #value;)
            }
        })
        .collect();
    // Whether each register's current value is in lanes.
    let mut reg_lanes = HashMap::<u32, bool>::new();
    let is_lanes = |o: &Operand, regs: &HashMap<u32, bool>| match *o {
        Operand::Param(k) | Operand::Data(k) | Operand::Constant(k) => {
            in_lanes.get(k as usize).copied().unwrap_or(false)
        }
        Operand::Reg(r) => regs.get(&r).copied().unwrap_or(false),
        Operand::Literal(_) => false,
    };
    let mut body = Vec::new();
    for ins in &step.body.instructions {
        let dst = format_ident!("r{}", ins.dst());
        let lane = ins.operands().iter().any(|o| is_lanes(o, &reg_lanes));
        let value = crate::instr_value(ins, operand, join, lane.then_some(&lanes_fn));
        reg_lanes.insert(ins.dst(), lane);
        body.push((
            ins.dst(),
            value.clone(),
            if lane {
                quote!(let #dst: #lane_ty = #value;)
            } else {
                quote!(let #dst: f64 = #value;)
            },
        ));
    }
    let result = step.body.outputs.first();
    let result_in_lanes = result.is_some_and(|o| is_lanes(o, &reg_lanes));
    // The last instruction's value, when it is the result, is written
    // where the result is used instead of into a register of its own.
    let last = body.last().map(|(dst, ..)| *dst);
    let result = match result {
        Some(&Operand::Reg(r)) if last == Some(r) => body.pop().map(|(_, value, _)| value),
        Some(o) => Some(operand(o)),
        None => None,
    };
    StepParts {
        loads,
        body: body.into_iter().map(|(.., statement)| statement).collect(),
        result: result.unwrap_or_else(|| quote!(0.0)),
        result_in_lanes,
    }
}

/// `value`, in parentheses unless it is one token (a name, a number): an
/// operand of a sum or the receiver of a method.
fn operand_of(value: &TokenStream) -> TokenStream {
    if value.clone().into_iter().count() == 1 {
        value.clone()
    } else {
        quote!((#value))
    }
}

/// `value` stored into the scratch entry at `target`; in lanes, one value
/// per lane (a value the same in every lane is splat).
pub(super) fn store_tokens(
    value: TokenStream,
    in_lanes: bool,
    target: TokenStream,
    lanes: usize,
) -> TokenStream {
    if lanes == 0 {
        return quote!(s[#target] = #value;);
    }
    let lanes_fn = lane_path();
    let value = if in_lanes {
        operand_of(&value)
    } else {
        quote!(#lanes_fn::splat(#value))
    };
    quote!(#value.store(&mut s[#target..]);)
}

/// Whether `next` can run in the loop nest of `group`, the consecutive
/// steps before it: all are elementwise (no summed loops) over the same
/// loops at the same level, and `next` reads what the group writes only at
/// the entry the iteration writes.
pub(super) fn fuses_with(m: &LoopProgram, group: &[&Step], next: &Step) -> bool {
    let elementwise =
        |s: &Step| !s.loops.is_empty() && s.loops.len() == m.tensors[s.out].shape.len();
    let first = group[0];
    elementwise(first)
        && elementwise(next)
        && next.loops == first.loops
        && next.level == first.level
        && next.inputs.iter().all(|l| match l {
            Load::Entry { tensor, index } if group.iter().any(|s| s.out == *tensor) => {
                Axis::is_each_loop(index)
            }
            _ => true,
        })
}

/// The function's name of a step, or of steps in one loop nest: `step_`
/// and the buffers written (`step_t16_t17`).
pub(super) fn step_fn_name(m: &LoopProgram, group: &[&Step]) -> Ident {
    let names: Vec<&str> = group
        .iter()
        .map(|s| m.tensors[s.out].name.as_str())
        .collect();
    format_ident!("step_{}", names.join("_"))
}

/// The function of one step, or of elementwise steps in one loop nest
/// ([`fuses_with`]; each iteration runs their bodies in order), for one
/// row or for `lanes` rows at once.
pub(super) fn step_fn(
    m: &LoopProgram,
    group: &[&Step],
    lanes: usize,
    with_row: bool,
) -> TokenStream {
    let docs = group.iter().map(|s| {
        let rank = m.tensors[s.out].shape.len();
        format!(" {}", step_summary(m, s, rank))
    });
    let fn_name = step_fn_name(m, group);
    let slices = step_slices(m, group);
    let generic = if lanes > 0 {
        quote!(<const W: usize>)
    } else {
        quote!()
    };
    let nest = match group {
        [step] if step.loops.len() > m.tensors[step.out].shape.len() => {
            reduction_nest(m, step, lanes, with_row)
        }
        _ => {
            // Elementwise: each step's body stores its entry; the bodies of
            // fused steps are blocks of their own (their names repeat).
            let bodies = group.iter().map(|step| {
                let out = &m.tensors[step.out];
                let StepParts {
                    loads,
                    body,
                    result,
                    result_in_lanes,
                } = step_parts(m, step, lanes, with_row);
                let store = store_tokens(result, result_in_lanes, entry_target(out, lanes), lanes);
                match group.len() {
                    1 => quote!(#(#loads)* #(#body)* #store),
                    _ => quote!({ #(#loads)* #(#body)* #store }),
                }
            });
            loop_nest(
                &group[0].loops,
                0..group[0].loops.len(),
                quote!(#(#bodies)*),
            )
        }
    };
    quote! {
        #(#[doc = #docs])*
        #[inline(always)]
        fn #fn_name #generic(#(#slices: &[f64],)* s: &mut [f64]) {
            #nest
        }
    }
}

/// Where an iteration stores its entry of `out`: at the indices of the
/// step's first loops (entry by entry, one value per lane, in lanes).
fn entry_target(out: &TensorLayout, lanes: usize) -> TokenStream {
    let all = Axis::each_loop(out.shape.len());
    if lanes > 0 {
        lane_index(out.offset, &all, &out.shape)
    } else {
        flat(out.offset, &all, &out.shape)
    }
}

/// `inner` inside the loops `range` of `loops` (`for i{k} in 0..loops[k]`),
/// outermost first.
fn loop_nest(loops: &[usize], range: std::ops::Range<usize>, inner: TokenStream) -> TokenStream {
    range.rev().fold(inner, |nest, k| {
        let (i, len) = (format_ident!("i{k}"), n(loops[k]));
        quote!(for #i in 0..#len { #nest })
    })
}

/// The loop nest of a step that sums over its last loops.
fn reduction_nest(m: &LoopProgram, step: &Step, lanes: usize, with_row: bool) -> TokenStream {
    let out = &m.tensors[step.out];
    let rank = out.shape.len();
    let StepParts {
        loads,
        body,
        result,
        result_in_lanes,
    } = step_parts(m, step, lanes, with_row);
    let target = entry_target(out, lanes);
    let wrap =
        |nest: TokenStream, range: std::ops::Range<usize>| loop_nest(&step.loops, range, nest);
    // A reduction sums into a local, stored once per entry: the same
    // additions in the same order as into the buffer, without a load and a
    // store per term.
    let ty = if lanes > 0 && result_in_lanes {
        lane_type()
    } else {
        quote!(f64)
    };
    let identity = match step.reduction {
        Reduction::Sum => quote!(0.0),
        Reduction::Max => quote!(f64::NEG_INFINITY),
    };
    let zero = if lanes > 0 && result_in_lanes {
        quote!(Lanes::<W>::splat(#identity))
    } else {
        identity
    };
    let one_entry = {
        let summed = wrap(
            {
                let combined = combine(step.reduction, quote!(sum), &result);
                quote!(#(#loads)* #(#body)* sum = #combined;)
            },
            rank..step.loops.len(),
        );
        let store = store_tokens(quote!(sum), result_in_lanes, target.clone(), lanes);
        quote!(let mut sum: #ty = #zero; #summed #store)
    };
    let jammed = (rank > 0).then(|| {
        let parts = JammedSum {
            var: format_ident!("i{}", rank - 1),
            len: step.loops[rank - 1],
            ty: &ty,
            zero: &zero,
            reduction: step.reduction,
            term: (quote!(#(#loads)* #(#body)*), result.clone()),
            store: |sum: &Ident| store_tokens(quote!(#sum), result_in_lanes, target.clone(), lanes),
        };
        parts.tokens(|summed| wrap(summed, rank..step.loops.len()), &one_entry)
    });
    match jammed.flatten() {
        Some(blocked) => wrap(blocked, 0..rank - 1),
        None => wrap(one_entry, 0..rank),
    }
}

/// Whether the model's steps read a direction v (a tangent model's do).
pub(super) fn has_direction(m: &LoopProgram) -> bool {
    m.tensors.iter().any(|t| t.source == Source::Direction)
}

/// Whether a step reads the direction v.
pub(super) fn reads_direction(m: &LoopProgram, step: &Step) -> bool {
    step.inputs.iter().any(|l| {
        matches!(l, Load::Entry { tensor, .. } if m.tensors[*tensor].source == Source::Direction)
    })
}

/// The parameter `v: &[f64],` of the step and stage functions of a model
/// whose steps read a direction (`direction`), else nothing.
/// The slices steps read besides the scratch `s`, in the order of their
/// function's parameters: θ (`t`), the row (`x`), the constants (`c`) and
/// the direction (`v`).
pub(super) fn step_slices(m: &LoopProgram, steps: &[&Step]) -> Vec<Ident> {
    let reads = |source: Source| {
        (steps.iter().flat_map(|s| &s.inputs))
            .any(|l| matches!(l, Load::Entry { tensor, .. } if m.tensors[*tensor].source == source))
    };
    [
        (Source::Theta, "t"),
        (Source::Row, "x"),
        (Source::Constants, "c"),
        (Source::Direction, "v"),
    ]
    .into_iter()
    .filter(|&(source, _)| reads(source))
    .map(|(_, name)| format_ident!("{name}"))
    .collect()
}

pub(super) fn direction_param(direction: bool) -> TokenStream {
    if direction {
        quote!(v: &[f64],)
    } else {
        quote!()
    }
}

/// What a step computes, in words: its loops and its loads.
pub(super) fn step_summary(m: &LoopProgram, step: &Step, rank: usize) -> String {
    let show = |a: &Axis| match *a {
        Axis::Loop { var, shift: 0 } => format!("i{var}"),
        Axis::Loop { var, shift } => format!("i{var}+{shift}"),
        Axis::Fixed(p) => p.to_string(),
    };
    let loads: Vec<String> = step
        .inputs
        .iter()
        .map(|l| match l {
            Load::Entry { tensor, index } if index.is_empty() => m.tensors[*tensor].name.clone(),
            Load::Entry { tensor, index } => format!(
                "{}[{}]",
                m.tensors[*tensor].name,
                index.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
            Load::Position(a) => format!("{} + 1", show(a)),
            Load::Delta(a, b) => format!("δ({}, {})", show(a), show(b)),
        })
        .collect();
    let n_loops = step.loops.len();
    let free: Vec<String> = (0..rank).map(|k| format!("i{k}")).collect();
    let target = if free.is_empty() {
        m.tensors[step.out].name.clone()
    } else {
        format!("{}[{}]", m.tensors[step.out].name, free.join(", "))
    };
    let ranges = |from: usize, to: usize| -> String {
        (from..to)
            .map(|k| format!("i{k} < {}", step.loops[k]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sum = if n_loops > rank {
        let op = match step.reduction {
            Reduction::Sum => "Σ",
            Reduction::Max => "max",
        };
        format!("{op} over {} of ", ranges(rank, n_loops))
    } else {
        String::new()
    };
    let each = if rank > 0 {
        format!(", for {}", ranges(0, rank))
    } else {
        String::new()
    };
    match formula(&step.body, &loads) {
        Some(f) => format!("`{target} = {sum}{f}{each}`."),
        None => {
            let count = step.body.instructions.len();
            format!(
                "`{target} = {sum}f({}){each}` ({count} instructions).",
                loads.join(", ")
            )
        }
    }
}

/// Longest formula a step's doc comment spells out; a longer body is
/// summarized as `f(its loads)`.
const FORMULA_CHARS: usize = 90;

/// A step's body as one infix formula over its loads' names
/// (`w[i0]·x[i0]`), or `None` when it is longer than [`FORMULA_CHARS`].
fn formula(body: &Program, loads: &[String]) -> Option<String> {
    // Each register's text and its binding strength: 1 a sum, 2 a product,
    // 3 an atom.
    let mut regs: HashMap<u32, (String, u8)> = HashMap::new();
    let text = |op: &Operand, regs: &HashMap<u32, (String, u8)>| -> Option<(String, u8)> {
        Some(match *op {
            Operand::Reg(r) => regs.get(&r)?.clone(),
            Operand::Literal(v) if v < 0.0 => (format!("({v})"), 3),
            Operand::Literal(v) => (format!("{v}"), 3),
            Operand::Param(i) | Operand::Data(i) | Operand::Constant(i) => {
                (loads.get(i as usize)?.clone(), 3)
            }
        })
    };
    let at_least = |(t, p): (String, u8), min: u8| if p < min { format!("({t})") } else { t };
    for ins in &body.instructions {
        let (dst, value) = match ins {
            Instr::Add { dst, args } => {
                let parts: Option<Vec<String>> =
                    args.iter().map(|a| Some(text(a, &regs)?.0)).collect();
                (*dst, (parts?.join(" + "), 1))
            }
            Instr::Mul { dst, args } => {
                let parts: Option<Vec<String>> = args
                    .iter()
                    .map(|a| Some(at_least(text(a, &regs)?, 2)))
                    .collect();
                (*dst, (parts?.join("·"), 2))
            }
            Instr::Neg { dst, arg } => (*dst, (format!("−{}", at_least(text(arg, &regs)?, 3)), 2)),
            Instr::Div { dst, num, den } => {
                let (num, den) = (
                    at_least(text(num, &regs)?, 2),
                    at_least(text(den, &regs)?, 3),
                );
                (*dst, (format!("{num}/{den}"), 2))
            }
            Instr::Max { dst, left, right } => {
                let (left, right) = (text(left, &regs)?.0, text(right, &regs)?.0);
                (*dst, (format!("max({left}, {right})"), 3))
            }
            Instr::Powi { dst, base, exp } => (
                *dst,
                (format!("{}^{exp}", at_least(text(base, &regs)?, 3)), 3),
            ),
            Instr::Powf { dst, base, exp } => {
                let (base, exp) = (
                    at_least(text(base, &regs)?, 3),
                    at_least(text(exp, &regs)?, 3),
                );
                (*dst, (format!("{base}^{exp}"), 3))
            }
            Instr::Call { dst, func, arg } => (
                *dst,
                (format!("{}({})", func.name(), text(arg, &regs)?.0), 3),
            ),
            Instr::Copy { dst, src } => (*dst, text(src, &regs)?),
        };
        if value.0.chars().count() > FORMULA_CHARS {
            return None;
        }
        regs.insert(dst, value);
    }
    Some(text(body.outputs.first()?, &regs)?.0)
}

/// `a op b op …` (0 for none).
pub(super) fn joined(parts: &[&TokenStream], op: TokenStream) -> TokenStream {
    let mut parts = parts.iter();
    let first = parts.next().map_or_else(|| quote!(0.0), |p| (*p).clone());
    parts.fold(first, |acc, p| quote!(#acc #op #p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hessforge_ir::Outputs;
    use hessforge_ir::loop_ir::Stage;

    fn at(vars: &[usize]) -> Vec<Axis> {
        vars.iter()
            .map(|&var| Axis::Loop { var, shift: 0 })
            .collect()
    }

    /// `out[…] = p0` over `loops`, reading `tensor` at `index`.
    fn copy(out: usize, loops: &[usize], tensor: usize, index: Vec<Axis>) -> Step {
        Step {
            out,
            loops: loops.to_vec(),
            reduction: Reduction::Sum,
            inputs: vec![Load::Entry { tensor, index }],
            body: Program {
                n_regs: 0,
                instructions: Vec::new(),
                outputs: vec![Operand::Param(0)],
            },
            level: Outputs::LossGradHess,
        }
    }

    /// x (a row of 2), and buffers a, b (4 × 2), c (4), d (2 × 4).
    fn model() -> LoopProgram {
        LoopProgram {
            name: "m".into(),
            params: Vec::new(),
            data: vec!["x1".into(), "x2".into()],
            constants: Vec::new(),
            constant_defaults: Vec::new(),
            tensors: vec![
                TensorLayout::new("x", Source::Row, 0, &[2]),
                TensorLayout::new("a", Source::Scratch, 0, &[4, 2]),
                TensorLayout::new("b", Source::Scratch, 8, &[4, 2]),
                TensorLayout::new("c", Source::Scratch, 16, &[4]),
                TensorLayout::new("d", Source::Scratch, 20, &[2, 4]),
            ],
            sample: Stage::default(),
            regularizer: Stage::default(),
            plans: Default::default(),
            tangent: None,
        }
    }

    #[test]
    fn elementwise_steps_over_the_same_loops_share_a_loop_nest() {
        let m = model();
        let a = copy(1, &[4, 2], 0, at(&[1]));
        // b[i, j] = a[i, j]: the entry this iteration wrote.
        assert!(fuses_with(&m, &[&a], &copy(2, &[4, 2], 1, at(&[0, 1]))));
        // b[i, j] = a[j, i]: an entry a later iteration writes.
        let transposed = copy(2, &[4, 2], 1, vec![Axis::Fixed(0), Axis::Fixed(1)]);
        assert!(!fuses_with(&m, &[&a], &transposed));
        // Other loops, another level, a reduction: not fused.
        assert!(!fuses_with(&m, &[&a], &copy(3, &[4], 0, at(&[0]))));
        let mut later = copy(2, &[4, 2], 0, at(&[1]));
        later.level = Outputs::LossGrad;
        assert!(!fuses_with(&m, &[&a], &later));
        let sum = copy(3, &[4, 2], 1, at(&[0, 1]));
        assert!(!fuses_with(&m, &[&sum], &copy(2, &[4, 2], 0, at(&[1]))));
    }

    #[test]
    fn fused_steps_are_one_function_with_each_formula() {
        let m = model();
        let (a, b) = (
            copy(1, &[4, 2], 0, at(&[1])),
            copy(2, &[4, 2], 1, at(&[0, 1])),
        );
        let f = step_fn(&m, &[&a, &b], 0, true).to_string();
        assert!(f.contains("fn step_a_b"), "{f}");
        assert!(f.contains("a[i0, i1] = x[i1]") && f.contains("b[i0, i1] = a[i0, i1]"));
        assert_eq!(f.matches("for i0 in").count(), 1, "{f}");
    }
}
