"""What every figure of the report shares: the colours (Okabe–Ito), the paper style (set per
figure, never globally), legend samples and the bottom legend, empty panels, titles, the
percent axis, and run-supplied text drawn as plain text (mathtext off).

Figures are drawn on an Agg canvas directly, not through pyplot: no display, no global backend
switch, nothing left open.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerLine2D, HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from frugal.report.collect import Run
from frugal.report.compare import Comparison
from frugal.report.text import clip, plural, visible

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


def sample(shape: str, label: str, face: str, edge: str, width: float = 0.8) -> Line2D:
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


def bottom_legend(fig: Figure, handles: list[object]) -> None:
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


def empty_panel(ax: Axes, text: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def plain(text: str, limit: int) -> str:
    """Run-supplied text for a figure: one line, cut to ``limit`` (drawn with parse_math off)."""
    return clip(visible(text), limit)


def percent_axis(ax: Axes) -> None:
    """Accuracy (a fraction) in percent: whole percents unless the axis spans under 5 points."""
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=(1, 2, 2.5, 5, 10)))
    low, high = ax.get_ylim()
    ax.yaxis.set_major_formatter(
        PercentFormatter(xmax=1.0, decimals=0 if high - low >= 0.05 else 1)
    )


def model_colors(runs: Sequence[Run]) -> list[str]:
    """A colour per model (Okabe–Ito, cycled past 8 models)."""
    order = {model: k for k, model in enumerate(dict.fromkeys(run.model for run in runs))}
    return [OKABE_ITO[order[run.model] % len(OKABE_ITO)] for run in runs]


def model_handles(runs: Sequence[Run], colors: list[str]) -> list[object]:
    """One colour sample per model, when the palette gives each model its own colour."""
    first = {run.model: i for i, run in reversed(list(enumerate(runs)))}
    if len(first) > len(OKABE_ITO) or len(first) < 2:
        return []
    return [
        sample("o", plain(model, 24), face=colors[i], edge=colors[i])
        for model, i in sorted(first.items(), key=lambda item: item[1])
    ]


def row_title(ax: Axes, dataset: str, indices: Sequence[int]) -> None:
    """The dataset of a row, over its left panel (and on into the right one: it has no title)."""
    text = f"{plain(dataset, 60)} · {plural(len(indices), 'run')}"
    ax.set_title(text, loc="left", fontweight="bold", parse_math=False)


def suptitle(what: str, comparison: Comparison, datasets: Sequence[tuple[str, list[int]]]) -> str:
    total = len(comparison.by_dataset())
    text = f"{what}: {plural(len(comparison.runs), 'run')}"
    if total > 1:
        text += f", {plural(total, 'dataset')} (never compared with each other)"
    if total > len(datasets):
        text += f"; first {len(datasets)} shown, all in report.md"
    return text


def layout(fig: Figure, title: str) -> None:
    """The title 0.05 in from the top, the legend in the bottom 0.6 in, tight panels between
    (tight_layout leaves room for the title itself)."""
    height_in = fig.get_figheight()
    fig.suptitle(title, y=1 - 0.05 / height_in, va="top")
    fig.tight_layout(rect=(0, 0.6 / height_in, 1, 1))
