"""An interrupted size search goes on with `resume=<run>`: finished pilots are reused, an
interrupted pilot or final run continues from its checkpoint (its ledger with it), an attempt
killed before its first checkpoint is set aside and charged; the declared budget holds across
every attempt."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from conftest import compose_cfg, run_main, spawn_train, wait_until

from frugal.budget.ledger import LEDGER_FILE, STATE_VERSION
from frugal.runs.attempts import ATTEMPTS_DIR, kept_charge, left_behind, set_aside
from frugal.runs.cluster import resume_requeued
from frugal.runs.rundir import continue_search

BUDGET_FLOP = 6e8
SEARCH = [
    "data=synthetic",
    "model=mlp",
    "model.kwargs.width_mult=auto",
    "size_search.width_mult=[0.1,0.2,0.4]",
    "trainer.max_steps=100000",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "energy.backend=none",
    "inference.enabled=false",
    "threads=1",
    f"budget.compute={BUDGET_FLOP:g}",
]


def _rows(curve: Path) -> int:
    try:
        return len(curve.read_text().splitlines()) - 1
    except OSError:
        return 0


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    "part",
    ["pilots/width_mult=0.2", pytest.param(".", marks=pytest.mark.slow)],
    ids=["in a pilot", "in the final"],
)
def test_an_interrupted_search_resumes_within_its_budget(tmp_path: Path, part: str) -> None:
    run = tmp_path / "run"
    first = spawn_train(*SEARCH, f"hydra.run.dir={run}", cwd=tmp_path)
    wait_until(lambda: _rows(run / part / "curve.csv") >= 2, first)  # validated twice
    os.killpg(first.pid, signal.SIGTERM)
    out = first.communicate(timeout=60)[0]
    assert first.returncode == 128 + signal.SIGTERM, out[-3000:]
    interrupted = _json(run / part / "result.json")
    assert interrupted["status"] == "interrupted"
    pilots = sorted((run / "pilots").glob("width_mult=*/result.json"))
    done = {p: p.stat().st_mtime_ns for p in pilots if _json(p)["status"] != "interrupted"}

    # resumed in this process: what is tested is the search's books, not the process
    again = run_main([f"resume={run}"], cwd=tmp_path)
    assert again.code == 0, again.said
    result = _json(run / "result.json")
    assert result["status"] == "budget_exhausted"
    assert result["spent"]["compute_flop"] <= BUDGET_FLOP  # pilots, both attempts, final run
    assert result["budget"]["compute_flop"] == BUDGET_FLOP
    # the interrupted part went on from its checkpoint, its spending kept
    resumed = _json(run / part / "result.json")
    assert resumed["status"] == "budget_exhausted"
    assert resumed["steps"] > interrupted["steps"]
    assert resumed["spent"]["compute_flop"] > interrupted["spent"]["compute_flop"]
    assert not (run / part / ATTEMPTS_DIR).exists()
    # finished pilots were reused, not run again; every pilot counted once
    assert {p: p.stat().st_mtime_ns for p in done} == done
    search = result["size_search"]
    pilot_flop = sum(c["spent"]["compute_flop"] for c in search["candidates"])
    assert search["pilot_spent"]["compute_flop"] == pytest.approx(pilot_flop)
    assert result["spent"]["compute_flop"] == pytest.approx(
        pilot_flop + _json(run / "ledger.json")["spent"]["compute_flop"]
    )
    # started once more, it has nothing left to do
    third = run_main([f"resume={run}"], cwd=tmp_path)
    assert third.out + third.err and third.code == 0
    assert _json(run / "result.json") == result


def _ledger(run_dir: Path, **spent: float | None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {"version": STATE_VERSION, "spent": spent, "segments": 1}
    (run_dir / LEDGER_FILE).write_text(json.dumps(state))
    (run_dir / "curve.csv").write_text("step\n1\n")


def test_an_attempt_without_a_checkpoint_is_set_aside_and_charged(tmp_path: Path) -> None:
    allowance = {"compute_flop": 100.0, "energy_j": 50.0, "time_s": None}
    assert not left_behind(tmp_path)
    _ledger(tmp_path, compute_flop=30.0, energy_j=None, time_s=None)
    assert left_behind(tmp_path)
    charge = set_aside(tmp_path, allowance)
    # known: what the ledger saw; unknown: all it was allowed, or unknown where nothing was
    assert charge == {"compute_flop": 30.0, "energy_j": 50.0, "time_s": None}
    assert not left_behind(tmp_path) and not (tmp_path / LEDGER_FILE).exists()
    assert (tmp_path / ATTEMPTS_DIR / "1" / LEDGER_FILE).is_file()
    _ledger(tmp_path, compute_flop=12.0, energy_j=5.0, time_s=2.0)
    set_aside(tmp_path, allowance)
    assert (tmp_path / ATTEMPTS_DIR / "2" / "curve.csv").is_file()  # the first kept as it was
    assert kept_charge(tmp_path, allowance) == {
        "compute_flop": 42.0,
        "energy_j": 55.0,
        "time_s": None,
    }
    # an attempt killed before its first step left no ledger: nothing spent, nothing charged
    (tmp_path / "curve.csv").write_text("step\n")
    assert set_aside(tmp_path, allowance) == {"compute_flop": 0.0, "energy_j": 0.0, "time_s": 0.0}


def test_a_search_started_again_into_its_directory_resumes_itself(tmp_path, monkeypatch) -> None:
    cfg = compose_cfg(tmp_path, *SEARCH[:4], "budget.compute=6e8")
    assert continue_search(cfg) is cfg  # nothing written yet: a fresh start
    (tmp_path / "pilots").mkdir()
    assert continue_search(cfg) is cfg  # only pilots: the directory check lets it go on
    _ledger(tmp_path, compute_flop=1.0)  # its final run has written here
    assert continue_search(cfg).resume == str(tmp_path)
    assert continue_search(cfg).get("ckpt_path") is None  # each part resumes from its own
    # a requeued cluster job does the same (it would otherwise set one ckpt_path)
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setattr("frugal.runs.cluster.job_identity", lambda: {"job_id": "7"})
    requeued = resume_requeued(cfg)
    assert requeued.resume == str(tmp_path) and requeued.get("ckpt_path") is None
