"""``runs.csv`` (one flat row per run) and ``report.md`` (the tables a reader looks at).

Every text that comes from a run (names, overrides, paths, reasons) goes through :func:`md` or
:func:`md_code`: a model named ``a|b`` or ``x\\n## y`` must not break a table or add a heading.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from frugal.report.collect import ASSUMED_UNCERTAINTY, Run, Skipped
from frugal.report.compare import FRONTIER_MARK, Comparison, Unresolved
from frugal.report.lifetime import (
    MAX_BREAK_EVEN_ROWS,
    FrontierSpan,
    Line,
    break_evens,
    cheapest,
    dataset_lines,
    frontier_spans,
    lifetime_energy_j,
)
from frugal.report.text import visible
from frugal.report.units import UNKNOWN, percent, plural, seconds, si
from frugal.status import FRONTIER_STATUSES

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
BUDGET_TEXT: dict[str, Callable[[float], str]] = {
    "energy_j": lambda j: f"energy ≤ {si(j, 'J')}",
    "carbon_g": lambda g: f"carbon ≤ {si(g, 'g')}",
    "compute_flop": lambda flop: f"compute ≤ {si(flop, 'FLOP')}",
    "data_samples": lambda n: f"data ≤ {si(n)} samples",
    "time_s": lambda s: f"time ≤ {seconds(s)}",
    "memory_bytes": lambda b: f"memory ≤ {si(b, 'B')}",
    "params": lambda n: f"params ≤ {si(n)}",
}
_MARKUP = re.compile(r"[\\`*\[\]<>|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


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
    return f"{si(run.energy_j, 'J')} {_plus_minus(run.energy_uncertainty)} ({note})"


def md(text: object) -> str:
    """Text safe inside a markdown table cell or list item: control characters shown escaped
    (a newline as ``\\n``), markup characters backslash-escaped."""
    return _MARKUP.sub(lambda m: "\\" + m.group(0), visible(str(text)))


def md_code(text: object) -> str:
    """Text as an inline code span, whatever backticks it holds (pipes still need ``md`` rules
    inside tables, so this is for list items and prose)."""
    text = visible(str(text))
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


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
            f"- Lifetime energy: training + {si(inferences)} predictions at the run's measured "
            "inference energy (`--inferences N` to change); a compressed run also carries its "
            "source run's training. Where it ranks runs differently as N grows: each dataset's "
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
        f"({'estimated' if estimated else 'measured'}, {_plus_minus(uncertainty)})"
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
            f"assumed {_plus_minus(ASSUMED_UNCERTAINTY[False])} for an estimate, "
            f"{_plus_minus(ASSUMED_UNCERTAINTY[True])} for a meter reading"
        )
    return text


def _budgets(runs: Sequence[Run]) -> str:
    described = {_budget_text(run) for run in runs}
    if len(described) > 1:
        return "differ between runs (see `runs.csv`)"
    return described.pop()


def _budget_text(run: Run) -> str:
    limits = [BUDGET_TEXT[key](limit) for key, limit in run.budget.items() if limit is not None]
    return ", ".join(limits) or "none (measured only)"


def _dataset_section(
    comparison: Comparison, dataset: str, indices: Sequence[int], inferences: int
) -> str:
    first = comparison.runs[indices[0]].dataset
    sizes = " / ".join(
        f"{si(n)} {split}"
        for n, split in zip(first.sizes, ("train", "val", "test"), strict=True)
        if n is not None
    )
    title = f"## Dataset: {md(dataset)}" + (f" — {sizes}" if sizes else "")
    parts = [title]
    parts += [_resolution_note(comparison, u) for u in comparison.unresolved.get(dataset, [])]
    parts.append(_runs_table(comparison, indices, inferences))
    if comparison.has_seed_groups(indices):
        parts.append(_seed_table(comparison, indices))
    parts.append(_lifetime_section(comparison, indices, inferences))
    if any(comparison.runs[i].compression for i in indices):
        parts.append(_compression_table(comparison, indices))
    return "\n\n".join(parts)


def _resolution_note(comparison: Comparison, unresolved: Unresolved) -> str:
    """``Energy differences between these runs (451–458 J) are within the ±30% estimate
    uncertainty: the frontier is not resolved in energy.``"""
    digits = 3  # more where 3 would print two different energies alike (54–54 J)
    while digits < 6 and unresolved.low_j != unresolved.high_j:
        if si(unresolved.low_j, "J", digits) != si(unresolved.high_j, "J", digits):
            break
        digits += 1
    low, high = si(unresolved.low_j, "J", digits), si(unresolved.high_j, "J", digits)
    same_unit = low.partition(" ")[2] == high.partition(" ")[2]
    span = f"{low.partition(' ')[0] if same_unit else low}–{high}"  # 451–458 J, 950 J–1.2 kJ
    kind = "estimate" if unresolved.estimated else "meter"
    bound = f"the {_plus_minus(unresolved.uncertainty)} {kind} uncertainty"
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
        header.append(f"lifetime energy ({si(inferences)} predictions)")
    order = sorted(
        indices,
        key=lambda i: (not comparison.on_energy_front[i], _descending(comparison.runs[i].test_acc)),
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
            si(run.compute_flop, "FLOP"),
            si(run.params_effective),
            seconds(run.spent["time_s"]),
            si(run.spent["data_samples"]),
        ]
        if lifetime:
            row.append(si(lifetime_energy_j(run, inferences), "J"))
        rows.append(row)
    return _markdown_table(header, rows)


def _lifetime_section(comparison: Comparison, indices: Sequence[int], inferences: int) -> str:
    """Per dataset: each run's lifetime line, the N where it is on the accuracy / lifetime
    frontier, the cheapest run as N grows, and the break-even N between runs."""
    runs = comparison.runs
    lines = dataset_lines(runs, indices)
    if not lines:
        return ""
    number = {i: comparison.numbers[i] for i in indices}
    spans = frontier_spans(lines)
    order = sorted(
        lines,
        key=lambda ln: (
            spans[ln.index] is None,
            spans[ln.index].low if spans[ln.index] else 0.0,  # type: ignore[union-attr]
            _descending(ln.accuracy),
        ),
    )
    header = (
        "#",
        "run",
        "test acc",
        "training energy",
        "inference (per 1k predictions)",
        f"lifetime ({si(inferences)} predictions)",
        "on the lifetime frontier for",
    )
    rows = [
        (
            str(number[ln.index]),
            md(comparison.labels[ln.index]),
            percent(ln.accuracy),
            si(ln.training_j, "J"),
            si(ln.per_prediction_j * 1000, "J"),
            si(ln.at(inferences), "J"),
            _span_text(spans[ln.index], number),
        )
        for ln in order
    ]
    parts = [
        "### Lifetime energy\n\nTraining + N predictions at the measured inference energy: a "
        "straight line in N per run. A run is on the *lifetime frontier* at N when no other "
        "run has both higher test accuracy and lower lifetime energy there; the ends of its "
        "range are break-even points.",
        _markdown_table(header, rows),
    ]
    compared = {ln.index for ln in lines}
    left_out = [i for i in indices if i not in compared]
    if left_out:
        parts.append(
            f"Not compared: {plural(len(left_out), 'run')} without a measured inference energy, "
            "a known training energy or a test accuracy, or that did not train as planned ("
            + ", ".join(f"#{number[i]}" for i in left_out)
            + ")."
        )
    pieces = cheapest(lines)
    parts.append(
        "Lowest lifetime energy whatever the accuracy: "
        + ", then ".join(
            f"#{number[i]} ({percent(runs[i].test_acc)})" + (f" from N = {si(n)}" if n > 0 else "")
            for n, i in pieces
        )
        + (" at every N." if len(pieces) == 1 else ".")
    )
    parts.append(_break_even_table(comparison, lines, spans, number))
    return "\n\n".join(parts)


def _span_text(span: FrontierSpan | None, number: dict[int, int]) -> str:
    if span is None:
        return "no N"
    if span.low == 0 and math.isinf(span.high):
        return "every N"
    before = f" (below: #{number[span.entered_after]})" if span.entered_after is not None else ""
    after = f" (beyond: #{number[span.left_to]})" if span.left_to is not None else ""
    if span.low == 0:
        return f"N ≤ {si(span.high)}{after}"
    if math.isinf(span.high):
        return f"N ≥ {si(span.low)}{before}"
    return f"{si(span.low)} ≤ N ≤ {si(span.high)}{before}{after}"


def _break_even_table(
    comparison: Comparison,
    lines: Sequence[Line],
    spans: dict[int, FrontierSpan | None],
    number: dict[int, int],
) -> str:
    """Where the lines of two runs on the lifetime frontier (at some N) cross."""
    runs = comparison.runs
    on_frontier = [ln for ln in lines if spans[ln.index] is not None]
    crossings = break_evens(on_frontier)
    if not crossings:
        return (
            "**Break-even N:** none: no two runs on the lifetime frontier change order as N "
            "grows (the one cheaper to train is also the one cheaper to serve)."
        )
    header = (
        "break-even N",
        "lifetime energy there",
        "cheaper below (to train)",
        "cheaper beyond (to serve)",
    )
    rows = [
        (
            si(c.n),
            si(c.energy_j, "J"),
            f"#{number[c.cheap_first]} {md(comparison.labels[c.cheap_first])} "
            f"({percent(runs[c.cheap_first].test_acc)})",
            f"#{number[c.cheap_later]} {md(comparison.labels[c.cheap_later])} "
            f"({percent(runs[c.cheap_later].test_acc)})",
        )
        for c in crossings[:MAX_BREAK_EVEN_ROWS]
    ]
    text = (
        "**Break-even N** between runs on the lifetime frontier: the number of predictions at "
        "which their lifetime energies are equal.\n\n" + _markdown_table(header, rows)
    )
    if len(crossings) > MAX_BREAK_EVEN_ROWS:
        text += f"\n\n… and {len(crossings) - MAX_BREAK_EVEN_ROWS} more pairs, not listed."
    uncertain = [
        runs[ln.index].energy_uncertainty for ln in on_frontier if runs[ln.index].energy_estimated
    ]
    if uncertain:
        text += (
            f"\n\nThe energies are estimates (up to {_plus_minus(max(uncertain))} each): a "
            "break-even N is an order of magnitude, not a figure, and unresolved where two "
            "runs' training or inference energies are within that of each other."
        )
    return text


def _seed_table(comparison: Comparison, indices: Sequence[int]) -> str:
    header = ("config", "runs", "seeds", "test acc (mean ± std)", "energy (mean ± std)")
    rows = []
    for group, members in comparison.by_group(indices).items():
        runs = [comparison.runs[i] for i in members]
        seeds = ", ".join(str(run.seed) for run in runs if run.seed is not None) or UNKNOWN
        accuracy = _mean_std([run.test_acc for run in runs], lambda v: f"{100 * v:.1f}", "%")
        energy = _mean_std([run.energy_j for run in runs], lambda v: si(v, "J"), "")
        if any(run.energy_estimated for run in runs):
            energy += " (est.)"
        rows.append((md(group), str(len(runs)), seeds, accuracy, energy))
    return (
        "### Over seeds\n\nRuns with the same overrides except `seed`; std is the sample "
        "standard deviation, n the runs with a known value.\n\n" + _markdown_table(header, rows)
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
                si(run.energy_j, "J"),
                si(source["energy_j"], "J"),
                si(total_spent(run, "energy_j"), "J"),
                si(total_spent(run, "compute_flop"), "FLOP"),
            )
        )
    return (
        "### Compressed runs\n\nA compressed run starts from another run's checkpoint. Total = "
        "the source run's training + this run's fine-tuning. The frontier above charges the "
        "fine-tuning only: the source's training may be shared by several compressions.\n\n"
        + _markdown_table(header, rows)
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


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [_markdown_row(header), _markdown_row(["---"] * len(header))]
    lines += [_markdown_row(row) for row in rows]
    return "\n".join(lines)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _plus_minus(relative: float) -> str:
    return f"±{100 * relative:.0f}%" if relative >= 0.01 else f"±{100 * relative:.1g}%"


def _descending(value: float | None) -> float:
    """Sort key: larger first, unknown last."""
    return math.inf if value is None else -value


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value
