"""`frugal-train` (same as `python -m frugal.train`): one budgeted training run.

A thin Hydra wrapper around `frugal.pipeline.train`. The whole command line is checked
(`frugal.config.check_command_line`: composed as Hydra will compose it, every key against the
schema, every element of a sweep) before `@hydra.main` runs: bad input gets its one line on
stderr and exit status 2 within a fraction of a second, and nothing is written, not even
`.hydra/`. `frugal-train --help` lists the groups, the budget keys and the exit statuses.
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
from omegaconf import DictConfig

from frugal.cluster import requeue
from frugal.config import ConfigError, check_command_line, help_text
from frugal.config.errors import one_line
from frugal.status import EXIT_BAD_INPUT, EXIT_OK, Status, exit_code
from frugal.sweep.launch import open_envelope, with_sweep_dir

# An absolute path: Hydra resolves a relative one against the *package* when the function is
# started as a console script (`frugal-train`), and conf/ lives beside the package, not in it.
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def train(cfg: DictConfig, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """See `frugal.pipeline.train`."""
    from frugal.pipeline import train as run

    return run(cfg, **kwargs)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | tuple[float | None, ...] | None:
    try:
        result, objects = train(cfg)
    except ConfigError as err:
        reject(err, debug=_debug(cfg))
    status = result["status"]
    signum = getattr(objects.get("budget"), "signal", None)
    code = exit_code(status, cfg.budget.get("on_exceed") or "stop", signum)
    if code != EXIT_OK:
        print(f"frugal-train: {status}: {result['message']}", file=sys.stderr)
        if status == Status.INTERRUPTED:
            # A submitit job stopped by a pre-emption signal (checkpoint and ledger saved) is
            # requeued by submitit and resumes its run; this call then does not return.
            requeue(signum)
        # A refused or diverged job does not stop the other jobs of a sweep; a signal does.
        if status == Status.INTERRUPTED or not _in_multirun():
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


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _with_resume(argv: list[str]) -> list[str]:
    """A command line resuming a run writes into that run (`frugal.checkpoint.resume_argv`);
    the checkpoint module (and torch) is imported only when the command line names one."""
    if not any(arg.lstrip("+").startswith(("ckpt_path=", "resume=")) for arg in argv):
        return argv
    from frugal.checkpoint import resume_argv

    return resume_argv(argv)


def main(argv: list[str] | None = None) -> None:
    """The console script: `--help`, then the command line checked, then Hydra's run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print(help_text(CONF_DIR))
        return
    argv = _with_resume(argv)
    argv = with_sweep_dir(argv, CONF_DIR)  # a sweep with an envelope: one directory for good
    try:
        check_command_line(argv, CONF_DIR)
        open_envelope(argv, CONF_DIR)
    except ConfigError as err:
        reject(err, debug=_debug(argv=argv))
    from frugal.sweep.plugins import register

    register()  # frugal's sweepers (hydra/sweeper=halving) for Hydra to instantiate
    sys.argv = [sys.argv[0], *argv]
    _hydra_main()


if __name__ == "__main__":
    main()
