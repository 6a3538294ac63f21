"""SciPy's side of comparison 7: the NIST StRD nonlinear-regression problems
(tests/nist/) from both of NIST's starts, by `least_squares` (trf and lm) on
the residuals and `minimize(trust-exact)` on their sum of squares, with
derivatives SymPy takes from the same residual hessforge's files use
(tests/nist/nist.py's MODELS).

Every method is asked to converge as far as it can, as hessforge is in the
table: least_squares with ftol = xtol = gtol = 1e-15, trust-exact with
gtol = 1e-13 (on RSS/N, hessforge's L), at most 10 000 iterations
(least_squares: function evaluations). A run reaches the certified values
when every parameter has a log relative error −log₁₀(|b − c|/|c|) ≥ 6.

usage: scipy_nist.py NAME...   (NIST's names, e.g. Misra1a)
prints one JSON line per problem, start and method
"""

import json
import os
import sys
import time

import numpy as np
import scipy
import sympy
from scipy.optimize import least_squares, minimize
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from common import emit

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "nist"))
import nist  # noqa: E402  (MODELS and parse)

MAX_ITERS = 10_000


def problem(name):
    """(residual r(b), Jacobian J(b), RSS/N with gradient and Hessian, starts,
    certified values)."""
    _, residual = nist.MODELS[name]
    params, _, columns, rows = nist.parse(os.path.join(ROOT, "tests", "nist", "dat", f"{name}.dat"))
    b = sympy.symbols([f"b{k}" for k, *_ in params])
    cols = sympy.symbols(columns)
    local = {str(s): s for s in (*b, *cols)}
    r = parse_expr(residual, local_dict=local, transformations=standard_transformations + (convert_xor,))
    data = np.array([[float(v) for v in row] for row in rows])
    n = len(rows)
    r_f = sympy.lambdify([b, cols], r, "numpy")
    j_f = [sympy.lambdify([b, cols], sympy.diff(r, s), "numpy") for s in b]
    h_f = [[sympy.lambdify([b, cols], sympy.diff(r, s, t), "numpy") for t in b] for s in b]
    columns_of = [data[:, i] for i in range(len(columns))]

    def res(x):
        return np.broadcast_to(np.asarray(r_f(x, columns_of), dtype=float), (n,))

    def jac(x):
        return np.column_stack([np.broadcast_to(np.asarray(f(x, columns_of), dtype=float), (n,)) for f in j_f])

    def loss(x):
        v = res(x)
        return float(v @ v) / n

    def grad(x):
        return 2.0 * jac(x).T @ res(x) / n

    def hess(x):
        rr, jj = res(x), jac(x)
        second = np.array([[float(np.broadcast_to(np.asarray(f(x, columns_of), dtype=float), (n,)) @ rr)
                            for f in row] for row in h_f])
        return 2.0 * (jj.T @ jj + second) / n

    starts = [np.array([float(p[1]) for p in params]), np.array([float(p[2]) for p in params])]
    certified = [float(p[3]) for p in params]
    return res, jac, loss, grad, hess, starts, certified


def main():
    versions = {"scipy": scipy.__version__, "numpy": np.__version__, "sympy": sympy.__version__}
    for name in sys.argv[1:]:
        res, jac, loss, grad, hess, starts, certified = problem(name)
        for start, x0 in enumerate(starts, 1):
            for method in ("trf", "lm", "trust-exact"):
                t = time.perf_counter()
                with np.errstate(all="ignore"):
                    try:
                        if method == "trust-exact":
                            out = minimize(loss, x0.copy(), method=method, jac=grad, hess=hess,
                                           options={"gtol": 1e-13, "maxiter": MAX_ITERS})
                            x, iterations, message = out.x, int(out.nit), str(out.message)
                        else:
                            out = least_squares(res, x0.copy(), jac=jac, method=method, ftol=1e-15,
                                                xtol=1e-15, gtol=1e-15, max_nfev=MAX_ITERS)
                            x, iterations, message = out.x, int(out.nfev), str(out.message)
                    except Exception as e:  # a method that raises has not reached the values
                        x, iterations, message = np.full(len(x0), np.nan), None, f"{type(e).__name__}: {e}"
                emit({"problem": name, "start": start, "method": method, "lre": nist.digits(x, certified),
                      "iterations": iterations, "message": message,
                      "seconds": time.perf_counter() - t}, versions)
                print()


if __name__ == "__main__":
    main()
