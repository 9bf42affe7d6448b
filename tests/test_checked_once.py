"""A run's configuration is checked once per process: `frugal-train` hands what its command
line check passed to the runs Hydra starts; `train(cfg)` from a script checks it itself; what a
size search or an envelope derives from it is checked only where it differs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import TINY, compose_cfg, run_main

import frugal.command_line as command_line
import frugal.pipeline as pipeline
from frugal.core.errors import ConfigError
from frugal.runs.preflight import check_config


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How often the whole configuration is checked (`check_config`) by the command line and
    by the pipeline, and how often a derived one is (`check_derived`)."""
    counted: Counter = Counter()

    def count(module: object, name: str, label: str) -> None:
        real = getattr(module, name)

        def counting(*args, **kwargs):
            counted[label] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)

    count(command_line, "check_config", "command line")
    count(pipeline, "check_config", "run")
    count(pipeline, "check_derived", "derived")
    return counted


def test_frugal_train_checks_the_configuration_once(tmp_path: Path, checks: Counter) -> None:
    ran = run_main([*TINY, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert ran.code == 0, ran.said
    assert checks == {"command line": 1}  # the run was handed what the command line checked
    assert (tmp_path / "run" / "result.json").is_file()


def test_each_job_of_a_sweep_is_checked_once(tmp_path: Path, checks: Counter) -> None:
    ran = run_main(["-m", *TINY, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert ran.code == 0, ran.said
    assert checks == {"command line": 2}  # each job found its own check: none ran twice
    assert all((tmp_path / "sweep" / job / "result.json").is_file() for job in ("0", "1"))


def test_bad_input_is_still_refused_before_anything_is_written(
    tmp_path: Path, checks: Counter
) -> None:
    ran = run_main([*TINY, "budget.energy=lots", f"hydra.run.dir={tmp_path / 'run'}"])
    assert ran.code == 2
    assert ran.err.count("\n") == 1 and "budget.energy='lots'" in ran.err
    assert not (tmp_path / "run").exists() and checks == {"command line": 1}


def test_train_from_a_script_checks_once(tmp_path: Path, checks: Counter) -> None:
    result, _ = pipeline.train(compose_cfg(tmp_path))
    assert result["status"] == "completed"
    assert checks == {"run": 1}


def test_a_configuration_handed_down_checked_is_not_checked_again(
    tmp_path: Path, checks: Counter
) -> None:
    cfg = compose_cfg(tmp_path, "budget.compute=1e6")
    checked = check_config(cfg)
    result, _ = pipeline.train(cfg, checked=checked)
    assert checks == {}
    assert result["budget"]["compute_flop"] == 1e6 == checked.budget.compute_flop


def test_a_size_search_checks_each_pilot_only_for_its_budget(
    tmp_path: Path, checks: Counter
) -> None:
    search = [
        "model=mlp",
        "model.kwargs.width_mult=auto",
        "size_search.width_mult=[0.1,0.2]",
        "trainer.max_steps=100000",
        "budget.compute=6e7",
    ]
    result, _ = pipeline.train(compose_cfg(tmp_path, *search))
    assert checks == {"run": 1, "derived": 3}  # the search; each of 2 pilots and the final run
    pilots = result["size_search"]["candidates"]
    assert [p["spent"]["compute_flop"] <= 0.1 * 6e7 for p in pilots] == [True, True]
    assert result["spent"]["compute_flop"] <= 6e7  # each part held to the budget it was given


def test_every_size_of_a_ladder_is_still_checked_up_front(tmp_path: Path) -> None:
    # the last size alone does not fit in this machine's memory: refused before any pilot
    cfg = compose_cfg(
        tmp_path,
        "model=mlp",
        "model.kwargs.width_mult=auto",
        "size_search.width_mult=[0.1,0.2,1e4]",
        "budget.compute=3e8",
    )
    with pytest.raises(ConfigError, match=r"^model\.kwargs\.width_mult=10000\.0: the model"):
        check_config(cfg)
    assert not (tmp_path / "pilots").exists()
