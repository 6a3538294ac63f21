"""The Hessian-free peer of comparison 6: SciPy's Newton-CG driven by JAX —
the gradient by `jit(grad)`, the Hessian–vector product by
`jit(jvp(grad))` (forward-over-reverse, never forming the Hessian) — from
θ = 0 until ‖∇L‖∞ ≤ 1e-8 (a callback stops it there; Newton-CG itself
stops on the step length only), float64, after one warm-up call of each
compiled function.

usage: jax_newton_cg.py wide F N          the wide logistic regression (as compare_side fit-wide)
       jax_newton_cg.py digits DIGITS.csv softmax regression on the embedded digits
"""

import sys
import time

import jax
import numpy as np
import scipy
from scipy.optimize import minimize

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402  (after x64 is on)

from common import LAMBDA, emit  # noqa: E402
from wide_anchor import data as wide_data  # noqa: E402

DIGITS_LAMBDA = 1e-3  # derivations/digits.toml


def wide(f, n):
    x, y = wide_data(f, n)
    x, y = jnp.asarray(x), jnp.asarray(y)

    def loss(theta):
        z = x @ theta[:f] + theta[f]
        return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + LAMBDA / 2 * theta[:f] @ theta[:f]
    return loss, f + 1


def digits(path):
    table = np.loadtxt(path, delimiter=",", comments="#", skiprows=6)
    x, y = jnp.asarray(table[:, :64] / 16.0), jnp.asarray(table[:, 64:])

    def loss(theta):
        w, b = theta[:640].reshape(10, 64), theta[640:]
        z = x @ w.T + b
        return (jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.sum(y * z, axis=1))
                + DIGITS_LAMBDA / 2 * (theta @ theta))
    return loss, 650


def main():
    task = sys.argv[1]
    loss, p = wide(int(sys.argv[2]), int(sys.argv[3])) if task == "wide" else digits(sys.argv[2])
    f = jax.jit(loss)
    g = jax.jit(jax.grad(loss))
    hvp = jax.jit(lambda t, v: jax.jvp(jax.grad(loss), (t,), (v,))[1])
    theta0 = np.zeros(p)
    f(theta0).block_until_ready()
    g(theta0).block_until_ready()
    hvp(theta0, theta0).block_until_ready()
    counts = {"f": 0, "grad": 0, "hvp": 0}

    def fun(t):
        counts["f"] += 1
        return float(f(t))

    def jac(t):
        counts["grad"] += 1
        return np.asarray(g(t))

    def hessp(t, v):
        counts["hvp"] += 1
        return np.asarray(hvp(t, v))
    state = {"iterations": 0, "grad_norm": float("inf")}

    def callback(intermediate_result):
        state["iterations"] += 1
        state["grad_norm"] = float(np.max(np.abs(jac(intermediate_result.x))))
        if state["grad_norm"] <= 1e-8:
            raise StopIteration

    start = time.perf_counter()
    result = minimize(fun, theta0, method="Newton-CG", jac=jac, hessp=hessp, callback=callback,
                      options={"xtol": 1e-14, "maxiter": 1000})
    seconds = time.perf_counter() - start
    emit({"task": f"newton-cg-{task}", "tool": "scipy+jax", "iterations": state["iterations"],
          "grad_norm": state["grad_norm"], "final_loss": float(result.fun), "evaluations": counts,
          "converged": state["grad_norm"] <= 1e-8, "seconds": seconds},
         {"scipy": scipy.__version__, "jax": jax.__version__})


if __name__ == "__main__":
    main()
