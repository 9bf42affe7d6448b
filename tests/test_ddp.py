"""Two CPU ranks over gloo, run as a user runs them: budgets agreed, signals to either rank."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import run_trained, train_argv

TINY = [
    "data=synthetic",
    "model=mlp_tiny",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "threads=1",
    "inference.enabled=false",
    "trainer=ddp",
    "trainer.devices=2",
]


def command(run_dir: Path, *overrides: str) -> list[str]:
    return [f"hydra.run.dir={run_dir}", *TINY, *overrides]


def test_energy_and_time_budgets_stop_both_ranks_on_the_same_step(tmp_path):
    # The power model on this machine: each rank meters its own processes, ranks sum.
    # (the run's own energy is ~3 J/s here: 6 J binds before the 4 s, whose stop a loaded
    # machine may pass by a step's variation, as README's precision table allows for time)
    budgets = ("budget.energy=6J", "budget.time=4s", "trainer.max_steps=100000")
    done = run_trained(*command(tmp_path, *budgets), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "budget_exhausted" and result["stopped_by"] in ("energy", "time")
    energy, spent = result["energy"], result["spent"]
    assert energy["precision"] == "per-step counter"  # read on every step: no polling allowance
    assert spent["energy_j"] <= 6 and spent["time_s"] <= 4
    # Two ranks on two cores use at most two cores' CPU time: rank 0, which started rank 1 as
    # its child, does not count rank 1's processes again (that would reach up to three).
    watts = energy["backends"][0]["cpu_watts_per_core"]
    assert spent["energy_j"] <= 2.2 * watts * spent["time_s"] + 1.0
    assert spent["machine_energy_j"] >= 0.5 * spent["energy_j"]  # one figure for the machine
    # Ranks that disagreed on the step would hang in DDP's gradient all-reduce; samples are
    # summed over both ranks: two batches of 32 a step.
    assert result["spent"]["data_samples"] == 64 * result["steps"]


def rank_one(parent: psutil.Process, timeout_s: float = 60) -> psutil.Process:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in parent.children(recursive=True):
            try:
                if "train_ddp_process_1" in " ".join(child.cmdline()):
                    return child
            except psutil.Error:  # a short-lived helper process that already ended
                continue
        time.sleep(0.2)
    raise AssertionError("rank 1 never started")


@pytest.mark.parametrize("rank", [pytest.param(0, marks=pytest.mark.slow), 1])
def test_sigterm_to_either_rank_stops_both_resumably(tmp_path, rank):
    # 469 steps of 2 x 32 samples (~3 s here): the signal lands within the first 1.5 s
    budget = ["budget.data=30000", "trainer.max_steps=100000"]
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        train_argv(*command(run_dir, *budget)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        other = rank_one(psutil.Process(proc.pid))
        deadline = time.monotonic() + 120
        while not (run_dir / "ledger.json").exists():  # training has begun on both ranks
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        time.sleep(random.uniform(0.0, 1.0))
        target = proc.pid if rank == 0 else other.pid
        os.kill(target, signal.SIGTERM)
        sent = time.monotonic()
        code = proc.wait(timeout=60)
        assert time.monotonic() - sent < 10, "ranks took more than 10 s to stop"
        other.wait(timeout=10)
    finally:
        for process in (proc,):
            if process.poll() is None:
                process.kill()
    assert code == 128 + signal.SIGTERM, proc.stderr.read()[-3000:] if proc.stderr else ""
    killed = json.loads((run_dir / "result.json").read_text())
    assert killed["status"] == "interrupted" and "SIGTERM" in killed["message"]
    assert killed["spent"]["data_samples"] == 64 * killed["steps"]
    if rank == 0:
        return  # one resume is enough to show the budget carries over
    last = run_dir / "checkpoints" / "last.ckpt"
    # resuming a run continues it
    resumed = run_trained(*command(run_dir, *budget, f"ckpt_path={last}"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "budget_exhausted"
    assert 30000 - 64 < result["spent"]["data_samples"] <= 30000
