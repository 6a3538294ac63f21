//! The TOML layer: the file as serde reads it (with spans), and the
//! readable form of a TOML error (a key a table swallowed, the message).

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpec {
    pub(super) name: Spanned<String>,
    pub(super) title: String,
    pub(super) description: String,
    pub(super) notes: Option<String>,
    #[serde(default)]
    pub(super) parameters: IndexMap<String, Spanned<RawTensor>>,
    #[serde(default)]
    pub(super) data: IndexMap<String, Spanned<RawTensor>>,
    #[serde(default)]
    pub(super) constants: IndexMap<String, Spanned<f64>>,
    #[serde(default)]
    pub(super) define: Vec<RawDefinition>,
    pub(super) loss: Spanned<String>,
    pub(super) regularizer: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) init: IndexMap<String, Spanned<toml::Value>>,
    pub(super) synthetic: Option<RawSynthetic>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTensor {
    #[serde(default)]
    pub(super) shape: Vec<usize>,
    pub(super) latex: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefinition {
    pub(super) name: Spanned<String>,
    #[serde(rename = "for")]
    pub(super) for_range: Option<Spanned<String>>,
    pub(super) expr: Spanned<String>,
    pub(super) latex: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSynthetic {
    pub(super) samples: Option<usize>,
    #[serde(default)]
    pub(super) truth: IndexMap<String, Spanned<toml::Value>>,
    pub(super) draw: IndexMap<String, Spanned<String>>,
}

/// Keys that belong at the top of the file, before any `[table]`.
pub(super) const TOP_LEVEL_KEYS: [&str; 6] = [
    "title",
    "description",
    "notes",
    "loss",
    "regularizer",
    "name",
];

/// A top-level key written after a `[table]` header, where TOML makes it
/// part of that table.
pub(super) struct CapturedKey {
    pub(super) key: String,
    pub(super) table: String,
    pub(super) span: Range<usize>,
}

impl CapturedKey {
    pub(super) fn into_error(self, src: &Source) -> SpecError {
        src.error(
            ErrorKind::Toml,
            Some(self.span),
            format!(
                "`{}` is inside the [{}] table: in TOML every key after a [table] header belongs to it",
                self.key, self.table
            ),
            "belongs to the table above",
            format!("move `{}` above the first [table] header of the file", self.key),
        )
    }
}

/// The first top-level key (loss, regularizer, title, …) that sits inside
/// a table (`[[define]]` may have a `name`).
pub(super) fn key_captured_by_table(text: &str) -> Option<CapturedKey> {
    let mut table: Option<String> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[') {
            let name = header.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or(name).trim();
            table = Some(name.to_string());
            continue;
        }
        let Some(table) = &table else { continue };
        let Some((key, _)) = trimmed.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let allowed_here = key == "name" && table == "define";
        if TOP_LEVEL_KEYS.contains(&key) && !allowed_here {
            let indent = line.len() - line.trim_start().len();
            return Some(CapturedKey {
                key: key.to_string(),
                table: table.clone(),
                span: start + indent..start + indent + key.len(),
            });
        }
    }
    None
}

/// The TOML reader's message with our internal type names replaced by what
/// the file should contain.
pub(super) fn readable_toml_message(message: &str) -> String {
    message
        .trim_end()
        .replace(
            "struct RawTensor",
            "a table such as `{ shape = [10] }` or `{}`",
        )
        .replace(
            "struct RawDefinition",
            "a [[define]] table with `name` and `expr`",
        )
        .replace(
            "struct RawSynthetic",
            "a [synthetic] table with `samples`, [synthetic.truth] and [synthetic.draw]",
        )
        .replace("struct RawSpec", "a derivation file")
}
