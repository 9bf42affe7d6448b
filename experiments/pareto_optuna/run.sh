#!/usr/bin/env bash
# Regenerates experiments/pareto_optuna: 12 Optuna (MOTPE) trials, test accuracy up and
# training energy down, over model family × width × rank × density (~3 min on 1 core).
# Run from the repository root: bash experiments/pareto_optuna/run.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-outputs/experiments/pareto_optuna}
HERE=experiments/pareto_optuna
rm -rf "$RUNS"  # a rerun into old job dirs would append to their curve.csv

"$PY" -m frugal.train -m hparams_search=pareto_optuna hydra.sweep.dir="$RUNS"
cp "$RUNS/optimization_results.yaml" "$HERE/optimization_results.yaml"
"$PY" -m frugal.report "$RUNS" -o "$HERE/report"
"$PY" "$HERE/summarize.py" "$HERE/report/runs.csv" --plot "$HERE/trials.png" > "$HERE/results.md"
cat "$HERE/results.md"
