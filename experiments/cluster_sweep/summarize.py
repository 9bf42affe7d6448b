"""The cluster sweep's tables: every job from frugal-report's runs.csv, then the pre-empted
job's two segments from its run directory and its submitit log.

python experiments/cluster_sweep/summarize.py <report>/runs.csv <sweep dir> <pre-empted job number>
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

from frugal.core.units import format_amount


def number(text: str) -> float | None:
    return float(text) if text else None


def runs_table(runs_csv: Path) -> None:
    with runs_csv.open(newline="") as file:
        rows = sorted(csv.DictReader(file), key=lambda row: row["run_dir"])
    print("| job | model | status | steps | test acc | energy (est.) | training FLOPs | time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        status = row["status"] + (f" ({row['stopped_by']})" if row["stopped_by"] else "")
        job = Path(row["run_dir"]).name
        print(
            f"| {job} | {row['model']} | {status} | {int(float(row['steps'])):,} "
            f"| {float(row['test_acc']):.1%} | {format_amount(number(row['energy_j']), 'J')} "
            f"| {format_amount(number(row['compute_flop']), 'FLOP')} "
            f"| {float(row['time_s']):.0f} s |"
        )
    methods = sorted({f"{r['energy_method']} (measured: {r['energy_measured']})" for r in rows})
    print(f"\n{len(rows)} jobs; energy: {', '.join(methods)}.")


def preempted(sweep: Path, job: str) -> None:
    run = sweep / job
    result = json.loads((run / "result.json").read_text())
    ledger = json.loads((run / "ledger.json").read_text())
    job_id = json.loads((run / "job.json").read_text())["job_id"]
    logs = sorted(sweep.glob(f".submitit/{job_id}/*_log.*"))
    log = "".join(p.read_text(errors="replace") for p in logs)
    stop = re.search(r"interrupted: (\S+) received; stopped at step (\d+)", log)
    spent, steps = result["spent"], result["steps"]
    print(f"\nJob {job} ({result['model']['name']}, submitit job {job_id}), from its log:\n")
    # In the order they happen (frugal's lines are in the .err log, submitit's in the .out).
    for event in ("interrupted: ", "Requeued job", "requeued job", "budget_exhausted: "):
        found = re.search(rf"INFO: ({event}.*)", log)
        if found:
            print(f"    {found[1].replace(f'{Path.cwd()}/', '')}")  # paths from the checkout
    stopped = f"{stop[2]} ({stop[1]})" if stop else "?"
    if stop:  # what segment 1 had spent when it stopped: its closing row of curve.csv
        with (run / "curve.csv").open(newline="") as file:
            rows = {row["step"]: row for row in csv.DictReader(file)}
        at_stop = number(rows.get(stop[2], {}).get("energy_j", ""))
        stopped += f", {format_amount(at_stop, 'J')} spent"
    limit_j = result["budget"]["energy_j"]
    energy = f"{format_amount(spent['energy_j'], 'J')} / {format_amount(limit_j, 'J')}"
    margin = result["energy"].get("estimate_margin") or 0.0
    print(
        "\n| segments | segment 1 stopped at | steps | status | energy spent / budget "
        "| samples | samples per step |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {ledger['segments']} | {stopped} | {steps:,} "
        f"| {result['status']} ({result['stopped_by']}) | {energy} (margin {margin:.0%}) "
        f"| {spent['data_samples']:,.0f} | {spent['data_samples'] / steps:.0f} |"
    )


if __name__ == "__main__":
    runs_table(Path(sys.argv[1]))
    preempted(Path(sys.argv[2]), sys.argv[3])
