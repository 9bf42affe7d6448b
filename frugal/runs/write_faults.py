"""Writes that fail: which `OSError`s mean a run can no longer write its outputs, and which path.

A full disk or quota, permissions taken away, a file system remounted read-only, an I/O error or
a file-size limit end the run with status `write_failed` (exit 7): one line naming the path and
the errno, the previous checkpoint intact, `result.json` written if there is room. Any other
`OSError` is not a write fault and is left alone.

A failed `write()` or `close()` names no file (`[Errno 28] No space left on device`): writers
wrap their writes in `writing(path)`, which attaches the path they were writing.

Kept free of heavy imports.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# ELOOP: a link planted in the run directory mid-run, refused by a no-follow open
WRITE_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.EIO,
        errno.EFBIG,
        errno.ELOOP,
    }
)
_CHAIN_DEPTH = 8  # how far to follow __cause__ / __context__ for the OSError behind a wrapper
_TEMPORARY = re.compile(r"^\.(.+)\.[A-Za-z0-9_]{8}\.tmp$")  # tempfile.mkstemp's, frugal's names


class WriteFailed(OSError):
    """An output of the run could not be written: `path` and the errno."""

    def __init__(self, path: str | Path, code: int, strerror: str | None = None):
        super().__init__(code, strerror or errno.errorcode.get(code, "write failed"), str(path))
        self.path = str(path)

    def __str__(self) -> str:
        return f"{self.path}: [Errno {self.errno}] {self.strerror}"

    def __reduce__(self) -> tuple:  # a writer thread's or a rank's failure crosses processes
        return (type(self), (self.path, self.errno, self.strerror))


def write_failure(
    err: BaseException, path: str | Path | None = None, fallback: str | Path | None = None
) -> WriteFailed | None:
    """The write fault `err` is, or wraps, as WriteFailed; None when it is not one. It names
    `path` (the file the caller was writing), else the file the error names (a move's
    destination before its source; the target of an atomic write's temporary file), else
    `fallback`."""
    found = _errno_error(err)
    if found is None:
        return None
    if isinstance(found, WriteFailed):
        return found
    named = path or _target(found.filename2 or found.filename) or fallback
    where = str(named) if named is not None else "the run directory"
    return WriteFailed(where, found.errno, found.strerror)


def _target(name: object) -> str | None:
    """The file an atomic write's temporary file (`.<name>.<random>.tmp` beside it) stood for."""
    if name is None:
        return None
    found = _TEMPORARY.match(Path(str(name)).name)
    return str(Path(str(name)).with_name(found[1])) if found else str(name)


def _errno_error(err: BaseException | None) -> OSError | None:
    """The first OSError with a write errno in `err`'s chain (torch and Lightning wrap them)."""
    for _ in range(_CHAIN_DEPTH):
        if err is None:
            return None
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            return err
        err = err.__cause__ or err.__context__
    return None


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Name `path` in a write fault raised inside: it becomes `WriteFailed`; other errors pass."""
    try:
        yield
    except OSError as err:
        failed = write_failure(err, path)
        if failed is None or failed is err:
            raise
        raise failed from err


class WriteFaults:
    """The first write fault of a run, caught where it ends a part of the run (fit, test, the
    record) and kept for its status; `fallback`: the path named when the error names none."""

    def __init__(self, fallback: str | Path):
        self.first: WriteFailed | None = None
        self._fallback = fallback

    @contextmanager
    def caught(self) -> Iterator[None]:
        try:
            yield
        except OSError as err:
            failed = write_failure(err, fallback=self._fallback)
            if failed is None:
                raise
            self.first = self.first or failed
