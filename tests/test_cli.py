"""The command line as a user runs it: help, bad input, exit statuses, sweeps, DDP ranks.

Bad input across every group is the corpus in test_config_corpus.py; here, what the command
line itself does around it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import check_command, run_main, run_trained

from frugal.command_line import check_command_line
from frugal.core.errors import ConfigError
from frugal.train import CONF_DIR

TINY = [
    "data=synthetic",
    "model=mlp_tiny",
    "energy.backend=none",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "threads=1",
]


def frugal_train(tmp_path: Path, *overrides: str, timeout_s: float = 120, env=None):
    args = (f"hydra.run.dir={tmp_path}", *TINY, *overrides)
    return run_trained(*args, cwd=tmp_path, timeout_s=timeout_s, env=env)


def main_in_process(argv: list[str], monkeypatch, capsys) -> tuple[int | None, str, str]:
    """(exit status, stdout, stderr) of `frugal-train argv`, without Hydra's job: it would
    train (an accepted command line returns None)."""
    return check_command(argv, monkeypatch, capsys)


def test_help_lists_groups_budget_units_and_exit_statuses(monkeypatch, capsys):
    code, out, _ = main_in_process(["--help"], monkeypatch, capsys)
    assert code is None
    for text in ("budget.energy", "joules", "2kJ", "budget.memory", "bytes", "budget.on_exceed"):
        assert text in out
    for group in ("data:", "model:", "optimizer:", "scheduler:", "trainer:", "logger:"):
        assert group in out
    assert "mnist1d*" in out and "cnn*" in out  # defaults marked
    assert "2 bad input" in out and "4 refused" in out and "143 SIGTERM" in out


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["budget.energy=-5J"], "budget.energy='-5J'"),
        (["budget.compute=lots"], "budget.compute='lots'"),
        (["budget.memory=0"], "budget.memory=0"),
        (["budget.oops=5"], "budget.oops"),
        (["+budget.oops=5"], "budget.oops"),
        (["budget.data=1k", "+trainer.min_steps=5"], "trainer.min_steps=5"),
        (["energy.backend=abacus"], "energy.backend='abacus'"),
        (["budget.energy=1kJ", "energy.backend=none"], "energy.backend='none'"),
        (["model.name=resnet9000"], "model.name='resnet9000'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(overrides, names, tmp_path, monkeypatch, capsys):
    argv = [f"hydra.run.dir={tmp_path / 'run'}", *TINY, *overrides]
    code, _, err = main_in_process(argv, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("frugal-train: ") and names in lines[0]
    assert not (tmp_path / "run").exists()  # not even .hydra/


def test_frugal_debug_shows_the_traceback_for_budget_keys_too(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FRUGAL_DEBUG", "1")
    code, _, err = main_in_process([*TINY, "budget.energy=5GB"], monkeypatch, capsys)
    assert code == 2
    assert "Traceback" in err and "ConfigError" in err
    assert err.strip().splitlines()[-1].startswith("frugal-train: budget.energy='5GB'")


def test_a_subprocess_answers_bad_input_fast_without_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FRUGAL_DEBUG"}
    done = frugal_train(tmp_path, "model=nonexistent", env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "model='nonexistent': no such option" in done.stderr
    assert not any(tmp_path.iterdir())


def test_hydra_flags_and_settings_still_work(tmp_path):
    done = run_main(["--cfg", "job", "model=mlp", "seed=3"], cwd=tmp_path)
    assert done.code == 0, done.err
    assert "name: mlp" in done.out and "seed: 3" in done.out
    for argv in (
        ["hydra.job.chdir=false", "hydra/job_logging=disabled"],
        ["hydra.output_subdir=null", f"hydra.run.dir={tmp_path / 'x'}"],
    ):
        check_command_line([*TINY, *argv], CONF_DIR)


def test_refused_run_exits_4_with_one_line_and_a_result(tmp_path):
    argv = [f"hydra.run.dir={tmp_path}", *TINY, "model=cnn", "budget.params=1000"]
    done = run_main([*argv, "budget.plan=refuse"], cwd=tmp_path)
    assert done.code == 4, done.said
    assert "refused" in done.err and "budget.params is 1000" in done.err
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "refused" and result["steps"] == 0


@pytest.mark.slow  # ~10 s; two CPU ranks under budgets run by default in test_ddp
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
        (
            ["budget.energy=interval(1,2)", "energy.backend=auto"],
            None,
        ),  # Optuna's continuous range: both ends
        (["model=mlp_tiny,cnn_tiny", "seed=0,1,2"], None),
        (["budget.compute=1GFLOP,-2"], "budget.compute=-2"),
        (["budget.energy=choice(1kJ,5GB)", "energy.backend=auto"], "budget.energy='5GB'"),
        (["+budget.oops=1"], "budget.oops"),
        (["seed=0,1,-1"], "seed=-1"),
        (["model=mlp_tiny,nonexistent"], "model='nonexistent'"),
        (["model.kwargs.width_mult=interval(-1.0,2.0)", "model=mlp"], "width_mult=-1.0"),
    ],
)
def test_every_element_of_a_sweep_is_checked(argv, error, tmp_path):
    argv = ["-m", f"hydra.sweep.dir={tmp_path}", *TINY, *argv]
    if error is None:
        check_command_line(argv, CONF_DIR)
        return
    with pytest.raises(ConfigError) as raised:
        check_command_line(argv, CONF_DIR)
    assert error in str(raised.value)


def test_a_sweep_grid_in_the_config_is_checked_too(tmp_path):
    """experiment=budgeted_schedules sweeps budget.compute and scheduler from its own file."""
    argv = ["-m", f"hydra.sweep.dir={tmp_path}", "experiment=budgeted_schedules"]
    check_command_line(argv, CONF_DIR)
    with pytest.raises(ConfigError, match="scheduler"):
        check_command_line([*argv, "hydra.sweeper.params.scheduler='budget_linear,nope'"], CONF_DIR)


def test_a_sweep_without_multirun_is_one_line():
    with pytest.raises(ConfigError, match="seed='0,1': a sweep needs --multirun"):
        check_command_line([*TINY, "seed=0,1"], CONF_DIR)


def test_checkpoints_sent_into_another_runs_directory_are_refused(tmp_path):
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (other / "result.json").write_text("{}")
    argv = [
        f"hydra.run.dir={tmp_path / 'new'}",
        *TINY,
        f"callbacks.model_checkpoint.dirpath={other / 'checkpoints'}",
    ]
    with pytest.raises(ConfigError, match=r"callbacks\.model_checkpoint\.dirpath"):
        check_command_line(argv, CONF_DIR)
    argv = [f"hydra.run.dir={tmp_path / 'new'}", *TINY, f"trainer.default_root_dir={other}"]
    with pytest.raises(ConfigError, match=r"trainer\.default_root_dir"):
        check_command_line(argv, CONF_DIR)


def test_a_run_directory_under_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        check_command_line([f"hydra.run.dir={tmp_path / 'file' / 'run'}", *TINY], CONF_DIR)
