"""`frugal-train` (same as `python -m frugal.train`): one budgeted training run.

A thin Hydra wrapper around `frugal.pipeline.train`. The whole command line is checked
(`frugal.command_line.check_command_line`: composed as Hydra will compose it, every key against the
schema, every element of a sweep) before `@hydra.main` runs: bad input gets its one line on
stderr and exit status 2 within a fraction of a second, and nothing is written, not even
`.hydra/`. What it checked is handed to the run (`frugal.config.Accepted`): not checked again.
`frugal-train --help` lists the groups, the budget keys and the exit statuses.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig

from frugal.command_line import check_command_line
from frugal.config import Accepted, ConfigError, help_text
from frugal.core.errors import one_line
from frugal.core.status import EXIT_BAD_INPUT, EXIT_OK, RESUMABLE_STATUSES, Status, exit_code
from frugal.runs import release
from frugal.runs.cluster import requeue
from frugal.runs.rundir import claim_resumed
from frugal.runs.signals import StopSignals
from frugal.runs.write_faults import write_failure
from frugal.sweep.envelope import SKIPPED
from frugal.sweep.launch import open_envelope, with_sweep_dir

# An absolute path: Hydra resolves a relative one against the *package* when the function is
# started as a console script (`frugal-train`), and conf/ lives beside the package, not in it.
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
# The stop signals noted since the command line was accepted (`main`), handed to every run.
_signals: StopSignals | None = None
# What the command line check passed (`main`), handed to the runs Hydra starts in this process:
# a run's configuration is checked once.
_accepted: Accepted | None = None


def train(cfg: DictConfig, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """See `frugal.pipeline.train`."""
    from frugal.pipeline import train as run

    return run(cfg, **kwargs)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | tuple[float | None, ...] | None:
    signals = _stop_signals()
    try:
        if signals.received is not None and _alone(cfg):  # since the command line was accepted
            from frugal.runs.stop_record import STARTING, write_interrupted

            result, objects = write_interrupted(cfg, signals.received, STARTING), {}
        else:
            checked = _accepted.get(cfg) if _accepted is not None else None
            result, objects = train(cfg, signals=signals, checked=checked)
    except ConfigError as err:
        reject(err, debug=_debug(cfg))
    except OSError as err:  # a write fault the run could not record itself (it records its own)
        failed = write_failure(err, fallback=cfg.paths.output_dir)
        if failed is None:
            raise
        from frugal.runs.stop_record import write_fault_record

        result, objects = write_fault_record(cfg, failed), {}
    if result["status"] == SKIPPED:  # another launch of the sweep runs this job (its log says so)
        return None
    status = result["status"]
    signum = getattr(objects.get("budget"), "signal", None) or signals.received
    code = exit_code(status, cfg.budget.get("on_exceed") or "stop", signum)
    if code != EXIT_OK:
        print(f"frugal-train: {status}: {result['message']}", file=sys.stderr)
        if status == Status.INTERRUPTED:
            # A submitit job stopped by a pre-emption signal (checkpoint and ledger saved) is
            # requeued by submitit and resumes its run; this call then does not return.
            requeue(signum)
        # A refused or diverged job does not stop the other jobs of a sweep; a signal does, and
        # so does a write that failed (the next jobs could not record theirs either).
        if status in RESUMABLE_STATUSES or not _in_multirun():
            sys.exit(code)
    return objectives(cfg, result)


def objectives(cfg: DictConfig, result: dict[str, Any]) -> float | tuple[float | None, ...] | None:
    """What a Hydra sweeper optimises: `objectives: [test/acc, energy_j]` names metrics or
    spent keys; one name gives a float, several a tuple (multi-objective Optuna)."""
    names = cfg.get("objectives") or ["test/acc"]
    names = [names] if isinstance(names, str) else list(names)
    values = tuple(result["metrics"].get(name, result["spent"].get(name)) for name in names)
    return values[0] if len(values) == 1 else values


def reject(err: ConfigError, debug: bool = False) -> NoReturn:
    """Bad input: the one line (after the traceback under FRUGAL_DEBUG=1), exit status 2."""
    if debug:
        traceback.print_exception(err)
    print(f"frugal-train: {one_line(str(err))}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def _debug(cfg: DictConfig | None = None, argv: list[str] | None = None) -> bool:
    """FRUGAL_DEBUG=1, or `debug=default` (the config's `debug: true`): show the traceback."""
    if os.environ.get("FRUGAL_DEBUG", "") not in ("", "0"):
        return True
    if cfg is not None:
        return bool(cfg.get("debug"))
    return any(arg in ("debug=default", "+debug=true", "debug=true") for arg in argv or [])


def _stop_signals() -> StopSignals:
    """The instance `main` installed; a job started otherwise (a cluster launcher's process
    runs this function without `main`) installs its own."""
    global _signals
    if _signals is None:
        _signals = StopSignals()
        _signals.install()
    return _signals


def _alone(cfg: DictConfig) -> bool:
    """A run of one process, which a signal may stop before its trainer exists (a multi-process
    run goes on to fit, where the first step stops every rank: `frugal.runs.stop_record`)."""
    from frugal.runs.stop_record import may_stop_in_setup

    devices = cfg.trainer.get("devices", 1)
    one_device = devices in (1, "1") or (isinstance(devices, ListConfig) and len(devices) == 1)
    return one_device and may_stop_in_setup(cfg.trainer.get("num_nodes", 1))


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _with_resume(argv: list[str]) -> list[str]:
    """A command line resuming a run writes into that run (`frugal.runs.checkpoint.resume_argv`);
    the checkpoint module (and torch) is imported only when the command line names one."""
    if not any(arg.lstrip("+").startswith(("ckpt_path=", "resume=")) for arg in argv):
        return argv
    from frugal.runs.checkpoint import resume_argv

    return resume_argv(argv)


def main(argv: list[str] | None = None) -> None:
    """The console script: `--help`, then the command line checked, then Hydra's run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print(help_text(CONF_DIR))
        return
    argv = _with_resume(argv)
    argv = with_sweep_dir(argv, CONF_DIR)  # a sweep with an envelope: one directory for good
    global _signals, _accepted
    try:
        _accepted = check_command_line(argv, CONF_DIR)
        # Accepted: from here a signal ends the run with its record (frugal.runs.stop_record), never
        # the default way. Checked between set-up phases and at every training step.
        signals = _signals = StopSignals()
        signals.install()
        resumed = claim_resumed(argv)  # one process per run, before Hydra opens its log there
        open_envelope(argv, CONF_DIR)
    except ConfigError as err:
        reject(err, debug=_debug(argv=argv))
    from frugal.sweep.plugins import register

    register()  # frugal's sweepers (hydra/sweeper=halving) for Hydra to instantiate
    sys.argv = [sys.argv[0], *argv]
    try:
        _hydra_main()
    finally:
        signals.restore()  # for a caller in the same process (the command exits here)
        _signals = _accepted = None
        release(resumed)


if __name__ == "__main__":
    main()
