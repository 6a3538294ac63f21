"""Logistic-regression data for the comparison: 10 standard-normal
features, a fixed true w and b, labels drawn from the model; seed 42.
Writes logistic_N.csv (read by hessforge) and logistic_N.npy (the same
numbers, read by the Python anchors)."""

import sys

import numpy as np


def main(out_dir, sizes):
    rng = np.random.default_rng(42)
    w = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0, 0.25, 2.0, -0.5, 1.5]) / 2.0
    b = -0.5
    n_max = max(sizes)
    x = rng.standard_normal((n_max, 10))
    p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    y = (rng.random(n_max) < p).astype(float)
    data = np.column_stack([x, y])
    header = ",".join([f"x_{j}" for j in range(1, 11)] + ["y"])
    for n in sizes:
        rows = data[:n]
        np.save(f"{out_dir}/logistic_{n}.npy", rows)
        np.savetxt(f"{out_dir}/logistic_{n}.csv", rows, delimiter=",", header=header,
                   comments="", fmt="%.17g")


if __name__ == "__main__":
    main(sys.argv[1], [int(n) for n in sys.argv[2:]])
