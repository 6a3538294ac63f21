//! The report page. It is written once, as Markdown with `$…$` math and
//! relative image links ([`Report::markdown`]); the HTML flavour
//! ([`Report::html`]) is that Markdown through pulldown-cmark with every
//! formula turned into MathML by pulldown-latex. MathML Core is drawn by
//! every current browser with no script and no network, so the page opens
//! offline exactly as written — no bundled JavaScript renderer to keep up
//! to date.

use pulldown_cmark::{CowStr, Event, Options, Parser};
use pulldown_latex::config::DisplayMode;
use pulldown_latex::{RenderConfig, Storage};

/// A figure of the report: an SVG file beside the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File name relative to the page (e.g. `loss.svg`).
    pub file: String,
    /// What it shows.
    pub title: String,
    /// One sentence on how to read it.
    pub caption: String,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The derivation in Markdown (what `hessforge derive --format markdown`
    /// prints; it starts with the model's title and description).
    pub derivation: String,
    /// The comparison: Markdown (a table and a few lines).
    pub comparison: String,
    /// The figures, in order.
    pub figures: Vec<Figure>,
    /// Figures that were not made, and why.
    pub notes: Vec<String>,
    /// The command line that reproduces the report.
    pub command: String,
}

/// The HTML page and the formulas that did not convert.
#[derive(Debug, Clone, PartialEq)]
pub struct Html {
    /// The page.
    pub text: String,
    /// `(formula, message)` for every formula MathML could not express (it
    /// is shown in red on the page).
    pub math_errors: Vec<(String, String)>,
}

impl Report {
    /// The report as Markdown (`$…$` math, relative image links).
    pub fn markdown(&self) -> String {
        let mut s = self.derivation.trim_end().to_string();
        s.push_str("\n\n## Comparison\n\n");
        s.push_str(self.comparison.trim_end());
        s.push_str("\n\n## Figures\n");
        for f in &self.figures {
            s.push_str(&format!(
                "\n### {}\n\n![{}]({})\n\n{}\n",
                f.title, f.title, f.file, f.caption
            ));
        }
        if !self.notes.is_empty() {
            s.push_str("\n## Figures not made\n\n");
            for n in &self.notes {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s.push_str(&format!(
            "\n## Reproduce\n\n```sh\n{}\n```\n",
            self.command.trim()
        ));
        s
    }

    /// The report as one HTML page, formulas as MathML.
    pub fn html(&self) -> Html {
        let markdown = self.markdown();
        let title = markdown
            .lines()
            .find_map(|l| l.strip_prefix("# "))
            .unwrap_or("hessforge report")
            .to_string();
        let mut math_errors = Vec::new();
        let events = Parser::new_ext(&markdown, Options::ENABLE_MATH | Options::ENABLE_TABLES).map(
            |event| match event {
                Event::InlineMath(tex) => Event::InlineHtml(CowStr::from(mathml(
                    &tex,
                    DisplayMode::Inline,
                    &mut math_errors,
                ))),
                Event::DisplayMath(tex) => Event::InlineHtml(CowStr::from(mathml(
                    &tex,
                    DisplayMode::Block,
                    &mut math_errors,
                ))),
                other => other,
            },
        );
        let mut body = String::new();
        pulldown_cmark::html::push_html(&mut body, events);
        let text = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"hessforge\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n\
             </head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
            escape(&title)
        );
        Html { text, math_errors }
    }
}

const STYLE: &str =
    "body { font-family: system-ui, sans-serif; line-height: 1.5; color: #222; margin: 0; }
main { max-width: 62rem; margin: 0 auto; padding: 1rem 2rem 4rem; }
math[display=block] { overflow-x: auto; overflow-y: hidden; padding: 0.3em 0; }
math { font-size: 1.1em; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
table { font-size: 0.9em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
pre { background: #f5f5f5; padding: 0.8em; overflow-x: auto; }
";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One formula as MathML; a formula that does not parse is recorded and
/// rendered as pulldown-latex renders errors (`<merror>`).
fn mathml(tex: &str, mode: DisplayMode, errors: &mut Vec<(String, String)>) -> String {
    let storage = Storage::new();
    for event in pulldown_latex::Parser::new(tex, &storage) {
        if let Err(e) = event {
            errors.push((tex.to_string(), e.to_string()));
        }
    }
    let storage = Storage::new();
    let mut out = String::new();
    let config = RenderConfig {
        display_mode: mode,
        ..RenderConfig::default()
    };
    if let Err(e) =
        pulldown_latex::push_mathml(&mut out, pulldown_latex::Parser::new(tex, &storage), config)
    {
        errors.push((tex.to_string(), e.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            derivation: "# A bowl\n\nThe loss $L = x^2 + \\frac{1}{2} y^2$.\n\n$$\n\\begin{aligned}\nL &= x^{2}\n\\end{aligned}\n$$\n".into(),
            comparison: "| optimizer | iterations |\n|---|---:|\n| newton | 1 |\n".into(),
            figures: vec![Figure {
                file: "loss.svg".into(),
                title: "Loss per iteration".into(),
                caption: "Newton drops at once.".into(),
            }],
            notes: vec!["no contour plot: P = 3".into()],
            command: "hessforge report bowl -o out".into(),
        }
    }

    #[test]
    fn markdown_has_every_part() {
        let md = report().markdown();
        for part in [
            "# A bowl",
            "## Comparison",
            "| newton | 1 |",
            "![Loss per iteration](loss.svg)",
            "- no contour plot: P = 3",
            "```sh\nhessforge report bowl -o out\n```",
        ] {
            assert!(md.contains(part), "missing {part:?} in\n{md}");
        }
    }

    #[test]
    fn html_has_mathml_and_no_tex() {
        let html = report().html();
        assert!(html.math_errors.is_empty(), "{:?}", html.math_errors);
        let t = &html.text;
        assert!(t.contains("<title>A bowl</title>"));
        assert!(t.contains("<math display=\"block\""), "{t}");
        assert!(t.contains("<mfrac>"), "{t}");
        assert!(
            !t.contains("\\frac") && !t.contains("\\begin{aligned}"),
            "{t}"
        );
        assert!(t.contains("<table>") && t.contains("<img src=\"loss.svg\""));
    }

    #[test]
    fn bad_latex_is_reported() {
        let mut r = report();
        r.derivation = "# x\n\n$\\frac{1}$\n".into();
        let html = r.html();
        assert_eq!(html.math_errors.len(), 1, "{:?}", html.math_errors);
        assert!(html.text.contains("merror"));
    }
}
