"""No exit without a record: a write that fails ends `write_failed` (exit 7, one line naming the
path and the errno, `result.json` written where there is room, the previous checkpoint intact),
and a signal at any moment after the command line is accepted ends `interrupted` with its
record — during set-up too.

The write faults are real: a small tmpfs mounted for the test (skipped, with the reason, where
the runner cannot mount one), filled by the run's own checkpoints or by a file mid-training.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import run_main, run_trained, spawn_train, wait_until

import frugal.pipeline
from frugal.core.status import (
    EXIT_WRITE_FAILED,
    FINAL_STATUSES,
    RESUMABLE_STATUSES,
    Status,
    exit_code,
)
from frugal.runs.checkpoint import load_checkpoint
from frugal.runs.record import LAST_CKPT
from frugal.runs.signals import StopSignals
from frugal.runs.stop_record import BUILDING_DATA, BUILDING_MODEL, BUILDING_TRAINER, STARTING
from frugal.runs.write_faults import WriteFailed, write_failure, writing

MIB = 1 << 20
# wide_cnn: 408k parameters, a 4.7 MiB checkpoint (weights and AdamW's two moments); validated,
# and so checkpointed (best.ckpt, then last.ckpt), every 10 steps.
WIDE = [
    "model=wide_cnn",
    "trainer.check_val_every_n_epoch=null",
    "+trainer.val_check_interval=10",
    "energy.backend=none",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "inference.enabled=false",
    "threads=1",
]
TINY_LONG = [  # long enough that a signal lands before training ends
    "data=synthetic",
    "model=mlp_tiny",
    "trainer.max_steps=200000",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "energy.backend=none",
    "threads=1",
]
SETUP_PHASES = (STARTING, BUILDING_TRAINER, BUILDING_DATA, BUILDING_MODEL)
NO_SPACE = r"\[Errno 28\] No space left on device"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a tmpfs of the given size under tmp_path; unmounted after the test."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"tmpfs{len(mounted)}"
        where.mkdir()
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except OSError as err:
            pytest.skip(f"cannot mount a tmpfs here: {err}")
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def remount(where: Path, options: str) -> None:
    done = subprocess.run(
        ["mount", "-o", f"remount,{options}", str(where)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def frugal_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("frugal-train:")]


def leftovers(run: Path) -> list[Path]:
    """Temporary files a failed write left behind (an atomic write removes its own)."""
    return [p for p in run.rglob("*") if p.is_file() and (".tmp" in p.name or "~" in p.name)]


# ---- the status and its classification --------------------------------------------------------
def test_write_failed_is_one_status_of_the_enum_with_exit_7():
    assert Status("write_failed") is Status.WRITE_FAILED
    assert exit_code("write_failed") == EXIT_WRITE_FAILED == 7
    assert Status.WRITE_FAILED in RESUMABLE_STATUSES and Status.WRITE_FAILED not in FINAL_STATUSES
    assert frozenset(Status) == FINAL_STATUSES | RESUMABLE_STATUSES


def test_write_faults_name_the_path_and_other_errors_pass(tmp_path):
    full = OSError(28, "No space left on device")  # what a failed write() raises: no file named
    failed = write_failure(full, tmp_path / "curve.csv")
    assert str(failed) == f"{tmp_path / 'curve.csv'}: [Errno 28] No space left on device"
    moved = OSError(28, "No space left on device", "/tmp/x", None, "/run/last.ckpt")
    assert write_failure(moved).path == "/run/last.ckpt"  # a move names its destination
    temporary = OSError(30, "Read-only file system", "/run/checkpoints/.last.ckpt.k2j_9x1a.tmp")
    assert write_failure(temporary).path == "/run/checkpoints/last.ckpt"  # an atomic write's
    assert write_failure(full, fallback="/run").path == "/run"
    assert write_failure(FileNotFoundError(2, "No such file")) is None
    wrapped = RuntimeError("file write failed")
    wrapped.__cause__ = PermissionError(13, "Permission denied")
    assert write_failure(wrapped, "/run/x").errno == 13
    with pytest.raises(FileNotFoundError), writing(tmp_path / "x"):
        raise FileNotFoundError(2, "No such file")
    with pytest.raises(WriteFailed, match=NO_SPACE), writing(tmp_path / "x"):
        raise full


# ---- a full disk -----------------------------------------------------------------------------
def test_a_full_disk_at_the_first_checkpoint_ends_write_failed_with_its_record(tmpfs, tmp_path):
    run = tmpfs("2m") / "run"  # the set-up's small files fit; no checkpoint does
    done = run_main([*WIDE, "trainer.max_steps=30", f"hydra.run.dir={run}"], cwd=tmp_path)
    assert done.code == 7, done.said
    assert "Traceback" not in done.err
    (line,) = frugal_lines(done.err)
    assert re.fullmatch(
        rf"frugal-train: write_failed: {re.escape(str(run))}/checkpoints/\w+\.ckpt: {NO_SPACE}",
        line,
    )
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "write_failed" and f"write_failed: {result['message']}" in line
    assert result["steps"] == 10 and result["spent"]["data_samples"] > 0
    params = result["model"]["params"]
    assert params * 4 * 3 > 2 * MIB  # weights and two optimizer moments: more than the disk
    assert not list((run / "checkpoints").glob("*.ckpt")), "no truncated checkpoint"
    assert not leftovers(run)


def fill_after_the_first_checkpoints(disk: Path, tmp_path: Path) -> tuple[Path, dict]:
    """A run whose second checkpoints find the disk full: (its directory, its result)."""
    run = disk / "run"  # 12 MiB: two checkpoints fit (best, last at step 10); a third, never
    done = run_main([*WIDE, "trainer.max_steps=30", f"hydra.run.dir={run}"], cwd=tmp_path)
    assert done.code == 7, done.said
    assert "Traceback" not in done.err
    (line,) = frugal_lines(done.err)
    assert re.fullmatch(
        rf"frugal-train: write_failed: {re.escape(str(run))}/checkpoints/\w+\.ckpt: {NO_SPACE}",
        line,
    )
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "write_failed" and result["steps"] == 20
    last = run / LAST_CKPT
    size = last.stat().st_size
    assert size > 2 * MIB and 2 * size < 12 * MIB < 3 * size  # the sizes the test relies on
    load_checkpoint(last)  # complete, and one frugal-train wrote: what resume= checks
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 10
    assert not leftovers(run)
    return run, result


def test_a_full_disk_keeps_the_previous_checkpoint_whole(tmpfs, tmp_path):
    fill_after_the_first_checkpoints(tmpfs("12m"), tmp_path)


@pytest.mark.slow  # ~30 s; the checkpoint resume= takes is checked by default above
def test_after_a_full_disk_resume_finishes_the_run_from_its_previous_checkpoint(tmpfs, tmp_path):
    disk = tmpfs("12m")
    run, result = fill_after_the_first_checkpoints(disk, tmp_path)
    remount(disk, "size=64m")  # room again: the run continues from its intact checkpoint
    again = run_trained(f"resume={run}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = json.loads((run / "result.json").read_text())
    assert resumed["status"] == "completed" and resumed["steps"] == 30
    assert resumed["spent"]["data_samples"] > result["spent"]["data_samples"]


class FillTheDisk(L.Callback):
    """Fills the run's file system mid-training (a real ENOSPC for whatever writes next), and
    frees it once the run has stopped on the fault, so the record can still be written."""

    def __init__(self, disk: Path, step: int):
        self.disk, self.step = disk, step
        self.filler = disk / "filler"

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            free = os.statvfs(self.disk)
            with open(self.filler, "wb") as handle:
                os.posix_fallocate(handle.fileno(), 0, free.f_bavail * free.f_frsize)

    def on_exception(self, trainer, pl_module, exception):
        self.filler.unlink()


def test_a_ledger_write_failing_on_its_thread_ends_the_run_on_the_main_thread(tmpfs, run_train):
    disk = tmpfs("4m")
    # no validation before the end: the first write after the disk fills is ledger.json's, on
    # the sidecar writer's thread; its failure reaches the training thread at the next write
    result, _ = run_train(
        "trainer.max_steps=5000",
        "trainer.check_val_every_n_epoch=1000",
        callbacks=[FillTheDisk(disk, 5)],
        out=disk,
    )
    assert result["status"] == "write_failed"
    assert result["message"] == f"{disk / 'ledger.json'}: [Errno 28] No space left on device"
    assert 5 < result["steps"] < 5000  # stopped by the fault, not at the horizon
    assert "test/acc" not in result["metrics"]  # an unrecorded run is not tested
    assert json.loads((disk / "result.json").read_text())["message"] == result["message"]


# ---- a signal during set-up --------------------------------------------------------------------
def raise_after(monkeypatch: pytest.MonkeyPatch, name: str, signum: int = signal.SIGTERM) -> None:
    """Deliver a real signal to this process as soon as the pipeline's `name` returns."""
    real = getattr(frugal.pipeline, name)

    def built(*args, **kwargs):
        made = real(*args, **kwargs)
        signal.raise_signal(signum)
        return made

    monkeypatch.setattr(frugal.pipeline, name, built)


@pytest.fixture
def signals() -> Iterator[StopSignals]:
    """What frugal-train installs once its command line is accepted."""
    noted = StopSignals()
    noted.install()
    yield noted
    noted.restore()


@pytest.mark.parametrize(
    ("where", "phase"),
    [
        (None, BUILDING_TRAINER),
        ("build_datamodule", BUILDING_DATA),
        ("build_model", BUILDING_MODEL),
    ],
)
def test_a_signal_in_each_set_up_phase_ends_interrupted_at_step_0(
    where, phase, signals, run_train, tmp_path, monkeypatch
):
    if where is None:
        signal.raise_signal(signal.SIGTERM)  # before the run: since the command line
    else:
        raise_after(monkeypatch, where)
    result, objects = run_train(signals=signals)
    assert signals.received == signal.SIGTERM
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert result["status"] == "interrupted" and result["steps"] == 0
    assert result["message"] == (
        f"SIGTERM received during set-up ({phase}); stopped before training at step 0"
    )
    assert result["spent"]["data_samples"] == 0 and result["spent"]["compute_flop"] == 0
    assert result["spent"]["time_s"] is None and result["spent"]["energy_j"] is None  # unknown
    assert result["budget"] == objects["budget"].spec.limits()
    assert (result["data"] is not None) == (phase != BUILDING_TRAINER)
    assert (result["model"]["params"] is not None) == (phase == BUILDING_MODEL)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "curve.csv").exists()
    assert exit_code(result["status"], signum=signals.received) == 143


def test_a_signal_as_fit_starts_stops_before_the_first_step_resumably(signals, run_train, tmp_path):
    class SignalAtFitStart(L.Callback):
        def on_fit_start(self, trainer, pl_module):
            signal.raise_signal(signal.SIGINT)

    result, _ = run_train("trainer.max_steps=1000", signals=signals, callbacks=[SignalAtFitStart()])
    assert result["status"] == "interrupted" and result["steps"] == 0  # before its first step
    assert "SIGINT" in result["message"]
    load_checkpoint(tmp_path / LAST_CKPT)


class SignalAt(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            signal.raise_signal(signal.SIGTERM)


def test_a_resume_interrupted_in_set_up_keeps_what_the_run_recorded(
    signals, run_train, tmp_path, monkeypatch
):
    first, _ = run_train("trainer.max_steps=100", callbacks=[SignalAt(9)])  # its own signals
    assert first["status"] == "interrupted" and first["steps"] == 9
    raise_after(monkeypatch, "build_datamodule")
    again, _ = run_train(f"ckpt_path={tmp_path / LAST_CKPT}", signals=signals)
    assert again["status"] == "interrupted" and again["steps"] == 9
    assert again["message"] == (
        f"SIGTERM received during set-up ({BUILDING_DATA}); stopped before training at step 9"
    )
    measured = {key: value for key, value in first["spent"].items() if value is not None}
    assert measured and {key: again["spent"][key] for key in measured} == pytest.approx(measured)
    assert json.loads((tmp_path / "result.json").read_text()) == json.loads(json.dumps(again))


def test_a_finished_run_resumed_and_interrupted_in_set_up_keeps_its_record(
    signals, run_train, tmp_path, monkeypatch
):
    first, _ = run_train("trainer.max_steps=30")
    recorded = (tmp_path / "result.json").read_text()
    raise_after(monkeypatch, "build_model")
    again, _ = run_train(
        "trainer.max_steps=60", f"ckpt_path={tmp_path / LAST_CKPT}", signals=signals
    )
    assert again["status"] == "interrupted" and again["steps"] == 30  # exit 143, this line
    assert again["message"].endswith("; result.json left as it was (completed)")
    assert (tmp_path / "result.json").read_text() == recorded  # the run is as it recorded
    assert first["status"] == "completed"


def signalled_run(tmp_path: Path, delay_s: float, *extra: str) -> tuple[int, str, Path]:
    """Start frugal-train, wait until it accepted its command line (Hydra made its run
    directory), then `delay_s` more, and SIGTERM its process group. (exit, output, run dir)"""
    run = tmp_path / f"run-after-{delay_s:.2f}s"  # the moment is in the failure's paths
    process = spawn_train(*TINY_LONG, *extra, f"hydra.run.dir={run}", cwd=tmp_path)
    wait_until(lambda: (run / ".hydra").is_dir(), process, what="the run directory")
    time.sleep(delay_s)
    os.killpg(process.pid, signal.SIGTERM)
    out = process.communicate(timeout=120)[0]
    return process.returncode, out, run


def assert_recorded_interrupt(code: int, out: str, run: Path) -> None:
    """Exit 143, `interrupted` on record: at step 0 naming a set-up phase, or at a later step
    with a checkpoint resume= accepts."""
    assert code == 143, out[-3000:]
    assert "Traceback" not in out
    assert (run / "result.json").is_file(), f"{run.name}: no record; {sorted(os.listdir(run))}"
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "interrupted" and "SIGTERM" in result["message"]
    if result["steps"] == 0:
        phase = re.search(r"during set-up \((.+?)\)", result["message"])
        assert phase and phase[1] in SETUP_PHASES, result["message"]
        assert result["spent"]["data_samples"] == 0
    else:
        load_checkpoint(run / LAST_CKPT)
    assert f"frugal-train: interrupted: {result['message']}" in out


def test_sigterm_at_a_random_moment_of_set_up_leaves_an_interrupted_record(tmp_path):
    # from Hydra's start to the first steps (set-up takes about 2 to 5 s after it here)
    assert_recorded_interrupt(*signalled_run(tmp_path, random.Random().uniform(0.0, 4.0)))


@pytest.mark.slow  # ~2 min: eight more random moments
@pytest.mark.parametrize("trial", range(8))
def test_sigterm_at_random_moments_always_leaves_an_interrupted_record(tmp_path, trial):
    assert_recorded_interrupt(*signalled_run(tmp_path, random.Random().uniform(0.0, 5.0)))


@pytest.mark.slow  # ~20 s
def test_a_signal_ends_a_sweep_with_the_current_job_recorded(tmp_path):
    sweep = tmp_path / "sweep"
    args = [*TINY_LONG[:2], *TINY_LONG[3:], "trainer.max_steps=20,200000,20"]
    process = spawn_train("-m", *args, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    wait_until(lambda: (sweep / "1" / ".hydra").is_dir(), process, what="the second job")
    time.sleep(random.Random().uniform(0.0, 3.0))
    os.killpg(process.pid, signal.SIGTERM)
    out = process.communicate(timeout=120)[0]
    assert process.returncode == 143, out[-3000:]
    assert json.loads((sweep / "0" / "result.json").read_text())["status"] == "completed"
    assert json.loads((sweep / "1" / "result.json").read_text())["status"] == "interrupted"
    assert not (sweep / "2").exists()
