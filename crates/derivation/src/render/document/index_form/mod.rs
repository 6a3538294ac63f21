//! The lecture note of a model with vector or matrix parameters, written
//! from the index form in three layers, as Bishop (§4.3.3, §5.4) and the
//! CS229 notes do: per sample and per index (the chain rule once per
//! parameter tensor, back-propagation as error signals δ⁽ᵘ⁾); vector and
//! matrix forms wherever a pattern is recognised (wᵀx + b, ‖w‖², (p − y) x,
//! x xᵀ, Kronecker blocks); and the data set (X̃ᵀ(p − y)/N, X̃ᵀSX̃/N) where
//! the loss reaches the parameters through one affine score. It states
//! what the algebra shows about the Hessian — convexity, a Gauss–Newton and
//! a residual term, a null direction — and never more.

use super::{Block, Builder, Inline, Math, text};
use crate::backprop::{Backpropagation, Bottleneck, LOSS_USER, signal_tensor};
use crate::index_calculus::IndexDerivation;
use crate::render::index;
use crate::render::math::Style;
use crate::render::vector;
use hessforge_spec::index::{IExpr, IndexModel, Ix};
use hessforge_spec::{Func, Role};

mod curvature;
use curvature::*;

/// The index-form pieces the builder works from.
pub(super) struct Tensors<'a> {
    /// The model's index form, with the signal tensors δ(u) added.
    pub display: IndexModel,
    pub derived: &'a IndexDerivation,
    pub backprop: &'a Backpropagation,
}

/// The letter a derivative index is shown with (`j` for `j#d1w`).
fn letter(v: &str) -> &str {
    v.split('#').next().unwrap_or(v)
}

fn subscript(vars: &[String]) -> String {
    vars.iter().map(|v| letter(v)).collect()
}

impl Builder<'_> {
    /// Index form and vector form of one expression, as Math.
    fn index_math(&self, t: &Tensors, e: &IExpr) -> Math {
        Math::raw(
            index::print(self.model, &t.display, e, Style::Latex),
            index::print(self.model, &t.display, e, Style::Text),
        )
    }

    /// An index-form expression at sample i: data and intermediates carry
    /// the superscript (i).
    fn sample_math(&self, t: &Tensors, e: &IExpr) -> Math {
        let mut names = crate::render::math::Names::for_index_form(self.model);
        names.at_sample_i();
        let mut display = t.display.clone();
        for x in &mut display.tensors {
            if matches!(x.role, Role::Data | Role::Intermediate) {
                x.latex = format!("{}^{{(i)}}", x.latex);
            }
            x.ids.truncate(1);
        }
        Math::raw(
            index::print_with(names, &display, e, Style::Latex),
            format!(
                "{} (sample i)",
                index::print(self.model, &t.display, e, Style::Text)
            ),
        )
    }

    fn vector_math(
        &self,
        t: &Tensors,
        e: &IExpr,
        rows: &[String],
        cols: &[String],
    ) -> Option<Math> {
        Some(Math::raw(
            vector::print(self.model, &t.display, e, rows, cols, Style::Latex)?,
            vector::print(self.model, &t.display, e, rows, cols, Style::Text)?,
        ))
    }

    /// `name_{jl}` of a tensor at derivative indices, as LaTeX and text.
    fn entry_name(&self, t: &Tensors, tensor: &str, vars: &[String]) -> (String, String) {
        let base = t
            .display
            .tensor(tensor)
            .map(|x| x.latex.clone())
            .unwrap_or_else(|| tensor.to_string());
        let sub = subscript(vars);
        if sub.is_empty() {
            (base, self.text_name(tensor))
        } else {
            (
                format!("{base}_{{{sub}}}"),
                format!("{}_{sub}", self.text_name(tensor)),
            )
        }
    }

    fn text_name(&self, tensor: &str) -> String {
        tensor.to_string()
    }

    /// The LaTeX base name of a tensor and its text name.
    fn tensor_base(&self, t: &Tensors, tensor: &str) -> (String, String) {
        self.entry_name(t, tensor, &[])
    }

    fn shape_math(&self, t: &Tensors, tensor: &str) -> Math {
        let (l, x) = self.tensor_base(t, tensor);
        let shape = t
            .display
            .tensor(tensor)
            .map(|x| x.shape.clone())
            .unwrap_or_default();
        match shape.as_slice() {
            [] => Math::raw(format!("{l} \\in \\mathbb{{R}}"), format!("{x} ∈ ℝ")),
            [n] => Math::raw(
                format!("{l} \\in \\mathbb{{R}}^{{{n}}}"),
                format!("{x} ∈ ℝ^{n}"),
            ),
            [r, c] => Math::raw(
                format!("{l} \\in \\mathbb{{R}}^{{{r} \\times {c}}}"),
                format!("{x} ∈ ℝ^{r}×{c}"),
            ),
            _ => Math::raw(l, x),
        }
    }

    fn list_of(&self, maths: Vec<Math>) -> Vec<Inline> {
        let n = maths.len();
        let mut out = Vec::new();
        for (i, m) in maths.into_iter().enumerate() {
            if i > 0 {
                out.push(text(if i + 1 == n { " and " } else { ", " }));
            }
            out.push(Inline::Math(m));
        }
        out
    }

    pub(super) fn tensor_document(&mut self, t: &Tensors) {
        self.introduction();
        self.tensor_model(t);
        self.tensor_loss(t);
        self.back_propagation(t);
        self.tensor_gradient(t);
        let facts = CurvatureFacts::of(t);
        self.tensor_hessian(t, &facts);
        self.tensor_updates(t, &facts);
    }

    fn tensor_model(&mut self, t: &Tensors) {
        self.blocks.push(Block::Heading("The model".into()));
        let roles = |role: Role| -> Vec<String> {
            t.display
                .tensors
                .iter()
                .filter(|x| x.role == role && !x.name.starts_with('δ'))
                .map(|x| x.name.clone())
                .collect()
        };
        let params = roles(Role::Parameter);
        let mut para = vec![text("The parameters are ")];
        para.extend(self.list_of(params.iter().map(|p| self.shape_math(t, p)).collect()));
        para.push(text(format!(
            ", {} numbers in all, together ",
            self.model.n_params()
        )));
        para.push(Inline::Math(Math::raw("\\theta", "θ")));
        para.push(text(". One sample is "));
        let data = roles(Role::Data);
        para.extend(self.list_of(data.iter().map(|p| self.shape_math(t, p)).collect()));
        para.push(text("; the data set has "));
        para.push(Inline::Math(Math::raw("N", "N")));
        para.push(text(" samples."));
        self.blocks.push(Block::Paragraph(para));
        if !self.model.constants.is_empty() {
            let mut para = vec![text("Constants: ")];
            let maths = self
                .model
                .constants
                .iter()
                .map(|(s, v)| Math::raw(format!("{} = {v}", s.latex), format!("{} = {v}", s.id)))
                .collect();
            para.extend(self.list_of(maths));
            para.push(text("."));
            self.blocks.push(Block::Paragraph(para));
        }
        if t.display.definitions.is_empty() {
            return;
        }
        self.blocks.push(Block::Paragraph(vec![text(
            "The forward pass, in the order it is computed (functions of vectors act entry by entry):",
        )]));
        for d in &t.display.definitions {
            let (rows, cols): (Vec<String>, Vec<String>) = (d.indices.clone(), Vec::new());
            let (base, base_text) = self.tensor_base(t, &d.name);
            let step = match self.vector_math(t, &d.expr, &rows, &cols) {
                Some(m) => (Math::raw(base, base_text), m),
                None => {
                    let (l, x) = self.entry_name(t, &d.name, &d.indices);
                    (Math::raw(l, x), self.index_math(t, &d.expr))
                }
            };
            self.blocks.push(Block::Equation {
                lhs: step.0,
                steps: vec![step.1],
            });
        }
    }

    fn sample_args(&self, t: &Tensors, sample: bool) -> (String, String) {
        let data: Vec<(String, String)> = t
            .display
            .tensors
            .iter()
            .filter(|x| x.role == Role::Data && !x.name.starts_with('δ'))
            .map(|x| {
                if sample {
                    (format!("{}^{{(i)}}", x.latex), format!("{}⁽ⁱ⁾", x.name))
                } else {
                    (x.latex.clone(), x.name.clone())
                }
            })
            .collect();
        (
            data.iter()
                .map(|d| d.0.clone())
                .collect::<Vec<_>>()
                .join(", "),
            data.iter()
                .map(|d| d.1.clone())
                .collect::<Vec<_>>()
                .join(", "),
        )
    }

    fn tensor_loss(&mut self, t: &Tensors) {
        self.blocks
            .push(Block::Heading("Loss and objective".into()));
        let (args, args_text) = self.sample_args(t, false);
        let loss = self
            .vector_math(t, &t.display.loss, &[], &[])
            .unwrap_or_else(|| self.index_math(t, &t.display.loss));
        let mut para = vec![
            text("The loss of one sample "),
            Inline::Math(Math::raw(
                format!("\\ell(\\theta; {args})"),
                format!("ℓ(θ; {args_text})"),
            )),
        ];
        if let Some(r) = &t.display.regularizer {
            let reg = self
                .vector_math(t, r, &[], &[])
                .unwrap_or_else(|| self.index_math(t, r));
            para.push(text(" and the regularizer "));
            para.push(Inline::Math(Math::raw("R(\\theta)", "R(θ)")));
            para.push(text(" are"));
            self.blocks.push(Block::Paragraph(para));
            self.blocks.push(Block::Equation {
                lhs: Math::raw(
                    format!("\\ell(\\theta; {args})"),
                    format!("ℓ(θ; {args_text})"),
                ),
                steps: vec![loss],
            });
            self.blocks.push(Block::Equation {
                lhs: Math::raw("R(\\theta)", "R(θ)"),
                steps: vec![reg],
            });
        } else {
            para.push(text(" is"));
            self.blocks.push(Block::Paragraph(para));
            self.blocks.push(Block::Equation {
                lhs: Math::raw(
                    format!("\\ell(\\theta; {args})"),
                    format!("ℓ(θ; {args_text})"),
                ),
                steps: vec![loss],
            });
        }
        self.blocks.push(Block::Paragraph(vec![text(
            "and the objective the optimizers minimise is the average loss over the data set:",
        )]));
        let (sample, sample_text) = self.sample_args(t, true);
        self.average_over_data(
            Math::raw("L(\\theta)", "L(θ)"),
            (
                &format!("\\ell\\left(\\theta; {sample}\\right)"),
                &format!("ℓ(θ; {sample_text})"),
            ),
            (" + R(\\theta)", " + R(θ)"),
        );
    }

    /// `Σ_i δ⁽ᵉ⁾_i ∂e_i/∂target` for each user e, as LaTeX and text.
    fn chain_symbols(&self, t: &Tensors, target: (&str, &[String]), users: &[String]) -> Math {
        let (tl, tt) = self.entry_name(t, target.0, target.1);
        let mut latex = Vec::new();
        let mut plain = Vec::new();
        for u in users {
            if u == LOSS_USER {
                latex.push(format!("\\frac{{\\partial \\ell}}{{\\partial {tl}}}"));
                plain.push(format!("∂ℓ/∂{tt}"));
                continue;
            }
            let shape = t.display.tensor(u).map(|x| x.shape.len()).unwrap_or(0);
            let sig = signal_tensor(u);
            let (sl, st) = self.tensor_base(t, &sig);
            let (ul, ut) = self.tensor_base(t, u);
            match shape {
                0 => {
                    latex.push(format!(
                        "{sl} \\, \\frac{{\\partial {ul}}}{{\\partial {tl}}}"
                    ));
                    plain.push(format!("{st}·∂{ut}/∂{tt}"));
                }
                _ => {
                    let idx = if shape == 1 { "i" } else { "ir" };
                    latex.push(format!(
                        "\\sum_{{{}}} {sl}_{{{idx}}} \\, \\frac{{\\partial {ul}_{{{idx}}}}}{{\\partial {tl}}}",
                        idx.chars().map(String::from).collect::<Vec<_>>().join(",")
                    ));
                    plain.push(format!("Σ_{idx} {st}_{idx}·∂{ut}_{idx}/∂{tt}"));
                }
            }
        }
        Math::raw(latex.join(" + "), plain.join(" + "))
    }

    fn back_propagation(&mut self, t: &Tensors) {
        let b = t.backprop;
        if b.signals.is_empty() {
            return;
        }
        self.blocks.push(Block::Heading(
            "Back-propagation: the chain rule once per tensor".into(),
        ));
        let mut para = vec![
            text("The error signal of an intermediate quantity "),
            Inline::Math(Math::raw("u", "u")),
            text(" is "),
        ];
        para.push(Inline::Math(Math::raw(
            "\\delta^{(u)} = \\partial \\ell / \\partial u",
            "δ(u) = ∂ℓ/∂u",
        )));
        para.push(text(
            ". From the loss backwards, each signal is the signals of the quantities that use ",
        ));
        para.push(Inline::Math(Math::raw("u", "u")));
        para.push(text(" times their local derivatives:"));
        self.blocks.push(Block::Paragraph(para));
        for s in &b.signals {
            let (l, x) = self.entry_name(t, &signal_tensor(&s.quantity), &s.indices);
            let mut steps = vec![self.chain_symbols(t, (&s.quantity, &s.indices), &s.users)];
            let local = self.index_math(t, &s.local);
            let value = self.index_math(t, &s.value);
            if !(s.users.len() == 1 && s.users[0] == LOSS_USER) {
                steps.push(local.clone());
            }
            if value.latex != local.latex || steps.len() == 1 {
                steps.push(value);
            }
            self.blocks.push(Block::Equation {
                lhs: Math::raw(l, x),
                steps,
            });
        }
        let vector_forms: Vec<Math> = b
            .signals
            .iter()
            .filter(|s| s.indices.len() == 1 && s.users.iter().all(|u| u != LOSS_USER))
            .filter_map(|s| {
                let m = self.vector_math(t, &s.local, &s.indices, &[])?;
                let (l, x) = self.tensor_base(t, &signal_tensor(&s.quantity));
                Some(Math::raw(
                    format!("{l} = {}", m.latex),
                    format!("{x} = {}", m.text),
                ))
            })
            .collect();
        if !vector_forms.is_empty() {
            let mut para = vec![text("In vector form the recursion reads ")];
            para.extend(self.list_of(vector_forms));
            para.push(text("."));
            self.blocks.push(Block::Paragraph(para));
        }
        self.blocks.push(Block::Paragraph(vec![text(
            "Each parameter tensor receives the signal of the quantity it enters:",
        )]));
        for input in &b.inputs {
            let (tl, tt) = self.entry_name(t, &input.tensor, &input.indices);
            let lhs = Math::raw(
                format!("\\frac{{\\partial \\ell}}{{\\partial {tl}}}"),
                format!("∂ℓ/∂{tt}"),
            );
            let mut steps = vec![
                self.chain_symbols(t, (&input.tensor, &input.indices), &input.users),
                self.index_math(t, &input.local),
            ];
            if let Some(g) = t.derived.gradient.iter().find(|g| g.tensor == input.tensor) {
                let v = self.index_math(t, &g.loss);
                if v.latex != steps[1].latex {
                    steps.push(v);
                }
            }
            self.blocks.push(Block::Equation { lhs, steps });
        }
    }

    fn tensor_gradient(&mut self, t: &Tensors) {
        self.blocks.push(Block::Heading("The gradient".into()));
        let vector_tensors = t.derived.gradient.iter().any(|g| !g.indices.is_empty());
        if vector_tensors {
            self.blocks.push(Block::Paragraph(vec![text(
                "In vector and matrix form (a gradient has the shape of its tensor):",
            )]));
        }
        for g in &t.derived.gradient {
            let input = t.backprop.inputs.iter().find(|i| i.tensor == g.tensor);
            let (bl, bt) = self.tensor_base(t, &g.tensor);
            let lhs = if g.indices.is_empty() {
                Math::raw(
                    format!("\\frac{{\\partial \\ell}}{{\\partial {bl}}}"),
                    format!("∂ℓ/∂{bt}"),
                )
            } else {
                Math::raw(format!("\\nabla_{{{bl}}} \\ell"), format!("∇_{bt} ℓ"))
            };
            let mut steps = Vec::new();
            if let Some(i) = input
                && let Some(m) = self.vector_math(t, &i.local, &g.indices, &[])
            {
                steps.push(m);
            }
            match self.vector_math(t, &g.loss, &g.indices, &[]) {
                Some(m) => {
                    if steps.first().is_none_or(|s| s.latex != m.latex) {
                        steps.push(m);
                    }
                }
                None => {
                    steps.clear();
                }
            }
            if steps.is_empty() {
                continue;
            }
            self.blocks.push(Block::Equation { lhs, steps });
        }
        let reg: Vec<_> = t
            .derived
            .gradient
            .iter()
            .filter(|g| !g.regularizer.is_int(0))
            .collect();
        if !reg.is_empty() {
            let mut para = vec![text("The regularizer adds ")];
            let maths = reg
                .iter()
                .map(|g| {
                    let (bl, bt) = self.tensor_base(t, &g.tensor);
                    let v = self
                        .vector_math(t, &g.regularizer, &g.indices, &[])
                        .unwrap_or_else(|| self.index_math(t, &g.regularizer));
                    Math::raw(
                        format!("\\nabla_{{{bl}}} R = {}", v.latex),
                        format!("∇_{bt} R = {}", v.text),
                    )
                })
                .collect();
            para.extend(self.list_of(maths));
            let unpenalised: Vec<Math> = t
                .derived
                .gradient
                .iter()
                .filter(|g| g.regularizer.is_int(0))
                .map(|g| {
                    let (bl, bt) = self.tensor_base(t, &g.tensor);
                    Math::raw(bl, bt)
                })
                .collect();
            if !unpenalised.is_empty() {
                para.push(text("; it does not penalise "));
                para.extend(self.list_of(unpenalised));
            }
            para.push(text("."));
            self.blocks.push(Block::Paragraph(para));
        }
        // The data set.
        if let Some(design) = design(t) {
            let reg = if reg.is_empty() {
                ("", "")
            } else {
                (" + \\nabla R", " + ∇R")
            };
            let r = self.sample_math(t, &design.residual);
            self.blocks.push(Block::Paragraph(vec![
                text("Over the data set, with "),
                Inline::Math(Math::raw(design.latex.clone(), design.text.clone())),
                text(" and the residuals "),
                Inline::Math(Math::raw(
                    format!("r_i = {}", r.latex),
                    format!("rᵢ = {}", r.text),
                )),
                text(":"),
            ]));
            self.blocks.push(Block::Equation {
                lhs: Math::raw("\\nabla L", "∇L"),
                steps: vec![Math::raw(
                    format!("\\frac{{1}}{{N}} \\tilde{{X}}^\\top r{}", reg.0),
                    format!("(1/N) X̃ᵀr{}", reg.1),
                )],
            });
        } else {
            self.blocks.push(Block::Paragraph(vec![text(
                "Over the data set the gradients average:",
            )]));
            let (sample, sample_text) = self.sample_args(t, true);
            self.average_over_data(
                Math::raw("\\nabla L", "∇L"),
                (
                    &format!("\\nabla \\ell\\left(\\theta; {sample}\\right)"),
                    &format!("∇ℓ(θ; {sample_text})"),
                ),
                (" + \\nabla R", " + ∇R"),
            );
        }
    }

    /// The Hessian, block by block, and what `facts` establish about it.
    fn tensor_hessian(&mut self, t: &Tensors, facts: &CurvatureFacts) {
        self.blocks.push(Block::Heading("The Hessian".into()));
        let u = t.backprop.bottleneck.as_ref();
        if let (Route::GaussNewton { weight_nonnegative }, Some(u)) = (&facts.route, u) {
            return self.gauss_newton(t, u, *weight_nonnegative);
        }
        self.blocks.push(Block::Paragraph(vec![text(
            "One block per pair of parameter tensors (the Hessian is symmetric; the blocks below the diagonal are the transposes):",
        )]));
        for b in &t.derived.hessian {
            let (rl, rt) = self.entry_name(t, &b.row, &b.row_indices);
            let (cl, ct) = self.entry_name(t, &b.col, &b.col_indices);
            let lhs = if b.row == b.col && b.row_indices.is_empty() {
                Math::raw(
                    format!("\\frac{{\\partial^2 \\ell}}{{\\partial {rl}^2}}"),
                    format!("∂²ℓ/∂{rt}²"),
                )
            } else {
                Math::raw(
                    format!("\\frac{{\\partial^2 \\ell}}{{\\partial {rl} \\, \\partial {cl}}}"),
                    format!("∂²ℓ/∂{rt}∂{ct}"),
                )
            };
            self.blocks.push(Block::Equation {
                lhs,
                steps: vec![self.index_math(t, &b.loss)],
            });
        }
        self.block_matrix(t, false);
        if t.derived.hessian.iter().any(|b| !b.regularizer.is_int(0))
            && !self.block_diagonal_regularizer(t)
        {
            self.block_matrix(t, true);
        }
        if let Some(u) = u {
            match &facts.route {
                Route::Design {
                    weight_nonnegative,
                    regularizer_psd,
                } => self.design_curvature(t, u, *weight_nonnegative && *regularizer_psd),
                Route::AffineScore { softmax, null_bias } => {
                    self.score_curvature(t, u, softmax.as_deref(), null_bias.as_deref())
                }
                Route::Blocks | Route::GaussNewton { .. } => {}
            }
        }
    }

    /// `∇²R = diag(λI, 0)` over the tensors, in a sentence, when the
    /// regularizer couples no two tensors.
    fn block_diagonal_regularizer(&mut self, t: &Tensors) -> bool {
        if t.derived
            .hessian
            .iter()
            .any(|b| b.row != b.col && !b.regularizer.is_int(0))
        {
            return false;
        }
        let mut diagonal = Vec::new();
        let mut tensors = Vec::new();
        for b in t.derived.hessian.iter().filter(|b| b.row == b.col) {
            let Some(m) = self.vector_math(t, &b.regularizer, &b.row_indices, &b.col_indices)
            else {
                return false;
            };
            diagonal.push(m);
            tensors.push(self.tensor_base(t, &b.row));
        }
        let join =
            |f: &dyn Fn(&Math) -> String| diagonal.iter().map(f).collect::<Vec<_>>().join(", ");
        let names = |latex: bool| {
            tensors
                .iter()
                .map(|(l, x)| if latex { l.clone() } else { x.clone() })
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.blocks.push(Block::Paragraph(vec![
            text("The regularizer adds the block-diagonal "),
            Inline::Math(Math::raw(
                format!(
                    "\\nabla^2 R = \\operatorname{{diag}}\\left({}\\right)",
                    join(&|m| m.latex.clone())
                ),
                format!("∇²R = diag({})", join(&|m| m.text.clone())),
            )),
            text(" over "),
            Inline::Math(Math::raw(
                format!("({})", names(true)),
                format!("({})", names(false)),
            )),
            text("."),
        ]));
        true
    }

    /// `∇²ℓ = [[H_ww, H_wb], [H_wbᵀ, H_bb]]` in vector form, if every block
    /// has one.
    fn block_matrix(&mut self, t: &Tensors, regularizer: bool) {
        let params: Vec<String> = t
            .derived
            .gradient
            .iter()
            .map(|g| g.tensor.clone())
            .collect();
        let n = params.len();
        let mut rows = vec![vec![Math::raw("", ""); n]; n];
        for b in &t.derived.hessian {
            let (Some(i), Some(j)) = (
                params.iter().position(|p| *p == b.row),
                params.iter().position(|p| *p == b.col),
            ) else {
                return;
            };
            let e = if regularizer { &b.regularizer } else { &b.loss };
            let Some(m) = self.vector_math(t, e, &b.row_indices, &b.col_indices) else {
                return;
            };
            if i != j {
                let transposed = if m.latex == "0" {
                    m.clone()
                } else {
                    match self.vector_math(t, e, &[], &b.row_indices) {
                        Some(x) if b.col_indices.is_empty() => x,
                        _ => Math::raw(
                            format!("\\left({}\\right)^\\top", m.latex),
                            format!("({})ᵀ", m.text),
                        ),
                    }
                };
                rows[j][i] = transposed;
            }
            rows[i][j] = m;
        }
        let lhs = if regularizer {
            Math::raw("\\nabla^2 R", "∇²R")
        } else {
            Math::raw("\\nabla^2_\\theta \\ell", "∇²ℓ")
        };
        // The blocks are listed above; the block matrix only where it fits.
        if crate::render::matrix_fits(&rows) {
            self.blocks.push(Block::Matrix { lhs, rows });
        }
    }

    /// ∇²L = X̃ᵀSX̃/N (+ ∇²R) for a scalar score affine in θ, and why it
    /// is convex when it is (`convex`, from the [`CurvatureFacts`]).
    fn design_curvature(&mut self, t: &Tensors, u: &Bottleneck, convex: bool) {
        let (ul, ut) = self.tensor_base(t, &u.quantity);
        if let Some(design) = design(t) {
            let w = self.index_math(t, &design.weight);
            let w_i = self.sample_math(t, &design.weight);
            self.blocks.push(Block::Paragraph(vec![
                text("The loss reaches the parameters only through "),
                Inline::Math(Math::raw(ul.clone(), ut.clone())),
                text(", which is affine in "),
                Inline::Math(Math::raw("\\theta", "θ")),
                text(", so "),
                Inline::Math(Math::raw(
                    format!("\\nabla^2_\\theta \\ell = \\frac{{\\partial^2 \\ell}}{{\\partial {ul}^2}} \\, \\tilde{{x}} \\tilde{{x}}^\\top"),
                    format!("∇²ℓ = (∂²ℓ/∂{ut}²) x̃x̃ᵀ"),
                )),
                text(" with "),
                Inline::Math(Math::raw(
                    format!("\\partial^2 \\ell / \\partial {ul}^2 = {}", w.latex),
                    format!("∂²ℓ/∂{ut}² = {}", w.text),
                )),
                text(". Over the data set:"),
            ]));
            let reg = if t.derived.hessian.iter().any(|b| !b.regularizer.is_int(0)) {
                (" + \\nabla^2 R", " + ∇²R")
            } else {
                ("", "")
            };
            self.blocks.push(Block::Equation {
                lhs: Math::raw("\\nabla^2 L", "∇²L"),
                steps: vec![Math::raw(
                    format!(
                        "\\frac{{1}}{{N}} \\tilde{{X}}^\\top S \\tilde{{X}}{}",
                        reg.0
                    ),
                    format!("(1/N) X̃ᵀSX̃{}", reg.1),
                )],
            });
            self.blocks.push(Block::Paragraph(vec![
                text("with "),
                Inline::Math(Math::raw(
                    format!(
                        "S = \\operatorname{{diag}}\\left({}\\right)_{{i=1}}^{{N}}",
                        w_i.latex
                    ),
                    format!("S = diag({})ᵢ", w_i.text),
                )),
                text("."),
            ]));
            if convex {
                self.blocks.push(Block::Paragraph(vec![
                    text("Why convex: "),
                    Inline::Math(Math::raw(
                        "v^\\top \\tilde{X}^\\top S \\tilde{X} v = \\sum_i S_{ii} \\left(\\tilde{x}_i^\\top v\\right)^2 \\geq 0",
                        "vᵀX̃ᵀSX̃v = Σᵢ Sᵢᵢ (x̃ᵢᵀv)² ≥ 0",
                    )),
                    text(" because "),
                    Inline::Math(positivity_reason(&t.display, &u.second)),
                    text(if t.display.regularizer.is_some() {
                        ", and the regularizer's Hessian is positive semi-definite: "
                    } else {
                        ": "
                    }),
                    Inline::Math(Math::raw("\\nabla^2 L \\succeq 0", "∇²L ⪰ 0")),
                    text(" at every "),
                    Inline::Math(Math::raw("\\theta", "θ")),
                    text(", so "),
                    Inline::Math(Math::raw("L", "L")),
                    text(" is convex and every stationary point is a global minimum."),
                ]));
            }
        }
    }

    /// ∇²ℓ = Jᵀ (∂²ℓ/∂z∂zᵀ) J for a vector score affine in θ; the middle
    /// factor as the covariance of the softmax `softmax`, and the null
    /// direction of `null_bias`, when the [`CurvatureFacts`] found them.
    fn score_curvature(
        &mut self,
        t: &Tensors,
        u: &Bottleneck,
        softmax: Option<&str>,
        null_bias: Option<&str>,
    ) {
        let (ul, ut) = self.tensor_base(t, &u.quantity);
        let weight = self
            .vector_math(t, &u.second, &u.indices, &u.second_indices)
            .unwrap_or_else(|| self.index_math(t, &u.second));
        let mut para = vec![
            text("The loss reaches the parameters only through "),
            Inline::Math(Math::raw(ul.clone(), ut.clone())),
            text(", which is affine in "),
            Inline::Math(Math::raw("\\theta", "θ")),
            text(", so "),
            Inline::Math(Math::raw(
                format!(
                    "\\nabla^2_\\theta \\ell = J^\\top \\, \\frac{{\\partial^2 \\ell}}{{\\partial {ul} \\, \\partial {ul}^\\top}} \\, J"
                ),
                format!("∇²ℓ = Jᵀ (∂²ℓ/∂{ut}∂{ut}ᵀ) J"),
            )),
            text(" with "),
            Inline::Math(Math::raw("J", "J")),
            text(" the Jacobian of "),
            Inline::Math(Math::raw(ul.clone(), ut.clone())),
            text(" and "),
            Inline::Math(Math::raw(
                format!(
                    "\\frac{{\\partial^2 \\ell}}{{\\partial {ul} \\, \\partial {ul}^\\top}} = {}",
                    weight.latex
                ),
                format!("∂²ℓ/∂{ut}∂{ut}ᵀ = {}", weight.text),
            )),
            text("."),
        ];
        let Some(s) = softmax else {
            self.blocks.push(Block::Paragraph(para));
            return;
        };
        let (sl, st) = self.tensor_base(t, s);
        para.push(text(" It is positive semi-definite: "));
        para.push(Inline::Math(Math::raw(
            format!("v^\\top \\left(\\operatorname{{diag}}({sl}) - {sl} {sl}^\\top\\right) v = \\sum_k {sl}_k v_k^2 - \\left(\\sum_k {sl}_k v_k\\right)^2 \\geq 0"),
            format!("vᵀ(diag({st}) − {st}{st}ᵀ)v = Σₖ {st}ₖvₖ² − (Σₖ {st}ₖvₖ)² ≥ 0"),
        )));
        para.push(text(", the variance of "));
        para.push(Inline::Math(Math::raw("v", "v")));
        para.push(text(" under the probabilities "));
        para.push(Inline::Math(Math::raw(sl.clone(), st.clone())));
        para.push(text(" (they are positive and sum to 1). So "));
        para.push(Inline::Math(Math::raw("L", "L")));
        para.push(text(" is convex. But "));
        para.push(Inline::Math(Math::raw(
            format!("\\left(\\operatorname{{diag}}({sl}) - {sl} {sl}^\\top\\right) \\mathbf{{1}} = {sl} - {sl} \\left(\\mathbf{{1}}^\\top {sl}\\right) = 0"),
            format!("(diag({st}) − {st}{st}ᵀ)1 = {st} − {st}(1ᵀ{st}) = 0"),
        )));
        para.push(text(": adding the same "));
        para.push(Inline::Math(Math::raw("t", "t")));
        para.push(text(" to every "));
        para.push(Inline::Math(Math::raw(ul.clone(), ut.clone())));
        para.push(text(" does not change the loss."));
        self.blocks.push(Block::Paragraph(para));
        let Some(bias) = null_bias else {
            return;
        };
        let (bl, bt) = self.tensor_base(t, bias);
        self.blocks.push(Block::Paragraph(vec![
            text("The Hessian is singular at every "),
            Inline::Math(Math::raw("\\theta", "θ")),
            text(": "),
            Inline::Math(Math::raw(bl.clone(), bt.clone())),
            text(" enters every score directly and is not penalised, so "),
            Inline::Math(Math::raw(
                format!("{bl} \\mapsto {bl} + t \\mathbf{{1}}"),
                format!("{bt} ↦ {bt} + t·1"),
            )),
            text(" leaves "),
            Inline::Math(Math::raw("L", "L")),
            text(" unchanged and "),
            Inline::Math(Math::raw(
                "(0, \\mathbf{1})",
                "(0, 1)",
            )),
            text(" (zero on the other parameters, one on every entry of "),
            Inline::Math(Math::raw(bl.clone(), bt.clone())),
            text(") is a null direction of "),
            Inline::Math(Math::raw("\\nabla^2 L", "∇²L")),
            text(": its smallest eigenvalue is 0, and the minimiser is not unique. The fix: fix one class's bias (say its last entry to 0), or penalise "),
            Inline::Math(Math::raw(bl.clone(), bt.clone())),
            text(" too."),
        ]));
    }

    /// ∇²ℓ = (∂²ℓ/∂u²) ∇u ∇uᵀ + (∂ℓ/∂u) ∇²u for a scalar u that is not
    /// affine in the parameters; the Gauss–Newton term is positive
    /// semi-definite when `weight_nonnegative` (from the [`CurvatureFacts`]).
    fn gauss_newton(&mut self, t: &Tensors, u: &Bottleneck, weight_nonnegative: bool) {
        let (ul, ut) = self.tensor_base(t, &u.quantity);
        let first = self.index_math(t, &u.first);
        let second = self.index_math(t, &u.second);
        self.blocks.push(Block::Paragraph(vec![
            text("The loss reaches the parameters only through "),
            Inline::Math(Math::raw(ul.clone(), ut.clone())),
            text(", which is not affine in "),
            Inline::Math(Math::raw("\\theta", "θ")),
            text(". The Hessian splits into a Gauss–Newton term and a residual term:"),
        ]));
        self.blocks.push(Block::Equation {
            lhs: Math::raw("\\nabla^2_\\theta \\ell", "∇²ℓ"),
            steps: vec![
                Math::raw(
                    format!("\\frac{{\\partial^2 \\ell}}{{\\partial {ul}^2}} \\, \\nabla {ul} \\, \\nabla {ul}^\\top + \\frac{{\\partial \\ell}}{{\\partial {ul}}} \\, \\nabla^2 {ul}"),
                    format!("(∂²ℓ/∂{ut}²)·∇{ut}∇{ut}ᵀ + (∂ℓ/∂{ut})·∇²{ut}"),
                ),
                Math::raw(
                    format!("{} \\, \\nabla {ul} \\, \\nabla {ul}^\\top + \\left({}\\right) \\nabla^2 {ul}", wrap_factor(&second.latex), first.latex)
                        .replace("1 \\, \\nabla", "\\nabla"),
                    format!("{}·∇{ut}∇{ut}ᵀ + ({})·∇²{ut}", second.text, first.text)
                        .replace("1·∇", "∇"),
                ),
            ],
        });
        self.blocks.push(Block::Paragraph(vec![
            text("with the gradient of "),
            Inline::Math(Math::raw(ul.clone(), ut.clone())),
            text(" per tensor"),
        ]));
        for g in &u.jacobian {
            let (tl, tt) = self.entry_name(t, &g.tensor, &g.indices);
            self.blocks.push(Block::Equation {
                lhs: Math::raw(
                    format!("\\frac{{\\partial {ul}}}{{\\partial {tl}}}"),
                    format!("∂{ut}/∂{tt}"),
                ),
                steps: vec![self.index_math(t, &g.loss)],
            });
        }
        let nonzero: Vec<_> = u.curvature.iter().filter(|b| !b.loss.is_int(0)).collect();
        self.blocks.push(Block::Paragraph(vec![
            text("and the blocks of "),
            Inline::Math(Math::raw(format!("\\nabla^2 {ul}"), format!("∇²{ut}"))),
            text(" that are not zero:"),
        ]));
        for b in nonzero {
            let (rl, rt) = self.entry_name(t, &b.row, &b.row_indices);
            let (cl, ct) = self.entry_name(t, &b.col, &b.col_indices);
            self.blocks.push(Block::Equation {
                lhs: Math::raw(
                    format!("\\frac{{\\partial^2 {ul}}}{{\\partial {rl} \\, \\partial {cl}}}"),
                    format!("∂²{ut}/∂{rt}∂{ct}"),
                ),
                steps: vec![self.index_math(t, &b.loss)],
            });
        }
        let mut para = Vec::new();
        if weight_nonnegative {
            para.push(text("The Gauss–Newton term "));
            para.push(Inline::Math(Math::raw(
                format!(
                    "{} \\, \\nabla {ul} \\nabla {ul}^\\top",
                    wrap_factor(&second.latex)
                )
                .replace("1 \\, \\nabla", "\\nabla"),
                format!("{}·∇{ut}∇{ut}ᵀ", second.text).replace("1·∇", "∇"),
            )));
            para.push(text(" is positive semi-definite. "));
        }
        para.push(text("The residual term is weighted by "));
        para.push(Inline::Math(first.clone()));
        para.push(text(
            " and can have either sign, so the Hessian can be indefinite and ",
        ));
        para.push(Inline::Math(Math::raw("L", "L")));
        para.push(text(
            " is not convex: Newton's step can point uphill or towards a saddle point.",
        ));
        self.blocks.push(Block::Paragraph(para));
    }

    fn tensor_updates(&mut self, t: &Tensors, facts: &CurvatureFacts) {
        let curvature = facts.verdict;
        self.blocks
            .push(Block::Heading("Second-order model and the updates".into()));
        // Newton's step on a convex model with a design matrix is IRLS.
        let irls = curvature == Curvature::Convex && matches!(facts.route, Route::Design { .. });
        let theta = || Inline::Math(Math::raw("\\theta", "θ"));
        let mut para = vec![
            text("Near "),
            theta(),
            text(" the objective is approximated by its second-order Taylor model in a step "),
            Inline::Math(Math::raw("d", "d")),
            text(". Gradient descent steps against the gradient with a learning rate "),
            Inline::Math(Math::raw("\\alpha", "α")),
            text("; Newton's method steps to the stationary point of the Taylor model"),
        ];
        if irls {
            para.push(text(
                ", here iteratively reweighted least squares (IRLS): a weighted least-squares problem with the weights ",
            ));
            para.push(Inline::Math(Math::raw("S", "S")));
            para.push(text(" of the current "));
            para.push(theta());
        }
        para.push(text(":"));
        self.blocks.push(Block::Paragraph(para));
        self.blocks.push(super::taylor_model());
        self.blocks.push(super::gradient_step());
        let newton = if irls {
            let reg = t.derived.hessian.iter().any(|b| !b.regularizer.is_int(0));
            Math::raw(
                format!(
                    "\\leftarrow \\theta - \\left(\\tfrac{{1}}{{N}} \\tilde{{X}}^\\top S \\tilde{{X}}{}\\right)^{{-1}} \\nabla L(\\theta)",
                    if reg { " + \\nabla^2 R" } else { "" }
                ),
                format!(
                    "← θ − ((1/N) X̃ᵀSX̃{})⁻¹ ∇L(θ)",
                    if reg { " + ∇²R" } else { "" }
                ),
            )
        } else {
            Math::raw(
                "\\leftarrow \\theta - \\left[\\nabla^2 L(\\theta)\\right]^{-1} \\nabla L(\\theta)",
                "← θ − [∇²L(θ)]⁻¹∇L(θ)",
            )
        };
        self.blocks.push(Block::Equation {
            lhs: Math::raw("\\theta", "θ"),
            steps: vec![newton],
        });
        // (Not for IRLS: the convex GLMs' lecture note fits two pages.)
        if !irls {
            self.blocks.extend(super::hessian_free_step());
        }
        let sentence = match curvature {
            Curvature::Convex if irls => None,
            Curvature::Convex => {
                Some("L is convex, so that point is a minimum wherever ∇²L is positive definite.")
            }
            Curvature::ConvexSingular => Some(
                "Here ∇²L is singular at every θ (see above), so the Newton system has no unique solution: a damped (Levenberg–Marquardt) or trust-region step, or the fix above, is needed.",
            ),
            Curvature::Indefinite => Some(
                "Where ∇²L is indefinite that point is a saddle, not a minimum: damping, a trust region or saddle-free curvature (|∇²L|) keep the step a descent step.",
            ),
            Curvature::Unknown => {
                Some("That point is the Taylor model's minimum where ∇²L is positive definite.")
            }
        };
        if let Some(s) = sentence {
            self.blocks.push(Block::Paragraph(vec![text(s)]));
        }
        self.relu_convention();
    }
}

/// The design matrix of a linear score.
struct Design {
    latex: String,
    text: String,
    /// ∂ℓ/∂z per sample.
    residual: IExpr,
    /// ∂²ℓ/∂z² per sample.
    weight: IExpr,
}

/// The design matrix X̃ where the loss reaches the parameters through one
/// affine scalar score whose gradient is a data vector and a 1 for a
/// bias: z = wᵀx + b, ∇z = x̃ = (x, 1).
fn design(t: &Tensors) -> Option<Design> {
    let u = t.backprop.bottleneck.as_ref()?;
    if !u.indices.is_empty() || !u.is_affine() {
        return None;
    }
    let mut columns = Vec::new();
    for g in &u.jacobian {
        match (&g.loss, g.indices.as_slice()) {
            (e, []) if e.is_int(1) => columns.push("\\mathbf{1}".to_string()),
            (IExpr::Entry { tensor, indices }, [j])
                if indices.as_slice() == [Ix::Var(j.clone())]
                    && t.display
                        .tensor(tensor)
                        .is_some_and(|x| x.role == Role::Data) =>
            {
                columns.push(format!("X_{{{}}}", t.display.tensor(tensor)?.latex));
            }
            _ => return None,
        }
    }
    let data_columns = columns.iter().filter(|c| c.starts_with("X_")).count();
    if data_columns != 1 {
        return None;
    }
    let latex_cols: Vec<String> = columns
        .iter()
        .map(|c| {
            if c.starts_with("X_") {
                "X".to_string()
            } else {
                c.clone()
            }
        })
        .collect();
    Some(Design {
        latex: format!("\\tilde{{X}} = \\left[{}\\right]", latex_cols.join("\\;")),
        text: format!(
            "X̃ = [{}]",
            latex_cols
                .iter()
                .map(|c| if c == "X" { "X" } else { "1" })
                .collect::<Vec<_>>()
                .join(" ")
        ),
        residual: u.first.clone(),
        weight: u.second.clone(),
    })
}

/// A LaTeX factor in parentheses when it is a sum.
fn wrap_factor(latex: &str) -> String {
    if latex.contains(" + ") || latex.contains(" - ") {
        format!("\\left({latex}\\right)")
    } else {
        latex.to_string()
    }
}
