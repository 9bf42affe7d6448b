"""The MNIST-1D paper's table next to ours, from frugal-report's runs.csv.

python experiments/mnist1d_table/summarize.py experiments/mnist1d_table/report/runs.csv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from frugal.core.units import format_amount

# Greydanus 2020, "Scaling down deep learning", table of baselines (test accuracy).
PAPER_ACC = {"logreg": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}


def number(text: str) -> float | None:
    return float(text) if text else None


def main(runs_csv: Path) -> None:
    with runs_csv.open(newline="") as file:
        runs = {row["model"]: row for row in csv.DictReader(file)}
    print(
        "| model | paper test acc | our test acc | params | steps | training energy "
        "(codecarbon estimate) | training FLOPs | time |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for model, paper in PAPER_ACC.items():
        run = runs.get(model)
        if run is None:
            print(f"| {model} | {paper:.0%} | not run | | | | | |")
            continue
        acc = number(run["test_acc"])
        print(
            f"| {model} | {paper:.0%} | {acc:.1%} | {int(float(run['params'])):,} "
            f"| {int(float(run['steps'])):,} | {format_amount(number(run['energy_j']), 'J')} "
            f"| {format_amount(number(run['compute_flop']), 'FLOP')} "
            f"| {float(run['time_s']):.0f} s |"
        )
    methods = sorted(
        {f"{r['energy_method']} (measured: {r['energy_measured']})" for r in runs.values()}
    )
    print(f"\nEnergy: {', '.join(methods)}.")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
