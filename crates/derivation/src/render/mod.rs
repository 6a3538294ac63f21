//! Writing a [`Derivation`] out: a standalone LaTeX document, GitHub
//! Markdown, plain text for a terminal, or JSON. The three prose formats share
//! one document structure (see `document.rs`); this module only decides how
//! each block is spelled, and where long equations are broken.

mod document;
pub(crate) mod index;
mod math;
mod vector;

use crate::derivation::Derivation;
use document::{Block, Inline, Math, Piece};
use hessforge_spec::Model;
use math::{Names, Printer, Style, tidy};
use std::fmt::Write;

/// An output format of `hessforge derive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A standalone LaTeX document (article + amsmath) for pdflatex.
    Latex,
    /// Slides (LaTeX beamer, 16:9): a frame per section.
    Beamer,
    /// Markdown with `$…$` / `$$…$$` math, as GitHub renders it.
    Markdown,
    /// Plain text for a terminal.
    Text,
    /// One JSON document.
    Json,
}

impl Format {
    /// Every format with its name.
    pub const ALL: [(Format, &'static str); 5] = [
        (Format::Latex, "latex"),
        (Format::Beamer, "beamer"),
        (Format::Markdown, "markdown"),
        (Format::Text, "text"),
        (Format::Json, "json"),
    ];
}

/// Render a derivation in a format: for a model with tensor parameters,
/// the index form (one derivative per tensor, one block per pair of
/// tensors); for a model of scalars, every entry.
pub fn render(d: &Derivation, format: Format) -> String {
    render_with(d, format, false)
}

/// Render with the scalar lists: every gradient entry and Hessian entry,
/// in every format (the index form too, in JSON). Needs a derivation from
/// `hessforge_symbolic::derive` (`expanded`).
pub fn render_expanded(d: &Derivation, format: Format) -> String {
    render_with(d, format, true)
}

fn render_with(d: &Derivation, format: Format, expand: bool) -> String {
    match format {
        Format::Latex => latex(&document::build(d, expand)),
        Format::Beamer => beamer(&document::build(d, expand)),
        Format::Markdown => markdown(&document::build(d, expand)),
        Format::Text => text(&document::build(d, expand)),
        Format::Json => json(d, expand),
    }
}

/// The LaTeX name of a tensor (its entries' base name, without subscript).
pub(crate) fn tensor_latex(model: &Model, name: &str) -> String {
    model
        .scalars()
        .find(|s| s.tensor == name)
        .map(|s| match s.latex.rfind("_{") {
            Some(i) if !s.index.is_empty() => s.latex[..i].to_string(),
            _ => s.latex.clone(),
        })
        .unwrap_or_else(|| name.to_string())
}

/// Roughly how wide a piece of LaTeX is on the page, in characters.
fn visible_width(latex: &str) -> usize {
    let mut width = 0;
    let mut chars = latex.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphabetic() {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if name.is_empty() {
                    // `\,` and friends: a thin space.
                    chars.next();
                    continue;
                }
                width += match name.as_str() {
                    "left" | "right" | "frac" | "mathrm" | "operatorname" | "hat" | "quad" => 0,
                    "cdot" => 2,
                    "sigma" | "theta" | "lambda" | "ell" | "partial" | "nabla" => 1,
                    "log" | "exp" | "sin" | "cos" | "tan" => 3,
                    "tanh" => 4,
                    "arctan" => 6,
                    _ => 2,
                };
            }
            '{' | '}' | '^' | '_' | '&' => {}
            ' ' => {}
            '+' | '-' | '=' | ',' => width += 2,
            _ => width += 1,
        }
    }
    width
}

/// Width of a display line before it is broken.
const LINE_WIDTH: usize = 62;

/// Whether a piece of LaTeX is too wide for one display line.
pub(crate) fn too_wide(latex: &str) -> bool {
    visible_width(latex) > LINE_WIDTH
}

/// The lines of `lhs = step = step …`, as `align`-style rows (with `&`).
/// Steps share a line while they fit; a step too wide for a line of its
/// own is broken between its pieces.
fn aligned_rows(lhs: &Math, steps: &[Math]) -> Vec<String> {
    let mut rows = Vec::new();
    let lhs_width = visible_width(&lhs.latex);
    let limit = LINE_WIDTH.saturating_sub(lhs_width.min(24));
    let mut line = String::new();
    let mut width = 0;
    for (i, step) in steps.iter().enumerate() {
        let starts_with_relation =
            step.latex.starts_with("\\leftarrow") || step.latex.starts_with("\\approx");
        let relation = if starts_with_relation { "" } else { "= " };
        let step_width = visible_width(&step.latex) + 2;
        if i == 0 {
            line = format!("{} &{relation}", lhs.latex);
        } else if width + step_width <= limit {
            line.push_str(&format!(" {relation}"));
        } else {
            rows.push(std::mem::take(&mut line));
            line = format!("&{relation}");
            width = 0;
        }
        for (k, piece) in step.latex_pieces.iter().enumerate() {
            let (s, joiner) = match piece {
                Piece::Term(s) => (s.as_str(), ""),
                Piece::Factor(s) => (s.as_str(), "\\cdot "),
            };
            let w = visible_width(s);
            if k > 0 && width + w > limit {
                rows.push(std::mem::take(&mut line));
                line = format!("&\\quad {joiner}{s}");
                width = w;
            } else {
                if k > 0 {
                    line.push(' ');
                }
                line.push_str(s);
                width += w;
            }
        }
        width += 2;
    }
    rows.push(line);
    rows
}

/// One equation of a run of consecutive equations, which share one aligned
/// environment: `open` before the first, `close` after the last.
fn equation_in_run(
    blocks: &[Block],
    i: usize,
    lhs: &Math,
    steps: &[Math],
    open: &str,
    close: &str,
) -> String {
    let is_equation =
        |k: Option<usize>| matches!(k.and_then(|k| blocks.get(k)), Some(Block::Equation { .. }));
    let first = !is_equation(i.checked_sub(1));
    let last = !is_equation(Some(i + 1));
    let mut out = String::new();
    if first {
        out.push_str(open);
    }
    // One number per equation (LaTeX's `align`): its continuation rows get
    // none. Environments without numbers ignore `\\notag`… so it is only
    // written where `open` numbers rows.
    let separator = if open.contains("{align}") {
        " \\notag \\\\\n"
    } else {
        " \\\\\n"
    };
    out.push_str(&aligned_rows(lhs, steps).join(separator));
    out.push_str(if last { close } else { " \\\\[0.4em]\n" });
    out
}

/// Whether a matrix display fits the line width.
pub(crate) fn matrix_fits(rows: &[Vec<Math>]) -> bool {
    rows.iter()
        .all(|r| r.iter().map(|m| visible_width(&m.latex) + 3).sum::<usize>() <= LINE_WIDTH)
}

fn matrix_latex(rows: &[Vec<Math>]) -> String {
    let body: Vec<String> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|m| m.latex.clone())
                .collect::<Vec<_>>()
                .join(" & ")
        })
        .collect();
    format!(
        "\\begin{{pmatrix}} {} \\end{{pmatrix}}",
        body.join(" \\\\ ")
    )
}

/// Prose → LaTeX: `$…$` spans are LaTeX already; Unicode is spelled as
/// `hessforge_spec::prose` says (math in `$…$`); straight double quotes
/// become TeX quotes; the characters TeX reserves are escaped.
fn latex_prose(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    let mut open_quote = true;
    while let Some(c) = chars.next() {
        // A math span, copied as it is.
        if c == '$' {
            let mut math = String::new();
            for n in chars.by_ref() {
                if n == '$' {
                    break;
                }
                math.push(n);
            }
            let _ = write!(out, "${math}$");
            continue;
        }
        // A letter followed by a combining tilde or hat (X̃, â).
        if let Some(&accent) = chars.peek()
            && (accent == '\u{303}' || accent == '\u{302}')
        {
            chars.next();
            let command = if accent == '\u{303}' { "tilde" } else { "hat" };
            let _ = write!(out, "$\\{command}{{{c}}}$");
            continue;
        }
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '%' | '&' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '<' | '>' | '|' => {
                let _ = write!(out, "${c}$");
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '"' => {
                out.push_str(if open_quote { "``" } else { "''" });
                open_quote = !open_quote;
            }
            '-' if chars.peek() == Some(&'-') => out.push_str("-{}"),
            c if c.is_ascii() => out.push(c),
            c => match hessforge_spec::prose::latex_of(c) {
                Some(t) if t.starts_with('!') => out.push_str(&t[1..]),
                Some(m) => {
                    let _ = write!(out, "${m}$");
                }
                // The loader rejects such characters in the file's prose.
                None => out.push(c),
            },
        }
    }
    out.replace("$$", "")
}

/// Prose for a terminal: `$…$` spans without the dollars, their commands
/// as Unicode where one spells them (`$\\lambda$` → λ).
fn text_prose(s: &str) -> String {
    if !s.contains('$') {
        return s.to_string();
    }
    let mut out = String::new();
    for (k, part) in s.split('$').enumerate() {
        if k % 2 == 0 {
            out.push_str(part);
        } else {
            out.push_str(&text_of_latex(part));
        }
    }
    out
}

/// `\\lambda \\|w\\|^2` → `λ ‖w‖^2`: commands the prose table spells, and
/// the braces and spacing of simple math removed.
fn text_of_latex(math: &str) -> String {
    let mut out = String::new();
    let math = math
        .replace("\\tfrac12", "½")
        .replace("\\tfrac{1}{2}", "½")
        .replace("\\frac{1}{2}", "½");
    let mut chars = math.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let mut name = String::from("\\");
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphabetic() || (name.len() == 1 && !n.is_ascii_alphanumeric()) {
                        name.push(n);
                        chars.next();
                        if name.len() == 2 && !n.is_ascii_alphabetic() {
                            break;
                        }
                    } else {
                        break;
                    }
                }
                let accent = match name.as_str() {
                    "\\tilde" => Some('\u{303}'),
                    "\\bar" => Some('\u{304}'),
                    "\\hat" => Some('\u{302}'),
                    _ => None,
                };
                if let Some(accent) = accent {
                    // The accented letter: `\\tilde X`, `\\tilde{X}`.
                    while chars.peek().is_some_and(|n| *n == ' ' || *n == '{') {
                        chars.next();
                    }
                    if let Some(letter) = chars.next() {
                        out.push(letter);
                        out.push(accent);
                    }
                    continue;
                }
                let spelled = match name.as_str() {
                    "\\top" => Some("ᵀ"),
                    "\\dots" | "\\ldots" => Some("…"),
                    "\\tfrac" | "\\frac" | "\\operatorname" | "\\mathrm" | "\\text" | "\\left"
                    | "\\right" | "\\bigl" | "\\bigr" => Some(""),
                    _ => None,
                };
                match (spelled, unicode_of(&name)) {
                    (Some(s), _) => out.push_str(s),
                    (None, Some(u)) => out.push(u),
                    (None, None) if name == "\\," || name == "\\;" || name == "\\ " => {
                        out.push(' ')
                    }
                    (None, None) => out.push_str(name.trim_start_matches('\\')),
                }
            }
            '{' | '}' => {}
            c => out.push(c),
        }
    }
    out.replace("^ᵀ", "ᵀ")
}

/// The character the prose table spells as this LaTeX command.
fn unicode_of(command: &str) -> Option<char> {
    ('\u{80}'..='\u{2fff}').find(|&c| hessforge_spec::prose::latex_of(c) == Some(command))
}

const GENERATED_BY: &str =
    "% Generated by hessforge (https://example.invalid/hessforge); derivatives by Symbolica.\n";

fn title_of(blocks: &[Block]) -> String {
    blocks
        .iter()
        .find_map(|b| match b {
            Block::Title(t) => Some(latex_prose(t)),
            _ => None,
        })
        .unwrap_or_default()
}

fn latex(blocks: &[Block]) -> String {
    let mut out = String::from(GENERATED_BY);
    out.push_str("\\documentclass[11pt]{article}\n\\usepackage[a4paper,margin=2.2cm]{geometry}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n");
    out.push_str(
        "\\allowdisplaybreaks\n\\setlength{\\parindent}{0pt}\n\\setlength{\\parskip}{0.4em}\n\\AtBeginDocument{\\setlength{\\abovedisplayskip}{4pt plus 2pt}\\setlength{\\belowdisplayskip}{4pt plus 2pt}\\setlength{\\abovedisplayshortskip}{2pt}\\setlength{\\belowdisplayshortskip}{2pt}}\n\\makeatletter\n\\renewcommand\\section{\\@startsection{section}{1}{\\z@}{-1.6ex plus -0.5ex}{0.6ex}{\\normalfont\\large\\bfseries}}\n\\makeatother\n",
    );
    let _ = writeln!(
        out,
        "\\begin{{document}}\n\\begin{{center}}\\Large\\bfseries {}\\end{{center}}\n",
        title_of(blocks)
    );
    for (i, b) in blocks.iter().enumerate() {
        match b {
            Block::Heading(h) => {
                let _ = writeln!(out, "\\section*{{{}}}\n", latex_prose(h));
            }
            other => latex_block(blocks, i, other, true, &mut out),
        }
    }
    out.push_str("\\end{document}\n");
    out
}

/// Slides: a title frame with the description, then one frame per section
/// (a long section continues on a second frame rather than running off).
fn beamer(blocks: &[Block]) -> String {
    let mut out = String::from(GENERATED_BY);
    out.push_str(
        "\\documentclass[aspectratio=169,11pt]{beamer}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n\\setbeamertemplate{navigation symbols}{}\n\\setbeamertemplate{frametitle continuation}{}\n",
    );
    let _ = writeln!(
        out,
        "\\title{{{}}}\n\\date{{}}\n\\begin{{document}}",
        title_of(blocks)
    );
    let mut in_frame = false;
    let mut first_paragraph = true;
    let glance = at_a_glance(blocks);
    for (i, b) in blocks.iter().enumerate() {
        match b {
            Block::Title(_) => {}
            Block::Heading(h) => {
                if in_frame {
                    out.push_str("\\end{frame}\n\n");
                } else if !glance.is_empty() {
                    // After the title: the whole derivation on one frame.
                    out.push_str("\\begin{frame}[allowframebreaks]{The derivation at a glance}\n\\footnotesize\\setlength{\\abovedisplayskip}{2pt}\\setlength{\\belowdisplayskip}{2pt}\n");
                    for (k, g) in glance.iter().enumerate() {
                        latex_block(&glance, k, g, false, &mut out);
                    }
                    out.push_str("\\end{frame}\n\n");
                }
                let _ = writeln!(
                    out,
                    "\\begin{{frame}}[allowframebreaks]{{{}}}\n\\small\\setlength{{\\abovedisplayskip}}{{3pt}}\\setlength{{\\belowdisplayskip}}{{3pt}}\n",
                    latex_prose(h)
                );
                in_frame = true;
            }
            // The description under the title; the notes are the lecture's.
            Block::Paragraph(_) if !in_frame => {
                if first_paragraph {
                    out.push_str("\\begin{frame}\n\\titlepage\n\\begin{center}\\small ");
                    latex_block(blocks, i, b, false, &mut out);
                    out.push_str("\\end{center}\n\\end{frame}\n\n");
                    first_paragraph = false;
                }
            }
            other => latex_block(blocks, i, other, false, &mut out),
        }
    }
    if in_frame {
        out.push_str("\\end{frame}\n");
    }
    out.push_str("\\end{document}\n");
    out
}

/// The derivation of a model with tensor parameters on one slide: the
/// forward pass and the loss in one paragraph, then the displayed results of
/// the chain rule, the gradient, the Hessian and the updates, and the
/// sentence that says what the Hessian is. Empty for a scalar model's
/// document (its sections are the frames).
fn at_a_glance(blocks: &[Block]) -> Vec<Block> {
    let has = |h: &str| {
        blocks
            .iter()
            .any(|b| matches!(b, Block::Heading(x) if x.starts_with(h)))
    };
    if !has("Back-propagation") {
        return Vec::new();
    }
    let hessian_matrix = blocks
        .iter()
        .any(|b| matches!(b, Block::Matrix { lhs, .. } if lhs.latex.contains("ell")));
    // Per section: a label, results written inline, displays after them.
    let mut sections: Vec<(&str, Vec<Inline>, Vec<Block>)> = Vec::new();
    for b in blocks {
        if let Block::Heading(h) = b {
            let label = match h.as_str() {
                "The model" => "Model.",
                h if h.starts_with("Back-propagation") => "Chain rule (one sample).",
                "The gradient" => "Gradient.",
                "The Hessian" => "Hessian.",
                h if h.starts_with("Second-order") => "Updates.",
                _ => "",
            };
            if !label.is_empty() {
                sections.push((label, Vec::new(), Vec::new()));
            }
            continue;
        }
        let Some((label, inline, display)) = sections.last_mut() else {
            continue;
        };
        match b {
            Block::Equation { lhs, steps } => {
                let per_tensor = lhs.latex.starts_with("\\frac{\\partial \\ell}");
                let taylor = lhs.latex.starts_with("L(\\theta + d)");
                let block_entry = lhs.latex.starts_with("\\frac{\\partial^2 \\ell}");
                if *label == "Chain rule (one sample)." && per_tensor {
                    display.push(b.clone());
                } else if !(taylor || (hessian_matrix && block_entry))
                    && let Some(last) = steps.last()
                {
                    if !inline.is_empty() {
                        inline.push(Inline::Text(", ".into()));
                    }
                    let relation = if last.latex.starts_with("\\leftarrow") {
                        " "
                    } else {
                        " = "
                    };
                    inline.push(Inline::Math(Math::raw(
                        format!("{}{relation}{}", lhs.latex, last.latex),
                        format!("{}{relation}{}", lhs.text, last.text),
                    )));
                }
            }
            Block::Matrix { .. } => display.push(b.clone()),
            Block::Paragraph(parts)
                if matches!(parts.first(), Some(Inline::Text(t))
                    if t.starts_with("Why convex") || t.starts_with("The Hessian is singular")
                        || t.starts_with("The Gauss–Newton term")) =>
            {
                display.push(b.clone());
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (label, inline, display) in sections {
        let mut para = vec![Inline::Text(format!("{label} "))];
        para.extend(inline);
        out.push(Block::Paragraph(para));
        out.extend(display);
    }
    out
}

/// A paragraph, an equation or a matrix in LaTeX (`numbered`: equations
/// carry numbers).
fn latex_block(blocks: &[Block], i: usize, b: &Block, numbered: bool, out: &mut String) {
    let (open, close) = if numbered {
        ("\\begin{align}\n", "\n\\end{align}\n\n")
    } else {
        ("\\begin{align*}\n", "\n\\end{align*}\n\n")
    };
    match b {
        Block::Title(_) | Block::Heading(_) => {}
        Block::Equation { lhs, steps } => {
            out.push_str(&equation_in_run(blocks, i, lhs, steps, open, close));
        }
        Block::Paragraph(parts) => {
            for p in parts {
                match p {
                    Inline::Text(t) => out.push_str(&latex_prose(t)),
                    Inline::Math(m) => {
                        let _ = write!(out, "${}$", m.latex);
                    }
                }
            }
            out.push_str("\n\n");
        }
        Block::Matrix { lhs, rows } => {
            let _ = writeln!(out, "\\[\n{} = {}\n\\]\n", lhs.latex, matrix_latex(rows));
        }
    }
}

fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    out.push_str("<!-- Generated by hessforge; derivatives by Symbolica. -->\n\n");
    for (i, b) in blocks.iter().enumerate() {
        match b {
            Block::Title(t) => {
                let _ = writeln!(out, "# {t}\n");
            }
            Block::Heading(h) => {
                let _ = writeln!(out, "## {h}\n");
            }
            Block::Paragraph(parts) => {
                for p in parts {
                    match p {
                        Inline::Text(t) => out.push_str(t),
                        Inline::Math(m) => {
                            let _ = write!(out, "${}$", m.latex);
                        }
                    }
                }
                out.push_str("\n\n");
            }
            Block::Equation { lhs, steps } => {
                out.push_str(&equation_in_run(
                    blocks,
                    i,
                    lhs,
                    steps,
                    "$$\n\\begin{aligned}\n",
                    "\n\\end{aligned}\n$$\n\n",
                ));
            }
            Block::Matrix { lhs, rows } => {
                let _ = writeln!(out, "$$\n{} = {}\n$$\n", lhs.latex, matrix_latex(rows));
            }
        }
    }
    out
}

fn text(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Title(t) => {
                let _ = writeln!(out, "{t}\n{}\n", "=".repeat(t.chars().count()));
            }
            Block::Heading(h) => {
                let _ = writeln!(out, "{h}\n{}\n", "-".repeat(h.chars().count()));
            }
            Block::Paragraph(parts) => {
                let mut para = String::new();
                for p in parts {
                    match p {
                        Inline::Text(t) => para.push_str(&text_prose(t)),
                        Inline::Math(m) => para.push_str(&m.text),
                    }
                }
                let _ = writeln!(out, "{}\n", wrap(&para, 78));
            }
            Block::Equation { lhs, steps } => {
                let indent = lhs.text.chars().count() + 2;
                for (i, s) in steps.iter().enumerate() {
                    let rel = if s.text.starts_with('←') || s.text.starts_with('≈') {
                        ""
                    } else {
                        "= "
                    };
                    if i == 0 {
                        let _ = writeln!(out, "  {} {rel}{}", lhs.text, s.text);
                    } else {
                        let _ = writeln!(out, "  {}{rel}{}", " ".repeat(indent + 1), s.text);
                    }
                }
                out.push('\n');
            }
            Block::Matrix { lhs, rows } => {
                let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
                    .map(|j| {
                        rows.iter()
                            .map(|r| r[j].text.chars().count())
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let _ = writeln!(out, "  {} =", lhs.text);
                for r in rows {
                    let cells: Vec<String> = r
                        .iter()
                        .zip(&widths)
                        .map(|(m, w)| format!("{:<w$}", m.text, w = *w))
                        .collect();
                    let _ = writeln!(out, "    [ {} ]", cells.join("  "));
                }
                out.push('\n');
            }
        }
    }
    out
}

fn wrap(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in s.split_whitespace() {
        let w = word.chars().count();
        if line > 0 && line + 1 + w > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += w;
    }
    out
}

fn json(d: &Derivation, expand: bool) -> String {
    // Every scalar's display name: built only when a scalar form is printed.
    let names = std::cell::OnceCell::new();
    let latex_of = |e: &hessforge_spec::Expr| {
        let names = names.get_or_init(|| Names::new(&d.model));
        Printer {
            names,
            style: Style::Latex,
        }
        .print(&tidy(e, names))
    };
    let m = &d.model;
    // The scalar lists are the default only where every parameter is a
    // scalar (no index form); `--expand` adds them for tensor models.
    let scalar_lists = d.expanded && (expand || d.index.is_none());
    // The loss and regularizer as written: in index form for a tensor model
    // (`\frac{\lambda \, \left(\sum_{i=1}^{n} w_{i} \, w_{i}\right)}{2}`,
    // the same length at any n), scalarized where the scalar lists are
    // printed.
    let index_model = m
        .index
        .as_ref()
        .filter(|_| d.index.is_some() && !scalar_lists);
    let (loss_latex, regularizer_latex) = match index_model {
        Some(ix) => (
            index::print(m, ix, &ix.loss, Style::Latex),
            ix.regularizer
                .as_ref()
                .map(|r| index::print(m, ix, r, Style::Latex)),
        ),
        None => (latex_of(m.loss()), m.regularizer().map(latex_of)),
    };
    let mut doc = serde_json::json!({
        "name": m.name,
        "title": m.title,
        "description": m.description,
        "params": m.params.iter().map(|s| &s.id).collect::<Vec<_>>(),
        "data": m.data.iter().map(|s| &s.id).collect::<Vec<_>>(),
        "constants": m.constants.iter().map(|(s, v)| (s.id.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
        "loss_latex": loss_latex,
        "regularizer_latex": regularizer_latex,
        "init": m.init,
        "expanded": scalar_lists,
        "index_form": match (&d.index, &m.index) {
            (Some(derived), Some(index)) => index::json(m, index, derived),
            _ => serde_json::Value::Null,
        },
        "rewrites": d.rewrites,
    });
    if scalar_lists && let Some(map) = doc.as_object_mut() {
        let lists = serde_json::json!({
            "definitions": d.symbolica.definitions.iter().zip(m.definitions()).map(|((id, expr), def)| serde_json::json!({
                "name": id, "expr": expr, "latex": latex_of(&def.expr),
            })).collect::<Vec<_>>(),
            "loss": d.symbolica.loss,
            "regularizer": d.symbolica.regularizer,
            "gradient": d.symbolica.gradient,
            "gradient_latex": d.gradient.iter().map(|g| latex_of(&g.expr)).collect::<Vec<_>>(),
            "hessian": d.symbolica.hessian,
            "hessian_latex": d.hessian.iter().map(|r| r.iter().map(latex_of).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "regularizer_gradient": d.symbolica.regularizer_gradient,
            "regularizer_hessian": d.symbolica.regularizer_hessian,
            "regularizer_gradient_latex": d.regularizer_gradient.iter().map(latex_of).collect::<Vec<_>>(),
            "regularizer_hessian_latex": d.regularizer_hessian.iter().map(|r| r.iter().map(latex_of).collect::<Vec<_>>()).collect::<Vec<_>>(),
        });
        if let serde_json::Value::Object(lists) = lists {
            map.extend(lists);
        }
    }
    let mut s = serde_json::to_string_pretty(&doc).expect("JSON of plain data");
    s.push('\n');
    s
}
