"""report.md's *Lifetime energy* section of a dataset: each run's lifetime line (training + N
predictions), the N where it is on the accuracy / lifetime frontier, the cheapest run as N
grows, and the break-even N between runs (the lines: :mod:`frugal.report.lifetime`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from frugal.core.units import format_amount, percent
from frugal.report.compare import Comparison
from frugal.report.lifetime import (
    MAX_BREAK_EVEN_ROWS,
    FrontierSpan,
    Line,
    break_evens,
    cheapest,
    dataset_lines,
    frontier_spans,
)
from frugal.report.markdown import markdown_table, md
from frugal.report.text import descending, plural, plus_minus


def lifetime_section(comparison: Comparison, indices: Sequence[int], inferences: int) -> str:
    """Per dataset: each run's lifetime line, the N where it is on the accuracy / lifetime
    frontier, the cheapest run as N grows, and the break-even N between runs."""
    lines = dataset_lines(comparison.runs, indices)
    if not lines:
        return ""
    number = {i: comparison.numbers[i] for i in indices}
    spans = frontier_spans(lines)
    parts = [
        "### Lifetime energy\n\nTraining + N predictions at the measured inference energy: a "
        "straight line in N per run. A run is on the *lifetime frontier* at N when no other "
        "run has both higher test accuracy and lower lifetime energy there; the ends of its "
        "range are break-even points.",
        _lifetime_table(comparison, lines, spans, number, inferences),
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
    parts.append(_cheapest_line(comparison, lines, number))
    parts.append(_break_even_table(comparison, lines, spans, number))
    return "\n\n".join(parts)


def _lifetime_table(
    comparison: Comparison,
    lines: Sequence[Line],
    spans: dict[int, FrontierSpan | None],
    number: dict[int, int],
    inferences: int,
) -> str:
    order = sorted(
        lines,
        key=lambda ln: (
            spans[ln.index] is None,
            spans[ln.index].low if spans[ln.index] else 0.0,  # type: ignore[union-attr]
            descending(ln.accuracy),
        ),
    )
    header = (
        "#",
        "run",
        "test acc",
        "training energy",
        "inference (per 1k predictions)",
        f"lifetime ({format_amount(inferences)} predictions)",
        "on the lifetime frontier for",
    )
    rows = [
        (
            str(number[ln.index]),
            md(comparison.labels[ln.index]),
            percent(ln.accuracy),
            format_amount(ln.training_j, "J"),
            format_amount(ln.per_prediction_j * 1000, "J"),
            format_amount(ln.at(inferences), "J"),
            _span_text(spans[ln.index], number),
        )
        for ln in order
    ]
    return markdown_table(header, rows)


def _cheapest_line(comparison: Comparison, lines: Sequence[Line], number: dict[int, int]) -> str:
    pieces = cheapest(lines)
    return (
        "Lowest lifetime energy whatever the accuracy: "
        + ", then ".join(
            f"#{number[i]} ({percent(comparison.runs[i].test_acc)})"
            + (f" from N = {format_amount(n)}" if n > 0 else "")
            for n, i in pieces
        )
        + (" at every N." if len(pieces) == 1 else ".")
    )


def _span_text(span: FrontierSpan | None, number: dict[int, int]) -> str:
    if span is None:
        return "no N"
    if span.low == 0 and math.isinf(span.high):
        return "every N"
    before = f" (below: #{number[span.entered_after]})" if span.entered_after is not None else ""
    after = f" (beyond: #{number[span.left_to]})" if span.left_to is not None else ""
    if span.low == 0:
        return f"N ≤ {format_amount(span.high)}{after}"
    if math.isinf(span.high):
        return f"N ≥ {format_amount(span.low)}{before}"
    return f"{format_amount(span.low)} ≤ N ≤ {format_amount(span.high)}{before}{after}"


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
            format_amount(c.n),
            format_amount(c.energy_j, "J"),
            f"#{number[c.cheap_first]} {md(comparison.labels[c.cheap_first])} "
            f"({percent(runs[c.cheap_first].test_acc)})",
            f"#{number[c.cheap_later]} {md(comparison.labels[c.cheap_later])} "
            f"({percent(runs[c.cheap_later].test_acc)})",
        )
        for c in crossings[:MAX_BREAK_EVEN_ROWS]
    ]
    text = (
        "**Break-even N** between runs on the lifetime frontier: the number of predictions at "
        "which their lifetime energies are equal.\n\n" + markdown_table(header, rows)
    )
    if len(crossings) > MAX_BREAK_EVEN_ROWS:
        text += f"\n\n… and {len(crossings) - MAX_BREAK_EVEN_ROWS} more pairs, not listed."
    uncertain = [
        runs[ln.index].energy_uncertainty for ln in on_frontier if runs[ln.index].energy_estimated
    ]
    if uncertain:
        text += (
            f"\n\nThe energies are estimates (up to {plus_minus(max(uncertain))} each): a "
            "break-even N is an order of magnitude, not a figure, and unresolved where two "
            "runs' training or inference energies are within that of each other."
        )
    return text
