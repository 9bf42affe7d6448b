"""An attempt of a run killed before it saved a checkpoint: started again in its own directory,
the run keeps the attempt's outputs under `attempts/<n>/` (a run's files are never overwritten)
and charges what the attempt's ledger saw (spending is never dropped).

Used where frugal restarts a run by itself: a job of a sweep envelope relaunched
(`frugal.sweep.envelope`) and the parts of a size search continued (`frugal.sweep.auto_size`).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from pathlib import Path

from frugal.budget.ledger import LEDGER_FILE, read_sidecar
from frugal.runs.record import CURVE_FILE, RESULT_FILE
from frugal.runs.rundir import outputs_in

ATTEMPTS_DIR = "attempts"
ATTEMPT_FILES = (RESULT_FILE, LEDGER_FILE, CURVE_FILE, "checkpoints")
Allowance = Mapping[str, float | None]  # per spent key: what an attempt was allowed, or None


def set_aside(run_dir: Path, allowance: Allowance) -> dict[str, float | None]:
    """Move the attempt's outputs to the next `attempts/<n>/`; returns its charge
    (`charge_of`)."""
    charge = charge_of(run_dir, allowance)
    present = [name for name in ATTEMPT_FILES if (run_dir / name).exists()]
    if present:
        keep = _next_free(run_dir / ATTEMPTS_DIR)
        keep.mkdir(parents=True)
        for name in present:
            shutil.move(str(run_dir / name), str(keep / name))
    return charge


def charge_of(run_dir: Path, allowance: Allowance) -> dict[str, float | None]:
    """An attempt's charge per key of `allowance`: what the ledger in `run_dir` says it spent,
    or, where the ledger does not know, all the attempt was allowed (unknown is never taken as
    nothing; without an allowance, a key not enforced, it stays unknown). Without a ledger the
    attempt never reached its first step, where the budget starts counting: nothing is
    charged."""
    sidecar = read_sidecar(run_dir / LEDGER_FILE)
    spent = sidecar["spent"] if sidecar is not None else None
    charge: dict[str, float | None] = {}
    for key, limit in allowance.items():
        amount = spent.get(key) if spent is not None else 0.0
        known = isinstance(amount, int | float) and not isinstance(amount, bool)
        if known and math.isfinite(amount):
            charge[key] = float(amount)
        else:
            charge[key] = None if limit is None else float(limit)
    return charge


def kept_charge(run_dir: Path, allowance: Allowance) -> dict[str, float | None]:
    """What every attempt kept under `run_dir/attempts/` is charged, summed (unknown in any
    leaves the sum unknown)."""
    total: dict[str, float | None] = dict.fromkeys(allowance, 0.0)
    for kept in sorted((run_dir / ATTEMPTS_DIR).glob("*/")):
        for key, amount in charge_of(kept, allowance).items():
            before = total[key]
            total[key] = None if before is None or amount is None else before + amount
    return total


def left_behind(run_dir: Path) -> bool:
    """An unfinished attempt left outputs here (the caller knows it has no checkpoint to go
    on from)."""
    return run_dir.is_dir() and bool(outputs_in(run_dir))


def _next_free(attempts: Path) -> Path:
    number = 1
    while (attempts / str(number)).exists():
        number += 1
    return attempts / str(number)
