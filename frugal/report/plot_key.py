"""Run numbers on the figures and the numbered key beside the panels: every point or line
carries the number of its run in ``report.md``, and the key names each number (``★`` for runs
on the energy frontier)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from frugal.report import plot_style
from frugal.report.compare import Comparison
from frugal.report.text import plural

MARKER_SIZE_PT2 = 36
FRONT_SIZE_FACTOR = 1.7
NUMBER_FONT_SIZE = 6.5
KEY_FONT_SIZE = 7
KEY_LINE_PT = 9.5
KEY_ROWS = 48  # key lines per column; two columns at most, then "see report.md"
KEY_LABEL_CHARS = 50
KEY_WIDTH_IN = 3.1
# Label offsets tried around a point (ring, dx_pt, dy_pt), nearest ring first; labels beyond
# the first ring get a leader line to their point.
_RING = ((4, 4), (4, -4), (-4, 4), (-4, -4), (6, 0), (-6, 0), (0, 6), (0, -6))
_RING_SIZE = len(_RING)
_LABEL_OFFSETS = [(ring, dx * ring, dy * ring) for ring in (1, 2, 3, 4, 5) for dx, dy in _RING]
Key = list[tuple[str, int | None]]  # the key's lines: (text, run index or None)


def number_points(ax: Axes, points: Sequence[tuple[int, float, float, bool]]) -> None:
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


def key_entries(comparison: Comparison, datasets: Sequence[tuple[str, list[int]]]) -> Key:
    """The numbered key, ``(text, run index)`` per line, a dataset heading's index ``None``:
    ``★ lr=0.00123 model=cnn`` per run. Past two columns, the rest is in report.md."""
    lines: Key = []
    for dataset, indices in datasets:
        lines.append((plot_style.plain(dataset, KEY_LABEL_CHARS + 4), None))
        for i in indices:
            star = "★ " if comparison.on_energy_front[i] else ""
            lines.append((f"{star}{plot_style.plain(comparison.labels[i], KEY_LABEL_CHARS)}", i))
    capacity = 2 * KEY_ROWS
    if len(lines) > capacity:
        left_out = sum(i is not None for _, i in lines[capacity - 1 :])
        lines = [*lines[: capacity - 1], (f"… {plural(left_out, 'more run')}: see report.md", None)]
    return lines


def key_column_in(key: Key) -> float:
    """Width of one key column: dot and number, then the longest text at ~0.058 in a char."""
    return min(KEY_WIDTH_IN, 0.5 + 0.058 * max(len(text) for text, _ in key))


def draw_key(ax: Axes, comparison: Comparison, key: Key, colors: list[str]) -> None:
    """Draw the key; the dot has the run's model colour."""
    column_pt = key_column_in(key) * 72
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


def number_line_ends(ax: Axes, ends: Sequence[tuple[int, float, bool]]) -> None:
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


def key_figure(
    rows: int, panel_widths_in: Sequence[float], panel_height_in: float, key: Key
) -> tuple[Figure, list[list[Axes]], Axes]:
    """``rows`` rows of panels of ``panel_widths_in`` and a key column on their right, sized so
    the key fits at its font size; the panels by row, and the key's axes."""
    columns = 1 if len(key) <= KEY_ROWS else 2
    key_width_in = key_column_in(key) * columns
    key_height_in = (min(len(key), KEY_ROWS) + 1) * KEY_LINE_PT / 72
    height_in = max(panel_height_in * rows, key_height_in) + 1.0
    fig = Figure(figsize=(sum(panel_widths_in) + key_width_in, height_in))
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    grid = fig.add_gridspec(
        rows, len(panel_widths_in) + 1, width_ratios=(*panel_widths_in, key_width_in)
    )
    panels = [
        [fig.add_subplot(grid[r, c]) for c in range(len(panel_widths_in))] for r in range(rows)
    ]
    key_ax = fig.add_subplot(grid[:, len(panel_widths_in)])
    key_ax.set_axis_off()
    return fig, panels, key_ax
