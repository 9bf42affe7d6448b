#!/usr/bin/env bash
# Regenerates experiments/small_vs_large: 7 runs under one 1.5 kJ energy budget (~9 min on 1 core).
# Run from the repository root: bash experiments/small_vs_large/run.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-outputs/experiments/small_vs_large}
HERE=experiments/small_vs_large
rm -rf "$RUNS"  # a rerun into old job dirs would append to their curve.csv

"$PY" -m frugal.train -m experiment=small_vs_large \
  model=cnn,dsconv_cnn,lowrank_cnn,sparse_cnn,wide_cnn,wide_mlp hydra.sweep.dir="$RUNS/models"
# dynamic sparse training of the dense CNN (RigL, 10 % density): a callback, not a model
"$PY" -m frugal.train experiment=small_vs_large sparsity=rigl hydra.run.dir="$RUNS/cnn_rigl"
"$PY" -m frugal.report "$RUNS" -o "$HERE/report"
"$PY" "$HERE/summarize.py" "$HERE/report/runs.csv" > "$HERE/results.md"
cat "$HERE/results.md"
