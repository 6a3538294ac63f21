#!/usr/bin/env bash
# hessforge against the tools people use today (JAX, SymPy, CasADi, NumPy,
# SciPy), on the same problems, data and starting points, in one run.
#
#   benches/compare/run.sh            # the full comparison (about 15 minutes on 2 cores)
#   benches/compare/run.sh --smoke    # smallest sizes, one repeat: checks the plumbing
#   benches/compare/run.sh --only rosenbrock  # comparison 4 alone (Rosenbrock, ~1 minute)
#   benches/compare/run.sh --only classic   # comparison 5 alone (the classic problems, ~5 minutes)
#   benches/compare/run.sh --only large     # comparison 6 alone (Newton at large P, ~10 minutes)
#   benches/compare/run.sh --only nist      # comparison 7 alone (NIST StRD, ~2 minutes)
#   benches/compare/run.sh --only mlp       # comparison 8 alone (tanh MLPs, ~8 minutes)
#
# Builds hessforge (release) and its measuring binary, creates a Python
# virtual environment outside the source tree ($HESSFORGE_COMPARE_VENV,
# default ~/.cache/hessforge-compare/venv) with the pinned versions of
# requirements.txt, writes the data, runs both sides alternately and writes
# results.json and results.md into $HESSFORGE_COMPARE_OUT (default
# target/compare/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
smoke=""
only=""
case "${1:-}" in
  --smoke) smoke="--smoke" ;;
  --only) only="--only ${2:?--only takes a section: rosenbrock, classic, large, nist or mlp}" ;;
  "") ;;
  *) echo "run.sh: unknown argument $1 (--smoke, --only rosenbrock|classic|large|nist|mlp)" >&2; exit 2 ;;
esac

venv="${HESSFORGE_COMPARE_VENV:-$HOME/.cache/hessforge-compare/venv}"
out="${HESSFORGE_COMPARE_OUT:-$root/target/compare}"
data="$out/data"
mkdir -p "$data"

for tool in gcc taskset python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 2; }
done

echo "== building hessforge and compare_side (release)"
(cd "$root" && cargo build --release --quiet --bin hessforge \
  && cargo build --release --quiet --features bench-models --example compare_side)

if [ ! -x "$venv/bin/python" ]; then
  echo "== creating the Python environment in $venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"

if [ -n "$smoke" ]; then sizes="1000"; else sizes="1000 100000 1000000"; fi
echo "== data: logistic regression, N = $sizes"
[ -z "$only" ] && "$venv/bin/python" "$here/anchors/make_data.py" "$data" $sizes

echo "== measuring (both sides alternately)"
"$venv/bin/python" "$here/harness.py" "$root/target/release/hessforge" \
  "$root/target/release/examples/compare_side" "$data" "$out" $smoke $only
echo "== wrote its results.json and results.md (results-SECTION.* with --only SECTION) into $out"
