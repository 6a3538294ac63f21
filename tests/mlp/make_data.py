"""Writes the data and the starts of the tanh-MLP table (tests/it/mlp.rs,
benches/compare comparison 8): `rows.csv`, 1 000 rows of a smooth target
with noise, y = sin(x₁)·cos(x₂) + 0.1·ε with x uniform on [−2, 2]² and ε
standard normal, and `start_H.txt` for H = 4, 16 and 64 hidden units, the
P = 4H + 1 parameters in hessforge's order (W row by row, c, v, d) drawn
from N(0, 0.5²). Seeded: running it again writes the same bytes.

usage: python3 make_data.py   (in this folder; needs numpy)
"""

import numpy as np

ROWS = 1000
HIDDEN = (4, 16, 64)


def main():
    rng = np.random.default_rng(4)
    x = rng.uniform(-2.0, 2.0, size=(ROWS, 2))
    y = np.sin(x[:, 0]) * np.cos(x[:, 1]) + 0.1 * rng.standard_normal(ROWS)
    np.savetxt("rows.csv", np.column_stack([x, y]), delimiter=",", fmt="%.17g",
               header="x_1,x_2,y", comments="")
    for h in HIDDEN:
        start = np.random.default_rng(100 + h).normal(0.0, 0.5, 4 * h + 1)
        with open(f"start_{h}.txt", "w") as f:
            f.write(",".join(repr(float(v)) for v in start) + "\n")


if __name__ == "__main__":
    main()
