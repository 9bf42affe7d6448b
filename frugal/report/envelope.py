"""Sweep envelopes (``sweep_budget.<key>=…``): a multirun's ``envelope.json`` (and, from a
successive-halving sweeper, ``halving.json``), as report.md's *Sweep envelope* section
(``envelope.png``: :mod:`frugal.report.envelope_plot`).

Every job of the multirun charges one shared envelope, counted as the sweep counts it
(``frugal.sweep.envelope.charged``): its reservation while it is open (``running``, or
``interrupted`` or ``write_failed`` and not resumed yet; a job killed while running never
says otherwise, so its reservation stays charged), else what it spent plus what its earlier
attempts spent (``prior_spent``); a finished job that recorded no spending is charged its
reservation.

Both files are read like ``result.json``: regular files only, at most 16 MiB
(:mod:`frugal.report.files`), every value checked by the record's schema
(:class:`frugal.core.record.EnvelopeFile`, :class:`~frugal.core.record.HalvingFile`): a
malformed ``envelope.json`` is left out with the reason, a malformed ``halving.json`` only drops
the halving table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from frugal.core.checked import MalformedError, Number
from frugal.core.keys import SPENT_KEYS as BUDGET_KEYS
from frugal.core.record import (
    ENVELOPE_FILE,
    HALVING_FILE,
    EnvelopeFile,
    EnvelopeJob,
    HalvingFile,
    parse,
)
from frugal.core.status import FINAL_STATUSES as FINISHED
from frugal.core.units import UNKNOWN, percent
from frugal.report.compare import Comparison
from frugal.report.files import Skipped, find_named_files, natural_key, read_json
from frugal.report.markdown import markdown_table as _markdown_table
from frugal.report.markdown import md, md_code
from frugal.report.text import key_amount, key_name, plural

FILE_NAME = "envelope.png"
MAX_JOB_ROWS = 60  # jobs listed in report.md per envelope; envelope.json has them all
MAX_BEST_METRICS = 6  # the best trial's metrics named in report.md


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
    path = sweep_dir / ENVELOPE_FILE
    data = parse(EnvelopeFile, read_json(path, ENVELOPE_FILE), ENVELOPE_FILE)
    jobs = [_job(job_id, job) for job_id, job in data.jobs.items()]
    jobs.sort(key=lambda j: (j.started is None, j.started or _EPOCH, natural_key(Path(j.id))))
    halving, problem = _load_halving(sweep_dir / HALVING_FILE)
    return Envelope(
        dir=sweep_dir,
        sweep_id=data.sweep_id,
        limits=data.envelope.as_dict(),
        planned_jobs=data.planned_jobs,
        jobs=jobs,
        halving=halving,
        halving_problem=problem,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _job(job_id: str, job: EnvelopeJob) -> Job:
    return Job(
        id=job_id,
        dir=job.dir,
        status=job.status,
        reserved=job.reserved,
        spent=None if job.spent is None else job.spent.as_dict(),
        prior_spent=job.prior_spent,
        attempts=job.attempts,
        started=job.started,
        ended=job.ended,
        metrics=job.metrics,
        rung=None if job.rung is None else int(job.rung),
    )


def _load_halving(path: Path) -> tuple[Halving | None, str | None]:
    """The sweep's ``halving.json``, or why it is not shown; (None, None) without one."""
    if not (path.exists() or path.is_symlink()):
        return None, None
    try:
        data = parse(HalvingFile, read_json(path, HALVING_FILE), HALVING_FILE)
    except MalformedError as err:
        return None, str(err)
    rungs = [
        Rung(
            rung=k if rung.rung is None else int(rung.rung),
            budget=rung.budget.as_dict(),
            trials=rung.trials,
            promoted=rung.promoted,
        )
        for k, rung in enumerate(data.rungs)
    ]
    best = data.best
    return Halving(rungs, best.job, best.overrides, best.metrics), None


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
