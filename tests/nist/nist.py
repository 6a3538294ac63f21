"""Writes the NIST StRD nonlinear-regression problems as derivation files.

For each `dat/<Name>.dat` (NIST's files, unchanged; see README.md) this
writes `<name>.toml`, the model as a derivation file whose per-row loss is
the squared residual (so L = RSS / N), started from NIST's Start 1, and
`<name>.csv`, the data with a header naming the model's data fields. The
certified values stay in the .dat files, which the table test reads.

Run from anywhere: `python3 tests/nist/nist.py`.
"""
import math
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))

# NIST's pi (Roszman1 states it to 31 digits; ENSO uses the same constant).
PI = "3.141592653589793238462643383279"

# Name → (difficulty, the residual in the derivation language). NIST writes
# each model as `y = f(x; b) + e`; the residual is y − f (Nelson's response
# is log y).
MODELS = {
    "Misra1a": ("lower", "y - b1*(1 - exp(-b2*x))"),
    "Chwirut2": ("lower", "y - exp(-b1*x)/(b2 + b3*x)"),
    "Chwirut1": ("lower", "y - exp(-b1*x)/(b2 + b3*x)"),
    "Lanczos3": ("lower", "y - (b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x))"),
    "Gauss1": ("lower", "y - (b1*exp(-b2*x) + b3*exp(-(x - b4)^2/b5^2) + b6*exp(-(x - b7)^2/b8^2))"),
    "Gauss2": ("lower", "y - (b1*exp(-b2*x) + b3*exp(-(x - b4)^2/b5^2) + b6*exp(-(x - b7)^2/b8^2))"),
    "DanWood": ("lower", "y - b1*x^b2"),
    "Misra1b": ("lower", "y - b1*(1 - (1 + b2*x/2)^(-2))"),
    "Kirby2": ("average", "y - (b1 + b2*x + b3*x^2)/(1 + b4*x + b5*x^2)"),
    "Hahn1": ("average", "y - (b1 + b2*x + b3*x^2 + b4*x^3)/(1 + b5*x + b6*x^2 + b7*x^3)"),
    "Nelson": ("average", "log(y) - (b1 - b2*x1*exp(-b3*x2))"),
    "MGH17": ("average", "y - (b1 + b2*exp(-x*b4) + b3*exp(-x*b5))"),
    "Lanczos1": ("average", "y - (b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x))"),
    "Lanczos2": ("average", "y - (b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x))"),
    "Gauss3": ("average", "y - (b1*exp(-b2*x) + b3*exp(-(x - b4)^2/b5^2) + b6*exp(-(x - b7)^2/b8^2))"),
    "Misra1c": ("average", "y - b1*(1 - (1 + 2*b2*x)^(-1/2))"),
    "Misra1d": ("average", "y - b1*b2*x/(1 + b2*x)"),
    "Roszman1": ("average", f"y - (b1 - b2*x - atan(b3/(x - b4))/{PI})"),
    "ENSO": ("average", f"y - (b1 + b2*cos(2*{PI}*x/12) + b3*sin(2*{PI}*x/12)"
                        f" + b5*cos(2*{PI}*x/b4) + b6*sin(2*{PI}*x/b4)"
                        f" + b8*cos(2*{PI}*x/b7) + b9*sin(2*{PI}*x/b7))"),
    "MGH09": ("higher", "y - b1*(x^2 + x*b2)/(x^2 + x*b3 + b4)"),
    "Thurber": ("higher", "y - (b1 + b2*x + b3*x^2 + b4*x^3)/(1 + b5*x + b6*x^2 + b7*x^3)"),
    "BoxBOD": ("higher", "y - b1*(1 - exp(-b2*x))"),
    "Rat42": ("higher", "y - b1/(1 + exp(b2 - b3*x))"),
    "MGH10": ("higher", "y - b1*exp(b2/(x + b3))"),
    "Eckerle4": ("higher", "y - (b1/b2)*exp(-0.5*((x - b3)/b2)^2)"),
    "Rat43": ("higher", "y - b1/(1 + exp(b2 - b3*x))^(1/b4)"),
    "Bennett5": ("higher", "y - b1*(b2 + x)^(-1/b3)"),
}


def parse(path):
    """([(k, start 1, start 2, certified bₖ)], certified RSS, data column
    names, rows), all as NIST's text."""
    with open(path) as f:
        lines = f.read().splitlines()
    params = []
    for line in lines:
        m = re.match(r"\s*b(\d+)\s*=\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", line)
        if m:
            params.append((int(m.group(1)), m.group(2), m.group(3), m.group(4)))
    assert [p[0] for p in params] == list(range(1, len(params) + 1)), path
    rss = next(line.split(":")[1].strip() for line in lines if line.startswith("Residual Sum of Squares"))
    at = next(i for i, line in enumerate(lines) if re.match(r"Data:\s+y\b", line))
    columns = lines[at].split()[1:]
    rows = [line.split() for line in lines[at + 1:] if line.strip()]
    assert all(len(r) == len(columns) for r in rows), path
    return params, rss, columns, rows


def digits(theta, certified):
    """The significant digits θ shares with the certified values: the
    smallest log relative error −log₁₀(|b − c|/|c|) over the parameters
    (17 when exact, 0 when not finite). 6 or more: the certified values are
    reached."""
    worst = 17.0
    for t, c in zip(theta, certified):
        if t is None or not math.isfinite(t):
            return 0.0
        rel = abs(t - c) / abs(c)
        worst = min(worst, 17.0 if rel == 0 else -math.log10(rel))
    return worst


def number(text):
    """NIST's `10.07E0` as the shortest decimal that reads back the same."""
    return repr(float(text)).removesuffix(".0") if float(text).is_integer() else repr(float(text))


def write(name, difficulty, residual):
    params, rss, columns, rows = parse(os.path.join(HERE, "dat", f"{name}.dat"))
    lower = name.lower()
    n = len(params)
    text = (
        f"# NIST StRD nonlinear regression: {name} ({difficulty} difficulty). Written by tests/nist/nist.py\n"
        f"# from dat/{name}.dat; the data are {lower}.csv, the certified values are in the .dat file.\n"
        f'name = "{lower}"\n'
        f'title = "NIST StRD {name}"\n'
        f'description = "{difficulty.capitalize()} difficulty, {len(rows)} observations: '
        f'the residual {residual.replace(PI, "pi")}; certified RSS {rss}."\n'
        f'loss = "({residual})^2"\n\n'
        "[parameters]\n" + "".join(f"b{k} = {{}}\n" for k in range(1, n + 1)) + "\n"
        "[data]\n" + "".join(f"{c} = {{}}\n" for c in columns) + "\n"
        "# NIST's Start 1 (Start 2: `--init` with the values in the .dat file).\n"
        "[init]\n" + "".join(f"b{k} = {start1}\n" for k, start1, _, _ in params)
    )
    with open(os.path.join(HERE, f"{lower}.toml"), "w") as f:
        f.write(text)
    with open(os.path.join(HERE, f"{lower}.csv"), "w") as f:
        f.write(",".join(columns) + "\n")
        for r in rows:
            f.write(",".join(number(v) for v in r) + "\n")


if __name__ == "__main__":
    for name, (difficulty, residual) in MODELS.items():
        write(name, difficulty, residual)
