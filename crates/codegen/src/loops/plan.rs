//! The plan as Rust: a model's layouts and gradient and Hessian terms
//! written as calls to `hessforge_kernels::runtime::loops`' builders.

use super::*;

pub(super) fn source_tokens(s: Source) -> TokenStream {
    match s {
        Source::Theta => quote!(Source::Theta),
        Source::Row => quote!(Source::Row),
        Source::Constants => quote!(Source::Constants),
        Source::Scratch => quote!(Source::Scratch),
        Source::Direction => quote!(Source::Direction),
    }
}

pub(super) fn option(v: Option<usize>) -> TokenStream {
    match v {
        Some(v) => {
            let v = n(v);
            quote!(Some(#v))
        }
        None => quote!(None),
    }
}

/// A stage's outputs (its steps are generated code, so the list is empty),
/// one line per term.
pub(super) fn stage_plan(stage: &Stage) -> TokenStream {
    let scratch = n(stage.scratch);
    let loss = option(stage.loss);
    let gradient = stage.gradient.iter().map(|g| {
        let (param, value) = (n(g.param), n(g.value));
        match g.outer {
            None => quote!(loops::gradient(#param, #value)),
            Some(o) => {
                let (u, v) = (n(o.u), n(o.v));
                let scale = Literal::f64_unsuffixed(o.scale.abs());
                let scale = if o.scale.is_sign_negative() {
                    quote!(-#scale)
                } else {
                    quote!(#scale)
                };
                quote!(loops::outer_gradient(#param, #value, #u, #v, #scale))
            }
        }
    });
    let hessian = stage.hessian.iter().map(|h| match h {
        HessianTerm::Dense { row, col, value } => {
            let (row, col, value) = (n(*row), n(*col), n(*value));
            quote!(loops::dense(#row, #col, #value))
        }
        HessianTerm::Product {
            row,
            col,
            pairs,
            weight,
            u,
            v,
        } => {
            let (row, col) = (n(*row), n(*col));
            let (weight, u, v) = (option(*weight), option(*u), option(*v));
            let pairs = pairs.iter().map(|&(a, b)| {
                let (a, b) = (n(a), n(b));
                quote!((#a, #b))
            });
            quote!(loops::product(#row, #col, &[#(#pairs),*], #weight, #u, #v))
        }
    });
    quote! {
        loops::stage(
            #scratch,
            #loss,
            Vec::from([#(#gradient),*]),
            Vec::from([#(#hessian),*]),
        )
    }
}
