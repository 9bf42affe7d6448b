"""What users hand in by name — files and dotted import paths — checked; every check raises
the one-line error (`frugal.core.errors.bad`)."""

from __future__ import annotations

import importlib
import os
import stat
from pathlib import Path
from typing import Any

from frugal.core.errors import bad, first_line


def regular_file(value: object, key: str, expected: str) -> Path:
    """The path `value` names, if it is an existing, readable, non-empty regular file. Checked
    with `stat` before anything opens it: opening a FIFO blocks, a device never ends."""
    path = Path(str(value)).expanduser()
    try:
        info = path.stat()
    except FileNotFoundError:
        raise bad(key, value, "no such file", expected) from None
    except OSError as err:
        raise bad(key, value, f"cannot be read ({err.strerror})", expected) from None
    if stat.S_ISDIR(info.st_mode):
        raise bad(key, value, "is a directory", expected)
    if not stat.S_ISREG(info.st_mode):
        raise bad(key, value, "is not a regular file (a FIFO, socket or device)", expected)
    if not os.access(path, os.R_OK):
        raise bad(key, value, "is not readable", expected)
    if info.st_size == 0:
        raise bad(key, value, "is empty", expected)
    return path


def locate(path: object, key: str, expected: str) -> Any:
    """The object a dotted path `pkg.module.Name` names (importing the module)."""
    module_name, _, attr = str(path).rpartition(".")
    if not module_name or not attr:
        raise bad(key, path, "not a dotted path pkg.module.Name", expected)
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # the user's module may fail in any way while importing
        raise bad(
            key,
            path,
            f"cannot import {module_name} ({first_line(err)})",
            f"{expected}, importable from PYTHONPATH (PYTHONPATH=. for a module in the current "
            "directory)",
        ) from err
    if not hasattr(module, attr):
        raise bad(key, path, f"{module_name} has no {attr!r}", expected)
    return getattr(module, attr)
