//! The lane-summed Hessian terms as Rust: the additions of a pass in lanes
//! that the shared sweep makes for the small rank-1 and δ-pattern terms
//! (`hessforge_ir::loop_ir::LoopProgram::lane_sum_terms`), written out with
//! literal offsets and trip counts — the slices checked once, every index
//! a constant — in the sweep's order, so the same bits.

use super::*;
use hessforge_ir::loop_ir::{DeltaPattern, LaneSumTerm};

/// The model's `lane_sums` (an item of its `LoopModel` impl), or nothing
/// when its pass in lanes sums no term lane by lane.
pub(super) fn lane_sums_fn(runtime: &LoopProgram) -> TokenStream {
    let (terms, sums_len) = runtime.lane_sum_terms(LANES);
    if terms.is_empty() {
        return quote!();
    }
    // The entries each slice must hold: past the last one read.
    let end = |in_row: bool| {
        terms
            .iter()
            .flat_map(|t| {
                let weight = t.weight.map(|(r, at)| (r, at, 1));
                [(t.u.0, t.u.1, t.rows), (t.v.0, t.v.1, t.cols)]
                    .into_iter()
                    .chain(weight)
            })
            .filter(|&(r, _, _)| r == in_row)
            .map(|(_, at, len)| at + len)
            .max()
    };
    let slice = |name: &str, entries: Option<usize>| {
        let ident = format_ident!("{name}");
        match entries {
            Some(e) => {
                let len = n(e * LANES);
                quote! {
                    let Some(#ident) = #ident.first_chunk::<#len>() else {
                        return false;
                    };
                }
            }
            None => quote!(let _ = #ident;),
        }
    };
    let (s, x) = (slice("s", end(false)), slice("x", end(true)));
    let sums_len = n(sums_len);
    let body = terms.iter().map(term_tokens);
    quote! {
        const WRITES_LANE_SUMS: bool = true;
        /// The Hessian terms the pass in eight lanes sums lane by lane,
        /// added into its lane sums: the shared sweep's additions in its
        /// order, with literal offsets.
        #[inline(always)]
        fn lane_sums(s: &[f64], x: &[f64], sums: &mut [f64]) -> bool {
            const W: usize = 8;
            #s
            #x
            let Ok(sums) = <&mut [f64; #sums_len]>::try_from(sums) else {
                return false;
            };
            #(#body)*
            true
        }
    }
}

/// `&s[(at + e) * W..]` (or of `x`, in the data row) for entry `e` (a loop
/// variable) or for a literal entry.
fn place(source: (bool, usize), e: Option<&Ident>) -> TokenStream {
    let slice = if source.0 { quote!(x) } else { quote!(s) };
    match e {
        Some(e) if source.1 == 0 => quote!(&#slice[#e * W..]),
        Some(e) => {
            let at = n(source.1);
            quote!(&#slice[(#at + #e) * W..])
        }
        None => {
            let at = n(source.1);
            quote!(&#slice[#at * W..])
        }
    }
}

fn term_tokens(t: &LaneSumTerm) -> TokenStream {
    let first = n(t.sums);
    match &t.pattern {
        None => {
            let (i, j) = (format_ident!("i"), format_ident!("j"));
            let (u, v) = (place(t.u, Some(&i)), place(t.v, Some(&j)));
            let (rows, cols) = (n(t.rows), n(t.cols));
            let weighted = t.weight.map(|w| {
                let w = place(w, None);
                quote!(let a: Lanes<W> = Lanes::<W>::load(#w) * a;)
            });
            let from = if t.diagonal { quote!(i) } else { quote!(0) };
            quote! {
                for i in 0..#rows {
                    let a: Lanes<W> = Lanes::<W>::load(#u);
                    #weighted
                    for j in #from..#cols {
                        let k = #first + (i * #cols + j) * W;
                        loops::add_product(sums, k, a, Lanes::<W>::load(#v));
                    }
                }
            }
        }
        Some(pattern) => pattern_tokens(t, pattern),
    }
}

/// `Σ index·stride` over `shape` (row-major), the strides literal: `r0 * 2
/// + r1`; 0 for no axes.
fn flat(indices: &[TokenStream], shape: &[usize]) -> TokenStream {
    let mut terms = Vec::new();
    for (a, index) in indices.iter().enumerate() {
        let stride: usize = shape[a + 1..].iter().product();
        terms.push(if stride == 1 {
            quote!(#index)
        } else {
            let stride = n(stride);
            quote!(#index * #stride)
        });
    }
    if terms.is_empty() {
        quote!(0)
    } else {
        quote!(#(#terms)+*)
    }
}

/// A δ-pattern term as loops: over u's entry ρ (`r0`, `r1`, …), then v's
/// free axes (`f…`), v's paired axes following ρ's; entry (i, j) into its
/// sums k = flat(ρ)·F + flat(free) (the plan's numbering, see
/// [`DeltaPattern`]). Each entry's sums get one addition per block of rows,
/// so the order of the loops is free; the bits are the sweep's.
fn pattern_tokens(t: &LaneSumTerm, pattern: &DeltaPattern) -> TokenStream {
    let DeltaPattern { row, col, pairs } = pattern;
    let rows: Vec<Ident> = (0..row.len()).map(|a| format_ident!("r{a}")).collect();
    let free: Vec<usize> = (0..col.len())
        .filter(|b| !pairs.iter().any(|&(_, pb)| pb == *b))
        .collect();
    let frees: Vec<Ident> = free.iter().map(|b| format_ident!("f{b}")).collect();
    let col_index: Vec<TokenStream> = (0..col.len())
        .map(|b| match pairs.iter().find(|&&(_, pb)| pb == b) {
            Some(&(a, _)) => {
                let r = &rows[a];
                quote!(#r)
            }
            None => {
                let f = format_ident!("f{b}");
                quote!(#f)
            }
        })
        .collect();
    let row_index: Vec<TokenStream> = rows.iter().map(|r| quote!(#r)).collect();
    let free_index: Vec<TokenStream> = frees.iter().map(|f| quote!(#f)).collect();
    let free_shape: Vec<usize> = free.iter().map(|&b| col[b]).collect();
    let (i, j) = (flat(&row_index, row), flat(&col_index, col));
    let free_flat = flat(&free_index, &free_shape);
    let combinations = n(free_shape.iter().product());
    let (ie, je) = (format_ident!("i"), format_ident!("j"));
    let (u, v) = (place(t.u, Some(&ie)), place(t.v, Some(&je)));
    let first = n(t.sums);
    let add = quote!(loops::add_product(sums, k, a, Lanes::<W>::load(#v)););
    let add = if t.diagonal {
        quote!(if i <= j { #add })
    } else {
        add
    };
    let k = if free.is_empty() {
        quote!(#first + i * W)
    } else {
        quote!(#first + (i * #combinations + #free_flat) * W)
    };
    let mut inner = quote! {
        let j = #j;
        let k = #k;
        #add
    };
    for (f, &b) in frees.iter().zip(&free).rev() {
        let len = n(col[b]);
        inner = quote!(for #f in 0..#len { #inner });
    }
    let mut body = quote! {
        let i = #i;
        let a: Lanes<W> = Lanes::<W>::load(#u);
        #inner
    };
    for (r, &len) in rows.iter().zip(row).rev() {
        let len = n(len);
        body = quote!(for #r in 0..#len { #body });
    }
    body
}
