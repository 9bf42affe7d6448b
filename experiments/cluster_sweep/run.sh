#!/usr/bin/env bash
# The small-vs-large sweep through Hydra's submitit launcher on this machine
# (hydra/launcher=submitit_local: every job its own process tree, as SLURM jobs would be), with
# one job pre-empted mid-run: once the job training wide_cnn has spent PREEMPT_AT_J joules,
# SIGUSR2 — the signal submitit has SLURM send before a time limit — goes to its process. The
# job stops at an agreed step (last.ckpt + ledger.json), submitit requeues it, and it resumes
# the same run under the same 1.5 kJ budget. ~4 min on 2 cores.
# Everything goes to outputs/experiments/cluster_sweep/ (runs/, report/, results.md).
# Run from the repository root: bash experiments/cluster_sweep/run.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=outputs/experiments/cluster_sweep
MODELS=${MODELS:-cnn,wide_cnn}   # the frontier of small_vs_large; any of its models work
PREEMPT_JOB=${PREEMPT_JOB:-1}    # the sweep's job number to pre-empt (1: wide_cnn)
PREEMPT_AT_J=${PREEMPT_AT_J:-400}
rm -rf "$OUT"  # a rerun into old job dirs would be refused (they hold another run's outputs)

"$PY" -m frugal.train -m hydra/launcher=submitit_local experiment=small_vs_large \
  model="$MODELS" hydra.sweep.dir="$OUT/runs" &
sweep=$!
run="$OUT/runs/$PREEMPT_JOB"

spent_at_least() {  # ledger.json is rewritten at every re-plan (every 10 steps, at most 4/s)
  "$PY" - "$run/ledger.json" "$1" <<'PY'
import json, sys
try:
    spent = json.load(open(sys.argv[1]))["spent"]["energy_j"] or 0.0
except (OSError, ValueError, KeyError, TypeError):
    spent = 0.0
sys.exit(0 if spent >= float(sys.argv[2]) else 1)
PY
}
until spent_at_least "$PREEMPT_AT_J"; do
  kill -0 "$sweep" 2>/dev/null || { echo "the sweep ended before job $PREEMPT_JOB spent $PREEMPT_AT_J J" >&2; exit 1; }
  sleep 1
done
job=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["job_id"])' "$run/job.json")
task=$(pgrep -P "$job" -f submitit.core._submit)  # the job's task, child of its controller
echo "pre-empting job $PREEMPT_JOB (submitit job $job, process $task): SIGUSR2"
kill -USR2 "$task"
wait "$sweep"

"$PY" -m frugal.report "$OUT/runs" -o "$OUT/report"
"$PY" experiments/cluster_sweep/summarize.py "$OUT/report/runs.csv" "$OUT/runs" "$PREEMPT_JOB" \
  > "$OUT/results.md"
cat "$OUT/results.md"
