"""``size_search.png``: each size-search run's pilot curves, their fits and predictions, and
what the chosen size then did (:mod:`frugal.report.size_search` reads them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from frugal.report import plot_style
from frugal.report.compare import Comparison
from frugal.report.size_search import Candidate, SizeSearch, run_title
from frugal.report.text import key_amount, key_name, key_unit, plural

MAX_PANELS = 8  # size-search runs drawn; report.md lists them all
FIT_POINTS = 120  # samples of a fitted curve, log-spaced


def plot_size_search(searches: Sequence[SizeSearch], comparison: Comparison, path: Path) -> None:
    """One panel per size-search run: each candidate's pilot readings (markers) and fitted
    curve (line) out to the end of the budget, its prediction (a diamond), the chosen one bold
    with a ★, what the chosen model then did (black), and the run's budget (dotted); x is the
    spent budget key on a log axis."""
    shown = list(searches)[:MAX_PANELS]
    with matplotlib.rc_context(plot_style.PAPER_STYLE):
        fig = Figure(figsize=(7.6, 3.3 * len(shown) + 0.9))
        FigureCanvasAgg(fig)
        axes = [fig.add_subplot(len(shown), 1, r + 1) for r in range(len(shown))]
        for ax, search in zip(axes, shown, strict=True):
            _panel(ax, search, comparison)
            if ax.get_xscale() == "log":
                _log_ticks(ax, search.budget_key)
        plot_style.bottom_legend(fig, _handles())
        title = f"Size search: {plural(len(searches), 'run')}"
        if len(searches) > len(shown):
            title += f"; first {len(shown)} shown, all in report.md"
        height_in = fig.get_figheight()
        fig.suptitle(title, y=1 - 0.05 / height_in, va="top")
        fig.tight_layout(rect=(0, 0.55 / height_in, 1, 1))
        fig.savefig(path)


def _log_ticks(ax: Axes, key: str) -> None:
    """Amounts of ``key`` on the log x axis; under 3 decades, 2× and 5× labelled too."""
    ax.xaxis.set_major_locator(LogLocator(numticks=8))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: key_amount(key, v)))
    low, high = ax.get_xlim()
    if high / low < 1000:
        ax.xaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: key_amount(key, v)))
    else:
        ax.xaxis.set_minor_formatter(NullFormatter())


def _handles() -> list[object]:
    return [
        Line2D([], [], color="0.3", marker="o", linestyle="", markersize=4, label="pilot reading"),
        Line2D([], [], color="0.3", linewidth=1.1, label="fit, out to the budget"),
        plot_style.sample("D", "prediction at the end", face="white", edge="0.3"),
        Line2D([], [], color="0.3", linewidth=2.4, label="★ chosen size"),
        Line2D([], [], color="black", marker=".", linewidth=1.3, label="what happened (chosen)"),
        plot_style.sample("*", "achieved", face="black", edge="black"),
        Line2D([], [], color="0.4", linestyle=":", label="run budget"),
    ]


def _panel(ax: Axes, search: SizeSearch, comparison: Comparison) -> None:
    key, metric = search.budget_key, search.metric
    title = f"{run_title(search.run_dir, comparison)} · {search.knob} by {metric}"
    ax.set_title(plot_style.plain(title, 90), loc="left", fontweight="bold", parse_math=False)
    ax.set_ylabel(plot_style.plain(metric, 40), parse_math=False)
    xs_all: list[float] = []
    dropped = 0
    candidates = sorted(search.candidates, key=lambda c: c.size)
    for k, candidate in enumerate(candidates):
        color = plot_style.OKABE_ITO[k % (len(plot_style.OKABE_ITO) - 1)]  # black: what happened
        dropped += _candidate(ax, search, candidate, color, xs_all)
    dropped += _outcome(ax, search, xs_all)
    unit = key_unit(key)
    xlabel = f"{key_name(key)} spent" + (f" ({unit}, log)" if unit else " (log)")
    if dropped:
        xlabel += f"\nnot shown: {plural(dropped, 'reading')} at 0 (no log position)"
    ax.set_xlabel(plot_style.plain(xlabel, 120), parse_math=False)
    if not xs_all:
        plot_style.empty_panel(ax, "no reading with a positive spend")
        return
    ax.set_xscale("log")
    ax.set_xlim(min(xs_all) / 1.3, max(xs_all) * 1.3)
    if search.higher_is_better and all(0 <= y <= 1 for c in candidates for _, y in c.points):
        plot_style.percent_axis(ax)
    legend = ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        title=plot_style.plain(search.knob, 30),
    )
    for text in [*legend.get_texts(), legend.get_title()]:
        text.set_parse_math(False)


def _candidate(
    ax: Axes, search: SizeSearch, candidate: Candidate, color: str, xs_all: list[float]
) -> int:
    """One candidate's readings, fit and prediction; returns the readings at 0 not drawn."""
    best = candidate is search.chosen
    label = f"{'★ ' if best else ''}{candidate.label}"
    points = [(x, y) for x, y in candidate.points if x > 0]
    if points:
        px, py = zip(*points, strict=True)
        ax.plot(
            px,
            py,
            linestyle="",
            marker="o",
            markersize=4.5 if best else 3.2,
            color=color,
            markeredgecolor="black" if best else color,
            markeredgewidth=0.6,
            zorder=3,
        )
        xs_all += px
    end = search.prediction_x(candidate)
    _fit_line(ax, search, candidate, points, end, color, label)
    if candidate.predicted is not None and end is not None and end > 0:
        ax.scatter(
            [end],
            [candidate.predicted],
            marker="D",
            s=40 if best else 24,
            facecolors="white",
            edgecolors=color,
            linewidths=1.8 if best else 1.1,
            zorder=4,
        )
        xs_all.append(end)
    return len(candidate.points) - len(points)


def _fit_line(
    ax: Axes,
    search: SizeSearch,
    candidate: Candidate,
    points: Sequence[tuple[float, float]],
    end: float | None,
    color: str,
    label: str,
) -> None:
    """The candidate's fit from its first reading out to its prediction (or the budget); a
    key entry with its readings' marker when there is no fit to draw."""
    best = candidate is search.chosen
    grid: list[float] = []
    fitted: list[float | None] = []
    if candidate.fit is not None and points:
        low = min(x for x, _ in points)
        high = max(end or low, search.budget or low, low * 1.01)
        grid = [low * (high / low) ** (j / (FIT_POINTS - 1)) for j in range(FIT_POINTS)]
        fitted = [search.fitted(candidate, x) for x in grid]
    if any(y is not None for y in fitted):
        ax.plot(
            grid,
            [math.nan if y is None else y for y in fitted],
            color=color,
            linewidth=2.4 if best else 1.1,
            alpha=1.0 if best else 0.85,
            zorder=2.6 if best else 2,
            label=label,
        )
    else:  # readings only: a marker in the key
        label += " (no fit)" if candidate.fit is None else " (fit failed)"
        ax.plot([], [], color=color, linestyle="", marker="o", markersize=3.2, label=label)


def _outcome(ax: Axes, search: SizeSearch, xs_all: list[float]) -> int:
    """What the chosen size did in its final run, what it achieved, and the run's budget;
    returns the readings at 0 not drawn."""
    final = [(x, y) for x, y in search.final_points if x > 0]
    if final:
        fx, fy = zip(*final, strict=True)
        ax.plot(fx, fy, color="black", marker=".", markersize=3, linewidth=1.3, zorder=3.5)
        xs_all += fx
    achieved = search.achieved_metric()
    achieved_x = final[-1][0] if final else search.predicted_at
    if achieved is not None and achieved_x:
        ax.scatter([achieved_x], [achieved], marker="*", s=90, color="black", zorder=5)
        xs_all.append(achieved_x)
    if search.budget:
        ax.axvline(search.budget, color="0.4", linestyle=":", linewidth=1.0, zorder=1)
        xs_all.append(search.budget)
    return len(search.final_points) - len(final)
