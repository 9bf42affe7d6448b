"""Sweep envelopes (``sweep_budget.<key>=…``): a multirun's ``envelope.json`` (and, from a
successive-halving sweeper, ``halving.json``), as report.md's *Sweep envelope* section and
``envelope.png``.

Every job of the multirun charges one shared envelope, counted as the sweep counts it
(``frugal.sweep.envelope.charged``): its reservation while it is open (``running``, or
``interrupted`` or ``write_failed`` and not resumed yet; a job killed while running never
says otherwise, so its reservation stays charged), else what it spent plus what its earlier
attempts spent (``prior_spent``); a finished job that recorded no spending is charged its
reservation.

Both files are read like ``result.json`` (``collect.read_regular_file``: regular files only, at
most 16 MiB, every value checked): a malformed ``envelope.json`` is left out with the reason, a
malformed ``halving.json`` only drops the halving table.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from frugal.report.collect import (
    BUDGET_KEYS,
    MAX_TEXT_CHARS,
    MalformedError,
    Number,
    Skipped,
    _amounts,
    _natural_key,
    _number,
    _show,
    _text,
    find_named_files,
    json_object,
    read_regular_file,
)
from frugal.report.compare import Comparison
from frugal.report.table import _markdown_table, md, md_code
from frugal.report.text import key_amount, key_name, key_unit
from frugal.report.units import UNKNOWN, percent, plural
from frugal.status import Status
from frugal.sweep.envelope import ENVELOPE_FILE, FINISHED, RUNNING, VERSION
from frugal.sweep.halving import HALVING_FILE

FILE_NAME = "envelope.png"
JOB_STATUSES = (RUNNING, *Status)
MAX_JOBS = 100_000
MAX_RUNGS = 64
MAX_JOB_ROWS = 60  # jobs listed in report.md per envelope; envelope.json has them all
MAX_PANELS = 8
MAX_TICK_LABELS = 30
MAX_RUNG_KEYS = 8
MAX_BEST_METRICS = 6  # rungs named in the legend  # job ids under the bars up to this many jobs


@dataclass(frozen=True)
class Job:
    id: str
    dir: str | None
    status: str  # a Status, or "running"
    reserved: dict[str, Number | None]
    spent: dict[str, Number | None] | None
    prior_spent: dict[str, Number | None]
    attempts: Number | None
    started: datetime | None
    ended: datetime | None
    metrics: dict[str, Number] | None
    rung: int | None

    def is_reservation(self, key: str) -> bool:
        """Charged its reservation in ``key``: the job is open (running, or interrupted and not
        resumed yet), or it recorded no spending of ``key``."""
        return self.status not in FINISHED or self.spent is None or self.spent.get(key) is None

    def charged(self, key: str) -> float:
        """What the job charges the envelope in ``key``, counted as the sweep counts it
        (``frugal.sweep.envelope.charged``): a key the job reserved nothing of charges 0."""
        if key not in self.reserved:
            return 0.0
        if self.is_reservation(key):
            return float(self.reserved[key] or 0.0)
        assert self.spent is not None
        return float(self.spent[key] or 0.0) + float(self.prior_spent.get(key) or 0.0)


@dataclass(frozen=True)
class Rung:
    rung: int
    budget: dict[str, Number | None]
    trials: list[str]
    promoted: list[str]


@dataclass(frozen=True)
class Halving:
    rungs: list[Rung]
    best_job: str | None
    best_overrides: list[str]
    best_metrics: dict[str, Number]


@dataclass(frozen=True)
class Envelope:
    dir: Path
    sweep_id: str | None
    limits: dict[str, Number | None]  # BUDGET_KEYS -> the envelope, None = not enforced
    planned_jobs: Number | None
    jobs: list[Job]  # in start order
    halving: Halving | None
    halving_problem: str | None

    @property
    def keys(self) -> list[str]:
        """The keys the envelope limits."""
        return [key for key in BUDGET_KEYS if self.limits.get(key) is not None]

    def total(self, key: str) -> float:
        """Every job's charge in ``key``."""
        return sum(job.charged(key) for job in self.jobs)

    def rung_of(self, job: Job) -> int | None:
        if job.rung is not None or self.halving is None:
            return job.rung
        return next((r.rung for r in self.halving.rungs if job.id in r.trials), None)


# ---- reading ----------------------------------------------------------------------------------


def load_envelopes(paths: Iterable[Path]) -> tuple[list[Envelope], list[Skipped]]:
    """Every ``envelope.json`` under ``paths``; malformed ones as skipped, with the reason."""
    files, _ = find_named_files(paths, ENVELOPE_FILE)  # missing dirs: already said by the runs
    envelopes: list[Envelope] = []
    skipped: list[Skipped] = []
    for file in files:
        try:
            envelopes.append(load_envelope(file.parent))
        except MalformedError as err:
            skipped.append(Skipped(file, str(err)))
    return envelopes, skipped


def load_envelope(sweep_dir: Path) -> Envelope:
    data = _json(sweep_dir / ENVELOPE_FILE, ENVELOPE_FILE)
    version = data.get("version")
    if version != VERSION or isinstance(version, bool):
        raise MalformedError(f"{ENVELOPE_FILE}: version {_show(version)}, expected {VERSION}")
    limits = _amounts(_object(data.get("envelope"), "envelope"), "envelope", ENVELOPE_FILE)
    jobs = _object(data.get("jobs"), "jobs")
    if len(jobs) > MAX_JOBS:
        raise MalformedError(f"{ENVELOPE_FILE}: {len(jobs)} jobs (at most {MAX_JOBS})")
    parsed = [_job(job_id, value) for job_id, value in jobs.items()]
    parsed.sort(key=lambda j: (j.started is None, j.started or _EPOCH, _natural_key(Path(j.id))))
    halving, problem = None, None
    if (sweep_dir / HALVING_FILE).exists() or (sweep_dir / HALVING_FILE).is_symlink():
        try:
            halving = _halving(_json(sweep_dir / HALVING_FILE, HALVING_FILE))
        except MalformedError as err:
            problem = str(err)
    return Envelope(
        dir=sweep_dir,
        sweep_id=_text(data, "sweep_id", "", ENVELOPE_FILE),
        limits=limits,
        planned_jobs=_number(data, "planned_jobs", "", file=ENVELOPE_FILE),
        jobs=parsed,
        halving=halving,
        halving_problem=problem,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _job(job_id: str, value: Any) -> Job:
    where = f"jobs.{_show(job_id)}"
    if len(job_id) > MAX_TEXT_CHARS:
        raise MalformedError(f"{ENVELOPE_FILE}: a job id of {len(job_id)} characters")
    job = _object(value, where)
    status = job.get("status")
    if status not in JOB_STATUSES:
        raise MalformedError(
            f"{ENVELOPE_FILE}: {where}.status is {_show(status)} "
            f"(expected one of {', '.join(JOB_STATUSES)})"
        )
    spent = job.get("spent")
    rung = _number(job, "rung", where, file=ENVELOPE_FILE)
    directory = job.get("dir")
    return Job(
        id=job_id,
        # A path is only shown: one too long or not text is left out, not fatal.
        dir=directory if isinstance(directory, str) and len(directory) <= 4096 else None,
        status=str(status),
        reserved=_given(job.get("reserved"), f"{where}.reserved"),
        spent=None
        if spent is None
        else _amounts(_object(spent, f"{where}.spent"), f"{where}.spent", ENVELOPE_FILE),
        prior_spent=_given(job.get("prior_spent"), f"{where}.prior_spent"),
        attempts=_number(job, "attempts", where, file=ENVELOPE_FILE),
        started=_time(job, "started", where),
        ended=_time(job, "ended", where),
        metrics=None
        if job.get("metrics") is None
        else _metrics(_object(job["metrics"], f"{where}.metrics"), f"{where}.metrics"),
        rung=None if rung is None else int(rung),
    )


def _given(value: Any, where: str) -> dict[str, Number | None]:
    """The amounts a job section states: a key left out is absent here (a ``prior_spent``
    without it is 0), a key given as null is unknown (None)."""
    if value is None:
        return {}
    section = _object(value, where)
    return {k: v for k, v in _amounts(section, where, ENVELOPE_FILE).items() if k in section}


def _halving(data: Mapping[str, Any]) -> Halving:
    rungs = data.get("rungs")
    if not isinstance(rungs, list) or len(rungs) > MAX_RUNGS:
        raise MalformedError(f"{HALVING_FILE}: rungs is not a list of at most {MAX_RUNGS}")
    parsed = []
    for k, value in enumerate(rungs):
        where = f"rungs[{k}]"
        rung = _object(value, where, HALVING_FILE)
        number = _number(rung, "rung", where, file=HALVING_FILE)
        parsed.append(
            Rung(
                rung=k if number is None else int(number),
                budget=_amounts(
                    _object(rung.get("budget") or {}, f"{where}.budget", HALVING_FILE),
                    f"{where}.budget",
                    HALVING_FILE,
                ),
                trials=_ids(rung.get("trials"), f"{where}.trials"),
                promoted=_ids(rung.get("promoted"), f"{where}.promoted"),
            )
        )
    best = _object(data.get("best") or {}, "best", HALVING_FILE)
    best_job = best.get("job")
    return Halving(
        rungs=parsed,
        best_job=None if best_job is None else _ids([best_job], "best.job")[0],
        # What tells the best configuration apart (``swept``), else all its overrides.
        best_overrides=_ids(best.get("swept") or best.get("overrides"), "best.overrides"),
        best_metrics=_metrics(
            _object(best.get("metrics") or {}, "best.metrics", HALVING_FILE),
            "best.metrics",
            HALVING_FILE,
        ),
    )


def _ids(value: Any, where: str) -> list[str]:
    """Job ids (or overrides): short strings; a number is taken as its text."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_JOBS:
        raise MalformedError(f"{HALVING_FILE}: {where} is not a list")
    ids = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) < 10**12:
            item = str(item)
        if not isinstance(item, str) or len(item) > MAX_TEXT_CHARS:
            raise MalformedError(f"{HALVING_FILE}: {where} holds {_show(item)}")
        ids.append(item)
    return ids


def _metrics(
    section: Mapping[str, Any], where: str, file: str = ENVELOPE_FILE
) -> dict[str, Number]:
    metrics = {}
    for name in list(section)[:64]:
        if len(name) <= MAX_TEXT_CHARS:
            value = _number(section, name, where, low=-1e30, file=file)
            if value is not None:
                metrics[name] = value
    return metrics


def _time(job: Mapping[str, Any], key: str, where: str) -> datetime | None:
    text = _text(job, key, where, ENVELOPE_FILE)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedError(
            f"{ENVELOPE_FILE}: {where}.{key} is not an ISO time: {_show(text)}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json(path: Path, name: str) -> Mapping[str, Any]:
    text = read_regular_file(path, name)
    try:
        data = json.loads(text)
    except RecursionError:
        raise MalformedError(f"{name}: invalid JSON (nested too deep)") from None
    except ValueError as err:  # JSONDecodeError, or an integer of more than 4300 digits
        raise MalformedError(f"{name}: invalid JSON ({_show(str(err))})") from None
    return _object(data, "top level", name)


def _object(value: Any, where: str, file: str = ENVELOPE_FILE) -> Mapping[str, Any]:
    return json_object(value, where, file)


# ---- report.md --------------------------------------------------------------------------------


def envelope_section(
    envelopes: Sequence[Envelope],
    skipped: Sequence[Skipped],
    comparison: Comparison,
    plots: bool = True,
) -> str:
    """report.md's *Sweep envelope*: per envelope, what it allowed, what its jobs charged and
    what is left, the jobs by status, the largest, the halving rungs; skipped files."""
    if not envelopes and not skipped:
        return ""
    parts = [
        "## Sweep envelope\n\nEvery job of the sweep charges one shared envelope: its "
        "reservation while it is open (running, or interrupted or write_failed and not resumed "
        "yet; a job killed while running keeps its reservation charged), then what it spent, "
        "with what earlier attempts of it spent."
    ]
    if plots and any(e.keys and e.jobs for e in envelopes):
        parts.append(f"![charges of the sweep's jobs against its envelope]({FILE_NAME})")
    numbers = _run_numbers(comparison)
    for envelope in envelopes:
        parts.append(_envelope_text(envelope, numbers))
    if skipped:
        parts.append(
            "Not shown:\n\n" + "\n".join(f"- {md_code(s.path)}: {md(s.reason)}" for s in skipped)
        )
    return "\n\n".join(parts)


def _envelope_text(envelope: Envelope, numbers: Mapping[Path, str]) -> str:
    jobs = envelope.jobs
    sweep = f" (sweep {md_code(envelope.sweep_id)})" if envelope.sweep_id else ""
    planned = envelope.planned_jobs
    count = (
        f"{plural(len(jobs), 'job')} recorded"
        if planned is None
        else f"{len(jobs)} of {plural(int(planned), 'planned job')} recorded"
    )
    parts = [f"### {md_code(envelope.dir)}\n\nSweep{sweep}: {count}."]
    keys = envelope.keys
    if not keys:
        parts.append("The envelope limits nothing (every key null): charges are not compared.")
    else:
        rows = []
        for key in keys:
            limit = envelope.limits[key]
            assert limit is not None
            total = envelope.total(key)
            reserved = [j for j in jobs if j.is_reservation(key) and j.charged(key) > 0]
            held = sum(j.charged(key) for j in reserved)
            left = limit - total
            rows.append(
                (
                    md(key_name(key)),
                    key_amount(key, limit),
                    f"{key_amount(key, total)} ({percent(total / limit if limit else None)})",
                    key_amount(key, left)
                    if left >= 0
                    else f"overdrawn by {key_amount(key, -left)}",
                    f"{key_amount(key, held)} ({plural(len(reserved), 'job')})"
                    if reserved
                    else "none",
                )
            )
        header = ("budget", "envelope", "charged", "left", "of it reserved, not spent")
        parts.append(_markdown_table(header, rows))
    statuses = Counter(job.status for job in jobs)
    parts.append(
        "Jobs by status: "
        + (", ".join(f"{n} {md(status)}" for status, n in statuses.most_common()) or "none")
        + "."
    )
    if keys and jobs:
        key = keys[0]
        largest = max(jobs, key=lambda j: j.charged(key))
        how = md(largest.status) + (", its reservation" if largest.is_reservation(key) else "")
        amount = key_amount(key, largest.charged(key))
        parts.append(
            f"Largest job: {_job_name(largest, numbers)}, {amount} of {md(key_name(key))} "
            f"charged ({how})."
        )
    if envelope.halving is not None:
        parts.append(_halving_text(envelope, numbers))
    elif envelope.halving_problem:
        parts.append(f"Halving table not shown: {md(envelope.halving_problem)}.")
    parts.append(_jobs_table(envelope, numbers))
    return "\n\n".join(parts)


def _halving_text(envelope: Envelope, numbers: Mapping[Path, str]) -> str:
    halving = envelope.halving
    assert halving is not None
    header = ("rung", "trials", "budget per trial", "promoted")
    rows = [
        (
            str(rung.rung),
            str(len(rung.trials)),
            ", ".join(
                f"{md(key_name(k))} {key_amount(k, v)}"
                for k, v in rung.budget.items()
                if v is not None
            )
            or UNKNOWN,
            f"{len(rung.promoted)}"
            + (f": {md(', '.join(rung.promoted[:20]))}" if rung.promoted else "")
            + (" …" if len(rung.promoted) > 20 else ""),
        )
        for rung in halving.rungs
    ]
    text = "**Successive halving**\n\n" + _markdown_table(header, rows)
    if halving.best_job is not None:
        by_id = {job.id: job for job in envelope.jobs}
        best = by_id.get(halving.best_job)
        name = _job_name(best, numbers) if best else f"job {md(halving.best_job)}"
        # Its validation and test metrics (the record also holds its spending, flat).
        shown = [(k, v) for k, v in halving.best_metrics.items() if _shown_metric(k)]
        metrics = ", ".join(f"{md(k)} {_metric(k, v)}" for k, v in shown[:MAX_BEST_METRICS])
        text += f"\n\nBest: {name}" + (f", {metrics}" if metrics else "")
        if halving.best_overrides:
            text += f" ({md_code(' '.join(halving.best_overrides))})"
        text += "."
    return text


def _jobs_table(envelope: Envelope, numbers: Mapping[Path, str]) -> str:
    keys = envelope.keys or [k for k in BUDGET_KEYS if any(j.charged(k) for j in envelope.jobs)][:1]
    rungs = any(envelope.rung_of(j) is not None for j in envelope.jobs)
    header = ["job", "run", "status", *(["rung"] if rungs else []), "attempts", "started"]
    header += [f"{md(key_name(k))} charged" for k in keys]
    rows = []
    for job in envelope.jobs[:MAX_JOB_ROWS]:
        rung = envelope.rung_of(job)
        row = [
            md(job.id),
            numbers.get(_resolved(job.dir), "") if job.dir else "",
            md(job.status),
            *([UNKNOWN if rung is None else str(rung)] if rungs else []),
            UNKNOWN if job.attempts is None else f"{job.attempts:g}",
            job.started.strftime("%Y-%m-%d %H:%M:%S") if job.started else UNKNOWN,
        ]
        row += [
            key_amount(k, job.charged(k)) + (" (reserved)" if job.is_reservation(k) else "")
            for k in keys
        ]
        rows.append(row)
    text = "Jobs in start order:\n\n" + _markdown_table(header, rows)
    if len(envelope.jobs) > MAX_JOB_ROWS:
        text += f"\n\n… and {len(envelope.jobs) - MAX_JOB_ROWS} more, in `{ENVELOPE_FILE}`."
    return text


def _job_name(job: Job, numbers: Mapping[Path, str]) -> str:
    number = numbers.get(_resolved(job.dir)) if job.dir else None
    return f"job {md(job.id)}" + (f" (run {number})" if number else "")


def _run_numbers(comparison: Comparison) -> dict[Path, str]:
    """A job's directory → ``#3`` of the run it wrote, for the runs in the tables."""
    return {
        _resolved(str(run.dir)): f"#{comparison.numbers[i]}"
        for i, run in enumerate(comparison.runs)
    }


def _resolved(directory: str | None) -> Path:
    path = Path(directory or "")
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return path.absolute()


def _shown_metric(name: str) -> bool:
    """A validation or test metric (``val/acc``), not a training one or a spent amount."""
    return "/" in name and not name.startswith("train/")


def _metric(name: str, value: float) -> str:
    return percent(value) if name.endswith("acc") and 0 <= value <= 1 else f"{value:.3g}"


# ---- envelope.png -----------------------------------------------------------------------------


def plot_envelopes(envelopes: Sequence[Envelope], path: Path) -> None:
    """One panel per envelope and limited key: each job's charge as a bar stacked on the jobs
    started before it (start order), so the tops climb like the total; a reservation not (yet)
    spent hatched; the envelope a dashed line. Bars are coloured by rung when the sweep has
    rungs (successive halving), else all one colour."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    from frugal.report import plots

    panels = [(e, key) for e in envelopes if e.jobs for key in e.keys][:MAX_PANELS]
    with matplotlib.rc_context(plots.PAPER_STYLE):
        fig = Figure(figsize=(7.4, 3.0 * max(1, len(panels)) + 0.9))
        FigureCanvasAgg(fig)
        rung_seen: set[int] = set()
        reserved_seen = False
        for row, (envelope, key) in enumerate(panels):
            ax = fig.add_subplot(len(panels), 1, row + 1)
            limit = envelope.limits[key]
            assert limit is not None
            base = 0.0
            tops = []
            for x, job in enumerate(envelope.jobs, start=1):
                charge = job.charged(key)
                rung = envelope.rung_of(job)
                color = plots.OKABE_ITO[0] if rung is None else plots.OKABE_ITO[rung % 7]
                if rung is not None:
                    rung_seen.add(rung)
                reserved = job.is_reservation(key)
                reserved_seen |= reserved and charge > 0
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
                tops[:-1],
                [x + 0.4 for x in starts],
                [x + 0.6 for x in starts],
                color="0.35",
                linewidth=0.7,
            )
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
            ax.set_ylim(0, max(limit, base) * 1.12)
            ax.set_xlim(0.3, len(envelope.jobs) + 0.7)
            if len(envelope.jobs) <= MAX_TICK_LABELS:
                ax.set_xticks(range(1, len(envelope.jobs) + 1))
                ax.set_xticklabels(
                    [plots._plain(j.id, 8) for j in envelope.jobs], fontsize=7, parse_math=False
                )
                ax.set_xlabel("job (in start order)")
            else:
                ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
                ax.set_xlabel("jobs in start order")
            charged = key_amount(key, envelope.total(key))
            name = "/".join(envelope.dir.parts[-2:]) + (
                f" (sweep {envelope.sweep_id})" if envelope.sweep_id else ""
            )
            title = (
                f"{plots._plain(name, 60)} · {plural(len(envelope.jobs), 'job')}, "
                f"{charged} of {key_amount(key, limit)} charged"
            )
            ax.set_title(title, loc="left", fontweight="bold", parse_math=False)
        if not panels:
            ax = fig.add_subplot(1, 1, 1)
            plots._empty_panel(ax, "no envelope with a limit and a job")
        handles: list[object] = [
            Line2D([], [], color="black", linestyle="--", label="envelope"),
        ]
        if rung_seen:
            handles += [
                Patch(facecolor=plots.OKABE_ITO[r % 7], label=f"rung {r}")
                for r in sorted(rung_seen)[:MAX_RUNG_KEYS]
            ]
        else:
            handles.append(
                Patch(facecolor=plots.OKABE_ITO[0], label="spent (with earlier attempts)")
            )
        if reserved_seen:
            handles.append(
                Patch(
                    facecolor="white",
                    edgecolor="0.3",
                    hatch="////",
                    label="reservation: job open (running, interrupted, write_failed or killed)",
                )
            )
        plots._bottom_legend(fig, handles)
        height_in = fig.get_figheight()
        fig.suptitle(
            "Sweep envelope: jobs' charges in start order", y=1 - 0.05 / height_in, va="top"
        )
        fig.tight_layout(rect=(0, 0.4 / height_in, 1, 1))
        fig.savefig(path)
