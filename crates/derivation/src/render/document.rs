//! The derivation as a lecture note: an ordered list of blocks (headings,
//! paragraphs, equation chains, matrices), built once from a [`Derivation`]
//! and then written out by each format. The order is the one a teacher
//! follows: model, loss and objective, the local derivatives of
//! back-propagation, each partial derivative through the chain rule, the
//! gradient, the Hessian, the second-order Taylor model and the updates.

mod index_form;

use super::math::{Names, Printer, Style, tidy};
use crate::derivation::{Derivation, LOSS, NormalForms, REGULARIZER};
use hessforge_spec::{Expr, Model};

/// One piece of mathematics in both styles.
#[derive(Debug, Clone)]
pub(crate) struct Math {
    pub latex: String,
    pub text: String,
    /// LaTeX pieces between which a long line may be broken (each piece
    /// has balanced delimiters; pieces after the first carry their `+`/`-`
    /// or are factors continued with `\cdot`).
    pub latex_pieces: Vec<Piece>,
}

/// A piece of a breakable LaTeX line.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    /// A term of a sum, with its sign ("+ a", "- b", or the first term).
    Term(String),
    /// A factor of a product (continued with `\cdot` after a break).
    Factor(String),
}

impl Math {
    /// Mathematics with no break points.
    pub(crate) fn raw(latex: impl Into<String>, text: impl Into<String>) -> Math {
        let latex = latex.into();
        Math {
            latex_pieces: vec![Piece::Term(latex.clone())],
            latex,
            text: text.into(),
        }
    }
}

/// Inline content of a paragraph.
#[derive(Debug, Clone)]
pub(crate) enum Inline {
    /// Prose (may contain Unicode; the LaTeX writer translates it).
    Text(String),
    /// Inline mathematics.
    Math(Math),
}

/// A block of the document.
#[derive(Debug, Clone)]
pub(crate) enum Block {
    /// The document title.
    Title(String),
    /// A section heading.
    Heading(String),
    /// A paragraph.
    Paragraph(Vec<Inline>),
    /// `lhs = step₁ = step₂ …`, displayed.
    Equation { lhs: Math, steps: Vec<Math> },
    /// `lhs = (matrix)`, displayed.
    Matrix { lhs: Math, rows: Vec<Vec<Math>> },
}

struct Builder<'a> {
    d: &'a Derivation,
    model: &'a Model,
    names: Names,
    blocks: Vec<Block>,
}

/// Largest P for which the Hessian is shown as a matrix.
const MATRIX_MAX_P: usize = 6;
/// Largest P for which the gradient is shown as a column vector.
const VECTOR_MAX_P: usize = 12;
/// Longest list of names written out in full inside a sentence.
const INLINE_LIST_MAX: usize = 6;
/// More chains than this: show the result without the product of partials.
const CHAINS_SHOWN_MAX: usize = 4;

/// The blocks of the document: in index form where the model has tensor
/// parameters, unless `expand` asks for every scalar entry.
pub(crate) fn build(d: &Derivation, expand: bool) -> Vec<Block> {
    let index_form = !(expand && d.expanded);
    let mut b = Builder {
        d,
        model: &d.model,
        names: if index_form && d.index.is_some() {
            Names::for_index_form(&d.model)
        } else {
            Names::new(&d.model)
        },
        blocks: Vec::new(),
    };
    if let (Some(derived), Some(backprop), Some(index), true) =
        (&d.index, &d.backprop, &d.model.index, index_form)
    {
        // Displays need a tensor's first entry (its place), not all.
        let mut display = hessforge_spec::index::IndexModel {
            tensors: index
                .tensors
                .iter()
                .map(|t| hessforge_spec::index::IndexTensor {
                    name: t.name.clone(),
                    latex: t.latex.clone(),
                    role: t.role,
                    shape: t.shape.clone(),
                    ids: t.ids.iter().take(1).cloned().collect(),
                })
                .collect(),
            definitions: index.definitions.clone(),
            loss: index.loss.clone(),
            regularizer: index.regularizer.clone(),
        };
        // Signals are written first in a product, like a coefficient: δ⁽ᶻ⁾ x_j.
        display
            .tensors
            .extend(backprop.tensors.iter().cloned().map(|mut t| {
                t.role = hessforge_spec::Role::Constant;
                t
            }));
        let t = index_form::Tensors {
            display,
            derived,
            backprop,
        };
        b.tensor_document(&t);
        return b.blocks;
    }
    b.introduction();
    b.model_section();
    b.loss_section();
    b.local_derivatives();
    b.partial_derivatives();
    b.gradient();
    b.hessian();
    b.updates();
    b.blocks
}

fn text(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

impl<'a> Builder<'a> {
    /// The normal forms of an expanded derivation (the scalar document is
    /// written only for one: an unexpanded derivation has the index form).
    fn forms(&self) -> &'a NormalForms {
        self.d
            .forms
            .as_ref()
            .expect("the scalar document is written from an expanded derivation")
    }

    fn math(&self, e: &Expr) -> Math {
        let t = tidy(e, &self.names);
        let latex_printer = Printer {
            names: &self.names,
            style: Style::Latex,
        };
        let text_printer = Printer {
            names: &self.names,
            style: Style::Text,
        };
        let latex = latex_printer.print(&t);
        let pieces = if crate::render::too_wide(&latex) {
            self.pieces(&t, &latex_printer)
        } else {
            vec![Piece::Term(latex.clone())]
        };
        Math {
            latex,
            text: text_printer.print(&t),
            latex_pieces: pieces,
        }
    }

    /// Break points of a wide (tidied) expression: the terms of a sum; for a
    /// product, the terms of its widest sum factor between `\bigl(` and
    /// `\bigr)` (delimiters that may sit on different lines), or its factors.
    fn pieces(&self, t: &Expr, printer: &Printer) -> Vec<Piece> {
        if let Expr::Add(_) = t {
            return printer.terms(t).into_iter().map(Piece::Term).collect();
        }
        let Expr::Mul(factors) = t else {
            return vec![Piece::Term(printer.print(t))];
        };
        let widest_sum = factors
            .iter()
            .enumerate()
            .filter(|(_, f)| matches!(f, Expr::Add(xs) if xs.len() > 2))
            .max_by_key(|(_, f)| printer.print(f).len())
            .map(|(i, _)| i);
        match widest_sum {
            Some(i) => {
                let rest: Vec<Expr> = factors
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k != i)
                    .map(|(_, f)| f.clone())
                    .collect();
                let prefix = match rest.len() {
                    0 => String::new(),
                    _ => format!("{} \\, ", printer.print(&Expr::Mul(rest))),
                };
                let mut terms = printer.terms(&factors[i]);
                if let Some(first) = terms.first_mut() {
                    *first = format!("{prefix}\\bigl({first}");
                }
                if let Some(last) = terms.last_mut() {
                    last.push_str("\\bigr)");
                }
                terms.into_iter().map(Piece::Term).collect()
            }
            None => factors
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let s = printer.print(&Expr::Mul(vec![f.clone()]));
                    let s = if matches!(f, Expr::Add(_)) {
                        format!("\\left({s}\\right)")
                    } else {
                        s
                    };
                    if i == 0 {
                        Piece::Term(s)
                    } else {
                        Piece::Factor(s)
                    }
                })
                .collect(),
        }
    }

    fn name(&self, id: &str) -> Math {
        match id {
            LOSS => self.loss_symbol(),
            REGULARIZER => Math::raw("R", "R"),
            _ => Math::raw(
                self.names.show(id, Style::Latex),
                self.names.show(id, Style::Text),
            ),
        }
    }

    fn partial_symbol(&self, of: &str, wrt: &str) -> Math {
        let (o, w) = (self.name(of), self.name(wrt));
        Math::raw(
            format!("\\frac{{\\partial {}}}{{\\partial {}}}", o.latex, w.latex),
            format!("∂{}/∂{}", o.text, w.text),
        )
    }

    /// The data of one sample, as LaTeX and text (`x, y`), or at sample i
    /// (`x^{(i)}, y^{(i)}`).
    fn sample(&self, at_i: bool) -> (String, String) {
        let (latex, text): (Vec<String>, Vec<String>) = self
            .model
            .data_tensors
            .iter()
            .map(|t| {
                let base = crate::render::tensor_latex(self.model, &t.name);
                if at_i {
                    (format!("{base}^{{(i)}}"), format!("{}⁽ⁱ⁾", t.name))
                } else {
                    (base, t.name.clone())
                }
            })
            .unzip();
        (latex.join(", "), text.join(", "))
    }

    fn has_data(&self) -> bool {
        !self.model.data.is_empty()
    }

    fn loss_symbol(&self) -> Math {
        if self.has_data() {
            Math::raw("\\ell", "ℓ")
        } else {
            Math::raw("L", "L")
        }
    }

    fn ids_list(&self, ids: &[String]) -> Math {
        let latex: Vec<String> = ids
            .iter()
            .map(|i| self.names.show(i, Style::Latex))
            .collect();
        let text: Vec<String> = ids
            .iter()
            .map(|i| self.names.show(i, Style::Text))
            .collect();
        if ids.len() > INLINE_LIST_MAX {
            Math::raw(
                format!(
                    "{}, {}, \\ldots, {}",
                    latex[0],
                    latex[1],
                    latex[latex.len() - 1]
                ),
                format!("{}, {}, …, {}", text[0], text[1], text[text.len() - 1]),
            )
        } else {
            Math::raw(latex.join(", "), text.join(", "))
        }
    }

    fn introduction(&mut self) {
        self.blocks.push(Block::Title(self.model.title.clone()));
        self.blocks
            .push(Block::Paragraph(vec![text(self.model.description.clone())]));
        if let Some(notes) = &self.model.notes {
            for para in notes.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
                self.blocks
                    .push(Block::Paragraph(vec![text(para.replace('\n', " "))]));
            }
        }
    }

    fn model_section(&mut self) {
        self.blocks.push(Block::Heading("The model".into()));
        let mut tensors = Vec::new();
        for t in &self.model.param_tensors {
            let base = crate::render::tensor_latex(self.model, &t.name);
            let shape = match t.shape.as_slice() {
                [] => String::new(),
                [n] => format!(" \\in \\mathbb{{R}}^{{{n}}}"),
                [r, c] => format!(" \\in \\mathbb{{R}}^{{{r} \\times {c}}}"),
                _ => String::new(),
            };
            let text_shape = match t.shape.as_slice() {
                [] => String::new(),
                [n] => format!(" ∈ R^{n}"),
                [r, c] => format!(" ∈ R^{r}×{c}"),
                _ => String::new(),
            };
            tensors.push(Math::raw(
                format!("{base}{shape}"),
                format!("{}{text_shape}", t.name),
            ));
        }
        let p = self.model.n_params();
        let mut para = vec![text(format!("The parameters ({p} in all) are "))];
        for (i, m) in tensors.into_iter().enumerate() {
            if i > 0 {
                para.push(text(", "));
            }
            para.push(Inline::Math(m));
        }
        para.push(text(": "));
        let ids: Vec<String> = self.model.params.iter().map(|s| s.id.clone()).collect();
        let list = self.ids_list(&ids);
        para.push(Inline::Math(Math::raw(
            format!("\\theta = \\left({}\\right)", list.latex),
            format!("θ = ({})", list.text),
        )));
        para.push(text("."));
        self.blocks.push(Block::Paragraph(para));

        if self.has_data() {
            let ids: Vec<String> = self.model.data.iter().map(|s| s.id.clone()).collect();
            let list = self.ids_list(&ids);
            self.blocks.push(Block::Paragraph(vec![
                text("One sample of the data is "),
                Inline::Math(Math::raw(
                    format!("\\left({}\\right)", list.latex),
                    format!("({})", list.text),
                )),
                text("; the data set has N samples."),
            ]));
        } else {
            self.blocks.push(Block::Paragraph(vec![text(
                "The model has no data: the objective is the expression itself.",
            )]));
        }
        if !self.model.constants.is_empty() {
            let mut para = vec![text("Constants (defaults; override with --set): ")];
            for (i, (s, v)) in self.model.constants.iter().enumerate() {
                if i > 0 {
                    para.push(text(", "));
                }
                para.push(Inline::Math(Math::raw(
                    format!("{} = {v}", s.latex),
                    format!("{} = {v}", s.id),
                )));
            }
            para.push(text("."));
            self.blocks.push(Block::Paragraph(para));
        }
        if !self.model.definitions().is_empty() {
            self.blocks.push(Block::Paragraph(vec![text(
                "The intermediate quantities, in the order they are computed (the forward pass):",
            )]));
            for (def, expr) in self
                .model
                .definitions()
                .iter()
                .zip(&self.forms().definitions)
            {
                self.blocks.push(Block::Equation {
                    lhs: self.name(&def.scalar.id),
                    steps: vec![self.math(expr)],
                });
            }
        }
    }

    fn loss_section(&mut self) {
        self.blocks
            .push(Block::Heading("Loss and objective".into()));
        if self.has_data() {
            self.blocks
                .push(Block::Paragraph(vec![text("The loss of one sample:")]));
            self.blocks.push(Block::Equation {
                lhs: {
                    let (l, t) = self.sample(false);
                    Math::raw(format!("\\ell(\\theta; {l})"), format!("ℓ(θ; {t})"))
                },
                steps: vec![self.math(&self.forms().loss)],
            });
        } else {
            self.blocks.push(Block::Equation {
                lhs: Math::raw("L(\\theta)", "L(θ)"),
                steps: vec![self.math(&self.forms().loss)],
            });
        }
        if let Some(r) = &self.forms().regularizer {
            self.blocks.push(Block::Paragraph(vec![text(
                "The regularizer, a function of the parameters only:",
            )]));
            self.blocks.push(Block::Equation {
                lhs: Math::raw("R(\\theta)", "R(θ)"),
                steps: vec![self.math(r)],
            });
        }
        if self.has_data() {
            self.blocks.push(Block::Paragraph(vec![text(
                "The objective the optimizers minimise is the average loss over the data set:",
            )]));
            let (l, t) = self.sample(true);
            self.average_over_data(
                Math::raw("L(\\theta)", "L(θ)"),
                (
                    &format!("\\ell\\left(\\theta; {l}\\right)"),
                    &format!("ℓ(θ; {t})"),
                ),
                (" + R(\\theta)", " + R(θ)"),
            );
        }
    }

    /// `lhs = (1/N) Σᵢ term_i (+ the regularizer's part)`: how a per-sample
    /// quantity becomes the objective's.
    fn average_over_data(&mut self, lhs: Math, term: (&str, &str), regularizer: (&str, &str)) {
        let (reg, reg_t) = if self.model.has_regularizer() {
            regularizer
        } else {
            ("", "")
        };
        self.blocks.push(Block::Equation {
            lhs,
            steps: vec![Math::raw(
                format!("\\frac{{1}}{{N}} \\sum_{{i=1}}^{{N}} {}{reg}", term.0),
                format!("(1/N) Σᵢ {}{reg_t}", term.1),
            )],
        });
    }

    /// Local partials in back-propagation order: the loss first, then the
    /// intermediates from last computed to first.
    fn local_derivatives(&mut self) {
        if self.model.definitions().is_empty() {
            return;
        }
        self.blocks.push(Block::Heading(
            "Local derivatives (the backward pass)".into(),
        ));
        self.blocks.push(Block::Paragraph(vec![text(
            "Each quantity differentiated with respect to what it is computed from directly; \
             the chain rule multiplies these along every path from the loss to a parameter.",
        )]));
        // Tensors from the last computed to the first; the entries of one
        // tensor in forward order (h₁, h₂, …).
        let mut tensors: Vec<&str> = Vec::new();
        for d in self.model.definitions() {
            if !tensors.contains(&d.scalar.tensor.as_str()) {
                tensors.push(&d.scalar.tensor);
            }
        }
        let mut owners = vec![LOSS.to_string()];
        for tensor in tensors.iter().rev() {
            owners.extend(
                self.model
                    .definitions()
                    .iter()
                    .filter(|d| d.scalar.tensor == *tensor)
                    .map(|d| d.scalar.id.clone()),
            );
        }
        let order = self.variable_order();
        for owner in owners {
            let mut partials: Vec<_> = self
                .d
                .local_partials
                .iter()
                .filter(|lp| lp.of == owner)
                .collect();
            partials.sort_by_key(|lp| order(&lp.wrt));
            for lp in partials {
                self.blocks.push(Block::Equation {
                    lhs: self.partial_symbol(&lp.of, &lp.wrt),
                    steps: vec![self.math(&lp.expr)],
                });
            }
        }
    }

    /// Position of an id in the model (parameters in θ order, then intermediates).
    fn variable_order(&self) -> impl Fn(&str) -> usize + use<> {
        let ids: Vec<String> = self
            .model
            .params
            .iter()
            .map(|s| s.id.clone())
            .chain(self.model.definitions().iter().map(|d| d.scalar.id.clone()))
            .collect();
        move |id: &str| ids.iter().position(|i| i == id).unwrap_or(usize::MAX)
    }

    fn partial_derivatives(&mut self) {
        let ell = self.loss_symbol();
        self.blocks.push(Block::Heading(if self.has_data() {
            "Partial derivatives of the loss".into()
        } else {
            "Partial derivatives".into()
        }));
        for g in &self.d.gradient {
            let lhs = Math::raw(
                format!(
                    "\\frac{{\\partial {}}}{{\\partial {}}}",
                    ell.latex,
                    self.names.show(&g.param, Style::Latex)
                ),
                format!("∂{}/∂{}", ell.text, g.param),
            );
            let mut steps = Vec::new();
            let chained = g.paths.iter().any(|p| p.len() > 2);
            if chained && g.paths.len() <= CHAINS_SHOWN_MAX {
                let symbols: Vec<(String, String)> = g
                    .paths
                    .iter()
                    .map(|path| {
                        let parts: Vec<Math> = path
                            .windows(2)
                            .map(|w| self.partial_symbol(&w[0], &w[1]))
                            .collect();
                        product(&parts, " \\, ")
                    })
                    .collect();
                steps.push(join_sum(&symbols));
                let values: Vec<(String, String)> = g
                    .paths
                    .iter()
                    .map(|path| {
                        let parts: Vec<Math> = path
                            .windows(2)
                            .map(|w| {
                                let e = self
                                    .d
                                    .partial(&w[0], &w[1])
                                    .cloned()
                                    .unwrap_or(Expr::int(0));
                                let m = self.math(&e);
                                let t = tidy(&e, &self.names);
                                let negative = m.text.starts_with('-');
                                let wrap = matches!(t, Expr::Add(_)) || negative;
                                if wrap {
                                    Math::raw(
                                        format!("\\left({}\\right)", m.latex),
                                        format!("({})", m.text),
                                    )
                                } else {
                                    m
                                }
                            })
                            .collect();
                        product(&parts, " \\cdot ")
                    })
                    .collect();
                steps.push(join_sum(&values));
            }
            steps.push(self.math(&g.expr));
            self.blocks.push(Block::Equation { lhs, steps });
        }
        if self.model.has_regularizer() {
            self.blocks.push(Block::Paragraph(vec![text(
                "The regularizer's partial derivatives (zero where not listed):",
            )]));
            for (j, r) in self.d.regularizer_gradient.iter().enumerate() {
                if is_zero(r) {
                    continue;
                }
                let id = &self.model.params[j].id;
                self.blocks.push(Block::Equation {
                    lhs: self.partial_symbol(REGULARIZER, id),
                    steps: vec![self.math(r)],
                });
            }
        }
        if self.has_data() {
            let (l, t) = self.sample(true);
            self.blocks.push(Block::Paragraph(vec![text(
                "and for the objective, by linearity:",
            )]));
            self.average_over_data(
                Math::raw("\\frac{\\partial L}{\\partial \\theta_j}", "∂L/∂θⱼ"),
                (
                    &format!("\\frac{{\\partial \\ell\\left(\\theta; {l}\\right)}}{{\\partial \\theta_j}}"),
                    &format!("∂ℓ(θ; {t})/∂θⱼ"),
                ),
                (" + \\frac{\\partial R}{\\partial \\theta_j}", " + ∂R/∂θⱼ"),
            );
        }
    }

    fn gradient(&mut self) {
        let p = self.model.n_params();
        if p > VECTOR_MAX_P {
            return;
        }
        let ell = self.loss_symbol();
        self.blocks.push(Block::Heading("The gradient".into()));
        let rows: Vec<Vec<Math>> = self
            .d
            .gradient
            .iter()
            .map(|g| vec![self.math(&g.expr)])
            .collect();
        self.blocks.push(Block::Matrix {
            lhs: Math::raw(
                format!("\\nabla_\\theta {}", ell.latex),
                format!("∇{}", ell.text),
            ),
            rows,
        });
    }

    fn hessian(&mut self) {
        let p = self.model.n_params();
        let ell = self.loss_symbol();
        self.blocks.push(Block::Heading("The Hessian".into()));
        let lhs = Math::raw(
            format!("\\nabla^2_\\theta {}", ell.latex),
            format!("∇²{}", ell.text),
        );
        // A matrix where it fits the page, else the upper triangle by
        // parameter name (the same layout in every format).
        let rows: Vec<Vec<Math>> = if p <= MATRIX_MAX_P {
            self.d
                .hessian
                .iter()
                .map(|row| row.iter().map(|e| self.math(e)).collect())
                .collect()
        } else {
            Vec::new()
        };
        if p <= MATRIX_MAX_P && super::matrix_fits(&rows) {
            self.blocks.push(Block::Matrix { lhs, rows });
        } else {
            let mut zeros = 0;
            let mut entries = Vec::new();
            for j in 0..p {
                for k in j..p {
                    let e = &self.d.hessian[j][k];
                    if is_zero(e) {
                        zeros += 1;
                    } else {
                        entries.push((j, k, e.clone()));
                    }
                }
            }
            self.blocks.push(Block::Paragraph(vec![
                text(format!(
                    "The Hessian is symmetric, so only the upper triangle is listed: {} distinct non-zero entries ({} of the {} entries with ",
                    entries.len(),
                    zeros,
                    p * (p + 1) / 2
                )),
                Inline::Math(Math::raw("j \\le k", "j ≤ k")),
                text(" are zero), each equal to its mirror image "),
                Inline::Math(Math::raw(
                    format!("H_{{kj}} = \\frac{{\\partial^2 {}}}{{\\partial \\theta_k \\partial \\theta_j}}", ell.latex),
                    format!("H_kj = ∂²{}/∂θ_k∂θ_j", ell.text),
                )),
                text("."),
            ]));
            for (j, k, e) in entries {
                let (a, b) = (&self.model.params[j].id, &self.model.params[k].id);
                let (la, lb) = (
                    self.names.show(a, Style::Latex),
                    self.names.show(b, Style::Latex),
                );
                let lhs = if j == k {
                    Math::raw(
                        format!("\\frac{{\\partial^2 {}}}{{\\partial {la}^2}}", ell.latex),
                        format!("∂²{}/∂{a}²", ell.text),
                    )
                } else {
                    Math::raw(
                        format!(
                            "\\frac{{\\partial^2 {}}}{{\\partial {la} \\, \\partial {lb}}}",
                            ell.latex
                        ),
                        format!("∂²{}/∂{a}∂{b}", ell.text),
                    )
                };
                self.blocks.push(Block::Equation {
                    lhs,
                    steps: vec![self.math(&e)],
                });
            }
        }
        if self.model.has_regularizer() {
            let diag_same = (0..p)
                .all(|j| (0..p).all(|k| j == k || is_zero(&self.d.regularizer_hessian[j][k])))
                && (1..p)
                    .all(|j| self.d.regularizer_hessian[j][j] == self.d.regularizer_hessian[0][0]);
            if diag_same {
                let m = self.math(&self.d.regularizer_hessian[0][0]);
                self.blocks.push(Block::Paragraph(vec![
                    text("The regularizer adds "),
                    Inline::Math(Math::raw(
                        format!("\\nabla^2 R = {} \\, I", m.latex),
                        format!("∇²R = {}·I", m.text),
                    )),
                    text(" to the Hessian of the objective."),
                ]));
            } else {
                self.blocks.push(Block::Paragraph(vec![text(
                    "The regularizer's Hessian (non-zero entries):",
                )]));
                for j in 0..p {
                    for k in j..p {
                        let e = &self.d.regularizer_hessian[j][k];
                        if is_zero(e) {
                            continue;
                        }
                        let (a, b) = (&self.model.params[j].id, &self.model.params[k].id);
                        let lhs = Math::raw(
                            format!(
                                "\\frac{{\\partial^2 R}}{{\\partial {} \\, \\partial {}}}",
                                self.names.show(a, Style::Latex),
                                self.names.show(b, Style::Latex)
                            ),
                            format!("∂²R/∂{a}∂{b}"),
                        );
                        self.blocks.push(Block::Equation {
                            lhs,
                            steps: vec![self.math(e)],
                        });
                    }
                }
            }
        }
        if self.has_data() {
            let (l, t) = self.sample(true);
            self.average_over_data(
                Math::raw("\\nabla^2 L(\\theta)", "∇²L(θ)"),
                (
                    &format!("\\nabla^2_\\theta \\ell\\left(\\theta; {l}\\right)"),
                    &format!("∇²ℓ(θ; {t})"),
                ),
                (" + \\nabla^2 R(\\theta)", " + ∇²R(θ)"),
            );
        }
    }

    fn updates(&mut self) {
        self.blocks
            .push(Block::Heading("Second-order model and the updates".into()));
        self.taylor_and_gradient_descent();
        self.newton_update();
        if !self.has_data() {
            self.stationary_points();
        }
        self.relu_convention();
    }

    /// Where the algebra finds the minimum: a loss that is a sum of squares
    /// with positive weights is ≥ 0 and 0 exactly where every square's base
    /// is; bases that each fix one more parameter (r = a − x, q = y − x²)
    /// are solved in turn (x = a, y = a²).
    fn stationary_points(&mut self) {
        let Some(bases) = squares_with_positive_weights(self.model, self.model.loss()) else {
            return;
        };
        let params: Vec<&str> = self.model.params.iter().map(|s| s.id.as_str()).collect();
        let mut solved: Vec<(String, Expr)> = Vec::new();
        for base in &bases {
            let e = self
                .model
                .definitions()
                .iter()
                .find(|d| d.scalar.id == *base)
                .map(|d| d.expr.clone())
                .unwrap_or_else(|| Expr::Var(base.clone()));
            let unsolved = |id: &str| params.contains(&id) && !solved.iter().any(|(s, _)| s == id);
            let Some((theta, value)) = solve_lone_term(&e, &unsolved) else {
                return;
            };
            let value = solved
                .iter()
                .fold(value, |v, (id, with)| substitute(&v, id, with));
            solved.push((theta, value));
        }
        if solved.len() != params.len() {
            return;
        }
        let mut env: std::collections::HashMap<String, f64> = self
            .model
            .constants
            .iter()
            .map(|(s, v)| (s.id.clone(), *v))
            .collect();
        let mut numbers = Vec::new();
        for id in &params {
            let Some((_, value)) = solved.iter().find(|(s, _)| s == id) else {
                return;
            };
            let Some(v) = value.eval(&env) else {
                return;
            };
            env.insert(id.to_string(), v);
            // + 0.0 writes −0 as 0.
            numbers.push(format!("{}", v + 0.0));
        }
        let show = |ids: &[String], style: Style| {
            ids.iter()
                .map(|id| self.names.show(id, style))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let solutions: Vec<Math> = params
            .iter()
            .filter_map(|id| solved.iter().find(|(s, _)| s == id))
            .map(|(id, value)| {
                let m = self.math(value);
                Math::raw(
                    format!("{} = {}", self.names.show(id, Style::Latex), m.latex),
                    format!("{id} = {}", m.text),
                )
            })
            .collect();
        let mut para = vec![
            text("The minimum: "),
            Inline::Math(self.loss_symbol()),
            text(" is a sum of squares with positive weights, so "),
            Inline::Math(Math::raw("L \\geq 0", "L ≥ 0")),
            text(", and "),
            Inline::Math(Math::raw("L = 0", "L = 0")),
            text(" — the global minimum — exactly where "),
            Inline::Math(Math::raw(
                format!("{} = 0", show(&bases, Style::Latex).replace(", ", " = ")),
                format!("{} = 0", show(&bases, Style::Text).replace(", ", " = ")),
            )),
        ];
        // Bases that are the parameters themselves need no solving.
        if bases.iter().all(|b| params.contains(&b.as_str())) {
            para.push(text("."));
        } else {
            para.push(text(": "));
            for (k, m) in solutions.into_iter().enumerate() {
                if k > 0 {
                    para.push(text(", "));
                }
                para.push(Inline::Math(m));
            }
            para.push(text(format!(" (here ({})).", numbers.join(", "))));
        }
        self.blocks.push(Block::Paragraph(para));
    }

    /// The Taylor model and the gradient-descent update.
    fn taylor_and_gradient_descent(&mut self) {
        self.blocks.push(Block::Paragraph(vec![text(
            "Near θ the objective is approximated by its second-order Taylor model, with d a step:",
        )]));
        self.blocks.push(taylor_model());
        self.blocks.push(Block::Paragraph(vec![
            text("Gradient descent steps against the gradient with a learning rate "),
            Inline::Math(Math::raw("\\alpha", "α")),
            text(":"),
        ]));
        self.blocks.push(gradient_step());
    }

    fn newton_update(&mut self) {
        self.blocks.push(Block::Paragraph(vec![text(
            "Newton's method jumps to the minimum of the Taylor model, which exists when the Hessian is positive definite:",
        )]));
        self.blocks.push(Block::Equation {
            lhs: Math::raw("\\theta", "θ"),
            steps: vec![Math::raw(
                "\\leftarrow \\theta - \\left[\\nabla^2 L(\\theta)\\right]^{-1} \\nabla L(\\theta)",
                "← θ − [∇²L(θ)]⁻¹∇L(θ)",
            )],
        });
        self.blocks.extend(hessian_free_step());
        if let Some(step) = &self.d.newton_step {
            self.blocks.push(Block::Paragraph(vec![text(
                "Written out for this model, the Newton step is:",
            )]));
            for (j, e) in step.iter().enumerate() {
                let id = &self.model.params[j].id;
                self.blocks.push(Block::Equation {
                    lhs: Math::raw(
                        format!("d_{{{}}}", self.names.show(id, Style::Latex)),
                        format!("d_{id}"),
                    ),
                    steps: vec![self.math(e)],
                });
            }
        }
    }

    /// How ReLU is differentiated, where the model uses it.
    fn relu_convention(&mut self) {
        let uses = |f: hessforge_spec::Func| {
            let mut found = false;
            visit_calls(self.model.loss(), &mut |g| found |= g == f);
            for d in self.model.definitions() {
                visit_calls(&d.expr, &mut |g| found |= g == f);
            }
            found
        };
        if uses(hessforge_spec::Func::Relu) {
            self.blocks.push(Block::Paragraph(vec![text(
                "Convention: ReLU is differentiated as step(u) (0 at u = 0) and its second derivative is taken as 0 everywhere, as in back-propagation practice.",
            )]));
        }
    }
}

/// L(θ + d) ≈ L(θ) + ∇L(θ)ᵀd + ½ dᵀ∇²L(θ)d.
fn taylor_model() -> Block {
    Block::Equation {
        lhs: Math::raw("L(\\theta + d)", "L(θ + d)"),
        steps: vec![Math::raw(
            "\\approx L(\\theta) + \\nabla L(\\theta)^\\top d + \\frac{1}{2} \\, d^\\top \\nabla^2 L(\\theta) \\, d",
            "≈ L(θ) + ∇L(θ)ᵀd + ½ dᵀ∇²L(θ)d",
        )],
    }
}

/// The Hessian-free Newton step: CG on products ∇²L·v, each a directional
/// derivative of the gradient (one paragraph: the lecture notes stay short).
fn hessian_free_step() -> [Block; 1] {
    [Block::Paragraph(vec![
        text("Hessian-free Newton gets "),
        Inline::Math(Math::raw("[\\nabla^2 L]^{-1} \\nabla L", "[∇²L]⁻¹∇L")),
        text(" by conjugate gradients on products "),
        Inline::Math(Math::raw(
            "\\nabla^2 L\\, v = \\partial_\\varepsilon \\nabla L(\\theta + \\varepsilon v)|_0",
            "∇²L v = ∂ε ∇L(θ + εv) at 0",
        )),
        text(", each costing about one gradient."),
    ])]
}

/// θ ← θ − α∇L(θ).
fn gradient_step() -> Block {
    Block::Equation {
        lhs: Math::raw("\\theta", "θ"),
        steps: vec![Math::raw(
            "\\leftarrow \\theta - \\alpha \\, \\nabla L(\\theta)",
            "← θ − α∇L(θ)",
        )],
    }
}

/// The bases of `Σ wᵢ·uᵢ²` with every weight a positive number or a
/// constant with a positive value (a common positive factor allowed):
/// `r^2 + c * q^2`, `(x^2 + 25 * y^2) / 2`. Each base is a name.
fn squares_with_positive_weights(model: &Model, e: &Expr) -> Option<Vec<String>> {
    let positive = |f: &Expr| match f {
        Expr::Num(r) => !r.is_negative() && !r.is_zero(),
        Expr::Var(id) => model.constants.iter().any(|(s, v)| s.id == *id && *v > 0.0),
        Expr::Pow(b, _) => matches!(&**b, Expr::Num(r) if !r.is_negative() && !r.is_zero()),
        _ => false,
    };
    let square = |t: &Expr| -> Option<String> {
        let factors: Vec<&Expr> = match t {
            Expr::Mul(xs) => xs.iter().collect(),
            other => vec![other],
        };
        let mut base = None;
        for f in factors {
            match f {
                Expr::Pow(b, two) if matches!(&**two, Expr::Num(r) if r.is(2, 1)) => {
                    let Expr::Var(id) = &**b else { return None };
                    if base.replace(id.clone()).is_some() {
                        return None;
                    }
                }
                f if positive(f) => {}
                _ => return None,
            }
        }
        base
    };
    // A common positive factor of the whole sum.
    let sum = match e {
        Expr::Mul(xs) => {
            let (sums, rest): (Vec<&Expr>, Vec<&Expr>) =
                xs.iter().partition(|x| matches!(x, Expr::Add(_)));
            match (sums.as_slice(), rest.iter().all(|f| positive(f))) {
                ([s], true) => (*s).clone(),
                _ => e.clone(),
            }
        }
        other => other.clone(),
    };
    let terms = match &sum {
        Expr::Add(ts) => ts.clone(),
        other => vec![other.clone()],
    };
    terms.iter().map(square).collect()
}

/// `e = 0` solved for a parameter that is a lone term of `e` with
/// coefficient ±1 and appears nowhere else: `a − x = 0` gives x = a.
fn solve_lone_term(e: &Expr, unsolved: &dyn Fn(&str) -> bool) -> Option<(String, Expr)> {
    let terms: Vec<Expr> = match e {
        Expr::Add(ts) => ts.clone(),
        other => vec![other.clone()],
    };
    for (k, t) in terms.iter().enumerate() {
        let (id, sign) = match t {
            Expr::Var(id) => (id, 1),
            Expr::Mul(f) if f.len() == 2 && matches!(&f[0], Expr::Num(r) if r.is(-1, 1)) => {
                match &f[1] {
                    Expr::Var(id) => (id, -1),
                    _ => continue,
                }
            }
            _ => continue,
        };
        let rest: Vec<Expr> = terms
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .map(|(_, x)| x.clone())
            .collect();
        if !unsolved(id) || rest.iter().any(|x| x.free_vars().contains(id)) {
            continue;
        }
        let rest = match rest.len() {
            0 => Expr::int(0),
            1 => rest.into_iter().next().unwrap_or(Expr::int(0)),
            _ => Expr::Add(rest),
        };
        // ±θ + rest = 0.
        let value = if sign > 0 {
            Expr::Mul(vec![Expr::int(-1), rest])
        } else {
            rest
        };
        return Some((id.clone(), value));
    }
    None
}

/// `e` with the name `id` replaced by `with`.
fn substitute(e: &Expr, id: &str, with: &Expr) -> Expr {
    let map = |xs: &[Expr]| xs.iter().map(|x| substitute(x, id, with)).collect();
    match e {
        Expr::Var(v) if v == id => with.clone(),
        Expr::Num(_) | Expr::Var(_) => e.clone(),
        Expr::Add(xs) => Expr::Add(map(xs)),
        Expr::Mul(xs) => Expr::Mul(map(xs)),
        Expr::Pow(a, b) => Expr::Pow(
            Box::new(substitute(a, id, with)),
            Box::new(substitute(b, id, with)),
        ),
        Expr::Call(f, a) => Expr::Call(*f, Box::new(substitute(a, id, with))),
    }
}

fn visit_calls(e: &Expr, f: &mut dyn FnMut(hessforge_spec::Func)) {
    match e {
        Expr::Num(_) | Expr::Var(_) => {}
        Expr::Add(xs) | Expr::Mul(xs) => xs.iter().for_each(|x| visit_calls(x, f)),
        Expr::Pow(a, b) => {
            visit_calls(a, f);
            visit_calls(b, f);
        }
        Expr::Call(g, a) => {
            f(*g);
            visit_calls(a, f);
        }
    }
}

fn is_zero(e: &Expr) -> bool {
    matches!(e, Expr::Num(r) if r.is_zero())
}

/// A product of pieces: LaTeX joined by `latex_join`, text by ` · `.
fn product(parts: &[Math], latex_join: &str) -> (String, String) {
    let latex: Vec<&str> = parts.iter().map(|m| m.latex.as_str()).collect();
    let text: Vec<&str> = parts.iter().map(|m| m.text.as_str()).collect();
    (latex.join(latex_join), text.join(" · "))
}

fn join_sum(parts: &[(String, String)]) -> Math {
    let latex: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    let text: Vec<&str> = parts.iter().map(|p| p.1.as_str()).collect();
    Math {
        latex: latex.join(" + "),
        text: text.join(" + "),
        latex_pieces: latex
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Piece::Term(if i == 0 {
                    s.to_string()
                } else {
                    format!("+ {s}")
                })
            })
            .collect(),
    }
}
