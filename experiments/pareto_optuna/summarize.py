"""The Optuna trials as a table (cheapest first) and a compact Pareto plot, from frugal-report's
runs.csv.

python experiments/pareto_optuna/summarize.py experiments/pareto_optuna/report/runs.csv \
    --plot experiments/pareto_optuna/trials.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FAMILY_KNOB = {"pareto_lowrank_cnn": "search.rank_ratio", "pareto_rigl_cnn": "search.density"}
FAMILIES = ("cnn", "dsconv_cnn", "lowrank_cnn", "rigl_cnn")


def knobs(overrides: str) -> tuple[str, str, str]:
    """(family, width, the family's own knob): the knobs a family ignores are left out."""
    given = dict(o.split("=", 1) for o in overrides.split() if "=" in o)
    family = given.get("experiment", "?")
    knob = FAMILY_KNOB.get(family)
    own = f"{knob.rpartition('.')[2]}={float(given[knob]):.2f}" if knob and knob in given else "—"
    width = float(given.get("model.kwargs.width_mult", 1.0))
    return family.removeprefix("pareto_"), f"{width:.2f}", own


def table(rows: list[dict[str, str]]) -> str:
    lines = [
        "| frontier | trial | family | width_mult | family knob | test acc "
        "| energy (est.) | training FLOPs | params (effective) | time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        family, width, own = knobs(row["overrides"])
        lines.append(
            f"| {'★' if row['on_frontier'] == 'true' else ''} | {Path(row['run_dir']).name} "
            f"| {family} | {width} | {own} | {float(row['test_acc']):.1%} "
            f"| {float(row['energy_j']):.0f} J | {float(row['compute_flop']) / 1e9:.1f} GFLOP "
            f"| {int(float(row['params_effective'])):,} | {float(row['time_s']):.0f} s |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, str]], path: Path) -> None:
    """Test accuracy against energy, one colour per family, each point labelled with its trial
    number and width; the frontier as a step line."""
    fig = Figure(figsize=(8, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for i, family in enumerate(FAMILIES):
        mine = [row for row in rows if knobs(row["overrides"])[0] == family]
        ax.scatter(
            [float(r["energy_j"]) for r in mine],
            [100 * float(r["test_acc"]) for r in mine],
            s=60,
            color=f"C{i}",
            edgecolors=["black" if r["on_frontier"] == "true" else "none" for r in mine],
            label=family,
            zorder=3,
        )
        for r in mine:
            _, width, own = knobs(r["overrides"])
            note = f"#{Path(r['run_dir']).name} w={width}" + ("" if own == "—" else f" {own}")
            ax.annotate(
                note,
                (float(r["energy_j"]), 100 * float(r["test_acc"])),
                xytext=(5, -10),
                textcoords="offset points",
                fontsize=7,
            )
    front = sorted(
        (float(r["energy_j"]), 100 * float(r["test_acc"]))
        for r in rows
        if r["on_frontier"] == "true"
    )
    ax.step([e for e, _ in front], [a for _, a in front], where="post", color="black", lw=1)
    ax.set_xlabel("training energy (J, codecarbon estimate)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Optuna trials, 1,500 steps each (black edge: Pareto set)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_csv", type=Path)
    parser.add_argument("--plot", type=Path, help="write the accuracy-energy plot here")
    args = parser.parse_args()
    with args.runs_csv.open(newline="") as file:
        rows = sorted(csv.DictReader(file), key=lambda row: float(row["energy_j"] or "inf"))
    print(table(rows))
    methods = sorted({f"{r['energy_method']} (measured: {r['energy_measured']})" for r in rows})
    print(f"\n{len(rows)} trials; energy: {', '.join(methods)}.")
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
