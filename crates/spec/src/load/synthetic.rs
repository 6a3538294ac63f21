//! The `[synthetic]` table: the data a model draws for itself.

use super::*;

impl Loader {
    pub(super) fn synthetic(&self, raw: &RawSynthetic) -> Result<Synthetic, SpecError> {
        let span = raw.draw.values().last().map(|v| v.span());
        let mut truth = Vec::new();
        for (name, value) in &raw.truth {
            let values = self.tensor_values(name, value, "[synthetic.truth]")?;
            truth.extend(self.symbols[name].ids.iter().cloned().zip(values));
        }
        // The scope grows as fields are drawn: parameters with a true value,
        // constants, and fields drawn earlier.
        let mut scope_symbols: HashMap<String, Symbol> = self
            .symbols
            .iter()
            .filter(|(name, s)| {
                s.role == Role::Constant
                    || (s.role == Role::Parameter && raw.truth.contains_key(*name))
            })
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        let mut draws = Vec::new();
        for (field, text) in &raw.draw {
            let Some(sym) = self.symbols.get(field).filter(|s| s.role == Role::Data) else {
                return Err(self.src.error(
                    ErrorKind::UnknownName,
                    Some(text.span()),
                    format!("[synthetic.draw] names `{field}`, which is not a data field"),
                    "not a data field",
                    "draw each field declared under [data], in the order they depend on each other",
                ));
            };
            let ast = self.src.parse_expr(text)?;
            let AstKind::Call {
                name,
                args,
                name_span,
            } = &ast.kind
            else {
                return Err(self.src.expr_error(
                    text,
                    ExprError::new(
                        ErrorKind::Invalid,
                        ast.span,
                        "a draw must be a distribution call".into(),
                        "not a distribution",
                        "use normal(mean, sd), uniform(low, high), bernoulli(p), poisson(rate) or categorical(logits)".into(),
                    ),
                ));
            };
            let (distribution, arity) = match name.as_str() {
                "normal" => (Distribution::Normal, 2),
                "uniform" => (Distribution::Uniform, 2),
                "bernoulli" => (Distribution::Bernoulli, 1),
                "poisson" => (Distribution::Poisson, 1),
                "categorical" => (Distribution::Categorical, 1),
                other => {
                    return Err(self.src.expr_error(
                        text,
                        ExprError::new(
                            ErrorKind::UnsupportedFunction,
                            *name_span,
                            format!("unknown distribution `{other}`"),
                            "not a distribution",
                            "use normal(mean, sd), uniform(low, high), bernoulli(p), poisson(rate) or categorical(logits)".into(),
                        ),
                    ));
                }
            };
            if args.len() != arity {
                return Err(self.src.expr_error(
                    text,
                    ExprError::new(
                        ErrorKind::Shape,
                        ast.span,
                        format!("`{name}` takes {arity} argument(s), found {}", args.len()),
                        "wrong number of arguments",
                        String::new(),
                    ),
                ));
            }
            let n = sym.ids.len();
            let mut values = Vec::new();
            for arg in args {
                let mut scope = Scope {
                    symbols: &scope_symbols,
                    bound: vec![],
                };
                let t = scope.eval::<Expr>(arg).map_err(|mut e| {
                    if e.kind == ErrorKind::UnknownName {
                        e.help.push_str(
                            " (draws may use constants, parameters given in [synthetic.truth], and fields drawn earlier)",
                        );
                    }
                    self.src.expr_error(text, e)
                })?;
                let fits = match distribution {
                    Distribution::Categorical => t.shape == sym.shape && sym.shape.len() == 1,
                    _ => t.shape.is_empty() || t.shape == sym.shape,
                };
                if !fits {
                    return Err(self.src.expr_error(
                        text,
                        ExprError::new(
                            ErrorKind::Shape,
                            arg.span,
                            format!(
                                "this argument is {} but `{field}` is {}",
                                describe(&t.shape),
                                describe(&sym.shape)
                            ),
                            "shape mismatch",
                            "give a scalar (used for every entry) or one value per entry".into(),
                        ),
                    ));
                }
                values.push(if t.shape.is_empty() {
                    vec![t.items[0].clone(); n]
                } else {
                    t.items
                });
            }
            scope_symbols.insert(field.clone(), sym.clone());
            draws.push(Draw {
                field: field.clone(),
                distribution,
                args: values,
            });
        }
        let missing: Vec<&str> = self
            .names
            .iter()
            .filter(|n| self.symbols[*n].role == Role::Data && !raw.draw.contains_key(*n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(self.src.error(
                ErrorKind::Invalid,
                span,
                format!(
                    "[synthetic.draw] does not say how to draw {}",
                    missing.join(", ")
                ),
                "incomplete",
                "give a distribution for every data field",
            ));
        }
        Ok(Synthetic {
            samples: raw.samples.unwrap_or(1000),
            truth,
            draws,
        })
    }
}
