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
from frugal.record import CURVE_FILE, RESULT_FILE

ATTEMPTS_DIR = "attempts"
ATTEMPT_FILES = (RESULT_FILE, LEDGER_FILE, CURVE_FILE, "checkpoints")


def set_aside(run_dir: Path, allowance: Mapping[str, float]) -> dict[str, float]:
    """Move the attempt's outputs to the next `attempts/<n>/` and return its charge per key of
    `allowance`: what its ledger says it spent, or the whole allowance where the ledger does
    not know (unknown is never taken as nothing). Without a ledger the attempt never reached
    its first step, where the budget starts counting: nothing is charged."""
    sidecar = read_sidecar(run_dir / LEDGER_FILE)
    spent = sidecar["spent"] if sidecar is not None else None
    charge = {}
    for key, limit in allowance.items():
        if spent is None:
            charge[key] = 0.0
            continue
        amount = spent.get(key)
        known = isinstance(amount, int | float) and not isinstance(amount, bool)
        charge[key] = float(amount) if known and math.isfinite(amount) else float(limit)
    present = [name for name in ATTEMPT_FILES if (run_dir / name).exists()]
    if present:
        keep = _next_free(run_dir / ATTEMPTS_DIR)
        keep.mkdir(parents=True)
        for name in present:
            shutil.move(str(run_dir / name), str(keep / name))
    return charge


def left_behind(run_dir: Path) -> bool:
    """An attempt ran here and left outputs, but no result and no checkpoint to resume from."""
    return not (run_dir / RESULT_FILE).exists() and any(
        (run_dir / name).exists() for name in (LEDGER_FILE, CURVE_FILE)
    )


def _next_free(attempts: Path) -> Path:
    number = 1
    while (attempts / str(number)).exists():
        number += 1
    return attempts / str(number)
