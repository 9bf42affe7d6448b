"""Shared fixtures: compose the real Hydra config into a temporary run directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
# Tiny, fast and quiet: synthetic data, a small MLP, no energy meter unless a test asks.
TINY = [
    "data=synthetic",
    "model=mlp_tiny",
    "trainer.max_steps=30",
    "trainer.check_val_every_n_epoch=1",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "energy.backend=none",
    "threads=1",
]


def compose_cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path)
        cfg.paths.root_dir = str(tmp_path)
        cfg.paths.cache_dir = str(tmp_path / "cache")
    HydraConfig().set_config(cfg)
    return cfg


@pytest.fixture
def run_train(tmp_path: Path) -> Callable[..., tuple[dict[str, Any], dict[str, Any]]]:
    """Run `frugal.train.train` on the tiny config plus overrides; returns (result, objects)."""
    from frugal.train import train

    def run(*overrides: str, out: Path | None = None, **kwargs: Any):
        cfg = compose_cfg(out or tmp_path, *overrides)
        return train(cfg, **kwargs)

    return run


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    os.environ.pop("FRUGAL_DEBUG", None)


def train_argv(*args: str) -> list[str]:
    """The command line of `frugal-train <args>` in this interpreter."""
    return [sys.executable, "-m", "frugal.train", *args]


def run_trained(
    *args: str, cwd: Path, timeout_s: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`frugal-train <args>` run to its end, stdout and stderr captured apart."""
    return subprocess.run(
        train_argv(*args), capture_output=True, text=True, timeout=timeout_s, cwd=cwd, env=env
    )


def spawn_train(*args: str, cwd: Path) -> subprocess.Popen:
    """`python -m frugal.train <args>` in its own process group (a signal to the group reaches
    it as a terminal's Ctrl-C or a scheduler's kill would), output merged."""
    return subprocess.Popen(
        train_argv(*args),
        cwd=cwd,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen, timeout_s: float = 120, what: str = ""
) -> None:
    """Poll `ready` while `process` runs; fails with its output if it ends first."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(
                f"ended ({process.returncode}) before {what or 'ready'}: "
                f"{(out or err or '')[-3000:]}"
            )
        assert time.monotonic() < deadline, f"{what or 'ready'}: not within {timeout_s} s"
        time.sleep(0.05)
