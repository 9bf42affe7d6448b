"""What `frugal-train -m ... sweep_budget.<key>=...` does before Hydra starts the sweep.

A sweep with an envelope lives in one directory for good: relaunching the same command must
find it to continue. Unless `hydra.sweep.dir` is given, that directory is therefore not Hydra's
timestamped one but `<paths.log_dir>/<task_name>/sweeps/<id>`, where `<id>` is a hash of the
command line's overrides (the same command, the same directory). `envelope.json` is opened
there, once the command line has passed every check, with the number of jobs the sweep plans
(which sets each job's fair share; null for a sweeper that allocates the envelope itself).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from frugal.budget.spec import declared, envelope_of
from frugal.config.compose import first_job, parse_flags, planned_jobs
from frugal.sweep.envelope import open_sweep

log = logging.getLogger("frugal")

SWEEPS_DIR = "sweeps"
SWEEP_DIR_KEY = "hydra.sweep.dir"
# Sweepers that allocate the envelope trial by trial (a job count does not apply to them)
ALLOCATING_SWEEPERS = ("HalvingSweeper",)


def sweep_id(overrides: list[str]) -> str:
    """The same overrides, in any order, give the same id (Hydra's own settings aside)."""
    own = sorted(text for text in overrides if not text.lstrip("+~").startswith("hydra."))
    return hashlib.sha256("\n".join(own).encode()).hexdigest()[:12]


def with_sweep_dir(argv: list[str], config_dir: str) -> list[str]:
    """`argv` with `hydra.sweep.dir` fixed for a multirun with an envelope (unchanged for
    anything else, and for a command line that does not compose: the check that follows
    names its error)."""
    try:
        args = parse_flags(argv)
    except Exception:
        return argv
    if not args.multirun or any(o.startswith(SWEEP_DIR_KEY + "=") for o in args.overrides):
        return argv
    cfg = _first_job(args.overrides, config_dir, args.config_name)
    try:
        if cfg is None or not declared(cfg.get("sweep_budget")):
            return argv
        log_dir = Path(str(cfg.paths.log_dir)) / str(cfg.task_name)
    except Exception:  # a wrong value: the check that follows names it
        return argv
    where = log_dir / SWEEPS_DIR / sweep_id(list(args.overrides))
    return [*argv, f"{SWEEP_DIR_KEY}={where}"]


def open_envelope(argv: list[str], config_dir: str) -> None:
    """Create (or, relaunched, check and continue) the sweep's `envelope.json`; raises
    ConfigError when the directory holds a sweep with another envelope."""
    args = parse_flags(argv)
    if not args.multirun:
        return
    cfg = _first_job(args.overrides, config_dir, args.config_name)
    if cfg is None or not declared(cfg.get("sweep_budget")):
        return
    sweeper = str(OmegaConf.select(cfg, "hydra.sweeper._target_", default=""))
    allocating = sweeper.endswith(ALLOCATING_SWEEPERS)
    jobs = None if allocating else planned_jobs(args.overrides, config_dir, args.config_name)
    sweep_dir = Path(str(cfg.hydra.sweep.dir))
    continued = open_sweep(
        sweep_dir, envelope_of(cfg.sweep_budget), sweep_id(list(args.overrides)), jobs
    )
    log.info(
        "sweep envelope %s: %s",
        "continued" if continued else "opened",
        sweep_dir,
    )
    print(f"frugal-train: sweep envelope {'continued' if continued else 'opened'} in {sweep_dir}")


def _first_job(overrides: list[str], config_dir: str, name: str | None) -> DictConfig | None:
    try:
        return first_job(overrides, config_dir, name)
    except Exception:
        return None
