"""``pareto.png`` (test accuracy against energy and FLOPs) and ``curves.png`` (validation
accuracy during training), one row of panels per dataset.

What the plots promise: points carry the run numbers of ``report.md`` (a key beside the panels
names them), estimated energy is hollow and every energy has a horizontal error bar of its
uncertainty, accuracy is in percent, a cost axis is logarithmic only when the costs span a
decade or more and none is 0 (a log axis would silently drop a 0 J point), and curves are drawn
from the recorded readings, with an unknown reading a gap in the line (never 0, never skipped
over).

Figures are drawn on an Agg canvas directly, not through pyplot: no display, no global backend
switch, nothing left open. The style is set per figure (:data:`PAPER_STYLE`), never globally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerLine2D, HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.ticker import (
    EngFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    PercentFormatter,
)
from matplotlib.transforms import Bbox

from frugal.report.collect import Run
from frugal.report.compare import Comparison
from frugal.report.text import clip, visible
from frugal.report.units import plural, si
from frugal.status import Status

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision
# deficiency. Yellow and black last: yellow is faint on white, black is the frontier's colour.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
PAPER_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.linewidth": 0.5,
    "grid.alpha": 0.35,
    "lines.linewidth": 1.3,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
}
STATUS_MARKERS = {Status.COMPLETED: "o", Status.BUDGET_EXHAUSTED: "s"}
OTHER_STATUS_MARKER = "X"  # diverged, interrupted, …, write_failed: never on a frontier
MARKER_SIZE_PT2 = 36
FRONT_SIZE_FACTOR = 1.7
NUMBER_FONT_SIZE = 6.5
KEY_FONT_SIZE = 7
KEY_LINE_PT = 9.5
KEY_ROWS = 48  # key lines per column; two columns at most, then "see report.md"
KEY_LABEL_CHARS = 50
MAX_DATASET_ROWS = 8  # more datasets than this: report.md has them all
MAX_CURVE_POINTS = 2000  # per curve and panel; longer curves are thinned for drawing only
LOG_SPAN = 10.0  # a cost axis is logarithmic when its costs span at least this ratio
PANEL_WIDTH_IN = 3.6
PANEL_HEIGHT_IN = 2.9
KEY_WIDTH_IN = 3.1
# Label offsets tried around a point (ring, dx_pt, dy_pt), nearest ring first; labels beyond
# the first ring get a leader line to their point.
_RING = ((4, 4), (4, -4), (-4, 4), (-4, -4), (6, 0), (-6, 0), (0, 6), (0, -6))
_RING_SIZE = len(_RING)
_LABEL_OFFSETS = [(ring, dx * ring, dy * ring) for ring in (1, 2, 3, 4, 5) for dx, dy in _RING]


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
    colors = _model_colors(runs)
    with matplotlib.rc_context(PAPER_STYLE):
        key = _key_entries(comparison, datasets)
        fig, rows, key_ax = _figure(len(datasets), key)
        for (dataset, indices), axes in zip(datasets, rows, strict=True):
            for ax, panel in zip(axes, panels, strict=True):
                _pareto_panel(ax, comparison, indices, panel, colors)
            _row_title(axes[0], dataset, indices)
            note = _unresolved_note(comparison, dataset)
            if note:
                axes[0].set_xlabel(f"{axes[0].get_xlabel()}\n{note}")
        _bottom_legend(fig, _pareto_handles(comparison, datasets, colors))
        _key(key_ax, comparison, key, colors)
        _layout(fig, _suptitle("Test accuracy against training cost", comparison, datasets))
        for (_, indices), axes in zip(datasets, rows, strict=True):
            for ax, panel in zip(axes, panels, strict=True):
                points = [
                    (comparison.numbers[i], panel.costs[i], runs[i].test_acc, panel.on_front[i])
                    for i in indices
                    if panel.costs[i] is not None and runs[i].test_acc is not None
                ]
                _number_points(ax, points)  # type: ignore[arg-type]
        fig.savefig(path)


def plot_curves(comparison: Comparison, path: Path) -> None:
    """One row per dataset: validation accuracy against cumulative training energy and against
    training samples, from the readings of ``curve.csv``; an unknown reading is a gap."""
    datasets = list(comparison.by_dataset().items())[:MAX_DATASET_ROWS]
    colors = _model_colors(comparison.runs)
    with matplotlib.rc_context(PAPER_STYLE):
        key = _key_entries(comparison, datasets)
        fig, rows, key_ax = _figure(len(datasets), key)
        estimated_drawn = False
        ends: dict[Axes, list[tuple[int, float, float, bool]]] = {}
        for (dataset, indices), (energy_ax, samples_ax) in zip(datasets, rows, strict=True):
            estimated_drawn |= _curve_row(energy_ax, samples_ax, comparison, indices, colors, ends)
            _row_title(energy_ax, dataset, indices)
        handles: list[object] = [
            Line2D([], [], color="0.3", marker="o", markersize=3, label="a reading (gap: unknown)")
        ]
        if estimated_drawn:
            handles.append(Line2D([], [], color="0.3", linestyle="--", label="estimated energy"))
        _bottom_legend(fig, handles + _model_handles(comparison.runs, colors))
        _key(key_ax, comparison, key, colors)
        _layout(fig, _suptitle("Validation accuracy during training", comparison, datasets))
        for ax, points in ends.items():
            _number_points(ax, points)
        fig.savefig(path)


def _figure(
    datasets: int, key: list[tuple[str, int | None]]
) -> tuple[Figure, list[tuple[Axes, Axes]], Axes]:
    """Two panels per dataset row and a key column, sized so the key fits at its font size."""
    columns = 1 if len(key) <= KEY_ROWS else 2
    key_width_in = _key_column_in(key) * columns
    key_height_in = (min(len(key), KEY_ROWS) + 1) * KEY_LINE_PT / 72
    height_in = max(PANEL_HEIGHT_IN * datasets, key_height_in) + 1.0
    fig = Figure(figsize=(2 * PANEL_WIDTH_IN + key_width_in, height_in))
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    grid = fig.add_gridspec(
        datasets, 3, width_ratios=(PANEL_WIDTH_IN, PANEL_WIDTH_IN, key_width_in)
    )
    rows = [(fig.add_subplot(grid[r, 0]), fig.add_subplot(grid[r, 1])) for r in range(datasets)]
    key_ax = fig.add_subplot(grid[:, 2])
    key_ax.set_axis_off()
    return fig, rows, key_ax


def _layout(fig: Figure, title: str) -> None:
    """The title 0.05 in from the top, the legend in the bottom 0.6 in, tight panels between
    (tight_layout leaves room for the title itself)."""
    height_in = fig.get_figheight()
    fig.suptitle(title, y=1 - 0.05 / height_in, va="top")
    fig.tight_layout(rect=(0, 0.6 / height_in, 1, 1))


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
        _empty_panel(ax, f"no run with both a test accuracy and {panel.name}")
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
    _percent_axis(ax)


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


def _percent_axis(ax: Axes) -> None:
    """Accuracy (a fraction) in percent: whole percents unless the axis spans under 5 points."""
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=(1, 2, 2.5, 5, 10)))
    low, high = ax.get_ylim()
    ax.yaxis.set_major_formatter(
        PercentFormatter(xmax=1.0, decimals=0 if high - low >= 0.05 else 1)
    )


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
    energy_ax.set_xlabel("cumulative training energy (J)")
    samples_ax.set_xlabel("training samples seen")
    for ax in (energy_ax, samples_ax):
        ax.set_ylabel("validation accuracy")
    if not with_curve:
        for ax in (energy_ax, samples_ax):
            _empty_panel(ax, "no readable curve.csv")
        return estimated_drawn
    samples_ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    samples_ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    samples_ax.set_xlim(left=0)
    _percent_axis(samples_ax)
    if without_energy == len(with_curve):
        _empty_panel(energy_ax, "energy unknown for every run:\nsee accuracy vs samples →")
        return estimated_drawn
    if without_energy:
        energy_ax.set_xlabel(
            f"cumulative training energy (J)\nnot shown: {without_energy} of {len(with_curve)} "
            "(energy unknown)"
        )
    readings = [
        e
        for i in with_curve
        for e in comparison.runs[i].curve.energy_j  # type: ignore[union-attr]
        if e is not None
    ]
    _cost_axis(energy_ax, readings, readings, from_zero=True)
    _percent_axis(energy_ax)
    return estimated_drawn


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


def _number_points(ax: Axes, points: Sequence[tuple[int, float, float, bool]]) -> None:
    """Write run numbers by points ``(number, x, y, must)``: each at the nearest offset whose
    text overlaps no marker and no earlier number and stays inside the axes (greedy; fine for
    tens of points). A ``must`` point (a frontier run) is numbered first and always, with a
    leader line if it has to move away; another only where it fits right beside its point, so
    a crowd of points stays readable (the key and the other panel still name them)."""
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    inside = ax.get_window_extent(renderer)
    pixels = [(ax.transData.transform((x, y)), must) for _, x, y, must in points]
    marker_px = math.sqrt(MARKER_SIZE_PT2 * FRONT_SIZE_FACTOR) * ax.figure.dpi / 72
    occupied = [
        Bbox.from_bounds(px - marker_px / 2, py - marker_px / 2, marker_px, marker_px)
        for (px, py), _ in pixels
    ]
    order = sorted(range(len(points)), key=lambda k: (not pixels[k][1], -pixels[k][0][1]))
    for k in order:
        number, x, y, must = points[k]
        best: tuple[tuple[bool, int], Annotation, Bbox, int] | None = None
        for ring, dx, dy in _LABEL_OFFSETS if must else _LABEL_OFFSETS[:_RING_SIZE]:
            # Measured without its leader line: clipping an arrow to a box is slow.
            annotation = _annotate(ax, str(number), (x, y), (dx, dy), leader=False)
            box = annotation.get_window_extent(renderer)
            fits = inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)
            score = (not fits, sum(box.overlaps(other) for other in occupied))
            if best is None or score < best[0]:
                if best is not None:
                    best[1].remove()
                best = (score, annotation, box, ring)
            else:
                annotation.remove()
            if score == (False, 0):
                break
        assert best is not None  # _LABEL_OFFSETS is not empty
        score, annotation, box, ring = best
        if must or score == (False, 0):
            occupied.append(box)
            if ring > 1:
                offset = annotation.xyann
                annotation.remove()
                _annotate(ax, str(number), (x, y), offset, leader=True)
        else:
            annotation.remove()


def _annotate(
    ax: Axes, text: str, xy: tuple[object, object], offset: tuple[float, float], leader: bool
) -> Annotation:
    dx, dy = offset
    return ax.annotate(
        text,
        xy,
        xytext=offset,
        textcoords="offset points",
        ha="left" if dx > 0 else "right" if dx < 0 else "center",
        va="bottom" if dy > 0 else "top" if dy < 0 else "center",
        fontsize=NUMBER_FONT_SIZE,
        color="0.1",
        bbox={
            "boxstyle": "square,pad=0.05",
            "facecolor": "white",
            "edgecolor": "none",
            "alpha": 0.75,
        },
        arrowprops={"arrowstyle": "-", "color": "0.55", "linewidth": 0.5} if leader else None,
        zorder=2.8,  # over the error bars and frontier line, under the markers
    )


def _key_entries(
    comparison: Comparison, datasets: Sequence[tuple[str, list[int]]]
) -> list[tuple[str, int | None]]:
    """The numbered key, ``(text, run index)`` per line, a dataset heading's index ``None``:
    ``★ lr=0.00123 model=cnn`` per run. Past two columns, the rest is in report.md."""
    lines: list[tuple[str, int | None]] = []
    for dataset, indices in datasets:
        lines.append((_plain(dataset, KEY_LABEL_CHARS + 4), None))
        for i in indices:
            star = "★ " if comparison.on_energy_front[i] else ""
            lines.append((f"{star}{_plain(comparison.labels[i], KEY_LABEL_CHARS)}", i))
    capacity = 2 * KEY_ROWS
    if len(lines) > capacity:
        left_out = sum(i is not None for _, i in lines[capacity - 1 :])
        lines = [*lines[: capacity - 1], (f"… {plural(left_out, 'more run')}: see report.md", None)]
    return lines


def _key_column_in(key: list[tuple[str, int | None]]) -> float:
    """Width of one key column: dot and number, then the longest text at ~0.058 in a char."""
    return min(KEY_WIDTH_IN, 0.5 + 0.058 * max(len(text) for text, _ in key))


def _key(
    ax: Axes, comparison: Comparison, key: list[tuple[str, int | None]], colors: list[str]
) -> None:
    """Draw the key; the dot has the run's model colour."""
    column_pt = _key_column_in(key) * 72
    for n, (text, i) in enumerate(key):
        column, row = divmod(n, KEY_ROWS)
        x_pt, y_pt = column * column_pt, -row * KEY_LINE_PT
        if i is None:
            _key_text(ax, text, (x_pt, y_pt), weight="bold")
            continue
        _key_text(ax, "●", (x_pt, y_pt), color=colors[i])
        _key_text(ax, f"{comparison.numbers[i]:>3}", (x_pt + 7, y_pt), family="DejaVu Sans Mono")
        _key_text(ax, text, (x_pt + 25, y_pt))


def _key_text(ax: Axes, text: str, offset_pt: tuple[float, float], **style: object) -> None:
    ax.annotate(
        text,
        (0, 1),
        xycoords="axes fraction",
        xytext=offset_pt,
        textcoords="offset points",
        fontsize=KEY_FONT_SIZE,
        va="top",
        ha="left",
        annotation_clip=False,
        parse_math=False,
        **style,  # type: ignore[arg-type]
    )


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
            handles.append(_sample(shape, names[shape], face="0.55", edge="0.3"))
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
                tuple(_sample(s, "", face="white", edge="0.3", width=1.5) for s in hollow_shapes),
                "hollow: estimated energy",
            )
        )
    if any(runs[i].energy_j is not None for i in shown):
        bar = Line2D([], [], color="0.3", marker="|", markersize=5, linewidth=0.8)
        handles.append((bar, "bar: energy uncertainty"))
    return handles + _model_handles(runs, colors)


def _model_handles(runs: Sequence[Run], colors: list[str]) -> list[object]:
    """One colour sample per model, when the palette gives each model its own colour."""
    first = {run.model: i for i, run in reversed(list(enumerate(runs)))}
    if len(first) > len(OKABE_ITO) or len(first) < 2:
        return []
    return [
        _sample("o", _plain(model, 24), face=colors[i], edge=colors[i])
        for model, i in sorted(first.items(), key=lambda item: item[1])
    ]


def _sample(shape: str, label: str, face: str, edge: str, width: float = 0.8) -> Line2D:
    return Line2D(
        [],
        [],
        linestyle="",
        marker=shape,
        markersize=6,
        markerfacecolor=face,
        markeredgecolor=edge,
        markeredgewidth=width,
        label=label,
    )


def _bottom_legend(fig: Figure, handles: list[object]) -> None:
    """``handles``: artists with their label, or ``(artist or tuple of artists, label)``. A
    tuple shows its samples side by side; a ``|`` line is an error bar, a cap at each end."""
    artists, labels = [], []
    handler_map: dict[object, object] = {tuple: HandlerTuple(ndivide=None, pad=0.4)}
    for handle in handles:
        artist, label = handle if isinstance(handle, tuple) else (handle, handle.get_label())  # type: ignore[attr-defined]
        if isinstance(artist, Line2D) and artist.get_marker() == "|":
            handler_map[artist] = HandlerLine2D(numpoints=2)
        artists.append(artist)
        labels.append(label)
    legend = fig.legend(
        artists,
        labels,
        loc="lower center",
        ncol=min(5, len(artists)),
        frameon=False,
        handler_map=handler_map,
        handletextpad=0.5,
        columnspacing=1.4,
    )
    for text in legend.get_texts():
        text.set_parse_math(False)


def _row_title(ax: Axes, dataset: str, indices: Sequence[int]) -> None:
    """The dataset of a row, over its left panel (and on into the right one: it has no title)."""
    text = f"{_plain(dataset, 60)} · {plural(len(indices), 'run')}"
    ax.set_title(text, loc="left", fontweight="bold", parse_math=False)


def _unresolved_note(comparison: Comparison, dataset: str) -> str:
    whole = [u for u in comparison.unresolved.get(dataset, []) if u.whole]
    if not whole:
        return ""
    if whole[0].low_j == whole[0].high_j:
        return "equal in energy: compare on accuracy"
    kind = "estimate" if whole[0].estimated else "meter"
    return f"not resolved in energy (±{100 * whole[0].uncertainty:.0f}% {kind})"


def _suptitle(what: str, comparison: Comparison, datasets: Sequence[tuple[str, list[int]]]) -> str:
    total = len(comparison.by_dataset())
    text = f"{what}: {plural(len(comparison.runs), 'run')}"
    if total > 1:
        text += f", {plural(total, 'dataset')} (never compared with each other)"
    if total > len(datasets):
        text += f"; first {len(datasets)} shown, all in report.md"
    return text


def _empty_panel(ax: Axes, text: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def _model_colors(runs: Sequence[Run]) -> list[str]:
    """A colour per model (Okabe–Ito, cycled past 8 models)."""
    order = {model: k for k, model in enumerate(dict.fromkeys(run.model for run in runs))}
    return [OKABE_ITO[order[run.model] % len(OKABE_ITO)] for run in runs]


def _nan_for_unknown(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _plain(text: str, limit: int) -> str:
    """Run-supplied text for a figure: one line, cut to ``limit`` (drawn with parse_math off)."""
    return clip(visible(text), limit)


# ---- lifetime.png ------------------------------------------------------------------------------
LIFETIME_N = (1e3, 1e9)  # predictions: the x range of lifetime.png
LIFETIME_POINTS = 200
LIFETIME_PANEL_WIDTH_IN = 5.2


def plot_lifetime(comparison: Comparison, path: Path, inferences: int | None = None) -> None:
    """One panel per dataset: lifetime energy (training + N predictions) against N on log–log
    axes, N from 1e3 to 1e9; one line per run that has a lifetime (trained as planned, test
    accuracy, training and inference energy known). Runs on the training-energy Pareto
    frontier (★) are drawn bold, runs on the accuracy / lifetime frontier at some N solid,
    the others thin and dashed; break-even points between runs on the lifetime frontier are
    marked, and ``inferences`` (the report's N) is a dotted vertical line."""
    from frugal.report.lifetime import break_evens, dataset_lines, frontier_spans

    runs = comparison.runs
    datasets = list(comparison.by_dataset().items())[:MAX_DATASET_ROWS]
    colors = _model_colors(runs)
    low_n, high_n = LIFETIME_N
    ns = [low_n * (high_n / low_n) ** (k / (LIFETIME_POINTS - 1)) for k in range(LIFETIME_POINTS)]
    with matplotlib.rc_context(PAPER_STYLE):
        key = _key_entries(comparison, datasets)
        columns = 1 if len(key) <= KEY_ROWS else 2
        key_width_in = _key_column_in(key) * columns
        key_height_in = (min(len(key), KEY_ROWS) + 1) * KEY_LINE_PT / 72
        height_in = max(PANEL_HEIGHT_IN * len(datasets), key_height_in) + 1.0
        fig = Figure(figsize=(LIFETIME_PANEL_WIDTH_IN + key_width_in, height_in))
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(
            len(datasets), 2, width_ratios=(LIFETIME_PANEL_WIDTH_IN, key_width_in)
        )
        axes = [fig.add_subplot(grid[r, 0]) for r in range(len(datasets))]
        key_ax = fig.add_subplot(grid[:, 1])
        key_ax.set_axis_off()
        ends: dict[Axes, list[tuple[int, float, bool]]] = {}
        shown: list[int] = []
        drawn: set[str] = set()  # kinds of line and mark drawn: only those get a legend entry
        estimated = False
        for ax, (dataset, indices) in zip(axes, datasets, strict=True):
            lines = dataset_lines(runs, indices)
            spans = frontier_spans(lines)
            _row_title(ax, dataset, indices)
            ax.set_xlabel("predictions served, N")
            ax.set_ylabel("lifetime energy (J)")
            if len(lines) < len(indices):
                ax.set_xlabel(
                    f"predictions served, N\nnot shown: {len(indices) - len(lines)} of "
                    f"{len(indices)} (no lifetime: inference or training energy, accuracy "
                    "unknown, or not trained as planned)"
                )
            if not lines:
                _empty_panel(ax, "no run with a measured inference energy")
                continue
            # Others first, then lifetime-frontier runs, then ★ runs on top.
            for line in sorted(
                lines,
                key=lambda ln: (comparison.on_energy_front[ln.index], spans[ln.index] is not None),
            ):
                i = line.index
                star = comparison.on_energy_front[i]
                on_lifetime = spans[i] is not None
                ax.plot(
                    ns,
                    [line.at(n) for n in ns],
                    color=colors[i],
                    linewidth=2.2 if star else 1.3 if on_lifetime else 0.9,
                    linestyle="-" if star or on_lifetime else "--",
                    alpha=1.0 if star or on_lifetime else 0.6,
                    zorder=3 if star else 2.5 if on_lifetime else 2,
                )
                estimated |= runs[i].energy_estimated
                shown.append(i)
                drawn.add("star" if star else "lifetime" if on_lifetime else "other")
                ends.setdefault(ax, []).append((comparison.numbers[i], line.at(ns[-1]), star))
            crossings = [
                c
                for c in break_evens([ln for ln in lines if spans[ln.index] is not None])
                if low_n <= c.n <= high_n
            ]
            if crossings:
                drawn.add("break-even")
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
            if inferences is not None and low_n <= inferences <= high_n:
                ax.axvline(inferences, color="0.4", linestyle=":", linewidth=0.9, zorder=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(low_n, high_n)
            ax.xaxis.set_major_locator(LogLocator(numticks=8))
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.yaxis.set_major_formatter(EngFormatter(sep=""))
            ax.yaxis.set_minor_formatter(NullFormatter())
        samples = {
            "star": Line2D([], [], color="0.2", linewidth=2.2, label="★ training-energy frontier"),
            "lifetime": Line2D(
                [], [], color="0.2", linewidth=1.3, label="on the lifetime frontier at some N"
            ),
            "other": Line2D(
                [], [], color="0.2", linewidth=0.9, linestyle="--", alpha=0.6, label="other runs"
            ),
            "break-even": _sample(
                "o", "break-even between lifetime-frontier runs", face="white", edge="0.15"
            ),
        }
        handles: list[object] = [sample for kind, sample in samples.items() if kind in drawn]
        if inferences is not None and low_n <= inferences <= high_n:
            handles.append(
                Line2D([], [], color="0.4", linestyle=":", label=f"report's N = {si(inferences)}")
            )
        shown_runs = [runs[i] for i in shown]
        _bottom_legend(fig, handles + _model_handles(shown_runs, [colors[i] for i in shown]))
        _key(key_ax, comparison, key, colors)
        title = _suptitle("Lifetime energy: training + N predictions", comparison, datasets)
        if estimated:
            title += " (estimated energy)"
        _layout(fig, title)
        for ax, points in ends.items():
            _number_line_ends(ax, points)
        fig.savefig(path)


def _number_line_ends(ax: Axes, ends: Sequence[tuple[int, float, bool]]) -> None:
    """Run numbers just right of the axes, at the height where each line ends, nudged apart
    so that none overlaps another (bold for ★ runs)."""
    gap_pt = NUMBER_FONT_SIZE * 1.25
    points_per_px = 72 / ax.figure.dpi
    placed: list[tuple[float, float, int, bool]] = []  # (height in pt, y, number, star)
    for number, y, star in sorted(ends, key=lambda e: e[1]):
        height_pt = ax.transData.transform((1.0, y))[1] * points_per_px
        nudged_pt = max(height_pt, placed[-1][0] + gap_pt) if placed else height_pt
        placed.append((nudged_pt, y, number, star))
        ax.annotate(
            str(number),
            (1.0, y),
            xycoords=ax.get_yaxis_transform(),  # x: axes fraction, y: data
            xytext=(3, nudged_pt - height_pt),
            textcoords="offset points",
            fontsize=NUMBER_FONT_SIZE,
            fontweight="bold" if star else "normal",
            va="center",
            ha="left",
            annotation_clip=False,
        )
