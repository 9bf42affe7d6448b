"""sweep_budget.<key>: one envelope shared by every job of a multirun, never passed, resumable."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest
from conftest import run_main, spawn_train, wait_until

from frugal.sweep.envelope import (
    ENVELOPE_FILE,
    charged,
    locked,
    new_state,
    read_envelope,
    remaining,
    total_charged,
)
from frugal.sweep.envelope import _reserve as reserve

ENVELOPE_FLOP = 3e8
SWEEP = [
    "-m",
    "data=synthetic",
    "model=mlp",
    "model.kwargs.width_mult=0.1,0.2,0.3",
    "trainer.max_steps=100000",
    "trainer.enable_progress_bar=false",
    "trainer.check_val_every_n_epoch=1",
    "logger=none",
    "energy.backend=none",
    "inference.enabled=false",
    f"sweep_budget.compute={ENVELOPE_FLOP:g}",
]


def _take_share(sweep_dir: str, job: int) -> None:
    with locked(Path(sweep_dir)) as book:
        state = book["state"]
        state["jobs"][str(job)] = reserve(state, str(job), Path(sweep_dir) / str(job), {})


def test_parallel_jobs_never_reserve_more_than_the_envelope(tmp_path: Path) -> None:
    with locked(tmp_path) as book:
        book["state"] = new_state({"energy_j": 1000.0}, "id", planned_jobs=8)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_take_share, args=(str(tmp_path), n)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    state = read_envelope(tmp_path)
    shares = [job["reserved"]["energy_j"] for job in state["jobs"].values()]
    assert len(shares) == 8
    assert sum(shares) == pytest.approx(1000.0)  # all of it, and no more
    assert min(shares) == pytest.approx(max(shares))  # each its fair share
    assert remaining(state) == {"energy_j": pytest.approx(0.0, abs=1e-9)}


def test_an_open_job_is_charged_its_reservation_a_finished_one_what_it_spent() -> None:
    reserved = {"energy_j": 100.0}
    assert charged({"status": "running", "reserved": reserved}) == {"energy_j": 100.0}
    assert charged({"status": "interrupted", "reserved": reserved}) == {"energy_j": 100.0}
    done = {"status": "completed", "reserved": reserved, "spent": {"energy_j": 40.0}}
    assert charged({**done, "prior_spent": {"energy_j": 5.0}}) == {"energy_j": 45.0}
    unknown = {"status": "unenforceable", "reserved": reserved, "spent": {"energy_j": None}}
    assert charged(unknown) == {"energy_j": 100.0}  # unknown is never counted as 0


def test_a_sweep_holds_its_envelope_and_a_killed_one_continues_within_it(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    args = [*SWEEP, f"hydra.sweep.dir={sweep_dir}"]
    # killed (SIGKILL, the whole process group) once its second job is under way
    first = spawn_train(*args, cwd=tmp_path)
    wait_until((sweep_dir / "1" / "ledger.json").exists, first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(30)
    killed = read_envelope(sweep_dir)
    assert killed["jobs"]["1"]["status"] == "running"  # its reservation stays charged
    finished_before = (sweep_dir / "0" / "result.json").stat().st_mtime_ns

    # relaunched (in this process: what is tested is the envelope, not the process)
    again = run_main(args, cwd=tmp_path)
    assert again.code == 0, again.said
    assert "sweep envelope continued" in again.out + again.err
    state = read_envelope(sweep_dir)
    assert sorted(state["jobs"]) == ["0", "1", "2"]
    assert (sweep_dir / "0" / "result.json").stat().st_mtime_ns == finished_before  # not rerun
    assert state["jobs"]["1"]["attempts"] == 2
    assert all(job["status"] == "budget_exhausted" for job in state["jobs"].values())
    # the whole sweep, the killed attempt included, within the envelope
    spent = 0.0
    for name in ("0", "1", "2"):
        result = json.loads((sweep_dir / name / "result.json").read_text())
        spent += result["spent"]["compute_flop"]
        spent += state["jobs"][name]["prior_spent"]["compute_flop"]  # a set-aside attempt
    assert spent <= ENVELOPE_FLOP
    assert total_charged(state)["compute_flop"] <= ENVELOPE_FLOP
    # relaunched once more, it has nothing left to do
    third = run_main(args, cwd=tmp_path)
    assert third.code == 0 and (third.out + third.err).count("not run again") == 3, third.said
    assert (sweep_dir / ENVELOPE_FILE).is_file()


def test_another_envelope_in_the_same_directory_is_refused(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    with locked(sweep_dir) as book:
        book["state"] = new_state({"compute_flop": 1e9}, "id", planned_jobs=3)
    before = (sweep_dir / ENVELOPE_FILE).read_bytes()
    run = run_main([*SWEEP, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert run.code == 2, run.said
    assert "holds a sweep with another envelope" in run.err and run.err.count("\n") == 1
    assert not run.out
    assert (sweep_dir / ENVELOPE_FILE).read_bytes() == before
