"""JAX's side (float64: jax_enable_x64) of comparisons 2 and 3.

usage:
  jax_anchor.py kernel-pass DATA.npy REPEATS    one loss+gradient+Hessian pass of logistic regression
  jax_anchor.py mlp-sample P REPEATS            one sample of mlp_tanh, per call
  jax_anchor.py newton DATA.npy                 Newton from zero to ‖g‖∞ < 1e-10
  jax_anchor.py gd DATA.npy TARGET_LOSS         GD with step 1/L, L = λ_max(∇²L(0)), to L ≤ TARGET
"""

import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from common import LAMBDA, MLP_X, MLP_Y, emit, logistic_theta, mlp_theta, timed  # noqa: E402

VERSIONS = {"jax": jax.__version__, "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else "",
            "numpy": np.__version__}


def logistic_loss(theta, x, y):
    """Mean cross-entropy (the stable form) + λ/2‖w‖², as the derivation file."""
    z = x @ theta[:10] + theta[10]
    per_row = jnp.logaddexp(0.0, z) - y * z
    return jnp.mean(per_row) + LAMBDA / 2 * jnp.dot(theta[:10], theta[:10])


def load(path):
    data = np.load(path)
    return jnp.asarray(data[:, :10]), jnp.asarray(data[:, 10])


def all_three(loss):
    value_and_grad = jax.value_and_grad(loss)
    hess = jax.hessian(loss)

    def f(*args):
        value, grad = value_and_grad(*args)
        return value, grad, hess(*args)
    return jax.jit(f)


def kernel_pass(path, repeats):
    x, y = load(path)
    f = all_three(logistic_loss)
    theta = jnp.asarray(logistic_theta())
    out = {}

    def call():
        out["r"] = jax.block_until_ready(f(theta, x, y))
    t = timed(repeats, call)
    value, grad, hess = out["r"]
    emit({"task": "kernel-pass", "tool": "jax", "rows": int(x.shape[0]), "seconds": t,
          "loss": float(value), "grad0": float(grad[0]), "hess00": float(hess[0, 0])}, VERSIONS)


def mlp_sample(p, repeats):
    h = (p - 1) // 4

    def loss(theta, x, y):
        w = theta[:2 * h].reshape(h, 2)
        yhat = jnp.dot(theta[3 * h:4 * h], jnp.tanh(w @ x + theta[2 * h:3 * h])) + theta[4 * h]
        return (yhat - y) ** 2 / 2
    f = all_three(loss)
    theta, x, y = jnp.asarray(mlp_theta(p)), jnp.asarray(MLP_X), jnp.asarray(MLP_Y)
    calls = 2000
    out = {}

    def call():
        for _ in range(calls):
            out["r"] = f(theta, x, y)
        jax.block_until_ready(out["r"])
    t = timed(repeats, call)
    emit({"task": "mlp-sample", "tool": "jax", "params": p,
          "seconds_per_sample": {k: t[k] / calls for k in ("median", "min", "max")},
          "loss": float(out["r"][0])}, VERSIONS)


def newton(path):
    x, y = load(path)
    f = all_three(logistic_loss)
    solve = jax.jit(lambda h, g: jnp.linalg.solve(h, g))

    def run():
        theta = jnp.zeros(11)
        iterations = 0
        while True:
            value, grad, hess = f(theta, x, y)
            if float(jnp.max(jnp.abs(grad))) < 1e-10 or iterations >= 100:
                return iterations, value, grad
            theta = theta - solve(hess, grad)
            iterations += 1
    run()  # warm-up: every jit and every eager op compiled before timing
    start = time.perf_counter()
    iterations, value, grad = run()
    seconds = time.perf_counter() - start
    emit({"task": "newton", "tool": "jax", "rows": int(x.shape[0]), "iterations": iterations,
          "seconds": seconds, "final_loss": float(value), "grad_norm": float(jnp.max(jnp.abs(grad)))}, VERSIONS)


def gd(path, target):
    x, y = load(path)
    value_and_grad = jax.jit(jax.value_and_grad(logistic_loss))
    lipschitz = float(jnp.max(jnp.linalg.eigvalsh(jax.jit(jax.hessian(logistic_loss))(jnp.zeros(11), x, y))))
    step = jax.jit(lambda theta, g: theta - g / lipschitz)

    def run(limit):
        theta = jnp.zeros(11)
        iterations = 0
        while True:
            value, grad = value_and_grad(theta, x, y)
            if float(value) <= target or iterations >= limit:
                return iterations, value
            theta = step(theta, grad)
            iterations += 1
    run(3)  # warm-up: compile before timing
    start = time.perf_counter()
    iterations, value = run(100_000)
    seconds = time.perf_counter() - start
    emit({"task": "gd", "tool": "jax", "rows": int(x.shape[0]), "iterations": iterations,
          "seconds": seconds, "final_loss": float(value), "lipschitz": lipschitz}, VERSIONS)


if __name__ == "__main__":
    task = sys.argv[1]
    if task == "kernel-pass":
        kernel_pass(sys.argv[2], int(sys.argv[3]))
    elif task == "mlp-sample":
        mlp_sample(int(sys.argv[2]), int(sys.argv[3]))
    elif task == "newton":
        newton(sys.argv[2])
    elif task == "gd":
        gd(sys.argv[2], float(sys.argv[3]))
    else:
        sys.exit(f"unknown task {task}")
