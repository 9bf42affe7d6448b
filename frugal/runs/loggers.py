"""Loggers that keep a run's history across resumes, and never write through a symlink.

Lightning's `CSVLogger` deletes `metrics.csv` when its directory already holds one ("Previous
log files in this directory will be deleted"): every resume lost the segments before it. Here:
- `CSVLogger` continues `<save_dir>/<name>/<version>/metrics.csv`: rows are appended under the
  existing header; a segment that logs a metric the file has no column for rewrites the file
  atomically (temporary file beside it, fsync, rename) with the union of the columns — old
  columns and rows are never dropped. `hparams.yaml` is written atomically too.
- `TensorBoardLogger` resumes into the same version (`version: ""` in conf/logger): TensorBoard
  adds an event file per process and keeps the earlier ones; `hparams.yaml` is written once,
  atomically.
Every directory below the logger's `save_dir` (the run directory) and every file is opened with
`O_NOFOLLOW`: a symlink planted there is refused (OSError ELOOP naming it), never written
through. `build_loggers` instantiates the `logger` group, taking these in place of Lightning's
classes of the same name (so a run saved with Lightning's logger appends when it resumes).
"""

from __future__ import annotations

import csv
import errno
import io
import logging
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from typing_extensions import override

from frugal.core.errors import bad

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.csv"
HPARAMS_FILE = "hparams.yaml"
# Lightning's classes and the frugal ones that take their place (same arguments).
APPENDING = {
    "lightning.pytorch.loggers.CSVLogger": f"{__name__}.CSVLogger",
    "lightning.pytorch.loggers.csv_logs.CSVLogger": f"{__name__}.CSVLogger",
    "lightning.pytorch.loggers.TensorBoardLogger": f"{__name__}.TensorBoardLogger",
    "lightning.pytorch.loggers.tensorboard.TensorBoardLogger": f"{__name__}.TensorBoardLogger",
}
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def build_loggers(nodes: Any) -> list[Logger]:
    """The `logger` group's loggers (`<name>: null` is off), appending ones for Lightning's.
    Raises ConfigError (one line) for a symlink where one of them would write."""
    loggers = []
    for name, node in (nodes or {}).items():
        if not node:
            continue
        target = node.get("_target_")
        logger = instantiate(node, _target_=APPENDING.get(target, target))
        if isinstance(logger, CSVLogger | TensorBoardLogger):
            check_no_links(f"logger.{name}", logger.save_dir, logger.log_dir)
        loggers.append(logger)
    return loggers


def check_no_links(key: str, root: str, log_dir: str) -> None:
    """Before anything runs: no symlink on the way to a logger's files (a planted link would
    otherwise stop the run at its first write)."""
    try:
        with below(root, log_dir, create=False) as dir_fd:
            for name in (METRICS_FILE, HPARAMS_FILE):
                if _is_link(dir_fd, name):
                    raise _refused(os.path.join(log_dir, name))
    except FileNotFoundError:
        return  # made at the first write, without following links
    except OSError as err:
        where = err.filename or log_dir
        raise bad(
            key, ..., f"{where}: {err.strerror}", "a run directory without symbolic links"
        ) from None


# ---- files below the run directory, never through a symlink ------------------------------------
def _refused(path: str) -> OSError:
    return OSError(errno.ELOOP, "a symbolic link in the run directory: not followed", path)


@contextmanager
def below(root: str | os.PathLike, path: str | os.PathLike, create: bool = True) -> Iterator[int]:
    """A descriptor of directory `path`, which lies below `root` (the run directory, checked by
    its owner): each component below `root` is opened without following a symlink, and made
    when missing (`create`). Raises OSError: ELOOP for a symlink, EPERM for a path leaving
    `root`, ENOENT when missing and not created."""
    root, path = _expanded(root), _expanded(path)
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        raise OSError(errno.EPERM, f"not below {root}", path) from None
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        where = root
        for part in parts:
            where = os.path.join(where, part)
            if part == "..":
                raise OSError(errno.EPERM, f"leaves {root}", path)
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=fd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fd, part):
                    raise _refused(where) from None
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _expanded(path: str | os.PathLike) -> str:
    return os.path.expanduser(os.path.expandvars(os.fspath(path)))


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _open(dir_fd: int, name: str, flags: int, where: str) -> int:
    try:
        return os.open(name, flags | _NOFOLLOW, 0o666, dir_fd=dir_fd)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise _refused(os.path.join(where, name)) from None
        raise


def read_bytes(dir_fd: int, name: str, where: str) -> bytes | None:
    """The file's bytes, None when there is none."""
    try:
        fd = _open(dir_fd, name, os.O_RDONLY, where)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def replace_atomically(dir_fd: int, name: str, data: bytes, where: str) -> None:
    """`name` holds `data` (a temporary file beside it, fsync, rename): readers see the old
    file or the new one, never half; a symlink at `name` is refused, not replaced."""
    if _is_link(dir_fd, name):
        raise _refused(os.path.join(where, name))
    tmp = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = _open(dir_fd, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, where)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)  # the rename itself survives a crash


def append_bytes(dir_fd: int, name: str, data: bytes, where: str) -> None:
    """Append `data` to an existing file, on a line of its own."""
    fd = _open(dir_fd, name, os.O_RDWR | os.O_APPEND, where)
    with os.fdopen(fd, "r+b") as handle:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) not in (b"\n", b"\r"):
            data = b"\r\n" + data  # a file cut mid-line: never glue a row onto it
        handle.write(data)
        handle.flush()
        os.fsync(fd)


def hparams_text(hparams: Any) -> bytes:
    """`hparams.yaml` as Lightning writes it (its conversions of containers and odd values)."""
    with tempfile.TemporaryDirectory(prefix="frugal-hparams-") as scratch:
        path = os.path.join(scratch, HPARAMS_FILE)
        save_hparams_to_yaml(path, hparams)
        return Path(path).read_bytes()


# ---- CSV -----------------------------------------------------------------------------------------
class AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing an existing `metrics.csv` instead of deleting it."""

    def __init__(self, log_dir: str, root: str) -> None:
        # Not Lightning's __init__: it deletes metrics.csv and makes directories through links.
        self.metrics: list[dict[str, float]] = []
        self.metrics_keys: list[str] = []
        self.hparams: dict[str, Any] = {}
        self._fs = get_filesystem(log_dir)
        self.log_dir = log_dir
        self.metrics_file_path = os.path.join(log_dir, METRICS_FILE)
        self._root = root
        with below(root, log_dir) as dir_fd:
            found = self._read(dir_fd)
        if found is not None:
            self.metrics_keys = found[0]

    @override
    def log_hparams(self, params: dict[str, Any]) -> None:
        self.hparams.update(params)
        with below(self._root, self.log_dir) as dir_fd:
            replace_atomically(dir_fd, HPARAMS_FILE, hparams_text(self.hparams), self.log_dir)

    @override
    def save(self) -> None:
        if not self.metrics:
            return
        with below(self._root, self.log_dir) as dir_fd:
            new_keys = self._record_new_keys()
            found = self._read(dir_fd) if new_keys else None
            if found is not None and new_keys:  # new columns: the whole file again, atomically
                header, rows = found
                columns = sorted(set(self.metrics_keys) | set(header))
                self.metrics_keys = columns
                text = _csv_text(columns, [*rows, *self.metrics], header=True)
                replace_atomically(dir_fd, METRICS_FILE, text, self.log_dir)
            elif new_keys:  # no file (or an empty one): a new one, atomically
                text = _csv_text(self.metrics_keys, self.metrics, header=True)
                replace_atomically(dir_fd, METRICS_FILE, text, self.log_dir)
            else:
                text = _csv_text(self.metrics_keys, self.metrics, header=False)
                append_bytes(dir_fd, METRICS_FILE, text, self.log_dir)
        self.metrics = []

    def _read(self, dir_fd: int) -> tuple[list[str], list[dict[str, str]]] | None:
        """(header, rows) of the existing file; None when there is none or it is empty. A file
        that is not UTF-8 CSV is kept aside under another name, never overwritten."""
        data = read_bytes(dir_fd, METRICS_FILE, self.log_dir)
        if not data:
            return None
        try:
            reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
            rows = list(reader)
            header = [name for name in reader.fieldnames or [] if name]
        except (UnicodeDecodeError, csv.Error) as err:
            aside = f"{METRICS_FILE}.{secrets.token_hex(4)}.unreadable"
            os.rename(METRICS_FILE, aside, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            log.warning(
                "%s: not readable as CSV (%s); kept as %s", self.metrics_file_path, err, aside
            )
            return None
        return header, rows


def _csv_text(columns: list[str], rows: list[dict[str, Any]], header: bool) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


class CSVLogger(LightningCSVLogger):
    """Lightning's CSVLogger (same arguments), appending to the run's `metrics.csv`."""

    @property
    @override
    @rank_zero_experiment
    def experiment(self) -> AppendingWriter:
        if self._experiment is None:
            self._experiment = AppendingWriter(self.log_dir, self.save_dir)
        return self._experiment  # type: ignore[return-value]


# ---- TensorBoard ---------------------------------------------------------------------------------
class TensorBoardLogger(LightningTensorBoardLogger):
    """Lightning's TensorBoardLogger (same arguments): its directories made without following a
    symlink, `hparams.yaml` written atomically and only where there is none."""

    @property
    @override
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None:
            with below(self.save_dir, self.log_dir):
                pass  # made, and no symlink on the way, before TensorBoard writes there
        return super().experiment

    @override
    @rank_zero_only
    def save(self) -> None:
        super(LightningTensorBoardLogger, self).save()  # the events flushed; not its hparams
        try:
            with below(self.save_dir, self.log_dir, create=False) as dir_fd:
                if read_bytes(dir_fd, HPARAMS_FILE, self.log_dir) is None:
                    text = hparams_text(self.hparams)
                    replace_atomically(dir_fd, HPARAMS_FILE, text, self.log_dir)
        except FileNotFoundError:
            return  # nothing logged yet: Lightning writes no hparams.yaml either
