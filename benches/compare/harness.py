"""Runs hessforge and the anchors (JAX, SymPy, CasADi, NumPy, SciPy) on the
same problems, data and starting points, alternating sides round by round,
and writes results.json and results.md (the README's "How it compares").

Called by run.sh; see the README there. Every measurement is a separate
process printing one JSON object; a side's number is the median over rounds
of that process's median over repeats (after a warm-up).

usage: harness.py HESSFORGE COMPARE_SIDE DATA_DIR OUT_DIR [--smoke]
"""

import json
import os
import platform
import subprocess
import sys
import time

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
    repeats = 1 if smoke else 7
    rounds = 1 if smoke else 2
    sizes = [1000] if smoke else [1000, 100_000, 1_000_000]
    hidden = [1] if smoke else [1, 4, 16]
    modes = ["single"] if smoke else ["single", "default"]
    results = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "smoke": smoke,
               "codegen": [], "kernel_pass": [], "mlp_sample": [], "end_to_end": [], "rosenbrock": []}

    # 1. Derivation + code generation (single-threaded by nature).
    files = {1: "crates/kernels/benches/models/mlp_tanh_1.toml", 4: "derivations/mlp_tanh.toml",
             16: "crates/kernels/benches/models/mlp_tanh_16.toml"}
    for h in hidden:
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
    for mode in modes:
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
    for entry in results["mlp_sample"]:
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
    for mode in modes:
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
    for ours, theirs in pairs:
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

    results["versions"] = versions()
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(markdown(results))
    print(markdown(results))


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
    lines += ["", "**4. Rosenbrock from (−1.2, 1)**, exact derivatives, ‖∇f‖ ≤ 1e-8.", "",
              "| hessforge | iterations | SciPy | iterations | final ‖∇f‖∞ (hessforge / SciPy) | time (hessforge / SciPy) |",
              "|---|---:|---|---:|---:|---:|"]
    for e in r["rosenbrock"]:
        h, s = e["hessforge"], e["scipy"]
        lines.append(f"| {h['method']} | {h['iterations']} | {s['method']} | {s['iterations']} | "
                     f"{h['grad_norm']:.1e} / {s['grad_norm']:.1e} | {fmt_s(h['seconds'])} / {fmt_s(s['seconds'])} |")
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
    for e in r["rosenbrock"]:
        h, s = e["hessforge"], e["scipy"]
        lines.append(f"- Rosenbrock, {h['method']} vs {s['method']}: same or fewer iterations "
                     f"{bar(h['iterations'] <= s['iterations'])} ({h['iterations']} vs {s['iterations']}).")
    v = r["versions"]
    lines += ["", "Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
