"""What a run directory is, and how a run writes into it (DESIGN.md, "The run directory").

- `.frugal-run`, the marker, says a directory is a frugal run's: written (atomically, once) when
  a run claims the directory (`frugal.runs.locks`), it is what "another run's directory" means,
  and the file the run's lock is held on. Runs of older frugal have no marker; they are known by
  `.hydra/config.yaml` beside `checkpoints/last.ckpt` (`is_run`).
- A run never follows a link it did not create: `linked_entries` finds the links among what a
  run writes, refused before it writes; `open_nofollow` opens for appends without following one
  planted later; `write_atomic` writes a temporary file beside the target, fsyncs and renames
  (a rename replaces a link, never writes through it).
- System directories and the home directory itself never hold a run (`system_dir`).

Plain Python: the command line's checks use it before anything heavy is imported.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from frugal.core.errors import bad

MARKER = ".frugal-run"
SAVED_CONFIG = Path(".hydra") / "config.yaml"
LAST_CKPT = Path("checkpoints") / "last.ckpt"
PILOTS = "pilots"  # a size search's (frugal.sweep.auto_size)
# What a run (or Hydra for it) writes at the top of its directory, and the folders whose entries
# it writes: a link among them is refused before the run writes anything.
WRITTEN = (
    MARKER,
    "train.log",
    "curve.csv",
    "result.json",
    "ledger.json",
    "job.json",
    "csv",
    "checkpoints",
    "tensorboard",
    ".hydra",
    "pilots",
    "attempts",
)
WRITTEN_INSIDE = ("csv", "checkpoints", "tensorboard", ".hydra")
# Never a run directory, nor anything inside them (resolved, so /bin -> /usr/bin counts too)
SYSTEM_TREES = (
    "/proc", "/sys", "/dev", "/etc", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
    "/libx32", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec",
    "/usr/include", "/usr/share", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/run",
)  # fmt: skip
# Never a run directory themselves (their subdirectories may be)
SYSTEM_DIRS = (
    "/", "/usr", "/usr/local", "/var", "/home", "/root", "/tmp", "/var/tmp", "/opt", "/srv",
    "/mnt", "/media", "/snap",
)  # fmt: skip
NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK)
OPEN_FLAGS = {
    "r": os.O_RDONLY,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "a+": os.O_RDWR | os.O_CREAT | os.O_APPEND,
}


# ---- what a directory is ---------------------------------------------------------------------
def is_marked(directory: Path) -> bool:
    """`directory` holds frugal's run marker (a regular file, not a link)."""
    return (directory / MARKER).is_file() and not (directory / MARKER).is_symlink()


def is_run(directory: Path) -> bool:
    """A frugal run's directory: marked, or made by an older frugal (its saved configuration
    and what resuming it needs: its last checkpoint, or a size search's pilots)."""
    return is_marked(directory) or (
        (directory / SAVED_CONFIG).is_file()
        and ((directory / LAST_CKPT).is_file() or (directory / PILOTS).is_dir())
    )


def marked_ancestor(directory: Path) -> Path | None:
    """The nearest directory above `directory` (resolved) that holds a run marker."""
    return next((parent for parent in directory.parents if is_marked(parent)), None)


def entries(directory: Path, most: int = 4) -> list[str]:
    """Up to `most` names in `directory` (folders with a trailing /), sorted; [] when empty."""
    found = []
    with os.scandir(directory) as scan:
        for entry in scan:
            found.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
            if len(found) > most:
                break
    return sorted(found)


def system_dir(directory: Path) -> bool:
    """A system directory (or one inside /etc, /usr/lib, /proc ...), or the home directory
    itself: never a run's."""
    resolved = directory.expanduser().resolve()
    if resolved == Path.home().resolve():
        return True
    tops = {Path(p).resolve() for p in SYSTEM_DIRS}
    trees = {Path(p).resolve() for p in SYSTEM_TREES}
    return resolved in tops or any(resolved == t or t in resolved.parents for t in trees)


def linked_entries(directory: Path, names: tuple[str, ...] = WRITTEN) -> list[str]:
    """The entries of `directory` a run writes (`names`, and what it writes inside the folders
    of `WRITTEN_INSIDE`) that are symbolic links, dangling or not. A link between two
    checkpoints of one folder (Lightning's `save_last="link"`) is the run's own."""
    found = [name for name in names if (directory / name).is_symlink()]
    for folder in WRITTEN_INSIDE:
        inside = directory / folder
        if folder not in names or folder in found or not inside.is_dir():
            continue
        with os.scandir(inside) as scan:
            for entry in scan:
                if entry.is_symlink() and not _sibling_link(Path(entry.path), folder):
                    found.append(f"{folder}/{entry.name}")
    return found


def refuse_links(key: str, directory: Path, names: tuple[str, ...] = WRITTEN) -> None:
    """ConfigError (one line) when an entry a run writes in `directory` is a symbolic link."""
    links = linked_entries(directory, names) if directory.is_dir() else []
    if links:
        raise bad(
            key,
            str(directory),
            f"{links[0]} there is a symbolic link, and a run never writes through a link",
            "the run's own files in its directory (remove the link)",
        )


def _sibling_link(path: Path, folder: str) -> bool:
    target = os.readlink(path)
    return folder == "checkpoints" and "/" not in target and target not in ("", ".", "..")


# ---- the marker ------------------------------------------------------------------------------
def write_marker(directory: Path) -> None:
    """Put the run marker in `directory` unless one is there: written whole beside it, then
    linked into place (a marker is never half written, and never replaces another)."""
    marker = directory / MARKER
    payload = {
        "frugal_run": 1,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{MARKER}.", suffix=".tmp")
    try:
        _write_all(fd, (json.dumps(payload) + "\n").encode())
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.chmod(tmp, 0o666 & ~_umask())
        with contextlib.suppress(FileExistsError):  # a marker (or a link) there is kept
            try:
                os.link(tmp, marker)
            except OSError as err:
                if err.errno not in NO_HARD_LINKS:
                    raise
                _create_exclusive(marker, Path(tmp).read_bytes())
    finally:
        if fd >= 0:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)


def _create_exclusive(path: Path, data: bytes) -> None:
    """Where a file system has no hard links: created only if absent, written in place."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


# ---- writing ---------------------------------------------------------------------------------
def open_nofollow(path: str | Path, mode: str = "r", newline: str | None = None) -> IO[Any]:
    """`open(path, mode)` that never follows a link at `path` (OSError ELOOP instead): for
    appends and in-place writes of a run's own files. Modes r, w, a, a+ (and their b forms)."""
    flags = OPEN_FLAGS[mode.replace("b", "")] | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o666)
    try:
        return os.fdopen(fd, mode, newline=None if "b" in mode else newline)
    except BaseException:
        os.close(fd)
        raise


def write_atomic(path: str | Path, data: bytes | memoryview) -> None:
    """Replace `path` with `data` as one step: a temporary file beside it (same directory, same
    file system), fsynced, then renamed over it. On failure the temporary file is removed, the
    previous file is left as it was, and the OSError (errno kept, naming `path`) is raised."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a run's files are meant to be read
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is None:
            err.filename = str(path)
        raise
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    _fsync_dir(path.parent)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: some file systems refuse it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_UMASK: list[int] = []


def _umask() -> int:
    """The process's umask, read once (setting it to read it is not thread-safe)."""
    if not _UMASK:
        _UMASK.append(_read_umask())
    return _UMASK[0]


def _read_umask() -> int:
    for line in _lines("/proc/self/status"):
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _lines(path: str) -> Iterator[str]:
    try:
        with open(path) as handle:
            yield from handle
    except OSError:
        return
