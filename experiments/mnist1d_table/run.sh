#!/usr/bin/env bash
# Reruns the mnist1d_table study: 4 models × 1 seed, 6,000 steps each (~5 min on 1 core).
# Everything goes to outputs/experiments/mnist1d_table/ (runs/, report/, results.md); the
# committed copy in experiments/mnist1d_table/ changes only through `make studies`.
# Run from the repository root: bash experiments/mnist1d_table/run.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=outputs/experiments/mnist1d_table
rm -rf "$OUT"  # a rerun into old job dirs would append to their curve.csv

"$PY" -m frugal.train -m experiment=mnist1d_table model=logreg,mlp,cnn,gru \
  hydra.sweep.dir="$OUT/runs"
"$PY" -m frugal.report "$OUT/runs" -o "$OUT/report"
"$PY" experiments/mnist1d_table/summarize.py "$OUT/report/runs.csv" > "$OUT/results.md"
cat "$OUT/results.md"
