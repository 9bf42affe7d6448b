"""Successive halving in a sweep envelope (`frugal.sweep.halving` and the Hydra sweeper that
uses it). No training: jobs are simulated by a fake launcher that books envelope.json and
writes result.json as a real job would."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from omegaconf import OmegaConf

from frugal.core.pareto import non_dominated_fronts
from frugal.core.units import COMPUTE, ENERGY, parse_amount
from frugal.runs.record import write_json_atomic
from frugal.sweep import halving
from frugal.sweep.envelope import ENVELOPE_FILE, locked, read_envelope, remaining, total_charged
from frugal.sweep.halving import Trial


# ---- the rung plan ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "sizes"),
    [(1, [1]), (2, [2]), (3, [3, 1]), (9, [9, 3, 1]), (12, [12, 4, 1]), (26, [26, 8, 2])],
)
def test_rung_sizes_follow_the_standard_plan(n: int, sizes: list[int]) -> None:
    assert halving.rung_sizes(n, 3) == sizes


def test_top_rung_holds_one_to_eta_minus_one_and_exact_powers_are_exact() -> None:
    for eta in (2, 3, 4):
        for n in range(1, 300):
            sizes = halving.rung_sizes(n, eta)
            assert 1 <= sizes[-1] < eta or len(sizes) == 1
            assert all(b == a // eta for a, b in itertools.pairwise(sizes))
    assert halving.rung_sizes(243, 3) == [243, 81, 27, 9, 3, 1]  # log(243, 3) is 4.999...


@pytest.mark.parametrize(("n", "eta"), [(0, 3), (5, 1), (5, 2.5), (5, True)])
def test_rung_plan_rejects_bad_arguments(n: int, eta: Any) -> None:
    with pytest.raises(ValueError):
        halving.rung_sizes(n, eta)


def test_job_numbers_of_a_rung_start_after_the_planned_rungs_below() -> None:
    assert halving.rung_offsets([12, 4, 1]) == [0, 12, 16]
    trials = halving.rung_trials([["a=1"], ["a=2"], ["a=3"]], [2, 0], 1, 12, {"energy_j": 5.0})
    assert [(t.config, t.job_num) for t in trials] == [(0, 12), (2, 13)]  # configuration order
    assert trials[0].overrides == ["a=1", "budget.energy=5"]


# ---- the allocation --------------------------------------------------------------------------
def planned(total: dict[str, float], sizes: list[int]) -> list[dict[str, float]]:
    """b_r per rung as the sweeper computes it before each rung, from what is left, when every
    trial spends exactly its budget."""
    left, budgets = dict(total), []
    for rung, size in enumerate(sizes):
        budgets.append(halving.per_trial_budget(left, sizes[rung:], 3))
        left = {key: amount - size * budgets[-1][key] for key, amount in left.items()}
    return budgets


def test_allocation_spends_the_envelope_exactly() -> None:
    sizes = halving.rung_sizes(12, 3)
    total = {"energy_j": 1600.0, "compute_flop": 3e12}
    budgets = planned(total, sizes)
    for key, amount in total.items():
        assert sum(n * b[key] for n, b in zip(sizes, budgets, strict=True)) == pytest.approx(
            amount, rel=1e-12
        )
        assert budgets[1][key] == pytest.approx(3 * budgets[0][key])
        assert budgets[2][key] == pytest.approx(9 * budgets[0][key])
    assert budgets[0]["energy_j"] == pytest.approx(1600 / (12 + 4 * 3 + 1 * 9))


def test_budget_on_the_command_line_is_rounded_down_and_parses() -> None:
    sizes = [12, 4, 1]
    budgets = planned({"energy_j": 1600.0, "compute_flop": 1.5e12}, sizes)
    for key, expected in (("energy_j", 1600.0), ("compute_flop", 1.5e12)):
        asked = [float(halving.amount_text(key, b[key])) for b in budgets]
        total = sum(n * a for n, a in zip(sizes, asked, strict=True))
        assert expected * (1 - 1e-5) <= total <= expected  # never above the envelope
        assert parse_amount(asked[0], ENERGY if key == "energy_j" else COMPUTE) == asked[0]
    lines = halving.budget_overrides(
        {"energy_j": 48.48, "compute_flop": 2.142857e11, "data_samples": 3030.3}
    )
    assert lines == ["budget.energy=48.48", "budget.compute=2.14285e+11", "budget.data=3030"]
    parsed = OverridesParser.create().parse_overrides(lines)
    assert parse_amount(parsed[1].value(), COMPUTE) == pytest.approx(2.14285e11)
    assert halving.round_down(48.0) == 48.0
    assert halving.spent_out({"energy_j": 0.0}) and halving.spent_out({"data_samples": 0.4})
    assert not halving.spent_out({"energy_j": 1e-3})


def _job(status: str, reserved: float, spent: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "dir": "",
        "status": status,
        "reserved": {"energy_j": reserved},
        "spent": None if spent is None else {"energy_j": spent},
        "prior_spent": {"energy_j": 0.0},
        "attempts": 1,
        "metrics": None,
        **extra,
    }


def _state(envelope_j: float, jobs: dict[str, dict]) -> dict[str, Any]:
    envelope = dict.fromkeys(["carbon_g", "compute_flop", "data_samples", "time_s"])
    return {"version": 1, "envelope": {"energy_j": envelope_j, **envelope}, "jobs": jobs}


def test_under_spend_is_returned_to_the_later_rungs() -> None:
    sizes = [12, 4, 1]
    b0 = halving.per_trial_budget({"energy_j": 1650.0}, sizes, 3)["energy_j"]
    assert b0 == pytest.approx(50.0)
    # rung 0 spent half of what it reserved: the rest is shared by rungs 1 and 2
    state = _state(1650.0, {str(i): _job("completed", 50.0, 25.0) for i in range(12)})
    rung0 = [str(i) for i in range(12)]
    left = halving.remaining_for_rung(state, rung0, remaining)
    assert left == {"energy_j": pytest.approx(1650.0 - 12 * 25.0)}
    b1 = halving.per_trial_budget(left, halving.sizes_from(sizes, 1, 4), 3)["energy_j"]
    assert b1 == pytest.approx(1350.0 / (4 + 3))
    assert b1 > 3 * b0  # more than planned
    # the rung's own jobs (started in an earlier launch) do not change its budget
    state["jobs"]["12"] = _job("completed", b1, b1)
    state["jobs"]["13"] = _job("running", b1, None)
    assert halving.remaining_for_rung(state, rung0, remaining) == left
    # the top rung takes everything left
    rung1 = {str(12 + i): _job("completed", b1, 100.0) for i in range(4)}
    state["jobs"].update(rung1)
    left2 = halving.remaining_for_rung(state, [*rung0, *rung1], remaining)
    top = halving.per_trial_budget(left2, halving.sizes_from(sizes, 2, 1), 3)["energy_j"]
    assert top == pytest.approx(1650.0 - 300.0 - 400.0)


def test_a_thinner_rung_caps_the_later_ones() -> None:
    assert halving.sizes_from([27, 9, 3, 1], 1, 2) == [2, 2, 1]
    assert halving.rung_weight([2, 2, 1], 3) == 2 + 6 + 9


# ---- objectives and promotion ----------------------------------------------------------------
def test_objectives_are_promoted_by_validation_metrics_with_their_direction() -> None:
    by_name = {o.name: o for o in halving.objectives_of(["test/acc", "val/loss", "energy_j"])}
    assert by_name["test/acc"].key == "val/acc" and by_name["test/acc"].maximize
    assert by_name["val/loss"].key == "val/loss" and not by_name["val/loss"].maximize
    assert by_name["energy_j"].key == "energy_j" and not by_name["energy_j"].maximize
    assert halving.objective("test/loss").key == "val/loss"
    assert [o.name for o in halving.objectives_of("test/acc")] == ["test/acc"]
    with pytest.raises(ValueError):
        halving.objectives_of([3])


def _values(val_acc: float | None, test_acc: float, energy_j: float = 10.0) -> dict[str, float]:
    values = {"test/acc": test_acc, "energy_j": energy_j, "val/loss": 1.0 - (val_acc or 0)}
    if val_acc is not None:
        values["val/acc"] = val_acc
    return values


def test_single_objective_promotes_the_top_by_validation_never_by_test() -> None:
    objectives = halving.objectives_of(["test/acc"])
    candidates = {
        "0": _values(0.70, 0.99),  # best on test, worst on validation
        "1": _values(0.90, 0.60),
        "2": _values(0.80, 0.70),
        "3": _values(0.85, 0.65),
    }
    assert halving.promote(candidates, 2, objectives) == ["1", "3"]
    assert halving.rank(candidates, objectives) == ["1", "3", "2", "0"]
    loss = halving.objectives_of(["val/loss"])
    assert halving.promote(candidates, 1, loss) == ["1"]  # lower loss is better


def test_multi_objective_never_promotes_a_dominated_trial_over_a_non_dominated_one() -> None:
    objectives = halving.objectives_of(["test/acc", "energy_j"])
    candidates = {
        "0": _values(0.80, 0.99, energy_j=20.0),  # dominated by 1 (test/acc is not looked at)
        "1": _values(0.90, 0.50, energy_j=10.0),
        "2": _values(0.70, 0.50, energy_j=5.0),  # worse accuracy, cheaper: not dominated
        "3": _values(0.60, 0.50, energy_j=30.0),  # dominated by all
    }
    assert set(halving.promote(candidates, 2, objectives)) == {"1", "2"}
    assert halving.rank(candidates, objectives)[2:] == ["0", "3"]


def test_non_dominated_sort_and_crowding_distance() -> None:
    points = [(0.0, 4.0), (1.0, 2.0), (2.0, 1.9), (4.0, 0.0), (2.0, 3.0), (5.0, 5.0)]
    assert non_dominated_fronts(points) == [[0, 1, 2, 3], [4], [5]]
    crowding = halving.crowding_distance(points, [0, 1, 2, 3])
    assert math.isinf(crowding[0]) and math.isinf(crowding[3])
    assert crowding[1] == pytest.approx((2 - 0) / 4 + (4 - 1.9) / 4)
    assert crowding[2] == pytest.approx((4 - 1) / 4 + (2 - 0) / 4)
    # the front's last slot goes to the least crowded point
    objectives = [halving.objective("energy_j"), halving.objective("time_s")]
    candidates = {str(i): {"energy_j": p[0], "time_s": p[1]} for i, p in enumerate(points)}
    assert halving.promote(candidates, 3, objectives) == ["0", "3", "2"]


def test_trials_without_metrics_rank_last_and_are_never_promoted() -> None:
    objectives = halving.objectives_of(["test/acc"])
    refused = halving.outcome_values({"status": "refused", "metrics": None}, None)
    diverged = halving.outcome_values(
        None, {"status": "diverged", "metrics": {"val/acc": 0.99}, "spent": {}}
    )
    failed = halving.outcome_values(None, None)
    no_val = _values(None, 0.99)
    assert refused is None and diverged is None and failed is None
    candidates = {"0": refused, "1": _values(0.5, 0.5), "2": diverged, "3": no_val, "4": failed}
    assert halving.rank(candidates, objectives) == ["1", "0", "2", "3", "4"]
    assert halving.promote(candidates, 3, objectives) == ["1"]
    assert halving.promote({"0": None}, 1, objectives) == []


def test_outcome_values_read_result_json_first_then_the_envelope_entry() -> None:
    entry = {"status": "completed", "metrics": {"val/acc": 0.5}, "spent": {"energy_j": 3.0}}
    result = {
        "status": "budget_exhausted",
        "metrics": {"val/acc": 0.8, "test/acc": 0.7, "val/loss": None},
        "spent": {"energy_j": 4.0, "time_s": None},
    }
    assert halving.outcome_values(entry, result) == {
        "val/acc": 0.8,
        "test/acc": 0.7,
        "energy_j": 4.0,
    }
    assert halving.outcome_values(entry, None) == {"val/acc": 0.5, "energy_j": 3.0}


# ---- resume ----------------------------------------------------------------------------------
def test_resume_launches_only_the_trials_that_did_not_end(tmp_path: Path) -> None:
    jobs = {
        "0": _job("completed", 50.0, 45.0, metrics={"val/acc": 0.9}),
        "1": _job("running", 50.0, None),  # killed: resumed by its job
        "2": _job("interrupted", 50.0, None),
        "3": _job("refused", 50.0, 0.0),  # ended for good, without metrics
        "5": _job("running", 50.0, None),  # settled nowhere, but its result.json says done
    }
    write_json_atomic(tmp_path / ENVELOPE_FILE, _state(1600.0, jobs))
    write_json_atomic(tmp_path / "5" / "result.json", {"status": "budget_exhausted"})
    write_json_atomic(tmp_path / "2" / "result.json", {"status": "interrupted"})
    state = read_envelope(tmp_path)
    assert state is not None
    trials = [Trial(config=i, rung=0, job_num=i, overrides=[], job_id=str(i)) for i in range(7)]
    results = {}
    for trial in trials:
        path = tmp_path / trial.job_id / "result.json"
        results[trial.job_id] = json.loads(path.read_text()) if path.is_file() else None
    launch, reuse = halving.select_to_launch(trials, state["jobs"], results)
    assert [t.job_id for t in launch] == ["1", "2", "4", "6"]  # 4, 6: never started
    assert [t.job_id for t in reuse] == ["0", "3", "5"]
    batches = halving.contiguous(launch, max_batch=None)
    assert [[t.job_num for t in b] for b in batches] == [[1, 2], [4], [6]]
    assert [[t.job_num for t in b] for b in halving.contiguous(launch, 1)] == [[1], [2], [4], [6]]


# ---- the sweeper, with simulated jobs ---------------------------------------------------------
class FakeLauncher:
    """Runs each job as frugal's job side would, without training: reserves its budget in
    envelope.json, spends `spend_share` of it and writes result.json. val/acc grows with
    `a`, test/acc shrinks with it (promotion must not look at the test set)."""

    def __init__(self, sweep_dir: Path, spend_share: float = 0.5, ckpt: bool = False) -> None:
        self.sweep_dir = sweep_dir
        self.spend_share = spend_share
        self.ckpt = ckpt  # leave checkpoints/last.ckpt, as a real job does
        self.launched: list[tuple[int, list[str]]] = []

    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        returns = []
        for i, overrides in enumerate(job_overrides):
            num = initial_job_idx + i
            self.launched.append((num, list(overrides)))
            values = dict(line.split("=", 1) for line in overrides)
            run_dir = self.sweep_dir / str(num)
            (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
            (run_dir / ".hydra" / "overrides.yaml").write_text(
                OmegaConf.to_yaml(OmegaConf.create(list(overrides)))
            )
            asked = float(values["budget.compute"])
            with locked(self.sweep_dir) as book:
                reserved = min(asked, remaining(book["state"])["compute_flop"])
                book["state"]["jobs"][str(num)] = {
                    "dir": str(run_dir),
                    "status": "running",
                    "reserved": {"compute_flop": reserved},
                    "spent": None,
                    "prior_spent": {"compute_flop": 0.0},
                    "attempts": 1,
                    "metrics": None,
                }
            a, b = int(values["a"]), int(values["b"])
            result = {
                "status": "budget_exhausted",
                "metrics": {"val/acc": a / 10 + b / 100, "test/acc": 1 - a / 10},
                "spent": {"compute_flop": reserved * self.spend_share, "energy_j": 1.0},
            }
            write_json_atomic(run_dir / "result.json", result)
            if self.ckpt:
                (run_dir / "checkpoints").mkdir(exist_ok=True)
                (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"weights")
            with locked(self.sweep_dir) as book:
                job = book["state"]["jobs"][str(num)]
                job.update(status=result["status"], metrics=result["metrics"])
                job["spent"] = {"compute_flop": result["spent"]["compute_flop"]}
            returns.append(JobReturn(status=JobStatus.COMPLETED, _return_value=None))
        return returns


def _sweeper(sweep_dir: Path, launcher: FakeLauncher, **kwargs: Any) -> Any:
    from frugal.sweep.plugins import register

    register()
    from hydra_plugins.frugal_sweepers.halving_sweeper import HalvingSweeper

    sweeper = HalvingSweeper(**kwargs)
    sweeper.config = OmegaConf.create(
        {
            "objectives": ["test/acc"],
            "hydra": {"sweep": {"dir": str(sweep_dir), "subdir": "${hydra.job.num}"}},
        }
    )
    sweeper.objectives = halving.objectives_of(sweeper.config.objectives)
    sweeper.launcher = launcher
    return sweeper


def _open_envelope(sweep_dir: Path, compute_flop: float) -> None:
    envelope = {"energy_j": None, "carbon_g": None, "compute_flop": compute_flop}
    write_json_atomic(
        sweep_dir / ENVELOPE_FILE,
        {"version": 1, "sweep_id": "t", "envelope": envelope, "planned_jobs": None, "jobs": {}},
    )


GRID = ["a=1,2,3,4", "b=1,2,3", "sweep_budget.compute=3.3e9"]


def test_sweeper_runs_the_rungs_within_the_envelope(tmp_path: Path) -> None:
    _open_envelope(tmp_path, 3.3e9)
    launcher = FakeLauncher(tmp_path)
    _sweeper(tmp_path, launcher).sweep(GRID)
    nums = [num for num, _ in launcher.launched]
    assert nums == list(range(17))  # 12 + 4 + 1, numbered by the plan
    record = json.loads((tmp_path / halving.HALVING_FILE).read_text())
    assert [r["trials"] for r in record["rungs"]][1:] == [["12", "13", "14", "15"], ["16"]]
    assert record["rungs"][0]["budget"]["compute_flop"] == pytest.approx(1e8)
    # rung 0 spent half: rung 1 gets more than its planned 3e8 each
    assert record["rungs"][1]["budget"]["compute_flop"] > 3e8
    assert record["rungs"][0]["promoted"] == ["11", "10", "9", "8"]  # a=4, then a=3 b=3; best first
    assert record["best"]["job"] == "16"
    assert "a=4" in record["best"]["overrides"] and "b=3" in record["best"]["overrides"]
    state = read_envelope(tmp_path)
    assert state is not None and state["jobs"]["16"]["rung"] == 2
    assert total_charged(state)["compute_flop"] <= 3.3e9
    top = dict(line.split("=", 1) for line in launcher.launched[-1][1])
    assert float(top["budget.compute"]) == pytest.approx(
        record["rungs"][2]["budget"]["compute_flop"], rel=1e-5
    )


@pytest.mark.parametrize("warm_start", [True, False])
def test_promoted_trials_continue_their_lower_rung_s_weights(tmp_path: Path, warm_start) -> None:
    sweep_dir = tmp_path / "a sweep, with=odd 'chars'"  # the path must survive Hydra's parser
    sweep_dir.mkdir()
    _open_envelope(sweep_dir, 3.3e9)
    launcher = FakeLauncher(sweep_dir, ckpt=True)
    _sweeper(sweep_dir, launcher, warm_start=warm_start).sweep(GRID)
    record = json.loads((sweep_dir / halving.HALVING_FILE).read_text())
    parser = OverridesParser.create()
    started_from = {}
    for num, overrides in launcher.launched:
        for override in parser.parse_overrides(overrides):
            if override.key_or_group == "init_from":
                started_from[str(num)] = override.value()
    if not warm_start:
        assert started_from == {} and record["warm_start"] is False
        return
    # each promoted trial starts from the last weights of its configuration one rung below
    continued = {**record["rungs"][1]["continued_from"], **record["rungs"][2]["continued_from"]}
    assert record["rungs"][0]["continued_from"] == {}
    assert sorted(continued) == [str(n) for n in range(12, 17)]
    for rung in record["rungs"][1:]:
        lower = record["rungs"][rung["rung"] - 1]
        for job, config in zip(rung["trials"], rung["configurations"], strict=True):
            below = lower["trials"][lower["configurations"].index(config)]
            assert continued[job] == below
            assert started_from[job] == str(sweep_dir / below / "checkpoints" / "last.ckpt")


def test_override_text_reads_back_unchanged() -> None:
    parser = OverridesParser.create()
    for text in ["/a b/c,d=e/x.ckpt", "/a'b", "/a\\b", "/a\\'b", "end\\", "[x]"]:
        (override,) = parser.parse_overrides([f"init_from={halving.override_text(text)}"])
        assert override.value() == text


def test_relaunched_sweeper_runs_only_what_did_not_end(tmp_path: Path) -> None:
    _open_envelope(tmp_path, 3.3e9)
    _sweeper(tmp_path, FakeLauncher(tmp_path)).sweep(GRID)
    first = json.loads((tmp_path / halving.HALVING_FILE).read_text())
    # job 3 (rung 0) and job 13 (rung 1) were killed; the top rung never ran
    with locked(tmp_path) as book:
        for num in ("3", "13"):
            book["state"]["jobs"][num].update(status="running", spent=None, metrics=None)
        del book["state"]["jobs"]["16"]
    for num in ("3", "13", "16"):
        (tmp_path / num / "result.json").unlink()
    launcher = FakeLauncher(tmp_path)
    _sweeper(tmp_path, launcher).sweep(GRID)
    assert [num for num, _ in launcher.launched] == [3, 13, 16]
    again = json.loads((tmp_path / halving.HALVING_FILE).read_text())
    assert [r["promoted"] for r in again["rungs"]] == [r["promoted"] for r in first["rungs"]]
    assert again["rungs"][0]["budget"] == first["rungs"][0]["budget"]
    assert again["best"]["job"] == "16"


def test_relaunch_into_another_grid_is_refused(tmp_path: Path) -> None:
    _open_envelope(tmp_path, 3.3e9)
    _sweeper(tmp_path, FakeLauncher(tmp_path)).sweep(GRID)
    with pytest.raises(HydraException, match="ran"):
        _sweeper(tmp_path, FakeLauncher(tmp_path)).sweep(["a=5,6,7,8", *GRID[1:]])


def test_sweeper_needs_an_envelope_and_owns_the_trial_budget(tmp_path: Path) -> None:
    with pytest.raises(HydraException, match="sweep_budget"):
        _sweeper(tmp_path, FakeLauncher(tmp_path)).sweep(GRID)
    _open_envelope(tmp_path, 3.3e9)
    with pytest.raises(HydraException, match=r"budget\.compute"):
        _sweeper(tmp_path, FakeLauncher(tmp_path)).sweep([*GRID, "budget.compute=1e9"])
    with pytest.raises(HydraException, match="grid"):
        _sweeper(tmp_path, FakeLauncher(tmp_path)).sweep(["a=interval(0,1)", *GRID[1:]])


def test_sweeper_takes_its_grid_from_params_and_batches_launches(tmp_path: Path) -> None:
    _open_envelope(tmp_path, 1e9)
    launcher = FakeLauncher(tmp_path)
    sweeper = _sweeper(tmp_path, launcher, params={"a": "1,2,3"}, max_batch_size=2, eta=2)
    calls: list[int] = []
    launch = launcher.launch

    def counted(job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        calls.append(len(job_overrides))
        return launch(job_overrides, initial_job_idx)

    launcher.launch = counted  # type: ignore[method-assign]
    sweeper.sweep(["b=1", "sweep_budget.compute=1e9"])
    assert calls == [2, 1, 1]  # 3 trials in batches of 2, then 1 promoted (eta=2: 3, 1)
    assert [num for num, _ in launcher.launched] == [0, 1, 2, 3]
