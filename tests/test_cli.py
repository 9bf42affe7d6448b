"""The command line as a user runs it: bad input, DDP ranks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TINY = [
    "data=synthetic",
    "model=mlp_tiny",
    "energy.backend=none",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "threads=1",
]


def frugal_train(tmp_path: Path, *overrides: str, timeout_s: float = 120):
    cmd = [sys.executable, "-m", "frugal.train", f"hydra.run.dir={tmp_path}", *TINY, *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=tmp_path)


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ("budget.energy=-5J", "budget.energy='-5J'"),
        ("budget.energy=5GB", "budget.energy='5GB'"),
        ("budget.compute=lots", "budget.compute='lots'"),
        ("budget.memory=0", "budget.memory=0"),
        ("budget.oops=5", "budget.oops"),
        ("+budget.oops=5", "budget.oops"),
        ("budget.on_exceed=explode", "budget.on_exceed='explode'"),
        ("budget.plan=maybe", "budget.plan='maybe'"),
    ],
)
def test_bad_budget_exits_2_with_one_line(tmp_path, override, names):
    done = frugal_train(tmp_path, override)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("frugal-train: ") and names in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "result.json").exists()


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["budget.data=1k", "+trainer.min_steps=5"], "trainer.min_steps=5"),
        (["energy.backend=abacus"], "energy.backend='abacus'"),
        (["budget.energy=1kJ", "energy.backend=none"], "energy.backend='none'"),
        (["model.name=resnet9000"], "model.name='resnet9000'"),
    ],
)
def test_bad_config_exits_2_before_data_or_model(tmp_path, overrides, names):
    done = frugal_train(tmp_path, *overrides)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], done.stderr
    assert not (tmp_path / "result.json").exists()


def test_refused_run_exits_non_zero_with_one_line_and_a_result(tmp_path):
    done = frugal_train(tmp_path, "model=cnn", "budget.params=1000", "budget.plan=refuse")
    assert done.returncode == 1
    assert "refused" in done.stderr and "budget.params is 1000" in done.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "refused" and result["steps"] == 0


def test_two_cpu_ranks_stop_together_and_sum_their_samples(tmp_path):
    done = frugal_train(
        tmp_path,
        "trainer=ddp",
        "trainer.devices=2",
        "budget.data=300",
        "trainer.max_steps=100",
        "budget.plan=off",
        timeout_s=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["status"], result["stopped_by"]) == ("budget_exhausted", "data")
    # 2 ranks × 32 samples a step: 4 steps = 256 ≤ 300 < 320
    assert result["spent"]["data_samples"] == 256 and result["steps"] == 4


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["budget.compute=1GFLOP,2GFLOP"], None),
        (["budget.data=range(100,300,100)"], None),
        (["budget.energy=interval(1,2)"], None),  # Optuna's continuous range: left to Hydra
        (["budget.compute=1GFLOP,-2"], "budget.compute=-2"),
        (["budget.energy=choice(1kJ,5GB)"], "budget.energy='5GB'"),
        (["+budget.oops=1"], "budget.oops: unknown budget key"),
    ],
)
def test_budget_sweeps_are_checked_element_by_element(argv, error):
    from frugal.budget.spec import ConfigError
    from frugal.train import precheck_argv

    if error is None:
        precheck_argv(argv)
        return
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace("+", r"\+")):
        precheck_argv(argv)
