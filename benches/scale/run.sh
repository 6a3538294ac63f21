#!/usr/bin/env bash
# Data at scale: Newton on a generated logistic regression of ROWS rows × 10
# features in one Parquet file — in memory, streamed, as DataFusion queries
# on 2 partitions, as Ballista jobs on a 2-executor local cluster — and
# Spark MLlib's LogisticRegression (local[2]) on the same file as the
# outside anchor, in one run (benches/scale/harness.py says what each is).
#
#   benches/scale/run.sh                 # 10⁷ rows (829 MB; about 5 minutes on 2 cores, after the builds)
#   ROWS=1000000 benches/scale/run.sh    # a smaller file
#
# Builds hessforge and hessforge-cluster (release), writes the file with
# `hessforge sample`, creates a Python virtual environment outside the
# source tree ($HESSFORGE_SCALE_VENV, default ~/.cache/hessforge-scale/venv)
# with requirements.txt's pinned pyspark (Spark needs Java 17 or later), and
# writes results.json and results.md into $HESSFORGE_SCALE_OUT (default
# target/scale/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rows="${ROWS:-10000000}"
out="${HESSFORGE_SCALE_OUT:-$root/target/scale}"
venv="${HESSFORGE_SCALE_VENV:-$HOME/.cache/hessforge-scale/venv}"
mkdir -p "$out"
for tool in java python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 2; }
done

echo "== building hessforge and hessforge-cluster (release)"
(cd "$root" && cargo build --release --quiet --bin hessforge)
cp "$root/Cargo.lock" "$root/cluster/Cargo.lock"
(cd "$root/cluster" && CARGO_TARGET_DIR="$root/target" cargo build --release --quiet -p hessforge-cluster)

data="$out/logistic-$rows.parquet"
if [ ! -f "$data" ]; then
  echo "== writing $rows rows to $data"
  "$root/target/release/hessforge" sample logistic_regression --rows "$rows" --seed 1 -o "$data"
fi

# The Parquet bar: 2·10⁶ rows as Parquet and as CSV (the same rows).
bar="$out/logistic-2000000"
for ext in parquet csv; do
  if [ ! -f "$bar.$ext" ]; then
    echo "== writing 2000000 rows to $bar.$ext"
    "$root/target/release/hessforge" sample logistic_regression --rows 2000000 --seed 2 -o "$bar.$ext"
  fi
done

if [ ! -x "$venv/bin/python" ]; then
  echo "== creating the Python environment in $venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"

echo "== measuring"
"$venv/bin/python" "$here/harness.py" "$root/target/release/hessforge" \
  "$root/target/release/hessforge-cluster" "$data" "$out" "$bar.parquet" "$bar.csv"
