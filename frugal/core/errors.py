"""The one line every rejected input gets: `<key>=<value>: <what is wrong>; expected <form>`.

`frugal-train` prints it after `frugal-train: ` and exits with status 2 (`frugal.core.status`).
Every such line is built by `bad`, so a value is always quoted the same way (`shown`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the error builder itself needs no pydantic; only its callers' schemas do
    from pydantic import BaseModel, ValidationError

MAX_SHOWN = 80  # characters of a value quoted in an error line


class ConfigError(ValueError):
    """Bad user input; its message is the one line printed on stderr (exit status 2)."""


def shown(value: Any) -> str:
    """A value as the error line quotes it: Python's repr (so '5' and 5 differ, and control or
    invisible characters are escaped), never more than one short line. (An OmegaConf node's
    repr is its plain container's, so config nodes need no conversion.) A path as its text."""
    text = repr(os.fspath(value) if isinstance(value, os.PathLike) else value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 5] + "…" + text[-4:]


def setting(key: str, value: Any = ...) -> str:
    """`key=value` as an error line starts (`key` alone when `value` is `...`)."""
    return one_line(key) if value is ... else f"{one_line(key)}={shown(value)}"


def bad(key: str, value: Any, problem: str, expected: str) -> ConfigError:
    """The error for `key` set to `value` (pass `...` when the value is not the point, as for
    an unknown key, or when `key` is already a `setting`). An empty `problem` leaves it to
    `expected` (`seed=-1: expected a whole number >= 0`)."""
    problem = f"{problem}; " if problem else ""
    return ConfigError(f"{setting(key, value)}: {problem}expected {expected}")


def one_line(text: str) -> str:
    """`text` with every unprintable character escaped (a newline in a key cannot break the
    one-line error in two)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def first_line(err: BaseException) -> str:
    """An exception as a short clause: its type and the first line of its message."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


# What is wrong, by pydantic error type; the accepted form comes from the field's description.
_PROBLEMS = {
    "missing": "missing",
    "extra_forbidden": "unknown key",
    "int_type": "not a whole number",
    "int_from_float": "not a whole number",
    "float_type": "not a number",
    "finite_number": "not a finite number",
    "bool_type": "not true or false",
    "string_type": "not text",
    "list_type": "not a list",
    "tuple_type": "not a list",
    "dict_type": "not a group of keys",
    "model_type": "not a group of keys",
    "literal_error": "not an accepted value",
    "greater_than": "out of range",
    "greater_than_equal": "out of range",
    "less_than": "out of range",
    "less_than_equal": "out of range",
    "too_short": "too short",
    "too_long": "too long",
}


def from_validation_error(
    err: ValidationError, schema: type[BaseModel], prefix: str, node: Any
) -> ConfigError:
    """The first problem pydantic found in `node` (validated as `prefix`), as one line."""
    first = err.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    key = f"{prefix}.{field}" if prefix and field else prefix or field
    value = node.get(field, ...) if isinstance(node, dict) and field else node
    if first["type"] == "extra_forbidden":
        return bad(key, value, "unknown key", f"one of {', '.join(accepted_keys(schema))}")
    same_field = [e for e in err.errors() if e["loc"][:1] == first["loc"][:1]]
    if first["type"] == "value_error":
        problem = str(first["ctx"]["error"]) if "ctx" in first else first["msg"]
    elif len(same_field) > 1 and len(first["loc"]) > 1:
        problem = "not accepted"  # several alternatives failed; the description lists them
    else:
        problem = _PROBLEMS.get(first["type"], first["msg"].lower())
    info = schema.model_fields.get(field)
    expected = info.description if info is not None and info.description else first["msg"]
    return bad(key, value, problem, expected)


def accepted_keys(schema: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in schema.model_fields.items()]
