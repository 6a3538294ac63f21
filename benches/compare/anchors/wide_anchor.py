"""The wide logistic regression (F = 100 or 1 000 features, N synthetic
rows) for NumPy's closed form and JAX's jit(hessian): one loss + gradient +
Hessian pass, on the same bits as `compare_side wide-pass` (x = 2 frac(kφ) − 1
for entry k of the features, y = [frac(i√2) < ½] for row i).

usage: wide_anchor.py numpy|jax F N REPEATS
"""

import sys

import numpy as np

from common import LAMBDA, emit, timed

PHI = 0.6180339887498949
SQRT_2 = 1.4142135623730951


def data(f, n):
    k = np.arange(n * f, dtype=np.float64) * PHI
    x = (2.0 * (k - np.floor(k)) - 1.0).reshape(n, f)
    t = np.arange(n, dtype=np.float64) * SQRT_2
    y = (t - np.floor(t) < 0.5).astype(np.float64)
    return x, y


def theta0(f):
    return np.array([0.01 * ((i % 11) - 5.0) for i in range(f + 1)])


def with_numpy(f, n, repeats):
    x, y = data(f, n)
    xt = np.column_stack([x, np.ones(n)])
    del x
    theta = theta0(f)
    reg = np.full(f + 1, LAMBDA)
    reg[f] = 0.0
    out = {}

    def call():
        z = xt @ theta
        p = 1.0 / (1.0 + np.exp(-z))
        loss = np.mean(np.logaddexp(0.0, z) - y * z) + LAMBDA / 2 * theta[:f] @ theta[:f]
        grad = xt.T @ (p - y) / n + reg * theta
        hess = (xt.T * (p * (1 - p))) @ xt / n + np.diag(reg)
        out["r"] = (loss, grad, hess)
    t = timed(repeats, call)
    loss, grad, hess = out["r"]
    emit({"task": "wide-pass", "tool": "numpy", "features": f, "rows": n, "seconds": t,
          "loss": float(loss), "grad0": float(grad[0]), "hess00": float(hess[0, 0]),
          "hess_last": float(hess[f, f])}, {"numpy": np.__version__})


def with_jax(f, n, repeats):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def loss_fn(theta, x, y):
        z = x @ theta[:f] + theta[f]
        return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + LAMBDA / 2 * jnp.dot(theta[:f], theta[:f])

    value_and_grad = jax.value_and_grad(loss_fn)
    hess_fn = jax.hessian(loss_fn)

    @jax.jit
    def all_three(theta, x, y):
        value, grad = value_and_grad(theta, x, y)
        return value, grad, hess_fn(theta, x, y)

    x, y = data(f, n)
    x, y = jnp.asarray(x), jnp.asarray(y)
    theta = jnp.asarray(theta0(f))
    out = {}

    def call():
        out["r"] = jax.block_until_ready(all_three(theta, x, y))
    t = timed(repeats, call)
    value, grad, hess = out["r"]
    emit({"task": "wide-pass", "tool": "jax", "features": f, "rows": n, "seconds": t,
          "loss": float(value), "grad0": float(grad[0]), "hess00": float(hess[0, 0]),
          "hess_last": float(hess[f, f])}, {"jax": jax.__version__, "numpy": np.__version__})


def main():
    tool, f, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    {"numpy": with_numpy, "jax": with_jax}[tool](f, n, repeats)


if __name__ == "__main__":
    main()
