"""kill -9 mid-run, then resume: what was spent after the last checkpoint stays spent, because
the ledger is also kept beside the run (`ledger.json`, rewritten at every re-plan)."""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import run_main

from frugal.callbacks.sidecar import SIDECAR_EVERY_S

TINY = [
    "data=synthetic",
    "model=mlp_tiny",
    "energy.backend=none",
    "inference.enabled=false",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "trainer.check_val_every_n_epoch=5",
    "threads=1",
]
BUDGET = ["budget.data=64000", "trainer.max_steps=100000"]  # 2,000 steps of 32 samples


def args(run_dir: Path, *overrides: str) -> list[str]:
    return [f"hydra.run.dir={run_dir}", *TINY, *overrides]


def command(run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "frugal.train", *args(run_dir, *overrides)]


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_spending_survives_kill_9_and_the_resumed_run_stays_within_the_budget(tmp_path, seed):
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(
        command(run_dir, *BUDGET), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not (last.is_file() and (run_dir / "ledger.json").is_file()):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(random.Random(seed).uniform(0.2, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (run_dir / "result.json").exists()  # killed: no chance to write it
    sidecar = json.loads((run_dir / "ledger.json").read_text())
    at_kill = sidecar["spent"]["data_samples"]
    ckpt_step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]

    # resumed in this process: the kill is what needs a process of its own
    resumed = run_main(args(run_dir, *BUDGET, f"ckpt_path={last}"), cwd=tmp_path)
    assert resumed.code == 0, resumed.said
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "budget_exhausted" and result["stopped_by"] == "data"
    # The books continue from the larger of checkpoint and sidecar: everything the sidecar saw
    # is charged, so the steps redone after the checkpoint are not spent twice from the budget.
    assert at_kill <= result["spent"]["data_samples"] <= 64000
    # All samples really trained on: the killed process's (up to its last sidecar write, plus
    # what it could not book since: at most one re-plan interval of 10 steps or
    # SIDECAR_EVERY_S of steps, whichever is more) and the resumed process's (from the
    # checkpoint's step on). Within the budget plus that one interval.
    steps_per_s = sidecar["step"] / sidecar["spent"]["time_s"]
    unbooked_steps = max(10, math.ceil(SIDECAR_EVERY_S * steps_per_s) + 10)
    trained = 32 * (sidecar["step"] + unbooked_steps + result["steps"] - ckpt_step)
    assert trained <= 64000 + 32 * unbooked_steps
    assert at_kill > 32 * ckpt_step or sidecar["step"] == ckpt_step  # the sidecar was newer
