"""The exact-trust-region peer of hessforge's `newton-tr` on a neural
network: SciPy's `trust-exact` with JAX's `jit(grad)` and `jit(hessian)`,
on the 16-unit tanh MLP of `crates/kernels/benches/models/mlp_tanh_16.toml`
(2 inputs, 16 tanh hidden units, a linear output, the mean of
(ŷ − y)²/2 over the rows), float64, from a given start, for at most a given
number of iterations, after one warm-up call of each compiled function.

usage: jax_trust_exact.py mlp DATA.csv THETA0 MAXITER
       DATA.csv: x_1,x_2,y with a header; THETA0: 65 comma-separated values in
       hessforge's parameter order (W row by row, c, v, d)
"""

import sys
import time

import jax
import numpy as np
import scipy
from scipy.optimize import minimize

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402  (after x64 is on)

from common import emit  # noqa: E402
from scipy_mlp import mlp_loss  # noqa: E402

HIDDEN = 16


def mlp(path):
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    x, y = jnp.asarray(table[:, :2]), jnp.asarray(table[:, 2])
    return mlp_loss(x, y, HIDDEN, 0.0)


def main():
    if len(sys.argv) != 5 or sys.argv[1] != "mlp":
        sys.exit(__doc__)
    loss = mlp(sys.argv[2])
    theta0 = np.array([float(v) for v in sys.argv[3].split(",")])
    maxiter = int(sys.argv[4])
    f = jax.jit(loss)
    g = jax.jit(jax.grad(loss))
    h = jax.jit(jax.hessian(loss))
    f(theta0).block_until_ready()
    g(theta0).block_until_ready()
    h(theta0).block_until_ready()
    start = time.perf_counter()
    result = minimize(lambda t: float(f(t)), theta0, method="trust-exact",
                      jac=lambda t: np.asarray(g(t)), hess=lambda t: np.asarray(h(t)),
                      options={"gtol": 1e-8, "maxiter": maxiter})
    seconds = time.perf_counter() - start
    iterations = int(result.nit)
    emit({"task": "trust-exact-mlp", "tool": "scipy+jax", "iterations": iterations,
          "seconds": seconds, "per_iteration": seconds / max(iterations, 1),
          "final_loss": float(result.fun), "grad_norm": float(np.max(np.abs(result.jac))),
          "success": bool(result.success), "message": str(result.message)},
         {"scipy": scipy.__version__, "jax": jax.__version__})


if __name__ == "__main__":
    main()
