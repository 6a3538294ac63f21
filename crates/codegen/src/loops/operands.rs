//! Operands as Rust: positions and flat offsets of tensor entries, loads,
//! registers and literals, for one row or W rows in lanes.

use super::*;

/// The position (0-based) an axis stands for.
pub(super) fn position(a: &Axis) -> TokenStream {
    match *a {
        Axis::Loop { var, shift: 0 } => {
            let i = format_ident!("i{var}");
            quote!(#i)
        }
        Axis::Loop { var, shift } => {
            let (i, shift) = (format_ident!("i{var}"), n(shift));
            quote!((#i + #shift))
        }
        Axis::Fixed(p) => {
            let p = n(p);
            quote!(#p)
        }
    }
}

/// `offset + Σ position·stride`, without the terms that are 0.
pub(super) fn flat(offset: usize, index: &[Axis], shape: &[usize]) -> TokenStream {
    let mut parts = Vec::new();
    let mut fixed = offset;
    for (a, axis) in index.iter().enumerate() {
        let stride: usize = shape[a + 1..].iter().product();
        match *axis {
            Axis::Fixed(p) => fixed += p * stride,
            Axis::Loop { var, shift } => {
                fixed += shift * stride;
                let i = format_ident!("i{var}");
                parts.push(if stride == 1 {
                    quote!(#i)
                } else {
                    let stride = n(stride);
                    quote!(#i * #stride)
                });
            }
        }
    }
    if fixed != 0 || parts.is_empty() {
        let fixed = n(fixed);
        parts.insert(0, quote!(#fixed));
    }
    quote!(#(#parts)+*)
}

pub(super) fn load_tokens(m: &LoopProgram, load: &Load) -> TokenStream {
    match load {
        Load::Entry { tensor, index } => {
            let t = &m.tensors[*tensor];
            let slice = match t.source {
                Source::Theta => quote!(t),
                Source::Row => quote!(x),
                Source::Constants => quote!(c),
                Source::Scratch => quote!(s),
                Source::Direction => quote!(v),
            };
            let at = flat(t.offset, index, &t.shape);
            quote!(#slice[#at])
        }
        Load::Position(a) => {
            let p = position(a);
            quote!(((#p + 1) as f64))
        }
        Load::Delta(a, b) => {
            let (a, b) = (position(a), position(b));
            quote!(if #a == #b { 1.0 } else { 0.0 })
        }
    }
}

pub(super) fn operand(op: &Operand) -> TokenStream {
    match *op {
        Operand::Param(i) => {
            let p = format_ident!("p{i}");
            quote!(#p)
        }
        Operand::Reg(r) => {
            let r = format_ident!("r{r}");
            quote!(#r)
        }
        Operand::Literal(v) => literal(v, false),
        // A step's body reads its loads only.
        Operand::Data(i) | Operand::Constant(i) => {
            let p = format_ident!("p{i}");
            quote!(#p)
        }
    }
}

pub(super) fn join(args: &[Operand], op: TokenStream) -> TokenStream {
    let mut parts = args.iter().map(operand);
    // A literal on the left is typed (`0.5f64 * r`): an unsuffixed float
    // times a `Lanes<W>` would not infer.
    let first = match args.first() {
        Some(&Operand::Literal(v)) => {
            parts.next();
            literal(v, true)
        }
        _ => parts.next().unwrap_or_else(|| quote!(0.0)),
    };
    parts.fold(first, |acc, p| quote!(#acc #op #p))
}

/// A number, `0.5` or `(-0.5)`, or with its type, `0.5f64`.
pub(super) fn literal(v: f64, typed: bool) -> TokenStream {
    let lit = if typed {
        Literal::f64_suffixed(v.abs())
    } else {
        Literal::f64_unsuffixed(v.abs())
    };
    if v.is_sign_negative() {
        quote!((-#lit))
    } else {
        quote!(#lit)
    }
}

/// The type of a value in lanes: `Lanes<W>`, W rows at once (the step
/// functions are generic in W: one row is W = 1).
pub(super) fn lane_type() -> TokenStream {
    quote!(Lanes<W>)
}

/// The path of `Lanes<W>`'s functions.
pub(super) fn lane_path() -> TokenStream {
    quote!(Lanes::<W>)
}

/// The first lane of an entry laid out in lanes: its flat index times W.
pub(super) fn lane_index(offset: usize, index: &[Axis], shape: &[usize]) -> TokenStream {
    let at = flat(offset, index, shape);
    if at.to_string().contains('+') {
        quote!((#at) * W)
    } else {
        quote!(#at * W)
    }
}
