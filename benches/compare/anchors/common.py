"""What every anchor shares: timing (median of repeats after a warm-up),
the test points both sides use, and JSON output with the versions."""

import json
import sys
import time


def timed(repeats, f):
    """Median, min, max seconds of `repeats` calls of f after one warm-up."""
    f()
    t = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        f()
        t.append(time.perf_counter() - start)
    t.sort()
    return {"median": t[len(t) // 2], "min": t[0], "max": t[-1], "repeats": len(t)}


def mlp_theta(p):
    """The parameters of the per-sample MLP measurement (as compare_side.rs)."""
    return [0.3 * ((i % 7) - 3.0) / 3.0 for i in range(p)]


MLP_X = (0.4, -0.7)
MLP_Y = 0.25


def logistic_theta():
    """θ of the kernel pass (as compare_side.rs): w_i, then b."""
    return [0.01 * (i - 5.0) for i in range(11)]


LAMBDA = 0.01  # logistic_regression's L2 constant


def emit(record, versions):
    record["versions"] = versions
    json.dump(record, sys.stdout)
    sys.stdout.write("\n")
