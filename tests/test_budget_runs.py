"""Tiny Trainer runs on synthetic data: each budget stops the run on the step it runs out."""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import signal
from pathlib import Path

import lightning as L
import pytest
from fakes.meters import FakeClock, FakeEnergyMeter, Work

from frugal.core.errors import ConfigError

CONTRACT_KEYS = {
    "status",
    "stopped_by",
    "budget",
    "spent",
    "energy",
    "model",
    "plan",
    "metrics",
    "steps",
    "epochs",
    "seed",
    "versions",
}
SPENT_KEYS = {
    "energy_j",
    "carbon_g",
    "compute_flop",
    "data_samples",
    "time_s",
    "memory_bytes",
    "params",
}


def step_flop(result: dict) -> float:
    return result["model"]["train_flop_per_sample"] * 32  # synthetic batch size


def test_result_and_curve_follow_the_contract(run_train, tmp_path):
    result, _ = run_train("trainer.max_steps=24")
    written = json.loads((tmp_path / "result.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert set(written) >= CONTRACT_KEYS
    assert set(written["budget"]) == SPENT_KEYS
    assert set(written["spent"]) == {*SPENT_KEYS, "machine_energy_j"}  # the machine's, beside
    assert all(value is None for value in written["budget"].values())
    assert written["status"] == "completed" and written["stopped_by"] is None
    assert written["steps"] == 24
    assert written["spent"]["data_samples"] == 24 * 32
    assert written["spent"]["compute_flop"] == pytest.approx(24 * step_flop(written))
    assert written["spent"]["energy_j"] is None  # energy.backend=none: unknown, not 0
    assert written["energy"] == {
        "method": "unavailable",
        "measured": False,
        "estimate_margin": 0.0,
        "carbon_intensity_g_per_kwh": written["energy"]["carbon_intensity_g_per_kwh"],
        "carbon_intensity_source": "codecarbon:offline:USA",
    }
    assert {"name", "params", "params_effective", "flop_per_sample"} <= set(written["model"])
    assert 0.0 <= written["metrics"]["test/acc"] <= 1.0 and "val/acc" in written["metrics"]
    assert {"torch", "lightning", "frugal"} <= set(written["versions"])

    with (tmp_path / "curve.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:5] == ["step", "samples", "compute_flop", "energy_j", "time_s"]
    assert {"val/acc", "val/loss"} <= set(rows[0])
    assert [int(r["step"]) for r in rows] == [12, 24]  # 12 steps per epoch, validated each epoch
    assert rows[-1]["energy_j"] == ""  # unknown stays empty
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("plan", ["off", "fit"])
def test_compute_budget_stops_within_one_step(run_train, tmp_path, plan):
    probe, _ = run_train("trainer.max_steps=1", out=tmp_path / "probe")
    limit = 10.5 * step_flop(probe)
    result, _ = run_train(f"budget.compute={limit}", f"budget.plan={plan}", "trainer.max_steps=100")
    assert result["status"] == "budget_exhausted"
    assert result["stopped_by"] == "compute"
    spent = result["spent"]["compute_flop"]
    assert limit - step_flop(result) < spent <= limit
    assert result["steps"] == 10
    if plan == "fit":
        assert result["plan"] == {
            "mode": "fit",
            "max_steps": 10,
            "binding": "compute",
            "allowed_steps": {"compute": 10},
        }


def test_compute_plan_drives_the_budget_linear_schedule_to_zero_on_the_last_step(
    run_train, tmp_path
):
    probe, _ = run_train("trainer.max_steps=1", out=tmp_path / "probe")
    limit = 37.2 * step_flop(probe)
    result, _ = run_train(
        f"budget.compute={limit}",
        "scheduler=budget_linear",
        "logger=csv",
        "trainer.log_every_n_steps=1",
        "trainer.max_steps=1000",
    )
    assert result["plan"]["max_steps"] == math.floor(limit / step_flop(result)) == 37
    assert result["spent"]["compute_flop"] <= limit
    lrs = logged_lrs(tmp_path)
    assert lrs[0] == pytest.approx(0.01)
    assert max(lrs) == 36 and lrs[36] == pytest.approx(0.0, abs=1e-12)
    assert lrs[35] > 0


def logged_lrs(run_dir: Path) -> dict[int, float]:
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    (column,) = {key for key in rows[0] if key.startswith("lr-")}  # lr-<optimizer class>
    return {int(r["step"]): float(r[column]) for r in rows if r[column]}


def test_data_budget(run_train):
    result, _ = run_train("budget.data=200", "budget.plan=off", "trainer.max_steps=100")
    assert (result["status"], result["stopped_by"]) == ("budget_exhausted", "data")
    assert result["spent"]["data_samples"] == 192  # 6 batches of 32; a 7th would cross 200


def test_time_budget_reserves_the_closing_validation(run_train):
    """1 s steps and 5 s validations on a clock that advances only with work (no sleeps)."""
    clock = FakeClock()
    work = Work(clock=clock, seconds_per_step=1.0, seconds_per_validation=5.0)
    result, _ = run_train(
        "budget.time=30s",
        "budget.warmup_steps=2",
        "trainer.max_steps=200",
        callbacks=[work],
        clock=clock,
    )
    assert (result["status"], result["stopped_by"]) == ("budget_exhausted", "time")
    assert result["spent"]["time_s"] <= 30
    assert result["spent"]["time_s"] >= 30 - (1 + 5 + 1)  # at most a step, a validation, a ckpt
    assert result["plan"]["binding"] == "time", result["plan"]


def test_energy_budget_with_a_counter_stays_within_it_and_ends_the_schedule(run_train, tmp_path):
    meter = FakeEnergyMeter()
    result, _ = run_train(
        "budget.energy=123J",
        "budget.warmup_steps=3",
        "scheduler=budget_linear",
        "logger=csv",
        "trainer.log_every_n_steps=1",
        "trainer.max_steps=500",
        energy_meter=meter,
        callbacks=[Work(meter, joules_per_step=5.0, joules_per_validation=2.0)],
    )
    assert (result["status"], result["stopped_by"]) == ("budget_exhausted", "energy")
    assert 123 - 3 * 5 < result["spent"]["energy_j"] <= 123
    assert result["plan"]["binding"] == "energy"
    assert result["energy"]["method"] == "fake" and result["energy"]["measured"] is True
    lrs = [lr for _, lr in sorted(logged_lrs(tmp_path).items())]
    assert lrs[0] == pytest.approx(0.01)
    assert all(b <= a + 1e-15 for a, b in itertools.pairwise(lrs))  # never increases
    assert lrs[-1] <= 0.02 * 0.01  # ends within 2 % of 0


def test_estimated_energy_stops_short_by_the_margin(run_train):
    meter = FakeEnergyMeter(measured=False)
    result, _ = run_train(
        "budget.energy=100J",
        "budget.estimate_margin=0.2",
        "budget.plan=off",
        "trainer.max_steps=500",
        energy_meter=meter,
        callbacks=[Work(meter, joules_per_step=5.0)],
    )
    assert result["stopped_by"] == "energy"
    assert 80 - 3 * 5 < result["spent"]["energy_j"] <= 80
    assert result["energy"]["estimate_margin"] == 0.2


def test_carbon_budget_from_energy_and_configured_intensity(run_train):
    meter = FakeEnergyMeter()
    result, _ = run_train(
        "budget.carbon=1kg",
        "energy.carbon_intensity_g_per_kwh=500",
        "budget.plan=off",
        "trainer.max_steps=500",
        energy_meter=meter,
        callbacks=[Work(meter, joules_per_step=3.6e5)],  # 0.1 kWh: 50 g per step
    )
    assert result["stopped_by"] == "carbon"
    assert result["spent"]["carbon_g"] == pytest.approx(50.0 * result["steps"])
    # A step and the final checkpoint (about a step) must still fit.
    assert 1000 - 3 * 50 < result["spent"]["carbon_g"] <= 1000
    assert result["energy"]["carbon_intensity_source"] == "config"


def test_params_budget_refuses_before_any_step(run_train):
    result, objects = run_train("model=cnn", "budget.params=1000", "budget.plan=refuse")
    assert result["status"] == "refused" and result["stopped_by"] == "params"
    assert result["steps"] == 0 and objects["trainer"].global_step == 0
    assert "test/acc" not in result["metrics"]


def test_refuse_when_the_configured_run_does_not_fit(run_train):
    result, _ = run_train("budget.data=100", "budget.plan=refuse", "trainer.max_steps=30")
    assert result["status"] == "refused" and result["stopped_by"] == "data"
    assert result["steps"] == 0
    assert "budget.data allows 3 steps" in result["message"]


def test_warn_never_stops_and_says_so_only_when_crossed(run_train, tmp_path):
    result, _ = run_train("budget.data=100", "budget.on_exceed=warn", "trainer.max_steps=30")
    assert result["status"] == "budget_exhausted" and result["steps"] == 30
    assert result["stopped_by"] == "data"
    # 3 steps (not a re-plan step): 96 samples ≤ 100, never crossed: completed.
    result, _ = run_train(
        "budget.data=100", "budget.on_exceed=warn", "trainer.max_steps=3", out=tmp_path / "b"
    )
    assert result["status"] == "completed" and result["stopped_by"] is None


def test_resumed_run_with_a_spent_budget_stops_before_a_step(run_train, tmp_path):
    first, _ = run_train("budget.data=200", "trainer.max_steps=100", out=tmp_path / "a")
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert first["stopped_by"] == "data" and ckpt.is_file()
    second, _ = run_train(
        "budget.data=200", "trainer.max_steps=100", f"ckpt_path={ckpt}", out=tmp_path / "b"
    )
    assert second["status"] == "budget_exhausted" and second["stopped_by"] == "data"
    assert second["steps"] == first["steps"]
    assert second["spent"]["data_samples"] == first["spent"]["data_samples"]


class SignalAt(L.Callback):
    def __init__(self, step: int, signum: int = signal.SIGTERM):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_half_way_then_resume_spends_the_budget_once(run_train, tmp_path, signum):
    killed, objects = run_train(
        "budget.data=640",
        "trainer.max_steps=100",
        callbacks=[SignalAt(9, signum)],
        out=tmp_path / "a",
    )
    assert killed["status"] == "interrupted" and killed["steps"] == 9
    assert objects["budget"].signal == signum
    assert json.loads((tmp_path / "a" / "result.json").read_text())["status"] == "interrupted"
    assert killed["spent"]["data_samples"] == 9 * 32
    assert "test/acc" not in killed["metrics"]
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    resumed, _ = run_train(
        "budget.data=640", "trainer.max_steps=100", f"ckpt_path={ckpt}", out=tmp_path / "b"
    )
    assert resumed["status"] == "budget_exhausted"
    assert 640 - 32 < resumed["spent"]["data_samples"] <= 640
    assert resumed["steps"] == 20


def test_refuse_stops_as_soon_as_the_energy_forecast_does_not_fit(run_train):
    meter = FakeEnergyMeter()
    result, _ = run_train(
        "budget.energy=200J",
        "budget.plan=refuse",
        "budget.warmup_steps=2",
        "trainer.max_steps=100",
        energy_meter=meter,
        callbacks=[Work(meter, joules_per_step=5.0)],
    )
    assert (result["status"], result["stopped_by"]) == ("refused", "energy")
    assert result["steps"] == 2  # the first forecast, right after warm-up
    assert result["spent"]["energy_j"] == 10 < 200
    assert "budget.energy allows" in result["message"]


def test_a_diverged_run_stops_at_once_on_finite_weights(run_train, tmp_path):
    import torch

    result, _ = run_train("optimizer=sgd", "optimizer.lr=1e12", "trainer.max_steps=50")
    assert result["status"] == "diverged" and result["steps"] < 50
    assert f"step {result['steps']}" in result["message"]
    for name in ("last.ckpt", "best.ckpt"):
        path = tmp_path / "checkpoints" / name
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
            assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_budget_use_is_logged_and_shown(run_train, tmp_path):
    meter = FakeEnergyMeter(measured=False)
    _, objects = run_train(
        "budget.data=10k",
        "budget.energy=2kJ",
        "logger=csv",
        "trainer.log_every_n_steps=5",
        "trainer.max_steps=20",
        energy_meter=meter,
        callbacks=[Work(meter, joules_per_step=5.0)],
    )
    with (tmp_path / "csv" / "metrics.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("budget/data_used")]
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    assert float(rows[-1]["budget/data_used"]) == 20 * 32
    assert float(rows[-1]["budget/data_frac"]) == pytest.approx(640 / 10_000)
    assert float(rows[-1]["budget/energy_used"]) == 100
    assert objects["budget"].progress() == {"data": "0.64/10k samples", "energy": "0.1/2 kJ est."}


def test_memory_budget_stops_on_resident_memory_growth(run_train):
    # Adam's state for ~1M parameters alone is 8 MB of new resident memory at the first step.
    result, _ = run_train("model=wide_mlp", "budget.memory=1MiB", "trainer.max_steps=20")
    assert (result["status"], result["stopped_by"]) == ("budget_exhausted", "memory")
    assert result["spent"]["memory_bytes"] > 2**20
    assert result["steps"] < 20


def test_a_new_run_in_another_runs_directory_is_refused(run_train, tmp_path):
    run_train("trainer.max_steps=24")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="holds another run's outputs"):
        run_train("trainer.max_steps=12", "scheduler=constant")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
