"""SymPy's side of comparison 1: mlp_tanh with H hidden units (P = 4H + 1),
loss (ŷ − y)²/2 with ŷ = Σ v_i tanh(W_i·x + c_i) + d. Times `diff` (gradient
and Hessian upper triangle), `cse`, and `ccode` of every output; counts the
operations of the CSE'd program with `count_ops`.

usage: sympy_codegen.py H REPEATS
"""

import sys
import time

import sympy as sp

from common import emit


def model(h):
    w = sp.symbols(f"W0:{2 * h}")
    c = sp.symbols(f"c0:{h}")
    v = sp.symbols(f"v0:{h}")
    d = sp.Symbol("d")
    x = sp.symbols("x0:2")
    y = sp.Symbol("y")
    theta = list(w) + list(c) + list(v) + [d]
    yhat = sum(v[i] * sp.tanh(w[2 * i] * x[0] + w[2 * i + 1] * x[1] + c[i]) for i in range(h)) + d
    return theta, (yhat - y) ** 2 / 2


def derive(theta, loss):
    p = len(theta)
    g = [sp.diff(loss, t) for t in theta]
    hess = [sp.diff(g[i], theta[j]) for i in range(p) for j in range(i, p)]
    return [loss] + g + hess


def main():
    h, repeats = int(sys.argv[1]), int(sys.argv[2])
    theta, loss = model(h)
    runs = []
    for _ in range(max(1, repeats)):
        # Every repeat from a cold cache: SymPy memoises diff results.
        sp.core.cache.clear_cache()
        t0 = time.perf_counter()
        outputs = derive(theta, loss)
        t1 = time.perf_counter()
        replacements, reduced = sp.cse(outputs)
        t2 = time.perf_counter()
        code = [sp.ccode(e, assign_to=str(s)) for s, e in replacements]
        code += [sp.ccode(e, assign_to=f"out[{k}]") for k, e in enumerate(reduced)]
        t3 = time.perf_counter()
        runs.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
    operations = sum(sp.count_ops(e) for _, e in replacements) + sum(sp.count_ops(e) for e in reduced)

    def stat(k):
        t = sorted(r[k] for r in runs)
        return {"median": t[len(t) // 2], "min": t[0], "max": t[-1], "repeats": len(t)}

    emit({"task": "codegen", "tool": "sympy", "params": len(theta), "operations": int(operations),
          "derive_s": stat(0), "cse_s": stat(1), "emit_s": stat(2), "total_s": stat(3),
          "lines_of_c": sum(c.count("\n") + 1 for c in code)},
         {"sympy": sp.__version__})


if __name__ == "__main__":
    main()
