"""Find the files a report reads and open them safely: only regular files are read (a FIFO
would block, ``/dev/zero`` never ends), at most :data:`MAX_FILE_BYTES` of them, as UTF-8 text.
What they hold is checked by the run record's schema (`frugal.core.record`)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugal.core.checked import MalformedError, json_object
from frugal.core.record import RESULT_FILE

NO_SUCH_DIR = "no such directory"
MAX_FILE_BYTES = 16 * 2**20  # a real result.json is a few kB, a curve.csv well under 1 MiB


@dataclass(frozen=True)
class Skipped:
    """A file (or directory) the report could not use, and why."""

    path: Path
    reason: str


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
    return sorted(found.values(), key=natural_key), missing


def read_json(path: Path, name: str) -> dict[str, Any]:
    """The JSON object in ``path`` (read as :func:`read_regular_file` reads), or
    :class:`MalformedError` naming ``name`` and the problem."""
    return json_object(read_regular_file(path, name), name)


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


def natural_key(path: Path) -> list[tuple[int, int | str]]:
    """Sort ``10/`` after ``9/`` (Hydra numbers multirun jobs)."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in path.parts]
