"""`frugal-train -m hydra/sweeper=halving`: real training jobs inside one compute envelope
(compute is counted exactly on CPU), then a relaunch of the same sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from frugal.sweep.envelope import read_envelope, total_charged

pytestmark = pytest.mark.slow

ENVELOPE_FLOP = 2e7  # 3 configurations: rung 0 at ~3.3e6 FLOP each (~150 steps), rung 1 ~1e7
SWEEP = [
    "hydra/sweeper=halving",
    "data=synthetic",
    "model=mlp_tiny",
    "trainer.max_steps=100000",  # the budget binds
    "trainer.enable_progress_bar=false",
    "logger=none",
    "energy.backend=none",
    "inference.enabled=false",
    "threads=1",
    "objectives=[val/loss]",  # synthetic data: every trial reaches val/acc = 1
    f"sweep_budget.compute={ENVELOPE_FLOP:g}",
    "optimizer.lr=0.003,0.01,0.03",
]


def halving_sweep(sweep_dir: Path, timeout_s: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "frugal.train", "-m", f"hydra.sweep.dir={sweep_dir}", *SWEEP]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout_s, cwd=sweep_dir.parent
    )


def _result(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "result.json").read_text())


def test_halving_sweep_spends_one_envelope_and_resumes(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    done = halving_sweep(sweep_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((sweep_dir / "halving.json").read_text())
    assert [r["trials"] for r in record["rungs"]] == [["0", "1", "2"], ["3"]]
    b0 = record["rungs"][0]["budget"]["compute_flop"]
    assert b0 == pytest.approx(ENVELOPE_FLOP / (3 + 1 * 3))
    # rung 0 stopped a step short of its budget: the top rung gets more than its planned 3 x b0
    assert record["rungs"][1]["budget"]["compute_flop"] > 3 * b0
    # promoted by the validation loss, the lowest
    losses = {j: _result(sweep_dir / j)["metrics"]["val/loss"] for j in ("0", "1", "2")}
    assert record["rungs"][0]["promoted"] == [min(losses, key=losses.get)]
    assert record["best"]["job"] == "3"
    # the promoted trial continued from its rung-0 weights, with a budget and a ledger of its own
    promoted = record["rungs"][0]["promoted"][0]
    assert record["rungs"][1]["continued_from"] == {"3": promoted}
    ckpt = sweep_dir / promoted / "checkpoints" / "last.ckpt"
    assert f"init_from='{ckpt}'" in _result(sweep_dir / "3")["run"]["overrides"]
    state = read_envelope(sweep_dir)
    assert state is not None
    assert total_charged(state)["compute_flop"] <= ENVELOPE_FLOP
    for job_id in ("0", "1", "2", "3"):
        result = _result(sweep_dir / job_id)
        assert result["status"] == "budget_exhausted"
        assert result["spent"]["compute_flop"] <= result["budget"]["compute_flop"]
        assert state["jobs"][job_id]["rung"] == (0 if job_id != "3" else 1)

    # the top rung's job was killed: a relaunch runs it alone, within the same envelope
    envelope_path = sweep_dir / "envelope.json"
    killed = json.loads(envelope_path.read_text())
    killed["jobs"]["3"].update(status="running", spent=None, metrics=None, ended=None)
    envelope_path.write_text(json.dumps(killed))
    (sweep_dir / "3" / "result.json").unlink()
    again = halving_sweep(sweep_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    state = read_envelope(sweep_dir)
    assert state is not None
    assert [state["jobs"][j]["attempts"] for j in ("0", "1", "2", "3")] == [1, 1, 1, 2]
    assert _result(sweep_dir / "3")["status"] == "budget_exhausted"
    assert total_charged(state)["compute_flop"] <= ENVELOPE_FLOP
    assert json.loads((sweep_dir / "halving.json").read_text())["best"]["job"] == "3"
