"""`ledger.json` beside the run: the ledger rewritten atomically at re-plans, so a hard kill
loses at most max(one re-plan interval, `SIDECAR_EVERY_S`) of spending (`Books.charge_sidecar`
charges it on resume). During training it is written on a writer thread (a file write costs
about a small model's step), at the end on the training thread after any pending write. A write
fault on the writer thread is raised on the training thread at the next write: the run ends
`write_failed`."""

from __future__ import annotations

import logging
import math
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from frugal.runs.record import write_json_atomic
from frugal.runs.write_faults import WriteFailed, writing

log = logging.getLogger(__name__)

# Rewritten at a re-plan once this long has passed since the last write: more often costs step
# time.
SIDECAR_EVERY_S = 0.25


class LedgerSidecar:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._written_s = -math.inf  # clock time of the last write
        self._writer: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def due(self, now_s: float) -> bool:
        """Whether a write at a re-plan is due at clock time `now_s`."""
        return now_s - self._written_s >= SIDECAR_EVERY_S

    def write(self, state: dict[str, Any], step: int, now_s: float, background: bool) -> None:
        """Write `state` at `step`, in order: never an older ledger over a newer one."""
        self._written_s = now_s
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # a write fault on the writer thread is raised here
        if background:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="frugal-ledger")
            self._pending = self._writer.submit(write_ledger, self.path, state, step)
        else:
            write_ledger(self.path, state, step)


def write_ledger(path: Path, state: dict[str, Any], step: int) -> None:
    """A write fault (disk full, permissions: `frugal.runs.write_faults`) is raised as
    WriteFailed naming the path; any other OSError costs a warning, not the run."""
    try:
        with writing(path):
            write_json_atomic(path, {**state, "step": step})
    except WriteFailed:
        raise
    except OSError as err:
        log.warning("could not write %s: %s", path, err)
