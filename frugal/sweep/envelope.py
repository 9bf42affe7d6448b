"""One budget envelope shared by every job of a multirun: `sweep_budget.<key>=<amount>`.

The sweep directory holds `envelope.json`: the envelope (SI units) and one entry per job. A
job *reserves* its share under a file lock before it builds anything, is enforced to that
reservation by its own budget callback, and records what it spent when it ends. Until then
(running, killed, interrupted) the whole reservation stays charged, so the jobs' total can
never pass the envelope, whatever the launcher runs in parallel and whichever job dies:

    charged(job)  = reserved                 while the job is open (running, interrupted)
                  = spent + prior_spent      once it finished (completed, budget_exhausted, ...)
    remaining     = envelope - sum(charged)
    reservation   = min(the job's own budget.<key>, remaining / jobs not yet started)

The lock is a POSIX record lock (`fcntl.lockf`), which NFS and other shared filesystems honour
across nodes, on a file beside the ledger; the ledger itself is replaced atomically.

Any number of launches of one sweep share its jobs: a job is claimed (its run directory's lock,
`frugal.runs`) under the envelope's lock before it reserves anything; a job another live
process holds is skipped, neither run nor charged twice (`SKIPPED`).

A relaunched sweep (same envelope, same sweep directory) continues: a job that finished
returns its recorded result without training again; a job that was killed resumes from its
`last.ckpt` within its reservation, or, without one, starts again with what its first attempt
spent (its `ledger.json`) charged and that attempt's files kept under `attempts/<n>/`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from frugal.budget.spec import BudgetSpec, as_budget, declared, envelope_of
from frugal.config.size_search import searched
from frugal.core.errors import bad
from frugal.core.keys import ADDITIVE_KEYS, CONFIG_KEY
from frugal.core.record import ENVELOPE_FILE, ENVELOPE_VERSION
from frugal.core.status import FINAL_STATUSES, RUNNING
from frugal.runs import open_nofollow, release, try_claim
from frugal.runs.attempts import set_aside
from frugal.runs.directory import refuse_links
from frugal.runs.record import LAST_CKPT, read_result, write_json_atomic
from frugal.runs.rundir import continue_search

log = logging.getLogger("frugal")

LOCK_SUFFIX = ".lock"
VERSION = ENVELOPE_VERSION  # of envelope.json, whose schema is frugal.core.record.EnvelopeFile
# A job in a final status (frugal.core.status.FINAL_STATUSES) has ended for good: its spending
# is final. Running, interrupted and write_failed jobs (RUNNING, RESUMABLE_STATUSES) keep their
# reservation.
# A job another launch of the sweep is running: what this launch returns for it instead
SKIPPED = "skipped"


# ---- the ledger file -------------------------------------------------------------------------
def read_envelope(sweep_dir: Path) -> dict[str, Any] | None:
    """The parsed `envelope.json` of `sweep_dir` (no lock: a consistent snapshot, since the file
    is replaced atomically), or None when absent or not an envelope."""
    try:
        state = json.loads((Path(sweep_dir) / ENVELOPE_FILE).read_text())
    except (OSError, ValueError, RecursionError):  # RecursionError: a hostile nesting
        return None
    ok = isinstance(state, dict) and state.get("version") == VERSION
    return state if ok and isinstance(state.get("jobs"), dict) else None


@contextmanager
def locked(sweep_dir: Path) -> Iterator[dict[str, Any]]:
    """Hold the sweep's lock; yields `{"state": <the current state or None>}`. The state found
    there (changed in place) or put there is written back atomically before the lock is
    released. Not re-entrant: POSIX locks belong to the process, not the file handle."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open_nofollow(sweep_dir / (ENVELOPE_FILE + LOCK_SUFFIX), "a+") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        try:
            book = {"state": read_envelope(sweep_dir)}
            before = json.dumps(book["state"], sort_keys=True)
            yield book
            if book["state"] is not None and json.dumps(book["state"], sort_keys=True) != before:
                write_json_atomic(sweep_dir / ENVELOPE_FILE, book["state"])
        finally:
            fcntl.lockf(lock, fcntl.LOCK_UN)


def new_state(envelope: dict[str, float | None], sweep_id: str, planned_jobs: int | None) -> dict:
    return {
        "version": VERSION,
        "sweep_id": sweep_id,
        "envelope": envelope,
        "planned_jobs": planned_jobs,
        "created": _now(),
        "jobs": {},
    }


def open_sweep(
    sweep_dir: Path, envelope: dict[str, float | None], sweep_id: str, planned_jobs: int | None
) -> bool:
    """Create `envelope.json`, or check that the one there declares the same envelope (a
    relaunch continues it). Returns True when an earlier launch is continued; raises
    ConfigError when the directory holds another envelope's sweep (or a link where the
    envelope's files go)."""
    refuse_links("hydra.sweep.dir", Path(sweep_dir), (ENVELOPE_FILE, ENVELOPE_FILE + LOCK_SUFFIX))
    with locked(sweep_dir) as book:
        state = book["state"]
        if state is None:
            book["state"] = new_state(envelope, sweep_id, planned_jobs)
            return False
        check_same(state, envelope, sweep_dir)
        if planned_jobs is not None and state.get("planned_jobs") != planned_jobs:
            state["planned_jobs"] = planned_jobs
        return True


def check_same(state: dict[str, Any], envelope: dict[str, float | None], sweep_dir: Path) -> None:
    theirs = state.get("envelope") or {}
    if any(_differ(theirs.get(key), envelope.get(key)) for key in ADDITIVE_KEYS):
        shown = ", ".join(f"{k}={v:g}" for k, v in theirs.items() if isinstance(v, int | float))
        raise bad(
            "hydra.sweep.dir",
            str(sweep_dir),
            f"holds a sweep with another envelope ({shown})",
            "the same sweep_budget to relaunch it, or a new hydra.sweep.dir",
        )


def _differ(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(float(a) - float(b)) > 1e-9 * max(abs(float(a)), abs(float(b)), 1.0)


# ---- accounting ------------------------------------------------------------------------------
def charged(job: Mapping[str, Any]) -> dict[str, float]:
    """What `job` counts against the envelope: its reservation while it is open, what it
    spent once it finished (an unknown amount keeps the reservation: never under-count)."""
    reserved = job.get("reserved") or {}
    if job.get("status") not in FINAL_STATUSES:
        return {key: float(value) for key, value in reserved.items() if value is not None}
    spent, prior = job.get("spent") or {}, job.get("prior_spent") or {}
    out = {}
    for key, limit in reserved.items():
        amount = spent.get(key)
        if amount is None:
            out[key] = float(limit) if limit is not None else 0.0
        else:
            out[key] = float(amount) + float(prior.get(key) or 0.0)
    return out


def remaining(state: Mapping[str, Any]) -> dict[str, float]:
    """Per limited key: the envelope less everything charged (never below 0)."""
    left = {k: float(v) for k, v in (state.get("envelope") or {}).items() if v is not None}
    for job in (state.get("jobs") or {}).values():
        for key, amount in charged(job).items():
            if key in left:
                left[key] -= amount
    return {key: max(value, 0.0) for key, value in left.items()}


def total_charged(state: Mapping[str, Any]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for job in (state.get("jobs") or {}).values():
        for key, amount in charged(job).items():
            totals[key] = totals.get(key, 0.0) + amount
    return totals


# ---- the job's side --------------------------------------------------------------------------
def sweep_dir_of_job() -> tuple[Path, str] | None:
    """(sweep directory, this job's id) inside a Hydra multirun, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return Path(str(hydra_cfg.sweep.dir)).absolute(), str(hydra_cfg.sweep.subdir)


def join(cfg: DictConfig, budget: BudgetSpec) -> tuple[DictConfig, dict[str, Any] | None]:
    """Enter the sweep's envelope before anything is built (`budget`: the job's own, checked:
    its reservation is never more). Returns the configuration to run
    (its budget cut to this job's reservation; `ckpt_path` set when a killed attempt left a
    checkpoint) and, for a job that already finished in an earlier launch, its result (then
    nothing is trained); for a job another live launch is running, a result whose status is
    `SKIPPED`. A configuration without `sweep_budget` is returned as it is. The job's directory
    stays claimed by this process until `settle`."""
    envelope = envelope_of(cfg.get("sweep_budget"))
    if not any(value is not None for value in envelope.values()):
        return cfg, None
    where = sweep_dir_of_job()
    if where is None:
        raise bad(
            "sweep_budget",
            ...,
            "an envelope is shared by the jobs of a multirun",
            "-m (or budget.<key> for one run)",
        )
    sweep_dir, job_id = where
    run_dir = Path(str(cfg.paths.output_dir)).absolute()
    own = budget.limits()
    with locked(sweep_dir) as book:
        if book["state"] is None:  # a launcher that skipped frugal-train's set-up: open it here
            book["state"] = new_state(envelope, sweep_id="", planned_jobs=None)
        state = book["state"]
        check_same(state, envelope, sweep_dir)
        job = state["jobs"].get(job_id)
        if job is not None and job.get("status") in FINAL_STATUSES:
            previous = read_result(run_dir)
            if previous is not None:
                log.info("envelope: job %s finished in an earlier launch; not run again", job_id)
                return cfg, previous
        holder = try_claim(run_dir, "hydra.sweep.dir")
        if holder is not None:
            return cfg, _skipped(job_id, holder, run_dir)
        job, resume = _start_attempt(state, job_id, job, cfg, own)
    allowance = _allowance(job)
    log.info(
        "envelope: job %s may spend %s of the sweep's envelope (attempt %d)",
        job_id,
        ", ".join(f"{key}={value:.4g}" for key, value in allowance.items()),
        job["attempts"],
    )
    cfg = _with_budget(cfg, allowance, str(run_dir / LAST_CKPT) if resume else None)
    return (continue_search(cfg) if searched(cfg) else cfg), None


def _start_attempt(
    state: dict[str, Any],
    job_id: str,
    job: dict[str, Any] | None,
    cfg: DictConfig,
    own: dict[str, float | None],
) -> tuple[dict[str, Any], bool]:
    """This attempt of the job, booked under the lock: a first attempt reserves the job's share,
    a later one counts itself and, without a checkpoint to resume from, sets the killed attempt
    aside. Returns (the job's entry, whether it resumes from the last checkpoint)."""
    run_dir = Path(str(cfg.paths.output_dir)).absolute()
    if job is None:
        job = _reserve(state, job_id, run_dir, own)
    else:
        job["attempts"] = int(job.get("attempts") or 1) + 1
        job["status"] = RUNNING
        job["ended"] = None
    resume = (run_dir / LAST_CKPT).is_file() and not cfg.get("ckpt_path")
    if searched(cfg):  # a size search continues (or sets aside) each of its parts itself
        resume = False
    elif not resume and job["attempts"] > 1:
        _set_aside_attempt(run_dir, job)
    state["jobs"][job_id] = job
    return job, resume


def _allowance(job: Mapping[str, Any]) -> dict[str, float]:
    """What the job may spend now: its reservation less what earlier attempts were charged."""
    prior = job.get("prior_spent") or {}
    return {
        key: max(float(job["reserved"][key]) - float(prior.get(key) or 0), 0)
        for key in job["reserved"]
    }


def settle(cfg: DictConfig, result: Mapping[str, Any]) -> None:
    """Record what this job spent (its reservation is then released to later jobs). An
    interrupted job keeps its reservation: a relaunch resumes it within it."""
    if not declared(cfg.get("sweep_budget")):
        return
    where = sweep_dir_of_job()
    if where is None:
        return
    sweep_dir, job_id = where
    spent = result.get("spent") or {}
    try:
        with locked(sweep_dir) as book:
            state = book["state"]
            if state is None or job_id not in state["jobs"]:
                return
            job = state["jobs"][job_id]
            job["status"] = str(result.get("status"))
            job["spent"] = {key: spent.get(key) for key in job["reserved"]}
            job["metrics"] = dict(result.get("metrics") or {})
            job["ended"] = _now()
    finally:  # booked first: another launch then finds the job settled, not free to run
        release(Path(str(cfg.paths.output_dir)).absolute())  # claimed by `join`


def _skipped(job_id: str, holder: int, run_dir: Path) -> dict[str, Any]:
    """What this launch returns for a job another launch runs (nothing booked, nothing run)."""
    who = f"pid {holder}" if holder > 0 else "a process on another machine"
    message = f"job {job_id} is being run by another launch of this sweep ({who}); skipped here"
    log.warning("envelope: %s (%s)", message, run_dir)
    return {"status": SKIPPED, "message": message, "metrics": {}, "spent": {}}


def _reserve(
    state: dict[str, Any], job_id: str, run_dir: Path, own: dict[str, float | None]
) -> dict[str, Any]:
    left = remaining(state)
    planned = state.get("planned_jobs")
    started = len(state["jobs"])
    waiting = max(int(planned) - started, 1) if isinstance(planned, int) else 1
    reserved = {}
    for key, amount in left.items():
        share = amount / waiting
        if own.get(key) is not None:
            share = min(share, float(own[key]))
        reserved[key] = share
    return {
        "dir": str(run_dir),
        "status": RUNNING,
        "reserved": reserved,
        "spent": None,
        "prior_spent": {key: 0.0 for key in reserved},
        "attempts": 1,
        "started": _now(),
        "ended": None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "metrics": None,
    }


def _set_aside_attempt(run_dir: Path, job: dict[str, Any]) -> None:
    """A killed attempt without a checkpoint: charge what its ledger saw (unknown: all that
    was left of the reservation), and keep its files under attempts/<n>/."""
    prior = job.setdefault("prior_spent", {})
    left = {
        key: max(float(reserved) - float(prior.get(key) or 0.0), 0.0)
        for key, reserved in job["reserved"].items()
    }
    for key, amount in set_aside(run_dir, left).items():
        prior[key] = float(prior.get(key) or 0.0) + (left[key] if amount is None else amount)


def _with_budget(cfg: DictConfig, allowance: dict[str, float], ckpt: str | None) -> DictConfig:
    from copy import deepcopy

    cfg = deepcopy(cfg)
    with open_dict(cfg):
        for field_name, amount in allowance.items():
            cfg.budget[CONFIG_KEY[field_name]] = as_budget(field_name, amount)
        if ckpt is not None:  # resumed: its own weights, not those it started from
            cfg.ckpt_path = ckpt
            cfg.init_from = None
    return cfg


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
