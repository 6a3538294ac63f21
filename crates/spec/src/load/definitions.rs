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
            let first = data.len();
            data.extend(self.declare(
                name,
                t_span,
                Role::Data,
                t.shape.clone(),
                t.latex.clone(),
            )?);
            if let Some(symbol) = self.symbols.get_mut(name) {
                symbol.first = first;
            }
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

    /// Check the definitions in `order`: elaborate each into what its
    /// entries depend on ([`Reach`], kept with its name for the ones after
    /// it), an element-wise one declared again with the shape of its
    /// value. Returns the definitions' entries in dependency order and
    /// their tensors in file order.
    pub(super) fn check_definitions(
        &mut self,
        raw: &RawSpec,
        order: &[usize],
        def_asts: &[Ast],
        def_ranges: &[DefinitionRange],
    ) -> Result<(Vec<Scalar>, Vec<TensorInfo>), SpecError> {
        let mut scalars = Vec::new();
        for &k in order {
            let d = &raw.define[k];
            let name = d.name.get_ref();
            let (reach, shape) =
                self.definition_entries::<Reach>(d, &def_asts[k], &def_ranges[k])?;
            if def_ranges[k].is_none() && !shape.is_empty() {
                // An element-wise vector (or matrix) definition: re-declare with its shape.
                self.symbols.remove(name);
                self.names.retain(|n| n != name);
                self.declare(
                    name,
                    d.name.span(),
                    Role::Intermediate,
                    shape,
                    d.latex.clone(),
                )?;
            }
            if let Some(symbol) = self.symbols.get_mut(name) {
                symbol.reach = reach;
            }
            scalars.extend(self.definition_scalars(name));
        }
        let tensors = raw
            .define
            .iter()
            .map(|d| self.tensor_info(d.name.get_ref()))
            .collect();
        Ok((scalars, tensors))
    }

    /// The entries of a checked definition, row-major.
    fn definition_scalars(&self, name: &str) -> Vec<Scalar> {
        let base = &self.bases[name];
        scalar_ids(name, &self.symbols[name].shape)
            .into_iter()
            .map(|(id, index)| Scalar {
                latex: subscripted(base, &index),
                id,
                tensor: name.to_string(),
                index,
                role: Role::Intermediate,
            })
            .collect()
    }

    /// One definition's entries (a definition with a `for` range entry by
    /// entry) and the shape of its value.
    pub(super) fn definition_entries<E: Entry>(
        &self,
        d: &RawDefinition,
        ast: &Ast,
        range: &DefinitionRange,
    ) -> Result<(Vec<E>, Vec<usize>), SpecError> {
        let name = d.name.get_ref();
        let Some((var, n)) = range else {
            let mut scope = Scope {
                symbols: &self.symbols,
                bound: vec![],
            };
            let t = scope
                .eval::<E>(ast)
                .map_err(|e| self.src.expr_error(&d.expr, e))?;
            return Ok((t.items, t.shape));
        };
        let mut items = Vec::with_capacity(*n);
        for i in 1..=*n {
            let mut scope = Scope {
                symbols: &self.symbols,
                bound: vec![(var.clone(), i)],
            };
            let t = scope
                .eval::<E>(ast)
                .map_err(|e| self.src.expr_error(&d.expr, e))?;
            if !t.shape.is_empty() {
                return Err(self.src.expr_error(
                    &d.expr,
                    ExprError::new(
                        ErrorKind::Shape,
                        ast.span,
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
        Ok((items, vec![*n]))
    }

    /// The definitions in `order` as scalar definitions, after
    /// [`Loader::check_definitions`] (every shape is known).
    pub(super) fn definitions(
        &self,
        define: &[RawDefinition],
        order: &[usize],
        def_asts: &[Ast],
        def_ranges: &[DefinitionRange],
    ) -> Result<Vec<Definition>, SpecError> {
        let mut definitions = Vec::new();
        for &k in order {
            let d = &define[k];
            let name = d.name.get_ref();
            let (items, _) = self.definition_entries::<Expr>(d, &def_asts[k], &def_ranges[k])?;
            for (scalar, expr) in self.definition_scalars(name).into_iter().zip(items) {
                definitions.push(Definition { scalar, expr });
            }
        }
        Ok(definitions)
    }

    /// The loss must depend on a parameter and the regularizer must not
    /// depend on the data, through the definitions.
    pub(super) fn check_dependence(
        &self,
        raw: &RawSpec,
        inputs: &Inputs,
        loss: Reach,
        regularizer: Option<Reach>,
    ) -> Result<(), SpecError> {
        if !loss.parameter {
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
            && let Some(d) = r.data
        {
            return Err(self.src.error(
                ErrorKind::Invalid,
                Some(raw_r.span()),
                format!(
                    "the regularizer depends on the data (`{}`)",
                    inputs.data[d].id
                ),
                "must be a function of the parameters only",
                "move data-dependent terms into the per-sample loss",
            ));
        }
        Ok(())
    }
}
