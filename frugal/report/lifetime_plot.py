"""``lifetime.png``: lifetime energy (training + N predictions) against N, one panel per
dataset (the lines and their frontier: :mod:`frugal.report.lifetime`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

from frugal.core.units import format_amount
from frugal.report import plot_key, plot_style
from frugal.report.compare import Comparison
from frugal.report.lifetime import FrontierSpan, Line, break_evens, dataset_lines, frontier_spans
from frugal.report.plots import MAX_DATASET_ROWS, PANEL_HEIGHT_IN

LIFETIME_N = (1e3, 1e9)  # predictions: the x range of lifetime.png
LIFETIME_POINTS = 200
LIFETIME_PANEL_WIDTH_IN = 5.2
_LOW_N, _HIGH_N = LIFETIME_N
_NS = [_LOW_N * (_HIGH_N / _LOW_N) ** (k / (LIFETIME_POINTS - 1)) for k in range(LIFETIME_POINTS)]


@dataclass
class _Drawn:
    """What the panels drew: the legend and the run numbers follow it."""

    ends: dict[Axes, list[tuple[int, float, bool]]] = field(default_factory=dict)
    shown: list[int] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)  # of line and mark: only those get an entry
    estimated: bool = False


def plot_lifetime(comparison: Comparison, path: Path, inferences: int | None = None) -> None:
    """One panel per dataset: lifetime energy (training + N predictions) against N on log–log
    axes, N from 1e3 to 1e9; one line per run that has a lifetime (trained as planned, test
    accuracy, training and inference energy known). Runs on the training-energy Pareto
    frontier (★) are drawn bold, runs on the accuracy / lifetime frontier at some N solid,
    the others thin and dashed; break-even points between runs on the lifetime frontier are
    marked, and ``inferences`` (the report's N) is a dotted vertical line."""
    runs = comparison.runs
    datasets = list(comparison.by_dataset().items())[:MAX_DATASET_ROWS]
    colors = plot_style.model_colors(runs)
    if inferences is not None and not _LOW_N <= inferences <= _HIGH_N:
        inferences = None  # off the axis: neither drawn nor in the legend
    drawn = _Drawn()
    with matplotlib.rc_context(plot_style.PAPER_STYLE):
        key = plot_key.key_entries(comparison, datasets)
        widths = (LIFETIME_PANEL_WIDTH_IN,)
        fig, panels, key_ax = plot_key.key_figure(len(datasets), widths, PANEL_HEIGHT_IN, key)
        for (ax,), (dataset, indices) in zip(panels, datasets, strict=True):
            _panel(ax, comparison, dataset, indices, colors, inferences, drawn)
        shown_colors = [colors[i] for i in drawn.shown]
        models = plot_style.model_handles([runs[i] for i in drawn.shown], shown_colors)
        plot_style.bottom_legend(fig, _handles(drawn.kinds, inferences) + models)
        plot_key.draw_key(key_ax, comparison, key, colors)
        what = "Lifetime energy: training + N predictions"
        title = plot_style.suptitle(what, comparison, datasets)
        plot_style.layout(fig, title + (" (estimated energy)" if drawn.estimated else ""))
        for ax, points in drawn.ends.items():
            plot_key.number_line_ends(ax, points)
        fig.savefig(path)


def _panel(
    ax: Axes,
    comparison: Comparison,
    dataset: str,
    indices: list[int],
    colors: list[str],
    inferences: int | None,
    drawn: _Drawn,
) -> None:
    lines = dataset_lines(comparison.runs, indices)
    spans = frontier_spans(lines)
    plot_style.row_title(ax, dataset, indices)
    ax.set_xlabel("predictions served, N")
    ax.set_ylabel("lifetime energy (J)")
    if len(lines) < len(indices):
        ax.set_xlabel(
            f"predictions served, N\nnot shown: {len(indices) - len(lines)} of "
            f"{len(indices)} (no lifetime: inference or training energy, accuracy "
            "unknown, or not trained as planned)"
        )
    if not lines:
        plot_style.empty_panel(ax, "no run with a measured inference energy")
        return
    _lines(ax, comparison, lines, spans, colors, drawn)
    _break_evens(ax, [ln for ln in lines if spans[ln.index] is not None], drawn)
    if inferences is not None:
        ax.axvline(inferences, color="0.4", linestyle=":", linewidth=0.9, zorder=1)
    _log_axes(ax)


def _lines(
    ax: Axes,
    comparison: Comparison,
    lines: Sequence[Line],
    spans: dict[int, FrontierSpan | None],
    colors: list[str],
    drawn: _Drawn,
) -> None:
    """Others first, then lifetime-frontier runs, then ★ runs on top."""
    front = comparison.on_energy_front
    for line in sorted(lines, key=lambda ln: (front[ln.index], spans[ln.index] is not None)):
        i = line.index
        star, on_lifetime = front[i], spans[i] is not None
        ax.plot(
            _NS,
            [line.at(n) for n in _NS],
            color=colors[i],
            linewidth=2.2 if star else 1.3 if on_lifetime else 0.9,
            linestyle="-" if star or on_lifetime else "--",
            alpha=1.0 if star or on_lifetime else 0.6,
            zorder=3 if star else 2.5 if on_lifetime else 2,
        )
        drawn.estimated |= comparison.runs[i].energy_estimated
        drawn.shown.append(i)
        drawn.kinds.add("star" if star else "lifetime" if on_lifetime else "other")
        drawn.ends.setdefault(ax, []).append((comparison.numbers[i], line.at(_NS[-1]), star))


def _break_evens(ax: Axes, frontier: Sequence[Line], drawn: _Drawn) -> None:
    crossings = [c for c in break_evens(frontier) if _LOW_N <= c.n <= _HIGH_N]
    if not crossings:
        return
    drawn.kinds.add("break-even")
    ax.scatter(
        [c.n for c in crossings],
        [c.energy_j for c in crossings],
        s=22,
        marker="o",
        facecolors="white",
        edgecolors="0.15",
        linewidths=1.0,
        zorder=4,
    )


def _log_axes(ax: Axes) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(_LOW_N, _HIGH_N)
    ax.xaxis.set_major_locator(LogLocator(numticks=8))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _handles(kinds: set[str], inferences: int | None) -> list[object]:
    samples = {
        "star": Line2D([], [], color="0.2", linewidth=2.2, label="★ training-energy frontier"),
        "lifetime": Line2D(
            [], [], color="0.2", linewidth=1.3, label="on the lifetime frontier at some N"
        ),
        "other": Line2D(
            [], [], color="0.2", linewidth=0.9, linestyle="--", alpha=0.6, label="other runs"
        ),
        "break-even": plot_style.sample(
            "o", "break-even between lifetime-frontier runs", face="white", edge="0.15"
        ),
    }
    handles: list[object] = [sample for kind, sample in samples.items() if kind in kinds]
    if inferences is not None:
        label = f"report's N = {format_amount(inferences)}"
        handles.append(Line2D([], [], color="0.4", linestyle=":", label=label))
    return handles
