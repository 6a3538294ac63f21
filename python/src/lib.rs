//! The extension module `hessforge._hessforge`: the Rust side of the
//! Python package. It owns the crossing between Python and the library —
//! models loaded by name, path or text, derivations rendered in every
//! format, kernel passes on NumPy arrays (with the GIL released), the
//! optimizers of the catalogue, and errors as Python exceptions. The
//! package's pure-Python layer (`py/hessforge/__init__.py`) converts
//! arguments to contiguous float64 arrays, wraps results in SciPy's
//! conventions and gives the objects their notebook representations.
//!
//! Data cross as one array per data tensor of the model, in the model's
//! order (`m.loss(theta, X, y)` for logistic regression's `x` and `y`), each
//! of shape (N, *tensor shape); they are interleaved here into the row-major
//! rows the kernels read.

use hessforge_derivation::Derivation;
use hessforge_derivation::render::{Format, render, render_expanded};
use hessforge_driver::backend::BackendChoice;
use hessforge_driver::data::Dataset;
use hessforge_driver::figures::{FigureKind, FigureOptions};
use hessforge_driver::{Prepared, fit, models, optimizer_for, prepare_without_data};
use hessforge_kernels::{At, Kernel};
use hessforge_optim::{Choice, History, Observer, Outcome, Record, Settings, Stopping};
use hessforge_spec::Model;
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

create_exception!(
    _hessforge,
    DerivationError,
    PyValueError,
    "A model that cannot be loaded or derived: the message names the file, line and column where there is one, what was expected, and a hint (the text the command line prints)."
);

/// A diagnostic as the command line prints it, without colours.
fn report(e: impl miette::Diagnostic + Send + Sync + 'static) -> String {
    let mut out = String::new();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_context_lines(2);
    match handler.render_report(&mut out, &e) {
        Ok(()) => out,
        Err(_) => e.to_string(),
    }
}

/// The model a call names: a built-in name or a path (`source`), or the
/// text of a derivation file (`text`). Returns the name it was asked by.
fn load(source: Option<&str>, text: Option<&str>) -> PyResult<(String, Model)> {
    match (source, text) {
        (Some(s), None) => models::load(s)
            .map(|m| (s.to_string(), m))
            .map_err(|e| DerivationError::new_err(report(e))),
        (None, Some(t)) => hessforge_spec::load_str("<text>", t)
            .map(|m| (String::from("<text>"), m))
            .map_err(|e| DerivationError::new_err(report(e))),
        _ => Err(PyValueError::new_err(
            "give a model's name or path, or its text as text=...",
        )),
    }
}

/// A derivation: the model's loss, gradient and Hessian, derived, ready to
/// render as a lecture note, slides, Markdown, text or JSON.
#[pyclass(module = "hessforge._hessforge", frozen)]
struct RawDerivation {
    derivation: Derivation,
    expanded: bool,
}

#[pymethods]
impl RawDerivation {
    /// The derivation in `format`: latex, beamer, markdown, text or json.
    fn render(&self, format: &str) -> PyResult<String> {
        let Some((format, _)) = Format::ALL.iter().find(|(_, name)| *name == format) else {
            let names: Vec<&str> = Format::ALL.iter().map(|(_, n)| *n).collect();
            return Err(PyValueError::new_err(format!(
                "no format named `{format}`: expected one of {}",
                names.join(", ")
            )));
        };
        Ok(if self.expanded {
            render_expanded(&self.derivation, *format)
        } else {
            render(&self.derivation, *format)
        })
    }

    /// The model's name.
    #[getter]
    fn name(&self) -> String {
        self.derivation.model.name.clone()
    }

    /// The parameters' scalar names, in θ's order.
    #[getter]
    fn params(&self) -> Vec<String> {
        self.derivation
            .model
            .params
            .iter()
            .map(|s| s.id.clone())
            .collect()
    }
}

/// Derive a model (see `hessforge.derive`).
#[pyfunction]
#[pyo3(signature = (source=None, *, text=None, expand=false))]
fn derive(
    py: Python<'_>,
    source: Option<&str>,
    text: Option<&str>,
    expand: bool,
) -> PyResult<RawDerivation> {
    let (_, model) = load(source, text)?;
    let derived = py.detach(|| {
        let mut d = if expand {
            hessforge_symbolic::derive(&model)
        } else {
            hessforge_symbolic::derive_unexpanded(model)
        }?;
        d.rewrites = hessforge_symbolic::rewrites(&d)?;
        Ok::<_, hessforge_symbolic::EngineError>(d)
    });
    let derivation = derived.map_err(|e| DerivationError::new_err(report(e)))?;
    Ok(RawDerivation {
        derivation,
        expanded: expand,
    })
}

/// A model with its kernel: the build-time kernel of a built-in, the
/// run-time compiled kernel of a file (or the interpreter, when asked).
#[pyclass(module = "hessforge._hessforge")]
struct RawModel {
    /// The model, its back-end and constants; the data and start of the
    /// last fit.
    prepared: Prepared,
    /// The derivation's θ₀ (or `init`'s).
    start: Vec<f64>,
}

/// One data tensor's name and shape.
fn data_tensors(model: &Model) -> Vec<(String, Vec<usize>)> {
    model
        .data_tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect()
}

/// The expected shape of a data tensor's array over `rows` rows, written
/// as NumPy writes shapes.
fn shape_text(rows: &str, shape: &[usize]) -> String {
    let mut parts = vec![rows.to_string()];
    parts.extend(shape.iter().map(usize::to_string));
    match parts.len() {
        1 => format!("({rows},)"),
        _ => format!("({})", parts.join(", ")),
    }
}

impl RawModel {
    fn n_params(&self) -> usize {
        self.prepared.model.n_params()
    }

    /// θ from an array, its length checked.
    fn theta(&self, what: &str, theta: &PyReadonlyArray1<'_, f64>) -> PyResult<Vec<f64>> {
        let p = self.n_params();
        let values = theta.as_slice()?;
        if values.len() != p {
            return Err(PyValueError::new_err(format!(
                "{what} has {} entries; model `{}` has {p} parameters ({})",
                values.len(),
                self.prepared.model.name,
                self.param_names().join(", ")
            )));
        }
        Ok(values.to_vec())
    }

    /// The rows of the data arrays (one per data tensor, in the model's
    /// order), interleaved row-major; their shapes checked.
    fn rows(&self, data: &Bound<'_, PyTuple>) -> PyResult<(Vec<f64>, usize)> {
        let tensors = data_tensors(&self.prepared.model);
        let names: Vec<String> = tensors
            .iter()
            .map(|(n, s)| format!("{n} {}", shape_text("N", s)))
            .collect();
        if data.len() != tensors.len() {
            return Err(PyValueError::new_err(format!(
                "{} data arrays given; model `{}` takes {}: {}",
                data.len(),
                self.prepared.model.name,
                tensors.len(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        }
        let arrays: Vec<PyReadonlyArrayDyn<'_, f64>> = data
            .iter()
            .map(|a| a.extract::<PyReadonlyArrayDyn<'_, f64>>())
            .collect::<Result<_, _>>()?;
        let mut n = None;
        for ((name, shape), a) in tensors.iter().zip(&arrays) {
            let got = a.shape();
            let rows = got.first().copied().unwrap_or(0);
            let fits = got.len() == shape.len() + 1 && got[1..] == shape[..];
            if !fits || n.is_some_and(|n| n != rows) {
                let expected = shape_text(&n.map_or("N".into(), |n: usize| n.to_string()), shape);
                return Err(PyValueError::new_err(format!(
                    "data array `{name}` has shape {}; expected {expected} (the data of `{}`: {})",
                    shape_text(&rows.to_string(), got.get(1..).unwrap_or_default()),
                    self.prepared.model.name,
                    names.join(", ")
                )));
            }
            n = Some(rows);
        }
        let n = n.unwrap_or(0);
        let cols = self.prepared.model.data.len();
        let mut values = vec![0.0; n * cols];
        let mut offset = 0;
        for ((_, shape), a) in tensors.iter().zip(&arrays) {
            let width: usize = shape.iter().product();
            let slice = a.as_slice()?;
            for r in 0..n {
                values[r * cols + offset..r * cols + offset + width]
                    .copy_from_slice(&slice[r * width..(r + 1) * width]);
            }
            offset += width;
        }
        Ok((values, n))
    }

    /// One pass writing P entries (∇L, ∇²L·v, …) of `theta` (and `v`) over
    /// the data, the GIL released while it runs.
    fn vector_pass<'py>(
        &self,
        py: Python<'py>,
        theta: &PyReadonlyArray1<'_, f64>,
        v: Option<&PyReadonlyArray1<'_, f64>>,
        data: &Bound<'_, PyTuple>,
        pass: impl Fn(&dyn Kernel, At<'_>, &[f64], &mut [f64]) + Sync,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let theta = self.theta("theta", theta)?;
        let v = match v {
            Some(v) => self.theta("v", v)?,
            None => Vec::new(),
        };
        let (rows, _) = self.rows(data)?;
        let p = &self.prepared;
        let mut out = vec![0.0; theta.len()];
        py.detach(|| {
            let at = At::new(&theta, &p.constants, &rows);
            pass(p.backend.kernel(), at, &v, &mut out)
        });
        Ok(PyArray1::from_vec(py, out))
    }

    fn param_names(&self) -> Vec<String> {
        self.prepared
            .model
            .params
            .iter()
            .map(|s| s.id.clone())
            .collect()
    }
}

#[pymethods]
impl RawModel {
    /// The model's name.
    #[getter]
    fn name(&self) -> String {
        self.prepared.model.name.clone()
    }

    /// Parameter names, in θ's order.
    #[getter]
    fn params(&self) -> Vec<String> {
        self.param_names()
    }

    /// The data tensors, in the order the calls take them: (name, shape).
    #[getter]
    fn data(&self) -> Vec<(String, Vec<usize>)> {
        data_tensors(&self.prepared.model)
    }

    /// "compiled", "run-time compiled" or "interpreter".
    #[getter]
    fn backend(&self) -> &'static str {
        self.prepared.backend.kind()
    }

    /// The derivation's start θ₀.
    #[getter]
    fn start<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.start)
    }

    /// L(θ) over the rows.
    #[pyo3(signature = (theta, *data))]
    fn loss(
        &self,
        py: Python<'_>,
        theta: PyReadonlyArray1<'_, f64>,
        data: &Bound<'_, PyTuple>,
    ) -> PyResult<f64> {
        let theta = self.theta("theta", &theta)?;
        let (rows, _) = self.rows(data)?;
        let p = &self.prepared;
        Ok(py.detach(|| {
            p.backend
                .kernel()
                .loss(At::new(&theta, &p.constants, &rows))
        }))
    }

    /// The median time in seconds of the loss pass alone over `repeats`
    /// calls in Rust (no crossing from Python): the baseline of
    /// `python/bench/overhead.py`, which measures what a call from Python
    /// adds to it.
    #[pyo3(signature = (theta, *data, repeats=1000))]
    fn _loss_pass_seconds(
        &self,
        py: Python<'_>,
        theta: PyReadonlyArray1<'_, f64>,
        data: &Bound<'_, PyTuple>,
        repeats: usize,
    ) -> PyResult<f64> {
        let theta = self.theta("theta", &theta)?;
        let (rows, _) = self.rows(data)?;
        let p = &self.prepared;
        Ok(py.detach(|| {
            let kernel = p.backend.kernel();
            let at = At::new(&theta, &p.constants, &rows);
            let mut times: Vec<f64> = (0..repeats.max(1))
                .map(|_| {
                    let start = std::time::Instant::now();
                    std::hint::black_box(kernel.loss(std::hint::black_box(at)));
                    start.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        }))
    }

    /// ∇L(θ).
    #[pyo3(signature = (theta, *data))]
    fn grad<'py>(
        &self,
        py: Python<'py>,
        theta: PyReadonlyArray1<'_, f64>,
        data: &Bound<'_, PyTuple>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.vector_pass(py, &theta, None, data, |k, at, _, out| {
            k.loss_grad(at, out);
        })
    }

    /// ∇²L(θ), P × P.
    #[pyo3(signature = (theta, *data))]
    fn hessian<'py>(
        &self,
        py: Python<'py>,
        theta: PyReadonlyArray1<'_, f64>,
        data: &Bound<'_, PyTuple>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let theta = self.theta("theta", &theta)?;
        let (rows, _) = self.rows(data)?;
        let p = &self.prepared;
        let n = theta.len();
        let (mut g, mut h) = (vec![0.0; n], vec![0.0; n * n]);
        py.detach(|| {
            p.backend
                .kernel()
                .loss_grad_hess(At::new(&theta, &p.constants, &rows), &mut g, &mut h)
        });
        let flat = PyArray1::from_vec(py, h);
        flat.reshape([n, n])
    }

    /// ∇²L(θ)·v, the matrix never formed.
    #[pyo3(signature = (theta, v, *data))]
    fn hess_vec<'py>(
        &self,
        py: Python<'py>,
        theta: PyReadonlyArray1<'_, f64>,
        v: PyReadonlyArray1<'_, f64>,
        data: &Bound<'_, PyTuple>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.vector_pass(py, &theta, Some(&v), data, |k, at, v, out| {
            k.hess_vec(at, v, out);
        })
    }

    /// The Gauss–Newton matrix times v, for a loss that is a square per
    /// row.
    #[pyo3(signature = (theta, v, *data))]
    fn gauss_newton_vec<'py>(
        &self,
        py: Python<'py>,
        theta: PyReadonlyArray1<'_, f64>,
        v: PyReadonlyArray1<'_, f64>,
        data: &Bound<'_, PyTuple>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        if !hessforge_driver::backend::loss_is_square(&self.prepared.model) {
            return Err(PyValueError::new_err(format!(
                "model `{}`: the Gauss–Newton matrix needs a loss that is c·r² per row",
                self.prepared.model.name
            )));
        }
        self.vector_pass(py, &theta, Some(&v), data, |k, at, v, out| {
            k.gauss_newton_vec(at, v, out);
        })
    }

    /// Run one optimizer of the catalogue from `x0` (None: θ₀) on the data;
    /// returns a dict of the result and its history.
    #[pyo3(signature = (method, x0, data, tol, max_iter, callback, hyper))]
    #[allow(clippy::too_many_arguments)] // Python's call, one argument each
    fn minimize<'py>(
        &mut self,
        py: Python<'py>,
        method: &str,
        x0: Option<PyReadonlyArray1<'_, f64>>,
        data: &Bound<'_, PyTuple>,
        tol: f64,
        max_iter: u64,
        callback: Option<Py<PyAny>>,
        hyper: &Bound<'_, PyDict>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.load(x0.as_ref(), data)?;
        let mut settings = settings(hyper)?;
        let stopping = stopping(tol, max_iter)?;
        let prepared = &self.prepared;
        hessforge_driver::start_curvature(&mut settings, &[method], prepared);
        let mut optimizer = optimizer_for(prepared, method, &settings)
            .map_err(|e| PyValueError::new_err(report(e)))?;
        let mut history = History::for_params(prepared.model.n_params());
        let mut watch = Watch::new(callback, Arc::default());
        let outcome = py.detach(|| {
            fit(
                prepared,
                method,
                optimizer.as_mut(),
                &stopping,
                &mut [&mut history, &mut watch],
            )
        });
        if let Some(error) = watch.error {
            return Err(error);
        }
        result(py, &outcome, &history)
    }

    /// Several optimizers from the same start (None: every full-batch one,
    /// as `hessforge compare`), each result with its history; with
    /// `figures`, also the figures of `hessforge compare --plots` as (file,
    /// title, caption, SVG) and a note for each that does not apply.
    #[pyo3(signature = (methods, x0, data, tol, max_iter, hyper, figures))]
    #[allow(clippy::too_many_arguments)] // Python's call, one argument each
    #[allow(clippy::type_complexity)] // a tuple for the Python layer
    fn compare<'py>(
        &mut self,
        py: Python<'py>,
        methods: Option<Vec<String>>,
        x0: Option<PyReadonlyArray1<'_, f64>>,
        data: &Bound<'_, PyTuple>,
        tol: f64,
        max_iter: u64,
        hyper: &Bound<'_, PyDict>,
        figures: bool,
    ) -> PyResult<(
        Vec<Bound<'py, PyDict>>,
        Vec<(String, String, String, String)>,
        Vec<String>,
    )> {
        self.load(x0.as_ref(), data)?;
        let mut settings = settings(hyper)?;
        let stopping = stopping(tol, max_iter)?;
        let prepared = &self.prepared;
        let names = hessforge_driver::optimizer_names(prepared, methods.unwrap_or_default());
        let interrupted: Arc<AtomicBool> = Arc::default();
        let compared = py.detach(|| {
            let mut watch = |_: &str| -> Option<Box<dyn Observer>> {
                Some(Box::new(Watch::new(None, interrupted.clone())))
            };
            let runs = hessforge_driver::run_all(
                prepared,
                &names,
                &mut settings,
                &stopping,
                true,
                &mut watch,
            )?;
            let drawn = figures.then(|| {
                hessforge_driver::figures::draw(
                    prepared,
                    &runs,
                    &settings,
                    &stopping,
                    &FigureKind::ALL,
                    &FigureOptions::default(),
                )
            });
            Ok::<_, hessforge_driver::OptionError>((runs, drawn))
        });
        let (runs, drawn) = compared.map_err(|e| PyValueError::new_err(report(e)))?;
        let results = runs
            .iter()
            .map(|r| result(py, &r.outcome, &r.history))
            .collect::<PyResult<_>>()?;
        let (drawn, notes) = drawn.unwrap_or_default();
        let drawn = drawn
            .into_iter()
            .map(|d| (d.figure.file, d.figure.title, d.figure.caption, d.svg))
            .collect();
        Ok((results, drawn, notes))
    }
}

impl RawModel {
    /// The start (`x0`, or the derivation's θ₀) and the data of a fit.
    fn load(
        &mut self,
        x0: Option<&PyReadonlyArray1<'_, f64>>,
        data: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        let start = match x0 {
            Some(x0) => self.theta("x0", x0)?,
            None => self.start.clone(),
        };
        let (values, rows) = self.rows(data)?;
        self.prepared.start = start;
        self.prepared.data = Dataset::in_memory(values, rows, "NumPy arrays");
        Ok(())
    }
}

/// The stopping rule of `tol` (‖∇L‖∞) and `max_iter`.
fn stopping(tol: f64, max_iter: u64) -> PyResult<Stopping> {
    if tol.is_nan() || tol < 0.0 {
        return Err(PyValueError::new_err(format!(
            "tol: {tol} is not a number ≥ 0"
        )));
    }
    Ok(Stopping {
        max_iters: max_iter,
        grad_tol: tol,
        ..Stopping::default()
    })
}

/// A run's result as the Python layer's OptimizeResult fields, with its
/// history as arrays.
fn result<'py>(
    py: Python<'py>,
    outcome: &Outcome,
    history: &History,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("x", PyArray1::from_vec(py, outcome.theta.clone()))?;
    out.set_item("fun", outcome.final_loss)?;
    out.set_item("nit", outcome.iterations)?;
    out.set_item("status", outcome.status.as_str())?;
    out.set_item("success", outcome.converged)?;
    out.set_item("message", outcome.message.clone())?;
    out.set_item("grad_norm", outcome.grad_norm)?;
    out.set_item("lambda_min", outcome.lambda_min)?;
    out.set_item("seconds", outcome.seconds)?;
    out.set_item("method", outcome.optimizer.clone())?;
    let rows = &history.rows;
    let h = PyDict::new(py);
    let lambda_min =
        |r: &hessforge_optim::HistoryRow| r.curvature.map_or(f64::NAN, |c| c.lambda_min);
    let columns: [(&str, Vec<f64>); 6] = [
        ("loss", rows.iter().map(|r| r.loss).collect()),
        ("grad_norm", rows.iter().map(|r| r.grad_norm).collect()),
        ("step", rows.iter().map(|r| r.step_norm).collect()),
        ("alpha", rows.iter().map(|r| r.alpha).collect()),
        ("seconds", rows.iter().map(|r| r.seconds).collect()),
        ("lambda_min", rows.iter().map(lambda_min).collect()),
    ];
    for (name, values) in columns {
        h.set_item(name, PyArray1::from_vec(py, values))?;
    }
    out.set_item("history", h)?;
    Ok(out)
}

/// Watches a fit from Python once per iteration, the GIL taken back for
/// the moment: a pending Ctrl-C (the interpreter's signal handlers) stops
/// the run with what it reached, marked interrupted; the user's callback
/// gets the state and stops the run by returning True, or by raising (the
/// exception is raised again once the run has stopped).
/// Runs that share `interrupted` (a comparison's) all stop at one Ctrl-C.
struct Watch {
    callback: Option<Py<PyAny>>,
    interrupted: Arc<AtomicBool>,
    stop: Option<String>,
    error: Option<PyErr>,
}

impl Watch {
    fn new(callback: Option<Py<PyAny>>, interrupted: Arc<AtomicBool>) -> Watch {
        Watch {
            callback,
            interrupted,
            stop: None,
            error: None,
        }
    }
}

const INTERRUPTED: &str = "interrupted by KeyboardInterrupt (Ctrl-C)";

impl Observer for Watch {
    fn observe(&mut self, r: &Record<'_>) {
        if self.stop.is_some() {
            return;
        }
        if self.interrupted.load(Ordering::Relaxed) {
            self.stop = Some(INTERRUPTED.to_string());
            return;
        }
        Python::attach(|py| {
            if let Err(e) = py.check_signals() {
                self.interrupted.store(true, Ordering::Relaxed);
                self.stop = Some(if e.is_instance_of::<PyKeyboardInterrupt>(py) {
                    INTERRUPTED.to_string()
                } else {
                    self.error = Some(e);
                    "a signal handler raised".to_string()
                });
                return;
            }
            let Some(callback) = &self.callback else {
                return;
            };
            let state = (|| -> PyResult<Bound<'_, PyDict>> {
                let state = PyDict::new(py);
                state.set_item("iteration", r.iteration)?;
                state.set_item("loss", r.loss)?;
                state.set_item("grad_norm", r.grad_norm)?;
                state.set_item("step", r.step_norm)?;
                state.set_item("alpha", r.alpha)?;
                state.set_item("seconds", r.seconds)?;
                state.set_item("x", PyArray1::from_slice(py, r.theta))?;
                state.set_item("lambda_min", r.curvature.map(|c| c.lambda_min))?;
                Ok(state)
            })();
            let answer = state.and_then(|s| callback.call1(py, (s,)));
            match answer.and_then(|a| a.is_truthy(py)) {
                Ok(true) => self.stop = Some("the callback returned True".to_string()),
                Ok(false) => {}
                Err(e) => {
                    self.stop = Some("the callback raised".to_string());
                    self.error = Some(e);
                }
            }
        });
    }

    fn stop(&mut self) -> Option<String> {
        self.stop.clone()
    }
}

/// The choice `got` of the setting `key` (`hessian="dense"`), by the
/// library's names, which the command line's flags use too.
fn choice<T: Choice>(key: &str, got: &str) -> PyResult<T> {
    T::named(got).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{key}: `{got}` is not one of {}",
            T::names().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// The optimizers' settings from keyword arguments named as the command
/// line's flags without their dashes (`lr`, `memory`, `radius`, …); the
/// catalogue checks their ranges when the optimizer is built.
fn settings(hyper: &Bound<'_, PyDict>) -> PyResult<Settings> {
    let mut s = Settings::default();
    for (key, value) in hyper.iter() {
        let key: String = key.extract()?;
        let number = || -> PyResult<f64> {
            value
                .extract::<f64>()
                .map_err(|_| PyValueError::new_err(format!("{key}: expected a number")))
        };
        let word = || -> PyResult<String> {
            value
                .extract::<String>()
                .map_err(|_| PyValueError::new_err(format!("{key}: expected a string")))
        };
        match key.as_str() {
            "lr" => s.lr = Some(number()?),
            "momentum" => s.momentum = Some(number()?),
            "beta1" => s.beta1 = Some(number()?),
            "beta2" => s.beta2 = Some(number()?),
            "eps" => s.eps = Some(number()?),
            "decay" => s.decay = Some(number()?),
            "weight_decay" => s.weight_decay = Some(number()?),
            "damping" => s.damping = Some(number()?),
            "radius" => s.radius = Some(number()?),
            "memory" => {
                s.memory =
                    Some(value.extract::<usize>().map_err(|_| {
                        PyValueError::new_err("memory: expected a whole number ≥ 1")
                    })?)
            }
            "batch_size" => {
                s.batch_size = Some(value.extract::<usize>().map_err(|_| {
                    PyValueError::new_err("batch_size: expected a whole number ≥ 1")
                })?)
            }
            "seed" => {
                s.seed = value
                    .extract::<u64>()
                    .map_err(|_| PyValueError::new_err("seed: expected a whole number ≥ 0"))?
            }
            "schedule" => {
                let text = word()?;
                s.schedule =
                    text.parse()
                        .map_err(|e: hessforge_optim::schedule::ScheduleError| {
                            PyValueError::new_err(format!(
                                "schedule: {e} (expected {})",
                                hessforge_optim::schedule::SCHEDULE_SYNTAX
                            ))
                        })?;
            }
            "momentum_form" => s.momentum_form = choice(&key, &word()?)?,
            "hessian" => s.hessian = choice(&key, &word()?)?,
            "subproblem" => s.subproblem = choice(&key, &word()?)?,
            "precondition" => s.precondition = choice(&key, &word()?)?,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "no hyper-parameter named `{key}`: expected lr, momentum, momentum_form, \
                     beta1, beta2, eps, decay, weight_decay, batch_size, seed, schedule, \
                     memory, damping, radius, hessian, subproblem or precondition"
                )));
            }
        }
    }
    Ok(s)
}

/// Load a model with its kernel (see `hessforge.model`).
#[pyfunction]
#[pyo3(signature = (source=None, *, text=None, set=Vec::new(), init=None, backend="auto"))]
fn model(
    py: Python<'_>,
    source: Option<&str>,
    text: Option<&str>,
    set: Vec<String>,
    init: Option<&str>,
    backend: &str,
) -> PyResult<RawModel> {
    let choice = match backend {
        "auto" => BackendChoice::Auto,
        "interpreter" => BackendChoice::Interpreter,
        other => {
            return Err(PyValueError::new_err(format!(
                "backend: `{other}` is not one of auto, interpreter"
            )));
        }
    };
    let (arg, model) = load(source, text)?;
    let prepared = py
        .detach(|| prepare_without_data(&arg, model, &set, init, choice).map_err(Box::new))
        .map_err(|e| match *e {
            hessforge_driver::PrepareError::Option(e) => PyValueError::new_err(report(e)),
            e => DerivationError::new_err(report(e)),
        })?;
    Ok(RawModel {
        start: prepared.start.clone(),
        prepared,
    })
}

/// A built-in model's embedded data: one array per data tensor.
#[pyfunction]
fn data<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyTuple>> {
    if !models::is_builtin(name) {
        return Err(PyValueError::new_err(format!(
            "`{name}` is not a built-in model; hessforge.models() lists them"
        )));
    }
    let (_, model) = load(Some(name), None)?;
    let set = hessforge_driver::data::default_for(&model, true)
        .map_err(|e| DerivationError::new_err(report(e)))?;
    let cols = model.data.len();
    let all = set.values().unwrap_or_default();
    let mut arrays = Vec::new();
    let mut offset = 0;
    for t in &model.data_tensors {
        let width: usize = t.shape.iter().product();
        let mut values = Vec::with_capacity(set.rows * width);
        for r in 0..set.rows {
            values.extend_from_slice(&all[r * cols + offset..r * cols + offset + width]);
        }
        offset += width;
        let mut shape = vec![set.rows];
        shape.extend(&t.shape);
        arrays.push(PyArray1::from_vec(py, values).reshape(shape)?.into_any());
    }
    PyTuple::new(py, arrays)
}

/// The built-in models' names.
#[pyfunction]
fn models_list() -> PyResult<Vec<String>> {
    let all = models::builtins().map_err(|e| DerivationError::new_err(report(e)))?;
    Ok(all.into_iter().map(|m| m.name).collect())
}

/// The optimizers of the catalogue, by name.
#[pyfunction]
fn optimizers() -> Vec<String> {
    hessforge_optim::Optimizer::all()
        .map(|o| o.name().to_string())
        .collect()
}

/// Panics inside the module become Python exceptions, never a crash: this
/// function panics on purpose, for the test that says so.
#[pyfunction]
fn _panic_for_test() {
    panic!("a panic inside hessforge, raised on purpose by the package's tests");
}

#[pymodule]
fn _hessforge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DerivationError", m.py().get_type::<DerivationError>())?;
    m.add_class::<RawDerivation>()?;
    m.add_class::<RawModel>()?;
    m.add_function(wrap_pyfunction!(derive, m)?)?;
    m.add_function(wrap_pyfunction!(model, m)?)?;
    m.add_function(wrap_pyfunction!(data, m)?)?;
    m.add_function(wrap_pyfunction!(models_list, m)?)?;
    m.add_function(wrap_pyfunction!(optimizers, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    Ok(())
}
