"""`result.json` and `curve.csv`: what every run leaves behind, written atomically (the contract
in README, "Outputs of a run")."""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from typing import Any

from frugal import __version__
from frugal.core.record import CURVE_FILE as CURVE_FILE  # re-exported: the run writes it
from frugal.core.record import RESULT_FILE, check_written
from frugal.runs.directory import write_atomic

LAST_CKPT = Path("checkpoints") / "last.ckpt"  # where a run's last checkpoint is saved
CURVE_COLUMNS = ("step", "samples", "compute_flop", "energy_j", "time_s")  # then val metrics


def write_json_atomic(path: str | Path, payload: dict[str, Any]) -> None:
    """Replace `path` as one step (`frugal.runs.write_atomic`): readers never see half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = _finite(payload)
    check_written(path.name, payload)  # a record frugal-report would not read warns
    text = json.dumps(payload, indent=2, sort_keys=False) + "\n"
    write_atomic(path, text.encode())


def _finite(value: Any) -> Any:
    """NaN/inf are not JSON: write them as null (unknown)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def versions() -> dict[str, str]:
    """Versions of frugal and what it runs on (imported here: the command line's quick checks
    import this module without torch)."""
    import hydra
    import lightning
    import torch

    found = {
        "frugal": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "hydra": hydra.__version__,
    }
    try:
        import codecarbon

        found["codecarbon"] = codecarbon.__version__
    except ImportError:
        pass
    return found


def last_validation(path: str | Path) -> dict[str, float]:
    """The latest value of each validation metric in a run's `curve.csv` (a run resumed
    with nothing left to train validates no more: its result still reports them)."""
    import csv

    found: dict[str, float] = {}
    try:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                for key, text in row.items():
                    if not key or not key.startswith("val/") or not text:
                        continue
                    try:
                        value = float(text)
                    except ValueError:
                        continue
                    if math.isfinite(value):
                        found[key] = value
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    return found


def read_json_object(path: str | Path) -> dict[str, Any] | None:
    """A JSON object frugal wrote (result.json, job.json), or None when absent or not one."""
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):  # RecursionError: nested past the limit
        return None
    return found if isinstance(found, dict) else None


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's result.json, or None when it has none (yet) or an unreadable one."""
    return read_json_object(Path(run_dir) / RESULT_FILE)
