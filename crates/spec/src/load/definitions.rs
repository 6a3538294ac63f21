//! The steps of [`Loader::run`] between reading the file and building the
//! [`Model`]: the parameters, data and constants declared; the
//! definitions declared, then evaluated in dependency order into scalar
//! expressions; the loss and regularizer checked for what they depend on.

use super::*;

/// The declared parameters, data fields and constants.
pub(super) struct Inputs {
    pub(super) params: Vec<Scalar>,
    pub(super) param_tensors: Vec<TensorInfo>,
    pub(super) data: Vec<Scalar>,
    pub(super) data_tensors: Vec<TensorInfo>,
    pub(super) constants: Vec<(Scalar, f64)>,
}

/// Each definition's `for` range: its variable and length.
pub(super) type DefinitionRange = Option<(String, usize)>;

impl Loader {
    /// Declare the parameters, data fields and constants; a model needs a
    /// parameter.
    pub(super) fn declare_inputs(&mut self, raw: &RawSpec) -> Result<Inputs, SpecError> {
        let mut params = Vec::new();
        let mut param_tensors = Vec::new();
        for (name, t) in &raw.parameters {
            let t_span = t.span();
            let t = t.get_ref();
            params.extend(self.declare(
                name,
                t_span,
                Role::Parameter,
                t.shape.clone(),
                t.latex.clone(),
            )?);
            param_tensors.push(self.tensor_info(name));
        }
        if params.is_empty() {
            return Err(self.src.error(
                ErrorKind::Invalid,
                None,
                "the model has no parameters",
                "",
                "declare what the optimizer changes under [parameters], e.g. `w = { shape = [10] }`",
            ));
        }
        let mut data = Vec::new();
        let mut data_tensors = Vec::new();
        for (name, t) in &raw.data {
            let t_span = t.span();
            let t = t.get_ref();
            data.extend(self.declare(
                name,
                t_span,
                Role::Data,
                t.shape.clone(),
                t.latex.clone(),
            )?);
            data_tensors.push(self.tensor_info(name));
        }
        let mut constants = Vec::new();
        for (name, value) in &raw.constants {
            let mut s = self.declare(name, value.span(), Role::Constant, vec![], None)?;
            constants.push((s.remove(0), *value.get_ref()));
        }
        Ok(Inputs {
            params,
            param_tensors,
            data,
            data_tensors,
            constants,
        })
    }

    /// Declare every definition's name (in any order, so that they can
    /// refer to each other) and parse its expression and range.
    pub(super) fn declare_definitions(
        &mut self,
        raw: &RawSpec,
    ) -> Result<(Vec<Ast>, Vec<DefinitionRange>), SpecError> {
        let mut def_asts = Vec::new();
        let mut def_ranges = Vec::new();
        for d in &raw.define {
            let range = match &d.for_range {
                Some(r) => {
                    let (var, from, to, span) = expr::parse_range(r.get_ref()).map_err(|e| {
                        self.src.expr_error(
                            r,
                            ExprError::new(ErrorKind::Syntax, e.span, e.message, "here", e.help),
                        )
                    })?;
                    if from != 1 {
                        return Err(self.src.expr_error(
                            r,
                            ExprError::new(
                                ErrorKind::Invalid,
                                span,
                                format!("a vector definition must be indexed from 1, not {from}"),
                                "here",
                                format!("write `{var} = 1..{to}`"),
                            ),
                        ));
                    }
                    Some((var, to))
                }
                None => None,
            };
            let shape = range.as_ref().map(|(_, n)| vec![*n]).unwrap_or_default();
            // The shape of an element-wise vector definition is known only
            // after evaluation; declare it as a scalar for now and fix it later.
            self.declare(
                d.name.get_ref(),
                d.name.span(),
                Role::Intermediate,
                shape,
                d.latex.clone(),
            )?;
            def_asts.push(self.src.parse_expr(&d.expr)?);
            def_ranges.push(range);
        }
        Ok((def_asts, def_ranges))
    }

    /// Evaluate the definitions in `order` into scalar definitions (a
    /// definition with a `for` range entry by entry; an element-wise one
    /// declared again with the shape of its value).
    pub(super) fn evaluate_definitions(
        &mut self,
        raw: &RawSpec,
        order: &[usize],
        def_asts: &[Ast],
        def_ranges: &[DefinitionRange],
    ) -> Result<(Vec<Definition>, Vec<TensorInfo>), SpecError> {
        let mut definitions = Vec::new();
        let mut definition_tensors = Vec::new();
        for &k in order {
            let d = &raw.define[k];
            let name = d.name.get_ref();
            let items = match &def_ranges[k] {
                Some((var, n)) => {
                    let mut items = Vec::new();
                    for i in 1..=*n {
                        let mut scope = Scope {
                            symbols: &self.symbols,
                            bound: vec![(var.clone(), i)],
                        };
                        let t = scope
                            .eval(&def_asts[k])
                            .map_err(|e| self.src.expr_error(&d.expr, e))?;
                        if !t.shape.is_empty() {
                            return Err(self.src.expr_error(
                                &d.expr,
                                ExprError::new(
                                    ErrorKind::Shape,
                                    def_asts[k].span,
                                    format!(
                                        "each entry of `{name}` must be a scalar, but this is {}",
                                        describe(&t.shape)
                                    ),
                                    "not a scalar",
                                    format!("index with `{var}`"),
                                ),
                            ));
                        }
                        items.extend(t.items);
                    }
                    items
                }
                None => {
                    let mut scope = Scope {
                        symbols: &self.symbols,
                        bound: vec![],
                    };
                    let t = scope
                        .eval(&def_asts[k])
                        .map_err(|e| self.src.expr_error(&d.expr, e))?;
                    if !t.shape.is_empty() {
                        // An element-wise vector (or matrix) definition: re-declare with its shape.
                        self.symbols.remove(name);
                        self.names.retain(|n| n != name);
                        self.all_ids.remove(name);
                        self.declare(
                            name,
                            d.name.span(),
                            Role::Intermediate,
                            t.shape.clone(),
                            d.latex.clone(),
                        )?;
                    }
                    t.items
                }
            };
            let sym = &self.symbols[name];
            let base = &self.bases[name];
            for ((id, index), expr) in scalar_ids(name, &sym.shape).into_iter().zip(items) {
                definitions.push(Definition {
                    scalar: Scalar {
                        latex: subscripted(base, &index),
                        id,
                        tensor: name.to_string(),
                        index,
                        role: Role::Intermediate,
                    },
                    expr,
                });
            }
        }
        for d in &raw.define {
            definition_tensors.push(self.tensor_info(d.name.get_ref()));
        }

        Ok((definitions, definition_tensors))
    }

    /// The loss must depend on a parameter and the regularizer must not
    /// depend on the data, through the definitions.
    pub(super) fn check_dependence(
        &self,
        raw: &RawSpec,
        inputs: &Inputs,
        definitions: &[Definition],
        loss: &Expr,
        regularizer: Option<&Expr>,
    ) -> Result<(), SpecError> {
        let param_ids: FxHashSet<&str> = inputs.params.iter().map(|s| s.id.as_str()).collect();
        let data_ids: FxHashSet<&str> = inputs.data.iter().map(|s| s.id.as_str()).collect();
        // What each definition reaches through the ones before it: whether
        // a parameter, and the first data entry (linear in the model's size:
        // no set of leaves is copied from definition to definition).
        let mut reach_of: FxHashMap<&str, Reach> = FxHashMap::default();
        let reach = |e: &Expr, reach_of: &FxHashMap<&str, Reach>| {
            let mut out = Reach::default();
            e.for_each_var(&mut |v| match reach_of.get(v) {
                Some(inner) => out.join(inner),
                None if param_ids.contains(v) => out.parameter = true,
                None if data_ids.contains(v) && out.data.is_none() => {
                    out.data = Some(v.to_string());
                }
                None => {}
            });
            out
        };
        for d in definitions {
            let r = reach(&d.expr, &reach_of);
            reach_of.insert(d.scalar.id.as_str(), r);
        }
        if !reach(loss, &reach_of).parameter {
            return Err(self.src.error(
                ErrorKind::NoParameterDependence,
                Some(raw.loss.span()),
                "the loss does not depend on any parameter",
                "nothing here changes with θ",
                format!(
                    "use the parameters ({}) in the loss or in a definition it uses",
                    raw.parameters
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if let (Some(r), Some(raw_r)) = (regularizer, &raw.regularizer)
            && let Some(d) = reach(r, &reach_of).data
        {
            return Err(self.src.error(
                ErrorKind::Invalid,
                Some(raw_r.span()),
                format!("the regularizer depends on the data (`{d}`)"),
                "must be a function of the parameters only",
                "move data-dependent terms into the per-sample loss",
            ));
        }

        Ok(())
    }
}

/// What an expression depends on, through definitions: whether any
/// parameter, and the first data entry it meets.
#[derive(Debug, Clone, Default)]
struct Reach {
    parameter: bool,
    data: Option<String>,
}

impl Reach {
    fn join(&mut self, other: &Reach) {
        self.parameter |= other.parameter;
        if self.data.is_none() {
            self.data.clone_from(&other.data);
        }
    }
}
