#!/usr/bin/env bash
# Reruns the size_search study (experiments/size_search/README.md): on MNIST-1D under one energy
# budget per run, which width of the paper's CNN to train?
#   grid  — every width of the ladder (5 widths × 3 seeds), each trained on the full budget;
#   auto  — model.kwargs.width_mult=auto (3 seeds): pilots within 20 % of the budget, then the
#           predicted best width with the rest;
#   sweep — a multirun of 15 configurations (5 widths × 3 learning rates) under one
#           sweep_budget.energy envelope, allocated by successive halving (hydra/sweeper=halving),
#           killed mid-way and relaunched; once per seed;
#   sweep_scratch — the same sweep (seed 0, not killed) with hydra.sweeper.warm_start=false:
#           promoted trials start from scratch (the ablation of warm starts).
# Everything goes to outputs/experiments/size_search/ (runs under runs/); the committed copy changes only through
# `make studies STUDY=size_search`. Run from the repository root. ~35 min on this 2-core machine.
# PARTS (default "grid auto sweep sweep_scratch") picks parts; BUDGET (default 400J) is each run's
# budget, ENVELOPE (default 1600J) each sweep's.
set -euo pipefail
PY=${PY:-.venv/bin/python}
BUDGET=${BUDGET:-400J}
ENVELOPE=${ENVELOPE:-1600J}
PARTS=${PARTS:-grid auto sweep sweep_scratch}
SEEDS=${SEEDS:-0 1 2}
OUT=outputs/experiments/size_search
RUNS=$OUT/runs  # run directories (not published)
mkdir -p "$RUNS"

# The same for every run: MNIST-1D, the paper's CNN family, AdamW, a cosine schedule on the
# budget's clock, a horizon no budget reaches (the energy budget decides), one thread.
common=(model=cnn scheduler=budget_cosine logger=none trainer.max_steps=1000000
  trainer.enable_progress_bar=false trainer.check_val_every_n_epoch=2 threads=1)

# The sweep: 5 widths x 3 learning rates under one envelope, by successive halving.
grid15=(-m hydra/sweeper=halving "${common[@]}" model.kwargs.width_mult=0.25,0.5,1.0,2.0,4.0
  optimizer.lr=0.003,0.01,0.03 sweep_budget.energy="$ENVELOPE")

for part in $PARTS; do
  case $part in
  grid)
    rm -rf "$RUNS/grid"
    for seed in $SEEDS; do
      for width in 0.25 0.5 1.0 2.0 4.0; do
        echo "=== grid: width $width, seed $seed"
        "$PY" -m frugal.train "${common[@]}" seed="$seed" model.kwargs.width_mult="$width" \
          budget.energy="$BUDGET" hydra.run.dir="$RUNS/grid/seed$seed/w$width"
      done
    done
    ;;
  auto)
    rm -rf "$RUNS/auto"
    for seed in $SEEDS; do
      echo "=== auto: seed $seed"
      "$PY" -m frugal.train "${common[@]}" seed="$seed" model.kwargs.width_mult=auto \
        budget.energy="$BUDGET" hydra.run.dir="$RUNS/auto/seed$seed"
    done
    ;;
  sweep)
    rm -rf "$RUNS/sweep"
    for seed in $SEEDS; do
      echo "=== sweep: seed $seed"
      sweep=("${grid15[@]}" seed="$seed" hydra.sweep.dir="$RUNS/sweep/seed$seed")
      # Killed (SIGKILL, the whole process group) 60 s in, then relaunched: it continues.
      timeout -s KILL 60 "$PY" -m frugal.train "${sweep[@]}" || echo "=== sweep killed; relaunching"
      "$PY" -m frugal.train "${sweep[@]}"
    done
    ;;
  sweep_scratch)
    rm -rf "$RUNS/sweep_scratch"
    echo "=== sweep, promoted trials from scratch: seed 0"
    "$PY" -m frugal.train "${grid15[@]}" seed=0 hydra.sweeper.warm_start=false \
      hydra.sweep.dir="$RUNS/sweep_scratch/seed0"
    ;;
  esac
done

"$PY" -m frugal.report "$RUNS" -o "$OUT/report"
"$PY" experiments/size_search/summarize.py "$RUNS" --plot "$OUT/size_search.png" > "$OUT/results.md"
cat "$OUT/results.md"
