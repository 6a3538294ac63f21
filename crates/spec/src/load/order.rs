//! Definitions in dependency order, the per-sample check, scalar
//! expressions, tensor values and the start θ₀.

use super::*;

impl Loader {
    /// Models are written per sample: a data matrix multiplied by the
    /// parameters (`X @ w`) is the whole data set written at once.
    pub(super) fn per_sample_check(
        &self,
        value: &Spanned<String>,
        ast: &Ast,
    ) -> Result<(), SpecError> {
        let mut found = None;
        data_matrix_products(ast, &self.symbols, &mut found);
        let Some((name, span, cols)) = found else {
            return Ok(());
        };
        Err(self.src.expr_error(
            value,
            ExprError::new(
                ErrorKind::Invalid,
                span,
                format!(
                    "`{name}` is a data matrix multiplied by the parameters: models are written per sample, one row of data at a time"
                ),
                "the whole data set",
                format!(
                    "declare one row, `x = {{ shape = [{cols}] }}` under [data], and write `dot(w, x)`; \
                     hessforge averages the per-sample loss over the rows of the data file"
                ),
            ),
        ))
    }

    /// A scalar expression of the file (the loss, the regularizer) parsed
    /// and checked to be written per sample.
    pub(super) fn scalar_ast(&self, value: &Spanned<String>) -> Result<Ast, SpecError> {
        let ast = self.src.parse_expr(value)?;
        self.per_sample_check(value, &ast)?;
        Ok(ast)
    }

    /// A parsed expression elaborated into one scalar entry.
    pub(super) fn scalar_entry<E: Entry>(
        &self,
        value: &Spanned<String>,
        ast: &Ast,
        what: &str,
    ) -> Result<E, SpecError> {
        let mut scope = Scope {
            symbols: &self.symbols,
            bound: vec![],
        };
        let t = scope
            .eval::<E>(ast)
            .map_err(|e| self.src.expr_error(value, e))?;
        if !t.shape.is_empty() {
            return Err(self.src.expr_error(
                value,
                ExprError::new(
                    ErrorKind::Shape,
                    ast.span,
                    format!("{what} must be a scalar, but it is {}", describe(&t.shape)),
                    "not a scalar",
                    "reduce it with sum(...) or dot(...)".into(),
                ),
            ));
        }
        Ok(t.items
            .into_iter()
            .next()
            .expect("scalar tensor has one item"))
    }

    /// Topological order of the definitions; a cycle is an error.
    pub(super) fn definition_order(
        &self,
        defs: &[RawDefinition],
        asts: &[Ast],
    ) -> Result<Vec<usize>, SpecError> {
        let index: HashMap<&str, usize> = defs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.get_ref().as_str(), i))
            .collect();
        let edges: Vec<Vec<(usize, Span)>> = asts
            .iter()
            .map(|ast| {
                let mut names = Vec::new();
                mentioned_names(ast, &mut names);
                names
                    .into_iter()
                    .filter_map(|(n, s)| index.get(n.as_str()).map(|&i| (i, s)))
                    .collect()
            })
            .collect();
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let mut state = vec![0u8; defs.len()];
        let mut order = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        fn visit(
            k: usize,
            edges: &[Vec<(usize, Span)>],
            state: &mut [u8],
            order: &mut Vec<usize>,
            stack: &mut Vec<usize>,
        ) -> Result<(), (Vec<usize>, Span)> {
            state[k] = 1;
            stack.push(k);
            for &(j, span) in &edges[k] {
                match state[j] {
                    0 => visit(j, edges, state, order, stack)?,
                    1 => {
                        let from = stack.iter().position(|&s| s == j).unwrap_or(0);
                        let mut cycle = stack[from..].to_vec();
                        cycle.push(j);
                        return Err((cycle, span));
                    }
                    _ => {}
                }
            }
            stack.pop();
            state[k] = 2;
            order.push(k);
            Ok(())
        }
        for k in 0..defs.len() {
            if state[k] == 0
                && let Err((cycle, span)) = visit(k, &edges, &mut state, &mut order, &mut stack)
            {
                let names: Vec<&str> = cycle
                    .iter()
                    .map(|&i| defs[i].name.get_ref().as_str())
                    .collect();
                let last = cycle[cycle.len() - 2];
                return Err(self.src.expr_error(
                    &defs[last].expr,
                    ExprError::new(
                        ErrorKind::Cycle,
                        span,
                        format!("the definitions form a cycle: {}", names.join(" → ")),
                        "this use closes the cycle",
                        "each definition may use only parameters, data, constants and definitions that do not use it back".into(),
                    ),
                ));
            }
        }
        Ok(order)
    }

    /// Values for a parameter tensor from a TOML number, list or list of lists.
    pub(super) fn tensor_values(
        &self,
        name: &str,
        value: &Spanned<toml::Value>,
        what: &str,
    ) -> Result<Vec<f64>, SpecError> {
        let sym = self.symbols.get(name).filter(|s| s.role == Role::Parameter);
        let Some(sym) = sym else {
            let params: Vec<&str> = self
                .names
                .iter()
                .filter(|n| self.symbols[*n].role == Role::Parameter)
                .map(String::as_str)
                .collect();
            let help = match suggestion(name, params.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("parameters: {}", params.join(", ")),
            };
            return Err(self.src.error(
                ErrorKind::UnknownName,
                Some(value.span()),
                format!("{what} names `{name}`, which is not a parameter"),
                "not a parameter",
                help,
            ));
        };
        let n = sym.ids.len();
        let number = |v: &toml::Value| match v {
            toml::Value::Float(f) => Some(*f),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        };
        let flat: Option<Vec<f64>> = match value.get_ref() {
            toml::Value::Array(rows) => {
                let mut out = Vec::new();
                let mut ok = true;
                for r in rows {
                    match r {
                        toml::Value::Array(inner) => {
                            out.extend(inner.iter().filter_map(number));
                            ok &= inner.iter().all(|x| number(x).is_some());
                        }
                        x => match number(x) {
                            Some(f) => out.push(f),
                            None => ok = false,
                        },
                    }
                }
                ok.then_some(out)
            }
            v => number(v).map(|f| vec![f; n]),
        };
        match flat {
            Some(values) if values.len() == n && values.iter().all(|v| v.is_finite()) => Ok(values),
            _ => Err(self.src.error(
                ErrorKind::Shape,
                Some(value.span()),
                format!(
                    "{what} for `{name}` must give {} finite number{} ({})",
                    n,
                    if n == 1 { "" } else { "s" },
                    describe(&sym.shape)
                ),
                "wrong size or type",
                "give one number (used for every entry) or a list with one value per entry",
            )),
        }
    }

    pub(super) fn init(
        &self,
        raw: &IndexMap<String, Spanned<toml::Value>>,
        params: &[Scalar],
    ) -> Result<Vec<f64>, SpecError> {
        let mut init = vec![0.0; params.len()];
        for (name, value) in raw {
            let values = self.tensor_values(name, value, "[init]")?;
            for (id, v) in self.symbols[name].ids.iter().zip(values) {
                let k = params
                    .iter()
                    .position(|p| &p.id == id)
                    .expect("parameter id");
                init[k] = v;
            }
        }
        Ok(init)
    }
}
