#!/usr/bin/env bash
# Copies a study's last outputs (outputs/experiments/<study>/, everything but runs/) over its
# committed tables and plots in experiments/<study>/. `make studies` calls it after run.sh;
# `make study-tables` calls it alone (e.g. after fixing summarize.py).
# Run from the repository root: bash experiments/publish.sh <study>
set -euo pipefail
study=${1:?usage: bash experiments/publish.sh <study>}
from=outputs/experiments/$study
to=experiments/$study
if [[ ! -f $from/results.md ]]; then
  echo "publish.sh: no $from/results.md; run bash $to/run.sh first" >&2
  exit 2
fi
(cd "$from" && find . -path ./runs -prune -o -type f -print) | while read -r file; do
  mkdir -p "$to/$(dirname "$file")"
  cp "$from/$file" "$to/$file"
  echo "$to/${file#./}"
done
