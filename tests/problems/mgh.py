#!/usr/bin/env python3
"""Writes the classic unconstrained test problems of Moré, Garbow & Hillstrom,
"Testing unconstrained optimization software", ACM TOMS 7 (1981) 17-41, as
derivation files beside this script: each is a sum of squared residuals
written out term by term, with the paper's standard start and, in the
description, its minimum f*. Run it from anywhere: `python3 tests/problems/mgh.py`.
(The seven data-table problems of this folder -- Meyer, Gulf, Osborne 1 and 2,
Watson, Brown-Dennis, Kowalik-Osborne -- were written earlier by hand.)
"""
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def num(x):
    """A decimal the derivation language reads exactly as intended."""
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def write(name, title, description, residuals, start, notes=""):
    n = len(start)
    terms = " +\n".join(f"({r})^2" for r in residuals)
    params = "\n".join(f"x{i} = {{}}" for i in range(1, n + 1))
    init = "\n".join(f"x{i} = {num(v)}" for i, v in enumerate(start, 1))
    text = (
        f"# Moré, Garbow & Hillstrom (1981): {title}. Written by tests/problems/mgh.py.\n"
        f'name = "{name}"\n'
        f'title = "{title}"\n'
        f'description = "{description}"\n'
        f'loss = """\n{terms}\n"""\n\n'
        f"[parameters]\n{params}\n\n[init]\n{init}\n"
    )
    with open(os.path.join(HERE, f"{name}.toml"), "w") as f:
        f.write(text)


write("freudenstein_roth", "Freudenstein-Roth (MGH 2)",
      "Two cubic residuals; f* = 0 at (5, 4), a local minimum 48.98 at (11.41, -0.897).",
      ["-13 + x1 + ((5 - x2)*x2 - 2)*x2", "-29 + x1 + ((x2 + 1)*x2 - 14)*x2"], [0.5, -2])
write("powell_badly_scaled", "Powell badly scaled (MGH 3)",
      "10^4 x1 x2 - 1 and exp(-x1) + exp(-x2) - 1.0001: f* = 0 at (1.098e-5, 9.106).",
      ["10000*x1*x2 - 1", "exp(-x1) + exp(-x2) - 1.0001"], [0, 1])
write("brown_badly_scaled", "Brown badly scaled (MGH 4)",
      "x1 - 10^6, x2 - 2e-6, x1 x2 - 2: f* = 0 at (10^6, 2e-6).",
      ["x1 - 1000000", "x2 - 0.000002", "x1*x2 - 2"], [1, 1])
write("beale", "Beale (MGH 5)",
      "y_i - x1 (1 - x2^i), y = 1.5, 2.25, 2.625: f* = 0 at (3, 0.5).",
      [f"{y} - x1*(1 - x2^{i})" for i, y in enumerate([1.5, 2.25, 2.625], 1)], [1, 1])
write("jennrich_sampson", "Jennrich-Sampson (MGH 6, m = 10)",
      "2 + 2i - (exp(i x1) + exp(i x2)), i = 1..10: f* = 124.362 at x1 = x2 = 0.2578.",
      [f"{2 + 2 * i} - (exp({i}*x1) + exp({i}*x2))" for i in range(1, 11)], [0.3, 0.4])
bard_y = [0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34, 2.10, 4.39]
write("bard", "Bard (MGH 8)",
      "y_i - (x1 + u/(v x2 + w x3)), u = i, v = 16 - i, w = min(u, v): f* = 8.21487e-3.",
      [f"{num(y)} - (x1 + {i}/({16 - i}*x2 + {min(i, 16 - i)}*x3))" for i, y in enumerate(bard_y, 1)],
      [1, 1, 1])
gauss_y = [0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989,
           0.3521, 0.2420, 0.1295, 0.0540, 0.0175, 0.0044, 0.0009]
write("gaussian", "Gaussian (MGH 9)",
      "x1 exp(-x2 (t - x3)^2 / 2) - y, t = (8 - i)/2, i = 1..15: f* = 1.12793e-8.",
      [f"x1*exp(-x2*({num((8 - i) / 2)} - x3)^2/2) - {num(y)}" for i, y in enumerate(gauss_y, 1)],
      [0.4, 1, 0])
write("box_3d", "Box 3-D (MGH 12, m = 10)",
      "exp(-t x1) - exp(-t x2) - x3 (exp(-t) - exp(-10 t)), t = 0.1 i: f* = 0 at (1, 10, 1).",
      [f"exp(-{num(0.1 * i)}*x1) - exp(-{num(0.1 * i)}*x2) - x3*{num(math.exp(-0.1 * i) - math.exp(-i))}"
       for i in range(1, 11)], [0, 10, 20])
write("powell_singular", "Powell singular (MGH 13)",
      "f* = 0 at the origin, where the Hessian is singular: Newton converges only linearly.",
      ["x1 + 10*x2", "2.2360679774997896*(x3 - x4)", "(x2 - 2*x3)^2", "3.1622776601683795*(x1 - x4)^2"],
      [3, -1, 0, 1])
write("wood", "Wood (MGH 14)",
      "Two coupled Rosenbrock valleys: f* = 0 at (1, 1, 1, 1).",
      ["10*(x2 - x1^2)", "1 - x1", "9.486832980505138*(x4 - x3^2)", "1 - x3",
       "3.1622776601683795*(x2 + x4 - 2)", "0.31622776601683794*(x2 - x4)"], [-3, -1, -3, -1])
write("biggs_exp6", "Biggs EXP6 (MGH 18, m = 13)",
      "x3 exp(-t x1) - x4 exp(-t x2) + x6 exp(-t x5) - y, t = 0.1 i: f* = 5.65565e-3 (or 0).",
      [f"x3*exp(-{num(0.1 * i)}*x1) - x4*exp(-{num(0.1 * i)}*x2) + x6*exp(-{num(0.1 * i)}*x5) - "
       f"{num(math.exp(-0.1 * i) - 5 * math.exp(-i) + 3 * math.exp(-0.4 * i))}" for i in range(1, 14)],
      [1, 2, 1, 1, 1, 1])
write("extended_rosenbrock", "Extended Rosenbrock (MGH 21, n = 10)",
      "Five independent Rosenbrock valleys: f* = 0 at (1, ..., 1).",
      [r for k in range(1, 10, 2) for r in (f"10*(x{k + 1} - x{k}^2)", f"1 - x{k}")],
      [-1.2, 1] * 5)
write("penalty_1", "Penalty I (MGH 23, n = 4)",
      "sqrt(1e-5) (x_i - 1) and sum x_i^2 - 1/4: f* = 2.24997e-5.",
      [f"0.0031622776601683794*(x{i} - 1)" for i in range(1, 5)]
      + [" + ".join(f"x{j}^2" for j in range(1, 5)) + " - 0.25"], [1, 2, 3, 4])
n = 10
s = " + ".join(f"{j}*(x{j} - 1)" for j in range(1, n + 1))
write("variably_dimensioned", "Variably dimensioned (MGH 25, n = 10)",
      "x_i - 1, sum j (x_j - 1) and its square: f* = 0 at (1, ..., 1).",
      [f"x{i} - 1" for i in range(1, n + 1)] + [s, f"({s})^2"],
      [1 - j / n for j in range(1, n + 1)])
cos_sum = " + ".join(f"cos(x{j})" for j in range(1, n + 1))
write("trigonometric", "Trigonometric (MGH 26, n = 10)",
      "n - sum cos x_j + i (1 - cos x_i) - sin x_i: f* = 0 (a local minimum 2.79506e-5 nearby).",
      [f"{n} - ({cos_sum}) + {i}*(1 - cos(x{i})) - sin(x{i})" for i in range(1, n + 1)],
      [1 / n] * n)
# Watson (MGH 20) at n = 9, in the form of the hand-written n = 6 file
# (watson.toml): t_i = i/29 and its powers written as decimals.
n = 9
watson = []
for i in range(1, 30):
    t = i / 29
    slope = " + ".join(f"{j - 1}*x{j}*{num(t ** (j - 2))}" if j > 2 else "x2" for j in range(2, n + 1))
    value = " + ".join(f"x{j}*{num(t ** (j - 1))}" if j > 1 else "x1" for j in range(1, n + 1))
    watson.append(f"{slope} - ({value})^2 - 1")
write("watson9", "Watson, n = 9 (MGH 20)",
      "31 residuals of a polynomial fit whose coefficients are powers of i/29 "
      "written as decimals to 16 digits: f* = 1.39976e-6.",
      watson + ["x1", "x2 - x1^2 - 1"], [0] * n)
