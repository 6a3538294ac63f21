//! The model in index form, from the syntax trees scalarization has
//! accepted.

use super::*;

impl Loader {
    /// The same model in index form, from the syntax trees scalarization
    /// has accepted (so `None`, no index form, only on an inconsistency).
    pub(super) fn index_model(
        &self,
        raw: &RawSpec,
        def_asts: &[Ast],
        def_ranges: &[Option<(String, usize)>],
        order: &[usize],
    ) -> Option<IndexModel> {
        let shapes: HashMap<String, Vec<usize>> = self
            .symbols
            .iter()
            .map(|(name, sym)| (name.clone(), sym.shape.clone()))
            .collect();
        let tensors = self
            .names
            .iter()
            .map(|name| {
                let sym = &self.symbols[name];
                IndexTensor {
                    name: name.clone(),
                    latex: self
                        .bases
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| default_latex(name)),
                    role: sym.role,
                    shape: sym.shape.clone(),
                    ids: sym.ids.clone(),
                }
            })
            .collect();
        let mut fresh = 0;
        let mut definitions = Vec::new();
        for &k in order {
            let name = raw.define[k].name.get_ref();
            let mut scope = IndexScope {
                shapes: &shapes,
                bound: vec![],
                fresh: &mut fresh,
            };
            let (indices, expr) = match &def_ranges[k] {
                Some((var, _)) => {
                    let unique = scope.fresh(var);
                    scope.bound.push((var.clone(), unique.clone()));
                    let t = scope.convert(&def_asts[k])?;
                    if !t.axes.is_empty() {
                        return None;
                    }
                    (vec![unique], t.body)
                }
                None => {
                    let t = scope.convert(&def_asts[k])?;
                    (t.axes.into_iter().map(|(v, _)| v).collect(), t.body)
                }
            };
            definitions.push(IndexDefinition {
                name: name.clone(),
                indices,
                expr,
            });
        }
        let mut scalar = |value: &Spanned<String>| -> Option<IExpr> {
            let ast = expr::parse(value.get_ref()).ok()?;
            let t = IndexScope {
                shapes: &shapes,
                bound: vec![],
                fresh: &mut fresh,
            }
            .convert(&ast)?;
            t.axes.is_empty().then_some(t.body)
        };
        let loss = scalar(&raw.loss)?;
        let regularizer = match &raw.regularizer {
            Some(r) => Some(scalar(r)?),
            None => None,
        };
        Some(IndexModel {
            tensors,
            definitions,
            loss,
            regularizer,
        })
    }
}
