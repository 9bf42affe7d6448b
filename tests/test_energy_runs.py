"""The energy layer inside real runs: what `energy.backend=auto` picks, and that joules counted
by RAPL counters (a fake powercap tree scripted during training) reach `result.json` exactly,
wrap-around included, and enforce an energy budget without the estimate's margin.

How the fake counters are made deterministic: a callback bumps every zone's `energy_uj` in
`on_train_batch_start`, so the budget callback's read in `on_train_batch_end` of the same step
sees that step's energy; the ledger's figure is the last such read. The meter's background
poller is parked (`energy.measure_power_secs=3600`): it only re-samples the same cumulative
counters, which cannot change the total, but its thread could read a file half-rewritten by the
test (real sysfs files are never half-written).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import pytest
from fakes.rapl_tree import write_zone

import frugal.pipeline as pipeline

PARKED_POLLER = "energy.measure_power_secs=3600"
# 2-step runs never validate, so the checkpoint's val/acc monitor has nothing to watch
pytestmark = pytest.mark.filterwarnings("ignore:.*could not find the monitored key")


class ScriptedRapl(L.Callback):
    """Advances fake RAPL counters by a fixed amount per training step, wrapping like sysfs."""

    def __init__(self, root: Path, per_step_uj: dict[str, int]) -> None:
        self.root = root
        self.per_step_uj = per_step_uj
        self.steps = 0
        self.wraps: dict[str, int] = dict.fromkeys(per_step_uj, 0)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        for zone_id, step_uj in self.per_step_uj.items():
            zone = self.root / zone_id
            max_uj = int((zone / "max_energy_range_uj").read_text())
            counter_uj = int((zone / "energy_uj").read_text()) + step_uj
            if counter_uj >= max_uj:
                counter_uj -= max_uj
                self.wraps[zone_id] += 1
            # in place (same inode): the meter keeps the file open and re-reads it with pread
            (zone / "energy_uj").write_text(f"{counter_uj}\n")
        self.steps += 1


def fake_tree(root: Path) -> dict[str, int]:
    """A package whose counter wraps early in the run, its dram, and zones that must not count.

    Returns the microjoules each zone gains per step."""
    write_zone(root, "intel-rapl:0", "package-0", 9_000_000, max_uj=10_000_000)  # wraps at 10 J
    write_zone(root, "intel-rapl:0:0", "core", 5_000)  # inside the package: not counted
    write_zone(root, "intel-rapl:0:2", "dram", 123_456)
    write_zone(root, "intel-rapl:1", "psys", 7_000)  # whole platform: not counted
    (root / "intel-rapl").mkdir()
    return {
        "intel-rapl:0": 700_000,  # 0.7 J per step: the counter wraps on the 2nd step
        "intel-rapl:0:0": 400_000,
        "intel-rapl:0:2": 300_000,  # 0.3 J per step
        "intel-rapl:1": 2_000_000,
    }


COUNTED = ("intel-rapl:0", "intel-rapl:0:2")


@pytest.fixture
def scripted_rapl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ScriptedRapl:
    """A fake tree under tmp_path/powercap, advanced every training step of the next run."""
    root = tmp_path / "powercap"
    script = ScriptedRapl(root, fake_tree(root))
    original = pipeline.build_callbacks
    monkeypatch.setattr(pipeline, "build_callbacks", lambda *a, **k: [*original(*a, **k), script])
    return script


def scripted_j(script: ScriptedRapl) -> float:
    """Joules the counted zones (package + dram) gained over the steps the script ran."""
    return sum(script.per_step_uj[zone] for zone in COUNTED) * script.steps / 1e6


def test_auto_without_counters_is_the_power_model_of_the_runs_processes(run_train, tmp_path):
    # No RAPL tree and no GPU, as on this machine (forced, so the test means the same anywhere).
    result, _ = run_train(
        "energy.backend=auto",
        f"energy.rapl_root={tmp_path / 'no-powercap'}",
        "energy.gpu_indices=[]",
        "trainer.max_steps=10",
        out=tmp_path / "run",
    )
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["spent"] == on_disk["spent"]  # what train() returns is what it wrote
    assert on_disk["status"] == "completed"
    energy = on_disk["energy"]
    assert energy["method"] == "model:cpu-time+rss"
    assert energy["measured"] is False and energy["uncertainty"] == pytest.approx(0.4)
    assert energy["poll_interval_s"] is None  # read on every step, no sampling thread
    assert energy["backends"][0]["cpu_watts_per_core"] > 0  # the model's parameters, stated
    assert "RAPL" in energy.get("note", "")  # says why no counter was used
    spent_j = on_disk["spent"]["energy_j"]
    assert isinstance(spent_j, float) and math.isfinite(spent_j) and spent_j > 0
    assert on_disk["spent"]["carbon_g"] > 0  # derived from the estimate, never a silent 0
    # the whole machine's figure beside it, known (over 10 steps /proc/stat's 10 ms ticks are
    # too coarse to compare it with the run's own, read from the process's precise clock)
    machine_j = on_disk["spent"]["machine_energy_j"]
    assert isinstance(machine_j, float) and math.isfinite(machine_j) and machine_j > 0


def test_auto_with_rapl_counters_reports_exactly_the_scripted_joules(
    run_train, tmp_path, scripted_rapl
):
    result, objects = run_train(
        "energy.backend=auto",
        "energy.scope=machine",  # the counter itself: the run's share is tested apart
        f"energy.rapl_root={scripted_rapl.root}",
        "energy.gpu_indices=[]",
        PARKED_POLLER,
        "trainer.max_steps=12",
        out=tmp_path / "run",
    )
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["spent"] == on_disk["spent"]  # what train() returns is what it wrote
    assert on_disk["status"] == "completed"
    assert on_disk["energy"]["method"] == "rapl"
    assert on_disk["energy"]["measured"] is True
    assert on_disk["energy"]["switches"] == []  # RAPL from the first step to the last
    assert on_disk["energy"]["estimate_margin"] == 0.0
    assert on_disk["energy"]["backends"][0]["sources"][0]["zones"] == [
        "package-0",
        "package-0/dram",
    ]

    assert scripted_rapl.steps == 12 == on_disk["steps"]
    assert scripted_rapl.wraps["intel-rapl:0"] >= 1  # 9 J + 12 × 0.7 J passes 10 J
    assert scripted_rapl.wraps["intel-rapl:0"] == 1
    assert on_disk["spent"]["energy_j"] == pytest.approx(scripted_j(scripted_rapl), abs=1e-9)
    assert on_disk["spent"]["energy_j"] == pytest.approx(12.0, abs=1e-9)  # 12 × (0.7 + 0.3) J
    # the meter's own final read (at stop) agrees with the ledger: nothing after the last step
    assert objects["budget"].energy_meter.read_j() == pytest.approx(12.0, abs=1e-9)


def test_energy_budget_with_rapl_stops_on_the_step_the_joules_run_out(
    run_train, tmp_path, scripted_rapl
):
    # 1 J per step from a per-step counter: the run stops while the next step and the final
    # checkpoint (about a step) still fit in 25.5 J. An estimate would stop 10 % short.
    result, _ = run_train(
        "energy.backend=auto",
        "energy.scope=machine",  # the counter itself: the run's share is tested apart
        f"energy.rapl_root={scripted_rapl.root}",
        "energy.gpu_indices=[]",
        PARKED_POLLER,
        "budget.energy=25.5J",
        "budget.warmup_steps=1",
        "trainer.max_steps=100",
        out=tmp_path / "run",
    )
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["spent"] == on_disk["spent"]  # what train() returns is what it wrote
    assert on_disk["status"] == "budget_exhausted"
    assert on_disk["stopped_by"] == "energy"
    assert on_disk["energy"]["method"] == "rapl"
    assert on_disk["energy"]["measured"] is True
    assert on_disk["energy"]["estimate_margin"] == 0.0
    assert on_disk["budget"]["energy_j"] == 25.5
    assert on_disk["steps"] == scripted_rapl.steps
    assert 23 <= on_disk["steps"] <= 25
    assert scripted_rapl.wraps["intel-rapl:0"] >= 1
    assert on_disk["spent"]["energy_j"] == pytest.approx(on_disk["steps"], abs=1e-9)
    assert on_disk["spent"]["energy_j"] <= 25.5
    assert on_disk["spent"]["energy_j"] == pytest.approx(scripted_j(scripted_rapl), abs=1e-9)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


class BumpOnValidation(L.Callback):
    """Validation costs energy too: adds `uj` to the dram counter at each validation."""

    def __init__(self, root: Path, uj: int) -> None:
        self.path = root / "intel-rapl:0:2" / "energy_uj"
        self.uj = uj
        self.validations = 0

    def on_validation_start(self, trainer, pl_module) -> None:
        self.path.write_text(f"{int(self.path.read_text()) + self.uj}\n")
        self.validations += 1


def test_energy_of_a_validation_after_the_last_step_is_booked(
    run_train, tmp_path, scripted_rapl, monkeypatch
):
    # synthetic data: 12 training batches per epoch, validation every epoch; 24 steps end on an
    # epoch boundary, so a validation runs after the last step (its 5 J are part of fit).
    validation = BumpOnValidation(scripted_rapl.root, 5_000_000)
    with_script = pipeline.build_callbacks
    monkeypatch.setattr(
        pipeline, "build_callbacks", lambda *a, **k: [*with_script(*a, **k), validation]
    )
    result, objects = run_train(
        "energy.backend=auto",
        "energy.scope=machine",  # the counter itself: the run's share is tested apart
        f"energy.rapl_root={scripted_rapl.root}",
        "energy.gpu_indices=[]",
        PARKED_POLLER,
        "trainer.max_steps=24",
        out=tmp_path / "run",
    )
    assert result["steps"] == 24
    assert validation.validations == 2  # after steps 12 and 24
    total_j = scripted_j(scripted_rapl) + 5.0 * validation.validations  # 24 + 10 J
    assert objects["budget"].energy_meter.read_j() == pytest.approx(total_j, abs=1e-9)
    assert result["spent"]["energy_j"] == pytest.approx(total_j, abs=1e-9)  # got 29 J


def test_with_rapl_the_run_is_charged_its_share_and_the_machine_figure_stands_beside(
    run_train, tmp_path, scripted_rapl
):
    result, _ = run_train(
        "energy.backend=auto",
        f"energy.rapl_root={scripted_rapl.root}",
        "energy.gpu_indices=[]",
        PARKED_POLLER,
        "trainer.max_steps=12",
        out=tmp_path / "run",
    )
    assert result["energy"]["method"] == "rapl×cpu-share"
    assert result["energy"]["poll_interval_s"] is None
    machine_j = result["spent"]["machine_energy_j"]
    assert machine_j == pytest.approx(scripted_j(scripted_rapl), abs=1e-9)  # the counter's
    assert 0.0 < result["spent"]["energy_j"] <= machine_j  # this process's share of it
