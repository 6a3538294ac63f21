//! The book's reference pages that are written from code, so that they
//! cannot drift from it: every optimizer from the catalogue
//! ([`hessforge_optim::CATALOG`]) and every function of the derivation
//! language from the function table ([`hessforge_ir::FUNCTIONS`]).
//! `hessforge generate` writes them under `docs/src/reference/` and
//! `generate --check` fails when the committed pages are stale.

use hessforge_ir::FUNCTIONS;
use hessforge_optim::{CATALOG, Family, Stopping};

/// The first line of every generated page: where it comes from.
fn generated_by(source: &str) -> String {
    format!(
        "<!-- Written by `hessforge generate` from {source}; edit the code, not this page. -->\n\n"
    )
}

/// A table cell: pipes escaped, one line.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `docs/src/reference/optimizers.md`: every optimizer of the catalogue,
/// by family, with its update rule, hyper-parameters (flag, default,
/// range), convention and source, and the stopping rules they share.
pub fn optimizers_page() -> String {
    let mut s = generated_by("the optimizer catalogue (`crates/optim/src/catalog.rs`)");
    s.push_str("# Optimizers\n\n");
    s.push_str(
        "Every optimizer hessforge has, as `hessforge optimizers` prints it: its family, \
         update rule, hyper-parameters with their defaults and valid ranges, the convention \
         chosen where libraries differ, and the source it comes from. A hyper-parameter \
         outside its range is bad input (exit 2) naming the optimizer, the range and the \
         default. [Choosing an optimizer](../guide/optimizers.md) explains when each one \
         pays.\n\n",
    );
    s.push_str("| optimizer | family | what it is |\n|---|---|---|\n");
    for e in CATALOG {
        s.push_str(&format!(
            "| [`{name}`](#{name}) | {} | {} |\n",
            e.family.label(),
            cell(e.summary),
            name = e.name()
        ));
    }
    for family in Family::ALL {
        s.push_str(&format!("\n## {}\n", capitalized(family.label())));
        for e in CATALOG.iter().filter(|e| e.family == family) {
            s.push_str(&format!(
                "\n### {}\n\n{}.\n\n",
                e.name(),
                capitalized(e.summary)
            ));
            s.push_str(&format!("$$\n{}\n$$\n\n", e.latex));
            s.push_str(&format!("```text\n{}\n```\n\n", e.rule));
            if e.hypers.is_empty() {
                s.push_str("No hyper-parameters.\n\n");
            } else {
                s.push_str("| flag | default | valid values |\n|---|---|---|\n");
                for h in e.hypers {
                    s.push_str(&format!(
                        "| `{}` | {} | {} |\n",
                        h.flag,
                        cell(&h.default.to_string()),
                        cell(h.range.text())
                    ));
                }
                s.push('\n');
            }
            s.push_str(&format!(
                "**Convention.** {}.\n\n",
                capitalized(e.convention)
            ));
            s.push_str(&format!("**Source.** {}.\n", capitalized(e.source)));
            if e.stochastic {
                s.push_str("\nOne iteration is one epoch over shuffled mini-batches.\n");
            }
        }
    }
    let stop = Stopping::default();
    s.push_str(&format!(
        "\n## Stopping\n\nEvery optimizer runs under the same rules: `--max-iters` ({} by default; \
         epochs for mini-batch runs), `--tol` on ‖∇L‖∞ ({:e}), `--ftol` on the relative loss \
         change (off), `--time-limit SECONDS` (none) and `--target-loss L` (none: stop as \
         converged once the loss is at most L). A small gradient where the Hessian is not \
         positive semi-definite ends as `saddle_point` or `maximum`, never `converged`.\n",
        stop.max_iters, stop.grad_tol
    ));
    s
}

/// `docs/src/reference/functions.md`: every function of the derivation
/// language and of the IR, from the function table.
pub fn functions_page() -> String {
    let mut s = generated_by("the function table (`crates/ir/src/function.rs`)");
    s.push_str("# Functions of the derivation language\n\n");
    s.push_str(
        "An expression of a derivation file may call these functions of one argument, besides \
         `dot(a, b)`, `sum(v)`, `sum(j = 1..n, …)`, `transpose(W)` and the matrix product \
         `W @ x` (see [the derivation-file format](../guide/derivation-files.md)). Applied to a \
         vector they act entry by entry. Each is evaluated in a numerically stable form by the \
         interpreter and the compiled kernels alike. The derivative is the rule every back end \
         uses (the symbolic engine, the index form and the tangent model of Hessian–vector \
         products). Where a function is not differentiable (relu and abs at 0, step and sign \
         at 0) the rule's value is used there, with step(0) = sign(0) = 0.\n\n",
    );
    s.push_str(
        "| function | in files | domain | derivative f′(u) | LaTeX | what it is |\n\
         |---|---|---|---|---|---|\n",
    );
    for f in &FUNCTIONS {
        s.push_str(&format!(
            "| `{}(u)` | {} | {} | {} | `{}` | {} |\n",
            f.name,
            if f.in_files { "yes" } else { "no" },
            cell(f.domain),
            cell(f.derivative),
            cell(f.latex),
            cell(f.about)
        ));
    }
    s
}

/// The text with its first letter in upper case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_optimizer_and_every_function_has_its_section_or_row() {
        let optimizers = optimizers_page();
        for e in CATALOG {
            assert!(optimizers.contains(&format!("\n### {}\n", e.name())));
            for h in e.hypers {
                assert!(optimizers.contains(&format!("| `{}` |", h.flag)));
            }
        }
        let functions = functions_page();
        for f in &FUNCTIONS {
            assert!(functions.contains(&format!("| `{}(u)` |", f.name)));
        }
    }
}
