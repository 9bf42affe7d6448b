"""Find run directories and load their ``result.json`` and ``curve.csv`` (see DESIGN.md).

Loading never raises for a bad file: a run whose ``result.json`` is missing or malformed becomes
a :class:`Skipped` with the reason, and a bad ``curve.csv`` only drops the curve of its run.
Unknown amounts stay ``None``, never 0.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from frugal.budget.spec import SPENT_KEYS as BUDGET_KEYS
from frugal.record import CURVE_FILE, RESULT_FILE

STATUSES = ("completed", "budget_exhausted", "refused", "diverged", "interrupted")
REQUIRED_KEYS = ("status", "spent", "energy", "model", "metrics")
CURVE_REQUIRED_COLUMNS = ("step", "samples", "val/acc")
NO_SUCH_DIR = "no such directory"

Number = int | float


@dataclass(frozen=True)
class Curve:
    """Validation points of one run, in training order."""

    samples: list[Number]
    energy_j: list[Number | None]  # cumulative joules; None where the meter had no reading
    val_acc: list[Number | None]


@dataclass(frozen=True)
class Run:
    """One training run, flattened from its ``result.json``."""

    dir: Path
    status: str
    stopped_by: str | None
    model: str
    overrides: tuple[str, ...] | None  # Hydra overrides; None when the run did not record them
    test_acc: Number | None
    val_acc: Number | None
    energy_method: str
    energy_measured: bool | None  # False: an estimate (e.g. codecarbon's); None: not said
    spent: dict[str, Number | None]  # BUDGET_KEYS -> amount in SI units, None = unknown
    budget: dict[str, Number | None]  # BUDGET_KEYS -> limit, None = unlimited
    params: Number | None
    params_effective: Number | None
    steps: Number | None
    seed: Number | None
    curve: Curve | None
    curve_problem: str | None  # why the curve is missing; None when it loaded

    @property
    def energy_j(self) -> Number | None:
        return self.spent["energy_j"]

    @property
    def compute_flop(self) -> Number | None:
        return self.spent["compute_flop"]

    @property
    def energy_estimated(self) -> bool:
        """A known energy amount that is an estimate (e.g. codecarbon's), not a meter reading."""
        return self.energy_j is not None and self.energy_measured is False


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


class MalformedError(ValueError):
    """A file that does not follow its contract; the message says how."""


def find_result_files(paths: Iterable[Path]) -> tuple[list[Path], list[Skipped]]:
    """Every ``result.json`` under ``paths`` (a path may also be the file itself), sorted, once."""
    found: dict[Path, Path] = {}
    missing: list[Skipped] = []
    for path in paths:
        if path.is_file() and path.name == RESULT_FILE:
            candidates: Iterable[Path] = [path]
        elif path.is_dir():
            candidates = path.rglob(RESULT_FILE)
        else:
            missing.append(Skipped(path, NO_SUCH_DIR))
            continue
        for file in candidates:
            found.setdefault(file.resolve(), file)
    return sorted(found.values(), key=_natural_key), missing


def load_runs(paths: Iterable[Path]) -> tuple[list[Run], list[Skipped]]:
    """Load every run under ``paths``; malformed ones are returned as skipped, with the reason."""
    files, skipped = find_result_files(paths)
    runs: list[Run] = []
    for file in files:
        try:
            runs.append(load_run(file.parent))
        except MalformedError as err:
            skipped.append(Skipped(file.parent, str(err)))
    return runs, skipped


def load_run(run_dir: Path) -> Run:
    """Read one run directory; raises :class:`MalformedError` when ``result.json`` is unusable."""
    result = _read_result(run_dir / RESULT_FILE)
    status = result["status"]
    if status not in STATUSES:
        raise MalformedError(
            f"{RESULT_FILE}: unknown status {status!r} (expected one of {', '.join(STATUSES)})"
        )
    spent = _section(result, "spent")
    budget = _section(result, "budget") if result.get("budget") is not None else {}
    model = _section(result, "model")
    metrics = _section(result, "metrics")
    energy = _section(result, "energy")
    try:
        curve, curve_problem = load_curve(run_dir / CURVE_FILE), None
    except MalformedError as err:
        curve, curve_problem = None, str(err)
    return Run(
        dir=run_dir,
        status=status,
        stopped_by=_text(result, "stopped_by"),
        model=_text(model, "name", where="model") or "unknown",
        overrides=_overrides(result, run_dir),
        test_acc=_number(metrics, "test/acc", "metrics"),
        val_acc=_number(metrics, "val/acc", "metrics"),
        energy_method=_text(energy, "method", where="energy") or "unknown",
        energy_measured=_flag(energy, "measured", "energy"),
        spent={key: _number(spent, key, "spent") for key in BUDGET_KEYS},
        budget={key: _number(budget, key, "budget") for key in BUDGET_KEYS},
        params=_number(model, "params", "model"),
        params_effective=_number(model, "params_effective", "model"),
        steps=_number(result, "steps"),
        seed=_number(result, "seed"),
        curve=curve,
        curve_problem=curve_problem,
    )


def load_curve(path: Path) -> Curve:
    """Read ``curve.csv``; an empty ``energy_j`` cell is an unknown reading."""
    try:
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file))
    except FileNotFoundError:
        raise MalformedError(f"{CURVE_FILE}: missing") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise MalformedError(f"{CURVE_FILE}: unreadable ({err})") from None
    if not rows:
        raise MalformedError(f"{CURVE_FILE}: no rows")
    absent = [c for c in CURVE_REQUIRED_COLUMNS if c not in rows[0]]
    if absent:
        raise MalformedError(f"{CURVE_FILE}: missing column {', '.join(absent)}")
    has_energy = "energy_j" in rows[0]
    samples: list[Number] = []
    energy_j: list[Number | None] = []
    val_acc: list[Number | None] = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        sample_count = _cell(row, "samples", line)
        if sample_count is None:
            raise MalformedError(f"{CURVE_FILE}: line {line}: empty samples")
        samples.append(sample_count)
        energy_j.append(_cell(row, "energy_j", line) if has_energy else None)
        val_acc.append(_cell(row, "val/acc", line))
    return Curve(samples=samples, energy_j=energy_j, val_acc=val_acc)


def _read_result(path: Path) -> dict[str, Any]:
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        raise MalformedError(f"{RESULT_FILE}: missing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise MalformedError(f"{RESULT_FILE}: unreadable ({err})") from None
    except json.JSONDecodeError as err:
        raise MalformedError(f"{RESULT_FILE}: invalid JSON ({err})") from None
    if not isinstance(result, dict):
        raise MalformedError(f"{RESULT_FILE}: top level is {type(result).__name__}, not an object")
    absent = [key for key in REQUIRED_KEYS if key not in result]
    if absent:
        raise MalformedError(f"{RESULT_FILE}: missing key {', '.join(absent)}")
    return result


def _section(result: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = result[key]
    if not isinstance(value, dict):
        raise MalformedError(f"{RESULT_FILE}: {key} is {type(value).__name__}, not an object")
    return value


def _number(section: Mapping[str, Any], key: str, where: str = "") -> Number | None:
    """A finite number, or None when absent, null or non-finite (NaN, inf: not a usable amount)."""
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        name = f"{where}.{key}" if where else key
        raise MalformedError(f"{RESULT_FILE}: {name} is not a number: {value!r}")
    return value if math.isfinite(value) else None


def _text(section: Mapping[str, Any], key: str, where: str = "") -> str | None:
    value = section.get(key)
    if value is None or isinstance(value, str):
        return value
    name = f"{where}.{key}" if where else key
    raise MalformedError(f"{RESULT_FILE}: {name} is not a string: {value!r}")


def _flag(section: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = section.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise MalformedError(f"{RESULT_FILE}: {where}.{key} is not true/false: {value!r}")


def _overrides(result: Mapping[str, Any], run_dir: Path) -> tuple[str, ...] | None:
    """The run's Hydra overrides: from ``result.json``'s ``run``, else Hydra's own record."""
    run_info = result.get("run")
    if isinstance(run_info, dict) and isinstance(run_info.get("overrides"), list):
        return tuple(str(o) for o in run_info["overrides"])
    hydra_record = run_dir / ".hydra" / "overrides.yaml"
    try:
        overrides = OmegaConf.to_container(OmegaConf.load(hydra_record))
    except Exception:  # absent or unparsable: the run simply has no recorded overrides
        return None
    return tuple(str(o) for o in overrides) if isinstance(overrides, list) else None


def _cell(row: Mapping[str, str | None], column: str, line: int) -> Number | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise MalformedError(
            f"{CURVE_FILE}: line {line}: {column} is not a number: {text!r}"
        ) from None
    return value if math.isfinite(value) else None


def _natural_key(path: Path) -> list[tuple[int, int | str]]:
    """Sort ``10/`` after ``9/`` (Hydra numbers multirun jobs)."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in path.parts]
