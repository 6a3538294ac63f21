"""SciPy's side of comparison 5: a classic unconstrained test problem (a
derivation file of tests/problems/) minimized from its standard start by one
SciPy method, with derivatives SymPy takes independently of hessforge.

The file's `loss` is read by SymPy (`^` as power), its `[parameters]` give
the order of the variables and `[init]` the start. The gradient and Hessian
are SymPy's, lambdified with NumPy. Every method is asked for ‖∇f‖ ≤ 1e-8 as
hessforge is (trust-exact and trust-krylov: 2-norm; BFGS and L-BFGS-B:
∞-norm; Newton-CG has only xtol, set to 1e-12 as in comparison 4), with the
same iteration limit (10 000).

Every final point, SciPy's and (with --judge) hessforge's, is judged by the
same SymPy derivatives: its ‖∇f‖∞, f and the extreme eigenvalues of ∇²f,
from which the harness decides "solved" alike for both sides.

usage: scipy_classic.py FILE [--judge POINTS.json] METHOD...
prints one JSON line per method, then one per point of POINTS.json
({"label": [θ...], ...})
"""

import json
import sys
import time
import tomllib

import numpy as np
import scipy
import sympy
from scipy.optimize import minimize
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from common import emit

MAX_ITERS = 10_000
OPTIONS = {
    "trust-exact": {"gtol": 1e-8},
    "trust-krylov": {"gtol": 1e-8},
    "Newton-CG": {"xtol": 1e-12},
    "BFGS": {"gtol": 1e-8},
    "L-BFGS-B": {"gtol": 1e-8, "ftol": 0.0},
}
NEEDS_HESSIAN = ("trust-exact", "trust-krylov", "Newton-CG")


def load(path):
    """f, ∇f, ∇²f as NumPy functions of a vector, and the start."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    names = list(doc["parameters"])
    symbols = sympy.symbols(names)
    local = dict(zip(names, symbols))
    loss = parse_expr("(" + doc["loss"].strip() + ")", local_dict=local,
                      transformations=standard_transformations + (convert_xor,))
    grad = [sympy.diff(loss, s) for s in symbols]
    hess = [[sympy.diff(g, s) for s in symbols] for g in grad]
    f = sympy.lambdify([symbols], loss, "numpy")
    g = sympy.lambdify([symbols], grad, "numpy")
    h = sympy.lambdify([symbols], hess, "numpy")
    x0 = np.array([float(doc["init"][n]) for n in names])
    return (lambda x: float(f(x)), lambda x: np.asarray(g(x), dtype=float),
            lambda x: np.asarray(h(x), dtype=float), x0, doc["name"])


def judge(f, g, h, x):
    """‖∇f‖∞, f and (λ_min, λ_max) of ∇²f at x (None where not finite)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(all="ignore"):
        grad, hess, loss = g(x), h(x), f(x)
    out = {"final_loss": float(loss) if np.isfinite(loss) else None,
           "grad_norm": float(np.max(np.abs(grad))) if np.all(np.isfinite(grad)) else None,
           "lambda_min": None, "lambda_max": None}
    if np.all(np.isfinite(hess)):
        eig = np.linalg.eigvalsh(hess)
        out["lambda_min"], out["lambda_max"] = float(eig[0]), float(eig[-1])
    return out


def main():
    args = sys.argv[2:]
    points = {}
    if "--judge" in args:
        i = args.index("--judge")
        with open(args[i + 1]) as fp:
            points = json.load(fp)
        args = args[:i] + args[i + 2:]
    path, methods = sys.argv[1], args
    f, g, h, x0, name = load(path)
    versions = {"scipy": scipy.__version__, "numpy": np.__version__, "sympy": sympy.__version__}
    for method in methods:
        options = dict(OPTIONS[method], maxiter=MAX_ITERS)
        start = time.perf_counter()
        with np.errstate(all="ignore"):
            try:
                result = minimize(f, x0.copy(), method=method, jac=g,
                                  hess=h if method in NEEDS_HESSIAN else None, options=options)
                failure = None
            except Exception as e:  # a method that raises has not solved the problem
                result, failure = None, f"{type(e).__name__}: {e}"
        seconds = time.perf_counter() - start
        if result is None:
            emit({"problem": name, "method": method, "success": False, "iterations": None,
                  "message": failure, "seconds": seconds}, versions)
        else:
            emit({"problem": name, "method": method, "success": bool(result.success),
                  "iterations": int(result.nit), **judge(f, g, h, result.x),
                  "message": str(result.message), "seconds": seconds}, versions)
        print()
    for label, theta in points.items():
        emit({"problem": name, "judge": label, **judge(f, g, h, theta)}, versions)
        print()


if __name__ == "__main__":
    main()
