"""hessforge in Python: derivations that render in a notebook, compiled
kernels on NumPy arrays, and the optimizers of the catalogue.

>>> import hessforge as hf
>>> d = hf.derive("logistic_regression")      # a built-in, a path, or text=...
>>> m = hf.model("logistic_regression")       # its compiled kernel
>>> X, y = hf.data("logistic_regression")     # the embedded data
>>> r = hf.minimize(m, X, y, method="newton")
>>> r.success, r.nit
(True, 7)

Data are passed as one array per data tensor of the model, in the order of
the derivation file (``m.data`` lists them with their shapes): for
logistic regression ``x`` (N × 10) and ``y`` (N,). Arrays of any layout or
dtype are converted to contiguous float64 (a copy only when needed).

The heavy lifting is Rust (``hessforge._hessforge``); Symbolica derives the
formulas (non-commercial license: see the README).
"""

from __future__ import annotations

import json as _json
from typing import Any

import numpy as _np

from . import _hessforge as _rs
from ._hessforge import DerivationError

__all__ = [
    "Comparison",
    "Derivation",
    "DerivationError",
    "Figure",
    "Figures",
    "Model",
    "OptimizeResult",
    "compare",
    "data",
    "derive",
    "figures",
    "minimize",
    "model",
    "models",
    "optimizers",
]


def _float64(a: Any, what: str) -> _np.ndarray:
    try:
        return _np.ascontiguousarray(a, dtype=_np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: expected an array of numbers ({e})") from None


class Derivation:
    """A model's loss, gradient and Hessian, derived symbolically.

    In a notebook it shows as the lecture note (Markdown with LaTeX math);
    ``latex()``, ``beamer()``, ``markdown()``, ``text()`` and ``json()``
    give every format of ``hessforge derive``.
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def latex(self) -> str:
        """The lecture note as a standalone LaTeX document (pdflatex)."""
        return self._raw.render("latex")

    def beamer(self) -> str:
        """The derivation as beamer slides (LaTeX)."""
        return self._raw.render("beamer")

    def markdown(self) -> str:
        """The lecture note in Markdown with ``$…$`` math."""
        return self._raw.render("markdown")

    def text(self) -> str:
        """The derivation as plain text."""
        return self._raw.render("text")

    def json(self) -> dict:
        """The derivation as a dict (``hessforge derive --format json``)."""
        return _json.loads(self._raw.render("json"))

    @property
    def name(self) -> str:
        """The model's name."""
        return self._raw.name

    @property
    def params(self) -> list[str]:
        """The parameters' scalar names, in θ's order."""
        return list(self._raw.params)

    @property
    def index_form(self) -> dict | None:
        """The gradient and Hessian per tensor and block, in index form
        (None for a model of scalars)."""
        return self.json().get("index_form")

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_latex_(self) -> str:
        # Jupyter typesets text/latex with MathJax: the note's text with its
        # math, headings as plain lines.
        lines = []
        for line in self.markdown().splitlines():
            lines.append(line.lstrip("#").strip() if line.startswith("#") else line)
        return "\n".join(lines)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {
            "text/markdown": self._repr_markdown_(),
            "text/latex": self._repr_latex_(),
            "text/plain": self.text(),
        }

    def __repr__(self) -> str:
        return f"<hessforge.Derivation of {self.name!r}>"


def derive(source: str | None = None, *, text: str | None = None, expand: bool = False) -> Derivation:
    """Derive a model: a built-in's name, a path to a ``.toml`` derivation
    file, or the file's text as ``text=...``. ``expand=True`` also writes
    every scalar entry, as ``hessforge derive --expand`` does.

    Raises :class:`DerivationError` (a ``ValueError``) naming the file,
    line and column and a hint when the model is not valid.
    """
    return Derivation(_rs.derive(source, text=text, expand=expand))


class OptimizeResult(dict):
    """A run's result, with SciPy's names: ``x``, ``fun``, ``nit``,
    ``status``, ``success``, ``message``; and ``grad_norm`` (‖∇L‖∞),
    ``lambda_min`` (the Hessian's smallest eigenvalue where computed),
    ``seconds``, ``method`` and ``history`` (a dict of arrays, one entry per
    iteration from 0: ``loss``, ``grad_norm``, ``step``, ``alpha``,
    ``seconds``, ``lambda_min`` — NaN where a step computed none). Keys
    are attributes too."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        keys = ["method", "status", "success", "fun", "nit", "grad_norm"]
        return "OptimizeResult(" + ", ".join(f"{k}={self[k]!r}" for k in keys) + ")"


class Model:
    """A model with its kernel: the compiled kernel of a built-in, or for a
    derivation file its IR (loop IR, or the straight-line programs of a
    model of scalars) compiled to machine code at load time (or the
    interpreter, with ``backend="interpreter"``).

    Every pass takes θ and the data arrays (see ``data``); the GIL is
    released while it runs. The methods plug into SciPy:
    ``scipy.optimize.minimize(m.loss, x0, args=(X, y), jac=m.grad,
    hess=m.hessian)`` (or ``hessp=m.hess_vec``).
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    @property
    def name(self) -> str:
        """The model's name."""
        return self._raw.name

    @property
    def params(self) -> list[str]:
        """Parameter names, in θ's order."""
        return list(self._raw.params)

    @property
    def n_params(self) -> int:
        """Number of parameters P."""
        return len(self._raw.params)

    @property
    def data(self) -> list[tuple[str, tuple[int, ...]]]:
        """The data tensors a pass takes, in order: (name, shape of one row)."""
        return [(name, tuple(shape)) for name, shape in self._raw.data]

    @property
    def backend(self) -> str:
        """'compiled', 'run-time compiled' or 'interpreter'."""
        return self._raw.backend

    @property
    def start(self) -> _np.ndarray:
        """The derivation's start θ₀."""
        return self._raw.start

    def _args(self, theta: Any, data: tuple) -> tuple:
        return (_float64(theta, "theta"), *(_float64(d, f"data array {k}") for k, d in enumerate(data)))

    def loss(self, theta: Any, *data: Any) -> float:
        """L(θ) = (1/N) Σ ℓ(θ; row) + R(θ)."""
        return self._raw.loss(*self._args(theta, data))

    def grad(self, theta: Any, *data: Any) -> _np.ndarray:
        """∇L(θ), shape (P,)."""
        return self._raw.grad(*self._args(theta, data))

    def hessian(self, theta: Any, *data: Any) -> _np.ndarray:
        """∇²L(θ), shape (P, P)."""
        return self._raw.hessian(*self._args(theta, data))

    def hess_vec(self, theta: Any, v: Any, *data: Any) -> _np.ndarray:
        """∇²L(θ)·v, the matrix never formed (SciPy's ``hessp``)."""
        theta, *rest = self._args(theta, data)
        return self._raw.hess_vec(theta, _float64(v, "v"), *rest)

    def gauss_newton_vec(self, theta: Any, v: Any, *data: Any) -> _np.ndarray:
        """The Gauss–Newton matrix times v (a loss that is a square per row)."""
        theta, *rest = self._args(theta, data)
        return self._raw.gauss_newton_vec(theta, _float64(v, "v"), *rest)

    def __repr__(self) -> str:
        return f"<hessforge.Model {self.name!r} ({self.n_params} parameters, {self.backend})>"


def model(
    source: str | None = None,
    *,
    text: str | None = None,
    set: dict[str, float] | None = None,
    init: str | None = None,
    backend: str = "auto",
) -> Model:
    """Load a model with its kernel: a built-in's name, a path, or
    ``text=...``. ``set`` overrides constants (``{"lambda": 0}``), ``init``
    is the start as on the command line (``"zeros"``, ``"random:SEED"``, or
    comma-separated values)."""
    pairs = [f"{k}={v}" for k, v in (set or {}).items()]
    return Model(_rs.model(source, text=text, set=pairs, init=init, backend=backend))


def data(name: str) -> tuple[_np.ndarray, ...]:
    """A built-in model's embedded data: one array per data tensor."""
    return tuple(_rs.data(name))


def models() -> list[str]:
    """The built-in models' names."""
    return list(_rs.models_list())


def optimizers() -> list[str]:
    """Every optimizer of the catalogue, by name."""
    return list(_rs.optimizers())


def minimize(
    model: Model,
    *data: Any,
    method: str = "newton-tr",
    x0: Any = None,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    callback: Any = None,
    **hyper: Any,
) -> OptimizeResult:
    """Run one optimizer of the catalogue (``optimizers()``) on the data.

    ``tol`` stops at ‖∇L‖∞ ≤ tol; ``hyper`` takes the hyper-parameters by
    the command line's names without dashes (``lr``, ``memory``,
    ``radius``, ``damping``, ``hessian="free"``, …), checked against the
    same ranges, with the same messages (a ``ValueError``).

    ``callback(state)`` is called at the start and after every iteration
    with a dict (``iteration``, ``loss``, ``grad_norm``, ``step``,
    ``alpha``, ``seconds``, ``x``, ``lambda_min``); returning True stops
    the run (status ``interrupted``), raising stops it and raises again.
    Ctrl-C (KeyboardInterrupt) stops a long fit within one iteration and
    returns what it reached, with status ``interrupted``.
    """
    if not isinstance(model, Model):
        raise TypeError("minimize: the first argument is a hessforge.Model (hessforge.model(...))")
    args = tuple(_float64(d, f"data array {k}") for k, d in enumerate(data))
    start = None if x0 is None else _float64(x0, "x0")
    if callback is not None and not callable(callback):
        raise TypeError("minimize: callback must be callable")
    out = model._raw.minimize(method, start, args, float(tol), int(max_iter), callback, hyper)
    return OptimizeResult(out)


#: The columns of a comparison table, as ``hessforge compare`` prints them.
COLUMNS = ["method", "status", "nit", "fun", "grad_norm", "lambda_min", "seconds"]


class Comparison(list):
    """Every optimizer's :class:`OptimizeResult`, in the order run; shows
    as the comparison table in a notebook."""

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for r in self:
            cells = [r[c] for c in COLUMNS]
            lines.append("| " + " | ".join("" if c is None else (f"{c:.6g}" if isinstance(c, float) else str(c)) for c in cells) + " |")
        return "\n".join(lines)


def _run_all(model, data, methods, x0, tol, max_iter, hyper, draw):
    if not isinstance(model, Model):
        raise TypeError("the first argument is a hessforge.Model (hessforge.model(...))")
    args = tuple(_float64(d, f"data array {k}") for k, d in enumerate(data))
    start = None if x0 is None else _float64(x0, "x0")
    names = None if methods is None else list(methods)
    return model._raw.compare(names, start, args, float(tol), int(max_iter), hyper, draw)


def compare(
    model: Model,
    *data: Any,
    methods: list[str] | None = None,
    x0: Any = None,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    **hyper: Any,
):
    """Run several optimizers from the same start — by default every
    full-batch one, as ``hessforge compare`` — and return the comparison
    table: a pandas DataFrame indexed by method (each run's whole
    :class:`OptimizeResult` in ``df.attrs["results"]``) when pandas is
    installed, else a :class:`Comparison` list. Ctrl-C stops the runs.
    """
    results, _, _ = _run_all(model, data, methods, x0, tol, max_iter, hyper, False)
    results = Comparison(OptimizeResult(r) for r in results)
    try:
        import pandas
    except ImportError:
        return results
    frame = pandas.DataFrame([{c: r[c] for c in COLUMNS} for r in results]).set_index("method")
    frame.attrs["results"] = {r.method: r for r in results}
    return frame


class Figure:
    """One figure of ``hessforge compare --plots``: an SVG with its title
    and caption; shows as the picture in a notebook."""

    def __init__(self, file: str, title: str, caption: str, svg: str) -> None:
        self.file, self.title, self.caption, self.svg = file, title, caption, svg

    def _repr_svg_(self) -> str:
        return self.svg

    def save(self, path: str) -> None:
        """Write the SVG to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)

    def __repr__(self) -> str:
        return f"<hessforge.Figure {self.file}: {self.title}>"


class Figures(list):
    """The figures drawn; ``notes`` says why any other does not apply."""

    notes: list[str]


def figures(
    model: Model,
    *data: Any,
    methods: list[str] | None = None,
    x0: Any = None,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    **hyper: Any,
) -> Figures:
    """Run the optimizers as :func:`compare` does and draw the figures that
    explain them (loss and ‖∇L‖∞ per iteration, the level sets with every
    path for two parameters, the curvature along Newton's paths, …)."""
    _, drawn, notes = _run_all(model, data, methods, x0, tol, max_iter, hyper, True)
    out = Figures(Figure(*d) for d in drawn)
    out.notes = list(notes)
    return out
