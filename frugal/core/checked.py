"""Checked values of the run record (`frugal.core.record`): the leaf types its pydantic models
are built of (an amount, a fraction, a short text, a flag, a time, ids, a size, [x, y] points),
each checked for its type and a plausible range, and the one-line reason a file is malformed.

A run writes null for what it does not know: NaN, infinities and absurd magnitudes (1e308 J, a
4000-digit integer, a 100 000-character name) are not a run's output. A value's problem is said
after its name, so the reader gets `result.json: spent.energy_j = 1e+308 is out of range
(expected 0 to 1e+30)`; the name comes from where pydantic found the value.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, PlainValidator, ValidationError

from frugal.core.keys import SPENT_KEYS as BUDGET_KEYS
from frugal.core.status import RUNNING, Status

MAX_AMOUNT = 1e30  # joules, FLOPs, bytes, samples...: beyond any real run, below float overflow
MAX_TEXT_CHARS = 500  # names, methods, overrides: longer is not something a run wrote
MAX_UNCERTAINTY = 10.0  # relative: ±1000 %
MAX_JOBS = 100_000
MAX_RUNGS = 64
MAX_CANDIDATES = 64
MAX_KNOBS = 8
MAX_POINTS = 100_000  # per curve; a validation every step of a long run is still under this
MAX_METRICS = 64
MAX_PATH_CHARS = 4096
JOB_STATUSES = (RUNNING, *Status)  # an envelope job is running, or ended as a run ends

Number = int | float
_INVISIBLE = {"Cc", "Cf"}  # control and format characters: newlines, zero-width, bidi overrides


class MalformedError(ValueError):
    """A file that does not follow its contract; the message says how, in one short line."""


class Problem(ValueError):
    """What is wrong with one value, said after its name (`is not finite: nan`) unless
    `named` is False; `at` continues the name inside the value (`[3].y`, `.width_mult`)."""

    def __init__(self, text: str, at: str = "", named: bool = True) -> None:
        super().__init__(text)
        self.text, self.at, self.named = text, at, named

    def inside(self, at: str) -> Problem:
        return Problem(self.text, at + self.at, self.named)


# ---- text from a file, safe to show ------------------------------------------------------------
def visible(text: str) -> str:
    """Control and format characters as escapes (a newline as ``\\n``); the rest unchanged."""
    return "".join(
        ch.encode("unicode_escape").decode() if unicodedata.category(ch) in _INVISIBLE else ch
        for ch in text
    )


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show(value: Any) -> str:
    """A value for an error message: its repr, cut short (a hostile file may hold megabytes)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        try:
            return f"an integer of {len(str(abs(value)))} digits"
        except ValueError:  # more digits than Python converts (4300)
            return "an integer of over 4300 digits"
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return clip(visible(text), 80)


# ---- checked values ----------------------------------------------------------------------------
def number_in(low: float = 0.0, high: float = MAX_AMOUNT) -> Callable[[Any], Number | None]:
    """A number in ``[low, high]``, or None for null. NaN, infinities and absurd magnitudes
    make the file malformed: a run writes null for what it does not know."""

    def check(value: Any) -> Number | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Problem(f"is not a number: {show(value)}")
        try:
            as_float = float(value)
        except OverflowError:
            as_float = math.inf
        if not math.isfinite(as_float):
            raise Problem(f"is not finite: {show(value)}")
        if not low <= as_float <= high:
            raise Problem(f"= {show(value)} is out of range (expected {low:g} to {high:g})")
        return value

    return check


def _text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise Problem(f"is not a string: {show(value)}")
    if value is not None and len(value) > MAX_TEXT_CHARS:
        raise Problem(f"is {len(value)} characters long (at most {MAX_TEXT_CHARS})")
    return value


def _flag(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise Problem(f"is not true/false: {show(value)}")


def _status(value: Any) -> Status:
    try:
        return Status(value)
    except (ValueError, TypeError):
        expected = ", ".join(Status)
        problem = f"unknown status {show(value)} (expected one of {expected})"
        raise Problem(problem, named=False) from None


def _job_status(value: Any) -> str:
    if value not in JOB_STATUSES:
        raise Problem(f"is {show(value)} (expected one of {', '.join(JOB_STATUSES)})")
    return str(value)


def _moment(value: Any) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(f"is not an ISO time: {show(text)}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # no zone: UTC


def _ids(value: Any) -> list[str]:
    """Job ids (or overrides): short strings; a whole number is taken as its text."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_JOBS:
        raise Problem("is not a list")
    ids = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) < 10**12:
            item = str(item)
        if not isinstance(item, str) or len(item) > MAX_TEXT_CHARS:
            raise Problem(f"holds {show(item)}")
        ids.append(item)
    return ids


def _present(value: Any) -> Number:
    number = number_in()(value)
    if number is None:
        raise Problem("is missing")
    return number


def _size(value: Any) -> Number | dict[str, Number]:
    """A size of a size search: a number for one knob, ``{knob: number}`` for several."""
    if not isinstance(value, dict):
        return _present(value)
    if len(value) > MAX_KNOBS:
        raise Problem(f": {len(value)} knobs (at most {MAX_KNOBS})")
    size = {}
    for knob, number in value.items():
        if len(knob) > MAX_TEXT_CHARS:
            raise Problem(f": a knob of {len(knob)} characters")
        try:
            size[knob] = _present(number)
        except Problem as problem:
            raise problem.inside(f".{knob}") from None
    return size


def _knobs(value: Any) -> tuple[str, ...]:
    """``"width_mult"``, or a list of knobs searched together; absent: one unnamed knob."""
    if value is None:
        return ("size",)
    names = value if isinstance(value, list) else [value]
    if not names or len(names) > MAX_KNOBS:
        raise Problem(f": {len(names)} knobs (1 to {MAX_KNOBS})")
    return tuple(_text(name) or "" for name in names)


def _pair(value: Any) -> tuple[float, float] | None:
    """``[x, y]``: x a spent amount, y a metric; None when either is null (unknown)."""
    if not isinstance(value, list) or len(value) != 2:
        raise Problem("is not an [x, y] pair")
    coordinates = []
    for at, check, item in ((".x", number_in(), value[0]), (".y", _signed, value[1])):
        try:
            coordinates.append(check(item))
        except Problem as problem:
            raise problem.inside(at) from None
    x, y = coordinates
    return None if x is None or y is None else (float(x), float(y))


def at_most(limit: int, what: str = "") -> Callable[[Any], Any]:
    """A list or object of at most ``limit`` items."""

    def check(value: Any) -> Any:
        if isinstance(value, list | dict) and len(value) > limit:
            raise Problem(f": {len(value)}{' ' + what if what else ''} (at most {limit})")
        return value

    return check


def _metric_names(value: Any) -> Any:
    """A size search's metrics: at most MAX_METRICS, short names."""
    at_most(MAX_METRICS, "metrics")(value)
    for name in value if isinstance(value, dict) else ():
        if len(name) > MAX_TEXT_CHARS:
            raise Problem(f": a name of {len(name)} characters")
    return value


def _first_metrics(value: Any) -> Any:
    """A sweep's metrics: the first MAX_METRICS, long names left out."""
    if not isinstance(value, dict):
        return value
    return {name: value[name] for name in list(value)[:MAX_METRICS] if len(name) <= MAX_TEXT_CHARS}


def _known(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _shown_path(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= MAX_PATH_CHARS else None


def _stated_keys(value: Any) -> Any:
    """The budget keys a section states: one left out is absent, one given as null unknown."""
    if not isinstance(value, dict):
        return {} if value is None else value
    return {key: amount for key, amount in value.items() if key in BUDGET_KEYS}


def or_empty(kind: Any) -> Any:
    """A section that may be absent or empty (null, {}, 0, ""): all its values unknown."""
    return Annotated[kind, BeforeValidator(lambda v: v or {})]


_signed = number_in(-MAX_AMOUNT)
Amount = Annotated[Number | None, PlainValidator(number_in())]  # >= 0; None: unknown
Signed = Annotated[Number | None, PlainValidator(_signed)]
Fraction = Annotated[Number | None, PlainValidator(number_in(high=1.0))]  # accuracies, shares
Uncertainty = Annotated[Number | None, PlainValidator(number_in(high=MAX_UNCERTAINTY))]
Present = Annotated[Number, PlainValidator(_present)]  # an amount that must be known
StatedAmounts = Annotated[dict[str, Amount], BeforeValidator(_stated_keys)]
Text = Annotated[str | None, PlainValidator(_text)]
ShownPath = Annotated[str | None, PlainValidator(_shown_path)]  # only shown: unusable is None
Flag = Annotated[bool | None, PlainValidator(_flag)]
Moment = Annotated[datetime | None, PlainValidator(_moment)]
RunStatus = Annotated[Status, PlainValidator(_status)]
JobStatus = Annotated[str, PlainValidator(_job_status)]  # RUNNING or a Status
Ids = Annotated[list[str], PlainValidator(_ids)]
JobId = Annotated[str | None, PlainValidator(lambda v: None if v is None else _ids([v])[0])]
Size = Annotated[Number | dict[str, Number], PlainValidator(_size)]
MaybeSize = Annotated[Any, PlainValidator(lambda v: None if v is None else _size(v))]
Knobs = Annotated[tuple[str, ...], PlainValidator(_knobs)]
Points = Annotated[  # null readings are unknown: no point
    list[Annotated[tuple[float, float] | None, PlainValidator(_pair)]],
    BeforeValidator(lambda v: [] if v is None else at_most(MAX_POINTS, "points")(v)),
    AfterValidator(lambda points: [p for p in points if p is not None]),
]
Metrics = Annotated[  # {"val/loss": 0.23, ...}; nulls left out
    dict[str, Signed], BeforeValidator(_metric_names), AfterValidator(_known)
]
SweepMetrics = Annotated[dict[str, Signed], BeforeValidator(_first_metrics), AfterValidator(_known)]
M = TypeVar("M", bound=BaseModel)


# ---- reading ---------------------------------------------------------------------------------
def json_object(text: str, file: str) -> dict[str, Any]:
    """``text`` decoded as a JSON object, or MalformedError naming ``file``."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise MalformedError(f"{file}: invalid JSON (nested too deep)") from None
    except json.JSONDecodeError as err:
        raise MalformedError(f"{file}: invalid JSON ({err})") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise MalformedError(f"{file}: invalid JSON ({clip(visible(str(err)), 80)})") from None
    if not isinstance(data, dict):
        raise MalformedError(f"{file}: top level is {type(data).__name__}, not an object")
    return data


def parse(model: type[M], data: Any, file: str) -> M:
    """``data`` as ``model``, or MalformedError with the first problem, in one line."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise MalformedError(first_problem(err, file, getattr(model, "keyed", ()))) from None


def first_problem(err: ValidationError, file: str, keyed: tuple[str, ...] = ()) -> str:
    errors = err.errors(include_url=False)
    missing = [e["loc"][0] for e in errors if e["type"] == "missing" and len(e["loc"]) == 1]
    if missing:
        return f"{file}: missing key {', '.join(map(str, missing))}"
    error = errors[0]
    where = _where(error["loc"], keyed)
    problem = (error.get("ctx") or {}).get("error")
    if isinstance(problem, Problem):
        if not problem.named:
            return f"{file}: {problem.text}"
        where, text = where + problem.at, problem.text
    elif error["type"] in ("model_type", "dict_type"):
        text = f"is {type(error['input']).__name__}, not an object"
    elif error["type"] == "list_type":
        text = "is not a list"
    else:
        text = f": {error['msg']}"
    return f"{file}: {where or 'top level'}{'' if text.startswith(':') else ' '}{text}"


def _where(loc: tuple[int | str, ...], keyed: tuple[str, ...]) -> str:
    """``("jobs", "0", "spent", "energy_j")`` -> ``jobs.'0'.spent.energy_j``."""
    parts: list[str] = []
    for k, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif k == 1 and loc[0] in keyed:
            parts.append(f".{show(part)}")
        else:
            parts.append(f".{clip(visible(part), 80)}")
    return "".join(parts).removeprefix(".")
