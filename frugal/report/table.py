"""``runs.csv`` (one flat row per run) and ``report.md`` (the tables a reader looks at)."""

from __future__ import annotations

import csv
import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from frugal.report.collect import Run, Skipped
from frugal.report.compare import FRONTIER_MARK, FRONTIER_STATUSES, Comparison
from frugal.report.units import UNKNOWN, percent, plural, seconds, si

CSV_COLUMNS = (
    "run_dir",
    "label",
    "overrides",
    "group",
    "model",
    "status",
    "stopped_by",
    "test_acc",
    "val_acc",
    "energy_j",
    "energy_method",
    "energy_measured",
    "carbon_g",
    "compute_flop",
    "time_s",
    "data_samples",
    "memory_bytes",
    "params",
    "params_effective",
    "steps",
    "seed",
    "on_frontier",
    "on_flop_frontier",
    "curve_problem",
)
BUDGET_TEXT: dict[str, Callable[[float], str]] = {
    "energy_j": lambda j: f"energy ≤ {si(j, 'J')}",
    "carbon_g": lambda g: f"carbon ≤ {si(g, 'g')}",
    "compute_flop": lambda flop: f"compute ≤ {si(flop, 'FLOP')}",
    "data_samples": lambda n: f"data ≤ {si(n)} samples",
    "time_s": lambda s: f"time ≤ {seconds(s)}",
    "memory_bytes": lambda b: f"memory ≤ {si(b, 'B')}",
    "params": lambda n: f"params ≤ {si(n)}",
}


def write_runs_csv(comparison: Comparison, path: Path) -> None:
    """One row per run, in directory order; unknown amounts are empty cells, never 0."""
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for i, run in enumerate(comparison.runs):
            row = {
                "run_dir": str(run.dir),
                "label": comparison.labels[i],
                "overrides": " ".join(run.overrides or ()),
                "group": comparison.groups[i],
                "model": run.model,
                "status": run.status,
                "stopped_by": run.stopped_by,
                "test_acc": run.test_acc,
                "val_acc": run.val_acc,
                "energy_method": run.energy_method,
                "energy_measured": run.energy_measured,
                **run.spent,
                "params": run.params,
                "params_effective": run.params_effective,
                "steps": run.steps,
                "seed": run.seed,
                "on_frontier": comparison.on_energy_front[i],
                "on_flop_frontier": comparison.on_flop_front[i],
                "curve_problem": run.curve_problem,
            }
            writer.writerow({k: _csv_cell(row[k]) for k in CSV_COLUMNS})


def write_report_md(
    comparison: Comparison,
    skipped: Sequence[Skipped],
    inputs: Sequence[Path],
    path: Path,
    plots: bool = True,
) -> None:
    sections = [
        _header(comparison, inputs, plots),
        _runs_table(comparison),
        _seed_table(comparison) if comparison.has_seed_groups else "",
        _skipped_section(comparison, skipped),
    ]
    path.write_text("\n\n".join(s for s in sections if s) + "\n")


def energy_cell(run: Run) -> str:
    """``812 J (codecarbon:cpu_load, est.)``: the amount, how it was obtained, and whether it is
    an estimate."""
    if run.energy_j is None:
        return UNKNOWN
    note = f"{run.energy_method}, est." if run.energy_estimated else run.energy_method
    return f"{si(run.energy_j, 'J')} ({note})"


def _header(comparison: Comparison, inputs: Sequence[Path], plots: bool) -> str:
    runs = comparison.runs
    where = ", ".join(f"`{p}`" for p in inputs)
    lines = [
        "# frugal report",
        "",
        f"{plural(len(runs), 'run')} from {where}, compared on test accuracy against training "
        "energy and training compute (FLOPs).",
        "",
        f"- Energy: {_energy_methods(runs)}.",
        f"- Budgets: {_budgets(runs)}.",
        f"- {FRONTIER_MARK} Pareto frontier: no other run has both higher test accuracy and "
        "lower energy. Only runs that trained as planned qualify "
        f"({' or '.join(sorted(FRONTIER_STATUSES))}).",
    ]
    if plots:
        lines += [
            "",
            "![accuracy against energy and FLOPs](pareto.png)",
            "",
            "![validation accuracy during training](curves.png)",
        ]
    return "\n".join(lines)


def _energy_methods(runs: Sequence[Run]) -> str:
    counts = Counter(
        (run.energy_method, run.energy_estimated) for run in runs if run.energy_j is not None
    )
    parts = [
        f"{method} for {plural(n, 'run')} ({'estimated' if estimated else 'measured'})"
        for (method, estimated), n in counts.most_common()
    ]
    unknown = sum(run.energy_j is None for run in runs)
    if unknown:
        parts.append(f"unknown for {plural(unknown, 'run')}")
    return "; ".join(parts)


def _budgets(runs: Sequence[Run]) -> str:
    described = {_budget_text(run) for run in runs}
    if len(described) > 1:
        return "differ between runs (see `runs.csv`)"
    return described.pop()


def _budget_text(run: Run) -> str:
    limits = [BUDGET_TEXT[key](limit) for key, limit in run.budget.items() if limit is not None]
    return ", ".join(limits) or "none (measured only)"


def _runs_table(comparison: Comparison) -> str:
    header = (
        "",
        "run",
        "model",
        "status",
        "stopped by",
        "test acc",
        "energy",
        "FLOPs",
        "params (eff.)",
        "time",
        "samples",
    )
    order = sorted(
        range(len(comparison.runs)),
        key=lambda i: (not comparison.on_energy_front[i], _descending(comparison.runs[i].test_acc)),
    )
    rows = []
    for i in order:
        run = comparison.runs[i]
        rows.append(
            (
                FRONTIER_MARK if comparison.on_energy_front[i] else "",
                comparison.labels[i],
                run.model,
                run.status,
                run.stopped_by or "—",
                percent(run.test_acc),
                energy_cell(run),
                si(run.compute_flop, "FLOP"),
                si(run.params_effective),
                seconds(run.spent["time_s"]),
                si(run.spent["data_samples"]),
            )
        )
    return "## Runs\n\n" + _markdown_table(header, rows)


def _seed_table(comparison: Comparison) -> str:
    header = ("config", "runs", "seeds", "test acc (mean ± std)", "energy (mean ± std)")
    rows = []
    for group, indices in comparison.by_group().items():
        runs = [comparison.runs[i] for i in indices]
        seeds = ", ".join(str(run.seed) for run in runs if run.seed is not None) or UNKNOWN
        accuracy = _mean_std([run.test_acc for run in runs], lambda v: f"{100 * v:.1f}", "%")
        energy = _mean_std([run.energy_j for run in runs], lambda v: si(v, "J"), "")
        if any(run.energy_estimated for run in runs):
            energy += " (est.)"
        rows.append((group, str(len(runs)), seeds, accuracy, energy))
    return (
        "## Over seeds\n\nRuns with the same overrides except `seed`; std is the sample standard "
        "deviation, n the runs with a known value.\n\n" + _markdown_table(header, rows)
    )


def _mean_std(values: Sequence[float | None], fmt: Callable[[float], str], unit: str) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return UNKNOWN
    text = fmt(statistics.fmean(known))
    if len(known) > 1:
        text += f" ± {fmt(statistics.stdev(known))}"
    text += unit
    return text if len(known) == len(values) else f"{text} (n={len(known)})"


def _skipped_section(comparison: Comparison, skipped: Sequence[Skipped]) -> str:
    lines = [f"- `{s.path}`: {s.reason}" for s in skipped]
    lines += [
        f"- `{run.dir}` ({label}): curve only — {run.curve_problem}"
        for run, label in zip(comparison.runs, comparison.labels, strict=True)
        if run.curve_problem
    ]
    if not lines:
        return ""
    return "## Skipped\n\n" + "\n".join(lines)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [_markdown_row(header), _markdown_row(["---"] * len(header))]
    lines += [_markdown_row(row) for row in rows]
    return "\n".join(lines)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _descending(value: float | None) -> float:
    """Sort key: larger first, unknown last."""
    return math.inf if value is None else -value


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value
