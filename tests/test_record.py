"""The run record's schema (frugal.core.record): what the pipeline and the sweeps write reads
back through it unchanged, a drift between writer and schema warns, unknown stays null."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from frugal.core.record import (
    CHOICE_FILE,
    ENVELOPE_FILE,
    HALVING_FILE,
    RESULT_FILE,
    EnvelopeFile,
    HalvingFile,
    MalformedError,
    RecordDriftWarning,
    RunResult,
    SizeChoice,
    parse,
)
from frugal.runs.record import write_json_atomic
from frugal.sweep.envelope import _reserve, new_state


def test_a_real_run_writes_a_record_its_schema_reads(run_train, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordDriftWarning)  # the write itself must not drift
        result, _ = run_train("trainer.max_steps=3")
    written = json.loads((tmp_path / RESULT_FILE).read_text())
    record = parse(RunResult, written, RESULT_FILE)
    assert record.status == result["status"] == "completed"
    assert record.steps == 3 and record.model.params == result["model"]["params"]
    assert record.spent.as_dict()["compute_flop"] == result["spent"]["compute_flop"] > 0
    assert record.metrics.test_acc == result["metrics"]["test/acc"]
    assert record.versions == written["versions"]  # what no reader checks is kept as it is


def test_unknown_amounts_stay_null_never_zero() -> None:
    raw = {
        "status": "refused",
        "spent": {"energy_j": None, "compute_flop": 0.0},
        "energy": {"method": "unavailable", "measured": False},
        "model": {"name": "mlp"},
        "metrics": {},
    }
    record = parse(RunResult, raw, RESULT_FILE)
    spent = record.spent.as_dict()
    assert spent["energy_j"] is None and spent["time_s"] is None and spent["compute_flop"] == 0.0
    assert record.budget is None and record.metrics.test_acc is None and record.steps is None


def test_a_record_that_drifted_warns_and_is_written_all_the_same(tmp_path: Path) -> None:
    path = tmp_path / RESULT_FILE
    bad = {"status": "completed", "spent": {}, "energy": {}, "model": {}, "metrics": {}}
    bad["metrics"]["test/acc"] = 92.0  # a percent where the contract says a fraction
    with pytest.warns(RecordDriftWarning, match=r"metrics.test/acc = 92.0 is out of range"):
        write_json_atomic(path, bad)
    assert json.loads(path.read_text())["metrics"]["test/acc"] == 92.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordDriftWarning)
        write_json_atomic(tmp_path / "ledger.json", {"anything": [1, "x"]})  # not a record


def test_a_sweep_writes_an_envelope_its_schema_reads(tmp_path: Path) -> None:
    state = new_state({"energy_j": 900.0, "time_s": None}, "abc", planned_jobs=3)
    state["jobs"]["0"] = _reserve(state, "0", tmp_path / "0", {"energy_j": 200.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordDriftWarning)
        write_json_atomic(tmp_path / ENVELOPE_FILE, state)
    envelope = parse(EnvelopeFile, json.loads((tmp_path / ENVELOPE_FILE).read_text()), "x")
    job = envelope.jobs["0"]
    assert job.status == "running" and job.reserved == {"energy_j": 200.0}
    assert job.spent is None and job.started is not None and job.started.tzinfo is not None
    assert envelope.envelope.as_dict()["time_s"] is None


def test_halving_and_choice_records() -> None:
    halving = {
        "eta": 3,
        "rungs": [{"rung": 0, "budget": {"energy_j": 4.0}, "trials": [0, "1"], "promoted": [0]}],
        "best": {"job": 0, "overrides": ["a=1", "b=2"], "swept": ["a=1"], "metrics": None},
    }
    record = parse(HalvingFile, halving, HALVING_FILE)
    assert record.rungs[0].trials == ["0", "1"] and record.best.job == "0"
    assert record.best.overrides == ["a=1"] and record.best.metrics == {}  # what tells it apart
    choice = parse(SizeChoice, {"size": {"width_mult": 0.5, "depth": 2}}, CHOICE_FILE)
    assert choice.size == {"width_mult": 0.5, "depth": 2}
    with pytest.raises(MalformedError, match=r"choice.json: size.depth is missing"):
        parse(SizeChoice, {"size": {"depth": None}}, CHOICE_FILE)
