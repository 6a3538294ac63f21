//! A short pass written out whole: a pass of fewer than 128 rows one row at
//! a time — one call with one sample, a small mini-batch — as one function
//! of the model (`short_pass`), with no plan, workspace or accumulator
//! between its parts. The scratch is an array on the stack (so the
//! optimizer can keep a small model's buffers in registers); each row's
//! steps, fills, loss, gradient and Hessian terms (`row_terms`) follow with
//! literal offsets, in the shared code's order, so the same bits
//! (`hessforge_ir::loop_ir::LoopProgram::short_pass`).

use super::*;
use hessforge_ir::loop_ir::{Fill, ScaledGradient, ShortPass};

/// The longest scratch a short pass keeps on the stack (32 KiB); a model
/// with a longer one leaves its short passes to the shared code.
const MAX_SCRATCH: usize = 4096;

/// The model's `short_pass` (an item of its `LoopModel` impl), or nothing
/// when its short pass cannot be written out whole (see [`ShortPass`]).
pub(super) fn short_pass_fn(runtime: &LoopProgram) -> TokenStream {
    let Some(pass) = runtime.short_pass(MAX_SCRATCH) else {
        return quote!();
    };
    // Its Hessian terms are all `row_terms`, written from the same plan.
    let has_terms = !runtime.row_terms().is_empty();
    let ShortPass {
        scratch_len,
        constant_fills,
        fills,
        loss,
        gradient,
        outer,
    } = &pass;
    let p = runtime.n_params();
    let (p_lit, hess_len, scratch) = (n(p), n(p * p), n(*scratch_len));
    let constant_fills = constant_fills.iter().map(fill_tokens);
    let fills = fills.iter().map(fill_tokens);
    let (loss_sum, loss) = match loss {
        Some(l) => {
            let l = n(*l);
            (quote!(let mut loss = 0.0;), quote!(loss += s[#l];))
        }
        None => (quote!(let loss = 0.0;), quote!()),
    };
    let gradient = gradient.iter().map(|&(at, from, len)| {
        each(len, |e| {
            let (to, from) = (index(at, e), index(from, e));
            quote!(g[#to] += s[#from];)
        })
    });
    let outer = outer.iter().map(scaled_tokens);
    let gradient = (!pass.gradient.is_empty() || !pass.outer.is_empty()).then(|| {
        quote! {
            if rank >= 1 {
                let g = &mut g[..P];
                #(#gradient)*
                #(#outer)*
            }
        }
    });
    let terms = has_terms.then(|| {
        quote! {
            let written = Self::row_terms(&s, x, h);
            debug_assert!(written, "row_terms of a short pass");
        }
    });
    let constant_fills = (!pass.constant_fills.is_empty()).then(|| {
        quote! {
            if rank >= 2 {
                #(#constant_fills)*
            }
        }
    });
    let hessian = (has_terms || !pass.fills.is_empty()).then(|| {
        quote! {
            if rank >= 2 {
                #(#fills)*
                #terms
            }
        }
    });
    quote! {
        const WRITES_SHORT_PASS: bool = true;
        /// A pass of fewer than 128 rows one row at a time, written out
        /// whole: the scratch on the stack, then for each row the steps,
        /// the fills, the loss, the gradient and the Hessian terms with
        /// literal offsets, in the shared code's order (the same bits).
        #[inline(always)]
        fn short_pass<'r>(
            level: Outputs,
            t: &[f64],
            c: &[f64],
            rows: impl Iterator<Item = &'r [f64]>,
            g: &mut [f64],
            h: &mut [f64],
        ) -> Option<(f64, usize)> {
            const P: usize = #p_lit;
            let rank = level.rank();
            if (rank >= 1 && g.len() < P) || (rank >= 2 && h.len() < #hess_len) {
                return None;
            }
            let mut s = [0.0f64; #scratch];
            #constant_fills
            #loss_sum
            let mut n = 0;
            for x in rows {
                Self::sample::<1>(level, t, x, c, &mut s);
                #loss
                #gradient
                #hessian
                n += 1;
            }
            Some((loss, n))
        }
    }
}

/// Entry `e` of a run from `at`: `at + e` (`e` alone from 0), or `at`
/// for a run of one entry (no `e`).
fn index(at: usize, e: Option<&TokenStream>) -> TokenStream {
    match e {
        Some(e) if at == 0 => e.clone(),
        Some(e) => {
            let at = n(at);
            quote!(#at + #e)
        }
        None => {
            let at = n(at);
            quote!(#at)
        }
    }
}

/// `body` for each entry `e` of a run of `len`: in `for e in 0..len`, or
/// once, without `e`, for a run of one entry.
fn each(len: usize, body: impl Fn(Option<&TokenStream>) -> TokenStream) -> TokenStream {
    if len == 1 {
        return body(None);
    }
    let e = quote!(e);
    let (len, body) = (n(len), body(Some(&e)));
    quote! {
        for e in 0..#len {
            #body
        }
    }
}

/// Entry `e` of the scratch `s` or of the data row `x` from `at`.
fn read(in_row: bool, at: usize, e: Option<&TokenStream>) -> TokenStream {
    let slice = if in_row { quote!(x) } else { quote!(s) };
    let index = index(at, e);
    quote!(#slice[#index])
}

/// A scaled outer-product gradient's additions: `a = scale · u`, then
/// `g[at + e] += a · v[e]`.
fn scaled_tokens(o: &ScaledGradient) -> TokenStream {
    let (u, scale) = (read(o.u.0, o.u.1, None), literal(o.scale, true));
    let add = each(o.len, |e| {
        let (to, v) = (index(o.at, e), read(o.v.0, o.v.1, e));
        quote!(g[#to] += a * #v;)
    });
    quote! {
        {
            let a = #scale * #u;
            #add
        }
    }
}

/// One fill for one row (the shared code's `write_fills` with W = 1):
/// entry e is `weight · from[e]`, the weight alone without `from`, 1
/// without either; a weight is read from the data row, the constants or
/// the scratch; `from` is the data row, the scratch, or a scalar constant
/// (one entry).
fn fill_tokens(f: &Fill) -> TokenStream {
    let weight = f.weight.map(|(source, at)| match source {
        Source::Row => read(true, at, None),
        Source::Constants => {
            let at = n(at);
            quote!(c[#at])
        }
        _ => read(false, at, None),
    });
    let times = |x: TokenStream| {
        if weight.is_some() { quote!(w * #x) } else { x }
    };
    let value = |e: Option<&TokenStream>| match f.from {
        Some((Source::Row, from)) => times(read(true, from, e)),
        Some((Source::Scratch, from)) => times(read(false, from, e)),
        Some((_, constant)) => {
            let constant = n(constant);
            times(quote!(c[#constant]))
        }
        None => weight.clone().unwrap_or_else(|| quote!(1.0)),
    };
    let len = match f.from {
        Some((Source::Row | Source::Scratch, _)) | None => f.len,
        Some(_) => 1,
    };
    let store = each(len, |e| {
        let (to, value) = (index(f.at, e), value(e));
        quote!(s[#to] = #value;)
    });
    match (&weight, f.from) {
        (Some(w), Some(_)) => quote! {
            {
                let w: f64 = #w;
                #store
            }
        },
        _ => store,
    }
}
