//! A stage as Rust: its steps in order, the straight-line parts between
//! them kept in registers with their values numbered ([`Values`]), and
//! the returns at each output level.

use super::*;

/// Value numbering over the steps without loops of one stage function:
/// every load, arithmetic result and function value is computed once and
/// named (`aN` loads, `rN` results, `eN` = e^{−|x|}, `lN` = ln(1 + e^{−|x|})),
/// so that the steps that repeat a computation (σ(z) in p − y and in
/// p(1 − p); both softplus(±z) of the loss) share it. In lanes, σ(±x) and
/// softplus(±x) of the same x share e^{−|x|} and its logarithm, as the
/// straight-line kernels do (the same bits as separate calls).
pub(super) struct Values {
    pub(super) lanes: usize,
    /// A value's key (its operation and operands' names) → its name and
    /// whether it is in lanes.
    pub(super) known: HashMap<String, (Ident, bool)>,
    /// Values known to be −x, and x's name.
    pub(super) negation_of: HashMap<String, String>,
    pub(super) next: usize,
}

impl Values {
    pub(super) fn new(lanes: usize) -> Values {
        Values {
            lanes,
            known: HashMap::new(),
            negation_of: HashMap::new(),
            next: 0,
        }
    }

    /// The value of `key`, emitting `let <prefix>N: T = value;` into `out`
    /// the first time.
    pub(super) fn name(
        &mut self,
        key: String,
        prefix: &str,
        in_lanes: bool,
        value: impl FnOnce() -> TokenStream,
        out: &mut Vec<TokenStream>,
    ) -> (Ident, bool) {
        if let Some(v) = self.known.get(&key) {
            return v.clone();
        }
        let ident = format_ident!("{prefix}{}", self.next);
        self.next += 1;
        let value = value();
        let ty = if in_lanes { lane_type() } else { quote!(f64) };
        out.push(quote!(let #ident: #ty = #value;));
        self.known.insert(key, (ident.clone(), in_lanes));
        (ident, in_lanes)
    }

    /// The statements of a step without loops into `out`; its value's
    /// name and whether it is in lanes.
    pub(super) fn step(
        &mut self,
        m: &LoopProgram,
        step: &Step,
        with_row: bool,
        locals: &Locals,
        out: &mut Vec<TokenStream>,
    ) -> (Ident, bool) {
        let lanes = self.lanes;
        let lanes_fn = lane_path();
        let params: Vec<(Ident, bool)> = step
            .inputs
            .iter()
            .map(|l| {
                if let Load::Entry { tensor, .. } = l
                    && let Some(local) = locals.get(tensor)
                {
                    return local.clone();
                }
                if lanes > 0 && load_in_lanes(m, l, with_row) {
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
                    let value = quote!(#lanes_fn::load(&#slice[#at..]));
                    self.name(format!("load {value}"), "a", true, || value, out)
                } else {
                    let value = load_tokens(m, l);
                    self.name(format!("load {value}"), "a", false, || value, out)
                }
            })
            .collect();
        // Each register's current value.
        let mut regs: HashMap<u32, (Ident, bool)> = HashMap::new();
        // An operand: its tokens, its key, whether it is in lanes.
        let value_of = |o: &Operand,
                        regs: &HashMap<u32, (Ident, bool)>|
         -> (TokenStream, String, bool) {
            let named = |(ident, lane): &(Ident, bool)| (quote!(#ident), ident.to_string(), *lane);
            match *o {
                Operand::Param(k) | Operand::Data(k) | Operand::Constant(k) => {
                    named(&params[k as usize])
                }
                Operand::Reg(r) => named(&regs[&r]),
                Operand::Literal(v) => (operand(o), format!("{v:e}"), false),
            }
        };
        for ins in &step.body.instructions {
            let ops: Vec<(TokenStream, String, bool)> =
                ins.operands().iter().map(|o| value_of(o, &regs)).collect();
            let lane = ops.iter().any(|(_, _, l)| *l);
            let names = |sorted: bool| {
                let mut n: Vec<&str> = ops.iter().map(|(_, k, _)| k.as_str()).collect();
                if sorted {
                    n.sort_unstable();
                }
                n.join(",")
            };
            // A literal on the left of a sum or product is typed, as in `join`.
            let typed_first = match ins.operands().first() {
                Some(&Operand::Literal(v)) => Some(literal(v, true)),
                _ => None,
            };
            let tokens: Vec<&TokenStream> = ops
                .iter()
                .enumerate()
                .map(|(k, (t, _, _))| match &typed_first {
                    Some(typed) if k == 0 => typed,
                    _ => t,
                })
                .collect();
            let (key, value) = match ins {
                Instr::Add { .. } => (format!("add {}", names(true)), joined(&tokens, quote!(+))),
                Instr::Mul { .. } => (format!("mul {}", names(true)), joined(&tokens, quote!(*))),
                Instr::Neg { .. } => {
                    let a = tokens[0];
                    (format!("neg {}", names(false)), quote!(-#a))
                }
                Instr::Div { .. } => {
                    let (a, b) = (tokens[0], tokens[1]);
                    (format!("div {}", names(false)), quote!(#a / #b))
                }
                Instr::Max { .. } => {
                    let (a, b) = (tokens[0], tokens[1]);
                    (format!("max {}", names(true)), quote!(#a.max(#b)))
                }
                Instr::Powi { exp, .. } => {
                    let a = tokens[0];
                    (format!("powi{exp} {}", names(false)), quote!(#a.powi(#exp)))
                }
                Instr::Powf { .. } if lane => {
                    let (a, b) = (tokens[0], tokens[1]);
                    (
                        format!("powf {}", names(false)),
                        quote!(#lanes_fn::from(#a).powf(#b)),
                    )
                }
                Instr::Powf { .. } => {
                    let (a, b) = (tokens[0], tokens[1]);
                    (format!("powf {}", names(false)), quote!(#a.powf(#b)))
                }
                Instr::Call {
                    func: func @ (Func::Sigmoid | Func::Softplus),
                    ..
                } if lane => {
                    let (a, x) = (tokens[0].clone(), ops[0].1.clone());
                    let base = self.negation_of.get(&x).cloned().unwrap_or(x);
                    let (e, _) = self.name(
                        format!("exp_neg_abs {base}"),
                        "e",
                        true,
                        || quote!(#a.exp_neg_abs()),
                        out,
                    );
                    let value = if *func == Func::Sigmoid {
                        quote!(#a.sigmoid_with(#e))
                    } else {
                        let (l, _) =
                            self.name(format!("ln_1p {e}"), "l", true, || quote!(#e.ln_1p()), out);
                        quote!(#a.softplus_with(#l))
                    };
                    (format!("{} {}", func.name(), names(false)), value)
                }
                Instr::Call { func, .. } if lane => (
                    format!("{} {}", func.name(), names(false)),
                    crate::lane_call_tokens(*func, tokens[0].clone()),
                ),
                Instr::Call { func, .. } => (
                    format!("{} {}", func.name(), names(false)),
                    call(*func, tokens[0].clone()),
                ),
                Instr::Copy { .. } => {
                    let (t, k, l) = ops[0].clone();
                    let copied = match ins.operands().first() {
                        Some(Operand::Literal(_)) => {
                            self.name(format!("literal {k}"), "r", false, || t, out)
                        }
                        _ => (format_ident!("{k}"), l),
                    };
                    regs.insert(ins.dst(), copied);
                    continue;
                }
            };
            let negated = match ins {
                Instr::Neg { .. } => Some(ops[0].1.clone()),
                Instr::Mul { args, .. } => match args.as_slice() {
                    [Operand::Literal(m), _] if *m == -1.0 => Some(ops[1].1.clone()),
                    [_, Operand::Literal(m)] if *m == -1.0 => Some(ops[0].1.clone()),
                    _ => None,
                },
                _ => None,
            };
            let named = self.name(key, "r", lane, || value, out);
            if let Some(x) = negated {
                self.negation_of.insert(named.0.to_string(), x);
            }
            regs.insert(ins.dst(), named);
        }
        match step.body.outputs.first() {
            Some(o @ Operand::Literal(_)) => {
                let value = operand(o);
                self.name(format!("literal {value}"), "r", false, || value, out)
            }
            Some(o) => {
                let (_, k, l) = value_of(o, &regs);
                (format_ident!("{k}"), l)
            }
            None => self.name("literal 0".into(), "r", false, || quote!(0.0), out),
        }
    }
}

/// The stage's function: its steps in order, with a return after each
/// level. The steps without loops are written in place through [`Values`]
/// (each computation once), their values kept in local variables (`vN`,
/// for buffer N) that later steps read instead of the scratch vector;
/// every other step is a function of its own, and a scalar it reduces into
/// is read back into a local once. With `split` = k (a tangent model's
/// primal prefix), the function takes a `Phase`: the first k steps run
/// unless it is `Tangent`, the rest unless it is `Primal`, and the rest
/// read what the first k computed from the scratch, not from locals. A
/// tangent model's `sample` takes a `phase` even when its steps do not
/// split (`phase_always`): the runtime's `LoopTangent` passes one.
///
/// A tangent model's step that does not read v and is, token for token,
/// one of the model's own steps (`primal`: the model's step functions by
/// name) is not written again: the tangent stage calls the model's (in
/// scope through `use super::*`). When a tangent stage's statements before
/// its first level are the model's own stage's, it calls the model's stage
/// at `Outputs::Loss` instead, and what follows reads their values from
/// the scratch.
///
/// Returned apart: the step functions (module items, by name), the stage
/// function (an item of the model's trait impl), and the text of its
/// statements before its first level.
#[allow(clippy::too_many_arguments)]
pub(super) fn stage_fn(
    m: &LoopProgram,
    stage: &Stage,
    name: &Ident,
    with_row: bool,
    lanes: usize,
    split: Option<usize>,
    phase_always: bool,
    primal: Option<&Primal>,
    doc: &str,
) -> (Vec<(String, TokenStream)>, TokenStream, String) {
    let mut primal_stmts = Vec::new();
    let mut stmts = Vec::new();
    let mut steps = Vec::new();
    let mut current = Outputs::Loss;
    let mut locals = Locals::new();
    let mut values = Values::new(lanes);
    let lane_ty = lane_type();
    let lanes_fn = lane_path();
    // Where the statements of the first level end.
    let mut loss_level_end = None;
    // The steps before this index ran in an earlier step's loop nest.
    let mut fused_until = 0;
    for (k, step) in stage.steps.iter().enumerate() {
        if k < fused_until {
            continue;
        }
        if split == Some(k) {
            // The tangent half reads the primal values from the scratch:
            // nothing computed in the primal half is in scope.
            primal_stmts = std::mem::take(&mut stmts);
            loss_level_end = None;
            locals.clear();
            values = Values {
                next: values.next,
                ..Values::new(lanes)
            };
            current = Outputs::Loss;
        }
        if step.level != current {
            if loss_level_end.is_none() && current == Outputs::Loss {
                loss_level_end = Some(stmts.len());
                if primal.is_some() && split.is_none() {
                    // What follows may read the loss level from the scratch
                    // (see above).
                    locals.clear();
                    values = Values {
                        next: values.next,
                        ..Values::new(lanes)
                    };
                }
            }
            let rank = Literal::u8_unsuffixed(step.level.rank());
            stmts.push(quote!(if level.rank() < #rank { return; }));
            current = step.level;
        }
        let out = &m.tensors[step.out];
        let local = format_ident!("v{}", out.name);
        let target = if lanes > 0 {
            lane_index(out.offset, &[], &[])
        } else {
            flat(out.offset, &[], &[])
        };
        if step.loops.is_empty() {
            // The step's value is already a named local: stored from it, and
            // read by later steps under that name.
            let (value, in_lanes) = values.step(m, step, with_row, &locals, &mut stmts);
            stmts.push(store_tokens(quote!(#value), in_lanes, target, lanes));
            locals.insert(step.out, (value, in_lanes));
            continue;
        }
        // The elementwise steps that follow over the same loops run in
        // this step's loop nest (not across the tangent model's split).
        let mut group = vec![step];
        while let Some(next) = stage.steps.get(k + group.len()) {
            if split == Some(k + group.len()) || !fuses_with(m, &group, next) {
                break;
            }
            group.push(next);
        }
        fused_until = k + group.len();
        let f = step_fn_name(m, &group);
        let generic_w = if lanes > 0 { quote!(::<W>) } else { quote!() };
        let own = step_fn(m, &group, lanes, with_row);
        let shared = has_direction(m)
            && !group.iter().any(|s| reads_direction(m, s))
            && primal.and_then(|p| p.steps.get(&f.to_string())) == Some(&own.to_string());
        // A shared step is the model's function, in scope through the
        // tangent module's `use super::*`.
        if !shared {
            steps.push((f.to_string(), own));
        }
        let slices = step_slices(m, &group);
        stmts.push(quote!(#f #generic_w(#(#slices,)* s);));
        if out.shape.is_empty() {
            // A reduction into a scalar: read back once.
            let in_lanes = lanes > 0 && with_row;
            let value = if in_lanes {
                quote!(#lanes_fn::load(&s[#target..]))
            } else {
                quote!(s[#target])
            };
            let ty = if in_lanes {
                quote!(#lane_ty)
            } else {
                quote!(f64)
            };
            stmts.push(quote!(let #local: #ty = #value;));
            locals.insert(step.out, (local, in_lanes));
        }
    }
    let row = if with_row {
        quote!(x: &[f64],)
    } else {
        quote!()
    };
    let generic = if lanes > 0 {
        quote!(<const W: usize>)
    } else {
        quote!()
    };
    let direction = direction_param(has_direction(m));
    let text = |stmts: &[TokenStream]| quote!(#(#stmts)*).to_string();
    let loss_level = text(&stmts[..loss_level_end.unwrap_or(stmts.len())]);
    // The model's own stage at its first level, when these statements are
    // its statements there.
    let own_stage = |these: &[TokenStream]| -> Option<TokenStream> {
        let p = primal?;
        (p.loss_levels.get(&name.to_string())? == &text(these)).then(|| {
            let (ty, width) = (&p.ty, if lanes > 0 { quote!(::<W>) } else { quote!() });
            let x = with_row.then(|| quote!(x,));
            quote!(super::#ty::#name #width(Outputs::Loss, t, #x c, s);)
        })
    };
    let (phase, body) = match split {
        None => {
            let end = loss_level_end.unwrap_or(stmts.len());
            if let Some(call) = own_stage(&stmts[..end]) {
                stmts.splice(..end, [call]);
            }
            let phase = if phase_always {
                quote!(phase: Phase,)
            } else {
                quote!()
            };
            (phase, quote!(#(#stmts)*))
        }
        Some(k) => {
            if k == stage.steps.len() {
                primal_stmts = std::mem::take(&mut stmts);
            }
            if let Some(call) = own_stage(&primal_stmts) {
                primal_stmts = vec![call];
            }
            (
                quote!(phase: Phase,),
                quote! {
                    if phase != Phase::Tangent {
                        #(#primal_stmts)*
                    }
                    if phase == Phase::Primal {
                        return;
                    }
                    #(#stmts)*
                },
            )
        }
    };
    (
        steps,
        quote! {
            #[doc = #doc]
            #[inline(always)]
            fn #name #generic(#phase level: Outputs, t: &[f64], #row c: &[f64], #direction s: &mut [f64]) {
                #body
            }
        },
        loss_level,
    )
}

/// The model's own parts a tangent model calls instead of writing them
/// again.
pub(super) struct Primal {
    /// The model's type.
    pub(super) ty: Ident,
    /// The tensors its tangent model starts with
    /// ([`hessforge_ir::tangent::tangent_inputs`]).
    pub(super) inputs: Vec<hessforge_ir::loop_ir::TensorLayout>,
    /// Its step functions' text, by name.
    pub(super) steps: HashMap<String, String>,
    /// Its stage functions' statements before their first level, by the
    /// stage function's name.
    pub(super) loss_levels: HashMap<String, String>,
}
