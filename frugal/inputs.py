"""What users hand in by name — files and dotted import paths — checked, with the pieces of the
one-line error every check raises (`ConfigError`: `<key>=<value>: <what is wrong>; expected
<accepted form>`)."""

from __future__ import annotations

import importlib
import os
import stat
from pathlib import Path
from typing import Any

from frugal.budget.spec import ConfigError


def shown(value: object) -> str:
    """A value as it goes into a one-line error: control characters escaped."""
    text = str(value)
    return text if text.isprintable() else repr(text)


def first_line(err: BaseException) -> str:
    """An exception as a short clause: its type and the first line of its message."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def regular_file(value: object, key: str, expected: str) -> Path:
    """The path `value` names, if it is an existing, readable, non-empty regular file. Checked
    with `stat` before anything opens it: opening a FIFO blocks, a device never ends."""
    path = Path(str(value)).expanduser()
    where = f"{key}={shown(value)}"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file; expected {expected}") from None
    except OSError as err:
        raise ConfigError(
            f"{where}: cannot be read ({err.strerror}); expected {expected}"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{where}: is a directory; expected {expected}")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            f"{where}: is not a regular file (a FIFO, socket or device); expected {expected}"
        )
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{where}: is not readable; expected {expected}")
    if info.st_size == 0:
        raise ConfigError(f"{where}: is empty; expected {expected}")
    return path


def locate(path: object, key: str, expected: str) -> Any:
    """The object a dotted path `pkg.module.Name` names (importing the module)."""
    module_name, _, attr = str(path).rpartition(".")
    if not module_name or not attr:
        raise ConfigError(
            f"{key}={shown(path)}: not a dotted path pkg.module.Name; expected {expected}"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # the user's module may fail in any way while importing
        raise ConfigError(
            f"{key}={shown(path)}: cannot import {module_name} ({first_line(err)}); expected "
            f"{expected}, importable from PYTHONPATH (PYTHONPATH=. for a module in the current "
            "directory)"
        ) from err
    if not hasattr(module, attr):
        raise ConfigError(
            f"{key}={shown(path)}: {module_name} has no {attr!r}; expected {expected}"
        )
    return getattr(module, attr)
