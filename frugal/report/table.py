"""``runs.csv`` (one flat row per run) and ``report.md`` (the tables a reader looks at).

Every text that comes from a run (names, overrides, paths, reasons) goes through ``md`` or
``md_code`` (:mod:`frugal.report.markdown`): a model named ``a|b`` or ``x\\n## y`` must not
break a table or add a heading.
"""

from __future__ import annotations

import csv
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from frugal.core.status import FRONTIER_STATUSES
from frugal.core.units import UNKNOWN, format_amount, percent
from frugal.report.collect import ASSUMED_UNCERTAINTY, Run, Skipped
from frugal.report.compare import FRONTIER_MARK, Comparison, Unresolved
from frugal.report.lifetime import lifetime_energy_j
from frugal.report.lifetime_table import lifetime_section
from frugal.report.markdown import markdown_table, md, md_code
from frugal.report.text import descending, key_amount, key_name, plural, plus_minus

DEFAULT_INFERENCES = 1_000_000
CSV_COLUMNS = (
    "number",
    "run_dir",
    "dataset",
    "data_hash",
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
    "energy_uncertainty",
    "energy_uncertainty_assumed",
    "carbon_g",
    "compute_flop",
    "time_s",
    "data_samples",
    "memory_bytes",
    "params",
    "params_effective",
    "steps",
    "seed",
    "inference_j_per_1k",
    "lifetime_energy_j",
    "source_run",
    "acc_after_compression",
    "source_energy_j",
    "total_energy_j",
    "on_frontier",
    "on_flop_frontier",
    "curve_problem",
)


def write_runs_csv(
    comparison: Comparison, path: Path, inferences: int = DEFAULT_INFERENCES
) -> None:
    """One row per run, numbered as in the plots; unknown amounts are empty cells, never 0."""
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for i, run in enumerate(comparison.runs):
            compression = run.compression
            row = {
                "number": comparison.numbers[i],
                "run_dir": str(run.dir),
                "dataset": run.dataset.name,
                "data_hash": run.dataset.hash,
                "label": comparison.labels[i],
                "overrides": " ".join(run.overrides or ()),
                "group": comparison.groups[i],
                "model": run.model,
                "status": run.status.value,
                "stopped_by": run.stopped_by,
                "test_acc": run.test_acc,
                "val_acc": run.val_acc,
                "energy_method": run.energy_method,
                "energy_measured": run.energy_measured,
                "energy_uncertainty": run.energy_uncertainty,
                "energy_uncertainty_assumed": run.energy_uncertainty_assumed,
                **run.spent,
                "params": run.params,
                "params_effective": run.params_effective,
                "steps": run.steps,
                "seed": run.seed,
                "inference_j_per_1k": run.inference_j_per_1k,
                "lifetime_energy_j": lifetime_energy_j(run, inferences),
                "source_run": compression.source_run if compression else None,
                "acc_after_compression": compression.acc_after_compression if compression else None,
                "source_energy_j": compression.source_spent["energy_j"] if compression else None,
                "total_energy_j": total_spent(run, "energy_j"),
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
    inferences: int = DEFAULT_INFERENCES,
) -> None:
    sections = [_header(comparison, inputs, plots, inferences)]
    for dataset, indices in comparison.by_dataset().items():
        sections.append(_dataset_section(comparison, dataset, indices, inferences))
    sections += [_curves_section(comparison), _skipped_section(skipped)]
    path.write_text("\n\n".join(s for s in sections if s) + "\n")


def total_spent(run: Run, key: str) -> float | None:
    """What the run spent on ``key`` plus, for a compressed run, what its source run spent:
    unknown when either is."""
    own = run.spent[key]
    if run.compression is None:
        return own
    source = run.compression.source_spent[key]
    return None if own is None or source is None else own + source


def energy_cell(run: Run) -> str:
    """``812 J ±30% (codecarbon:cpu_load, est.)``: the amount, its uncertainty, how it was
    obtained, and whether it is an estimate."""
    if run.energy_j is None:
        return UNKNOWN
    note = f"{run.energy_method}, est." if run.energy_estimated else run.energy_method
    return f"{format_amount(run.energy_j, 'J')} {plus_minus(run.energy_uncertainty)} ({note})"


def _header(comparison: Comparison, inputs: Sequence[Path], plots: bool, inferences: int) -> str:
    runs = comparison.runs
    datasets = comparison.by_dataset()
    where = ", ".join(md_code(p) for p in inputs)
    on = f"on {plural(len(datasets), 'dataset')}" if len(datasets) > 1 else f"on {_only(datasets)}"
    lines = [
        "# frugal report",
        "",
        f"{plural(len(runs), 'run')} from {where}, {on}, compared on test accuracy against "
        "training energy and training compute (FLOPs). Runs on different datasets are never "
        "compared: each dataset has its own section, frontier and row of plots.",
        "",
        f"- Energy: {_energy_methods(runs)}.",
        f"- Budgets: {_budgets(runs)}.",
        f"- {FRONTIER_MARK} Pareto frontier: no other run on the same dataset has both higher test "
        "accuracy and lower energy. Only runs that trained as planned qualify "
        f"({' or '.join(sorted(FRONTIER_STATUSES))}).",
        "- `#`: the run's number in `runs.csv`" + (f", {_plot_names(runs)}." if plots else "."),
    ]
    if any(run.inference_j_per_1k is not None for run in runs):
        lines.append(
            f"- Lifetime energy: training + {format_amount(inferences)} predictions at the run's "
            "measured inference energy (`--inferences N` to change); a compressed run also carries "
            "its source run's training. Where it ranks runs differently as N grows: each dataset's "
            "*Lifetime energy* section (break-even N)" + (", and `lifetime.png`." if plots else ".")
        )
    else:
        lines.append(
            "- Lifetime energy (training + N predictions): unknown, no run measured its "
            "inference energy."
        )
    if plots:
        lines += [
            "",
            "![test accuracy against energy and FLOPs, one row per dataset](pareto.png)",
            "",
            "![validation accuracy during training](curves.png)",
        ]
        if any(run.inference_j_per_1k is not None for run in runs):
            lines += ["", "![lifetime energy against predictions served](lifetime.png)"]
    return "\n".join(lines)


def _plot_names(runs: Sequence[Run]) -> str:
    if any(run.inference_j_per_1k is not None for run in runs):
        return "`pareto.png`, `curves.png` and `lifetime.png`"
    return "`pareto.png` and `curves.png`"


def _only(datasets: dict[str, list[int]]) -> str:
    return md(next(iter(datasets)))


def _energy_methods(runs: Sequence[Run]) -> str:
    counts = Counter(
        (run.energy_method, run.energy_estimated, run.energy_uncertainty)
        for run in runs
        if run.energy_j is not None
    )
    parts = [
        f"{md(method)} for {plural(n, 'run')} "
        f"({'estimated' if estimated else 'measured'}, {plus_minus(uncertainty)})"
        for (method, estimated, uncertainty), n in counts.most_common()
    ]
    unknown = sum(run.energy_j is None for run in runs)
    if unknown:
        parts.append(f"unknown for {plural(unknown, 'run')}")
    assumed = sum(run.energy_j is not None and run.energy_uncertainty_assumed for run in runs)
    text = "; ".join(parts)
    if assumed:
        text += (
            f". {plural(assumed, 'run')} recorded no energy uncertainty: "
            f"assumed {plus_minus(ASSUMED_UNCERTAINTY[False])} for an estimate, "
            f"{plus_minus(ASSUMED_UNCERTAINTY[True])} for a meter reading"
        )
    return text


def _budgets(runs: Sequence[Run]) -> str:
    described = {_budget_text(run) for run in runs}
    if len(described) > 1:
        return "differ between runs (see `runs.csv`)"
    return described.pop()


def _budget_text(run: Run) -> str:
    limits = [
        f"{key_name(key)} ≤ {key_amount(key, limit)}"
        for key, limit in run.budget.items()
        if limit is not None
    ]
    return ", ".join(limits) or "none (measured only)"


def _dataset_section(
    comparison: Comparison, dataset: str, indices: Sequence[int], inferences: int
) -> str:
    first = comparison.runs[indices[0]].dataset
    sizes = " / ".join(
        f"{format_amount(n)} {split}"
        for n, split in zip(first.sizes, ("train", "val", "test"), strict=True)
        if n is not None
    )
    title = f"## Dataset: {md(dataset)}" + (f" — {sizes}" if sizes else "")
    parts = [title]
    parts += [_resolution_note(comparison, u) for u in comparison.unresolved.get(dataset, [])]
    parts.append(_runs_table(comparison, indices, inferences))
    if comparison.has_seed_groups(indices):
        parts.append(_seed_table(comparison, indices))
    parts.append(lifetime_section(comparison, indices, inferences))
    if any(comparison.runs[i].compression for i in indices):
        parts.append(_compression_table(comparison, indices))
    return "\n\n".join(parts)


def _resolution_note(comparison: Comparison, unresolved: Unresolved) -> str:
    """``Energy differences between these runs (451–458 J) are within the ±30% estimate
    uncertainty: the frontier is not resolved in energy.``"""
    digits = 3  # more where 3 would print two different energies alike (54–54 J)
    while digits < 6 and unresolved.low_j != unresolved.high_j:
        if format_amount(unresolved.low_j, "J", digits) != format_amount(
            unresolved.high_j, "J", digits
        ):
            break
        digits += 1
    low, high = (
        format_amount(unresolved.low_j, "J", digits),
        format_amount(unresolved.high_j, "J", digits),
    )
    same_unit = low.partition(" ")[2] == high.partition(" ")[2]
    span = f"{low.partition(' ')[0] if same_unit else low}–{high}"  # 451–458 J, 950 J–1.2 kJ
    kind = "estimate" if unresolved.estimated else "meter"
    bound = f"the {plus_minus(unresolved.uncertainty)} {kind} uncertainty"
    if unresolved.assumed:
        bound += " (assumed: not recorded by every run)"
    if unresolved.whole and unresolved.low_j == unresolved.high_j:
        return (
            f"> **Equal in energy.** Every run that could be on the frontier spent {high}: "
            "compare them on accuracy."
        )
    if unresolved.whole:
        return (
            f"> **Not resolved in energy.** Energy differences between these runs ({span}) are "
            f"within {bound}: the frontier is not resolved in energy. Read them as runs of equal "
            "energy, compared on accuracy."
        )
    numbers = ", ".join(f"#{comparison.numbers[i]}" for i in unresolved.indices)
    return (
        f"> **Partly resolved in energy.** Frontier runs {numbers} ({span}) differ in energy by "
        f"less than {bound}: their order in energy is not resolved."
    )


def _runs_table(comparison: Comparison, indices: Sequence[int], inferences: int) -> str:
    lifetime = any(comparison.runs[i].inference_j_per_1k is not None for i in indices)
    header = [
        "",
        "#",
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
    ]
    if lifetime:
        header.append(f"lifetime energy ({format_amount(inferences)} predictions)")
    order = sorted(
        indices,
        key=lambda i: (not comparison.on_energy_front[i], descending(comparison.runs[i].test_acc)),
    )
    rows = []
    for i in order:
        run = comparison.runs[i]
        row = [
            FRONTIER_MARK if comparison.on_energy_front[i] else "",
            str(comparison.numbers[i]),
            md(comparison.labels[i]),
            md(run.model),
            run.status.value,
            md(run.stopped_by or "—"),
            percent(run.test_acc),
            md(energy_cell(run)),
            format_amount(run.compute_flop, "FLOP"),
            format_amount(run.params_effective),
            format_amount(run.spent["time_s"], "s"),
            format_amount(run.spent["data_samples"]),
        ]
        if lifetime:
            row.append(format_amount(lifetime_energy_j(run, inferences), "J"))
        rows.append(row)
    return markdown_table(header, rows)


def _seed_table(comparison: Comparison, indices: Sequence[int]) -> str:
    header = ("config", "runs", "seeds", "test acc (mean ± std)", "energy (mean ± std)")
    rows = []
    for group, members in comparison.by_group(indices).items():
        runs = [comparison.runs[i] for i in members]
        seeds = ", ".join(str(run.seed) for run in runs if run.seed is not None) or UNKNOWN
        accuracy = _mean_std([run.test_acc for run in runs], lambda v: f"{100 * v:.1f}", "%")
        energy = _mean_std([run.energy_j for run in runs], lambda v: format_amount(v, "J"), "")
        if any(run.energy_estimated for run in runs):
            energy += " (est.)"
        rows.append((md(group), str(len(runs)), seeds, accuracy, energy))
    return (
        "### Over seeds\n\nRuns with the same overrides except `seed`; std is the sample "
        "standard deviation, n the runs with a known value.\n\n" + markdown_table(header, rows)
    )


def _compression_table(comparison: Comparison, indices: Sequence[int]) -> str:
    header = (
        "#",
        "run",
        "method",
        "source run",
        "val acc right after compression",
        "test acc after fine-tuning",
        "fine-tuning energy",
        "source energy",
        "total energy",
        "total FLOPs",
    )
    rows = []
    for i in indices:
        run = comparison.runs[i]
        if run.compression is None:
            continue
        source = run.compression.source_spent
        rows.append(
            (
                str(comparison.numbers[i]),
                md(comparison.labels[i]),
                md(run.compression.method or UNKNOWN),
                md(run.compression.source_run or UNKNOWN),
                percent(run.compression.acc_after_compression),
                percent(run.test_acc),
                format_amount(run.energy_j, "J"),
                format_amount(source["energy_j"], "J"),
                format_amount(total_spent(run, "energy_j"), "J"),
                format_amount(total_spent(run, "compute_flop"), "FLOP"),
            )
        )
    return (
        "### Compressed runs\n\nA compressed run starts from another run's checkpoint. Total = "
        "the source run's training + this run's fine-tuning. The frontier above charges the "
        "fine-tuning only: the source's training may be shared by several compressions.\n\n"
        + markdown_table(header, rows)
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


def _curves_section(comparison: Comparison) -> str:
    """Runs in the tables whose curve could not be drawn."""
    lines = [
        f"- #{comparison.numbers[i]} {md_code(run.dir)} ({md(comparison.labels[i])}): "
        f"{md(run.curve_problem)}"
        for i, run in enumerate(comparison.runs)
        if run.curve_problem
    ]
    if not lines:
        return ""
    return (
        "## Curves not drawn\n\nThese runs are in the tables above; only their curve is "
        "missing.\n\n" + "\n".join(lines)
    )


def _skipped_section(skipped: Sequence[Skipped]) -> str:
    """Runs left out of every table and plot, with the reason."""
    if not skipped:
        return ""
    lines = [f"- {md_code(s.path)}: {md(s.reason)}" for s in skipped]
    return "## Skipped\n\nNot in the tables or plots.\n\n" + "\n".join(lines)


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value
