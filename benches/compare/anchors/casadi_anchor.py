"""CasADi's side of comparisons 1 and 2 for mlp_tanh with H hidden units:
SX `hessian`, the Function (CasADi's expression graph sorted into an
algorithm), `generate` of C; the operation count of that algorithm; then the
generated C compiled with -O3 -march=native and timed per sample by a small
C driver.

usage: casadi_anchor.py H REPEATS WORK_DIR
"""

import json
import os
import subprocess
import sys
import time

import casadi as ca

from common import MLP_X, MLP_Y, emit, mlp_theta

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "mlp.h"
#define CALLS 100000
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void* a, const void* b) { double d = *(const double*)a - *(const double*)b; return (d > 0) - (d < 0); }
int main(int argc, char** argv) {
  int repeats = atoi(argv[1]);
  casadi_int n_arg, n_res, n_iw, n_w;
  mlp_work(&n_arg, &n_res, &n_iw, &n_w);
  double theta[P], x[2] = {X0, X1}, y = Y, loss, g[P], h[P * P];
  for (int i = 0; i < P; i++) theta[i] = 0.3 * ((i % 7) - 3.0) / 3.0;
  const double** arg = calloc(n_arg > 3 ? n_arg : 3, sizeof *arg);
  double** res = calloc(n_res > 3 ? n_res : 3, sizeof *res);
  casadi_int* iw = calloc(n_iw + 1, sizeof *iw);
  double* w = calloc(n_w + 1, sizeof *w);
  arg[0] = theta; arg[1] = x; arg[2] = &y; res[0] = &loss; res[1] = g; res[2] = h;
  double* t = calloc(repeats + 1, sizeof *t);
  for (int r = -1; r < repeats; r++) {
    double start = now();
    for (int k = 0; k < CALLS; k++) {
      mlp(arg, res, iw, w, 0);
      __asm__ volatile("" : : "r"(theta), "r"(g), "r"(h) : "memory");
    }
    if (r >= 0) t[r] = (now() - start) / CALLS;
  }
  qsort(t, repeats, sizeof *t, cmp);
  printf("{\"median\": %.6e, \"min\": %.6e, \"max\": %.6e, \"loss\": %.17g}\n", t[repeats / 2], t[0], t[repeats - 1], loss);
  return 0;
}
"""


def main():
    h, repeats, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    p = 4 * h + 1
    theta = ca.SX.sym("theta", p)
    x = ca.SX.sym("x", 2)
    y = ca.SX.sym("y")
    yhat = sum(theta[3 * h + i] * ca.tanh(theta[2 * i] * x[0] + theta[2 * i + 1] * x[1] + theta[2 * h + i])
               for i in range(h)) + theta[4 * h]
    loss = (yhat - y) ** 2 / 2
    runs = []
    os.makedirs(work, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            hess, grad = ca.hessian(loss, theta)
            t1 = time.perf_counter()
            f = ca.Function("mlp", [theta, x, y], [loss, grad, hess])
            t2 = time.perf_counter()
            f.generate("mlp.c", {"with_header": True})
            t3 = time.perf_counter()
            runs.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
        skip = {ca.OP_INPUT, ca.OP_OUTPUT, ca.OP_CONST, ca.OP_PARAMETER}
        operations = sum(1 for k in range(f.n_instructions()) if f.instruction_id(k) not in skip)
        with open("driver.c", "w") as out:
            out.write(DRIVER)
        subprocess.run(["gcc", "-O3", "-march=native", f"-DP={p}", f"-DX0={MLP_X[0]}", f"-DX1={MLP_X[1]}",
                        f"-DY={MLP_Y}", "mlp.c", "driver.c", "-o", "driver", "-lm"], check=True)
        per_sample = json.loads(subprocess.run(["./driver", str(max(1, repeats) * 5)], check=True,
                                               capture_output=True, text=True).stdout)
    finally:
        os.chdir(cwd)
    # The same loss evaluated by CasADi's virtual machine: the C agrees.
    reference = float(f(mlp_theta(p), list(MLP_X), MLP_Y)[0])

    def stat(k):
        t = sorted(r[k] for r in runs)
        return {"median": t[len(t) // 2], "min": t[0], "max": t[-1], "repeats": len(t)}

    emit({"task": "codegen+mlp-sample", "tool": "casadi", "params": p, "operations": operations,
          "derive_s": stat(0), "function_s": stat(1), "emit_s": stat(2), "total_s": stat(3),
          "seconds_per_sample": {k: per_sample[k] for k in ("median", "min", "max")},
          "loss": per_sample["loss"], "loss_reference": reference,
          "compiler": subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]},
         {"casadi": ca.__version__})


if __name__ == "__main__":
    main()
