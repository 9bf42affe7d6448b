"""frugal-report on a real Hydra multirun: two tiny budgeted runs, each with its own directory
and ledger, plus a malformed run directory that must be listed as skipped, not crash the report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import run_main

from frugal.report.cli import main

MODELS = ("mlp_tiny", "logreg")
STEPS = 12
BATCH = 32  # conf/data/synthetic.yaml


@pytest.fixture(scope="module")
def multirun(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`frugal-train -m model=mlp_tiny,logreg ...` (in this process) into a temporary sweep
    dir."""
    sweep = tmp_path_factory.mktemp("multirun")
    argv = [
        "-m",
        f"model={','.join(MODELS)}",
        "data=synthetic",
        f"budget.data={STEPS * BATCH}",  # the budget, not max_steps, ends each run
        "trainer.check_val_every_n_epoch=1",
        "trainer.enable_progress_bar=false",
        "logger=none",
        "energy.backend=none",
        "inference.enabled=false",
        "threads=1",
        f"hydra.sweep.dir={sweep}",
        f"paths.cache_dir={sweep / 'cache'}",
    ]
    done = run_main(argv, cwd=sweep)
    assert done.code == 0, done.said
    broken = sweep / "2"
    broken.mkdir()
    (broken / "result.json").write_text('{"status": "completed", "spent": ')  # cut short
    return sweep


def test_each_job_has_its_own_dir_and_ledger(multirun):
    for job, model in enumerate(MODELS):
        result = json.loads((multirun / str(job) / "result.json").read_text())
        assert result["model"]["name"] == model
        assert result["status"] == "budget_exhausted" and result["stopped_by"] == "data"
        assert result["steps"] == STEPS
        assert result["spent"]["data_samples"] == STEPS * BATCH  # not the sum over jobs
        assert (multirun / str(job) / "curve.csv").is_file()


def test_report_reads_the_multirun_dir_as_is(multirun, tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(multirun), "-o", str(out)]) == 0
    assert "2 runs, 1 skipped" in capsys.readouterr().out
    for name in ("report.md", "runs.csv", "pareto.png", "curves.png"):
        assert (out / name).stat().st_size > 0
    with (out / "runs.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert sorted(row["model"] for row in rows) == sorted(MODELS)
    assert all(row["status"] == "budget_exhausted" for row in rows)
    assert all(row["energy_j"] == "" for row in rows)  # energy.backend=none: unknown, not 0
    assert any(row["on_flop_frontier"] == "true" for row in rows)
    report = (out / "report.md").read_text()
    skipped = report.split("## Skipped", 1)[1]
    assert f"`{multirun / '2'}`: result.json: invalid JSON" in skipped
    assert all(f"model={model}" in report for model in MODELS)
