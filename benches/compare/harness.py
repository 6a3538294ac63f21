"""Runs hessforge and the anchors (JAX, SymPy, CasADi, NumPy, SciPy) on the
same problems, data and starting points, alternating sides round by round,
and writes results.json and results.md (the README's "How it compares").

Called by run.sh; see the README there. Every measurement is a separate
process printing one JSON object; a side's number is the median over rounds
of that process's median over repeats (after a warm-up).

usage: harness.py HESSFORGE COMPARE_SIDE DATA_DIR OUT_DIR [--smoke] [--only rosenbrock|classic|large|nist|mlp]

--only rosenbrock runs comparison 4 alone, --only classic comparison 5,
--only nist comparison 7 and --only mlp comparison 8 (none of them needs
the data nor compare_side), --only large comparison 6; each writes
results-SECTION.json/.md.
"""

import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PYTHON = sys.executable
ANCHORS = os.path.join(HERE, "anchors")

SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def measure(args, mode):
    """Run one measurement; its last stdout line is the JSON record."""
    env = dict(os.environ)
    prefix = []
    if mode == "single":
        env.update(SINGLE_THREAD_ENV)
        prefix = ["taskset", "-c", "0"]
    args = [str(a) for a in args]
    done = subprocess.run(prefix + args, env=env, capture_output=True, text=True)
    try:
        return json.loads(done.stdout)  # hessforge run --json: one pretty document
    except json.JSONDecodeError:
        pass
    lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
    if not lines:
        sys.exit(f"no result from {' '.join(args)} (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def run_json(args):
    """`hessforge run … --json` (or `compare`) whose outcome, not its time,
    is wanted: its JSON document; exit 1 (the optimizer did not converge)
    is an outcome too, anything else stops the harness."""
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def alternate(sides, mode, rounds):
    """Run every side `rounds` times, reversing the order each round so that
    machine drift hits all sides alike. Returns {name: [records]}."""
    out = {name: [] for name, _ in sides}
    for r in range(rounds):
        order = sides if r % 2 == 0 else list(reversed(sides))
        for name, args in order:
            out[name].append(measure(args, mode))
    return out


def pick(records, key):
    """The median over rounds of each record's statistic `key` (a dict with
    median/min/max), keeping the overall min and max."""
    stats = [r[key] for r in records]
    medians = sorted(s["median"] for s in stats)
    return {"median": medians[len(medians) // 2], "min": min(s["min"] for s in stats),
            "max": max(s["max"] for s in stats)}


def py(script, *args):
    return [PYTHON, os.path.join(ANCHORS, script), *map(str, args)]


def main():
    hessforge, side, data, out = sys.argv[1:5]
    smoke = "--smoke" in sys.argv
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    if only not in (None, "rosenbrock", "classic", "large", "nist", "mlp"):
        sys.exit(f"--only takes rosenbrock, classic, large, nist or mlp, not {only!r}")

    def want(section):
        return only is None or only == section
    repeats = 1 if smoke else 7
    rounds = 1 if smoke else 2
    sizes = [1000] if smoke else [1000, 100_000, 1_000_000]
    hidden = [1] if smoke else [1, 4, 16]
    modes = ["single"] if smoke else ["single", "default"]
    results = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "smoke": smoke,
               "codegen": [], "kernel_pass": [], "mlp_sample": [], "end_to_end": [], "rosenbrock": [], "classic": [], "large": [], "nist": [], "mlp": []}

    # 1. Derivation + code generation (single-threaded by nature).
    files = {1: "crates/kernels/benches/models/mlp_tanh_1.toml", 4: "derivations/mlp_tanh.toml",
             16: "crates/kernels/benches/models/mlp_tanh_16.toml"}
    for h in hidden if want("codegen") else []:
        p = 4 * h + 1
        r = alternate([
            ("hessforge", [side, "codegen", os.path.join(ROOT, files[h]), repeats]),
            ("sympy", py("sympy_codegen.py", h, 1 if h == 16 else max(1, repeats // 2))),
            ("casadi", py("casadi_anchor.py", h, repeats, os.path.join(out, f"casadi_h{h}"))),
        ], "single", rounds)
        results["codegen"].append({
            "params": p,
            "seconds": {k: pick(v, "total_s") for k, v in r.items()},
            "index_form": pick(r["hessforge"], "index_s"),
            "operations": {k: v[0]["operations"] for k, v in r.items()},
        })
        # CasADi's compiled C per sample comes with its codegen run.
        results["mlp_sample"].append({"params": p, "casadi": pick(r["casadi"], "seconds_per_sample"),
                                      "casadi_loss": r["casadi"][0]["loss"]})

    # 2. Kernel speed.
    for mode in modes if want("kernels") else []:
        for n in sizes:
            csv, npy = (os.path.join(data, f"logistic_{n}.{e}") for e in ("csv", "npy"))
            extra = ["--parallel"] if mode == "default" else []
            r = alternate([
                ("hessforge", [side, "kernel-pass", csv, repeats, *extra]),
                ("jax", py("jax_anchor.py", "kernel-pass", npy, repeats)),
                ("numpy", py("numpy_anchor.py", npy, repeats)),
            ], mode, rounds)
            results["kernel_pass"].append({
                "mode": mode, "rows": n,
                "seconds": {k: pick(v, "seconds") for k, v in r.items()},
                "loss": {k: v[0]["loss"] for k, v in r.items()},
            })
    for entry in results["mlp_sample"] if want("kernels") else []:
        p = entry["params"]
        r = alternate([
            ("hessforge", [side, "mlp-sample", p, repeats]),
            ("jax", py("jax_anchor.py", "mlp-sample", p, repeats)),
        ], "single", rounds)
        entry["hessforge"] = pick(r["hessforge"], "seconds_per_sample")
        entry["jax"] = pick(r["jax"], "seconds_per_sample")
        entry["loss"] = {"hessforge": r["hessforge"][0]["loss"], "jax": r["jax"][0]["loss"],
                         "casadi": entry.pop("casadi_loss")}

    # 2c. Wide logistic regression (F = 100, 1 000; N = 100 000), single thread.
    wide = [(100, 1000)] if smoke else [(100, 100_000), (1000, 100_000)]
    wide = wide if want("kernels") else []
    results["wide_pass"] = []
    for f, n in wide:
        reps = 1 if smoke or f == 1000 else 3
        r = alternate([
            ("hessforge", [side, "wide-pass", f, n, reps]),
            ("numpy", py("wide_anchor.py", "numpy", f, n, reps)),
            ("jax", py("wide_anchor.py", "jax", f, n, reps)),
        ], "single", rounds)
        results["wide_pass"].append({
            "features": f, "rows": n,
            "seconds": {k: pick(v, "seconds") for k, v in r.items()},
            "loss": {k: v[0]["loss"] for k, v in r.items()},
            "hess_last": {k: v[0]["hess_last"] for k, v in r.items()},
        })

    # 3. End to end on logistic regression, N = 100 000 (1 000 in the smoke run).
    n = 1000 if smoke else 100_000
    csv, npy = (os.path.join(data, f"logistic_{n}.{e}") for e in ("csv", "npy"))
    for mode in modes if want("end-to-end") else []:
        run = [hessforge, "run", "logistic_regression", "--data", csv, "--json"]
        newton = alternate([
            ("hessforge", run + ["--optimizer", "newton", "--tol", "1e-10"]),
            ("jax", py("jax_anchor.py", "newton", npy)),
        ], mode, rounds)
        target = newton["hessforge"][0]["final_loss"] + 1e-8
        gd = alternate([
            ("hessforge", run + ["--optimizer", "gd", "--target-loss", repr(target), "--tol", "0",
                                 "--max-iters", "100000"]),
            ("jax", py("jax_anchor.py", "gd", npy, repr(target))),
        ], mode, rounds)
        for method, r in (("newton", newton), ("gd", gd)):
            results["end_to_end"].append({
                "mode": mode, "method": method, "rows": n, "target_loss": target if method == "gd" else None,
                **{k: {"iterations": v[0]["iterations"], "final_loss": v[0]["final_loss"],
                       "seconds": sorted(x["seconds"] for x in v)[len(v) // 2]} for k, v in r.items()},
            })

    # 4. Rosenbrock from (−1.2, 1).
    pairs = [("newton-damped", "Newton-CG"), ("newton-tr", "trust-exact"), ("bfgs", "BFGS"),
             ("lbfgs", "L-BFGS-B")]
    for ours, theirs in pairs if want("rosenbrock") else []:
        r = alternate([
            ("hessforge", [hessforge, "run", "rosenbrock", "--optimizer", ours, "--tol", "1e-8", "--json"]),
            ("scipy", py("scipy_rosenbrock.py", theirs, repeats)),
        ], "single", rounds)
        h, s = r["hessforge"][0], r["scipy"][0]
        results["rosenbrock"].append({
            "hessforge": {"method": ours, "iterations": h["iterations"], "evaluations": h["evaluations"],
                          "final_loss": h["final_loss"], "grad_norm": h["grad_norm"],
                          "seconds": sorted(x["seconds"] for x in r["hessforge"])[0]},
            "scipy": {"method": theirs, "iterations": s["iterations"], "evaluations": s["evaluations"],
                      "final_loss": s["final_loss"], "grad_norm": s["grad_norm"],
                      "seconds": pick(r["scipy"], "seconds")["median"]},
        })

    # 5. The classic test problems of tests/problems/, every Newton-type and
    # quasi-Newton method on both sides (iteration counts are deterministic:
    # one run each).
    if want("classic"):
        results["classic"] = classic(hessforge, smoke)

    # 6. Newton at large P: digits (P = 650) and the wide logistic
    # regression (P = 1 001, N = 100 000), single thread, one run each.
    if want("large"):
        results["large"] = large(hessforge, side, smoke)
        results["mlp_trust"] = mlp_trust(hessforge, smoke)

    # 7. NIST's certified nonlinear regressions (tests/nist/), both starts,
    # every Newton-type and quasi-Newton method against SciPy's
    # least_squares and trust-exact (deterministic: one run each).
    if want("nist"):
        results["nist"] = nist(hessforge, smoke)

    # 8. Newton on neural networks: the tanh MLPs of tests/mlp/ (4, 16 and 64
    # hidden units), every Newton-type and quasi-Newton method against
    # SciPy's trust-exact, BFGS and Newton-CG with JAX's derivatives
    # (iteration counts are deterministic: one run each).
    if want("mlp"):
        results["mlp"] = mlp(hessforge, smoke)

    results["versions"] = versions()
    os.makedirs(out, exist_ok=True)
    stem = "results" if only is None else f"results-{only}"
    with open(os.path.join(out, f"{stem}.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(out, f"{stem}.md"), "w") as f:
        f.write(markdown(results))
    print(markdown(results))


# The classic table's hessforge columns: `newton-tr` is `newton-exact-tr` at
# these sizes (P ≤ 200), so its Steihaug subproblem has a column of its own.
HESSFORGE_CLASSIC = ["newton", "newton-damped", "newton-lm", "newton-saddle-free", "newton-tr",
                     "newton-tr --subproblem steihaug", "newton-exact-tr", "newton-cg", "bfgs", "lbfgs"]
SCIPY_CLASSIC = ["trust-exact", "trust-krylov", "Newton-CG", "BFGS", "L-BFGS-B"]


# The minima Moré, Garbow & Hillstrom (1981) report for each problem at the
# sizes of `tests/problems/`: the global one and the local ones at finite
# points (Bard's 17.4286 and Kowalik–Osborne's 1.02734e-3 lie at infinity and
# are left out; Trigonometric's local 2.79506e-5 is from the file's note).
MGH_MINIMA = {
    "bard": [8.21487e-3],
    "beale": [0.0],
    "biggs_exp6": [5.65565e-3, 0.0],
    "box_3d": [0.0],
    "brown_badly_scaled": [0.0],
    "brown_dennis": [85822.2],
    "extended_rosenbrock": [0.0],
    "freudenstein_roth": [0.0, 48.9842],
    "gaussian": [1.12793e-8],
    "gulf": [0.0],
    "jennrich_sampson": [124.362],
    "kowalik_osborne": [3.07505e-4],
    "meyer": [87.9458],
    "osborne1": [5.46489e-5],
    "osborne2": [4.01377e-2],
    "penalty_1": [2.24997e-5],
    "powell_badly_scaled": [0.0],
    "powell_singular": [0.0],
    "trigonometric": [0.0, 2.79506e-5],
    "variably_dimensioned": [0.0],
    "watson": [2.28767e-3],
    "watson9": [1.39976e-6],
    "wood": [0.0],
}


def at_a_reported_minimum(problem, f):
    """f is one of the problem's reported minima to their six digits (to
    1e-10 where the minimum is 0)."""
    return any(abs(f - m) <= 1e-5 * abs(m) + 1e-10 for m in MGH_MINIMA[problem])


def solved(problem, point):
    """A run solved its problem when it stopped at a local minimizer: ‖∇f‖∞ ≤
    1e-6·max(1, |f|) (the precision to which f's gradient can be evaluated
    at f* ≈ 124 is about 1e-7) and no eigenvalue of ∇²f below
    −1e-6·|λ_max| (not a saddle), judged by SymPy's derivatives for both
    sides alike, with f one of the minima MGH report. The last test is what
    the first two miss on a flat valley: on Biggs EXP6 a run can stop with
    ‖∇f‖∞ = 4e-8 and λ_min = −3e-15 (against λ_max = 2.8e7) far along an
    asymptote at f = 0.2427, which is no minimizer."""
    g, f, lo, hi = point["grad_norm"], point["final_loss"], point["lambda_min"], point["lambda_max"]
    if g is None or f is None or lo is None:
        return False
    return (g <= 1e-6 * max(1.0, abs(f)) and lo >= -1e-6 * abs(hi)
            and at_a_reported_minimum(problem, f))


def classic(hessforge, smoke):
    """Every problem file × every method: solved or not (see `solved`),
    iterations, final ‖∇f‖∞ and hessforge's own status."""
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "problems", "*.toml")))
    if smoke:
        files = files[:2]
    rows = []
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        row = {"problem": name, "hessforge": {}, "scipy": {}}
        finals = {}
        for method in HESSFORGE_CLASSIC:
            optimizer, *flags = method.split()
            h = run_json([hessforge, "run", path, "--optimizer", optimizer, *flags, "--json"])
            row["hessforge"][method] = {"status": h["status"], "iterations": h["iterations"]}
            finals[method] = h["theta"]
        points = os.path.join(ROOT, "target", f"classic-{name}-points.json")
        os.makedirs(os.path.dirname(points), exist_ok=True)
        with open(points, "w") as f:
            json.dump(finals, f)
        done = subprocess.run(py("scipy_classic.py", path, "--judge", points, *SCIPY_CLASSIC),
                              capture_output=True, text=True)
        for line in done.stdout.splitlines():
            if not line.startswith("{"):
                continue
            s = json.loads(line)
            point = {k: s.get(k) for k in ("final_loss", "grad_norm", "lambda_min", "lambda_max")}
            if "judge" in s:
                row["hessforge"][s["judge"]].update(point, solved=solved(name, point))
            else:
                row["scipy"][s["method"]] = {**point, "solved": solved(name, point), "success": s["success"],
                                             "iterations": s["iterations"], "message": s["message"]}
        missing = [m for m in SCIPY_CLASSIC if m not in row["scipy"]]
        missing += [m for m in HESSFORGE_CLASSIC if "solved" not in row["hessforge"][m]]
        if missing:
            sys.exit(f"scipy_classic.py gave no result for {missing} on {name}:\n{done.stderr[-2000:]}")
        rows.append(row)
        print(f"   classic: {name}", file=sys.stderr)
    return rows


LARGE_METHODS = ["newton-cg", "newton-tr", "lbfgs", "newton"]


def large(hessforge, side, smoke):
    """hessforge's Newton–CG, Steihaug on Hessian–vector products, L-BFGS
    and dense Newton against SciPy's Newton-CG on JAX's jvp(grad), each to
    ‖∇L‖∞ ≤ 1e-8 from θ = 0 (seconds: the optimisation, end-of-run
    curvature check included; no preparation or compilation)."""
    digits_csv = os.path.join(ROOT, "data", "digits.csv")
    n = 1000 if smoke else 100_000
    # The same problem as a model *file* (compiled at run time), its rows
    # read from a CSV file: the issue-34 bar on newton-cg.
    n_file = 1000 if smoke else 20_000
    wide_file = os.path.join(ROOT, "crates", "kernels", "benches", "models", "logistic_1000.toml")
    wide_csv = os.path.join(tempfile.gettempdir(), f"hessforge-wide-1000-{n_file}.csv")
    measure([side, "write-wide", 1000, n_file, wide_csv], "default")
    problems = [("digits", "softmax regression, 10 classes × (64 + 1)", 650, 1797,
                 lambda m: [hessforge, "run", "digits", "--optimizer", m, "--json"],
                 py("jax_newton_cg.py", "digits", digits_csv)),
                ("wide", f"logistic regression, F = 1 000", 1001, n,
                 lambda m: [side, "fit-wide", 1000, n, m],
                 py("jax_newton_cg.py", "wide", 1000, n)),
                ("wide, from its file", f"logistic regression, F = 1 000, `{os.path.relpath(wide_file, ROOT)}` "
                 "compiled at run time, rows from CSV", 1001, n_file,
                 lambda m: [hessforge, "run", wide_file, "--optimizer", m, "--data", wide_csv, "--json"],
                 py("jax_newton_cg.py", "wide", 1000, n_file))]
    # Every side runs `rounds` times, alternating, and keeps the median time:
    # one run each moved by up to 1.5x between runs on a shared machine.
    rounds = 1 if smoke else 3
    out = []
    for name, what, p, rows, ours, theirs in problems:
        entry = {"problem": name, "what": what, "params": p, "rows": rows, "hessforge": {}}
        sides = [(m, ours(m)) for m in LARGE_METHODS] + [("jax", theirs)]
        runs = alternate(sides, "single", rounds)
        for m in LARGE_METHODS:
            r = runs[m][0]
            entry["hessforge"][m] = {k: r[k] for k in ("status", "iterations", "grad_norm", "evaluations")}
            times = sorted(x.get("fit_seconds", x["seconds"]) for x in runs[m])
            entry["hessforge"][m].update(seconds=times[len(times) // 2], runs=times)
        times = sorted(x["seconds"] for x in runs["jax"])
        entry["jax"] = dict(runs["jax"][0], seconds=times[len(times) // 2], runs=times)
        out.append(entry)
        print(f"   large: {name}", file=sys.stderr)
    os.remove(wide_csv)
    return out


def mlp_trust(hessforge, smoke):
    """hessforge's `newton-tr` (the exact trust region with the dense
    Hessian at P = 65) on the 16-unit tanh MLP *file*, compiled at run time,
    against SciPy's trust-exact with JAX's gradient and Hessian: the same
    1 000 seeded rows, the same seeded start, the same iteration budget;
    the time per iteration (each side's optimisation only: no preparation,
    no JIT warm-up), median of alternating runs."""
    rng = np.random.default_rng(4)
    n, iters = (1000, 30) if smoke else (1000, 300)
    x = rng.uniform(-2.0, 2.0, size=(n, 2))
    y = np.sin(x[:, 0]) * np.cos(x[:, 1]) + 0.1 * rng.standard_normal(n)
    csv = os.path.join(tempfile.gettempdir(), f"hessforge-mlp16-{n}.csv")
    np.savetxt(csv, np.column_stack([x, y]), delimiter=",", fmt="%.17g", header="x_1,x_2,y",
               comments="")
    theta0 = ",".join(repr(float(v)) for v in rng.normal(0.0, 0.5, 65))
    model = os.path.join(ROOT, "crates", "kernels", "benches", "models", "mlp_tanh_16.toml")
    sides = [("hessforge", [hessforge, "run", model, "--optimizer", "newton-tr", "--data", csv,
                            "--init", theta0, "--max-iters", iters, "--json"]),
             ("scipy", py("jax_trust_exact.py", "mlp", csv, theta0, iters))]
    runs = alternate(sides, "single", 1 if smoke else 3)
    os.remove(csv)

    def side(records, seconds):
        per = sorted(seconds(r) / max(r["iterations"], 1) for r in records)
        r = records[0]
        return {"iterations": r["iterations"], "per_iteration": per[len(per) // 2], "runs": per,
                "final_loss": r["final_loss"], "grad_norm": r["grad_norm"]}
    return {"rows": n, "params": 65, "budget": iters,
            "hessforge": side(runs["hessforge"], lambda r: r["seconds"]),
            "scipy": side(runs["scipy"], lambda r: r["seconds"])}


def mlp_trust_markdown(e):
    if not e:
        return []
    h, s = e["hessforge"], e["scipy"]
    ratio = s["per_iteration"] / h["per_iteration"]
    return ["", f"**6b. Exact trust region on a neural network**: the 16-unit tanh MLP file "
            f"(P = {e['params']}, compiled at run time), {e['rows']:,} seeded rows, the same seeded start, "
            f"at most {e['budget']} iterations, single thread: time per iteration (median of alternating runs).",
            "", "| side | iterations | per iteration | final loss | ‖∇L‖∞ |", "|---|---:|---:|---:|---:|",
            f"| hessforge `newton-tr` | {h['iterations']} | {fmt_s(h['per_iteration'])} | "
            f"{h['final_loss']:.6g} | {h['grad_norm']:.1e} |",
            f"| SciPy trust-exact + JAX | {s['iterations']} | {fmt_s(s['per_iteration'])} | "
            f"{s['final_loss']:.6g} | {s['grad_norm']:.1e} |",
            "", f"Bar: hessforge's time per iteration ≤ 1/5 of SciPy + JAX's {bar(ratio >= 5)} ({ratio:.1f}×)."]


def large_markdown(entries):
    lines = ["**6. Newton at large P**, single thread, from θ = 0 to ‖∇L‖∞ ≤ 1e-8: time of the "
             "optimisation (median of three alternating runs; hessforge: its end-of-run curvature "
             "check included), iterations, "
             "Hessian–vector products (Hv) and Hessians (H). SciPy's Newton-CG gets JAX's "
             "jit(grad) and jit(jvp(grad)).", "",
             "| problem | P | N | method | time | iterations | Hv | H | ‖∇L‖∞ |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for e in entries:
        for m, r in e["hessforge"].items():
            ev = r["evaluations"]
            lines.append(f"| {e['problem']} | {e['params']} | {e['rows']:,} | hessforge `{m}` | "
                         f"{fmt_s(r['seconds'])} | {r['iterations']} | {ev['hess_vec']} | {ev['hessian']} | "
                         f"{r['grad_norm']:.1e} |")
        j = e["jax"]
        lines.append(f"| {e['problem']} | {e['params']} | {e['rows']:,} | SciPy Newton-CG + JAX | "
                     f"{fmt_s(j['seconds'])} | {j['iterations']} | {j['evaluations']['hvp']} | 0 | "
                     f"{j['grad_norm']:.1e} |")
    lines += ["", "Bars:", ""]
    for e in entries:
        h = e["hessforge"]
        cg = h["newton-cg"]["seconds"]
        lines.append(f"- {e['problem']}: `newton-cg` faster than `lbfgs` {bar(cg < h['lbfgs']['seconds'])} "
                     f"({h['lbfgs']['seconds'] / cg:.2f}×), than dense `newton` "
                     f"{bar(cg < h['newton']['seconds'])} ({h['newton']['seconds'] / cg:.2f}×), than "
                     f"SciPy Newton-CG + JAX {bar(cg < e['jax']['seconds'])} "
                     f"({e['jax']['seconds'] / cg:.2f}×).")
    return lines


# Comparison 7's hessforge columns (those of crates/driver/tests/it/nist.rs)
# and SciPy's.
HESSFORGE_NIST = ["newton-damped", "newton-lm", "newton-exact-tr", "newton-cg", "gauss-newton", "bfgs", "lbfgs"]
SCIPY_NIST = ["trf", "lm", "trust-exact"]


def nist(hessforge, smoke):
    """Every NIST problem × start × method: the log relative error of the
    final parameters against the certified ones (reached: ≥ 6 digits) and
    the iterations until the method stopped."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "nist"))
    import nist as problems
    names = list(problems.MODELS)[:2] if smoke else list(problems.MODELS)
    rows = {}
    for name in names:
        params, _, _, _ = problems.parse(os.path.join(ROOT, "tests", "nist", "dat", f"{name}.dat"))
        certified = [float(p[3]) for p in params]
        lower = name.lower()
        for start in (1, 2):
            init = ",".join(p[start] for p in params)
            row = rows.setdefault((name, start), {"problem": name, "start": start, "hessforge": {}, "scipy": {}})
            for method in HESSFORGE_NIST:
                h = run_json([hessforge, "run", os.path.join(ROOT, "tests", "nist", f"{lower}.toml"),
                              "--data", os.path.join(ROOT, "tests", "nist", f"{lower}.csv"),
                              "--optimizer", method, f"--init={init}", "--tol", "1e-13", "--json"])
                digits = problems.digits(h["theta"], certified)
                row["hessforge"][method] = {"digits": digits, "reached": digits >= 6, "status": h["status"],
                                            "iterations": h["iterations"]}
        done = subprocess.run(py("scipy_nist.py", name), capture_output=True, text=True)
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                s = json.loads(line)
                rows[(name, s["start"])]["scipy"][s["method"]] = {
                    "digits": s["lre"], "reached": s["lre"] >= 6, "iterations": s["iterations"],
                    "message": s["message"]}
        if any(len(rows[(name, k)]["scipy"]) != len(SCIPY_NIST) for k in (1, 2)):
            sys.exit(f"scipy_nist.py gave no result for {name}:\n{done.stderr[-2000:]}")
        print(f"   nist: {name}", file=sys.stderr)
    return list(rows.values())


def nist_markdown(rows):
    """Iterations where a method reached the certified parameters (− where
    it did not), the counts per start, and the bar."""
    if not rows:
        return []
    lines = ["**7. NIST StRD nonlinear regression** (`tests/nist/`), both of NIST's starts, exact derivatives "
             "(SciPy's from SymPy), hessforge asked for ‖∇L‖∞ ≤ 1e-13 (L = RSS/N), SciPy's least_squares for "
             "ftol = xtol = gtol = 1e-15 and trust-exact for gtol = 1e-13. A cell is the iterations until the "
             "method stopped (least_squares: function evaluations) where every parameter matches NIST's "
             "certified value to 6 significant digits; − where not.", "",
             "| problem | start | " + " | ".join(HESSFORGE_NIST) + " | " + " | ".join(SCIPY_NIST) + " |",
             "|---|---:|" + "---:|" * (len(HESSFORGE_NIST) + len(SCIPY_NIST))]

    def cell(r):
        return str(r["iterations"]) if r["reached"] else "−"
    for row in rows:
        lines.append(f"| {row['problem']} | {row['start']} | "
                     + " | ".join(cell(row["hessforge"][m]) for m in HESSFORGE_NIST) + " | "
                     + " | ".join(cell(row["scipy"][m]) for m in SCIPY_NIST) + " |")
    counts = {}
    for start in (1, 2):
        mine = [r for r in rows if r["start"] == start]
        counts[start] = ({m: sum(r["hessforge"][m]["reached"] for r in mine) for m in HESSFORGE_NIST},
                         {m: sum(r["scipy"][m]["reached"] for r in mine) for m in SCIPY_NIST})
        ours, theirs = counts[start]
        lines.append(f"| **reached, start {start}** | | " + " | ".join(str(ours[m]) for m in HESSFORGE_NIST)
                     + " | " + " | ".join(str(theirs[m]) for m in SCIPY_NIST) + " |")
    lines += ["", "Bars:", ""]
    for start in (1, 2):
        ours, theirs = counts[start]
        best_ours = max(ours, key=ours.get)
        best_theirs = max(theirs, key=theirs.get)
        lines.append(f"- Start {start}: the best hessforge method (`{best_ours}`, {ours[best_ours]}) reaches "
                     f"at least as many certified solutions as SciPy's best (`{best_theirs}`, "
                     f"{theirs[best_theirs]}) {bar(ours[best_ours] >= theirs[best_theirs])}.")
    return lines


# Comparison 8's hessforge columns (those of tests/it/mlp.rs) and SciPy's.
HESSFORGE_MLP = ["newton", "newton-damped", "newton-lm", "newton-saddle-free", "newton-tr", "newton-exact-tr",
                 "newton-cg", "gauss-newton", "bfgs", "lbfgs"]
SCIPY_MLP = ["trust-exact", "BFGS", "Newton-CG"]
MLP_HIDDEN = (4, 16, 64)
MLP_BUDGET = 10_000
# Each hessforge method's time budget per run: only `gauss-newton` at 64
# units (a linear rate, 1 000 one-row gradients per product) reaches it.
MLP_SECONDS = 300


def mlp(hessforge, smoke):
    """Every tanh MLP × method on both sides, from tests/mlp/'s start to
    ‖∇L‖∞ ≤ 1e-8 within MLP_BUDGET iterations: how it ended, iterations,
    final loss and gradient, seconds (one run: the table is about
    iterations; the times are each side's optimisation alone)."""
    budget = 200 if smoke else MLP_BUDGET
    folder = os.path.join(ROOT, "tests", "mlp")
    out = []
    for hidden in MLP_HIDDEN[:2] if smoke else MLP_HIDDEN:
        with open(os.path.join(folder, f"start_{hidden}.txt")) as f:
            start = f.read().strip()
        doc = run_json([hessforge, "compare", os.path.join(folder, f"mlp_tanh_{hidden}.toml"),
                        "--data", os.path.join(folder, "rows.csv"), "--optimizers", ",".join(HESSFORGE_MLP),
                        f"--init={start}", "--max-iters", str(budget), "--time-limit", str(MLP_SECONDS),
                        "--json"])
        entry = {"hidden": hidden, "params": 4 * hidden + 1, "budget": budget, "hessforge": {}, "scipy": {}}
        for r in doc["runs"]:
            entry["hessforge"][r["optimizer"]] = {
                "status": r["status"], "converged": r["status"] == "converged", "iterations": r["iterations"],
                "final_loss": r["final_loss"], "grad_norm": r["grad_norm"], "seconds": r["seconds"]}
        done = subprocess.run(py("scipy_mlp.py", hidden, budget, *SCIPY_MLP), capture_output=True, text=True)
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                s = json.loads(line)
                entry["scipy"][s["method"]] = {k: s[k] for k in ("converged", "iterations", "final_loss",
                                                                 "grad_norm", "seconds", "message")}
        if len(entry["scipy"]) != len(SCIPY_MLP):
            sys.exit(f"scipy_mlp.py gave no result for {hidden} units:\n{done.stderr[-2000:]}")
        print(f"   mlp: {hidden} units", file=sys.stderr)
        out.append(entry)
    return out


def mlp_markdown(entries):
    """Per size: iterations where a method converged (its status where it
    did not), final loss, seconds; and the bar."""
    if not entries:
        return []
    lines = ["**8. Newton on neural networks**: tanh MLPs (`tests/mlp/`: 2 inputs, H hidden units, "
             "P = 4H + 1, the mean of (ŷ − y)²/2 plus a weight decay 10⁻⁴/2·(‖W‖² + ‖v‖²)) on 1 000 "
             "generated rows, from the same seeded start, to ‖∇L‖∞ ≤ 1e-8 within "
             f"{entries[0]['budget']:,} iterations; SciPy with JAX's jit(grad), jit(hessian) and "
             "jit(jvp(grad)). A cell: iterations (how the run ended when it did not converge), the final "
             "loss, the optimisation's seconds (single run).", "",
             "| method | " + " | ".join(f"H = {e['hidden']} (P = {e['params']})" for e in entries) + " |",
             "|---|" + "---|" * len(entries)]

    def cell(r, status):
        head = str(r["iterations"]) if r["converged"] else f"{status} ({r['iterations']})"
        return f"{head}, {r['final_loss']:.6g}, {fmt_s(r['seconds'])}"
    for m in HESSFORGE_MLP:
        lines.append(f"| hessforge `{m}` | " + " | ".join(
            cell(e["hessforge"][m], e["hessforge"][m]["status"]) for e in entries) + " |")
    for m in SCIPY_MLP:
        lines.append(f"| SciPy {m} + JAX | " + " | ".join(
            cell(e["scipy"][m], "not converged") for e in entries) + " |")
    lines += ["", "Bar: the default trust-region Newton (`newton-tr`) converges on every size, in fewer "
              "iterations than SciPy's trust-exact where both converge:", ""]
    for e in entries:
        h, s = e["hessforge"]["newton-tr"], e["scipy"]["trust-exact"]
        met = h["converged"] and (not s["converged"] or h["iterations"] < s["iterations"])
        lines.append(f"- H = {e['hidden']}: {bar(met)} ({h['iterations']} {'converged' if h['converged'] else h['status']} "
                     f"vs {s['iterations']} {'converged' if s['converged'] else 'not converged'}).")
    return lines


def classic_markdown(rows):
    """The table (iterations, − where a method did not solve the problem),
    the totals on the problems both sides of each pair solve, and the bars."""
    ours = HESSFORGE_CLASSIC
    lines = ["**5. Classic unconstrained problems** (`tests/problems/`, Moré, Garbow & Hillstrom 1981), "
             "standard starts, exact derivatives (SciPy's from SymPy), ‖∇f‖ ≤ 1e-8, at most 10 000 "
             "iterations. Iterations until the method stopped; − : it did not stop at a local minimizer "
             "(‖∇f‖∞ ≤ 1e-6·max(1, |f|), no eigenvalue of ∇²f below −1e-6·|λ_max|, judged for both "
             "sides by SymPy's derivatives at the final point, and f one of the minima Moré, Garbow & "
             "Hillstrom report, to their six digits).", "",
             "| problem | " + " | ".join(ours) + " | " + " | ".join(SCIPY_CLASSIC) + " |",
             "|---|" + "---:|" * (len(ours) + len(SCIPY_CLASSIC))]

    def cell(r):
        return str(r["iterations"]) if r["solved"] else "−"
    for row in rows:
        lines.append(f"| {row['problem']} | " + " | ".join(cell(row["hessforge"][m]) for m in ours) + " | "
                     + " | ".join(cell(row["scipy"][m]) for m in SCIPY_CLASSIC) + " |")
    solved = {m: sum(row["hessforge"][m]["solved"] for row in rows) for m in ours}
    solved.update({m: sum(row["scipy"][m]["solved"] for row in rows) for m in SCIPY_CLASSIC})
    lines.append("| **solved** | " + " | ".join(str(solved[m]) for m in ours + SCIPY_CLASSIC) + " |")
    lines += ["", "Pairs, on the problems both methods solve: iterations in total.", "",
              "| hessforge | SciPy | solved (hessforge / SciPy) | solved by SciPy only | both solve | "
              "iterations (hessforge / SciPy) |", "|---|---|---:|---|---:|---:|"]
    bars = []
    for mine, theirs in (("newton-exact-tr", "trust-exact"), ("newton-tr --subproblem steihaug", "trust-krylov"),
                         ("newton-cg", "Newton-CG"), ("bfgs", "BFGS"), ("lbfgs", "L-BFGS-B")):
        both = [r for r in rows if r["hessforge"][mine]["solved"] and r["scipy"][theirs]["solved"]]
        only_theirs = [r["problem"] for r in rows if r["scipy"][theirs]["solved"] and not r["hessforge"][mine]["solved"]]
        a = sum(r["hessforge"][mine]["iterations"] for r in both)
        b = sum(r["scipy"][theirs]["iterations"] for r in both)
        lines.append(f"| {mine} | {theirs} | {solved[mine]} / {solved[theirs]} | {', '.join(only_theirs) or '—'} | "
                     f"{len(both)} | {a} / {b} |")
        if mine in ("newton-exact-tr", "bfgs"):
            bars.append((mine, theirs, only_theirs, a, b))
    lines += ["", "Bars:", ""]
    # The best hessforge Newton-type method: of those that solve every
    # problem trust-exact solves, the one with the fewest iterations there.
    theirs_solved = [r for r in rows if r["scipy"]["trust-exact"]["solved"]]
    b = sum(r["scipy"]["trust-exact"]["iterations"] for r in theirs_solved)
    newton_type = [m for m in ours if m.startswith("newton")]
    complete = [(sum(r["hessforge"][m]["iterations"] for r in theirs_solved), m) for m in newton_type
                if all(r["hessforge"][m]["solved"] for r in theirs_solved)]
    if complete:
        a, best = min(complete)
        lines.append(f"- The best Newton-type method, `{best}`, solves every problem `trust-exact` solves "
                     f"**met**; no more iterations in total {bar(a <= b)} ({a} vs {b}).")
    else:
        lines.append("- A Newton-type method solves every problem `trust-exact` solves **missed**.")
    for mine, theirs, only_theirs, a, b in bars:
        lines.append(f"- `{mine}` solves every problem `{theirs}` solves {bar(not only_theirs)}"
                     f"{' (not ' + ', '.join(only_theirs) + ')' if only_theirs else ''}; "
                     f"no more iterations in total on the problems both solve {bar(a <= b)} ({a} vs {b}).")
    return lines


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()}


def versions():
    import importlib.metadata as md
    out = {p: md.version(p) for p in ("numpy", "scipy", "sympy", "casadi", "jax", "jaxlib")}
    out["python"] = platform.python_version()
    out["rust"] = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip().removeprefix("rustc ")
    return out


def fmt_s(s):
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.1f} µs"
    return f"{s * 1e9:.0f} ns"


def bar(met):
    return "**met**" if met else "**missed**"


def markdown(r):
    m = r["machine"]
    lines = [f"Measured {r['date']} on {m['cpu']} ({m['cores']} cores), {m['system']}; "
             f"{'SMOKE RUN (smallest sizes, one repeat) — not for the README; ' if r['smoke'] else ''}"
             "medians over rounds of medians over repeats; ratios are the anchor's time over hessforge's "
             "(> 1: hessforge faster).", ""]
    if not r["codegen"]:  # --only rosenbrock, classic, large, nist or mlp
        if r.get("mlp"):
            lines += mlp_markdown(r["mlp"])
        elif r.get("nist"):
            lines += nist_markdown(r["nist"])
        elif r["rosenbrock"]:
            lines += rosenbrock_markdown(r["rosenbrock"]) + ["", "Bars:", ""] + rosenbrock_bars(r["rosenbrock"])
        else:
            lines += (classic_markdown(r["classic"]) if r["classic"]
                      else large_markdown(r["large"]) + mlp_trust_markdown(r.get("mlp_trust")))
        return "\n".join(lines + ["", versions_line(r["versions"])]) + "\n"
    lines += ["**1. Derivation + code generation**, `mlp_tanh` (single thread; hessforge: derive, CSE, "
              "lower, emit formatted Rust; SymPy: diff, cse, ccode; CasADi: SX hessian, Function, "
              "generate C). Operations: arithmetic instructions of the program computing loss, gradient "
              "and Hessian (hessforge: IR operations; SymPy: count_ops after cse; CasADi: non-I/O instructions).",
              "hessforge (index form): derive in index form, lower into loops, emit the loop kernel.",
              "", "| P | hessforge | hessforge (index form) | SymPy | CasADi | SymPy / index form | CasADi / index form "
              "| ops hessforge | ops SymPy | ops CasADi |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in r["codegen"]:
        s, o = c["seconds"], c["operations"]
        ix = c.get("index_form") or {}
        ixs = ix.get("median")
        lines.append(f"| {c['params']} | {fmt_s(s['hessforge']['median'])} | {fmt_s(ixs) if ixs else '—'} | "
                     f"{fmt_s(s['sympy']['median'])} | {fmt_s(s['casadi']['median'])} | "
                     f"{s['sympy']['median'] / ixs if ixs else 0:.1f}× | {s['casadi']['median'] / ixs if ixs else 0:.2f}× | "
                     f"{o['hessforge']} | {o['sympy']} | {o['casadi']} |")
    lines += ["", "**2a. Kernel pass**: loss + gradient + Hessian of logistic regression (10 features + bias) "
              "over N rows.", "",
              "| threads | N | hessforge | JAX jit | NumPy | JAX / hessforge | NumPy / hessforge |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for k in r["kernel_pass"]:
        s = k["seconds"]
        h = s["hessforge"]["median"]
        lines.append(f"| {k['mode']} | {k['rows']:,} | {fmt_s(h)} | {fmt_s(s['jax']['median'])} | "
                     f"{fmt_s(s['numpy']['median'])} | {s['jax']['median'] / h:.1f}× | {s['numpy']['median'] / h:.1f}× |")
    lines += ["", "**2c. Wide logistic regression**: loss + gradient + Hessian with F features + bias over "
              "N synthetic rows (the same bits on every side), single thread; hessforge's generated loop "
              "kernel, NumPy's closed form `Xᵀ(X * c[:, None])` (single-threaded BLAS), JAX `jit(hessian)`.", "",
              "| F | N | hessforge | NumPy | JAX jit | NumPy / hessforge | JAX / hessforge |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for k in r.get("wide_pass", []):
        s = k["seconds"]
        h = s["hessforge"]["median"]
        lines.append(f"| {k['features']:,} | {k['rows']:,} | {fmt_s(h)} | {fmt_s(s['numpy']['median'])} | "
                     f"{fmt_s(s['jax']['median'])} | {s['numpy']['median'] / h:.2f}× | {s['jax']['median'] / h:.1f}× |")
    lines += ["", "**2b. One sample of `mlp_tanh`**, loss + gradient + Hessian (single thread).", "",
              "| P | hessforge | CasADi C (-O3 -march=native) | JAX jit (per call) | CasADi / hessforge |",
              "|---:|---:|---:|---:|---:|"]
    for e in r["mlp_sample"]:
        h = e["hessforge"]["median"]
        lines.append(f"| {e['params']} | {fmt_s(h)} | {fmt_s(e['casadi']['median'])} | {fmt_s(e['jax']['median'])} | "
                     f"{e['casadi']['median'] / h:.2f}× |")
    lines += ["", "**3. End to end**, logistic regression from zero on the same CSV: Newton to ‖g‖∞ < 1e-10; "
              "GD with step 1/L to Newton's loss + 1e-8.", "",
              "| threads | method | N | hessforge | JAX | JAX / hessforge | iterations (hessforge / JAX) |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for e in r["end_to_end"]:
        h, j = e["hessforge"], e["jax"]
        lines.append(f"| {e['mode']} | {e['method']} | {e['rows']:,} | {fmt_s(h['seconds'])} | {fmt_s(j['seconds'])} | "
                     f"{j['seconds'] / h['seconds']:.1f}× | {h['iterations']} / {j['iterations']} |")
    lines += [""] + rosenbrock_markdown(r["rosenbrock"])
    lines += ["", "**Bars**", ""]
    single = [k for k in r["kernel_pass"] if k["mode"] == "single"]
    at_least_jax = all(k["seconds"]["jax"]["median"] >= k["seconds"]["hessforge"]["median"] for k in single)
    small = [k for k in single if k["rows"] == 1000]
    ratio_small = small[0]["seconds"]["jax"]["median"] / small[0]["seconds"]["hessforge"]["median"] if small else 0
    lines.append(f"- Kernel pass, single thread, at least as fast as JAX at every N: {bar(at_least_jax)}; "
                 f"≥ 20× at N = 1 000: {bar(ratio_small >= 20)} ({ratio_small:.1f}×).")
    casadi = [(e["params"], e["casadi"]["median"] / e["hessforge"]["median"]) for e in r["mlp_sample"]]
    lines.append("- Per-sample MLP at least as fast as CasADi's C: " + ", ".join(
        f"P = {p}: {bar(x >= 1)} ({x:.2f}×)" for p, x in casadi) + ".")
    big = [c for c in r["codegen"] if c["params"] == 65]
    if big:
        c = big[0]
        x = c["seconds"]["sympy"]["median"] / c["seconds"]["hessforge"]["median"]
        o = c["operations"]
        lines.append(f"- Derivation + codegen ≥ 50× faster than SymPy at P = 65: {bar(x >= 50)} ({x:.1f}×); "
                     f"program no larger than CasADi's: {bar(o['hessforge'] <= o['casadi'])} "
                     f"({o['hessforge']} vs {o['casadi']} operations).")
    for k in r.get("wide_pass", []):
        s = k["seconds"]
        h = s["hessforge"]["median"]
        lines.append(f"- Wide pass, F = {k['features']:,}: within 1.5× of NumPy "
                     f"{bar(h <= 1.5 * s['numpy']['median'])} ({s['numpy']['median'] / h:.2f}×), faster than JAX "
                     f"{bar(h < s['jax']['median'])} ({s['jax']['median'] / h:.1f}×).")
    for c in r["codegen"]:
        ixs = (c.get("index_form") or {}).get("median")
        if ixs:
            lines.append(f"- Preparation in index form at P = {c['params']} ≤ 50 ms {bar(ixs <= 0.05)} "
                         f"({fmt_s(ixs)}); faster than CasADi {bar(ixs < c['seconds']['casadi']['median'])}; "
                         f"≥ 50× faster than SymPy {bar(c['seconds']['sympy']['median'] >= 50 * ixs)}.")
    for e in r["end_to_end"]:
        if e["method"] == "newton":
            x = e["jax"]["seconds"] / e["hessforge"]["seconds"]
            lines.append(f"- Newton end to end faster than JAX ({e['mode']} threads): {bar(x > 1)} ({x:.1f}×).")
    lines += rosenbrock_bars(r["rosenbrock"])
    lines += [""] + classic_markdown(r["classic"]) + [""] + large_markdown(r["large"])
    lines += mlp_trust_markdown(r.get("mlp_trust"))
    lines += [""] + nist_markdown(r.get("nist", []))
    lines += [""] + mlp_markdown(r.get("mlp", []))
    lines += ["", versions_line(r["versions"])]
    return "\n".join(lines) + "\n"


def rosenbrock_markdown(rows):
    lines = ["**4. Rosenbrock from (−1.2, 1)**, exact derivatives, ‖∇f‖ ≤ 1e-8.", "",
             "| hessforge | iterations | SciPy | iterations | final ‖∇f‖∞ (hessforge / SciPy) | time (hessforge / SciPy) |",
             "|---|---:|---|---:|---:|---:|"]
    for e in rows:
        h, s = e["hessforge"], e["scipy"]
        lines.append(f"| {h['method']} | {h['iterations']} | {s['method']} | {s['iterations']} | "
                     f"{h['grad_norm']:.1e} / {s['grad_norm']:.1e} | {fmt_s(h['seconds'])} / {fmt_s(s['seconds'])} |")
    return lines


def rosenbrock_bars(rows):
    return [f"- Rosenbrock, {e['hessforge']['method']} vs {e['scipy']['method']}: same or fewer iterations "
            f"{bar(e['hessforge']['iterations'] <= e['scipy']['iterations'])} "
            f"({e['hessforge']['iterations']} vs {e['scipy']['iterations']})." for e in rows]


def versions_line(v):
    return "Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + "."


if __name__ == "__main__":
    main()
