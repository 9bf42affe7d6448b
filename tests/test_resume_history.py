"""A resume never loses what was recorded: `result.json` keeps every measured figure and the
loggers keep every segment's history (`csv/metrics.csv` appended, TensorBoard's event files
kept), whether the run had finished, was stopped by its budget or was interrupted.

Runs go through the command line in-process (`frugal.train.main`, as `frugal-train` would),
with a fake energy meter that every training step spends 1 J on (tests/fakes/meters.py).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import lightning as L
import pytest
from fakes.meters import FakeEnergyMeter, Work

import frugal.pipeline as pipeline
import frugal.runs.metering as metering
import frugal.train
from frugal.core.errors import ConfigError
from frugal.runs.loggers import AppendingWriter, CSVLogger, build_loggers

BATCH = 32  # data=synthetic's batch size
ARGS = [
    "data=synthetic",
    "model=mlp_tiny",
    "trainer.check_val_every_n_epoch=1",
    "+trainer.val_check_interval=4",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=2",
    "energy.backend=none",  # replaced by the fake meter below
    "inference.enabled=false",
    "threads=1",
    "logger=csv",
]
MEASURED = ("energy_j", "compute_flop", "data_samples", "time_s")
# 2-step logging on a tiny run: Lightning warns about few batches and unmonitored checkpoints
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class SignalAt(L.Callback):
    """Sends this process SIGTERM after training step `step` (frugal stops at the next one)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    """`frugal-train <args>` in-process, metered by a fake meter (1 J per step, a new meter per
    process as on a real machine), with `signal_at=` a step to be interrupted after.
    Returns the exit status."""
    meters: list[FakeEnergyMeter] = []
    extra: list[L.Callback] = []
    original = pipeline.build_callbacks

    def callbacks(*args: Any, **kwargs: Any) -> list[L.Callback]:
        meters.append(FakeEnergyMeter())
        return [*original(*args, **kwargs), Work(meters[-1], joules_per_step=1.0), *extra]

    monkeypatch.setattr(pipeline, "build_callbacks", callbacks)
    monkeypatch.setattr(metering, "build_energy_meter", lambda *a, **k: meters[-1])

    def run(*args: str, signal_at: int | None = None) -> int:
        extra[:] = [SignalAt(signal_at)] if signal_at is not None else []
        try:
            frugal.train.main([*args])
        except SystemExit as end:
            return int(end.code or 0)
        return 0

    return run


def result_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "result.json").read_text())


def metrics_rows(run: Path) -> list[dict[str, str]]:
    with (run / "csv" / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def check_figures(result: dict[str, Any], before: dict[str, Any] | None) -> None:
    """Every measured figure present, exact where known, never below the previous segment's."""
    spent, steps = result["spent"], result["steps"]
    assert all(spent[key] is not None for key in MEASURED), spent
    assert spent["energy_j"] == pytest.approx(1.0 * steps)  # 1 J per step, every segment
    assert spent["data_samples"] == BATCH * steps
    assert spent["compute_flop"] == pytest.approx(
        spent["data_samples"] * result["model"]["train_flop_per_sample"]
    )
    assert spent["time_s"] > 0
    assert result["metrics"].get("val/acc") is not None  # the last validation, at least
    if before is not None:
        assert all(spent[key] >= before["spent"][key] for key in MEASURED)
        assert steps >= before["steps"]


def check_history(rows: list[dict[str, str]], before: list[dict[str, str]]) -> None:
    """The earlier rows are all still there, first and unchanged; this segment's come after."""
    assert len(rows) >= len(before)
    for old, new in zip(before, rows, strict=False):
        assert {k: new[k] for k in old} == old
    old_steps = [int(row["step"]) for row in before]
    new_steps = [int(row["step"]) for row in rows[len(before) :]]
    if old_steps and new_steps:
        assert min(new_steps) >= max(old_steps)


def check_every_logged_step(rows: list[dict[str, str]], last_step: int) -> None:
    """The learning rate, logged every 2 steps (log_every_n_steps=2) by the global step: every
    one of every segment, none missing, none twice. Training and validation metrics: strictly
    increasing steps (Lightning's own interval restarts mid-epoch after a resume)."""
    assert [int(row["step"]) for row in rows if row.get("lr-AdamW")] == list(range(1, last_step, 2))
    for column in ("train/loss", "val/loss"):
        steps = [int(row["step"]) for row in rows if row.get(column)]
        assert steps and steps == sorted(set(steps)), column


def segments(cli, run: Path, plan: list[tuple[list[str], int | None, int]]) -> list[dict]:
    """Runs each (args, signal_at, expected exit) in turn, checking figures and history."""
    results: list[dict[str, Any]] = []
    history: list[dict[str, str]] = []
    curve = ""
    for args, signal_at, code in plan:
        assert cli(*args, signal_at=signal_at) == code
        result = result_of(run)
        check_figures(result, results[-1] if results else None)
        rows = metrics_rows(run)
        check_history(rows, history)
        results.append(result)
        history = rows
        assert (run / "curve.csv").read_text().startswith(curve)  # appended to, never rewritten
        curve = (run / "curve.csv").read_text()
    steps = [int(row["step"]) for row in csv.DictReader(io.StringIO(curve))]
    assert steps == sorted(steps) and steps[-1] == results[-1]["steps"]
    return results


def test_a_finished_run_resumed_twice_keeps_every_figure_and_every_logged_step(cli, tmp_path):
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "last.ckpt"
    results = segments(
        cli,
        run,
        [
            ([*ARGS, "trainer.max_steps=10", f"hydra.run.dir={run}"], None, 0),
            ([f"ckpt_path={ckpt}", "trainer.max_steps=20"], None, 0),  # README's pattern
            ([f"resume={run}", "trainer.max_steps=30"], None, 0),
        ],
    )
    assert [r["status"] for r in results] == ["completed"] * 3
    assert [r["steps"] for r in results] == [10, 20, 30]
    check_every_logged_step(metrics_rows(run), 30)
    assert json.loads((run / "ledger.json").read_text())["spent"]["data_samples"] == 30 * BATCH


def test_a_resume_that_adds_nothing_keeps_every_recorded_figure(cli, tmp_path):
    run = tmp_path / "run"
    assert cli(*ARGS, "trainer.max_steps=10", f"hydra.run.dir={run}") == 0
    first, rows = result_of(run), metrics_rows(run)
    # Lightning skips the fit loop of a run at its max_steps: no step, no training hooks
    assert cli(f"resume={run}") == 0
    again = result_of(run)
    assert again["status"] == "completed" and again["steps"] == 10
    for key in (*MEASURED, "memory_bytes", "params"):
        assert again["spent"][key] == pytest.approx(first["spent"][key]), key
    assert again["model"] == first["model"]  # train_flop_per_sample measured again
    for key, value in first["metrics"].items():  # the last validation, the last training loss
        assert again["metrics"][key] == pytest.approx(value), key
    check_history(metrics_rows(run), rows)
    check_every_logged_step(metrics_rows(run), 10)


def test_a_budget_stopped_run_resumed_twice_stops_at_once_and_keeps_its_figures(cli, tmp_path):
    run = tmp_path / "run"
    budget = ["budget.data=352", "trainer.max_steps=100"]  # 11 batches of 32
    results = segments(
        cli,
        run,
        [
            ([*ARGS, *budget, f"hydra.run.dir={run}"], None, 0),
            ([f"resume={run}"], None, 0),
            ([f"resume={run}", "trainer.max_steps=200"], None, 0),
        ],
    )
    assert [r["status"] for r in results] == ["budget_exhausted"] * 3
    assert {r["stopped_by"] for r in results} == {"data"}
    steps = results[0]["steps"]
    assert 0 < steps <= 11 and all(r["steps"] == steps for r in results)
    assert all(r["spent"] == pytest.approx(results[0]["spent"], rel=0.5) for r in results)
    assert all(r["spent"]["data_samples"] == results[0]["spent"]["data_samples"] for r in results)
    rows = metrics_rows(run)
    check_every_logged_step(rows, steps)
    assert any(row.get("budget/data_used") for row in rows)


def test_an_interrupted_run_resumed_twice_keeps_every_figure_and_every_logged_step(cli, tmp_path):
    run = tmp_path / "run"
    results = segments(
        cli,
        run,
        [
            ([*ARGS, "trainer.max_steps=24", f"hydra.run.dir={run}"], 7, 143),
            ([f"resume={run}"], 15, 143),
            ([f"resume={run}"], None, 0),
        ],
    )
    assert [r["status"] for r in results] == ["interrupted", "interrupted", "completed"]
    assert [r["steps"] for r in results] == [7, 15, 24]  # stopped on the step of the signal
    check_every_logged_step(metrics_rows(run), 24)


def test_a_planted_symlink_in_the_logger_s_directory_is_refused_in_one_line(cli, tmp_path, capsys):
    run, outside = tmp_path / "run", tmp_path / "outside"
    assert cli(*ARGS, "trainer.max_steps=4", f"hydra.run.dir={run}") == 0
    outside.mkdir()
    victim = outside / "metrics.csv"
    victim.write_text("the user's own file\n")
    metrics = run / "csv" / "metrics.csv"
    metrics.unlink()
    metrics.symlink_to(victim)
    capsys.readouterr()
    assert cli(f"resume={run}", "trainer.max_steps=8") == 2
    err = capsys.readouterr().err.strip()
    # refused by the run directory's owner, or by the logger's own check before any step
    assert err.startswith("frugal-train: ") and "symbolic link" in err, err
    assert len(err.splitlines()) == 1 and "metrics.csv" in err
    assert victim.read_text() == "the user's own file\n" and metrics.is_symlink()
    # the whole directory replaced by a link to another directory: nothing written there either
    metrics.unlink()
    (run / "csv").rmdir()
    (run / "csv").symlink_to(outside, target_is_directory=True)
    assert cli(f"resume={run}", "trainer.max_steps=8") == 2
    assert "symbolic link" in capsys.readouterr().err
    assert sorted(p.name for p in outside.iterdir()) == ["metrics.csv"]
    assert victim.read_text() == "the user's own file\n"


def test_tensorboard_resumes_into_the_same_version_and_keeps_earlier_events(cli, tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    tb = [a if a != "logger=csv" else "logger=tensorboard" for a in ARGS]
    assert cli(*tb, "trainer.max_steps=4", f"hydra.run.dir={run}") == 0
    first = {p.name: p.stat().st_size for p in (run / "tensorboard").iterdir()}
    assert any(name.startswith("events.out.tfevents") for name in first)
    assert cli(f"resume={run}", "trainer.max_steps=8") == 0
    events = sorted((run / "tensorboard").glob("events.out.tfevents*"))
    assert len(events) > len(first)  # new event files beside the old, in the same version
    assert not any(p.is_dir() for p in (run / "tensorboard").iterdir())
    for name, size in first.items():  # the earlier files are all still there, not truncated
        assert (run / "tensorboard" / name).stat().st_size >= size
    assert (run / "tensorboard" / "hparams.yaml").is_file()


# ---- the appending writer on its own -----------------------------------------------------------
def test_a_run_saved_with_lightning_s_csv_logger_resumes_with_the_appending_one(tmp_path):
    node = {"_target_": "lightning.pytorch.loggers.CSVLogger", "save_dir": str(tmp_path)}
    (logger,) = build_loggers({"csv": {**node, "name": "csv", "version": ""}, "off": None})
    assert isinstance(logger, CSVLogger) and Path(logger.log_dir) == tmp_path / "csv"


def test_a_link_where_a_logger_writes_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "tensorboard").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    node = {"save_dir": str(tmp_path), "name": "tensorboard", "version": ""}
    with pytest.raises(ConfigError, match=r"^logger.tb: .*tensorboard: .*symbolic link"):
        build_loggers({"tb": {"_target_": "frugal.runs.loggers.TensorBoardLogger", **node}})
    assert not list((tmp_path / "elsewhere").iterdir())


def test_a_new_metric_rewrites_the_file_with_the_union_of_columns(tmp_path):
    log_dir = tmp_path / "csv"
    log_dir.mkdir()
    (log_dir / "metrics.csv").write_bytes(b"old/x,step\r\n1.5,3\r\n,4\r\n")
    writer = AppendingWriter(str(log_dir), str(tmp_path))
    writer.log_metrics({"old/x": 2.0}, step=5)
    writer.save()  # known columns: appended
    assert (log_dir / "metrics.csv").read_bytes() == b"old/x,step\r\n1.5,3\r\n,4\r\n2.0,5\r\n"
    writer.log_metrics({"new/y": 7.0}, step=6)
    writer.save()  # a new column: rewritten, every old row and column kept
    rows = list(csv.DictReader((log_dir / "metrics.csv").open(newline="")))
    assert [r["step"] for r in rows] == ["3", "4", "5", "6"]
    assert [r["old/x"] for r in rows] == ["1.5", "", "2.0", ""]
    assert [r["new/y"] for r in rows] == ["", "", "", "7.0"]
    assert not [p for p in log_dir.iterdir() if p.name.startswith(".")]  # no temporary left
    writer.log_hparams({"lr": 0.1})
    assert "lr: 0.1" in (log_dir / "hparams.yaml").read_text()


def test_a_file_cut_mid_row_gets_the_next_rows_on_lines_of_their_own(tmp_path):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_bytes(b"a,step\r\n1,1\r\n2,")  # killed mid-write
    writer = AppendingWriter(str(tmp_path / "csv"), str(tmp_path))
    writer.log_metrics({"a": 3}, step=3)
    writer.save()
    lines = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    assert lines == ["a,step", "1,1", "2,", "3,3"]


@pytest.mark.parametrize("planted", ["metrics.csv", "hparams.yaml", "csv"])
def test_the_writer_never_writes_through_a_link_planted_after_the_check(tmp_path, planted):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "metrics.csv").write_text("a,step\n")
    (tmp_path / "run" / "csv").mkdir(parents=True)
    log_dir, root = str(tmp_path / "run" / "csv"), str(tmp_path / "run")
    writer = AppendingWriter(log_dir, root)
    link = Path(log_dir, planted) if planted != "csv" else Path(log_dir)
    if planted == "csv":
        link.rmdir()
    link.symlink_to(outside / planted if planted != "csv" else outside)
    writer.log_metrics({"a": 1.0}, step=1)
    with pytest.raises(OSError, match="symbolic link") as refused:
        writer.save()
        writer.log_hparams({"lr": 0.1})
    assert refused.value.errno == errno.ELOOP
    assert (outside / "metrics.csv").read_text() == "a,step\n"
    assert sorted(p.name for p in outside.iterdir()) == ["metrics.csv"]
