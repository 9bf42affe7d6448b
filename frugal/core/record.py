"""The run record's schema, as pydantic models of the files runs and sweeps leave behind:
`result.json` (DESIGN.md, "Outputs of a run"; written by `frugal.pipeline` and
`frugal.runs.stop_record`), its `size_search` section and a size search's `pilots/choice.json`
(`frugal.sweep.auto_size`), a sweep's `envelope.json` (`frugal.sweep.envelope`) and
`halving.json` (the halving sweeper).

One schema for writer and reader: `frugal.runs.record.write_json_atomic` checks what it writes
against it (`check_written`: a drift warns), and `frugal-report` reads every file through it
(`parse`). A file is never trusted: every value a reader uses is checked for its type and a
plausible range (`frugal.core.checked`), and the first problem becomes one short line,
`MalformedError`, naming the file and the value. Unknown amounts are null (None), never 0.
Fields no reader uses are kept as they are, unchecked (`extra="allow"`), so the schema is never
stricter than its readers need.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    create_model,
    model_validator,
)

from frugal.core.checked import (
    MAX_CANDIDATES,
    MAX_JOBS,
    MAX_RUNGS,
    MAX_TEXT_CHARS,
    Amount,
    Flag,
    Fraction,
    Ids,
    JobId,
    JobStatus,
    Knobs,
    MalformedError,
    MaybeSize,
    Metrics,
    Moment,
    Number,
    Points,
    Present,
    Problem,
    RunStatus,
    ShownPath,
    Signed,
    Size,
    StatedAmounts,
    SweepMetrics,
    Text,
    Uncertainty,
    at_most,
    or_empty,
    parse,
    show,
)
from frugal.core.keys import SPENT_KEYS as BUDGET_KEYS

RESULT_FILE = "result.json"
CURVE_FILE = "curve.csv"  # one row per validation (frugal.runs.record.CURVE_COLUMNS, then metrics)
ENVELOPE_FILE = "envelope.json"
HALVING_FILE = "halving.json"
CHOICE_FILE = "choice.json"  # <run>/pilots/choice.json: the size a size search's final run trains
ENVELOPE_VERSION = 1


class Record(BaseModel):
    """A section of a record: the values readers use, checked; anything else kept as it is."""

    model_config = ConfigDict(extra="allow")
    keyed: ClassVar[tuple[str, ...]] = ()  # fields whose keys are ids: quoted in messages

    @property
    def given(self) -> bool:
        """The file held this section with something in it (not null, not ``{}``)."""
        return bool(self.model_fields_set or self.model_extra)


class _AmountsBase(Record):
    def as_dict(self) -> dict[str, Number | None]:
        """Budget key -> amount in SI units (J, g, FLOP, samples, s, bytes, count)."""
        return {key: getattr(self, key) for key in BUDGET_KEYS}


# One amount per budget key (`frugal.core.keys`); null: unknown (spent) or unlimited (budget).
Amounts = create_model(
    "Amounts", __base__=_AmountsBase, **{key: (Amount, None) for key in BUDGET_KEYS}
)


# ---- result.json -------------------------------------------------------------------------------
class Energy(Record):
    method: Text = None  # "rapl", "nvml", "codecarbon:<mode>", "unavailable"
    measured: Flag = None  # False: an estimate (e.g. codecarbon's); None: not said
    uncertainty: Uncertainty = None  # relative, e.g. 0.3 = ±30 %


class ModelInfo(Record):
    name: Text = None
    params: Amount = None
    params_effective: Amount = None  # nonzero parameters of a sparse model


class RunMetrics(Record):
    """Test and validation metrics (``test/acc``, ``val/loss``, ...); accuracies are fractions."""

    test_acc: Fraction = Field(None, alias="test/acc")
    val_acc: Fraction = Field(None, alias="val/acc")


class Data(Record):
    name: Text = None
    hash: Text = None  # of the data's content
    train: Amount = None  # samples per split
    val: Amount = None
    test: Amount = None


class Inference(Record):
    energy_j_per_1k: Amount = None  # joules per 1000 predictions


class Compression(Record):
    method: Text = None  # "svd", "prune"
    source_run: Text = None
    acc_after_compression: Fraction = None  # validation accuracy before fine-tuning
    source_spent: Amounts | None = None  # what the source run spent


def _overrides(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None  # not recorded here: Hydra's own record may say
    if all(isinstance(o, str) and len(o) <= MAX_TEXT_CHARS for o in value):
        return tuple(value)
    raise Problem(": not a list of short strings")


class RunInfo(Record):
    overrides: Annotated[tuple[str, ...] | None, PlainValidator(_overrides)] = None
    role: Any = None  # "pilot": a step of another run's size search, not a run of its own


def _section_or_none(value: Any) -> Any:
    return value if isinstance(value, dict) else None


class RunResult(Record):
    """`result.json`. Required: status, spent, energy, model, metrics; the rest may be null."""

    status: RunStatus
    spent: Amounts  # also machine_energy_j, tokens where known
    energy: Energy
    model: ModelInfo
    metrics: RunMetrics
    stopped_by: Text = None  # the budget key that stopped the run
    budget: Amounts | None = None
    data: Data | None = None
    steps: Amount = None
    seed: Signed = None
    inference: Inference | None = None
    compression: Compression | None = None
    run: Annotated[RunInfo | None, BeforeValidator(_section_or_none)] = None  # else unused
    size_search: Any = None  # a SizeSearchRecord, read on its own: a bad one keeps the run
    message: Any = None
    plan: Any = None  # {"mode", "max_steps", "binding", "allowed_steps"}
    epochs: Any = None
    versions: Any = None
    test_spent: Any = None
    distill: Any = None


REQUIRED_KEYS = tuple(name for name, field in RunResult.model_fields.items() if field.is_required())


# ---- a size search -----------------------------------------------------------------------------
class Fit(Record):
    """A pilot's fitted learning curve (`frugal.core.curves.PowerLaw`)."""

    form: Text = None
    e: Signed = None
    a: Signed = None
    alpha: Signed = None
    x_scale: Amount = None  # x is divided by it first; None: 1
    ok: Flag = None


class Candidate(Record):
    size: Size = Field(None, validate_default=True)
    dir: Text = None  # the pilot's directory, under the run's
    status: Text = None
    spent: or_empty(Amounts) = Field(None, validate_default=True)
    points: Points = []  # (spent budget key, metric) at each validation
    fit: Fit | None = None
    predicted: Signed = None  # the metric predicted at the end of the budget
    predicted_at: Amount = None  # ... at this spend of the budget key


class SizeSearchRecord(Record):
    """`result.json`'s `size_search`: the pilots, their fits, the choice, what it achieved."""

    knob: Knobs = Field(None, validate_default=True)
    candidates: Annotated[list[Candidate], BeforeValidator(at_most(MAX_CANDIDATES))] = Field(
        None, validate_default=True
    )
    metric: Text = None
    budget_key: Text = None
    budget: Amount = None
    share: Fraction = None
    pilot_spent: or_empty(Amounts) = Field(None, validate_default=True)
    final_budget: or_empty(Amounts) = Field(None, validate_default=True)
    choice: MaybeSize = None
    predicted: Signed = None
    predicted_at: Amount = None
    achieved: or_empty(Metrics) = Field(None, validate_default=True)
    final_points: Points = []
    warm_start: Flag = None


class SearchedRun(Record):
    """What a size-search reader reads of `result.json`: its `size_search` alone (a bad one
    keeps the run in the tables)."""

    size_search: SizeSearchRecord


class SizeChoice(Record):
    """`pilots/choice.json`: the size the final run trains, ``{knob: value}``."""

    size: dict[str, Present]


# ---- a sweep -----------------------------------------------------------------------------------
class EnvelopeJob(Record):
    """One job of a sweep in `envelope.json`."""

    status: JobStatus = Field(None, validate_default=True)
    dir: ShownPath = None
    reserved: StatedAmounts = {}
    spent: Amounts | None = None  # None until the job ended
    prior_spent: StatedAmounts = {}  # what earlier attempts spent; a key left out: 0
    attempts: Amount = None
    started: Moment = None
    ended: Moment = None
    metrics: SweepMetrics | None = None
    rung: Amount = None  # a halving sweep's rung


def _jobs(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if len(value) > MAX_JOBS:
        raise Problem(f"{len(value)} jobs (at most {MAX_JOBS})", named=False)
    long = next((job_id for job_id in value if len(job_id) > MAX_TEXT_CHARS), None)
    if long is not None:
        raise Problem(f"a job id of {len(long)} characters", named=False)
    return value


def _version(value: Any) -> int:
    if value != ENVELOPE_VERSION or isinstance(value, bool):
        raise Problem(f"version {show(value)}, expected {ENVELOPE_VERSION}", named=False)
    return ENVELOPE_VERSION


class EnvelopeFile(Record):
    """`envelope.json`: a sweep's shared envelope and its jobs, by job id."""

    keyed: ClassVar[tuple[str, ...]] = ("jobs",)
    version: Annotated[int, PlainValidator(_version)] = Field(None, validate_default=True)
    envelope: Amounts = Field(None, validate_default=True)  # null: a key not shared
    jobs: Annotated[dict[str, EnvelopeJob], BeforeValidator(_jobs)] = Field(
        None, validate_default=True
    )
    sweep_id: Text = None
    planned_jobs: Amount = None


class Rung(Record):
    rung: Amount = None
    budget: or_empty(Amounts) = Field(None, validate_default=True)  # per trial
    trials: Ids = []
    promoted: Ids = []


class Best(Record):
    """The best trial of the highest rung with metrics."""

    job: JobId = None
    overrides: Ids = []  # what tells the best configuration apart (`swept`), else all of them
    metrics: or_empty(SweepMetrics) = Field(None, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _swept_first(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {**data, "overrides": data.get("swept") or data.get("overrides")}
        return data


def _rungs(value: Any) -> Any:
    if not isinstance(value, list) or len(value) > MAX_RUNGS:
        raise Problem(f"is not a list of at most {MAX_RUNGS}")
    return value


class HalvingFile(Record):
    """`halving.json`: a successive-halving sweep's rungs and its best trial."""

    rungs: Annotated[list[Rung], BeforeValidator(_rungs)] = Field(None, validate_default=True)
    best: or_empty(Best) = Field(None, validate_default=True)


# ---- writing -----------------------------------------------------------------------------------
SCHEMAS: dict[str, type[Record]] = {
    RESULT_FILE: RunResult,
    ENVELOPE_FILE: EnvelopeFile,
    HALVING_FILE: HalvingFile,
    CHOICE_FILE: SizeChoice,
}


class RecordDriftWarning(UserWarning):
    """frugal wrote a record its own schema (so `frugal-report`) would not read: a bug."""


def check_written(name: str, payload: Any) -> None:
    """Warn when a record about to be written as ``name`` does not follow its schema (the
    writer and the readers drifted apart); the record is written all the same."""
    model = SCHEMAS.get(name)
    if model is None:
        return
    try:
        parse(model, payload, name)
        if model is RunResult and payload.get("size_search") is not None:
            parse(SearchedRun, payload, name)
    except MalformedError as err:
        warnings.warn(f"{err}: frugal-report would not read it", RecordDriftWarning, stacklevel=3)
