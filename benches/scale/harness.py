"""Newton on a large Parquet file four ways, and Spark MLlib on the same
file: the measurements of docs/src/results/data.md ("Data at scale").

    python harness.py HESSFORGE HESSFORGE_CLUSTER DATA.parquet OUT_DIR [BAR.parquet BAR.csv]

Runs, one after the other on this machine, each under /usr/bin/time
(elapsed seconds, peak resident set):

1. `hessforge run --in-memory`   — the file read whole into memory;
2. `hessforge run`               — every pass streams the file;
3. `hessforge-cluster fit --partitions 2` — every pass a DataFusion query;
4. `hessforge-cluster fit --scheduler …`  — every pass a Ballista job, on a
   scheduler and two executors (one task each) started here on 127.0.0.1;
5. Spark MLlib's LogisticRegression on `local[2]` (spark_anchor.py), whose
   coefficients hessforge then evaluates (`--max-iters 0`): the loss and
   ‖∇L‖∞ of Spark's answer on hessforge's objective.

Every hessforge fit is Newton to ‖∇L‖∞ ≤ 1e-8 from zeros. With BAR.parquet
and BAR.csv (the same rows), also the Parquet bar: Newton streamed on the
Parquet file against the CSV file in memory, their losses and peak memory.
Writes results.json and results.md into OUT_DIR.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = "logistic_regression"
LAMBDA = 0.01
FEATURES = 10


def timed(args, out_path):
    """Run args under /usr/bin/time; (stdout, seconds, peak MB, exit code)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        done = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", t.name, *args],
                              capture_output=True, text=True)
        elapsed, kb = t.read().split()[-2:]
    with open(out_path, "w") as f:
        f.write(done.stdout)
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout, float(elapsed), int(kb) / 1024, done.returncode


def fit_row(name, stdout, wall, peak):
    r = json.loads(stdout)
    return {"way": name, "status": r["status"], "iterations": r["iterations"],
            "fit_seconds": r["seconds"], "wall_seconds": wall, "peak_mb": peak,
            "final_loss": r["final_loss"], "grad_norm": r["grad_norm"], "theta": r["theta"]}


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_port(port, within=60):
    start = time.time()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() - start > within:
                sys.exit(f"nothing listens on {port}")
            time.sleep(0.1)


def high_water_mb(time_pid):
    """VmHWM of the process /usr/bin/time (pid time_pid) runs, in MB."""
    with open(f"/proc/{time_pid}/task/{time_pid}/children") as f:
        child = f.read().split()[0]
    with open(f"/proc/{child}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cluster_run(cluster, data, out):
    """A scheduler and two executors on 127.0.0.1, the fit, then the
    executors stopped (SIGTERM) for their peak memory."""
    ports = free_ports(5)
    procs, timings = [], []
    try:
        scheduler = f"127.0.0.1:{ports[0]}"
        t = tempfile.NamedTemporaryFile("r", suffix=".time", delete=False)
        procs.append(subprocess.Popen(["/usr/bin/time", "-f", "%e %M", "-o", t.name,
                                       cluster, "scheduler", "--bind", scheduler],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        timings.append(t.name)
        wait_port(ports[0])
        for k in range(2):
            data_port, task_port = ports[1 + 2 * k], ports[2 + 2 * k]
            t = tempfile.NamedTemporaryFile("r", suffix=".time", delete=False)
            procs.append(subprocess.Popen(
                ["/usr/bin/time", "-f", "%e %M", "-o", t.name, cluster, "executor",
                 "--scheduler", scheduler, "--bind", f"127.0.0.1:{data_port}",
                 "--grpc-port", str(task_port), "--concurrent-tasks", "1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            timings.append(t.name)
            wait_port(data_port)
            wait_port(task_port)
        time.sleep(6)  # registered by a heartbeat
        stdout, wall, peak, _ = timed(
            [cluster, "fit", MODEL, "--data", data, "--optimizer", "newton", "--partitions", "2",
             "--scheduler", scheduler, "--init", "zeros", "--tol", "1e-8", "--json"],
            os.path.join(out, "ballista.json"))
        # The peak resident set of each server (the child of its
        # /usr/bin/time), read before they are stopped.
        peaks = [high_water_mb(p.pid) for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
        for name in timings:
            os.unlink(name)
    row = fit_row("Ballista, 2 executors", stdout, wall, peak)
    row["scheduler_peak_mb"], row["executor_peak_mb"] = peaks[0], peaks[1:]
    return row


def main():
    hessforge, cluster, data, out = sys.argv[1:5]
    os.makedirs(out, exist_ok=True)
    newton = ["--optimizer", "newton", "--init", "zeros", "--tol", "1e-8", "--json"]
    rows = []
    for name, args, file in [
        ("in memory", [hessforge, "run", MODEL, "--data", data, "--in-memory", *newton], "memory.json"),
        ("streamed", [hessforge, "run", MODEL, "--data", data, *newton], "streamed.json"),
        ("DataFusion, 2 partitions",
         [cluster, "fit", MODEL, "--data", data, "--partitions", "2", *newton], "datafusion.json"),
    ]:
        print(f"== {name}", file=sys.stderr)
        stdout, wall, peak, _ = timed(args, os.path.join(out, file))
        rows.append(fit_row(name, stdout, wall, peak))
    print("== Ballista", file=sys.stderr)
    rows.append(cluster_run(cluster, data, out))

    print("== Spark MLlib", file=sys.stderr)
    stdout, wall, peak, _ = timed([sys.executable, os.path.join(HERE, "spark_anchor.py"),
                                   data, str(LAMBDA), str(FEATURES)], os.path.join(out, "spark.json"))
    spark = json.loads(stdout.strip().splitlines()[-1])
    # Spark's answer on hessforge's objective.
    check, _, _, _ = timed([hessforge, "run", MODEL, "--data", data, "--optimizer", "newton",
                            "--init", ",".join(repr(v) for v in spark["theta"]), "--max-iters", "0",
                            "--json"], os.path.join(out, "spark-checked.json"))
    checked = json.loads(check)
    spark.update({"wall_seconds": wall, "peak_mb": peak,
                  "loss_by_hessforge": checked["final_loss"],
                  "grad_norm_by_hessforge": checked["grad_norm"]})

    best = rows[0]["theta"]
    for r in rows:
        r["max_theta_difference"] = max(abs(a - b) for a, b in zip(r["theta"], best))
    machine = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                             capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "cores": os.cpu_count(),
              "commit": commit, "data": data, "hessforge": rows, "spark": spark}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    lines = [f"{result['date']}, {machine}, {os.cpu_count()} cores, commit `{commit}`.", "",
             "| way | iterations | fit | wall | peak | L(θ) | ‖∇L‖∞ | max |θ − θ_memory| |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['way']} | {r['iterations']} | {r['fit_seconds']:.2f} s | "
                     f"{r['wall_seconds']:.2f} s | {r['peak_mb']:.0f} MB | {r['final_loss']:.12f} | "
                     f"{r['grad_norm']:.1e} | {r['max_theta_difference']:.1e} |")
    lines.append(f"| Spark MLlib {spark['version']} `local[2]` | {spark['iterations']} | "
                 f"{spark['seconds']:.2f} s | {spark['wall_seconds']:.2f} s | {spark['peak_mb']:.0f} MB | "
                 f"{spark['loss_by_hessforge']:.12f} | {spark['grad_norm_by_hessforge']:.1e} | "
                 f"{max(abs(a - b) for a, b in zip(spark['theta'], best)):.1e} |")
    if len(sys.argv) > 6:
        print("== the Parquet bar", file=sys.stderr)
        bar = []
        for name, path in [("Parquet, streamed", sys.argv[5]), ("CSV, in memory", sys.argv[6])]:
            stdout, wall, peak, _ = timed([hessforge, "run", MODEL, "--data", path, *newton],
                                          os.path.join(out, f"bar-{os.path.basename(path)}.json"))
            bar.append(fit_row(name, stdout, wall, peak))
        result["parquet_bar"] = bar
        lines += ["", "The Parquet bar (Newton to ‖∇L‖∞ ≤ 1e-8):", "",
                  "| data | iterations | wall | peak | L(θ) |", "|---|---|---|---|---|"]
        for r in bar:
            lines.append(f"| {r['way']} | {r['iterations']} | {r['wall_seconds']:.2f} s | "
                         f"{r['peak_mb']:.0f} MB | {r['final_loss']!r} |")
        lines.append(f"\n|ΔL| = {abs(bar[0]['final_loss'] - bar[1]['final_loss']):.1e}.")
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(result, f, indent=2)
    b = rows[3]
    lines += ["", f"Ballista: scheduler peak {b['scheduler_peak_mb']:.0f} MB, executors "
              + ", ".join(f"{m:.0f} MB" for m in b["executor_peak_mb"]) + " (the fit's client above)."]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
