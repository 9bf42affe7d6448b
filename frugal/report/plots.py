"""``pareto.png`` (test accuracy against energy and FLOPs) and ``curves.png`` (validation
accuracy during training).

Figures are drawn on an Agg canvas directly, not through pyplot: no display, no global backend
switch, nothing left open."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter
from matplotlib.transforms import Bbox

from frugal.report.collect import Run
from frugal.report.compare import FRONTIER_MARK, Comparison
from frugal.report.units import plural

STATUS_MARKERS = {"completed": "o", "budget_exhausted": "s"}
OTHER_STATUS_MARKER = "X"  # diverged, interrupted
MARKER_SIZE_PT2 = 60
LABEL_FONT_SIZE = 7
CURVE_MARKERS = ("o", "^", "s", "D", "v")
# Label offsets tried around a point (ring, dx_pt, dy_pt), nearest ring first; labels beyond
# the first ring get a leader line to their point.
_LABEL_OFFSETS = [
    (ring, dx * ring, dy * ring)
    for ring in (1, 2, 3, 4)
    for dx, dy in ((6, 5), (6, -5), (-6, 5), (-6, -5), (8, 0), (-8, 0), (0, 8), (0, -8))
]


def plot_pareto(comparison: Comparison, path: Path) -> None:
    """Two panels: test accuracy against energy (J) and against training FLOPs, log x axes,
    each with its Pareto frontier as a step line."""
    fig, axes = _figure()
    colors = _group_colors(comparison.groups)
    panels = (
        _CostPanel(
            name="energy",
            unit="J",
            xlabel="training energy (J, log scale)",
            on_front=comparison.on_energy_front,
            costs=[r.energy_j for r in comparison.runs],
            hollow_estimates=True,
        ),
        _CostPanel(
            name="training FLOPs",
            unit="FLOP",
            xlabel="training compute (FLOP, log scale)",
            on_front=comparison.on_flop_front,
            costs=[r.compute_flop for r in comparison.runs],
            hollow_estimates=False,
        ),
    )
    for ax, panel in zip(axes, panels, strict=True):
        _pareto_panel(ax, comparison, panel, colors)
        ax.set_title(f"Test accuracy vs {panel.name}")
        ax.set_xlabel(panel.xlabel + _not_shown_note(comparison.runs, panel))
        ax.set_ylabel("test accuracy")
    fig.suptitle(f"frugal report: {plural(len(comparison.runs), 'run')}")
    legend = _pareto_legend(comparison.runs)
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    for ax, panel in zip(axes, panels, strict=True):
        _label_points(ax, panel, comparison)
    fig.savefig(path)


def plot_curves(comparison: Comparison, path: Path) -> None:
    """Validation accuracy against cumulative energy (runs with energy readings) and against
    training samples (every run with a curve)."""
    fig, (energy_ax, samples_ax) = _figure()
    colors = matplotlib.colormaps["tab10"].colors  # after 10 runs, the marker changes
    handles: list[Line2D] = []
    without_energy = 0
    estimated_drawn = False
    for i, run in enumerate(comparison.runs):
        if run.curve is None:
            continue
        style = {
            "color": colors[i % len(colors)],
            "marker": CURVE_MARKERS[i // len(colors) % len(CURVE_MARKERS)],
            "markersize": 4,
            "linewidth": 1.4,
        }
        label = comparison.labels[i]
        samples, accuracy = _known_pairs(run.curve.samples, run.curve.val_acc)
        (line,) = samples_ax.plot(samples, accuracy, label=label, **style)
        handles.append(line)
        energy, accuracy = _known_pairs(run.curve.energy_j, run.curve.val_acc, positive=True)
        if energy:
            estimated_drawn = estimated_drawn or run.energy_estimated
            energy_ax.plot(
                energy, accuracy, linestyle="--" if run.energy_estimated else "-", **style
            )
        else:
            without_energy += 1
    _curve_axes(energy_ax, samples_ax, with_curves=len(handles), without_energy=without_energy)
    if estimated_drawn:
        handles.append(
            Line2D([], [], color="0.4", linestyle="--", label="dashed: estimated energy")
        )
    fig.suptitle("Validation accuracy during training")
    if handles:
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=min(4, len(handles)),
            fontsize=8,
            frameon=False,
        )
    rows = math.ceil(len(handles) / 4)
    fig.tight_layout(rect=(0, min(0.4, 0.035 * rows + 0.02), 1, 1))
    fig.savefig(path)


@dataclass(frozen=True)
class _CostPanel:
    """One panel of pareto.png: test accuracy against one cost."""

    name: str
    unit: str
    xlabel: str
    on_front: Sequence[bool]
    costs: Sequence[float | None]
    hollow_estimates: bool  # hollow markers for estimated energy


def _pareto_panel(
    ax: Axes, comparison: Comparison, panel: _CostPanel, colors: Sequence[object]
) -> None:
    costs, on_front = panel.costs, panel.on_front
    if not any(_plottable(c, r.test_acc) for c, r in zip(costs, comparison.runs, strict=True)):
        _empty_panel(ax, f"no run with both a test accuracy and {panel.name}")
        return
    for i, run in enumerate(comparison.runs):
        if not _plottable(costs[i], run.test_acc):
            continue
        hollow = panel.hollow_estimates and run.energy_estimated
        ax.scatter(
            costs[i],
            run.test_acc,
            s=MARKER_SIZE_PT2 * (1.6 if on_front[i] else 1),
            marker=STATUS_MARKERS.get(run.status, OTHER_STATUS_MARKER),
            facecolors="none" if hollow else colors[i],
            edgecolors="black" if on_front[i] and not hollow else colors[i],
            linewidths=1.8 if hollow else 0.8,
            zorder=3,
        )
    front = sorted((costs[i], comparison.runs[i].test_acc) for i, f in enumerate(on_front) if f)
    if front:
        xs, ys = zip(*front, strict=True)
        ax.step(xs, ys, where="post", color="0.3", linewidth=1.2, zorder=2)
    ax.margins(x=0.2, y=0.12)
    _log_x_axis(ax, panel.unit)
    ax.grid(True, which="major", alpha=0.3)


def _figure() -> tuple[Figure, Sequence[Axes]]:
    fig = Figure(figsize=(14, 6), dpi=120)
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig, fig.subplots(1, 2)


def _palette(n_colors: int) -> Sequence[object]:
    return matplotlib.colormaps["tab10" if n_colors <= 10 else "tab20"].colors


def _label_points(ax: Axes, panel: _CostPanel, comparison: Comparison) -> None:
    """Label each point, choosing for each the nearest offset whose text overlaps no marker,
    no earlier label and stays inside the axes (greedy; fine for tens of points)."""
    costs, on_front = panel.costs, panel.on_front
    renderer = ax.figure.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    points = [
        (i, ax.transData.transform((costs[i], run.test_acc)))
        for i, run in enumerate(comparison.runs)
        if _plottable(costs[i], run.test_acc)
    ]
    marker_px = math.sqrt(MARKER_SIZE_PT2) * ax.figure.dpi / 72  # diameter
    occupied = [
        Bbox.from_bounds(x - marker_px / 2, y - marker_px / 2, marker_px, marker_px)
        for _, (x, y) in points
    ]
    for i, _ in sorted(points, key=lambda p: -p[1][1]):  # top to bottom
        text = f"{FRONTIER_MARK} {comparison.labels[i]}" if on_front[i] else comparison.labels[i]
        xy = (costs[i], comparison.runs[i].test_acc)
        best: tuple[tuple[bool, int], Annotation, Bbox] | None = None
        for ring, dx, dy in _LABEL_OFFSETS:
            annotation = _annotate(ax, text, xy, (dx, dy), leader=ring > 1)
            box = annotation.get_window_extent(renderer)
            fits = inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)
            score = (not fits, sum(box.overlaps(other) for other in occupied))
            if best is None or score < best[0]:
                if best is not None:
                    best[1].remove()
                best = (score, annotation, box)
            else:
                annotation.remove()
            if score == (False, 0):
                break
        assert best is not None  # _LABEL_OFFSETS is not empty
        occupied.append(best[2])


def _annotate(
    ax: Axes, text: str, xy: tuple[float, float], offset: tuple[float, float], leader: bool
) -> Annotation:
    dx, dy = offset
    return ax.annotate(
        text,
        xy,
        xytext=offset,
        textcoords="offset points",
        ha="left" if dx > 0 else "right" if dx < 0 else "center",
        va="bottom" if dy > 0 else "top" if dy < 0 else "center",
        fontsize=LABEL_FONT_SIZE,
        arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.5} if leader else None,
        zorder=4,
    )


def _pareto_legend(runs: Sequence[Run]) -> list[Line2D]:
    def marker(shape: str, label: str, hollow: bool = False) -> Line2D:
        return Line2D(
            [],
            [],
            linestyle="",
            marker=shape,
            markersize=7,
            label=label,
            markerfacecolor="none" if hollow else "0.5",
            markeredgecolor="0.3",
        )

    statuses = {run.status for run in runs}
    handles = [
        Line2D([], [], color="0.3", linewidth=1.2, label=f"Pareto frontier ({FRONTIER_MARK})")
    ]
    if "completed" in statuses:
        handles.append(marker("o", "completed"))
    if "budget_exhausted" in statuses:
        handles.append(marker("s", "stopped by budget"))
    if statuses - STATUS_MARKERS.keys():
        handles.append(marker(OTHER_STATUS_MARKER, "diverged / interrupted (not on frontier)"))
    if any(run.energy_estimated for run in runs):
        handles.append(marker("o", "hollow: estimated energy (left panel)", hollow=True))
    return handles


def _curve_axes(energy_ax: Axes, samples_ax: Axes, with_curves: int, without_energy: int) -> None:
    energy_ax.set_title("vs cumulative training energy")
    energy_ax.set_xlabel("energy (J, log scale)")
    samples_ax.set_title("vs training samples seen")
    samples_ax.set_xlabel("training samples")
    samples_ax.xaxis.set_major_formatter(EngFormatter())
    for ax in (energy_ax, samples_ax):
        ax.set_ylabel("validation accuracy")
        ax.grid(True, alpha=0.3)
    if not with_curves:
        for ax in (energy_ax, samples_ax):
            _empty_panel(ax, "no readable curve.csv")
    elif without_energy == with_curves:
        energy_ax.set_xlabel("energy (J)")
        _empty_panel(energy_ax, "energy unknown for every run:\nsee accuracy vs samples →")
    else:
        _log_x_axis(energy_ax, "J")
        if without_energy:
            energy_ax.set_xlabel(
                f"energy (J, log scale)\n{without_energy} of {with_curves} runs "
                "not shown: energy unknown (see samples panel)"
            )


def _log_x_axis(ax: Axes, unit: str) -> None:
    """Log x axis with SI tick labels (``300 J``, ``2 kJ``); ticks at 2 and 5 × 10^k are
    labelled too when the axis spans too few decades to have several major ticks."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(EngFormatter(unit=unit))
    low, high = ax.get_xlim()
    if math.log10(high / low) < 2.5:
        ax.xaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        ax.xaxis.set_minor_formatter(EngFormatter(unit=unit))
    else:
        ax.xaxis.set_minor_formatter(NullFormatter())


def _empty_panel(ax: Axes, text: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def _not_shown_note(runs: Sequence[Run], panel: _CostPanel) -> str:
    hidden = sum(not _plottable(c, r.test_acc) for r, c in zip(runs, panel.costs, strict=True))
    if not hidden:
        return ""
    return f"\nnot shown: {hidden} of {len(runs)} (test accuracy or {panel.name} unknown)"


def _group_colors(groups: Sequence[str]) -> list[object]:
    distinct = list(dict.fromkeys(groups))
    palette = _palette(len(distinct))
    index = {group: k for k, group in enumerate(distinct)}
    return [palette[index[g] % len(palette)] for g in groups]


def _plottable(cost: float | None, accuracy: float | None) -> bool:
    """Has both values, and a cost a log axis can show."""
    return cost is not None and cost > 0 and accuracy is not None


def _known_pairs(
    xs: Sequence[float | None], ys: Sequence[float | None], positive: bool = False
) -> tuple[list[float], list[float]]:
    pairs = [
        (x, y)
        for x, y in zip(xs, ys, strict=True)
        if x is not None and y is not None and (x > 0 or not positive)
    ]
    return [x for x, _ in pairs], [y for _, y in pairs]
