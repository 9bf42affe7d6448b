#!/usr/bin/env bash
# Reruns the frugal_vs_dense study: 7 variants × 3 seeds on MNIST-1D, one training process at a
# time (~16 min on this shared 2-core machine at STEPS=4000). Everything goes to
# outputs/experiments/frugal_vs_dense/ (runs/, report/, results.md, lifetime.png); the committed
# copy in experiments/frugal_vs_dense/ changes only through `make studies STUDY=frugal_vs_dense`.
# Run from the repository root: bash experiments/frugal_vs_dense/run.sh
# STEPS (default 4000; the paper's horizon is 6000) is every run's horizon; SEEDS (default
# "0 1 2") the seeds, run seed by seed so that each seed's wide_cnn teacher is trained before
# its distilled student.
set -euo pipefail
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-4000}
SEEDS=${SEEDS:-0 1 2}
OUT=outputs/experiments/frugal_vs_dense
rm -rf "$OUT"  # a rerun into old run dirs would append to their curve.csv

# Same for every run: no budget cap (measure and report only), AdamW (the default), a fixed
# horizon, validation every 2 epochs (72 steps) so that "energy to reach 90 / 93 %" is resolved
# finely, tested on the best-validation checkpoint, one thread.
common=(logger=none trainer.max_steps="$STEPS" trainer.enable_progress_bar=false
  trainer.check_val_every_n_epoch=2 test_on=best threads=1)

train() {  # train <seed> <variant> <overrides...>
  local seed=$1 variant=$2
  shift 2
  echo "=== seed $seed: $variant ($*)"
  "$PY" -m frugal.train "${common[@]}" seed="$seed" "$@" hydra.run.dir="$OUT/runs/seed$seed/$variant"
}

for seed in $SEEDS; do
  train "$seed" wide_cnn model=wide_cnn  # dense, large; also the teacher of this seed's student
  train "$seed" distilled_cnn_x2 model=cnn model.kwargs.width_mult=2 distill=default \
    distill.teacher="$OUT/runs/seed$seed/wide_cnn/checkpoints/best.ckpt"
  train "$seed" cnn model=cnn  # dense, the paper's CNN
  train "$seed" wide_cnn_structured model=wide_cnn sparsity=structured  # pruned to 25 % of channels
  train "$seed" lowrank_cnn model=lowrank_cnn
  train "$seed" dsconv_cnn model=dsconv_cnn
  train "$seed" sparse_cnn model=sparse_cnn  # static masks, density 0.2: dense kernels
done

"$PY" -m frugal.report "$OUT/runs" -o "$OUT/report"
"$PY" experiments/frugal_vs_dense/summarize.py "$OUT/runs" --steps "$STEPS" \
  --plot "$OUT/lifetime.png" > "$OUT/results.md"
cat "$OUT/results.md"
