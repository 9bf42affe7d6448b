#!/usr/bin/env bash
# Reruns the small_vs_large study: 7 runs under one 1.5 kJ energy budget (~9 min on 1 core).
# Everything goes to outputs/experiments/small_vs_large/ (runs/, report/, results.md); the
# committed copy in experiments/small_vs_large/ changes only through `make studies`.
# Run from the repository root: bash experiments/small_vs_large/run.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=outputs/experiments/small_vs_large
rm -rf "$OUT"  # a rerun into old job dirs would append to their curve.csv

"$PY" -m frugal.train -m experiment=small_vs_large \
  model=cnn,dsconv_cnn,lowrank_cnn,sparse_cnn,wide_cnn,wide_mlp hydra.sweep.dir="$OUT/runs/models"
# dynamic sparse training of the dense CNN (RigL, 10 % density): a callback, not a model
"$PY" -m frugal.train experiment=small_vs_large sparsity=rigl hydra.run.dir="$OUT/runs/cnn_rigl"
"$PY" -m frugal.report "$OUT/runs" -o "$OUT/report"
"$PY" experiments/small_vs_large/summarize.py "$OUT/report/runs.csv" > "$OUT/results.md"
cat "$OUT/results.md"
