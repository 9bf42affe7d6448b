"""Frugal vs dense: the result table and plot from the study's run directories.

python experiments/frugal_vs_dense/summarize.py outputs/experiments/frugal_vs_dense/runs \
    --steps 2000 --plot outputs/experiments/frugal_vs_dense/lifetime.png > results.md

Reads every `<runs>/seed<k>/<variant>/result.json` and `curve.csv` (one training process at a
time wrote them). Per variant, over its seeds:
- energy to first reach 90 % / 93 % validation accuracy: `energy_j` of the first curve.csv row
  with val/acc ≥ the threshold (mean over the seeds that reached it; "not reached" if none did);
- test accuracy (mean ± sd over seeds, sample sd), training energy (spent.energy_j);
- ms per training step: spent.time_s / steps (validation included, as it is spent);
- inference J per 1,000 predictions (result.json `inference.energy_j_per_1k`);
- lifetime energy at N predictions: training + N/1000 × J per 1k. For the distilled student the
  teacher's forward passes are already in its training energy; the teacher's *own* training (the
  same seed's wide_cnn run) is a separate column, and a lifetime that includes it.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from frugal.core.status import FRONTIER_STATUSES

# variant directory -> (label, what it is); the table's order
VARIANTS = {
    "wide_cnn": ("`wide_cnn`", "dense, 256 channels"),
    "cnn": ("`cnn`", "dense, 25 channels (the paper's)"),
    "wide_cnn_structured": (
        "`wide_cnn` + `sparsity=structured`",
        "channels cut to 25 % at 10/20/30 % of the run",
    ),
    "distilled_cnn_x2": ("`cnn` ×2, distilled", "50 channels, taught by the seed's `wide_cnn`"),
    "lowrank_cnn": ("`lowrank_cnn`", "rank-r convs, rank ratio 0.25"),
    "dsconv_cnn": ("`dsconv_cnn`", "depthwise-separable convs"),
    "sparse_cnn": ("`sparse_cnn`", "`cnn` with static masks, density 0.2"),
}
TEACHER = "wide_cnn"
DISTILLED = "distilled_cnn_x2"
THRESHOLDS = (0.90, 0.93)


def energy_to_reach(curve: Path, threshold: float) -> float | None:
    with curve.open(newline="") as file:
        for row in csv.DictReader(file):
            if row.get("val/acc") and float(row["val/acc"]) >= threshold:
                return float(row["energy_j"])
    return None


def load(runs: Path) -> dict[str, dict[int, dict]]:
    """variant -> seed -> the figures of one run."""
    out: dict[str, dict[int, dict]] = {}
    for result in sorted(runs.glob("seed*/*/result.json")):
        data = json.loads(result.read_text())
        if data.get("status") not in FRONTIER_STATUSES:  # trained as planned
            continue
        curve = result.parent / "curve.csv"
        steps = data["steps"]
        out.setdefault(result.parent.name, {})[data["seed"]] = {
            "test_acc": data["metrics"]["test/acc"],
            "energy_j": data["spent"]["energy_j"],
            "ms_per_step": 1000 * data["spent"]["time_s"] / steps if steps else None,
            "steps": steps,
            "j_per_1k": (data.get("inference") or {}).get("energy_j_per_1k"),
            "flop_per_sample": data["model"]["flop_per_sample"]["dense"],
            "flop_effective": data["model"]["flop_per_sample"]["effective"],
            "params": data["model"]["params"],
            "params_effective": data["model"]["params_effective"],
            "reach": {t: energy_to_reach(curve, t) if curve.exists() else None for t in THRESHOLDS},
            "method": f"{data['energy']['method']} "
            f"(measured: {str(data['energy']['measured']).lower()})",
        }
    return out


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def joules(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} kJ" if abs(value) >= 1000 else f"{value:.0f} J"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--steps", type=int, default=None, help="the horizon, for the caption")
    parser.add_argument("--predictions", type=float, default=1e6, help="N for the lifetime energy")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    n_k = args.predictions / 1000
    runs = load(args.runs)

    rows = []
    for variant, (label, what) in VARIANTS.items():
        seeds = runs.get(variant, {})
        if not seeds:
            continue
        accs = [r["test_acc"] for r in seeds.values()]
        lifetimes = {s: r["energy_j"] + n_k * r["j_per_1k"] for s, r in seeds.items()}
        teacher = None
        if variant == DISTILLED:
            teacher = {s: runs.get(TEACHER, {}).get(s, {}).get("energy_j") for s in seeds}
        rows.append(
            {
                "variant": variant,
                "label": label,
                "what": what,
                "seeds": sorted(seeds),
                "accs": accs,
                "acc": statistics.fmean(accs),
                "sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "energy": mean(r["energy_j"] for r in seeds.values()),
                "reach": {t: [r["reach"][t] for r in seeds.values()] for t in THRESHOLDS},
                "ms": mean(r["ms_per_step"] for r in seeds.values()),
                "j_per_1k": mean(r["j_per_1k"] for r in seeds.values()),
                "flop": mean(r["flop_per_sample"] for r in seeds.values()),
                "flop_eff": mean(r["flop_effective"] for r in seeds.values()),
                "params": seeds[min(seeds)]["params"],
                "params_eff": seeds[min(seeds)]["params_effective"],
                "steps": mean(r["steps"] for r in seeds.values()),
                "lifetimes": lifetimes,
                "lifetime": mean(lifetimes.values()),
                "teacher": mean(teacher.values()) if teacher else None,
                "lifetime_teacher": mean(
                    lifetimes[s] + teacher[s] for s in seeds if teacher[s] is not None
                )
                if teacher
                else None,
            }
        )

    def reached(values: list[float | None]) -> str:
        hit = [v for v in values if v is not None]
        if not hit:
            return "not reached"
        note = "" if len(hit) == len(values) else f" ({len(hit)}/{len(values)} seeds)"
        return joules(statistics.fmean(hit)) + note

    n_label = f"{args.predictions:.0e}".replace("e+0", "e")
    print(
        "| variant | params (stored / effective) | inference FLOP/sample (dense / effective) "
        "| test acc (mean ± sd) "
        "| training energy | to 90 % val | to 93 % val | ms / training step | inference J / 1k "
        f"| lifetime at {n_label} | teacher's training | lifetime incl. teacher |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        params = f"{row['params']:,}" + (
            f" / {row['params_eff']:,}" if row["params_eff"] != row["params"] else ""
        )
        teacher = joules(row["teacher"]) if row["teacher"] is not None else "—"
        with_teacher = (
            joules(row["lifetime_teacher"]) if row["lifetime_teacher"] is not None else "—"
        )
        flop = f"{row['flop']:,.0f}" + (
            f" / {row['flop_eff']:,.0f}" if round(row["flop_eff"]) != round(row["flop"]) else ""
        )
        print(
            f"| {row['label']} | {params} | {flop} "
            f"| {row['acc']:.1%} ± {row['sd']:.1%} ({', '.join(f'{a:.1%}' for a in row['accs'])}) "
            f"| {joules(row['energy'])} | {reached(row['reach'][0.90])} "
            f"| {reached(row['reach'][0.93])} "
            f"| {row['ms']:.1f} | {row['j_per_1k']:.3f} | {joules(row['lifetime'])} "
            f"| {teacher} | {with_teacher} |"
        )
    methods = sorted({r["method"] for seeds in runs.values() for r in seeds.values()})
    seeds = sorted({s for seeds in runs.values() for s in seeds})
    horizon = f"{args.steps:,} steps each, " if args.steps else ""
    print(
        f"\n{sum(len(v) for v in runs.values())} runs "
        f"({horizon}seeds {', '.join(map(str, seeds))}); "
        f"means over seeds; energy: {', '.join(methods)}, ±30 %. Lifetime = training + "
        f"{n_k:,.0f} × J per 1k. The distilled student's training energy already includes its "
        "teacher's forward passes; \"teacher's training\" is the same seed's `wide_cnn` run."
    )

    if args.plot:
        plot(rows, args.plot, n_label)


def plot(rows: list[dict], path: Path, n_label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for i, row in enumerate(rows):
        color = f"C{i}"
        xs = list(row["lifetimes"].values())
        ax.scatter(xs, [100 * a for a in row["accs"]], color=color, alpha=0.35, s=18)
        ax.errorbar(
            row["lifetime"],
            100 * row["acc"],
            yerr=100 * row["sd"],
            fmt="o",
            color=color,
            capsize=3,
            label=row["label"].replace("`", ""),
        )
        if row["lifetime_teacher"] is not None:
            ax.errorbar(
                row["lifetime_teacher"],
                100 * row["acc"],
                yerr=100 * row["sd"],
                fmt="o",
                mfc="none",
                color=color,
                capsize=3,
                label="  … incl. teacher's training",
            )
            ax.annotate(
                "",
                xy=(row["lifetime_teacher"], 100 * row["acc"]),
                xytext=(row["lifetime"], 100 * row["acc"]),
                arrowprops={"arrowstyle": "->", "color": color, "alpha": 0.6},
            )
    floor = 85.0  # a variant far below (sparse_cnn) would squash the others: marked at the floor
    for i, row in enumerate(rows):
        if 100 * row["acc"] < floor:
            ax.annotate(
                f"{row['label'].replace('`', '')}: {100 * row['acc']:.1f} % (below the axis)",
                xy=(row["lifetime"], floor),
                xytext=(row["lifetime"], floor + 1.2),
                color=f"C{i}",
                fontsize=8,
                arrowprops={"arrowstyle": "->", "color": f"C{i}"},
            )
    ax.set_ylim(floor, 97)
    ax.set_xscale("log")
    ax.set_xlabel(
        f"lifetime energy at {n_label} predictions (J, codecarbon CPU-load estimate ±30 %)"
    )
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(
        "MNIST-1D: accuracy vs lifetime energy (training + inference), mean ± sd over seeds"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
