"""Find run directories and load their ``result.json`` and ``curve.csv`` (the contract: README,
"Outputs of a run").

Loading never raises for a bad file and never trusts one: files are opened as
:mod:`frugal.report.files` opens them (regular files only, at most 16 MiB), and ``result.json``
is read through the run record's schema (:class:`frugal.core.record.RunResult`), which checks
every value the report uses for its type and a plausible range. A run whose ``result.json``
fails becomes a :class:`Skipped` with the reason; a bad ``curve.csv`` only drops the curve of
its run. Unknown amounts stay ``None``, never 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from frugal.core.checked import MAX_AMOUNT, MAX_TEXT_CHARS, MalformedError, Number, clip, show
from frugal.core.keys import SPENT_KEYS as BUDGET_KEYS
from frugal.core.record import (
    CURVE_FILE,
    REQUIRED_KEYS,
    RESULT_FILE,
    RunResult,
    parse,
)
from frugal.core.record import Compression as CompressionRecord
from frugal.core.record import Data as DataRecord
from frugal.core.status import Status
from frugal.report.files import (
    MAX_FILE_BYTES,
    Skipped,
    find_result_files,
    read_json,
    read_regular_file,
)
from frugal.report.text import visible

__all__ = [
    "ASSUMED_UNCERTAINTY",
    "BUDGET_KEYS",
    "MAX_FILE_BYTES",
    "RESULT_FILE",
    "Collected",
    "Compression",
    "Curve",
    "Dataset",
    "MalformedError",
    "Run",
    "Skipped",
    "collect_runs",
    "load_curve",
    "load_runs",
]

CURVE_REQUIRED_COLUMNS = ("step", "samples", "val/acc")
PILOTS_DIR = "pilots"  # a size-search run's pilot runs: <run>/pilots/<size>/
# Relative uncertainty of an energy amount whose result.json does not state it: a
# codecarbon-style estimate (CPU TDP × load) is tens of percent off, a RAPL/NVML counter a few.
ASSUMED_UNCERTAINTY = {False: 0.3, True: 0.05}
UNKNOWN_DATASET = "unknown"


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
    """Said by the raw file, before it is checked: a malformed pilot is still a pilot."""
    run_info = result.get("run") if isinstance(result, dict) else None
    return isinstance(run_info, dict) and run_info.get("role") == "pilot"


def _read_result(path: Path) -> dict[str, Any]:
    """The JSON object of a ``result.json`` with the keys every run writes; its values are
    checked by :func:`_build_run`, once it is known not to be a pilot's."""
    result = read_json(path, RESULT_FILE)
    absent = [key for key in REQUIRED_KEYS if key not in result]
    if absent:
        raise MalformedError(f"{RESULT_FILE}: missing key {', '.join(absent)}")
    return result


def _build_run(run_dir: Path, raw: dict[str, Any]) -> Run:
    result = parse(RunResult, raw, RESULT_FILE)
    recorded = result.run.overrides if result.run is not None else None
    overrides = recorded if recorded is not None else _hydra_overrides(run_dir)
    energy, model = result.energy, result.model
    try:
        curve, curve_problem = load_curve(run_dir / CURVE_FILE), None
    except MalformedError as err:
        curve, curve_problem = None, str(err)
    return Run(
        dir=run_dir,
        status=result.status,
        stopped_by=result.stopped_by,
        model=model.name or "unknown",
        dataset=_dataset(result.data, overrides),
        overrides=overrides,
        test_acc=result.metrics.test_acc,
        val_acc=result.metrics.val_acc,
        energy_method=energy.method or "unknown",
        energy_measured=energy.measured,
        energy_uncertainty=(
            energy.uncertainty
            if energy.uncertainty is not None
            else ASSUMED_UNCERTAINTY[energy.measured is True]
        ),
        energy_uncertainty_assumed=energy.uncertainty is None,
        spent=result.spent.as_dict(),
        budget=_amounts(result.budget),
        params=model.params,
        params_effective=model.params_effective,
        steps=result.steps,
        seed=result.seed,
        inference_j_per_1k=result.inference.energy_j_per_1k if result.inference else None,
        compression=_compression(result.compression),
        curve=curve,
        curve_problem=curve_problem,
    )


def _amounts(section: Any) -> dict[str, Number | None]:
    """A section of amounts by budget key; an absent one is all unknown."""
    return section.as_dict() if section is not None else dict.fromkeys(BUDGET_KEYS)


def _dataset(data: DataRecord | None, overrides: tuple[str, ...] | None) -> Dataset:
    """The ``data`` section; for runs written before it existed, the ``data=`` override (and
    ``data.source.path=`` for files), else unknown."""
    if data is not None and data.given:
        sizes = (data.train, data.val, data.test)
        return Dataset(name=data.name or UNKNOWN_DATASET, hash=data.hash, sizes=sizes)
    chosen = dict(o.lstrip("+~").partition("=")[::2] for o in overrides or () if "=" in o)
    name = chosen.get("data", UNKNOWN_DATASET)
    if chosen.get("data.source.path"):
        name += f":{Path(chosen['data.source.path']).name}"
    return Dataset(name=name, hash=None)


def _compression(section: CompressionRecord | None) -> Compression | None:
    if section is None or not section.given:
        return None
    return Compression(
        method=section.method,
        source_run=section.source_run,
        acc_after_compression=section.acc_after_compression,
        source_spent=_amounts(section.source_spent),
    )


def _hydra_overrides(run_dir: Path) -> tuple[str, ...] | None:
    """The run's Hydra overrides from Hydra's own record, for a ``result.json`` without them."""
    try:
        recorded = yaml.safe_load(read_regular_file(run_dir / ".hydra" / "overrides.yaml", ""))
    except (MalformedError, yaml.YAMLError, RecursionError):
        return None  # absent or unusable: the run simply has no recorded overrides
    if isinstance(recorded, list) and all(
        isinstance(o, str) and len(o) <= MAX_TEXT_CHARS for o in recorded
    ):
        return tuple(recorded)
    return None


def load_curve(path: Path) -> Curve:
    """Read ``curve.csv``; an empty cell is an unknown reading, kept as ``None``."""
    try:
        text = read_regular_file(path, CURVE_FILE)
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as err:
        raise MalformedError(f"{CURVE_FILE}: unreadable ({clip(visible(str(err)), 80)})") from None
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


def _cell(row: Mapping[str, Any], column: str, line: int, high: float) -> Number | None:
    text = row.get(column)
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise MalformedError(
            f"{CURVE_FILE}: line {line}: {column} is not a number: {show(text)}"
        ) from None
    if not 0 <= value <= high:  # also catches NaN
        raise MalformedError(
            f"{CURVE_FILE}: line {line}: {column} = {show(text)} is out of range "
            f"(expected 0 to {high:g})"
        )
    return value
