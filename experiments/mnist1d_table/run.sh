#!/usr/bin/env bash
# Regenerates experiments/mnist1d_table: 4 models × 1 seed, 6,000 steps each (~5 min on 1 core).
# Run from the repository root: bash experiments/mnist1d_table/run.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-outputs/experiments/mnist1d_table}
HERE=experiments/mnist1d_table
rm -rf "$RUNS"  # a rerun into old job dirs would append to their curve.csv

"$PY" -m frugal.train -m experiment=mnist1d_table model=logreg,mlp,cnn,gru \
  hydra.sweep.dir="$RUNS"
"$PY" -m frugal.report "$RUNS" -o "$HERE/report"
"$PY" "$HERE/summarize.py" "$HERE/report/runs.csv" > "$HERE/results.md"
cat "$HERE/results.md"
