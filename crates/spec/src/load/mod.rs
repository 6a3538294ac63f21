//! Reading a derivation file: TOML with spans → declared names → parsed
//! expressions → dependency order → scalarized [`Model`]. Every check that
//! can fail points at the file, line and column of the mistake.
//!
//! This module is the entry points and the [`Loader`]'s main line
//! (`Loader::run`); each stage is a module of its own: [`raw`] (the TOML
//! as serde reads it), [`source`] (spans to lines and columns, the prose
//! check), [`names`] (identifiers, LaTeX spellings, hints), [`definitions`]
//! (the inputs and definitions declared, the definitions evaluated, what
//! the loss depends on), [`elaborate`]
//! (an expression to a tensor of scalar expressions), [`order`]
//! (definitions in dependency order, values, θ₀), [`index`] (the index
//! form) and [`synthetic`] (the data a model draws for itself).

use crate::error::{ErrorKind, SpecError};
use crate::expr::{self, Ast, AstKind, BinOp, Index, Span};
use crate::index::{IExpr, IndexDefinition, IndexModel, IndexScope, IndexTensor};
use crate::model::{
    BuildScalar, Definition, Distribution, Draw, Expr, Func, Model, Rational, Role, Scalar,
    ScalarForm, Synthetic, TensorInfo,
};
use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use num_bigint::BigInt;
use toml::Spanned;

/// Names with a meaning of their own in expressions.
const RESERVED: [&str; 8] = [
    "sum",
    "dot",
    "transpose",
    "normal",
    "uniform",
    "bernoulli",
    "poisson",
    "categorical",
];

mod definitions;
mod elaborate;
mod index;
mod names;
mod order;
mod raw;
mod source;
mod synthetic;
use definitions::*;
pub(crate) use elaborate::parse_number;
use elaborate::*;
pub use names::default_latex;
use names::*;
use raw::*;
use source::*;

/// Read and validate a derivation file from disk.
pub fn load_file(path: &std::path::Path) -> Result<Model, SpecError> {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&shown, &text),
        Err(e) => Err(SpecError::new(
            ErrorKind::Io,
            &shown,
            &Arc::new(String::new()),
            None,
            format!("cannot read the derivation file: {e}"),
            "",
            "check the path; built-in models are listed by `hessforge models`",
        )),
    }
}

/// Validate a derivation file given as text; `path` is used in messages.
pub fn load_str(path: &str, text: &str) -> Result<Model, SpecError> {
    let src = Source {
        path: path.to_string(),
        text: Arc::new(text.to_string()),
    };
    let raw: RawSpec = toml::from_str(text).map_err(|e| {
        if let Some(captured) = key_captured_by_table(text) {
            return captured.into_error(&src);
        }
        src.error(
            ErrorKind::Toml,
            e.span(),
            format!(
                "invalid derivation file: {}",
                readable_toml_message(e.message())
            ),
            "here",
            "see the derivation-file format in docs/src/guide/derivation-files.md (name, title, \
             description, [parameters], [data], [constants], [[define]], loss, regularizer)",
        )
    })?;
    prose_check(&src, &raw)?;
    Loader::new(src).run(raw)
}

struct Loader {
    src: Source,
    symbols: HashMap<String, Symbol>,
    /// Declaration order of names, for suggestions.
    names: Vec<String>,
    /// Display name of each tensor, before subscripts (`w`, `\hat{y}`).
    bases: HashMap<String, String>,
}

impl Loader {
    fn new(src: Source) -> Loader {
        Loader {
            src,
            symbols: HashMap::new(),
            names: Vec::new(),
            bases: HashMap::new(),
        }
    }

    /// Declare a tensor name: check it, give each entry an id.
    fn declare(
        &mut self,
        name: &str,
        span: Range<usize>,
        role: Role,
        shape: Vec<usize>,
        latex: Option<String>,
    ) -> Result<Vec<Scalar>, SpecError> {
        let section = match role {
            Role::Parameter => "[parameters]",
            Role::Data => "[data]",
            Role::Constant => "[constants]",
            Role::Intermediate => "[[define]]",
        };
        if !is_identifier(name) {
            return Err(self.src.error(
                ErrorKind::Invalid,
                Some(span),
                format!("`{name}` in {section} is not a valid name"),
                "invalid name",
                "names start with a letter, contain letters, digits and `_`, and do not end with `_`",
            ));
        }
        if Func::from_name(name).is_some() || RESERVED.contains(&name) {
            return Err(self.src.error(
                ErrorKind::ShadowsFunction,
                Some(span),
                format!("`{name}` in {section} would hide the built-in function `{name}`"),
                "shadows a function",
                format!("rename it, e.g. `{name}_val` or `my_{name}`"),
            ));
        }
        if self.symbols.contains_key(name) {
            return Err(self.src.error(
                ErrorKind::Duplicate,
                Some(span),
                format!("`{name}` is declared twice (again in {section})"),
                "second declaration",
                "every parameter, data field, constant and definition needs its own name",
            ));
        }
        if shape.len() > 2 || shape.contains(&0) {
            return Err(self.src.error(
                ErrorKind::Shape,
                Some(span),
                format!("`{name}` has shape {shape:?}; shapes are [], [n] or [rows, cols] with positive sizes"),
                "unsupported shape",
                "write `shape = [10]` for a vector or `shape = [4, 2]` for a matrix",
            ));
        }
        for other in &self.names {
            let theirs = (other.as_str(), self.symbols[other].shape.as_slice());
            if let Some(id) = shared_entry_id((name, &shape), theirs) {
                return Err(self.src.error(
                    ErrorKind::Duplicate,
                    Some(span),
                    format!("`{name}` and `{other}` both have an entry called `{id}`"),
                    "collision",
                    "rename one of them; `w_3` is how entry 3 of a vector `w` is called",
                ));
            }
        }
        let base = latex.unwrap_or_else(|| default_latex(name));
        self.bases.insert(name.to_string(), base.clone());
        let ids = scalar_ids(name, &shape);
        let mut scalars = Vec::with_capacity(ids.len());
        for (id, index) in ids {
            scalars.push(Scalar {
                latex: subscripted(&base, &index),
                id,
                tensor: name.to_string(),
                index,
                role,
            });
        }
        self.symbols.insert(
            name.to_string(),
            Symbol::new(role, shape, scalars.iter().map(|s| s.id.clone()).collect()),
        );
        self.names.push(name.to_string());
        Ok(scalars)
    }

    fn tensor_info(&self, name: &str) -> TensorInfo {
        let sym = &self.symbols[name];
        TensorInfo {
            name: name.to_string(),
            shape: sym.shape.clone(),
            ids: sym.ids.clone(),
        }
    }

    fn run(mut self, mut raw: RawSpec) -> Result<Model, SpecError> {
        if !is_identifier(raw.name.get_ref()) {
            return Err(self.src.error(
                ErrorKind::Invalid,
                Some(raw.name.span()),
                format!(
                    "model name `{}` is not a valid identifier",
                    raw.name.get_ref()
                ),
                "invalid name",
                "use lower_snake_case, e.g. `logistic_regression`",
            ));
        }
        let inputs = self.declare_inputs(&raw)?;
        let (def_asts, def_ranges) = self.declare_definitions(&raw)?;
        for (d, ast) in raw.define.iter().zip(&def_asts) {
            self.per_sample_check(&d.expr, ast)?;
        }
        let order = self.definition_order(&raw.define, &def_asts)?;

        // Checked through what each entry depends on; the scalar
        // expressions are built when the model is asked for them.
        let (definition_scalars, definition_tensors) =
            self.check_definitions(&raw, &order, &def_asts, &def_ranges)?;
        let loss_ast = self.scalar_ast(&raw.loss)?;
        let loss = self.scalar_entry::<Reach>(&raw.loss, &loss_ast, "the loss")?;
        let regularizer_ast = match &raw.regularizer {
            Some(r) => Some((r.clone(), self.scalar_ast(r)?)),
            None => None,
        };
        let regularizer = match &regularizer_ast {
            Some((r, ast)) => Some(self.scalar_entry::<Reach>(r, ast, "the regularizer")?),
            None => None,
        };
        self.check_dependence(&raw, &inputs, loss, regularizer)?;
        let Inputs {
            params,
            param_tensors,
            data,
            data_tensors,
            constants,
        } = inputs;
        let init = self.init(&raw.init, &params)?;
        let synthetic = match &raw.synthetic {
            Some(s) => Some(self.synthetic(s)?),
            None => None,
        };

        let index = self.index_model(&raw, &def_asts, &def_ranges, &order);
        let source = self.src.path.clone();
        let raw_loss = raw.loss.clone();
        let define = std::mem::take(&mut raw.define);
        let scalar = self.scalar_form(ScalarRecipe {
            define,
            order,
            def_asts,
            def_ranges,
            loss: (raw_loss, loss_ast),
            regularizer: regularizer_ast,
        });
        Ok(Model {
            index,
            source,
            name: raw.name.into_inner(),
            title: raw.title,
            description: raw.description,
            notes: raw.notes,
            params,
            param_tensors,
            data,
            data_tensors,
            constants,
            definition_scalars,
            definition_tensors,
            scalar,
            init,
            synthetic,
        })
    }
}

/// What the scalar expressions of a checked file are built from.
struct ScalarRecipe {
    define: Vec<RawDefinition>,
    order: Vec<usize>,
    def_asts: Vec<Ast>,
    def_ranges: Vec<DefinitionRange>,
    loss: (Spanned<String>, Ast),
    regularizer: Option<(Spanned<String>, Ast)>,
}

impl Loader {
    /// The model's scalar expressions, built on first use by this loader
    /// (its names, as the checks left them) from the recipe.
    fn scalar_form(self, recipe: ScalarRecipe) -> ScalarForm {
        ScalarForm::lazy(Arc::new(ScalarBuilder {
            loader: self,
            recipe,
        }))
    }
}

/// A checked file's loader and recipe, which build its scalar expressions
/// when they are asked for. Every step was checked with the same code over
/// [`Reach`], so none can fail here.
struct ScalarBuilder {
    loader: Loader,
    recipe: ScalarRecipe,
}

impl BuildScalar for ScalarBuilder {
    fn definitions(&self) -> Vec<Definition> {
        let r = &self.recipe;
        self.loader
            .definitions(&r.define, &r.order, &r.def_asts, &r.def_ranges)
            .expect("the definitions of a checked model")
    }

    fn objective(&self) -> (Expr, Option<Expr>) {
        let (r, loader) = (&self.recipe, &self.loader);
        let loss = loader.scalar_entry(&r.loss.0, &r.loss.1, "the loss");
        let regularizer = r
            .regularizer
            .as_ref()
            .map(|(text, ast)| loader.scalar_entry(text, ast, "the regularizer"))
            .transpose();
        (
            loss.expect("the loss of a checked model"),
            regularizer.expect("the regularizer of a checked model"),
        )
    }

    fn has_regularizer(&self) -> bool {
        self.recipe.regularizer.is_some()
    }
}

/// Parse an expression in the scope of a loaded model (its parameters, data,
/// constants and intermediates), e.g. a textbook form to compare a derived
/// result with. Must be a scalar.
pub fn parse_expression(model: &Model, text: &str) -> Result<Expr, SpecError> {
    let mut symbols = HashMap::new();
    let tensors = model
        .param_tensors
        .iter()
        .map(|t| (t, Role::Parameter))
        .chain(model.data_tensors.iter().map(|t| (t, Role::Data)))
        .chain(
            model
                .definition_tensors
                .iter()
                .map(|t| (t, Role::Intermediate)),
        );
    for (t, role) in tensors {
        symbols.insert(
            t.name.clone(),
            Symbol::new(role, t.shape.clone(), t.ids.clone()),
        );
    }
    for (c, _) in &model.constants {
        symbols.insert(
            c.id.clone(),
            Symbol::new(Role::Constant, vec![], vec![c.id.clone()]),
        );
    }
    let loader = Loader {
        src: Source {
            path: "<expression>".into(),
            text: Arc::new(text.to_string()),
        },
        symbols,
        names: vec![],
        bases: HashMap::new(),
    };
    let value = Spanned::new(0..text.len(), text.to_string());
    let ast = loader.scalar_ast(&value)?;
    loader.scalar_entry(&value, &ast, "the expression")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_literals_are_exact() {
        assert_eq!(parse_number("0.01"), Some(Rational::ratio(1, 100)));
        assert_eq!(parse_number("2.5e-3"), Some(Rational::ratio(1, 400)));
        assert_eq!(parse_number("1e3"), Some(Rational::int(1000)));
        assert_eq!(parse_number(".5"), Some(Rational::ratio(1, 2)));
        // Far beyond i128: 10⁻²³ and 40 significant digits stay exact.
        let tiny = parse_number("0.00000004875397277841432").unwrap();
        assert_eq!(tiny.to_string(), "609424659730179/12500000000000000000000");
        let long = parse_number("1234567890123456789012345678901234567890").unwrap();
        assert_eq!(long.to_string(), "1234567890123456789012345678901234567890");
        assert_eq!(parse_number("1e-400").unwrap().to_f64(), 0.0);
        assert_eq!(parse_number("1e99999"), None);
    }

    #[test]
    fn latex_names() {
        assert_eq!(default_latex("lambda"), "\\lambda");
        assert_eq!(default_latex("yhat"), "\\hat{y}");
        assert_eq!(default_latex("w"), "w");
        assert_eq!(default_latex("b_1"), "b_{1}");
        assert_eq!(default_latex("loss"), "\\mathrm{loss}");
    }
}
