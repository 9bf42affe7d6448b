#!/usr/bin/env bash
# Reruns the budgeted_schedules study (~30 min on 1 core):
#   grid:  4 schedules × 4 compute budgets (10/25/50/100 % of 6,000 CNN steps) × 3 seeds = 48 runs
#   probe: peak LR (Adam 3e-3, 3e-2; 1e-2 is the grid's) and SGD+momentum (3e-2, 1e-1) at 25 %,
#          linear decay vs constant, 3 seeds each = 24 runs
#   peak LR 3e-2 at 10/50/100 %: linear decay vs constant, 3 seeds = 18 runs
# Everything goes to outputs/experiments/budgeted_schedules/ (runs/, report/, results.md,
# summary.csv, schedules.png); the committed copy in experiments/budgeted_schedules/ changes only
# through `make studies`.
# Run from the repository root: bash experiments/budgeted_schedules/run.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=outputs/experiments/budgeted_schedules
RUNS="$OUT/runs"
rm -rf "$OUT"  # a rerun into old job dirs would append to their curve.csv

QUARTER=27.8625GFLOP  # 25 % of 111.45 GFLOP: 1,500 steps

# The grid lives in conf/experiment/budgeted_schedules.yaml (hydra.sweeper.params).
"$PY" -m frugal.train -m experiment=budgeted_schedules hydra.sweep.dir="$RUNS/grid/decay"
"$PY" -m frugal.train -m experiment=budgeted_schedules '~hydra.sweeper.params.scheduler' \
  hydra.sweep.dir="$RUNS/grid/constant"

# Why would linear decay lose to constant LR at 25 %? Peak LR and optimizer, 3 seeds each.
"$PY" -m frugal.train -m experiment=budgeted_schedules budget.compute=$QUARTER \
  optimizer.lr=0.003,0.03 hydra.sweeper.params.scheduler=budget_linear \
  hydra.sweep.dir="$RUNS/probe/adam_linear"
"$PY" -m frugal.train -m experiment=budgeted_schedules budget.compute=$QUARTER \
  optimizer.lr=0.003,0.03 '~hydra.sweeper.params.scheduler' \
  hydra.sweep.dir="$RUNS/probe/adam_constant"
"$PY" -m frugal.train -m experiment=budgeted_schedules budget.compute=$QUARTER \
  optimizer=sgd optimizer.lr=0.03,0.1 hydra.sweeper.params.scheduler=budget_linear \
  hydra.sweep.dir="$RUNS/probe/sgd_linear"
"$PY" -m frugal.train -m experiment=budgeted_schedules budget.compute=$QUARTER \
  optimizer=sgd optimizer.lr=0.03,0.1 '~hydra.sweeper.params.scheduler' \
  hydra.sweep.dir="$RUNS/probe/sgd_constant"

# The probe's best peak LR for linear decay (3e-2), linear vs constant at the other budgets.
OTHER="{seed:'0,1,2',budget.compute:'11.145GFLOP,55.725GFLOP,111.45GFLOP'}"  # 25 %: the probe
"$PY" -m frugal.train -m experiment=budgeted_schedules optimizer.lr=0.03 \
  "hydra.sweeper.params=$OTHER" hydra.sweeper.params.scheduler=budget_linear \
  hydra.sweep.dir="$RUNS/peak_lr_0.03/linear"
"$PY" -m frugal.train -m experiment=budgeted_schedules optimizer.lr=0.03 \
  '~hydra.sweeper.params.scheduler' "hydra.sweeper.params=$OTHER" \
  hydra.sweep.dir="$RUNS/peak_lr_0.03/constant"

# 90 labelled runs are unreadable in frugal-report's plots: schedules.png is this study's plot
"$PY" -m frugal.report "$RUNS" -o "$OUT/report" --no-plots
"$PY" experiments/budgeted_schedules/summarize.py "$OUT/report/runs.csv" "$RUNS" --out "$OUT" \
  > "$OUT/results.md"
cat "$OUT/results.md"
