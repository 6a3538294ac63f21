//! The one error type of derivation files: what kind of mistake, where it is
//! (a span into the file), what was expected, and a hint. It implements
//! [`miette::Diagnostic`], so the CLI and the build script print it with the
//! offending line underlined.

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use std::sync::Arc;

/// What kind of mistake a derivation file contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The file is not valid TOML, or a key has the wrong type or is missing.
    Toml,
    /// An expression string does not parse.
    Syntax,
    /// A name is not a parameter, data field, constant or definition.
    UnknownName,
    /// A name is declared twice.
    Duplicate,
    /// A name hides a built-in function.
    ShadowsFunction,
    /// Operand shapes do not fit (lengths, indices, arguments).
    Shape,
    /// Definitions refer to each other in a cycle.
    Cycle,
    /// The loss does not depend on any parameter.
    NoParameterDependence,
    /// A function the language does not have.
    UnsupportedFunction,
    /// A value is out of range or inconsistent (init, synthetic, regularizer).
    Invalid,
}

/// An error in a derivation file, with a span into it. Small (one box), so
/// `Result<_, SpecError>` stays cheap to return.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.message)]
pub struct SpecError(Box<Details>);

#[derive(Debug)]
struct Details {
    kind: ErrorKind,
    message: String,
    source_code: NamedSource<Arc<String>>,
    span: Option<SourceSpan>,
    label: String,
    help: Option<String>,
    path: String,
    text: Arc<String>,
}

impl Diagnostic for SpecError {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.0.source_code)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.0.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.0.label.clone()),
            span,
        ))))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.0
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
}

impl SpecError {
    pub(crate) fn new(
        kind: ErrorKind,
        path: &str,
        text: &Arc<String>,
        span: Option<std::ops::Range<usize>>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> SpecError {
        let help: String = help.into();
        SpecError(Box::new(Details {
            kind,
            message: message.into(),
            source_code: NamedSource::new(path, text.clone()),
            span: span.map(|r| {
                let end = r.end.min(text.len());
                let start = r.start.min(end);
                SourceSpan::from(start..end)
            }),
            label: label.into(),
            help: (!help.is_empty()).then_some(help),
            path: path.to_string(),
            text: text.clone(),
        }))
    }

    /// The kind of mistake.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// What went wrong (and what was expected).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The file the error is in.
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.0.help.as_deref()
    }

    /// 1-based line and column of the start of the span, if there is one.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let offset = self.0.span?.offset();
        let text = &self.0.text;
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some((line, col))
    }

    /// A one-line `file:line:col: error: message (hint: …)` form for build
    /// scripts and logs.
    pub fn one_line(&self) -> String {
        let place = match self.line_col() {
            Some((l, c)) => format!("{}:{l}:{c}", self.0.path),
            None => self.0.path.clone(),
        };
        match &self.0.help {
            Some(h) => format!("{place}: error: {} (hint: {h})", self.0.message),
            None => format!("{place}: error: {}", self.0.message),
        }
    }
}
