"""SciPy's side of comparison 8: the tanh MLPs of the table test
tests/it/mlp.rs (2 inputs, H tanh hidden units, a linear output, the mean
of (ŷ − y)²/2 over the rows of tests/mlp/rows.csv plus the weight decay
λ/2·(‖W‖² + ‖v‖²) with the λ of tests/mlp/mlp_tanh_H.toml) from the seeded
start tests/mlp/start_H.txt, by `minimize` with `trust-exact` (JAX's jit(grad)
and jit(hessian)), `BFGS` (jit(grad)) and `Newton-CG` (jit(grad) and the
Hessian–vector product jit(jvp(grad))), float64, to ‖∇L‖∞ ≤ 10⁻⁸ as
hessforge's runs (Newton-CG has no gradient tolerance: it is given
xtol = 10⁻¹⁶ and judged by ‖∇L‖∞ at its end), at most MAXITER iterations,
after one warm-up call of each compiled function.

usage: scipy_mlp.py H MAXITER METHOD...   (METHOD: trust-exact, BFGS, Newton-CG)
prints one JSON line per method
"""

import os
import sys
import time
import tomllib

import jax
import numpy as np
import scipy
from scipy.optimize import minimize

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402  (after x64 is on)

from common import emit  # noqa: E402

MLP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "mlp")
TOL = 1e-8


def problem(hidden):
    table = np.loadtxt(os.path.join(MLP, "rows.csv"), delimiter=",", skiprows=1)
    x, y = jnp.asarray(table[:, :2]), jnp.asarray(table[:, 2])
    with open(os.path.join(MLP, f"start_{hidden}.txt")) as f:
        theta0 = np.array([float(v) for v in f.read().split(",")])
    with open(os.path.join(MLP, f"mlp_tanh_{hidden}.toml"), "rb") as f:
        decay = tomllib.load(f)["constants"]["lambda"]
    return mlp_loss(x, y, hidden, decay), theta0


def mlp_loss(x, y, hidden, decay):
    """L(θ) of a tanh MLP with `hidden` units on rows (x, y), θ in
    hessforge's order (W row by row, c, v, d), with the weight decay
    decay/2·(‖W‖² + ‖v‖²)."""
    def loss(theta):
        w = theta[: 2 * hidden].reshape(hidden, 2)
        c = theta[2 * hidden: 3 * hidden]
        v = theta[3 * hidden: 4 * hidden]
        d = theta[4 * hidden]
        yhat = jnp.tanh(x @ w.T + c) @ v + d
        return jnp.mean((yhat - y) ** 2 / 2) + decay / 2 * (jnp.sum(w * w) + jnp.sum(v * v))
    return loss


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    hidden, maxiter = int(sys.argv[1]), int(sys.argv[2])
    loss, theta0 = problem(hidden)
    f = jax.jit(loss)
    g = jax.jit(jax.grad(loss))
    h = jax.jit(jax.hessian(loss))
    hvp = jax.jit(lambda t, v: jax.jvp(jax.grad(loss), (t,), (v,))[1])
    for compiled in (f(theta0), g(theta0), h(theta0), hvp(theta0, theta0)):
        compiled.block_until_ready()
    versions = {"scipy": scipy.__version__, "jax": jax.__version__, "numpy": np.__version__}
    for method in sys.argv[3:]:
        kwargs = {"jac": lambda t: np.asarray(g(t))}
        options = {"maxiter": maxiter}
        if method == "trust-exact":
            kwargs["hess"] = lambda t: np.asarray(h(t))
            options["gtol"] = TOL
        elif method == "BFGS":
            options.update(gtol=TOL, norm=np.inf)
        elif method == "Newton-CG":
            kwargs["hessp"] = lambda t, v: np.asarray(hvp(t, v))
            options["xtol"] = 1e-16
        else:
            sys.exit(f"unknown method {method!r}\n{__doc__}")
        start = time.perf_counter()
        result = minimize(lambda t: float(f(t)), theta0, method=method, options=options, **kwargs)
        seconds = time.perf_counter() - start
        grad_norm = float(np.max(np.abs(np.asarray(g(result.x)))))
        emit({"task": "mlp", "tool": "scipy+jax", "hidden": hidden, "params": len(theta0),
              "method": method, "iterations": int(result.nit), "seconds": seconds,
              "final_loss": float(result.fun), "grad_norm": grad_norm,
              "converged": grad_norm <= TOL, "message": str(result.message)}, versions)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
