"""`ledger.json` beside the run (`frugal.callbacks.sidecar`), without a Trainer: written
atomically, in order, on a writer thread during training; a write fault on that thread is
raised on the training thread at the next write. The fault is real: a full tmpfs mounted for
the test (skipped, with the reason, where the runner cannot mount one)."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frugal.budget.ledger import LEDGER_FILE, Ledger, read_sidecar
from frugal.callbacks.sidecar import SIDECAR_EVERY_S, LedgerSidecar
from frugal.runs.write_faults import WriteFailed


def state(time_s: float) -> dict:
    ledger = Ledger()
    ledger.book("time_s", time_s)
    return ledger.state_dict()


def written_step(path: Path) -> int | None:
    found = read_sidecar(path)
    return None if found is None else found["step"]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A one-page tmpfs, filled: the next write into it fails with ENOSPC."""
    where = tmp_path / "full"
    where.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(where)]
    done = subprocess.run(mount, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 1024)
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def test_a_write_replaces_the_ledger_with_its_step(tmp_path: Path):
    sidecar = LedgerSidecar(tmp_path / LEDGER_FILE)
    sidecar.write(state(1.0), step=3, now_s=0.0, background=False)
    sidecar.write(state(2.0), step=5, now_s=1.0, background=False)
    found = read_sidecar(tmp_path / LEDGER_FILE)
    assert found is not None
    assert found["step"] == 5 and found["spent"]["time_s"] == 2.0
    assert [p.name for p in tmp_path.iterdir()] == [LEDGER_FILE]  # no temporary file left


def test_a_write_is_due_at_most_every_sidecar_interval(tmp_path: Path):
    sidecar = LedgerSidecar(tmp_path / LEDGER_FILE)
    assert sidecar.due(now_s=0.0)  # never written
    sidecar.write(state(1.0), step=1, now_s=10.0, background=False)
    assert not sidecar.due(now_s=10.0 + SIDECAR_EVERY_S / 2)
    assert sidecar.due(now_s=10.0 + SIDECAR_EVERY_S)


def test_background_writes_land_in_order(tmp_path: Path):
    path = tmp_path / LEDGER_FILE
    sidecar = LedgerSidecar(path)
    sidecar.write(state(1.0), step=1, now_s=0.0, background=True)
    deadline = time.monotonic() + 30
    while written_step(path) != 1:
        assert time.monotonic() < deadline, "the background write never landed"
        time.sleep(0.01)
    sidecar.write(state(2.0), step=2, now_s=1.0, background=True)
    sidecar.write(state(3.0), step=3, now_s=2.0, background=False)  # after the pending one
    assert written_step(path) == 3


def test_a_write_fault_on_the_writer_thread_is_raised_at_the_next_write(full_disk: Path):
    path = full_disk / LEDGER_FILE
    sidecar = LedgerSidecar(path)
    sidecar.write(state(1.0), step=1, now_s=0.0, background=True)  # fails on its thread
    with pytest.raises(WriteFailed) as failed:
        sidecar.write(state(2.0), step=2, now_s=1.0, background=False)
    assert failed.value.path == str(path)
    assert "No space left on device" in str(failed.value)


def test_an_error_that_is_no_write_fault_costs_a_warning_not_the_run(tmp_path, caplog):
    (tmp_path / "a_file").write_text("")
    sidecar = LedgerSidecar(tmp_path / "a_file" / LEDGER_FILE)  # its directory is a file
    with caplog.at_level(logging.WARNING, logger="frugal.callbacks.sidecar"):
        sidecar.write(state(1.0), step=1, now_s=0.0, background=False)
    assert "could not write" in caplog.text
