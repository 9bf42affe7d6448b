"""One energy budget, seven models: the result table from frugal-report's runs.csv.

python experiments/small_vs_large/summarize.py experiments/small_vs_large/report/runs.csv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from frugal.core.units import format_amount


def number(text: str) -> float | None:
    return float(text) if text else None


def name(row: dict[str, str]) -> str:
    """The model, plus the sparse-training callback when one was used."""
    sparsity = [o.split("=", 1)[1] for o in row["overrides"].split() if o.startswith("sparsity=")]
    return f"{row['model']} + {sparsity[0]}" if sparsity else row["model"]


def main(runs_csv: Path) -> None:
    with runs_csv.open(newline="") as file:
        rows = list(csv.DictReader(file))
    rows.sort(key=lambda row: -(number(row["test_acc"]) or 0.0))
    print(
        "| frontier | model | status | steps | test acc | energy (est.) | training FLOPs "
        "| params (stored) | params (effective) | time |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        status = row["status"] + (f" ({row['stopped_by']})" if row["stopped_by"] else "")
        print(
            f"| {'★' if row['on_frontier'] == 'true' else ''} | {name(row)} | {status} "
            f"| {int(float(row['steps'])):,} | {float(row['test_acc']):.1%} "
            f"| {format_amount(number(row['energy_j']), 'J')} "
            f"| {format_amount(number(row['compute_flop']), 'FLOP')} "
            f"| {int(float(row['params'])):,} | {int(float(row['params_effective'])):,} "
            f"| {float(row['time_s']):.0f} s |"
        )
    methods = sorted({f"{r['energy_method']} (measured: {r['energy_measured']})" for r in rows})
    print(f"\n{len(rows)} runs; energy: {', '.join(methods)}.")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
