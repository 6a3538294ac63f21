//! Lowering a derivation to the IR: inline the intermediates, rewrite into
//! numerically stable forms, split every output into its per-row and θ-only
//! parts, and let Symbolica's evaluator optimise each program (Horner schemes,
//! common-subexpression elimination) before its exported instructions are
//! translated into [`hessforge_ir`] instructions.

use crate::engine::{Engine, MAX_EXPONENT, any_node, call, exp_of, powers_within};
use crate::range_safe::Applied;
use hessforge_derivation::Derivation;
use hessforge_ir::{Instr, ModelPrograms, Operand, Program, Split};
use hessforge_spec::{Expr, Func, Rational};
use std::collections::HashMap;
use symbolica::atom::{Atom, AtomCore, AtomView, Symbol};
use symbolica::evaluate::{ExportedInstructions, Instruction, Slot};
use symbolica::symbol;

/// Rewrites applied to every expression before evaluation, in order, with
/// the names the derivation's JSON gives them. Each replaces a form that
/// overflows or cancels by one that does not:
/// log(1+eᵘ) → softplus(u), log σ(u) → −softplus(−u),
/// log(1−σ(u)) → −softplus(u), log(1+u) → log1p(u), eᵘ−1 → expm1(u),
/// 1−σ(u) → σ(−u) (σ(40) rounds to 1, so 1 − σ(40) to 0; σ(−40) is
/// 4·10⁻¹⁸: the derivative σ(1 − σ) of every logistic model).
fn stable_rewrites(engine: &Engine) -> Vec<(&'static str, Atom, Atom)> {
    let u = Atom::var(symbol!("hessforge::u_"));
    let sigmoid = engine.custom[&Func::Sigmoid];
    let softplus = engine.custom[&Func::Softplus];
    let log1p = engine.custom[&Func::Log1p];
    vec![
        (
            "softplus",
            (Atom::num(1) + u.exp()).log(),
            call(softplus, &u),
        ),
        (
            "log-sigmoid",
            call(sigmoid, &u).log(),
            -call(softplus, &(-&u)),
        ),
        (
            "log-one-minus-sigmoid",
            (Atom::num(1) - call(sigmoid, &u)).log(),
            -call(softplus, &u),
        ),
        ("log1p", (Atom::num(1) + &u).log(), call(log1p, &u)),
        (
            "expm1",
            u.exp() - Atom::num(1),
            call(engine.custom[&Func::Expm1], &u),
        ),
        (
            "one-minus-sigmoid",
            Atom::num(1) - call(sigmoid, &u),
            call(sigmoid, &(-&u)),
        ),
        (
            "one-minus-sigmoid",
            call(sigmoid, &u) - Atom::num(1),
            -call(sigmoid, &(-&u)),
        ),
    ]
}

/// The stable and range-safe rewrites, ready to apply (see
/// [`stable_rewrites`] and [`crate::range_safe`]), with a record of those
/// that applied.
pub(crate) struct Stabilizer {
    /// Each rewrite with its name and the kind of node its left side needs.
    rewrites: Vec<(&'static str, Atom, Atom, Needs)>,
    /// Every rewrite that changed an expression, in order.
    applied: std::cell::RefCell<Vec<Applied>>,
    /// Whether the range-safe rewrites apply ([`crate::range_safe`]): to
    /// the scalar programs. A loop IR step reads buffers whose ranges the
    /// rewrites cannot see, and the loop kernels are the built-ins' hot
    /// paths; they keep the stable rewrites only.
    range_safe: bool,
}

/// The node a rewrite's left side needs somewhere in an expression, so
/// that it is tried only where it could match (matching a long sum is
/// costly).
#[derive(Clone, Copy, PartialEq)]
enum Needs {
    Log,
    ExpMinusOne,
    OneMinusSigmoid,
}

pub(crate) fn is_log(x: AtomView<'_>) -> bool {
    matches!(x, AtomView::Fun(f) if f.get_symbol() == Symbol::LOG)
}

impl Stabilizer {
    pub(crate) fn new(engine: &Engine, range_safe: bool) -> Stabilizer {
        let rewrites = stable_rewrites(engine)
            .into_iter()
            .map(|(name, from, to)| {
                let needs = if any_node(from.as_view(), &is_log) {
                    Needs::Log
                } else if name == "one-minus-sigmoid" {
                    Needs::OneMinusSigmoid
                } else {
                    Needs::ExpMinusOne
                };
                (name, from, to, needs)
            })
            .collect();
        Stabilizer {
            rewrites,
            applied: std::cell::RefCell::new(Vec::new()),
            range_safe,
        }
    }

    /// `a` (definitions already substituted) in numerically stable and
    /// range-safe form, huge powers as exponentials.
    pub(crate) fn apply(&self, engine: &Engine, a: Atom) -> Atom {
        let mut a = a;
        // Matching a rewrite against a long sum is costly: each is
        // tried only where a node it could match exists.
        let has_log = any_node(a.as_view(), &is_log);
        let has_exp_minus_one = any_node(a.as_view(), &|x| match x {
            AtomView::Add(s) => {
                s.iter().any(|t| t == Atom::num(-1).as_view())
                    && s.iter().any(|t| any_node(t, &is_exponential))
            }
            _ => false,
        });
        let sigmoid = engine.custom[&Func::Sigmoid];
        let has_one_minus_sigmoid = any_node(a.as_view(), &|x| match x {
            AtomView::Add(s) => {
                s.iter().any(|t| matches!(t, AtomView::Num(_)))
                    && s.iter().any(|t| {
                        any_node(
                            t,
                            &|y| matches!(y, AtomView::Fun(f) if f.get_symbol() == sigmoid),
                        )
                    })
            }
            _ => false,
        });
        let mut applied = self.applied.borrow_mut();
        for (name, from, to, needs) in &self.rewrites {
            let possible = match needs {
                Needs::Log => has_log,
                Needs::ExpMinusOne => has_exp_minus_one,
                // The loop kernels keep σ(1 − σ): one call per row where
                // σ(−u) would be a second (see `range_safe` below).
                Needs::OneMinusSigmoid => self.range_safe && has_one_minus_sigmoid,
            };
            if possible {
                let rewritten = a.replace(from.to_pattern()).with(to.to_pattern());
                if rewritten != a {
                    applied.push(Applied {
                        rule: name,
                        from: a.to_string(),
                        to: rewritten.to_string(),
                    });
                    a = rewritten;
                }
            }
        }
        // An expression with a power beyond ±1000 (`u^2.5e12`, by now
        // `expm1(n·log|u|) + 1`, see `prepare`) is left as it is: such a
        // power is 0, 1 or ∞ in f64 whatever form it takes, and the
        // rewrites would only move its terms around.
        let expm1 = engine.custom[&Func::Expm1];
        let holds_huge_power = any_node(
            a.as_view(),
            &|x| matches!(x, AtomView::Fun(f) if f.get_symbol() == expm1),
        );
        if self.range_safe
            && !holds_huge_power
            && powers_within(a.as_view(), MAX_EXPONENT, MAX_EXPONENT)
        {
            a = engine.range_safe(a.as_view(), &mut applied);
        }
        engine.huge_powers_as_exponentials(a.as_view())
    }

    /// Every rewrite applied so far, in order.
    pub(crate) fn applied(&self) -> Vec<Applied> {
        self.applied.borrow().clone()
    }
}

/// Why a derivation could not be lowered.
pub(crate) enum LowerFailure {
    /// A value is undefined everywhere: bad input.
    Undefined(String),
    /// Anything else: a bug.
    Internal(String),
}

impl From<String> for LowerFailure {
    fn from(message: String) -> LowerFailure {
        LowerFailure::Internal(message)
    }
}

/// The reason the first number of `a` that is not a real rational (∞, an
/// undefined value, a complex number) is not one.
pub(crate) fn undefined_number(a: AtomView<'_>) -> Option<String> {
    let mut reason = None;
    find_undefined(a, &mut reason);
    reason
}

fn find_undefined(a: AtomView<'_>, reason: &mut Option<String>) {
    if reason.is_some() {
        return;
    }
    match a {
        AtomView::Num(n) => {
            if let Err(e) = crate::engine::coefficient(n.get_coeff_view(), a) {
                *reason = Some(e);
            }
        }
        AtomView::Var(_) => {}
        AtomView::Fun(f) => f.iter().for_each(|x| find_undefined(x, reason)),
        AtomView::Pow(p) => {
            let (b, e) = p.get_base_exp();
            find_undefined(b, reason);
            find_undefined(e, reason);
        }
        AtomView::Mul(m) => m.iter().for_each(|x| find_undefined(x, reason)),
        AtomView::Add(s) => s.iter().for_each(|x| find_undefined(x, reason)),
    }
}

impl Engine {
    /// Every program of a derived model, with the rewrites applied.
    pub(crate) fn lower(
        &self,
        d: &Derivation,
    ) -> Result<(ModelPrograms, Vec<Applied>), LowerFailure> {
        let m = &d.model;
        let p = m.n_params();
        let forms = d
            .forms
            .as_ref()
            .ok_or_else(|| "the straight-line programs need the expanded derivation".to_string())?;
        // Intermediates, fully inlined (each right-hand side in terms of θ, x, c).
        // A definition whose value is a number is substituted in our own
        // tree, before the conversion: Symbolica's replacement would
        // evaluate `2^u` with u = 4.875…e-23 exactly (a power with a
        // denominator of 10²³), which `to_atom` keeps as an exponential.
        let mut numbers: HashMap<String, Expr> = HashMap::new();
        let mut inlined: Vec<(Atom, Atom)> = Vec::new();
        for def in m.definitions() {
            let expr = def.expr.substitute(&numbers);
            // Huge powers become exponentials before anything is
            // substituted into them: replacing u in u^2.5e12 by 2·(w·x)
            // would make Symbolica raise 2 to that power exactly.
            let mut rhs = self.huge_powers_as_exponentials(self.to_atom(&expr).as_view());
            for (name, value) in &inlined {
                rhs = rhs.replace(name.to_pattern()).with(value.to_pattern());
            }
            if matches!(rhs.as_view(), AtomView::Num(_)) {
                numbers.insert(def.scalar.id.clone(), expr);
            } else {
                inlined.push((Atom::var(self.var(&def.scalar.id)), rhs));
            }
        }
        let stabilizer = Stabilizer::new(self, true);
        let prepare = |e: &Expr| -> Atom {
            let mut a =
                self.huge_powers_as_exponentials(self.to_atom(&e.substitute(&numbers)).as_view());
            for (name, value) in inlined.iter().rev() {
                a = a.replace(name.to_pattern()).with(value.to_pattern());
            }
            stabilizer.apply(self, a)
        };
        let zero = Expr::int(0);
        let reg_grad = |j: usize| d.regularizer_gradient.get(j).unwrap_or(&zero);
        let reg_hess = |j: usize, k: usize| d.regularizer_hessian.get(j).map_or(&zero, |r| &r[k]);
        let data: Vec<Symbol> = m.data.iter().map(|s| self.var(&s.id)).collect();

        // Each output as (per-sample part of ℓ, regularizer part).
        let mut outputs: Vec<(Atom, Atom)> = vec![(
            prepare(&forms.loss),
            forms.regularizer.as_ref().map_or(Atom::num(0), &prepare),
        )];
        for j in 0..p {
            outputs.push((prepare(&d.gradient[j].expr), prepare(reg_grad(j))));
        }
        for j in 0..p {
            for k in j..p {
                outputs.push((prepare(&d.hessian[j][k]), prepare(reg_hess(j, k))));
            }
        }
        // With the definitions substituted, a value can turn out undefined
        // everywhere (`a / log(u)` with u = (a + b)⁰ = 1): bad input, as in
        // the derivation.
        let names = std::iter::once("ℓ".to_string())
            .chain(m.params.iter().map(|s| format!("∂ℓ/∂{}", s.id)))
            .chain((0..p).flat_map(|j| {
                (j..p).map(move |k| format!("∂²ℓ/∂{}∂{}", m.params[j].id, m.params[k].id))
            }));
        for ((sample, reg), name) in outputs.iter().zip(names) {
            for a in [sample, reg] {
                if let Some(reason) = undefined_number(a.as_view()) {
                    return Err(LowerFailure::Undefined(format!(
                        "{name} is undefined once the definitions are substituted: it contains {reason}"
                    )));
                }
            }
        }
        let (per_row, theta_only): (Vec<Atom>, Vec<Atom>) = outputs
            .into_iter()
            .map(|(sample, reg)| {
                let (with_data, without) = split_by_data(&sample, &data);
                (with_data, without + reg)
            })
            .unzip();

        let params: Vec<Atom> = m
            .params
            .iter()
            .chain(&m.data)
            .chain(m.constants.iter().map(|(s, _)| s))
            .map(|s| Atom::var(self.var(&s.id)))
            .collect();
        let (n_data, n_grad) = (m.data.len(), 1 + p);
        let level = |n: usize| -> Result<Split, String> {
            Ok(Split {
                per_row: self.program(&per_row[..n], &params, p, n_data)?,
                theta_only: self.program(&theta_only[..n], &params, p, n_data)?,
            })
        };
        let programs = ModelPrograms {
            name: m.name.clone(),
            params: m.params.iter().map(|s| s.id.clone()).collect(),
            data: m.data.iter().map(|s| s.id.clone()).collect(),
            constants: m.constants.iter().map(|(s, _)| s.id.clone()).collect(),
            constant_defaults: m.constants.iter().map(|(_, v)| *v).collect(),
            loss: level(1)?,
            loss_grad: level(n_grad)?,
            loss_grad_hess: level(per_row.len())?,
        };
        programs.validate().map_err(|e| e.to_string())?;
        Ok((programs, stabilizer.applied()))
    }

    /// One optimised program for the given outputs.
    pub(crate) fn program(
        &self,
        outputs: &[Atom],
        params: &[Atom],
        n_params: usize,
        n_data: usize,
    ) -> Result<Program, String> {
        let mut builder = Atom::evaluator_multiple(outputs, params);
        // A model without data evaluates each program once per iteration,
        // so a long optimisation of a large one (the 66 Hessian entries of
        // a 65-residual least-squares fit) costs more than it ever saves:
        // one Horner pass. With data, the per-row program runs for every
        // row of every pass, and the optimisation pays.
        let nodes: usize = outputs.iter().map(|o| node_count(o.as_view())).sum();
        if n_data == 0 && nodes > LARGE_PROGRAM_NODES {
            builder = builder.horner_iterations(1);
        }
        let evaluator = builder
            .build()
            .map_err(|e| format!("cannot build the evaluator: {e:?}"))?
            .map_coeff(&|c| c.re.to_f64());
        translate(self, &evaluator.export_instructions(), n_params, n_data)
    }
}

impl Engine {
    /// `u^n` with an exponent beyond [`MAX_EXPONENT`] as an exponential:
    /// `sign(u)^(n mod 2)·e^{n·log|u|}` for an integer n, `e^{n·log u}`
    /// otherwise (NaN for u < 0, as a real power is). Symbolica's evaluator
    /// builds `u^n` by repeated multiplication, which for `u^2.5e12` cannot
    /// even be allocated; the exponential costs two calls whatever n is.
    /// The exponential is written `expm1(z) + 1`, which Symbolica does not
    /// turn back into `u^n` as it does `exp(n log u)` (and which is exp(z)
    /// to the last bit but for z within ε of 0).
    pub(crate) fn huge_powers_as_exponentials(&self, a: AtomView<'_>) -> Atom {
        if powers_within(a, MAX_EXPONENT, MAX_EXPONENT) {
            return a.to_owned();
        }
        let rebuild = |x: AtomView<'_>| self.huge_powers_as_exponentials(x);
        match a {
            AtomView::Num(_) | AtomView::Var(_) => a.to_owned(),
            AtomView::Fun(f) => {
                let args: Vec<Atom> = f.iter().map(rebuild).collect();
                match args.as_slice() {
                    [arg] if f.get_symbol() == Symbol::EXP => exp_of(arg.clone()),
                    _ => f
                        .get_symbol()
                        .call(&args.iter().map(|x| x.as_view()).collect::<Vec<_>>()[..]),
                }
            }
            AtomView::Mul(m) => m.iter().fold(Atom::num(1), |acc, x| acc * rebuild(x)),
            AtomView::Add(s) => s.iter().fold(Atom::num(0), |acc, x| acc + rebuild(x)),
            AtomView::Pow(p) => {
                let (base, exponent) = p.get_base_exp();
                let base = rebuild(base);
                let exponent_atom = rebuild(exponent);
                let AtomView::Num(n) = exponent else {
                    return if is_e(base.as_view()) {
                        exp_of(exponent_atom)
                    } else {
                        base.pow(exponent_atom)
                    };
                };
                match crate::engine::coefficient(n.get_coeff_view(), exponent) {
                    Ok(r) => self.power_as_exponential(base, exponent_atom, &r),
                    Err(_) => base.pow(exponent_atom),
                }
            }
        }
    }

    /// `base^n` for a numeric `n` as an exponential: `sign(u)^(n mod 2) ·
    /// e^{n log|u|}` for an integer n (real for every base), `e^{n log u}`
    /// otherwise (real where u > 0, as `powf`).
    pub(crate) fn power_as_exponential(&self, base: Atom, exponent: Atom, n: &Rational) -> Atom {
        if n.is_integer() {
            let magnitude = call(self.custom[&Func::Abs], &base);
            let value = self.exponential(exponent * magnitude.log());
            if n.is_odd_integer() {
                call(self.custom[&Func::Sign], &base) * value
            } else {
                value
            }
        } else {
            self.exponential(exponent * base.log())
        }
    }

    /// e^z as `expm1(z) + 1` (see [`Engine::huge_powers_as_exponentials`]).
    pub(crate) fn exponential(&self, z: Atom) -> Atom {
        call(self.custom[&Func::Expm1], &z) + Atom::num(1)
    }
}

/// Above this many expression nodes, a program of a model without data is
/// optimised with one Horner pass only (see [`Engine::program`]); every
/// built-in is far below it.
const LARGE_PROGRAM_NODES: usize = 20_000;

/// The number of nodes of an expression.
fn node_count(a: AtomView<'_>) -> usize {
    1 + match a {
        AtomView::Num(_) | AtomView::Var(_) => 0,
        AtomView::Fun(f) => f.iter().map(node_count).sum(),
        AtomView::Pow(p) => {
            let (b, e) = p.get_base_exp();
            node_count(b) + node_count(e)
        }
        AtomView::Mul(m) => m.iter().map(node_count).sum(),
        AtomView::Add(s) => s.iter().map(node_count).sum(),
    }
}

/// Whether a node is e^u.
fn is_exponential(a: AtomView<'_>) -> bool {
    match a {
        AtomView::Fun(f) => f.get_symbol() == Symbol::EXP,
        AtomView::Pow(p) => is_e(p.get_base_exp().0),
        _ => false,
    }
}

/// Whether this is Euler's number e (the base of Symbolica's `exp`).
pub(crate) fn is_e(a: AtomView<'_>) -> bool {
    matches!(a, AtomView::Var(v) if v.get_symbol() == Symbol::E)
}

/// The terms of a sum that mention a data symbol, and the rest.
fn split_by_data(a: &Atom, data: &[Symbol]) -> (Atom, Atom) {
    let has_data = |v: AtomView<'_>| data.iter().any(|s| v.to_owned().contains_symbol(*s));
    match a.as_view() {
        AtomView::Add(terms) => {
            let (mut with, mut without) = (Atom::num(0), Atom::num(0));
            for t in terms.iter() {
                if has_data(t) {
                    with += t.to_owned();
                } else {
                    without += t.to_owned();
                }
            }
            (with, without)
        }
        v if has_data(v) => (a.clone(), Atom::num(0)),
        _ => (Atom::num(0), a.clone()),
    }
}

/// Symbolica's exported instructions → IR. Parameters are laid out as θ,
/// then the data row, then the constants; outputs live in registers after
/// the temporaries.
fn translate(
    engine: &Engine,
    ex: &ExportedInstructions<f64>,
    n_params: usize,
    n_data: usize,
) -> Result<Program, String> {
    let temps = ex.temporary_count as u32;
    let operand = |s: &Slot| -> Operand {
        match *s {
            Slot::Param(i) if i < n_params => Operand::Param(i as u32),
            Slot::Param(i) if i < n_params + n_data => Operand::Data((i - n_params) as u32),
            Slot::Param(i) => Operand::Constant((i - n_params - n_data) as u32),
            Slot::Const(i) => Operand::Literal(ex.constants[i]),
            Slot::Temp(i) => Operand::Reg(i as u32),
            Slot::Out(i) => Operand::Reg(temps + i as u32),
        }
    };
    let register = |s: &Slot| -> Result<u32, String> {
        match operand(s) {
            Operand::Reg(r) => Ok(r),
            other => Err(format!("an instruction writes to {other:?}")),
        }
    };
    let mut instructions = Vec::with_capacity(ex.instructions.len());
    for ins in &ex.instructions {
        instructions.push(match ins {
            Instruction::Add(o, args, _) => Instr::Add {
                dst: register(o)?,
                args: args.iter().map(operand).collect(),
            },
            Instruction::Mul(o, args, _) => Instr::Mul {
                dst: register(o)?,
                args: args.iter().map(operand).collect(),
            },
            Instruction::Pow(o, b, e, _) => Instr::Powi {
                dst: register(o)?,
                base: operand(b),
                exp: i32::try_from(*e).map_err(|_| format!("exponent {e} out of range"))?,
            },
            Instruction::Powf(o, b, e, _) => Instr::Powf {
                dst: register(o)?,
                base: operand(b),
                exp: operand(e),
            },
            Instruction::Fun(o, f, _) if f.0 == engine.max => {
                let [left, right] = f.2.as_slice() else {
                    return Err(format!("max called with {} arguments", f.2.len()));
                };
                Instr::Max {
                    dst: register(o)?,
                    left: operand(left),
                    right: operand(right),
                }
            }
            Instruction::Fun(o, f, _) if f.0 == engine.together => {
                let [src] = f.2.as_slice() else {
                    return Err(format!("together called with {} arguments", f.2.len()));
                };
                Instr::Copy {
                    dst: register(o)?,
                    src: operand(src),
                }
            }
            Instruction::Fun(o, f, _) => {
                let (symbol, _tags, args) = &**f;
                let name = symbol.get_name();
                let func = (*symbol == engine.exp_at_most_one)
                    .then_some(Func::Exp)
                    .or_else(|| engine.function(*symbol))
                    .ok_or_else(|| format!("no IR function for `{name}`"))?;
                let [arg] = args.as_slice() else {
                    return Err(format!("`{name}` called with {} arguments", args.len()));
                };
                Instr::Call {
                    dst: register(o)?,
                    func,
                    arg: operand(arg),
                }
            }
            Instruction::Assign(o, v) => Instr::Copy {
                dst: register(o)?,
                src: operand(v),
            },
            other => {
                return Err(format!(
                    "unsupported control flow in a straight-line program: {other:?}"
                ));
            }
        });
    }
    Ok(Program {
        n_regs: temps + ex.output_count as u32,
        instructions,
        outputs: (0..ex.output_count as u32)
            .map(|i| Operand::Reg(temps + i))
            .collect(),
    })
}
