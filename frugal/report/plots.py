"""``pareto.png`` (test accuracy against energy and FLOPs) and ``curves.png`` (validation
accuracy during training), one row of panels per dataset.

What the plots promise: points carry the run numbers of ``report.md`` (a key beside the panels
names them), estimated energy is hollow and every energy has a horizontal error bar of its
uncertainty, accuracy is in percent, a cost axis is logarithmic only when the costs span a
decade or more and none is 0 (a log axis would silently drop a 0 J point), and curves are drawn
from the recorded readings, with an unknown reading a gap in the line (never 0, never skipped
over).

Shared by every figure: :mod:`frugal.report.plot_style` (colours, style, legend) and
:mod:`frugal.report.plot_key` (run numbers and the key); ``lifetime.png`` is drawn by
:mod:`frugal.report.lifetime_plot`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullFormatter

from frugal.core.status import Status
from frugal.report import plot_key, plot_style
from frugal.report.collect import Run
from frugal.report.compare import Comparison
from frugal.report.plot_key import FRONT_SIZE_FACTOR, MARKER_SIZE_PT2
from frugal.report.plot_style import PAPER_STYLE

STATUS_MARKERS = {Status.COMPLETED: "o", Status.BUDGET_EXHAUSTED: "s"}
OTHER_STATUS_MARKER = "X"  # diverged, interrupted, …, write_failed: never on a frontier
MAX_DATASET_ROWS = 8  # more datasets than this: report.md has them all
MAX_CURVE_POINTS = 2000  # per curve and panel; longer curves are thinned for drawing only
LOG_SPAN = 10.0  # a cost axis is logarithmic when its costs span at least this ratio
PANEL_WIDTH_IN = 3.6
PANEL_HEIGHT_IN = 2.9


@dataclass(frozen=True)
class _CostPanel:
    """One panel of pareto.png: test accuracy against one cost."""

    name: str
    axis_label: str  # what and which unit: "training energy (J)"
    costs: Sequence[float | None]
    on_front: Sequence[bool]
    energy: bool  # hollow estimates and uncertainty bars


def plot_pareto(comparison: Comparison, path: Path) -> None:
    """One row per dataset: test accuracy against training energy (with uncertainty bars) and
    against training FLOPs, each with its Pareto frontier as a step line; a numbered key."""
    runs = comparison.runs
    panels = (
        _CostPanel(
            "energy",
            "training energy (J)",
            [r.energy_j for r in runs],
            comparison.on_energy_front,
            energy=True,
        ),
        _CostPanel(
            "compute",
            "training compute (FLOP)",
            [r.compute_flop for r in runs],
            comparison.on_flop_front,
            energy=False,
        ),
    )
    datasets = list(comparison.by_dataset().items())[:MAX_DATASET_ROWS]
    colors = plot_style.model_colors(runs)
    with matplotlib.rc_context(PAPER_STYLE):
        key = plot_key.key_entries(comparison, datasets)
        fig, rows, key_ax = _figure(len(datasets), key)
        for (dataset, indices), axes in zip(datasets, rows, strict=True):
            for ax, panel in zip(axes, panels, strict=True):
                _pareto_panel(ax, comparison, indices, panel, colors)
            plot_style.row_title(axes[0], dataset, indices)
            note = _unresolved_note(comparison, dataset)
            if note:
                axes[0].set_xlabel(f"{axes[0].get_xlabel()}\n{note}")
        plot_style.bottom_legend(fig, _pareto_handles(comparison, datasets, colors))
        plot_key.draw_key(key_ax, comparison, key, colors)
        plot_style.layout(
            fig, plot_style.suptitle("Test accuracy against training cost", comparison, datasets)
        )
        for (_, indices), axes in zip(datasets, rows, strict=True):
            for ax, panel in zip(axes, panels, strict=True):
                points = [
                    (comparison.numbers[i], panel.costs[i], runs[i].test_acc, panel.on_front[i])
                    for i in indices
                    if panel.costs[i] is not None and runs[i].test_acc is not None
                ]
                plot_key.number_points(ax, points)  # type: ignore[arg-type]
        fig.savefig(path)


def plot_curves(comparison: Comparison, path: Path) -> None:
    """One row per dataset: validation accuracy against cumulative training energy and against
    training samples, from the readings of ``curve.csv``; an unknown reading is a gap."""
    datasets = list(comparison.by_dataset().items())[:MAX_DATASET_ROWS]
    colors = plot_style.model_colors(comparison.runs)
    with matplotlib.rc_context(PAPER_STYLE):
        key = plot_key.key_entries(comparison, datasets)
        fig, rows, key_ax = _figure(len(datasets), key)
        estimated_drawn = False
        ends: dict[Axes, list[tuple[int, float, float, bool]]] = {}
        for (dataset, indices), (energy_ax, samples_ax) in zip(datasets, rows, strict=True):
            estimated_drawn |= _curve_row(energy_ax, samples_ax, comparison, indices, colors, ends)
            plot_style.row_title(energy_ax, dataset, indices)
        handles: list[object] = [
            Line2D([], [], color="0.3", marker="o", markersize=3, label="a reading (gap: unknown)")
        ]
        if estimated_drawn:
            handles.append(Line2D([], [], color="0.3", linestyle="--", label="estimated energy"))
        plot_style.bottom_legend(fig, handles + plot_style.model_handles(comparison.runs, colors))
        plot_key.draw_key(key_ax, comparison, key, colors)
        plot_style.layout(
            fig, plot_style.suptitle("Validation accuracy during training", comparison, datasets)
        )
        for ax, points in ends.items():
            plot_key.number_points(ax, points)
        fig.savefig(path)


def _figure(datasets: int, key: plot_key.Key) -> tuple[Figure, list[tuple[Axes, Axes]], Axes]:
    """Two panels per dataset row and the key column."""
    widths = (PANEL_WIDTH_IN, PANEL_WIDTH_IN)
    fig, panels, key_ax = plot_key.key_figure(datasets, widths, PANEL_HEIGHT_IN, key)
    return fig, [(energy, samples) for energy, samples in panels], key_ax


def _pareto_panel(
    ax: Axes, comparison: Comparison, indices: Sequence[int], panel: _CostPanel, colors: list[str]
) -> None:
    runs = comparison.runs
    shown = [i for i in indices if panel.costs[i] is not None and runs[i].test_acc is not None]
    hidden = len(indices) - len(shown)
    xlabel = panel.axis_label
    if hidden:
        xlabel += f"\nnot shown: {hidden} of {len(indices)} (accuracy or {panel.name} unknown)"
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    if not shown:
        plot_style.empty_panel(ax, f"no run with both a test accuracy and {panel.name}")
        return
    highs = []
    for i in shown:
        run, cost, front = runs[i], panel.costs[i], panel.on_front[i]
        assert cost is not None
        error = run.energy_uncertainty * cost if panel.energy else 0.0
        highs.append(cost + error)
        if panel.energy:
            ax.errorbar(
                cost,
                run.test_acc,
                xerr=[[min(error, cost)], [error]],  # an energy is never below 0
                fmt="none",
                ecolor=colors[i],
                elinewidth=0.8,
                capsize=2,
                alpha=0.75,
                zorder=2,
            )
        hollow = panel.energy and run.energy_estimated
        ax.scatter(
            cost,
            run.test_acc,
            s=MARKER_SIZE_PT2 * (FRONT_SIZE_FACTOR if front else 1),
            marker=STATUS_MARKERS.get(run.status, OTHER_STATUS_MARKER),
            facecolors="white" if hollow else colors[i],
            edgecolors="black" if front and not hollow else colors[i],
            linewidths=1.5 if hollow else 0.8,
            zorder=3,
            clip_on=False,  # a 0 J point on the axis is drawn whole
        )
    front = sorted((panel.costs[i], runs[i].test_acc) for i in shown if panel.on_front[i])
    if front:
        xs, ys = zip(*front, strict=True)
        ax.step(xs, ys, where="post", color="0.2", linewidth=1.0, zorder=2.5)
    ax.margins(x=0.08, y=0.12)
    _cost_axis(ax, [panel.costs[i] for i in shown], highs)  # type: ignore[misc]
    plot_style.percent_axis(ax)


def _cost_axis(
    ax: Axes, costs: Sequence[float], highs: Sequence[float], from_zero: bool = False
) -> None:
    """A cost axis that drops no point: logarithmic when the costs span a decade or more and
    none is 0, symmetric-log (linear up to the smallest positive cost, log above) when some are
    0, linear when they span less (from 0 with ``from_zero``). Tick labels in SI prefixes
    without the unit (the axis label has it), few enough not to collide."""
    positive = [c for c in costs if c > 0]
    if not positive or max(costs) < LOG_SPAN * min(positive):
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xlim(left=0.0 if from_zero else max(0.0, ax.get_xlim()[0]))
        return
    if len(positive) < len(costs):
        threshold = 10 ** math.floor(math.log10(min(positive)))
        ax.set_xscale("symlog", linthresh=threshold, linscale=0.4)
        ax.set_xlim(left=0, right=max(highs) * 1.5)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(NullFormatter())
        return
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(numticks=6))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    low, high = ax.get_xlim()
    if high / low < 300:  # under 2.5 decades: too few majors; label 2× and 5× too
        ax.xaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        ax.xaxis.set_minor_formatter(EngFormatter(sep=""))
    else:
        ax.xaxis.set_minor_formatter(NullFormatter())


def _curve_row(
    energy_ax: Axes,
    samples_ax: Axes,
    comparison: Comparison,
    indices: Sequence[int],
    colors: list[str],
    ends: dict[Axes, list[tuple[int, float, float, bool]]],
) -> bool:
    """Draw one dataset's curves, noting in ``ends`` where each run's number goes (its last
    reading); returns whether an estimated-energy curve was drawn."""
    with_curve = [i for i in indices if comparison.runs[i].curve is not None]
    without_energy, estimated_drawn = 0, False
    for i in with_curve:
        run = comparison.runs[i]
        curve = run.curve
        assert curve is not None
        style = {"color": colors[i], "marker": "o", "markersize": 2.5, "linewidth": 1.1}
        accuracy = _nan_for_unknown(curve.val_acc)
        front = comparison.on_energy_front[i]
        end = _draw_curve(samples_ax, _nan_for_unknown(curve.samples), accuracy, style)
        if end:
            ends.setdefault(samples_ax, []).append((comparison.numbers[i], *end, front))
        if all(e is None for e in curve.energy_j):
            without_energy += 1
            continue
        estimated_drawn |= run.energy_estimated
        style["linestyle"] = "--" if run.energy_estimated else "-"
        end = _draw_curve(energy_ax, _nan_for_unknown(curve.energy_j), accuracy, style)
        if end:
            ends.setdefault(energy_ax, []).append((comparison.numbers[i], *end, front))
    _curve_axes(energy_ax, samples_ax, [comparison.runs[i] for i in with_curve], without_energy)
    return estimated_drawn


def _curve_axes(
    energy_ax: Axes, samples_ax: Axes, runs: Sequence[Run], without_energy: int
) -> None:
    """Labels and scales of one dataset's curve panels (``runs``: those with a curve)."""
    energy_ax.set_xlabel("cumulative training energy (J)")
    samples_ax.set_xlabel("training samples seen")
    for ax in (energy_ax, samples_ax):
        ax.set_ylabel("validation accuracy")
    if not runs:
        for ax in (energy_ax, samples_ax):
            plot_style.empty_panel(ax, "no readable curve.csv")
        return
    samples_ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    samples_ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    samples_ax.set_xlim(left=0)
    plot_style.percent_axis(samples_ax)
    if without_energy == len(runs):
        plot_style.empty_panel(
            energy_ax, "energy unknown for every run:\nsee accuracy vs samples →"
        )
        return
    if without_energy:
        energy_ax.set_xlabel(
            f"cumulative training energy (J)\nnot shown: {without_energy} of {len(runs)} "
            "(energy unknown)"
        )
    readings = [e for run in runs if run.curve for e in run.curve.energy_j if e is not None]
    _cost_axis(energy_ax, readings, readings, from_zero=True)
    plot_style.percent_axis(energy_ax)


def _draw_curve(
    ax: Axes, xs: list[float], ys: list[float], style: dict[str, object]
) -> tuple[float, float] | None:
    """One run's readings; NaN (unknown) breaks the line. Returns the last known reading."""
    step = max(1, math.ceil(len(xs) / MAX_CURVE_POINTS))
    if step > 1:
        xs, ys = xs[::step] + xs[-1:], ys[::step] + ys[-1:]
    ax.plot(xs, ys, **style)  # type: ignore[arg-type]
    known = [(x, y) for x, y in zip(xs, ys, strict=True) if not (math.isnan(x) or math.isnan(y))]
    return known[-1] if known else None


def _pareto_handles(
    comparison: Comparison, datasets: Sequence[tuple[str, list[int]]], colors: list[str]
) -> list[object]:
    """Legend entries for what the panels show, each sample drawn as the panels draw it."""
    runs = comparison.runs
    shown = [i for _, indices in datasets for i in indices if runs[i].test_acc is not None]
    shapes = {STATUS_MARKERS.get(runs[i].status, OTHER_STATUS_MARKER) for i in shown}
    handles: list[object] = [
        Line2D(
            [], [], color="0.2", linewidth=1.0, label="Pareto frontier (★ in key: the energy one)"
        )
    ]
    names = {"o": "completed", "s": "stopped by budget", "X": "did not train as planned"}
    for shape in ("o", "s", "X"):
        if shape in shapes:
            handles.append(plot_style.sample(shape, names[shape], face="0.55", edge="0.3"))
    hollow_shapes = sorted(
        {
            STATUS_MARKERS.get(runs[i].status, OTHER_STATUS_MARKER)
            for i in shown
            if runs[i].energy_estimated
        }
    )
    if hollow_shapes:
        handles.append(
            (
                tuple(
                    plot_style.sample(s, "", face="white", edge="0.3", width=1.5)
                    for s in hollow_shapes
                ),
                "hollow: estimated energy",
            )
        )
    if any(runs[i].energy_j is not None for i in shown):
        bar = Line2D([], [], color="0.3", marker="|", markersize=5, linewidth=0.8)
        handles.append((bar, "bar: energy uncertainty"))
    return handles + plot_style.model_handles(runs, colors)


def _unresolved_note(comparison: Comparison, dataset: str) -> str:
    whole = [u for u in comparison.unresolved.get(dataset, []) if u.whole]
    if not whole:
        return ""
    if whole[0].low_j == whole[0].high_j:
        return "equal in energy: compare on accuracy"
    kind = "estimate" if whole[0].estimated else "meter"
    return f"not resolved in energy (±{100 * whole[0].uncertainty:.0f}% {kind})"


def _nan_for_unknown(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]
