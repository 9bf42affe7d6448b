"""How precisely budgets hold: random budgets in each dimension, each run to its stop.

For compute, data, time and energy, `--n` budgets are drawn at random (seeded) between 5 % and
80 % of what the default job (`frugal-train`: MNIST-1D, the CNN, 6,000 steps) spends in that
dimension, measured once first (or read from `--reference result.json`). Each budget runs as a
fresh `frugal-train budget.<key>=<value>` process; energy runs add `scheduler=budget_linear
logger=csv trainer.log_every_n_steps=1` so that the logged LR can be checked (never increases,
ends within 2 % of 0 relative to its first value). Per dimension: the overshoot `spent - limit`
(negative = under) in units and in steps (÷ the run's own mean cost per step), and the share of
runs with spent <= limit. Prints markdown tables and writes a JSON and a txt log to
benchmarks/results/.

    python benchmarks/budget_precision.py [--n 10] [--seed 0] [--dims compute,data,time,energy]
        [--energy-range 40 400] [--steps N] [--reference result.json] [-- extra overrides]
    python benchmarks/budget_precision.py --render benchmarks/results/budget_precision.json

Time and energy are measured, so on a busy machine their figures move with the load; the log
records the load average before and after. Energy from codecarbon (`cpu_load`) is an estimate,
enforced `budget.estimate_margin` (10 %) short of its limit.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DIMS = {  # budget key -> (result.json spent key, unit, how a value is written on the CLI)
    "compute": ("compute_flop", "FLOP", lambda v: f"{v:.6e}"),
    "data": ("data_samples", "samples", lambda v: str(int(v))),
    "time": ("time_s", "s", lambda v: f"{v:.3f}s"),
    "energy": ("energy_j", "J", lambda v: f"{v:.2f}J"),
}
ENERGY_EXTRA = ["scheduler=budget_linear", "logger=csv", "trainer.log_every_n_steps=1"]
LR_END_RATIO = 0.02  # the last logged LR within 2 % of 0, relative to the first
EXCERPT_KEYS = ("status", "stopped_by", "message", "budget", "spent", "plan", "steps")


def frugal_train(overrides: list[str], run_dir: Path) -> tuple[int, float, str]:
    cmd = [sys.executable, "-m", "frugal.train", *overrides, f"hydra.run.dir={run_dir}"]
    start_s = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    return done.returncode, time.perf_counter() - start_s, done.stderr


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def lr_check(run_dir: Path) -> dict[str, Any]:
    """The logged LR (`csv/metrics.csv`, `lr-*` column): never increases, ends near 0."""
    path = run_dir / "csv" / "metrics.csv"
    if not path.exists():
        return {"lr_logged": False}
    with path.open() as f:
        rows = list(csv.DictReader(f))
    column = next((c for c in (rows[0].keys() if rows else []) if c.startswith("lr-")), None)
    if column is None:
        return {"lr_logged": False}
    lrs = [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]
    lrs.sort(key=lambda pair: pair[0])
    values = [lr for _, lr in lrs]
    if not values:
        return {"lr_logged": False}
    rises = [b - a for a, b in itertools.pairwise(values) if b > a * (1 + 1e-9) + 1e-15]
    end_ratio = values[-1] / values[0] if values[0] else None
    return {
        "lr_logged": True,
        "lr_points": len(values),
        "lr_first": values[0],
        "lr_last": values[-1],
        "lr_last_step": lrs[-1][0],
        "lr_increases": len(rises),
        "lr_max_increase": max(rises) if rises else 0.0,
        "lr_monotone": not rises,
        "lr_end_ratio": end_ratio,
        "lr_ends_near_0": end_ratio is not None and end_ratio <= LR_END_RATIO,
    }


def run_budget(dim: str, limit: float, extra: list[str], work: Path, index: int) -> dict[str, Any]:
    spent_key, _, fmt = DIMS[dim]
    value = fmt(limit)
    overrides = [f"budget.{dim}={value}", *(ENERGY_EXTRA if dim == "energy" else []), *extra]
    run_dir = work / f"{dim}_{index:02d}"
    code, wall_s, stderr = frugal_train(overrides, run_dir)
    record: dict[str, Any] = {
        "dim": dim,
        "index": index,
        "budget_arg": f"budget.{dim}={value}",
        "overrides": overrides,
        "exit_code": code,
        "wall_s": round(wall_s, 2),
    }
    result_path = run_dir / "result.json"
    if not result_path.exists():
        record["error"] = stderr.strip().splitlines()[-5:]
        return record
    result = json.loads(result_path.read_text())
    limit_used = result["budget"][spent_key]  # as frugal parsed it
    spent = result["spent"][spent_key]
    steps = result["steps"]
    per_step = spent / steps if spent is not None and steps else None
    record.update(
        {
            "limit": limit_used,
            "spent": spent,
            "steps": steps,
            "status": result["status"],
            "stopped_by": result["stopped_by"],
            "binding": result["stopped_by"] == dim,
            "planned_max_steps": result["plan"]["max_steps"],
            "plan_binding": result["plan"]["binding"],
            "per_step": per_step,
            "overshoot": None if spent is None else spent - limit_used,
            "overshoot_steps": None if per_step is None else (spent - limit_used) / per_step,
            "spent_over_limit": None if spent is None else spent / limit_used,
            "within_limit": spent is not None and spent <= limit_used,
            "excerpt": {k: result.get(k) for k in EXCERPT_KEYS},
        }
    )
    if dim in ("compute", "data") and per_step is not None:
        # the contract: limit - one step < spent <= limit
        record["within_one_step"] = limit_used - per_step < spent <= limit_used
    if dim == "energy":
        energy = result.get("energy") or {}
        margin = energy.get("estimate_margin") or 0.0
        poll_s = energy.get("poll_interval_s")
        time_s = result["spent"].get("time_s")
        record["energy_method"] = energy.get("method")
        record["estimate_margin"] = margin
        record["enforced_limit"] = limit_used * (1 - margin)
        if poll_s and time_s and spent is not None:
            # what the contract allows a polled source: one polling interval at mean power
            record["poll_allowance_j"] = spent / time_s * poll_s
            record["within_limit_plus_poll"] = spent <= limit_used + record["poll_allowance_j"]
        record["excerpt"]["energy"] = {
            k: energy.get(k) for k in ("method", "measured", "precision", "estimate_margin")
        }
        record.update(lr_check(run_dir))
    return record


def med_range(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):+.3g} [{min(values):+.3g}, {max(values):+.3g}]"


def summarize(dim: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in records if "spent" in r and r["spent"] is not None]
    summary: dict[str, Any] = {
        "dim": dim,
        "unit": DIMS[dim][1],
        "runs": len(records),
        "with_result": len(done),
        "binding": sum(r["binding"] for r in done),
        "within_limit": sum(r["within_limit"] for r in done),
        "share_within_limit": (sum(r["within_limit"] for r in done) / len(done)) if done else None,
        "overshoot": [r["overshoot"] for r in done],
        "overshoot_steps": [r["overshoot_steps"] for r in done],
    }
    binding = [r for r in done if r["binding"]]
    summary["overshoot_binding"] = [r["overshoot"] for r in binding]
    summary["overshoot_steps_binding"] = [r["overshoot_steps"] for r in binding]
    if dim in ("compute", "data"):
        summary["within_one_step"] = sum(bool(r.get("within_one_step")) for r in binding)
    if dim == "energy":
        summary["within_limit_plus_poll"] = sum(bool(r.get("within_limit_plus_poll")) for r in done)
        logged = [r for r in done if r.get("lr_logged")]
        summary["lr_logged"] = len(logged)
        summary["lr_monotone"] = sum(r["lr_monotone"] for r in logged)
        summary["lr_ends_near_0"] = sum(r["lr_ends_near_0"] for r in logged)
        summary["lr_end_ratio_max"] = max((r["lr_end_ratio"] for r in logged), default=None)
        # the stop itself, against the limit it enforces (estimate_margin short of the budget)
        summary["overshoot_enforced"] = [
            r["spent"] - r["enforced_limit"] for r in done if r.get("enforced_limit") is not None
        ]
        summary["overshoot_enforced_steps"] = [
            (r["spent"] - r["enforced_limit"]) / r["per_step"]
            for r in done
            if r.get("enforced_limit") is not None and r["per_step"]
        ]
    return summary


def tables(summaries: list[dict[str, Any]], records: list[dict[str, Any]]) -> str:
    lines = [
        "| dimension | runs | binding | spent ≤ limit | overshoot, units: median [min, max] "
        "| overshoot, steps: median [min, max] | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        notes = []
        if "within_one_step" in s:
            notes.append(
                f"binding runs within one step below: {s['within_one_step']}/{s['binding']}"
            )
        if s["dim"] == "energy":
            notes.append(
                f"≤ limit + 1 poll: {s['within_limit_plus_poll']}/{s['with_result']}; "
                f"against the enforced limit (limit × (1 − margin)): "
                f"{med_range(s['overshoot_enforced'])} J, "
                f"{med_range(s['overshoot_enforced_steps'])} steps; "
                f"LR never increases: {s['lr_monotone']}/{s['lr_logged']}; "
                f"LR ends ≤ 2 % of start: {s['lr_ends_near_0']}/{s['lr_logged']}"
            )
        if s["with_result"] < s["runs"]:
            notes.append(f"{s['runs'] - s['with_result']} without result.json")
        lines.append(
            f"| {s['dim']} ({s['unit']}) | {s['runs']} | {s['binding']} | "
            f"{s['within_limit']}/{s['with_result']} | {med_range(s['overshoot'])} | "
            f"{med_range(s['overshoot_steps'])} | {'; '.join(notes)} |"
        )
    lines += [
        "",
        "| run | budget | status | stopped_by | steps (planned) | spent | spent − limit "
        "| steps over | spent/limit | LR monotone, end/start | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if "spent" not in r:
            lines.append(
                f"| {r['dim']} {r['index']} | {r['budget_arg']} | exit {r['exit_code']}, "
                f"no result.json | | | | | | | | {r['wall_s']} |"
            )
            continue
        lr = "-"
        if r.get("lr_logged"):
            lr = f"{'yes' if r['lr_monotone'] else 'NO'}, {r['lr_end_ratio']:.4f}"
        lines.append(
            f"| {r['dim']} {r['index']} | {r['budget_arg']} | {r['status']} | {r['stopped_by']} | "
            f"{r['steps']} ({r['planned_max_steps']}) | {r['spent']:.6g} | "
            f"{r['overshoot']:+.4g} | {r['overshoot_steps']:+.2f} | {r['spent_over_limit']:.4f} | "
            f"{lr} | {r['wall_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="budgets per dimension")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random budgets")
    parser.add_argument("--dims", default="compute,data,time,energy")
    parser.add_argument("--low", type=float, default=0.05, help="lowest fraction of the job")
    parser.add_argument("--high", type=float, default=0.80, help="highest fraction of the job")
    parser.add_argument(
        "--energy-range",
        type=float,
        nargs=2,
        metavar=("LO_J", "HI_J"),
        help="draw energy budgets in joules between these (instead of fractions of the job)",
    )
    parser.add_argument("--steps", type=int, help="cap trainer.max_steps (reference included)")
    parser.add_argument("--reference", type=Path, help="result.json of the default job")
    parser.add_argument("--tag", default="", help="suffix of the log files' names")
    parser.add_argument("--keep", type=Path, help="keep the run directories here")
    parser.add_argument("overrides", nargs="*", help="extra frugal-train overrides (every run)")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="re-tabulate a JSON log of this script"
    )
    args = parser.parse_args()
    if args.render:
        write_logs(json.loads(args.render.read_text()), args.render.stem)
        return
    dims = [d.strip() for d in args.dims.split(",") if d.strip()]
    for dim in dims:
        if dim not in DIMS:
            parser.error(f"--dims: {dim!r} is not one of {', '.join(DIMS)}")
    extra = [*args.overrides, *([f"trainer.max_steps={args.steps}"] if args.steps else [])]

    started = time.time()
    load_before = load_average()
    work = args.keep or Path(tempfile.mkdtemp(prefix="budget_precision_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.reference:
            reference = json.loads(args.reference.read_text())
            reference_wall_s = None
        else:
            code, reference_wall_s, stderr = frugal_train(extra, work / "reference")
            if code != 0:
                sys.exit(f"the reference job failed (exit {code}):\n{stderr}")
            reference = json.loads((work / "reference" / "result.json").read_text())
        print(
            "reference: "
            + ", ".join(f"{d} {reference['spent'][DIMS[d][0]]:.6g} {DIMS[d][1]}" for d in DIMS)
            + f", {reference['steps']} steps"
            + (f", {reference_wall_s:.1f} s wall" if reference_wall_s else ""),
            flush=True,
        )
        rng = random.Random(args.seed)
        records: list[dict[str, Any]] = []
        for dim in dims:
            spent_key, unit, _ = DIMS[dim]
            if dim == "energy" and args.energy_range:
                lo, hi = args.energy_range
            else:
                total = reference["spent"][spent_key]
                lo, hi = args.low * total, args.high * total
            limits = [rng.uniform(lo, hi) for _ in range(args.n)]
            for index, limit in enumerate(limits):
                record = run_budget(dim, limit, extra, work, index)
                records.append(record)
                if "spent" in record:
                    print(
                        f"{dim} {index}: {record['budget_arg']} -> {record['status']} "
                        f"({record['stopped_by']}), {record['steps']} steps, spent "
                        f"{record['spent']:.6g} {unit} ({record['overshoot']:+.4g}, "
                        f"{record['overshoot_steps']:+.2f} steps), {record['wall_s']} s",
                        flush=True,
                    )
                else:
                    print(
                        f"{dim} {index}: {record['budget_arg']} -> exit "
                        f"{record['exit_code']}, no result.json: {record['error']}",
                        flush=True,
                    )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    stem = (
        "budget_precision"
        + ("" if set(dims) == set(DIMS) else "_" + "_".join(dims))
        + (f"_{args.tag}" if args.tag else "")
    )
    log = {
        "command": "python benchmarks/budget_precision.py " + " ".join(sys.argv[1:]),
        "seed": args.seed,
        "n": args.n,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "total_s": round(time.time() - started),
        "reference": {k: reference.get(k) for k in ("steps", "spent")},
        "runs": records,
    }
    write_logs(log, stem)


def write_logs(log: dict[str, Any], stem: str) -> None:
    """Tables and summaries from the runs; `stem`.txt and `stem`.json in benchmarks/results/."""
    records = log["runs"]
    dims = list(dict.fromkeys(r["dim"] for r in records))
    summaries = [summarize(d, [r for r in records if r["dim"] == d]) for d in dims]
    text = tables(summaries, records)
    reference = log["reference"]
    notes = (
        f"command: {log['command']}\n"
        f"host: {log.get('host')}, {log['cpus']} CPUs, load average before "
        f"{log['load_average_before']}, after {log['load_average_after']}; total "
        f"{log.get('total_s')} s\n"
        f"reference job: {reference['steps']} steps, spent "
        + json.dumps({d: reference["spent"][DIMS[d][0]] for d in DIMS})
        + "\novershoot = spent − limit (negative = under); steps = overshoot ÷ the run's own "
        "mean cost per step (spent ÷ steps); energy is codecarbon's estimate, enforced "
        "estimate_margin short of the limit; time and energy move with the machine's load."
    )
    print("\n" + text + "\n\n" + notes)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.txt").write_text(text + "\n\n" + notes + "\n")
    log = {**log, "summaries": summaries}
    (RESULTS / f"{stem}.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"written: {RESULTS / stem}.txt, .json")


if __name__ == "__main__":
    main()
