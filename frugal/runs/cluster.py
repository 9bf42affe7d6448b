"""Runs launched by a cluster launcher: Hydra's submitit launcher (`hydra/launcher=slurm`,
`submitit_slurm` or `submitit_local`), one Hydra job per submitit job.

Pre-emption, end to end (README, "Running on a cluster"):

1. The signal SLURM sends before the time limit (submitit asks for SIGUSR2 `signal_delay_s`
   ahead; SIGUSR1 for Lightning-style `--signal=USR1@90` set-ups), or SIGTERM, is *noted* by
   `frugal.runs.signals.StopSignals` and honoured at the next step every rank agrees on:
   the model and its ledger go to `checkpoints/last.ckpt`, the spending to `ledger.json`; the
   run's status is `interrupted`.
2. `requeue(signum)`, called by `frugal-train` once the run has stopped: for the pre-emption
   signals, submitit's own handler then re-submits the job (its `checkpoint()` — the launcher
   plugin's — dumps the same call again; `scontrol requeue` on SLURM, exit status 144 to
   submitit's local controller, which starts the job again). SIGTERM is not requeued here:
   it is also what `scancel` sends, and a pre-empting SLURM requeues the job itself.
3. The job starts again — same submitit job id, same Hydra job directory. `resume_requeued`
   finds that this very job (`job.json`, written by `note_job` at the start of every
   segment) left `checkpoints/last.ckpt` in its directory and sets `ckpt_path` to it: the run
   resumes by run (`frugal.runs.checkpoint.resolve_resume`) — same configuration, same ledger, same
   budget — and ends within it.

A directory holding another job's checkpoint is never taken over: without a matching
`job.json` the run directory check refuses it as before.
"""

from __future__ import annotations

import copy
import logging
import os
import signal
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from frugal.config.size_search import searched
from frugal.runs.record import LAST_CKPT, read_json_object, write_json_atomic
from frugal.runs.rundir import continue_search

log = logging.getLogger("frugal")

JOB_FILE = "job.json"  # which submitit job wrote this run directory (its requeues continue it)


def in_submitit_job() -> bool:
    """Whether this process is a task of a submitit job (SLURM or local)."""
    return bool(os.environ.get("SUBMITIT_EXECUTOR"))


def job_identity() -> dict[str, str] | None:
    """What stays the same when a submitit job is requeued and differs between jobs: the
    executor, the job id (SLURM: `<array job>_<task>` or the job id; local: the controller's
    pid) and submitit's folder (it holds the sweep directory). None outside submitit."""
    if not in_submitit_job():
        return None
    try:
        import submitit

        job_id = str(submitit.JobEnvironment().job_id)
    except Exception as err:  # not a submitit task after all (a variable left behind)
        log.debug("submitit job environment unreadable: %s", err)
        return None
    return {
        "executor": os.environ["SUBMITIT_EXECUTOR"],
        "job_id": job_id,
        "folder": os.environ.get("SUBMITIT_FOLDER", ""),
    }


def note_job(output_dir: Path) -> None:
    """Record the submitit job writing `output_dir` (nothing outside submitit)."""
    identity = job_identity()
    if identity is None:
        return
    try:
        write_json_atomic(output_dir / JOB_FILE, identity)
    except OSError as err:
        log.warning("could not write %s: %s (a requeue of this job will not resume)", JOB_FILE, err)


def noted_job(output_dir: Path) -> dict[str, Any] | None:
    return read_json_object(output_dir / JOB_FILE)


def resume_requeued(cfg: DictConfig) -> DictConfig:
    """A requeued submitit job continues its own run: `ckpt_path=<run>/checkpoints/last.ckpt`
    when the run directory holds a checkpoint written by this same job. Any other
    configuration is returned as it is."""
    if cfg.get("ckpt_path") or cfg.get("resume") or cfg.get("compress"):
        return cfg
    identity = job_identity()
    if identity is None:
        return cfg
    if searched(cfg):  # a size search resumes each pilot and its final run itself
        return continue_search(cfg)
    run = Path(str(cfg.paths.output_dir))
    last = run / LAST_CKPT
    if not last.is_file() or noted_job(run) != identity:
        return cfg
    log.info(
        "requeued job %s: resuming its run from %s (same budget, same ledger)",
        identity["job_id"],
        last,
    )
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.ckpt_path = str(last)
    return cfg


# ---- requeue ---------------------------------------------------------------------------------
def requeue_signals() -> frozenset[int]:
    """Signals after which a stopped run is requeued: submitit's pre-emption / time-out signal
    (SIGUSR2, or `SUBMITIT_PREEMPT_SIGNAL`) and SLURM's conventional SIGUSR1."""
    found = {signal.SIGUSR1, signal.SIGUSR2}
    preempt = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)
    if isinstance(preempt, signal.Signals):
        found.add(preempt)
    return frozenset(int(s) for s in found)


def requeue(signum: int | None) -> bool:
    """After a run stopped on `signum` (checkpoint and ledger saved): have submitit requeue
    this job when the signal asks for it. On the requeueing task this does not return (submitit
    exits: status 144 under its local controller, after `scontrol requeue` on SLURM). Returns
    False when the job is not requeued (not a submitit job, another signal, another rank, or
    submitit declined: too many time-outs)."""
    if not in_submitit_job() or signum is None or int(signum) not in requeue_signals():
        return False
    try:
        from submitit import JobEnvironment
        from submitit.core.job_environment import SignalHandler
        from submitit.core.utils import UncompletedJobError
    except ImportError:
        return False
    # The handler submitit installed when the job started (frugal's StopSignals put it back
    # when training ended): it knows the job's start time, hence time-out from pre-emption,
    # and the number of requeues left (`max_num_timeout`).
    handler = signal.getsignal(JobEnvironment._usr_sig())
    owner = getattr(handler, "__self__", None)
    if not isinstance(owner, SignalHandler):
        log.warning("submitit's pre-emption handler is not installed: the job is not requeued")
        return False
    try:
        owner.checkpoint_and_try_requeue(int(signum))  # exits on the task that requeues
    except UncompletedJobError as err:
        log.warning("not requeued: %s", err)
    return False


def trainer_plugins() -> dict[str, Any]:
    """Under SLURM, Lightning's own SIGUSR1 handler would requeue the job at once (no agreed
    stop, no ledger): frugal owns the signals, so Lightning's auto-requeue is turned off. The
    SLURM cluster environment itself (ranks, nodes, master address) is kept."""
    if "SLURM_NTASKS" not in os.environ:
        return {}
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    if not SLURMEnvironment.detect():
        return {}
    return {"plugins": [SLURMEnvironment(auto_requeue=False)]}
