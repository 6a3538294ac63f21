//! The one error type of derivation files: what kind of mistake, where it is
//! (a span into the file), what was expected, and a hint. It implements
//! [`miette::Diagnostic`], so the CLI and the build script print it with the
//! offending line underlined.

use miette::{Diagnostic, NamedSource, SourceSpan};
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

/// An error in a derivation file, with a span into it.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct SpecError {
    /// The kind of mistake.
    pub kind: ErrorKind,
    /// What went wrong (and what was expected).
    pub message: String,
    #[source_code]
    source_code: NamedSource<Arc<String>>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    help: Option<String>,
    path: String,
    text: Arc<String>,
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
        SpecError {
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
        }
    }

    /// The file the error is in.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// 1-based line and column of the start of the span, if there is one.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let offset = self.span?.offset();
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some((line, col))
    }

    /// A one-line `file:line:col: message (hint)` form for build scripts and logs.
    pub fn one_line(&self) -> String {
        let place = match self.line_col() {
            Some((l, c)) => format!("{}:{l}:{c}", self.path),
            None => self.path.clone(),
        };
        match &self.help {
            Some(h) => format!("{place}: error: {} (hint: {h})", self.message),
            None => format!("{place}: error: {}", self.message),
        }
    }
}
