"""SciPy's side of comparison 4: Rosenbrock from (−1.2, 1) with Newton-CG,
trust-exact, BFGS and L-BFGS-B, exact derivatives, asked for ‖∇f‖ ≤ 1e-8
where the method takes a gradient tolerance (Newton-CG takes xtol).

usage: scipy_rosenbrock.py METHOD REPEATS
"""

import sys
import time

import numpy as np
import scipy
from scipy.optimize import minimize, rosen, rosen_der, rosen_hess

from common import emit

OPTIONS = {
    "Newton-CG": {"xtol": 1e-12},
    "trust-exact": {"gtol": 1e-8},
    "BFGS": {"gtol": 1e-8},
    "L-BFGS-B": {"gtol": 1e-8, "ftol": 0.0},
}


def main():
    method, repeats = sys.argv[1], int(sys.argv[2])
    needs_hess = method in ("Newton-CG", "trust-exact")

    def run():
        return minimize(rosen, np.array([-1.2, 1.0]), method=method, jac=rosen_der,
                        hess=rosen_hess if needs_hess else None, options=OPTIONS[method])
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    times.sort()
    emit({"task": "rosenbrock", "tool": "scipy", "method": method, "iterations": int(result.nit),
          "evaluations": {"f": int(result.get("nfev", 0)), "grad": int(result.get("njev", 0)),
                          "hess": int(result.get("nhev", 0))},
          "final_loss": float(result.fun), "grad_norm": float(np.max(np.abs(rosen_der(result.x)))),
          "success": bool(result.success),
          "seconds": {"median": times[len(times) // 2], "min": times[0], "max": times[-1]}},
         {"scipy": scipy.__version__, "numpy": np.__version__})


if __name__ == "__main__":
    main()
