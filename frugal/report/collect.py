"""Find run directories and load their ``result.json`` and ``curve.csv`` (the contract: README,
"Outputs of a run").

Loading never raises for a bad file and never trusts one: only regular files are opened (a FIFO
would block, ``/dev/zero`` never ends), at most :data:`MAX_FILE_BYTES` are read, and every
value the report uses is checked for its type and a plausible range. A run whose
``result.json`` fails any check becomes a :class:`Skipped` with the reason; a bad ``curve.csv``
only drops the curve of its run. Unknown amounts stay ``None``, never 0.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from frugal.budget.spec import SPENT_KEYS as BUDGET_KEYS
from frugal.record import CURVE_FILE, RESULT_FILE
from frugal.report.text import clip, visible
from frugal.status import Status

REQUIRED_KEYS = ("status", "spent", "energy", "model", "metrics")
CURVE_REQUIRED_COLUMNS = ("step", "samples", "val/acc")
NO_SUCH_DIR = "no such directory"
PILOTS_DIR = "pilots"  # a size-search run's pilot runs: <run>/pilots/<size>/
MAX_FILE_BYTES = 16 * 2**20  # a real result.json is a few kB, a curve.csv well under 1 MiB
MAX_TEXT_CHARS = 500  # names, methods, overrides: longer is not something a run wrote
MAX_AMOUNT = 1e30  # joules, FLOPs, bytes, samples...: beyond any real run, below float overflow
MAX_UNCERTAINTY = 10.0  # relative: ±1000 %
# Relative uncertainty of an energy amount whose result.json does not state it: a
# codecarbon-style estimate (CPU TDP × load) is tens of percent off, a RAPL/NVML counter a few.
ASSUMED_UNCERTAINTY = {False: 0.3, True: 0.05}
UNKNOWN_DATASET = "unknown"

Number = int | float


@dataclass(frozen=True)
class Curve:
    """Validation points of one run, in training order; ``None`` is an unknown (empty) cell."""

    samples: list[Number]
    energy_j: list[Number | None]  # cumulative joules
    val_acc: list[Number | None]  # fraction, 0..1


@dataclass(frozen=True)
class Dataset:
    """What a run trained and tested on. Runs compare only within one dataset."""

    name: str
    hash: str | None  # content hash; None for runs that did not record one
    sizes: tuple[Number | None, Number | None, Number | None] = (None, None, None)  # train/val/test

    @property
    def key(self) -> str:
        """Identity: the name and the content hash (shortened)."""
        if self.name == UNKNOWN_DATASET:
            return "dataset unknown"
        return f"{self.name} (hash {self.hash[:12] if self.hash else 'not recorded'})"


@dataclass(frozen=True)
class Compression:
    """A run that compressed another run's checkpoint and fine-tuned it."""

    method: str | None  # "svd", "prune"
    source_run: str | None
    acc_after_compression: Number | None  # validation accuracy before fine-tuning, fraction
    source_spent: dict[str, Number | None]  # BUDGET_KEYS -> what the source run spent


@dataclass(frozen=True)
class Run:
    """One training run, flattened from its ``result.json``."""

    dir: Path
    status: Status
    stopped_by: str | None
    model: str
    dataset: Dataset
    overrides: tuple[str, ...] | None  # Hydra overrides; None when the run did not record them
    test_acc: Number | None
    val_acc: Number | None
    energy_method: str
    energy_measured: bool | None  # False: an estimate (e.g. codecarbon's); None: not said
    energy_uncertainty: float  # relative, e.g. 0.3 = ±30 %
    energy_uncertainty_assumed: bool  # the run did not state it: ASSUMED_UNCERTAINTY
    spent: dict[str, Number | None]  # BUDGET_KEYS -> amount in SI units, None = unknown
    budget: dict[str, Number | None]  # BUDGET_KEYS -> limit, None = unlimited
    params: Number | None
    params_effective: Number | None
    steps: Number | None
    seed: Number | None
    inference_j_per_1k: Number | None  # joules per 1000 predictions
    compression: Compression | None
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
        """A known energy amount not stated to be a meter reading: an estimate (e.g.
        codecarbon's), or a run that did not say (then shown as the weaker of the two)."""
        return self.energy_j is not None and self.energy_measured is not True


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


class MalformedError(ValueError):
    """A file that does not follow its contract; the message says how."""


def json_object(value: Any, where: str, file: str) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else MalformedError naming `file` and `where`."""
    if not isinstance(value, dict):
        raise MalformedError(f"{file}: {where} is {type(value).__name__}, not an object")
    return value


def find_result_files(paths: Iterable[Path]) -> tuple[list[Path], list[Skipped]]:
    """Every ``result.json`` under ``paths`` (a path may also be the file itself), sorted, once.
    Whatever carries the name is returned, even a FIFO or a dangling link, so that loading can
    say what is wrong with it; symlinked directories are not followed (no loops)."""
    return find_named_files(paths, RESULT_FILE)


def find_named_files(paths: Iterable[Path], name: str) -> tuple[list[Path], list[Skipped]]:
    """Every file called ``name`` under ``paths``, as :func:`find_result_files` finds them."""
    found: dict[Path, Path] = {}
    missing: list[Skipped] = []
    for path in paths:
        if path.name == name and not path.is_dir():
            candidates: Iterable[Path] = [path]
        elif path.is_dir():
            candidates = (
                Path(parent, name)
                for parent, dirs, files in os.walk(path)
                if name in files or name in dirs
            )
        else:
            missing.append(Skipped(path, NO_SUCH_DIR))
            continue
        for file in candidates:
            found.setdefault(_identity(file), file)
    return sorted(found.values(), key=_natural_key), missing


@dataclass(frozen=True)
class Collected:
    """What :func:`collect_runs` found: the runs, the skipped files, the pilot runs of size
    searches (not runs of their own) and the raw ``size_search`` section of each run that has
    one (checked by :mod:`frugal.report.size_search`)."""

    runs: list[Run]
    skipped: list[Skipped]
    pilots: list[Path]
    size_searches: dict[Path, Any]


def load_runs(paths: Iterable[Path]) -> tuple[list[Run], list[Skipped]]:
    """Load every run under ``paths``; malformed ones are returned as skipped, with the reason.
    Pilot runs of a size search are left out (:func:`collect_runs`)."""
    collected = collect_runs(paths)
    return collected.runs, collected.skipped


def collect_runs(paths: Iterable[Path]) -> Collected:
    """:func:`load_runs`, also saying which results were pilots. A pilot (``run.role ==
    "pilot"``, or anything under ``pilots/`` of a run with a ``size_search``) is a step of
    another run's size search: never a run in the tables, the Pareto or the curves."""
    files, skipped = find_result_files(paths)
    results: list[tuple[Path, dict[str, Any] | MalformedError]] = []
    for file in files:
        try:
            results.append((file, _read_result(file)))
        except MalformedError as err:
            results.append((file, err))
    searches = {
        file.parent: result["size_search"]
        for file, result in results
        if isinstance(result, dict) and result.get("size_search") is not None
    }
    runs: list[Run] = []
    pilots: list[Path] = []
    for file, result in results:
        run_dir = file.parent
        if _is_pilot(result) or any(run_dir.is_relative_to(d / PILOTS_DIR) for d in searches):
            pilots.append(run_dir)
            continue
        try:
            if isinstance(result, MalformedError):
                raise result
            runs.append(_build_run(run_dir, result))
        except MalformedError as err:
            skipped.append(Skipped(run_dir, str(err)))
    return Collected(
        runs=runs,
        skipped=skipped,
        pilots=pilots,
        size_searches={run.dir: searches[run.dir] for run in runs if run.dir in searches},
    )


def _is_pilot(result: dict[str, Any] | MalformedError) -> bool:
    run_info = result.get("run") if isinstance(result, dict) else None
    return isinstance(run_info, dict) and run_info.get("role") == "pilot"


def load_run(run_dir: Path) -> Run:
    """Read one run directory; raises :class:`MalformedError` when ``result.json`` is unusable."""
    return _build_run(run_dir, _read_result(run_dir / RESULT_FILE))


def _build_run(run_dir: Path, result: dict[str, Any]) -> Run:
    try:
        status = Status(result["status"])
    except (ValueError, TypeError):
        raise MalformedError(
            f"{RESULT_FILE}: unknown status {_show(result['status'])} "
            f"(expected one of {', '.join(Status)})"
        ) from None
    spent = _section(result, "spent")
    budget = _section(result, "budget", optional=True)
    model = _section(result, "model")
    metrics = _section(result, "metrics")
    energy = _section(result, "energy")
    measured = _flag(energy, "measured", "energy")
    uncertainty = _number(energy, "uncertainty", "energy", high=MAX_UNCERTAINTY)
    overrides = _overrides(result, run_dir)
    try:
        curve, curve_problem = load_curve(run_dir / CURVE_FILE), None
    except MalformedError as err:
        curve, curve_problem = None, str(err)
    return Run(
        dir=run_dir,
        status=status,
        stopped_by=_text(result, "stopped_by"),
        model=_text(model, "name", "model") or "unknown",
        dataset=_dataset(result, overrides),
        overrides=overrides,
        test_acc=_number(metrics, "test/acc", "metrics", high=1.0),
        val_acc=_number(metrics, "val/acc", "metrics", high=1.0),
        energy_method=_text(energy, "method", "energy") or "unknown",
        energy_measured=measured,
        energy_uncertainty=(
            uncertainty if uncertainty is not None else ASSUMED_UNCERTAINTY[measured is True]
        ),
        energy_uncertainty_assumed=uncertainty is None,
        spent=_amounts(spent, "spent"),
        budget=_amounts(budget, "budget"),
        params=_number(model, "params", "model"),
        params_effective=_number(model, "params_effective", "model"),
        steps=_number(result, "steps"),
        seed=_number(result, "seed", low=-MAX_AMOUNT),
        inference_j_per_1k=_number(
            _section(result, "inference", optional=True), "energy_j_per_1k", "inference"
        ),
        compression=_compression(result),
        curve=curve,
        curve_problem=curve_problem,
    )


def load_curve(path: Path) -> Curve:
    """Read ``curve.csv``; an empty cell is an unknown reading, kept as ``None``."""
    try:
        text = read_regular_file(path, CURVE_FILE)
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as err:
        raise MalformedError(f"{CURVE_FILE}: unreadable ({_short(str(err))})") from None
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
        sample_count = _cell(row, "samples", line, MAX_AMOUNT)
        if sample_count is None:
            raise MalformedError(f"{CURVE_FILE}: line {line}: empty samples")
        samples.append(sample_count)
        energy_j.append(_cell(row, "energy_j", line, MAX_AMOUNT) if has_energy else None)
        val_acc.append(_cell(row, "val/acc", line, 1.0))
    return Curve(samples=samples, energy_j=energy_j, val_acc=val_acc)


def read_regular_file(path: Path, name: str, limit: int = MAX_FILE_BYTES) -> str:
    """The text of ``path`` if it is a regular file (or a link to one) of at most ``limit``
    bytes; :class:`MalformedError` naming the problem otherwise. Opened non-blocking, so a FIFO
    is seen for what it is instead of waiting for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise MalformedError(f"{name}: missing") from None
    except OSError as err:
        raise MalformedError(f"{name}: unreadable ({err.strerror or err})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise MalformedError(f"{name}: not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > limit:
            raise MalformedError(f"{name}: {info.st_size} bytes, more than the {limit} read")
        data = _read_at_most(fd, limit + 1)
    except OSError as err:
        raise MalformedError(f"{name}: unreadable ({err.strerror or err})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise MalformedError(f"{name}: more than the {limit} bytes read")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise MalformedError(f"{name}: not UTF-8 text") from None


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(limit - size, 2**20))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _read_result(path: Path) -> dict[str, Any]:
    text = read_regular_file(path, RESULT_FILE)
    try:
        result = json.loads(text)
    except json.JSONDecodeError as err:
        raise MalformedError(f"{RESULT_FILE}: invalid JSON ({err})") from None
    except RecursionError:
        raise MalformedError(f"{RESULT_FILE}: invalid JSON (nested too deep)") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise MalformedError(f"{RESULT_FILE}: invalid JSON ({_short(str(err))})") from None
    if not isinstance(result, dict):
        raise MalformedError(f"{RESULT_FILE}: top level is {type(result).__name__}, not an object")
    absent = [key for key in REQUIRED_KEYS if key not in result]
    if absent:
        raise MalformedError(f"{RESULT_FILE}: missing key {', '.join(absent)}")
    return result


def _section(result: Mapping[str, Any], key: str, optional: bool = False) -> Mapping[str, Any]:
    value = result.get(key)
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise MalformedError(f"{RESULT_FILE}: {key} is {type(value).__name__}, not an object")
    return value


def _amounts(
    section: Mapping[str, Any], where: str, file: str = RESULT_FILE
) -> dict[str, Number | None]:
    return {key: _number(section, key, where, file=file) for key in BUDGET_KEYS}


def _number(
    section: Mapping[str, Any],
    key: str,
    where: str = "",
    low: float = 0.0,
    high: float = MAX_AMOUNT,
    file: str = RESULT_FILE,
) -> Number | None:
    """A number in ``[low, high]``, or None when absent or null. NaN, infinities and absurd
    magnitudes (1e308 J, a 4000-digit integer) make the file malformed: the run wrote null for
    what it did not know, so anything else is not a run's output. ``file`` names the file in
    the message (other JSON files the report reads are checked the same way)."""
    value = section.get(key)
    if value is None:
        return None
    name = f"{where}.{key}" if where else key
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedError(f"{file}: {name} is not a number: {_show(value)}")
    try:
        as_float = float(value)
    except OverflowError:
        as_float = math.inf
    if not math.isfinite(as_float):
        raise MalformedError(f"{file}: {name} is not finite: {_show(value)}")
    if not low <= as_float <= high:
        raise MalformedError(
            f"{file}: {name} = {_show(value)} is out of range (expected {low:g} to {high:g})"
        )
    return value


def _text(
    section: Mapping[str, Any], key: str, where: str = "", file: str = RESULT_FILE
) -> str | None:
    value = section.get(key)
    name = f"{where}.{key}" if where else key
    if value is not None and not isinstance(value, str):
        raise MalformedError(f"{file}: {name} is not a string: {_show(value)}")
    if value is not None and len(value) > MAX_TEXT_CHARS:
        raise MalformedError(
            f"{file}: {name} is {len(value)} characters long (at most {MAX_TEXT_CHARS})"
        )
    return value


def _flag(section: Mapping[str, Any], key: str, where: str, file: str = RESULT_FILE) -> bool | None:
    value = section.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise MalformedError(f"{file}: {where}.{key} is not true/false: {_show(value)}")


def _dataset(result: Mapping[str, Any], overrides: tuple[str, ...] | None) -> Dataset:
    """The ``data`` section; for runs written before it existed, the ``data=`` override (and
    ``data.source.path=`` for files), else unknown."""
    data = _section(result, "data", optional=True)
    if data:
        sizes = tuple(_number(data, split, "data") for split in ("train", "val", "test"))
        name = _text(data, "name", "data") or UNKNOWN_DATASET
        return Dataset(name=name, hash=_text(data, "hash", "data"), sizes=sizes)  # type: ignore[arg-type]
    chosen = dict(o.lstrip("+~").partition("=")[::2] for o in overrides or () if "=" in o)
    name = chosen.get("data", UNKNOWN_DATASET)
    if chosen.get("data.source.path"):
        name += f":{Path(chosen['data.source.path']).name}"
    return Dataset(name=name, hash=None)


def _compression(result: Mapping[str, Any]) -> Compression | None:
    section = _section(result, "compression", optional=True)
    if not section:
        return None
    return Compression(
        method=_text(section, "method", "compression"),
        source_run=_text(section, "source_run", "compression"),
        acc_after_compression=_number(section, "acc_after_compression", "compression", high=1.0),
        source_spent=_amounts(
            _section(section, "source_spent", optional=True), "compression.source_spent"
        ),
    )


def _overrides(result: Mapping[str, Any], run_dir: Path) -> tuple[str, ...] | None:
    """The run's Hydra overrides: from ``result.json``'s ``run``, else Hydra's own record."""
    run_info = result.get("run")
    if isinstance(run_info, dict) and isinstance(run_info.get("overrides"), list):
        return _override_list(run_info["overrides"], f"{RESULT_FILE}: run.overrides")
    try:
        recorded = yaml.safe_load(read_regular_file(run_dir / ".hydra" / "overrides.yaml", ""))
    except (MalformedError, yaml.YAMLError, RecursionError):
        return None  # absent or unusable: the run simply has no recorded overrides
    return _override_list(recorded, "") if isinstance(recorded, list) else None


def _override_list(items: list[Any], where: str) -> tuple[str, ...] | None:
    if all(isinstance(o, str) and len(o) <= MAX_TEXT_CHARS for o in items):
        return tuple(items)
    if where:
        raise MalformedError(f"{where}: not a list of short strings")
    return None


def _cell(row: Mapping[str, Any], column: str, line: int, high: float) -> Number | None:
    text = row.get(column)
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise MalformedError(
            f"{CURVE_FILE}: line {line}: {column} is not a number: {_show(text)}"
        ) from None
    if not 0 <= value <= high:  # also catches NaN
        raise MalformedError(
            f"{CURVE_FILE}: line {line}: {column} = {_show(text)} is out of range "
            f"(expected 0 to {high:g})"
        )
    return value


def _show(value: Any) -> str:
    """A value for an error message: its repr, cut short (a hostile file may hold megabytes)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        try:
            return f"an integer of {len(str(abs(value)))} digits"
        except ValueError:  # more digits than Python converts (4300)
            return "an integer of over 4300 digits"
    return _short(repr(value) if not isinstance(value, dict | list) else type(value).__name__)


def _short(text: str) -> str:
    return clip(visible(text), 80)


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((kind for test, kind in kinds if test(mode)), "not a plain file")


def _identity(file: Path) -> Path:
    try:
        return file.resolve()
    except (OSError, RuntimeError):  # a symlink loop: the path itself is identity enough
        return file.absolute()


def _natural_key(path: Path) -> list[tuple[int, int | str]]:
    """Sort ``10/`` after ``9/`` (Hydra numbers multirun jobs)."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in path.parts]
