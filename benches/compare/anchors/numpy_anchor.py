"""NumPy closed forms of logistic regression's loss, gradient and Hessian
(comparison 2): p = σ(X̃θ), ∇L = X̃ᵀ(p − y)/N + λw, ∇²L = X̃ᵀ diag(p(1 − p)) X̃/N + λI.

usage: numpy_anchor.py DATA.npy REPEATS
"""

import sys

import numpy as np

from common import LAMBDA, emit, logistic_theta, timed


def main():
    data = np.load(sys.argv[1])
    repeats = int(sys.argv[2])
    n = data.shape[0]
    xt = np.column_stack([data[:, :10], np.ones(n)])
    y = data[:, 10]
    theta = np.array(logistic_theta())
    reg = np.full(11, LAMBDA)
    reg[10] = 0.0
    out = {}

    def call():
        z = xt @ theta
        p = 1.0 / (1.0 + np.exp(-z))
        loss = np.mean(np.logaddexp(0.0, z) - y * z) + LAMBDA / 2 * theta[:10] @ theta[:10]
        grad = xt.T @ (p - y) / n + reg * theta
        hess = (xt.T * (p * (1 - p))) @ xt / n + np.diag(reg)
        out["r"] = (loss, grad, hess)
    t = timed(repeats, call)
    loss, grad, hess = out["r"]
    emit({"task": "kernel-pass", "tool": "numpy", "rows": n, "seconds": t, "loss": float(loss),
          "grad0": float(grad[0]), "hess00": float(hess[0, 0])}, {"numpy": np.__version__})


if __name__ == "__main__":
    main()
