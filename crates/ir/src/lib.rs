//! hessforge's intermediate representation: a straight-line program over f64
//! registers, free of Symbolica types, with an interpreter.
//!
//! A [`Program`] reads three input vectors — the parameters θ (`p0, p1, …`),
//! one data row (`d0, d1, …`) and the constants (`c0, c1, …`) — runs its
//! [`Instr`]uctions in order, each writing one register (`r0, r1, …`), and
//! names its outputs ([`Program::outputs`]).
//!
//! # Instruction set
//!
//! | instruction | meaning |
//! |---|---|
//! | `rD = add a, b, …` | sum of the operands |
//! | `rD = mul a, b, …` | product of the operands |
//! | `rD = neg a` | −a |
//! | `rD = div a, b` | a / b |
//! | `rD = powi a, n` | aⁿ for an integer n (negative allowed) |
//! | `rD = powf a, b` | aᵇ for a real b |
//! | `rD = f a` | a function of [`Func`] (the table [`FUNCTIONS`]) |
//! | `rD = copy a` | a |
//!
//! An operand is a parameter `pI`, a data column `dI`, a constant `cI`, a
//! literal number, or a register `rI` written earlier. The functions are
//! evaluated by [`math`], in numerically stable forms (σ and softplus never
//! overflow), both by the interpreter and by the generated Rust code;
//! [`lanes`] has the same arithmetic and functions on eight f64 lanes, for the
//! generated programs that take eight data rows at once.
//!
//! A model is six programs ([`ModelPrograms`]): loss; loss and gradient; loss,
//! gradient and Hessian (upper triangle, row by row) — each split into the part
//! evaluated once per data row and the part that depends on θ only (the
//! regularizer, constant terms), evaluated once per pass.
#![warn(missing_docs)]

pub mod at;
pub mod canonical;
pub mod function;
pub mod lanes;
pub mod loop_ir;
pub mod math;
pub mod tangent;

pub use at::{At, Rows};
pub use function::{Algebra, FUNCTIONS, Func, Function};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An instruction operand.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operand {
    /// θ\[i\]
    Param(u32),
    /// data row \[i\]
    Data(u32),
    /// constant \[i\]
    Constant(u32),
    /// a number
    Literal(f64),
    /// a register written earlier
    Reg(u32),
}

/// One instruction; each writes register `dst`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Instr {
    Add {
        dst: u32,
        args: Vec<Operand>,
    },
    Mul {
        dst: u32,
        args: Vec<Operand>,
    },
    Neg {
        dst: u32,
        arg: Operand,
    },
    Div {
        dst: u32,
        num: Operand,
        den: Operand,
    },
    Powi {
        dst: u32,
        base: Operand,
        exp: i32,
    },
    Powf {
        dst: u32,
        base: Operand,
        exp: Operand,
    },
    Call {
        dst: u32,
        func: Func,
        arg: Operand,
    },
    Copy {
        dst: u32,
        src: Operand,
    },
    /// The larger of two values (`f64::max`: a NaN operand gives the
    /// other). Introduced by the lowering's range-safe log-sum-exp, which
    /// subtracts the largest exponent; never written in a derivation file.
    Max {
        dst: u32,
        left: Operand,
        right: Operand,
    },
}

impl Instr {
    /// The register written.
    pub fn dst(&self) -> u32 {
        match self {
            Instr::Add { dst, .. }
            | Instr::Mul { dst, .. }
            | Instr::Neg { dst, .. }
            | Instr::Div { dst, .. }
            | Instr::Powi { dst, .. }
            | Instr::Powf { dst, .. }
            | Instr::Call { dst, .. }
            | Instr::Copy { dst, .. }
            | Instr::Max { dst, .. } => *dst,
        }
    }

    /// The operands read, to change them.
    pub fn operands_mut(&mut self) -> Vec<&mut Operand> {
        match self {
            Instr::Add { args, .. } | Instr::Mul { args, .. } => args.iter_mut().collect(),
            Instr::Neg { arg, .. } | Instr::Call { arg, .. } => vec![arg],
            Instr::Div { num, den, .. } => vec![num, den],
            Instr::Max { left, right, .. } => vec![left, right],
            Instr::Powi { base, .. } => vec![base],
            Instr::Powf { base, exp, .. } => vec![base, exp],
            Instr::Copy { src, .. } => vec![src],
        }
    }

    /// The operands read.
    pub fn operands(&self) -> Vec<Operand> {
        match self {
            Instr::Add { args, .. } | Instr::Mul { args, .. } => args.clone(),
            Instr::Neg { arg, .. } | Instr::Call { arg, .. } => vec![*arg],
            Instr::Div { num, den, .. } => vec![*num, *den],
            Instr::Max { left, right, .. } => vec![*left, *right],
            Instr::Powi { base, .. } => vec![*base],
            Instr::Powf { base, exp, .. } => vec![*base, *exp],
            Instr::Copy { src, .. } => vec![*src],
        }
    }
}

/// A straight-line program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// Number of registers used.
    pub n_regs: u32,
    /// The instructions, in order.
    pub instructions: Vec<Instr>,
    /// The outputs, in order.
    pub outputs: Vec<Operand>,
}

/// Why a program is malformed.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidProgram(pub String);

impl fmt::Display for InvalidProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid IR program: {}", self.0)
    }
}

impl std::error::Error for InvalidProgram {}

impl Program {
    /// Check that every operand is in range and every register is written
    /// before it is read.
    pub fn validate(
        &self,
        n_params: usize,
        n_data: usize,
        n_constants: usize,
    ) -> Result<(), InvalidProgram> {
        let mut written = vec![false; self.n_regs as usize];
        let check = |op: &Operand, written: &[bool], at: &str| -> Result<(), InvalidProgram> {
            let ok = match *op {
                Operand::Param(i) => (i as usize) < n_params,
                Operand::Data(i) => (i as usize) < n_data,
                Operand::Constant(i) => (i as usize) < n_constants,
                Operand::Literal(_) => true,
                Operand::Reg(r) => written.get(r as usize).copied().unwrap_or(false),
            };
            if ok {
                Ok(())
            } else {
                Err(InvalidProgram(format!(
                    "{at}: operand {op:?} is out of range or read before written"
                )))
            }
        };
        for (k, ins) in self.instructions.iter().enumerate() {
            for op in ins.operands() {
                check(&op, &written, &format!("instruction {k}"))?;
            }
            let dst = ins.dst() as usize;
            if dst >= written.len() {
                return Err(InvalidProgram(format!(
                    "instruction {k} writes r{dst}, beyond {} registers",
                    self.n_regs
                )));
            }
            written[dst] = true;
        }
        for (k, op) in self.outputs.iter().enumerate() {
            check(op, &written, &format!("output {k}"))?;
        }
        Ok(())
    }

    /// Run the program: `regs` must hold at least `n_regs` values, `out` one
    /// per output.
    pub fn run(
        &self,
        theta: &[f64],
        data: &[f64],
        constants: &[f64],
        regs: &mut [f64],
        out: &mut [f64],
    ) {
        let get = |op: &Operand, regs: &[f64]| -> f64 {
            match *op {
                Operand::Param(i) => theta[i as usize],
                Operand::Data(i) => data[i as usize],
                Operand::Constant(i) => constants[i as usize],
                Operand::Literal(v) => v,
                Operand::Reg(r) => regs[r as usize],
            }
        };
        for ins in &self.instructions {
            let (dst, value) = match ins {
                Instr::Add { dst, args } => (*dst, args.iter().map(|a| get(a, regs)).sum()),
                Instr::Mul { dst, args } => (*dst, args.iter().map(|a| get(a, regs)).product()),
                Instr::Neg { dst, arg } => (*dst, -get(arg, regs)),
                Instr::Div { dst, num, den } => (*dst, get(num, regs) / get(den, regs)),
                Instr::Powi { dst, base, exp } => (*dst, get(base, regs).powi(*exp)),
                Instr::Powf { dst, base, exp } => (*dst, get(base, regs).powf(get(exp, regs))),
                Instr::Call { dst, func, arg } => (*dst, func.eval(get(arg, regs))),
                Instr::Copy { dst, src } => (*dst, get(src, regs)),
                Instr::Max { dst, left, right } => (*dst, get(left, regs).max(get(right, regs))),
            };
            regs[dst as usize] = value;
        }
        for (o, op) in out.iter_mut().zip(&self.outputs) {
            *o = get(op, regs);
        }
    }

    /// Number of arithmetic operations (an n-ary add or mul counts n − 1).
    pub fn operation_count(&self) -> usize {
        self.instructions
            .iter()
            .map(|i| match i {
                Instr::Add { args, .. } | Instr::Mul { args, .. } => args.len().saturating_sub(1),
                Instr::Copy { .. } => 0,
                _ => 1,
            })
            .sum()
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Param(i) => write!(f, "p{i}"),
            Operand::Data(i) => write!(f, "d{i}"),
            Operand::Constant(i) => write!(f, "c{i}"),
            Operand::Literal(v) => write!(f, "{v:?}"),
            Operand::Reg(r) => write!(f, "r{r}"),
        }
    }
}

fn list(ops: &[Operand]) -> String {
    ops.iter()
        .map(|o| o.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Instr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Instr::Add { dst, args } => write!(f, "r{dst} = add {}", list(args)),
            Instr::Mul { dst, args } => write!(f, "r{dst} = mul {}", list(args)),
            Instr::Neg { dst, arg } => write!(f, "r{dst} = neg {arg}"),
            Instr::Div { dst, num, den } => write!(f, "r{dst} = div {num}, {den}"),
            Instr::Powi { dst, base, exp } => write!(f, "r{dst} = powi {base}, {exp}"),
            Instr::Powf { dst, base, exp } => write!(f, "r{dst} = powf {base}, {exp}"),
            Instr::Call { dst, func, arg } => write!(f, "r{dst} = {} {arg}", func.name()),
            Instr::Copy { dst, src } => write!(f, "r{dst} = copy {src}"),
            Instr::Max { dst, left, right } => write!(f, "r{dst} = max {left}, {right}"),
        }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "; {} instructions, {} registers",
            self.instructions.len(),
            self.n_regs
        )?;
        for i in &self.instructions {
            writeln!(f, "  {i}")?;
        }
        for (k, o) in self.outputs.iter().enumerate() {
            writeln!(f, "  out{k} = {o}")?;
        }
        Ok(())
    }
}

/// A symmetric P×P matrix, given as its upper triangle row by row, written
/// out in full (row-major) into `full`.
#[inline]
pub fn unpack_upper(p: usize, upper: &[f64], full: &mut [f64]) {
    let mut k = 0;
    for i in 0..p {
        for j in i..p {
            full[i * p + j] = upper[k];
            full[j * p + i] = upper[k];
            k += 1;
        }
    }
}

/// What a program computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outputs {
    /// `[loss]`
    Loss,
    /// `[loss, ∂/∂θ₀, …]`
    LossGrad,
    /// `[loss, gradient…, H₀₀, H₀₁, …, H₀,P−1, H₁₁, …]` (upper triangle by rows)
    LossGradHess,
}

impl Outputs {
    /// 0, 1, 2: how many orders of derivatives.
    pub fn rank(self) -> u8 {
        match self {
            Outputs::Loss => 0,
            Outputs::LossGrad => 1,
            Outputs::LossGradHess => 2,
        }
    }

    /// Number of outputs for P parameters.
    pub fn len(self, p: usize) -> usize {
        match self {
            Outputs::Loss => 1,
            Outputs::LossGrad => 1 + p,
            Outputs::LossGradHess => 1 + p + p * (p + 1) / 2,
        }
    }
}

/// One level of derivatives: the per-row program and the θ-only program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Evaluated once per data row; summed and divided by N.
    pub per_row: Program,
    /// Evaluated once per pass (regularizer, terms without data).
    pub theta_only: Program,
}

impl Split {
    /// The program of `part`.
    pub fn program(&self, part: Part) -> &Program {
        match part {
            Part::PerRow => &self.per_row,
            Part::ThetaOnly => &self.theta_only,
        }
    }
}

/// Every program of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPrograms {
    /// The model's name.
    pub name: String,
    /// Parameter ids, in θ order.
    pub params: Vec<String>,
    /// Data column ids.
    pub data: Vec<String>,
    /// Constant ids.
    pub constants: Vec<String>,
    /// Default constant values.
    pub constant_defaults: Vec<f64>,
    /// Loss only.
    pub loss: Split,
    /// Loss and gradient.
    pub loss_grad: Split,
    /// Loss, gradient and Hessian.
    pub loss_grad_hess: Split,
}

impl ModelPrograms {
    /// The programs for a level.
    pub fn split(&self, level: Outputs) -> &Split {
        match level {
            Outputs::Loss => &self.loss,
            Outputs::LossGrad => &self.loss_grad,
            Outputs::LossGradHess => &self.loss_grad_hess,
        }
    }

    /// Check every program.
    pub fn validate(&self) -> Result<(), InvalidProgram> {
        let (p, d, c) = (self.params.len(), self.data.len(), self.constants.len());
        for level in [Outputs::Loss, Outputs::LossGrad, Outputs::LossGradHess] {
            let s = self.split(level);
            for (which, prog, n_data) in [("per-row", &s.per_row, d), ("θ-only", &s.theta_only, 0)]
            {
                prog.validate(p, n_data, c).map_err(|e| {
                    InvalidProgram(format!("{} {which} {level:?}: {}", self.name, e.0))
                })?;
                if prog.outputs.len() != level.len(p) {
                    return Err(InvalidProgram(format!(
                        "{} {which} {level:?}: {} outputs, expected {}",
                        self.name,
                        prog.outputs.len(),
                        level.len(p)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Evaluate a level at `at` (the data row-major, `data.len()` a
    /// multiple of the number of columns): the mean over the selected rows
    /// of the per-row outputs plus the θ-only outputs. Without data columns
    /// the per-row program is not run.
    pub fn evaluate(&self, level: Outputs, at: At<'_>, out: &mut [f64]) {
        let split = self.split(level);
        let mut regs = vec![0.0; split.per_row.n_regs.max(split.theta_only.n_regs) as usize];
        self.evaluate_with(level, at, out, |part, theta, row, constants, out| {
            split
                .program(part)
                .run(theta, row, constants, &mut regs, out);
        });
    }

    /// [`ModelPrograms::evaluate`] with `run(part, θ, row, constants, out)`
    /// running the level's programs (the interpreter's [`Program::run`], or
    /// their compiled code): the same rows, sums and order, so the same
    /// bits when `run` computes the programs' bits.
    pub fn evaluate_with(
        &self,
        level: Outputs,
        at: At<'_>,
        out: &mut [f64],
        mut run: impl FnMut(Part, &[f64], &[f64], &[f64], &mut [f64]),
    ) {
        let At {
            theta,
            constants,
            data,
            rows,
        } = at;
        let cols = self.data.len();
        let n_out = level.len(self.params.len());
        let mut row_out = vec![0.0; n_out];
        out[..n_out].iter_mut().for_each(|o| *o = 0.0);
        // No data columns: the per-row program is not run.
        if let Some(all_rows) = data.len().checked_div(cols) {
            let mut count = 0usize;
            let mut add_row = |r: usize| {
                let row = &data[r * cols..(r + 1) * cols];
                run(Part::PerRow, theta, row, constants, &mut row_out);
                for (o, v) in out.iter_mut().zip(&row_out) {
                    *o += v;
                }
                count += 1;
            };
            match rows.selected() {
                Some(rows) => rows.iter().for_each(|&r| add_row(r)),
                None => (0..all_rows).for_each(add_row),
            }
            if count > 0 {
                let inv = 1.0 / count as f64;
                out[..n_out].iter_mut().for_each(|o| *o *= inv);
            }
        }
        run(Part::ThetaOnly, theta, &[], constants, &mut row_out);
        for (o, v) in out.iter_mut().zip(&row_out) {
            *o += v;
        }
    }
}

/// Which program of a level's [`Split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// [`Split::per_row`].
    PerRow,
    /// [`Split::theta_only`].
    ThetaOnly,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square_plus_sigmoid() -> Program {
        // out = p0^2 + sigmoid(p0 * d0)
        Program {
            n_regs: 3,
            instructions: vec![
                Instr::Powi {
                    dst: 0,
                    base: Operand::Param(0),
                    exp: 2,
                },
                Instr::Mul {
                    dst: 1,
                    args: vec![Operand::Param(0), Operand::Data(0)],
                },
                Instr::Call {
                    dst: 2,
                    func: Func::Sigmoid,
                    arg: Operand::Reg(1),
                },
            ],
            outputs: vec![Operand::Reg(0), Operand::Reg(2)],
        }
    }

    #[test]
    fn runs_and_prints_like_assembly() {
        let p = square_plus_sigmoid();
        p.validate(1, 1, 0).unwrap();
        let mut regs = [0.0; 3];
        let mut out = [0.0; 2];
        p.run(&[3.0], &[0.0], &[], &mut regs, &mut out);
        assert_eq!(out, [9.0, 0.5]);
        assert_eq!(
            p.to_string(),
            "; 3 instructions, 3 registers\n  r0 = powi p0, 2\n  r1 = mul p0, d0\n  r2 = sigmoid r1\n  out0 = r0\n  out1 = r2\n"
        );
        assert_eq!(p.operation_count(), 3);
    }

    #[test]
    fn validation_catches_a_read_before_write() {
        let mut p = square_plus_sigmoid();
        p.instructions.swap(1, 2);
        assert!(p.validate(1, 1, 0).is_err());
        assert!(square_plus_sigmoid().validate(1, 0, 0).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let p = square_plus_sigmoid();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Program>(&json).unwrap(), p);
    }
}
