"""What `frugal-train` prints: each log line once, and no progress bar when stdout is not a
terminal (a log line per tenth of the run instead)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from frugal.callbacks.progress import BudgetProgressBar, ProgressLog, progress_callback
from frugal.core.errors import ConfigError


def test_auto_draws_a_bar_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert isinstance(progress_callback("auto", 50), BudgetProgressBar)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert isinstance(progress_callback("auto", 50), ProgressLog)
    assert isinstance(progress_callback("bar", 50), BudgetProgressBar)


def test_an_unknown_progress_mode_is_bad_input():
    with pytest.raises(ConfigError, match="progress='fancy': expected one of auto, bar, log"):
        progress_callback("fancy", 50)


def test_a_piped_run_prints_each_line_once_and_no_bar(tmp_path):
    command = [
        sys.executable,
        "-m",
        "frugal.train",
        "data=synthetic",
        "model=mlp_tiny",
        "trainer.max_steps=50",
        "energy.backend=none",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    env = {key: value for key, value in os.environ.items() if key != "FRUGAL_DEBUG"}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout + done.stderr
    assert printed.count("GPU available") == 1  # Lightning's own line
    assert len(re.findall(r"plan: \d+ steps", printed)) == 1  # frugal's
    assert "it/s" not in printed and "\r" not in printed  # no bar
    progress = re.findall(r"step (\d+)/50: loss", printed)
    assert progress[-1] == "50" and 5 <= len(progress) <= 11
    assert len(printed) < 20_000
