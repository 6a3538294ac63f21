//! The Hessian terms' additions as Rust, written out with literal offsets
//! and trip counts — the slices checked once, every index a constant — in
//! the shared code's order, so the same bits: those of a pass in lanes that
//! sums the small rank-1 and δ-pattern terms per lane
//! (`hessforge_ir::loop_ir::LoopProgram::lane_sum_terms`, `lane_sums`), and
//! those of a short pass one row at a time that adds its terms straight
//! into ∇²L (`LoopProgram::row_terms`, `row_terms`).

use super::*;
use hessforge_ir::loop_ir::{DeltaPattern, LaneSumTerm, RowTerm, RowTermForm};

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
    let lanes = |entries: Option<usize>| entries.map(|e| e * LANES);
    let (s, x) = (
        checked_slice("s", lanes(end(false))),
        checked_slice("x", lanes(end(true))),
    );
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

/// `let NAME = NAME.first_chunk::<LEN>()` (the function returns false when
/// the slice is shorter), or `let _ = NAME;` when no term reads it.
fn checked_slice(name: &str, len: Option<usize>) -> TokenStream {
    let ident = format_ident!("{name}");
    match len {
        Some(len) => {
            let len = n(len);
            quote! {
                let Some(#ident) = #ident.first_chunk::<#len>() else {
                    return false;
                };
            }
        }
        None => quote!(let _ = #ident;),
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

/// One lane-summed term's additions.
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

/// A lane-summed δ-pattern term's additions (see [`pattern_loops`]).
fn pattern_tokens(t: &LaneSumTerm, pattern: &DeltaPattern) -> TokenStream {
    let (ie, je) = (format_ident!("i"), format_ident!("j"));
    let (u, v) = (place(t.u, Some(&ie)), place(t.v, Some(&je)));
    let prelude = quote!(let a: Lanes<W> = Lanes::<W>::load(#u););
    let add = quote!(loops::add_product(sums, k, a, Lanes::<W>::load(#v)););
    pattern_loops(pattern, t.diagonal, prelude, add, Some(t.sums))
}

/// A δ-pattern term as loops: over u's entry ρ (`r0`, `r1`, …; `i` its
/// flat index, then `prelude`), then v's free axes (`f…`), v's paired axes
/// following ρ's (`j` v's flat index), `add` for entry (i, j) (only i ≤ j
/// on a diagonal block). With `sums`, `k` is the entry's first lane sum,
/// `sums + (flat(ρ)·F + flat(free))·W` (the plan's numbering, see
/// [`DeltaPattern`]). Each entry gets one addition per row or block of
/// rows, so the order of the loops is free; the bits are the shared code's.
fn pattern_loops(
    pattern: &DeltaPattern,
    diagonal: bool,
    prelude: TokenStream,
    add: TokenStream,
    sums: Option<usize>,
) -> TokenStream {
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
    let add = if diagonal {
        quote!(if i <= j { #add })
    } else {
        add
    };
    let k = sums.map(|first| {
        let first = n(first);
        if free.is_empty() {
            quote!(let k = #first + i * W;)
        } else {
            let combinations = n(free_shape.iter().product());
            let free_flat = flat(&free_index, &free_shape);
            quote!(let k = #first + (i * #combinations + #free_flat) * W;)
        }
    });
    let mut inner = quote! {
        let j = #j;
        #k
        #add
    };
    for (f, &b) in frees.iter().zip(&free).rev() {
        let len = n(col[b]);
        inner = quote!(for #f in 0..#len { #inner });
    }
    let mut body = quote! {
        let i = #i;
        #prelude
        #inner
    };
    for (r, &len) in rows.iter().zip(row).rev() {
        let len = n(len);
        body = quote!(for #r in 0..#len { #body });
    }
    body
}

/// The model's `row_terms` (an item of its `LoopModel` impl), or nothing
/// when a short pass adds no term straight into ∇²L.
pub(super) fn row_terms_fn(runtime: &LoopProgram) -> TokenStream {
    let terms = runtime.row_terms();
    if terms.is_empty() {
        return quote!();
    }
    let p = runtime.n_params();
    let end = |in_row: bool| {
        terms
            .iter()
            .flat_map(|t| {
                let u_len = match t.form {
                    RowTermForm::Dense => t.rows * t.cols,
                    _ => t.rows,
                };
                let v = (!matches!(t.form, RowTermForm::Dense)).then_some((t.v.0, t.v.1 + t.cols));
                std::iter::once((t.u.0, t.u.1 + u_len)).chain(v)
            })
            .filter(|&(r, _)| r == in_row)
            .map(|(_, end)| end)
            .max()
    };
    let (s, x) = (
        checked_slice("s", end(false)),
        checked_slice("x", end(true)),
    );
    let (p, hess_len) = (n(p), n(p * p));
    let body = terms.iter().map(row_term_tokens);
    quote! {
        const WRITES_ROW_TERMS: bool = true;
        /// The Hessian terms a pass of fewer than 128 rows adds one row at
        /// a time straight into ∇²L's upper blocks (P × P): the shared
        /// code's additions in its order, with literal offsets.
        #[inline(always)]
        fn row_terms(s: &[f64], x: &[f64], h: &mut [f64]) -> bool {
            const P: usize = #p;
            #s
            #x
            let Some(h) = h.first_chunk_mut::<#hess_len>() else {
                return false;
            };
            #(#body)*
            true
        }
    }
}

/// `s[at + e]` (or of `x`, in the data row) for entry `e`, an expression.
fn entry(source: (bool, usize), e: TokenStream) -> TokenStream {
    let slice = if source.0 { quote!(x) } else { quote!(s) };
    if source.1 == 0 {
        quote!(#slice[#e])
    } else {
        let at = n(source.1);
        quote!(#slice[#at + #e])
    }
}

/// `h[(row + i) * P + col + j]` (without the zeros).
fn hess_entry(t: &RowTerm) -> TokenStream {
    let (row, col) = (n(t.row), n(t.col));
    let row = if t.row == 0 {
        quote!(i * P)
    } else {
        quote!((#row + i) * P)
    };
    match t.col {
        0 => quote!(h[#row + j]),
        _ => quote!(h[#row + #col + j]),
    }
}

/// One term's additions into ∇²L, for one row.
fn row_term_tokens(t: &RowTerm) -> TokenStream {
    let (rows, cols) = (n(t.rows), n(t.cols));
    let from = if t.diagonal { quote!(i) } else { quote!(0) };
    let h = hess_entry(t);
    match &t.form {
        RowTermForm::Dense => {
            let u = entry(t.u, quote!(i * #cols + j));
            quote! {
                for i in 0..#rows {
                    for j in #from..#cols {
                        #h += #u;
                    }
                }
            }
        }
        RowTermForm::Rank1 => {
            let (u, v) = (entry(t.u, quote!(i)), entry(t.v, quote!(j)));
            quote! {
                for i in 0..#rows {
                    let a = #u;
                    for j in #from..#cols {
                        #h += a * #v;
                    }
                }
            }
        }
        RowTermForm::Pattern(pattern) => {
            let (u, v) = (entry(t.u, quote!(i)), entry(t.v, quote!(j)));
            let (prelude, add) = (quote!(let a = #u;), quote!(#h += a * #v;));
            pattern_loops(pattern, t.diagonal, prelude, add, None)
        }
    }
}
