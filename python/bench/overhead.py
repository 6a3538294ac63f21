"""What a call from Python adds to a kernel pass: `m.loss(theta, X, y)` on
logistic regression's 569 embedded rows, timed from Python (median of 50
batches of 200 calls), against the same pass timed in Rust
(`Model._raw._loss_pass_seconds`, the median of 20 000 calls). Run it in
an environment where the package is built in release mode
(`pip install ./python`); numbers go to docs/src/results/python.md.
"""

import statistics
import time

import hessforge as hf

m = hf.model("logistic_regression")
X, y = hf.data("logistic_regression")
theta = m.start
for _ in range(2000):
    m.loss(theta, X, y)
batches = []
for _ in range(50):
    start = time.perf_counter_ns()
    for _ in range(200):
        m.loss(theta, X, y)
    batches.append((time.perf_counter_ns() - start) / 200 / 1e3)
call = statistics.median(batches)
alone = m._raw._loss_pass_seconds(theta, X, y, repeats=20_000) * 1e6
print(f"m.loss from Python: {call:.2f} µs; the pass alone in Rust: {alone:.2f} µs; "
      f"overhead {call - alone:.2f} µs (rows {X.shape[0]}, backend {m.backend})")
