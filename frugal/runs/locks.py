"""One process per run: an exclusive advisory lock (`fcntl`, POSIX record lock) on the run's
marker, held from the start of the run to the end of the process's work on it.

The kernel releases it when the process ends, however it ends (kill -9 leaves no stale lock),
and NFS honours it across machines. Claims are counted per process (`claim` / `release`): the
size search and a multirun call the pipeline several times in one process, and a resumed run
is claimed by the command line before Hydra opens its log there, then again by the pipeline.
A POSIX lock belongs to the process and ends when any of its descriptors of the file closes,
so the marker is opened once per process, here, and read through that descriptor.

Under several ranks (DDP, SLURM tasks) rank 0 holds the lock; the other ranks write nothing of
their own there and claim nothing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from frugal.core.errors import ConfigError, bad
from frugal.runs.directory import MARKER, refuse_links, write_marker

# Set by launchers in every process of a multi-process run; any positive one: not rank 0
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")
BUSY = (errno.EACCES, errno.EAGAIN)


@dataclass
class _Claim:
    fd: int
    count: int


_claims: dict[str, _Claim] = {}
_guard = threading.Lock()


def try_claim(directory: Path, key: str = "paths.output_dir") -> int | None:
    """Claim `directory` for this process (created, marked, locked); None when it is now
    held, else the pid of the process holding it (0 when not known: held from another
    machine). Raises ConfigError when an entry the run writes there is a link."""
    directory = Path(directory).absolute()
    if secondary_rank():
        directory.mkdir(parents=True, exist_ok=True)
        return None
    name = os.path.realpath(directory)
    with _guard:
        held = _claims.get(name)
        if held is not None:
            held.count += 1
            return None
        refuse_links(key, directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_marker(directory)
        fd = os.open(directory / MARKER, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _holder(fd)
            os.close(fd)
            if err.errno not in BUSY:
                raise
            return 0 if holder is None else holder  # (None: it ended just now)
        _claims[name] = _Claim(fd, 1)
        return None


def claim(directory: Path, key: str = "paths.output_dir") -> None:
    """`try_claim`, a directory held by another process refused with one line naming it."""
    holder = try_claim(directory, key)
    if holder is not None:
        raise in_use(key, directory, holder)


def release(directory: Path | None) -> None:
    """Undo one `claim` of this process; the last one closes the marker (the lock ends)."""
    if directory is None:
        return
    name = os.path.realpath(Path(directory).absolute())
    with _guard:
        held = _claims.get(name)
        if held is None:
            return
        held.count -= 1
        if held.count <= 0:
            del _claims[name]
            os.close(held.fd)


@contextmanager
def claimed(directory: Path, key: str = "paths.output_dir") -> Iterator[None]:
    claim(directory, key)
    try:
        yield
    finally:
        release(directory)


def holder_of(directory: Path) -> int | None:
    """The pid of another process holding `directory` (0: not known), None when none does.
    Takes nothing (and never opens the marker of a run this process holds: closing that
    descriptor would end its lock)."""
    if secondary_rank():
        return None
    name = os.path.realpath(Path(directory).absolute())
    with _guard:
        if name in _claims:
            return None
        try:
            fd = os.open(Path(directory) / MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return _holder(fd, fcntl.F_RDLCK)
        finally:
            os.close(fd)


def in_use(key: str, directory: Path, holder: int) -> ConfigError:
    who = f"pid {holder}" if holder > 0 else "a process on another machine"
    stop = f"stop it (kill {holder})" if holder > 0 else "stop it"
    return bad(
        key,
        str(directory),
        f"the run there is in use by another frugal process ({who})",
        f"one process per run: wait for it to end, or {stop}",
    )


def secondary_rank() -> bool:
    """This process is one of several ranks of a run, and not rank 0."""
    for variable in RANK_VARIABLES:
        value = os.environ.get(variable, "")
        if value.strip().isdigit() and int(value) > 0:
            return True
    return False


def _holder(fd: int, kind: int = fcntl.F_WRLCK) -> int | None:
    """The pid of the process whose lock on `fd`'s file conflicts with a lock of `kind`
    (0: not known), None when none does."""
    query = struct.pack("hhqqi", kind, os.SEEK_SET, 0, 0, 0)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return 0
    found_kind, _, _, _, pid = struct.unpack("hhqqi", answer)
    return None if found_kind == fcntl.F_UNLCK else max(pid, 0)
