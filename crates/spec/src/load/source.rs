//! The file being read, for errors: line and column of a span, the
//! expression parser's errors placed in the file, and the prose check of
//! the notes.

use super::*;

/// Everything needed to report errors against one file.
pub(super) struct Source {
    pub(super) path: String,
    pub(super) text: Arc<String>,
}

impl Source {
    pub(super) fn error(
        &self,
        kind: ErrorKind,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> SpecError {
        SpecError::new(kind, &self.path, &self.text, span, message, label, help)
    }

    /// Where the characters of a TOML string value start in the file.
    pub(super) fn content_offset(&self, value: Range<usize>) -> usize {
        let raw = &self.text[value.start.min(self.text.len())..value.end.min(self.text.len())];
        let mut offset = value.start;
        if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            offset += 3;
            if raw[3..].starts_with('\n') {
                offset += 1;
            } else if raw[3..].starts_with("\r\n") {
                offset += 2;
            }
        } else if raw.starts_with('"') || raw.starts_with('\'') {
            offset += 1;
        }
        offset
    }

    pub(super) fn expr_error(&self, value: &Spanned<String>, e: ExprError) -> SpecError {
        let base = self.content_offset(value.span());
        let limit = value.span().end;
        let start = (base + e.span.start).min(limit);
        let end = (base + e.span.end.max(e.span.start + 1))
            .min(limit)
            .max(start);
        self.error(e.kind, Some(start..end), e.message, e.label, e.help)
    }

    pub(super) fn parse_expr(&self, value: &Spanned<String>) -> Result<Ast, SpecError> {
        expr::parse(value.get_ref()).map_err(|e| {
            self.expr_error(
                value,
                ExprError {
                    kind: ErrorKind::Syntax,
                    message: format!("expression does not parse: {}", e.message),
                    span: e.span,
                    label: "here".into(),
                    help: e.help,
                },
            )
        })
    }
}

/// Title, description and notes are typeset: every character needs a
/// LaTeX spelling (never a silent `?` in the document).
pub(super) fn prose_check(src: &Source, raw: &RawSpec) -> Result<(), SpecError> {
    let fields = [
        ("title", Some(&raw.title)),
        ("description", Some(&raw.description)),
        ("notes", raw.notes.as_ref()),
    ];
    for (field, value) in fields {
        let Some((_, c)) = value.and_then(|v| crate::prose::unsupported(v)) else {
            continue;
        };
        let span = src.text.find(c).map(|i| i..i + c.len_utf8());
        return Err(src.error(
            ErrorKind::Invalid,
            span,
            format!(
                "the {field} contains `{c}` (U+{:04X}), which has no LaTeX spelling",
                c as u32
            ),
            "this character",
            "write it as LaTeX between $…$ (for example $\\star$), or use one the prose table \
             of docs/src/guide/derivation-files.md lists (the Greek alphabet, ‖ ∈ ⊙ ⊗ ᵀ ≤ ≥ → …)",
        ));
    }
    Ok(())
}
