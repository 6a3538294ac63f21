//! Index-form expressions printed as a lecture note writes them: entries
//! with subscripts (`x_j`, `W_{jl}`), Kronecker deltas `δ_{jk}`, sums
//! `Σ_{j=1}^{n}`, with the signs and the order of the scalar printer (the
//! same tidy rules: `(p − y) x_j`, `p(1 − p)`, coefficients first).
//!
//! Each part the scalar printer cannot see into becomes a stand-in name
//! with its own display, placed among the model's names by its tensor's
//! role and position; then the expression is tidied and printed as a
//! scalar one.

use super::math::{Names, Printer, Style, tidy};
use crate::index_calculus::IndexDerivation;
use hessforge_spec::index::{IExpr, IndexModel, Ix, display_names};
use hessforge_spec::{Expr, Model, Role};
use std::collections::HashMap;

/// An index-form expression as LaTeX (math mode) or plain text.
pub(crate) fn print(model: &Model, index: &IndexModel, e: &IExpr, style: Style) -> String {
    print_with(Names::for_index_form(model), index, e, style)
}

/// [`print`] with the model's names given (`Names::for_index_form`, maybe
/// changed: at sample i).
pub(crate) fn print_with(mut names: Names, index: &IndexModel, e: &IExpr, style: Style) -> String {
    let letters = display_names(e);
    let mut stand_ins = StandIns {
        index,
        letters: &letters,
        count: 0,
    };
    let scalar = stand_ins.convert(&paired_differences(e), &mut names);
    Printer {
        names: &names,
        style,
    }
    .print(&tidy(&scalar, &names))
}

/// The derivation's index form as JSON: per parameter tensor and per block,
/// the index names with their ranges and each expression as text and LaTeX.
pub(crate) fn json(model: &Model, index: &IndexModel, d: &IndexDerivation) -> serde_json::Value {
    let shape = |tensor: &str| {
        index
            .tensor(tensor)
            .map(|t| t.shape.clone())
            .unwrap_or_default()
    };
    // The letter a derivative index is shown with (its hint, `j` for `j#d1w`).
    let letter = |v: &str| v.split('#').next().unwrap_or(v).to_string();
    let ranges = |vars: &[String], tensor: &str| -> Vec<serde_json::Value> {
        vars.iter()
            .zip(shape(tensor))
            .map(|(v, n)| serde_json::json!({ "name": letter(v), "from": 1, "to": n }))
            .collect()
    };
    let forms = |e: &IExpr| {
        (
            print(model, index, e, Style::Text),
            print(model, index, e, Style::Latex),
        )
    };
    let gradient: Vec<serde_json::Value> = d
        .gradient
        .iter()
        .map(|g| {
            let (loss, loss_latex) = forms(&g.loss);
            let (reg, reg_latex) = forms(&g.regularizer);
            serde_json::json!({
                "tensor": g.tensor,
                "indices": ranges(&g.indices, &g.tensor),
                "loss": loss, "loss_latex": loss_latex,
                "regularizer": reg, "regularizer_latex": reg_latex,
            })
        })
        .collect();
    let hessian: Vec<serde_json::Value> = d
        .hessian
        .iter()
        .map(|b| {
            let (loss, loss_latex) = forms(&b.loss);
            let (reg, reg_latex) = forms(&b.regularizer);
            serde_json::json!({
                "row": b.row, "col": b.col,
                "row_indices": ranges(&b.row_indices, &b.row),
                "col_indices": ranges(&b.col_indices, &b.col),
                "loss": loss, "loss_latex": loss_latex,
                "regularizer": reg, "regularizer_latex": reg_latex,
            })
        })
        .collect();
    serde_json::json!({ "gradient": gradient, "hessian": hessian })
}

pub(super) struct StandIns<'a> {
    pub(super) index: &'a IndexModel,
    /// Display letter of each index variable of the whole expression.
    pub(super) letters: &'a HashMap<String, String>,
    pub(super) count: usize,
}

impl StandIns<'_> {
    pub(super) fn letter(&self, i: &Ix) -> String {
        match i {
            Ix::Var(v) => self.letters.get(v).cloned().unwrap_or_else(|| v.clone()),
            Ix::Fixed(k) => k.to_string(),
        }
    }

    /// `{…}` for a LaTeX subscript: `jl`, or `2,l` where an index is longer
    /// than one character.
    fn subscript(&self, indices: &[Ix]) -> String {
        let parts: Vec<String> = indices.iter().map(|i| self.letter(i)).collect();
        if parts.iter().all(|p| p.chars().count() == 1) {
            parts.concat()
        } else {
            parts.join(",")
        }
    }

    pub(super) fn fresh(&mut self) -> String {
        self.count += 1;
        format!("⟨{}⟩", self.count)
    }

    /// Position of a tensor among the model's names (its first entry's).
    pub(super) fn position(&self, tensor: &str, names: &Names) -> usize {
        self.index
            .tensor(tensor)
            .and_then(|t| t.ids.first())
            .and_then(|id| names.position_of(id))
            .unwrap_or(usize::MAX)
    }

    pub(super) fn convert(&mut self, e: &IExpr, names: &mut Names) -> Expr {
        match e {
            IExpr::Num(r) => Expr::Num(r.clone()),
            IExpr::Entry { tensor, indices }
                if indices.is_empty() && names.position_of(tensor).is_some() =>
            {
                Expr::Var(tensor.clone())
            }
            IExpr::Entry { tensor, indices } => {
                let (base, role) = self
                    .index
                    .tensor(tensor)
                    .map(|t| (t.latex.clone(), t.role))
                    .unwrap_or_else(|| (tensor.clone(), Role::Intermediate));
                let sub = self.subscript(indices);
                let id = self.fresh();
                let position = self.position(tensor, names);
                let (latex, text) = if sub.is_empty() {
                    (base, tensor.clone())
                } else {
                    (format!("{base}_{{{sub}}}"), format!("{tensor}_{sub}"))
                };
                names.add(&id, latex, text, role, position);
                Expr::Var(id)
            }
            IExpr::Delta(a, b) => {
                let sub = self.subscript(&[a.clone(), b.clone()]);
                let id = self.fresh();
                names.add(
                    &id,
                    format!("\\delta_{{{sub}}}"),
                    format!("δ_{sub}"),
                    Role::Constant,
                    usize::MAX,
                );
                Expr::Var(id)
            }
            IExpr::Index(v) => {
                let letter = self.letter(&Ix::Var(v.clone()));
                let id = self.fresh();
                names.add(&id, letter.clone(), letter, Role::Data, usize::MAX);
                Expr::Var(id)
            }
            IExpr::Sum { .. } => self.sum(e, names, Brackets::Both),
            IExpr::Pick { index, items } => {
                let converted: Vec<Expr> = items.iter().map(|x| self.convert(x, names)).collect();
                let show = |style| {
                    converted
                        .iter()
                        .map(|x| Printer { names, style }.print(&tidy(x, names)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let (latex, text) = (show(Style::Latex), show(Style::Text));
                let sub = self.subscript(std::slice::from_ref(index));
                let id = self.fresh();
                names.add(
                    &id,
                    format!("\\left[{latex}\\right]_{{{sub}}}"),
                    format!("[{text}]_{sub}"),
                    Role::Intermediate,
                    usize::MAX,
                );
                Expr::Var(id)
            }
            IExpr::Add(xs) => Expr::Add(xs.iter().map(|x| self.convert(x, names)).collect()),
            IExpr::Mul(xs) => Expr::Mul(xs.iter().map(|x| self.convert(x, names)).collect()),
            // A sum alone in a denominator or as a function's argument
            // needs no brackets of its own in LaTeX: e^{z_j} / Σ_i e^{z_i},
            // log(Σ_i e^{z_i}).
            IExpr::Pow(a, b) if b.is_int(-1) && matches!(**a, IExpr::Sum { .. }) => Expr::Pow(
                Box::new(self.sum(a, names, Brackets::Text)),
                Box::new(self.convert(b, names)),
            ),
            IExpr::Pow(a, b) => Expr::Pow(
                Box::new(self.convert(a, names)),
                Box::new(self.convert(b, names)),
            ),
            IExpr::Call(f, a) if matches!(**a, IExpr::Sum { .. }) => {
                Expr::Call(*f, Box::new(self.sum(a, names, Brackets::None)))
            }
            IExpr::Call(f, a) => Expr::Call(*f, Box::new(self.convert(a, names))),
        }
    }

    /// A sum as one name, `(Σ_{j=1}^{n} body)`, bracketed where `brackets`
    /// says.
    fn sum(&mut self, e: &IExpr, names: &mut Names, brackets: Brackets) -> Expr {
        let IExpr::Sum {
            var,
            from,
            to,
            body,
        } = e
        else {
            return self.convert(e, names);
        };
        let letter = self.letter(&Ix::Var(var.clone()));
        let inner = self.convert(body, names);
        let latex = Printer {
            names,
            style: Style::Latex,
        }
        .print(&tidy(&inner, names));
        let text = Printer {
            names,
            style: Style::Text,
        }
        .print(&tidy(&inner, names));
        let latex = format!("\\sum_{{{letter}={from}}}^{{{to}}} {latex}");
        let text = format!("Σ_{letter}={from}..{to} {text}");
        let (latex, text) = match brackets {
            Brackets::Both => (format!("\\left({latex}\\right)"), format!("({text})")),
            Brackets::Text => (latex, format!("({text})")),
            Brackets::None => (latex, text),
        };
        let id = self.fresh();
        names.add(&id, latex, text, Role::Intermediate, usize::MAX);
        Expr::Var(id)
    }
}

/// Where a sum's own brackets are written.
#[derive(Clone, Copy)]
enum Brackets {
    /// In LaTeX and text (a sum among other factors).
    Both,
    /// In text only (a denominator, which LaTeX writes as a fraction).
    Text,
    /// Neither (a function's argument, in its own parentheses).
    None,
}

/// (1 + u)(1 − u) and (1 + u)(u − 1) written as ±(1 − u²), the form a
/// textbook keeps (1 − h², the derivative of tanh), wherever the engine
/// factored it.
pub(crate) fn paired_differences(e: &IExpr) -> IExpr {
    match e {
        IExpr::Mul(xs) => {
            let mut factors: Vec<IExpr> = xs.iter().map(paired_differences).collect();
            // c + t as (c, t), for a number c.
            let split = |f: &IExpr| match f {
                IExpr::Add(t) if t.len() == 2 => match (&t[0], &t[1]) {
                    (IExpr::Num(_), x) => Some((t[0].clone(), x.clone())),
                    (x, IExpr::Num(_)) => Some((t[1].clone(), x.clone())),
                    _ => None,
                },
                _ => None,
            };
            let minus_u = |u: &IExpr| IExpr::Mul(vec![IExpr::int(-1), u.clone()]);
            loop {
                // (1 + u) and its partner 1 − u (sign +1) or −1 + u (sign −1).
                let found = factors.iter().enumerate().find_map(|(a, f)| {
                    let (c, u) = split(f)?;
                    if !c.is_int(1) {
                        return None;
                    }
                    factors.iter().enumerate().find_map(|(b, g)| {
                        let (d, t) = split(g)?;
                        if b == a {
                            None
                        } else if d.is_int(1) && t == minus_u(&u) {
                            Some((a, b, u.clone(), 1))
                        } else if d.is_int(-1) && t == u {
                            Some((a, b, u.clone(), -1))
                        } else {
                            None
                        }
                    })
                });
                let Some((a, b, u, sign)) = found else {
                    break;
                };
                let square = IExpr::Pow(Box::new(u), Box::new(IExpr::int(2)));
                let one_minus = IExpr::Add(vec![IExpr::int(1), minus_u(&square)]);
                let (lo, hi) = (a.min(b), a.max(b));
                factors.remove(hi);
                factors[lo] = one_minus;
                if sign < 0 {
                    factors.insert(0, IExpr::int(-1));
                }
            }
            IExpr::Mul(factors)
        }
        // A vector literal's items are left as they are.
        IExpr::Pick { .. } => e.clone(),
        _ => e.map_children(paired_differences),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logistic() -> Model {
        let text = "name = \"l\"\ntitle = \"l\"\ndescription = \"l\"\n\
             loss = \"-(y * log(p) + (1 - y) * log(1 - p))\"\n\
             regularizer = \"lambda / 2 * dot(w, w)\"\n\
             [parameters]\nw = { shape = [10] }\nb = {}\n\
             [data]\nx = { shape = [10] }\ny = {}\n[constants]\nlambda = 0.01\n\
             [[define]]\nname = \"z\"\nexpr = \"dot(w, x) + b\"\n\
             [[define]]\nname = \"p\"\nexpr = \"sigmoid(z)\"\n";
        hessforge_spec::load_str("l.toml", text).unwrap()
    }

    fn entry(t: &str, ix: &[&str]) -> IExpr {
        IExpr::entry(t, ix.iter().map(|v| Ix::Var(v.to_string())).collect())
    }

    fn scalar(t: &str) -> IExpr {
        IExpr::entry(t, vec![])
    }

    #[test]
    fn the_logistic_gradient_and_hessian_read_as_in_a_textbook() {
        let m = logistic();
        let ix = m.index.as_ref().unwrap();
        // −(y − p)·x_j, as Symbolica leaves it, is printed (p − y) x_j.
        let gradient = IExpr::Mul(vec![
            IExpr::int(-1),
            IExpr::Add(vec![
                scalar("y"),
                IExpr::Mul(vec![IExpr::int(-1), scalar("p")]),
            ]),
            entry("x", &["j#d1w"]),
        ]);
        assert_eq!(
            print(&m, ix, &gradient, Style::Latex),
            "\\left(p - y\\right) \\, x_{j}"
        );
        assert_eq!(print(&m, ix, &gradient, Style::Text), "(p - y)·x_j");
        // −(−1 + p)·p·x_j·x_k is p(1 − p) x_j x_k.
        let block = IExpr::Mul(vec![
            IExpr::int(-1),
            IExpr::Add(vec![IExpr::int(-1), scalar("p")]),
            scalar("p"),
            entry("x", &["j#d1w"]),
            entry("x", &["k#d2w"]),
        ]);
        assert_eq!(print(&m, ix, &block, Style::Text), "p·(1 - p)·x_j·x_k");
        let penalty = IExpr::Mul(vec![
            scalar("lambda"),
            IExpr::Delta(Ix::Var("j#d1w".into()), Ix::Var("k#d2w".into())),
        ]);
        assert_eq!(
            print(&m, ix, &penalty, Style::Latex),
            "\\lambda \\, \\delta_{jk}"
        );
    }

    #[test]
    fn sums_matrices_and_fixed_indices() {
        let m = logistic();
        let ix = m.index.as_ref().unwrap();
        let z = IExpr::Add(vec![
            IExpr::Sum {
                var: "j#4".into(),
                from: 1,
                to: 10,
                body: Box::new(IExpr::Mul(vec![entry("w", &["j#4"]), entry("x", &["j#4"])])),
            },
            scalar("b"),
        ]);
        assert_eq!(print(&m, ix, &z, Style::Text), "b + (Σ_j=1..10 w_j·x_j)");
        let fixed = IExpr::entry("w", vec![Ix::Fixed(3)]);
        assert_eq!(print(&m, ix, &fixed, Style::Latex), "w_{3}");
    }
}
