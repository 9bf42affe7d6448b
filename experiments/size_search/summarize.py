"""Tables and plot of the size_search study (experiments/size_search/README.md).

    python experiments/size_search/summarize.py outputs/experiments/size_search/runs --plot OUT.png

Reads, under the runs directory, grid/seed*/w*/result.json (every width on the full
budget), auto/seed*/result.json (width_mult=auto) and sweep*/seed*/ (the successive-halving sweeps:
envelope.json, halving.json and their jobs' result.json), and prints Markdown: the grid's test
accuracy per width (mean over seeds), what the search chose and achieved against the grid's
best, the energy each approach spent, and how each sweep spent its envelope and what it found.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from frugal.sweep.envelope import read_envelope, total_charged


def load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def acc(result: dict[str, Any]) -> float:
    return 100 * float(result["metrics"]["test/acc"])


def grid_table(root: Path) -> tuple[dict[float, list[float]], float, list[str]]:
    by_width: dict[float, list[float]] = {}
    energy = 0.0
    for path in sorted(root.glob("grid/seed*/w*/result.json")):
        result = load(path)
        if result is None or "test/acc" not in result.get("metrics", {}):
            continue
        width = float(path.parent.name.removeprefix("w"))
        by_width.setdefault(width, []).append(acc(result))
        energy += float(result["spent"]["energy_j"] or 0)
    lines = ["| width_mult | params | test acc, mean ± sd (seeds) |", "|---:|---:|---|"]
    for width in sorted(by_width):
        values = by_width[width]
        params = load(next(root.glob(f"grid/seed*/w{width}/result.json")))["model"]["params"]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(
            f"| {width:g} | {params:,} | {statistics.mean(values):.1f} % ± {sd:.1f} "
            f"({', '.join(f'{v:.1f}' for v in values)}) |"
        )
    return by_width, energy, lines


def auto_table(root: Path, best_mean: float) -> tuple[list[dict[str, Any]], float, list[str]]:
    runs = []
    energy = 0.0
    lines = [
        "| seed | chosen width_mult | predicted val/loss | achieved val/loss | test acc "
        "| vs grid best | energy (pilots + final) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path in sorted(root.glob("auto/seed*/result.json")):
        result = load(path)
        if result is None or not result.get("size_search"):
            continue
        search = result["size_search"]
        spent = float(result["spent"]["energy_j"] or 0)
        energy += spent
        runs.append(result)
        lines.append(
            f"| {result['seed']} | {search['choice']:g} | {search['predicted']:.3f} "
            f"| {search['achieved']['val/loss']:.3f} | {acc(result):.1f} % "
            f"| {acc(result) - best_mean:+.1f} pt | {spent:.0f} J "
            f"({search['pilot_spent']['energy_j']:.0f} + "
            f"{spent - search['pilot_spent']['energy_j']:.0f}) |"
        )
    return runs, energy, lines


def sweeps(root: Path) -> list[Path]:
    """Every sweep directory: sweep/seed*/ (warm starts) and sweep_scratch/seed*/ (without)."""
    return sorted(p.parent for p in root.glob("sweep*/seed*/envelope.json"))


def sweep_pick(sweep: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(halving.json's best, that job's result.json), when the sweep found one."""
    halving = load(sweep / "halving.json") or {}
    best = halving.get("best") or {}
    result = load(sweep / str(best.get("job")) / "result.json") if best else None
    if result is None or "test/acc" not in (result.get("metrics") or {}):
        return None
    return {**best, "warm": halving.get("warm_start", False)}, result


def sweep_lines(root: Path, best_mean: float) -> list[str]:
    lines = [
        "| sweep | promoted trials | charged / envelope | jobs (attempts) | rungs: trials x J "
        "| pick (by val/acc) | test acc | vs grid best |",
        "|---|---|---:|---:|---|---|---:|---:|",
    ]
    for sweep in sweeps(root):
        state = read_envelope(sweep)
        halving = load(sweep / "halving.json") or {}
        if state is None:
            continue
        envelope = state["envelope"]["energy_j"]
        charged = total_charged(state).get("energy_j", 0.0)
        jobs = state["jobs"]
        attempts = sum(int(job.get("attempts") or 1) for job in jobs.values())
        rungs = ", ".join(
            f"{len(r.get('trials', []))} x {(r.get('budget') or {}).get('energy_j', 0):.0f}"
            for r in halving.get("rungs", [])
        )
        warm = "continue" if halving.get("warm_start", False) else "from scratch"
        pick = sweep_pick(sweep)
        if pick is None:
            found = "| (none) | | |"
        else:
            best, result = pick
            swept = " ".join(best.get("swept") or []).replace("model.kwargs.", "")
            found = f"| {swept} | {acc(result):.1f} % | {acc(result) - best_mean:+.1f} pt |"
        lines.append(
            f"| {sweep.parent.name}/{sweep.name} | {warm} | {charged:.0f} / {envelope:.0f} J "
            f"| {len(jobs)} ({attempts}) | {rungs} {found}"
        )
    return lines if len(lines) > 2 else ["(no sweep)"]


def plot(
    by_width: dict[float, list[float]], autos: list[dict[str, Any]], picks: list[Any], out: Path
) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    widths = sorted(by_width)
    means = [statistics.mean(by_width[w]) for w in widths]
    for width in widths:
        ax.scatter([width] * len(by_width[width]), by_width[width], color="#999999", s=12)
    ax.plot(widths, means, "-o", color="#0072B2", label="grid: each width on the full budget")
    for result in autos:
        choice = result["size_search"]["choice"]
        ax.scatter([choice], [acc(result)], marker="*", s=160, color="#D55E00", zorder=3)
    ax.scatter([], [], marker="*", s=160, color="#D55E00", label="width_mult=auto (per seed)")
    styles = {True: ("#009E73", "halving sweep's pick"), False: ("none", "the same, from scratch")}
    for warm, (face, label) in styles.items():
        chosen = [(best, result) for best, result in picks if bool(best.get("warm")) == warm]
        ax.scatter(
            [_width(best["overrides"]) for best, _ in chosen],
            [acc(result) for _, result in chosen],
            marker="D", s=50, facecolors=face, edgecolors="#009E73", zorder=3,
            label=label if chosen else None,
        )  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [f"{w:g}" for w in widths])
    ax.set_xlabel("width_mult of the paper's CNN")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST-1D, one energy budget per run")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(out, dpi=150)


def _width(overrides: list[str]) -> float:
    line = next(o for o in overrides if o.startswith("model.kwargs.width_mult="))
    return float(line.partition("=")[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    by_width, grid_energy, grid_lines = grid_table(args.root)
    best_mean = max(statistics.mean(v) for v in by_width.values()) if by_width else 0.0
    autos, auto_energy, auto_lines = auto_table(args.root, best_mean)
    print("## Grid: every width on the full budget\n")
    print("\n".join(grid_lines))
    print(f"\nGrid total: {grid_energy:.0f} J. Best mean: {best_mean:.1f} %.\n")
    print("## width_mult=auto\n")
    print("\n".join(auto_lines))
    if autos:
        per_run = auto_energy / len(autos)
        print(
            f"\nA search spends {per_run:.0f} J, {per_run / grid_energy:.3f} of the grid's "
            f"{grid_energy:.0f} J (all {len(autos)} seeds together: "
            f"{auto_energy / grid_energy:.3f})."
        )
    print("\n## Successive halving in one envelope\n")
    print("\n".join(sweep_lines(args.root, best_mean)))
    if args.plot:
        picks = [pick for pick in map(sweep_pick, sweeps(args.root)) if pick is not None]
        plot(by_width, autos, picks, args.plot)


if __name__ == "__main__":
    main()
