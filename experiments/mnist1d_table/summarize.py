"""The MNIST-1D paper's table next to ours, from frugal-report's runs.csv.

python experiments/mnist1d_table/summarize.py experiments/mnist1d_table/report/runs.csv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

# Greydanus 2020, "Scaling down deep learning", table of baselines (test accuracy).
PAPER_ACC = {"logreg": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}


def number(text: str) -> float | None:
    return float(text) if text else None


def si(value: float | None, unit: str) -> str:
    if value is None:
        return "unknown"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


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
            f"| {int(float(run['steps'])):,} | {si(number(run['energy_j']), 'J')} "
            f"| {si(number(run['compute_flop']), 'FLOP')} | {float(run['time_s']):.0f} s |"
        )
    methods = sorted(
        {f"{r['energy_method']} (measured: {r['energy_measured']})" for r in runs.values()}
    )
    print(f"\nEnergy: {', '.join(methods)}.")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
