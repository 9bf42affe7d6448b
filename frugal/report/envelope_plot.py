"""``envelope.png``: the charges of a sweep's jobs against its shared envelope
(:mod:`frugal.report.envelope` reads them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from frugal.report import plot_style as style
from frugal.report.envelope import Envelope
from frugal.report.text import key_amount, key_name, key_unit, plural

MAX_PANELS = 8
MAX_TICK_LABELS = 30  # job ids under the bars up to this many jobs
MAX_RUNG_KEYS = 8  # rungs named in the legend


@dataclass
class _Seen:
    """What the panels drew, for the legend."""

    rungs: set[int] = field(default_factory=set)
    reserved: bool = False


def plot_envelopes(envelopes: Sequence[Envelope], path: Path) -> None:
    """One panel per envelope and limited key: each job's charge as a bar stacked on the jobs
    started before it (start order), so the tops climb like the total; a reservation not (yet)
    spent hatched; the envelope a dashed line. Bars are coloured by rung when the sweep has
    rungs (successive halving), else all one colour."""
    panels = [(e, key) for e in envelopes if e.jobs for key in e.keys][:MAX_PANELS]
    with matplotlib.rc_context(style.PAPER_STYLE):
        fig = Figure(figsize=(7.4, 3.0 * max(1, len(panels)) + 0.9))
        FigureCanvasAgg(fig)
        seen = _Seen()
        for row, (envelope, key) in enumerate(panels):
            _panel(fig.add_subplot(len(panels), 1, row + 1), envelope, key, seen)
        if not panels:
            style.empty_panel(fig.add_subplot(1, 1, 1), "no envelope with a limit and a job")
        style.bottom_legend(fig, _handles(seen))
        height_in = fig.get_figheight()
        fig.suptitle(
            "Sweep envelope: jobs' charges in start order", y=1 - 0.05 / height_in, va="top"
        )
        fig.tight_layout(rect=(0, 0.4 / height_in, 1, 1))
        fig.savefig(path)


def _panel(ax: Axes, envelope: Envelope, key: str, seen: _Seen) -> None:
    limit = envelope.limits[key]
    assert limit is not None
    total = _bars(ax, envelope, key, seen)
    ax.axhline(limit, color="black", linestyle="--", linewidth=1.1, zorder=3)
    ax.annotate(
        f"envelope {key_amount(key, limit)}",
        (0.0, limit),
        xycoords=ax.get_yaxis_transform(),
        xytext=(3, 3),
        textcoords="offset points",
        fontsize=7.5,
        va="bottom",
    )
    unit = key_unit(key)
    ax.set_ylabel(f"{key_name(key)} charged, cumulative" + (f" ({unit})" if unit else ""))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, k=key: key_amount(k, v)))
    ax.set_ylim(0, max(limit, total) * 1.12)
    _job_axis(ax, envelope)
    charged = key_amount(key, envelope.total(key))
    name = "/".join(envelope.dir.parts[-2:]) + (
        f" (sweep {envelope.sweep_id})" if envelope.sweep_id else ""
    )
    title = (
        f"{style.plain(name, 60)} · {plural(len(envelope.jobs), 'job')}, "
        f"{charged} of {key_amount(key, limit)} charged"
    )
    ax.set_title(title, loc="left", fontweight="bold", parse_math=False)


def _bars(ax: Axes, envelope: Envelope, key: str, seen: _Seen) -> float:
    """Each job's charge stacked on the earlier ones, with waterfall connectors; the total."""
    base = 0.0
    tops = []
    for x, job in enumerate(envelope.jobs, start=1):
        charge = job.charged(key)
        rung = envelope.rung_of(job)
        color = style.OKABE_ITO[0] if rung is None else style.OKABE_ITO[rung % 7]
        if rung is not None:
            seen.rungs.add(rung)
        reserved = job.is_reservation(key)
        seen.reserved |= reserved and charge > 0
        ax.bar(
            x,
            charge,
            bottom=base,
            width=0.8,
            color="white" if reserved else color,
            edgecolor=color,
            hatch="////" if reserved else None,
            linewidth=0.8,
            zorder=2,
        )
        base += charge
        tops.append(base)
    # Waterfall connectors: each job's top carried over to where the next one starts.
    starts = range(1, len(tops))
    ax.hlines(
        tops[:-1], [x + 0.4 for x in starts], [x + 0.6 for x in starts], color="0.35", linewidth=0.7
    )
    return base


def _job_axis(ax: Axes, envelope: Envelope) -> None:
    jobs = envelope.jobs
    ax.set_xlim(0.3, len(jobs) + 0.7)
    if len(jobs) <= MAX_TICK_LABELS:
        ax.set_xticks(range(1, len(jobs) + 1))
        ax.set_xticklabels([style.plain(j.id, 8) for j in jobs], fontsize=7, parse_math=False)
        ax.set_xlabel("job (in start order)")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax.set_xlabel("jobs in start order")


def _handles(seen: _Seen) -> list[object]:
    handles: list[object] = [Line2D([], [], color="black", linestyle="--", label="envelope")]
    if seen.rungs:
        handles += [
            Patch(facecolor=style.OKABE_ITO[r % 7], label=f"rung {r}")
            for r in sorted(seen.rungs)[:MAX_RUNG_KEYS]
        ]
    else:
        handles.append(Patch(facecolor=style.OKABE_ITO[0], label="spent (with earlier attempts)"))
    if seen.reserved:
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="0.3",
                hatch="////",
                label="reservation: job open (running, interrupted, write_failed or killed)",
            )
        )
    return handles
