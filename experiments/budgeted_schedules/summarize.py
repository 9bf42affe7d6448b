"""Budgeted-training tables and plot from frugal-report's runs.csv (and each run's curve.csv).

    python experiments/budgeted_schedules/summarize.py \
        experiments/budgeted_schedules/report/runs.csv outputs/experiments/budgeted_schedules \
        --out experiments/budgeted_schedules > experiments/budgeted_schedules/results.md

Prints the markdown tables (mean ± sample std over seeds) and writes schedules.png and
summary.csv (one row per config) into --out.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FULL_FLOP = 111.45e9  # 6,000 steps × 18,575,000 training FLOP per step (cnn, batch 100)
SCHEDULES = ("budget_linear", "budget_cosine", "budget_step", "constant")
DEFAULT_LR = {"adam": 0.01, "adamw": 0.01, "sgd": 0.1}  # conf/optimizer/*.yaml
HIGH_LR = 0.03  # the peak LR the 25 % probe found best for linear decay
UNITS = {"GFLOP": 1e9, "TFLOP": 1e12, "MFLOP": 1e6}


@dataclass(frozen=True)
class Config:
    optimizer: str
    lr: float
    schedule: str
    fraction: float


@dataclass
class Run:
    config: Config
    seed: int
    test_acc: float
    best_val: float  # the best validation accuracy of any checkpoint (what test_on=best picks)
    last_val: float  # validation accuracy of the final weights
    min_val_loss: float  # lowest validation loss during training
    last_val_loss: float  # validation loss of the final weights: above the minimum = overfitting
    steps: int


def flop(text: str) -> float:
    for unit, factor in UNITS.items():
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * factor
    return float(text)


def parse_config(overrides: str) -> Config:
    given = dict(o.split("=", 1) for o in overrides.split() if "=" in o)
    optimizer = given.get("optimizer", "adam")
    return Config(
        optimizer=optimizer,
        lr=float(given.get("optimizer.lr", DEFAULT_LR[optimizer])),
        schedule=given.get("scheduler", "constant"),
        fraction=round(flop(given.get("budget.compute", str(FULL_FLOP))) / FULL_FLOP, 3),
    )


def val_curve(run_dir: Path) -> tuple[list[float], list[float]]:
    """(val/acc, val/loss) at every validation, in training order."""
    with (run_dir / "curve.csv").open(newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["val/acc"]]
    return [float(row["val/acc"]) for row in rows], [float(row["val/loss"]) for row in rows]


def load(runs_csv: Path, runs_root: Path) -> list[Run]:
    runs = []
    with runs_csv.open(newline="") as file:
        for row in csv.DictReader(file):
            run_dir = Path(row["run_dir"])
            if not run_dir.is_absolute() and not run_dir.exists():
                run_dir = runs_root / run_dir
            vals, losses = val_curve(run_dir)
            runs.append(
                Run(
                    config=parse_config(row["overrides"]),
                    seed=int(float(row["seed"])),
                    test_acc=float(row["test_acc"]),
                    best_val=max(vals),
                    last_val=vals[-1],
                    min_val_loss=min(losses),
                    last_val_loss=losses[-1],
                    steps=int(float(row["steps"])),
                )
            )
    return runs


def mean_std(values: list[float]) -> str:
    text = f"{100 * statistics.fmean(values):.1f}"
    if len(values) > 1:
        text += f" ± {100 * statistics.stdev(values):.1f}"
    return text


def loss_change(runs: list[Run]) -> str:
    lowest = statistics.fmean(r.min_val_loss for r in runs)
    return f"{lowest:.3f} → {statistics.fmean(r.last_val_loss for r in runs):.3f}"


def grouped(runs: list[Run]) -> dict[Config, list[Run]]:
    groups: dict[Config, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.config].append(run)
    return groups


def grid_table(
    groups: dict[Config, list[Run]], lr: float, schedules: tuple[str, ...]
) -> tuple[str, list[float]]:
    """Schedule × budget with Adam at peak `lr`; the best mean of each budget in bold."""
    configs = [c for c in groups if c.optimizer == "adam" and c.lr == lr]
    fractions = sorted({c.fraction for c in configs})
    steps = {c.fraction: groups[c][0].steps for c in configs}
    head = " | ".join(f"{f:.0%} ({steps[f]:,} steps)" for f in fractions)
    lines = [f"| schedule | {head} |", "| --- |" + " --- |" * len(fractions)]
    for schedule in schedules:
        cells = []
        for fraction in fractions:
            runs = groups.get(Config("adam", lr, schedule, fraction), [])
            if not runs:
                cells.append("—")
                continue
            best = max(
                statistics.fmean(r.test_acc for r in groups[c])
                for c in configs
                if c.fraction == fraction and c.schedule in schedules
            )
            cell = mean_std([r.test_acc for r in runs])
            if statistics.fmean(r.test_acc for r in runs) == best:
                cell = f"**{cell}**"
            cells.append(f"{cell} (n={len(runs)})")
        lines.append(f"| {schedule} | {' | '.join(cells)} |")
    return "\n".join(lines), fractions


def probe_table(groups: dict[Config, list[Run]], fraction: float) -> str:
    lines = [
        "| optimizer | peak LR | schedule | test acc (final weights) | last val acc "
        "| best val acc (any checkpoint) | val loss: lowest → final | seeds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    configs = sorted(
        (
            c
            for c in groups
            if c.fraction == fraction and c.schedule in ("budget_linear", "constant")
        ),
        key=lambda c: (c.optimizer, c.lr, c.schedule),
    )
    for c in configs:
        runs = groups[c]
        lines.append(
            f"| {c.optimizer} | {c.lr:g} | {c.schedule} | {mean_std([r.test_acc for r in runs])} "
            f"| {mean_std([r.last_val for r in runs])} | {mean_std([r.best_val for r in runs])} "
            f"| {loss_change(runs)} | {len(runs)} |"
        )
    return "\n".join(lines)


def write_summary_csv(groups: dict[Config, list[Run]], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["optimizer", "lr", "schedule", "fraction", "steps", "n", "test_acc_mean",
             "test_acc_std", "last_val_mean", "best_val_mean", "min_val_loss_mean",
             "last_val_loss_mean"]
        )  # fmt: skip
        for c, runs in sorted(groups.items(), key=lambda kv: tuple(vars(kv[0]).values())):
            accs = [r.test_acc for r in runs]
            writer.writerow(
                [
                    c.optimizer,
                    c.lr,
                    c.schedule,
                    c.fraction,
                    runs[0].steps,
                    len(runs),
                    f"{statistics.fmean(accs):.4f}",
                    f"{statistics.stdev(accs):.4f}" if len(accs) > 1 else "",
                    f"{statistics.fmean(r.last_val for r in runs):.4f}",
                    f"{statistics.fmean(r.best_val for r in runs):.4f}",
                    f"{statistics.fmean(r.min_val_loss for r in runs):.4f}",
                    f"{statistics.fmean(r.last_val_loss for r in runs):.4f}",
                ]
            )


def plot(groups: dict[Config, list[Run]], fractions: list[float], probe: float, path: Path) -> None:
    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    grid_ax, probe_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    markers = dict(zip(SCHEDULES, "os^D", strict=True))
    # series side by side around each budget (log x: a multiplicative nudge), so error bars show
    nudge = {s: 1 + 0.025 * (i - 2) for i, s in enumerate(SCHEDULES)}
    for schedule in SCHEDULES:
        xs, means, stds = [], [], []
        for fraction in fractions:
            runs = groups.get(Config("adam", 0.01, schedule, fraction), [])
            if runs:
                accs = [100 * r.test_acc for r in runs]
                xs.append(100 * fraction * nudge[schedule])
                means.append(statistics.fmean(accs))
                stds.append(statistics.stdev(accs) if len(accs) > 1 else 0.0)
        grid_ax.errorbar(xs, means, yerr=stds, marker=markers[schedule], capsize=3, label=schedule)
    for schedule, color in (("budget_linear", "C0"), ("constant", "C3")):
        xs, means, stds = [], [], []
        for fraction in fractions:
            runs = groups.get(Config("adam", HIGH_LR, schedule, fraction), [])
            if runs:
                accs = [100 * r.test_acc for r in runs]
                xs.append(100 * fraction * (nudge[schedule] + 0.0125))
                means.append(statistics.fmean(accs))
                stds.append(statistics.stdev(accs) if len(accs) > 1 else 0.0)
        if xs:
            grid_ax.errorbar(
                xs,
                means,
                yerr=stds,
                marker=markers[schedule],
                capsize=3,
                linestyle="--",
                color=color,
                alpha=0.8,
                label=f"{schedule}, peak LR {HIGH_LR:g}",
            )
    grid_ax.set_xscale("log")
    grid_ax.set_xticks([100 * f for f in fractions], [f"{f:.0%}" for f in fractions])
    grid_ax.minorticks_off()
    grid_ax.set_xlabel("budget (share of 6,000 CNN steps = 111 GFLOP)")
    grid_ax.set_ylabel("test accuracy (%), final weights")
    grid_ax.set_title("Adam, peak LR 1e-2 (solid) and 3e-2 (dashed); mean ± std, 3 seeds")
    grid_ax.grid(alpha=0.3)
    grid_ax.legend(fontsize=8)

    configs = sorted(
        (c for c in groups if c.fraction == probe and c.schedule in ("budget_linear", "constant")),
        key=lambda c: (c.optimizer, c.lr),
    )
    settings = sorted({(c.optimizer, c.lr) for c in configs})
    width = 0.38
    for offset, schedule in ((-width / 2, "budget_linear"), (width / 2, "constant")):
        xs, means, stds = [], [], []
        for i, (optimizer, lr) in enumerate(settings):
            runs = groups.get(Config(optimizer, lr, schedule, probe), [])
            if runs:
                accs = [100 * r.test_acc for r in runs]
                xs.append(i + offset)
                means.append(statistics.fmean(accs))
                stds.append(statistics.stdev(accs) if len(accs) > 1 else 0.0)
        probe_ax.bar(xs, means, width, yerr=stds, capsize=3, label=schedule)
    probe_ax.set_xticks(range(len(settings)), [f"{o}\nlr={lr:g}" for o, lr in settings])
    low = min((statistics.fmean(r.test_acc for r in groups[c]) for c in configs), default=0.5)
    probe_ax.set_ylim(max(0, 100 * low - 10), 100)
    probe_ax.set_ylabel("test accuracy (%), final weights")
    probe_ax.set_title(f"At {probe:.0%} of the budget: peak LR and optimizer")
    probe_ax.grid(axis="y", alpha=0.3)
    probe_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_csv", type=Path)
    parser.add_argument("runs_root", type=Path, help="where relative run_dir paths point")
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--probe", type=float, default=0.25, help="budget share of the LR probe")
    args = parser.parse_args()
    groups = grouped(load(args.runs_csv, args.runs_root))
    table, fractions = grid_table(groups, 0.01, SCHEDULES)
    print("## Schedule × budget (Adam, peak LR 1e-2, test accuracy %, mean ± std over seeds)\n")
    print(table)
    if any(c.lr == HIGH_LR and c.optimizer == "adam" for c in groups):
        high, _ = grid_table(groups, HIGH_LR, ("budget_linear", "constant"))
        print(f"\n## Linear decay vs constant at peak LR {HIGH_LR:g} (Adam, test accuracy %)\n")
        print(high)
    print(f"\n## Peak LR and optimizer at {args.probe:.0%} (accuracy %, mean ± std over seeds)\n")
    print(probe_table(groups, args.probe))
    write_summary_csv(groups, args.out / "summary.csv")
    plot(groups, fractions, args.probe, args.out / "schedules.png")


if __name__ == "__main__":
    main()
