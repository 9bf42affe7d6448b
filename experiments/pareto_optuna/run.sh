#!/usr/bin/env bash
# Reruns the pareto_optuna study: 12 Optuna (MOTPE) trials, test accuracy up and training
# energy down, over model family × width × rank × density (~3 min on 1 core).
# Everything goes to outputs/experiments/pareto_optuna/ (runs/, report/, results.md, trials.png,
# optimization_results.yaml); the committed copy in experiments/pareto_optuna/ changes only
# through `make studies`.
# Run from the repository root: bash experiments/pareto_optuna/run.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=outputs/experiments/pareto_optuna
rm -rf "$OUT"  # a rerun into old job dirs would append to their curve.csv

"$PY" -m frugal.train -m hparams_search=pareto_optuna hydra.sweep.dir="$OUT/runs"
cp "$OUT/runs/optimization_results.yaml" "$OUT/optimization_results.yaml"
"$PY" -m frugal.report "$OUT/runs" -o "$OUT/report"
"$PY" experiments/pareto_optuna/summarize.py "$OUT/report/runs.csv" --plot "$OUT/trials.png" \
  > "$OUT/results.md"
cat "$OUT/results.md"
