"""frugal-report end to end on fake run directories, plus the Pareto frontier on its own."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest

from frugal.report import compare, load_runs, pareto_front
from frugal.report.cli import main
from frugal.report.collect import BUDGET_KEYS, load_curve, load_run
from frugal.report.table import CSV_COLUMNS
from frugal.report.units import si


def fake_result(
    *,
    overrides: list[str],
    model: str = "cnn",
    test_acc: float | None = 0.9,
    energy_j: float | None = 800.0,
    energy_method: str = "codecarbon:cpu_load",
    measured: bool = False,
    compute_flop: float = 2e12,
    status: str = "completed",
    stopped_by: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A result.json as a training run writes it (DESIGN.md)."""
    budget = dict.fromkeys(BUDGET_KEYS)
    budget["energy_j"] = 2000.0
    metrics = {"val/acc": None if test_acc is None else test_acc + 0.01, "test/loss": 0.3}
    if test_acc is not None:
        metrics["test/acc"] = test_acc
    return {
        "status": status,
        "stopped_by": stopped_by,
        "budget": budget,
        "spent": {
            "energy_j": energy_j,
            "carbon_g": None if energy_j is None else energy_j * 1e-4,
            "compute_flop": compute_flop,
            "data_samples": 40_000,
            "time_s": 61.5,
            "memory_bytes": 180 * 2**20,
            "params": 5_210,
        },
        "energy": {"method": energy_method, "measured": measured},
        "model": {
            "name": model,
            "params": 5_210,
            "params_effective": 5_210,
            "flop_per_sample": {"dense": 50_000, "effective": 50_000},
        },
        "plan": {"max_steps": 312, "binding": "energy"},
        "metrics": metrics,
        "steps": 312,
        "epochs": 4,
        "seed": seed,
        "versions": {"torch": "2.13.0", "frugal": "0.1.0"},
        "run": {"dir": "unused", "overrides": overrides, "name": "train"},
    }


def write_run(run_dir: Path, result: dict[str, Any] | str, curve_energy: bool = True) -> Path:
    """Write ``result.json`` (a dict, or raw text for malformed cases) and a 4-point curve."""
    run_dir.mkdir(parents=True, exist_ok=True)
    text = result if isinstance(result, str) else json.dumps(result)
    (run_dir / "result.json").write_text(text)
    if isinstance(result, dict):
        energy_j = result["spent"]["energy_j"]
        acc = result["metrics"].get("val/acc") or 0.5
        with (run_dir / "curve.csv").open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(
                ["step", "samples", "compute_flop", "energy_j", "time_s", "val/acc", "val/loss"]
            )
            for k in range(1, 5):
                energy = "" if energy_j is None or not curve_energy else energy_j * k / 4
                writer.writerow(
                    [78 * k, 10_000 * k, 5e11 * k, energy, 15 * k, acc * (0.6 + 0.1 * k), 1.0 / k]
                )
    return run_dir


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A multirun: three models, two seeds of one, a bad JSON, a missing key and no curve."""
    root = tmp_path / "multirun" / "2026-01-01" / "00-00-00"
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    runs = [
        fake_result(overrides=["model=cnn", "seed=0"], test_acc=0.92, energy_j=900.0),
        fake_result(overrides=["model=cnn", "seed=1"], test_acc=0.90, energy_j=950.0, seed=1),
        fake_result(
            overrides=["model=mlp", "seed=0"],
            model="mlp",
            test_acc=0.70,
            energy_j=300.0,
            compute_flop=4e11,
            status="budget_exhausted",
            stopped_by="energy",
        ),
        fake_result(
            overrides=["model=big", "seed=0"],
            model="big",
            test_acc=0.88,
            energy_j=1800.0,
            compute_flop=9e12,
            measured=True,
            energy_method="rapl",
        ),
        fake_result(
            overrides=["model=huge", "seed=0"],
            model="huge",
            test_acc=None,
            energy_j=None,
            status="refused",
            stopped_by="params",
        ),
    ]
    for i, result in enumerate(runs):
        write_run(root / str(i), result)
    (root / "3" / "curve.csv").unlink()  # the rapl run lost its curve
    write_run(root / "5", '{"status": "completed", "spent": ')  # truncated JSON
    broken = fake_result(overrides=["model=cnn", "seed=9"])
    del broken["metrics"]
    write_run(root / "6", json.dumps(broken))
    return tmp_path / "multirun"


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_report_writes_four_files_with_frontier_and_skips(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main([str(sweep), "-o", str(out)]) == 0

    rows = read_rows(out / "runs.csv")
    assert list(rows[0]) == list(CSV_COLUMNS)
    by_model = {row["model"]: row for row in rows}
    assert len(rows) == 5 and sorted(by_model) == ["big", "cnn", "huge", "mlp"]
    # Frontier on energy: mlp (cheapest) and cnn seed 0 (best); cnn seed 1 and big are dominated.
    frontier = {row["label"] for row in rows if row["on_frontier"] == "true"}
    assert frontier == {"model=cnn seed=0", "model=mlp"}
    refused = by_model["huge"]
    assert (
        refused["test_acc"] == ""
        and refused["energy_j"] == ""
        and refused["on_frontier"] == "false"
    )
    assert by_model["big"]["energy_measured"] == "true"
    assert by_model["big"]["curve_problem"] == "curve.csv: missing"
    assert float(by_model["mlp"]["energy_j"]) == 300.0
    assert by_model["mlp"]["overrides"] == "model=mlp seed=0"

    report = (out / "report.md").read_text()
    assert "★ | model=cnn seed=0" in report
    assert "900 J (codecarbon:cpu_load, est.)" in report
    assert "1.8 kJ (rapl)" in report
    assert "## Over seeds" in report and "91.0 ± 1.4%" in report
    skipped = report.split("## Skipped")[1]
    assert "5`: result.json: invalid JSON" in skipped
    assert "6`: result.json: missing key metrics" in skipped
    assert "3` (model=big): curve only — curve.csv: missing" in skipped
    runs_table = report.split("## Runs")[1].split("##")[0]
    star_rows = [line for line in runs_table.splitlines() if line.startswith("| ★")]
    assert len(star_rows) == 2 and runs_table.index("model=cnn seed=0") < runs_table.index("big")

    for name in ("pareto.png", "curves.png"):
        image = matplotlib.image.imread(out / name)
        assert (out / name).stat().st_size > 20_000
        assert image.shape[0] > 400 and image.shape[1] > 1000
        assert image[..., :3].std() > 0.05  # not a blank canvas


def test_default_out_is_report_in_the_working_dir(sweep: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(sweep)]) == 0
    names = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert names == ["curves.png", "pareto.png", "report.md", "runs.csv"]


def test_python_m_frugal_report_no_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "frugal.report", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == f"frugal-report: no result.json under {tmp_path}\n"


def test_labels_keep_what_varies_with_short_override_names(tmp_path: Path) -> None:
    for i, (model, energy) in enumerate([("cnn", "1kJ"), ("cnn", "2kJ"), ("mlp", "2kJ")]):
        overrides = [f"model={model}", f"budget.energy={energy}", "data=mnist1d", "seed=0"]
        write_run(tmp_path / str(i), fake_result(overrides=overrides, model=model))
    runs, _ = load_runs([tmp_path])
    comparison = compare(runs)
    assert comparison.labels == [
        "energy=1kJ model=cnn",
        "energy=2kJ model=cnn",
        "energy=2kJ model=mlp",
    ]
    assert not comparison.has_seed_groups


def test_cosmetic_overrides_neither_label_nor_split_runs(tmp_path: Path) -> None:
    runs_overrides = [
        ["model=cnn", "trainer.enable_progress_bar=False", "hydra.run.dir=a", "seed=0"],
        ["model=cnn", "trainer.enable_progress_bar=false", "hydra.run.dir=b", "seed=1"],
        ["model=mlp", "paths.cache_dir=/tmp/c", "seed=0"],
    ]
    for i, overrides in enumerate(runs_overrides):
        model = overrides[0].partition("=")[2]
        write_run(tmp_path / str(i), fake_result(overrides=overrides, model=model, seed=i % 2))
    runs, _ = load_runs([tmp_path])
    comparison = compare(runs)
    assert comparison.groups == ["model=cnn", "model=cnn", "model=mlp"]
    assert comparison.labels == ["model=cnn seed=0", "model=cnn seed=1", "model=mlp"]


def test_no_runs_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("frugal-report: no result.json under ")
    assert "Traceback" not in err and not (tmp_path / "report").exists()


def test_only_malformed_runs_exit_2_naming_the_reason(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "0", "[1, 2]")
    assert main([str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "top level is list, not an object" in err


def test_unknown_energy_curves_fall_back_to_samples(tmp_path: Path) -> None:
    result = fake_result(overrides=["model=cnn"], energy_j=None, energy_method="unavailable")
    write_run(tmp_path / "run", result)
    assert main([str(tmp_path / "run"), "-o", str(tmp_path / "out")]) == 0
    row = read_rows(tmp_path / "out" / "runs.csv")[0]
    assert row["energy_j"] == "" and row["on_frontier"] == "false"
    assert row["on_flop_frontier"] == "true"
    assert "unknown for 1 run" in (tmp_path / "out" / "report.md").read_text()
    assert matplotlib.image.imread(tmp_path / "out" / "curves.png").shape[0] > 400


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "invalid JSON"),
        ('{"status": "completed"}', "missing key spent, energy, model, metrics"),
        (json.dumps({**fake_result(overrides=[]), "status": "done"}), "unknown status 'done'"),
    ],
)
def test_malformed_result_reasons(tmp_path: Path, text: str, reason: str) -> None:
    write_run(tmp_path, text)
    with pytest.raises(ValueError, match=reason):
        load_run(tmp_path)


def test_non_numeric_amount_is_malformed(tmp_path: Path) -> None:
    result = fake_result(overrides=[])
    result["spent"]["energy_j"] = "812 J"
    write_run(tmp_path, json.dumps(result))
    with pytest.raises(ValueError, match=r"spent.energy_j is not a number: '812 J'"):
        load_run(tmp_path)


def test_bad_curve_skips_only_the_curve(tmp_path: Path) -> None:
    write_run(tmp_path, fake_result(overrides=[]))
    (tmp_path / "curve.csv").write_text("step,samples,energy_j,val/acc\n1,100,,0.5\n2,abc,3,0.6\n")
    run = load_run(tmp_path)
    assert run.curve is None and run.test_acc == 0.9
    assert run.curve_problem == "curve.csv: line 3: samples is not a number: 'abc'"


def test_curve_empty_energy_is_unknown_not_zero(tmp_path: Path) -> None:
    path = tmp_path / "curve.csv"
    path.write_text("step,samples,compute_flop,energy_j,time_s,val/acc\n1,100,1e9,,1.0,0.4\n")
    curve = load_curve(path)
    assert curve.energy_j == [None] and curve.samples == [100.0] and curve.val_acc == [0.4]


def test_hydra_overrides_file_labels_runs_without_run_section(tmp_path: Path) -> None:
    result = fake_result(overrides=[])
    del result["run"]
    write_run(tmp_path, result)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- model=cnn\n- budget.energy=2kJ\n")
    assert load_run(tmp_path).overrides == ("model=cnn", "budget.energy=2kJ")


@pytest.mark.parametrize(
    ("costs", "scores", "expected"),
    [
        ([], [], []),
        ([1.0], [0.5], [True]),
        # cheaper-and-worse and dearer-and-better are both on the frontier
        ([1.0, 2.0, 3.0], [0.5, 0.7, 0.6], [True, True, False]),
        # exact duplicates: neither dominates the other, both are on it
        ([1.0, 1.0, 2.0], [0.8, 0.8, 0.8], [True, True, False]),
        # tie on cost: only the better score; tie on score: only the cheaper
        ([1.0, 1.0, 0.5], [0.6, 0.9, 0.6], [False, True, True]),
        # unknown or non-finite values are never on it and never dominate
        ([None, 1.0, 2.0, math.nan], [0.99, 0.5, None, 0.99], [False, True, False, False]),
    ],
)
def test_pareto_front(costs: list, scores: list, expected: list[bool]) -> None:
    assert pareto_front(costs, scores) == expected


def test_pareto_front_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        pareto_front([1.0], [])


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (812.4, "J", "812 J"),
        (999.6, "J", "1 kJ"),
        (2.5e12, "FLOP", "2.5 TFLOP"),
        (5210, "", "5.21k"),
        (None, "J", "unknown"),
        (0.5, "J", "0.5 J"),
    ],
)
def test_si_keeps_units_and_unknown(value: float | None, unit: str, text: str) -> None:
    assert si(value, unit) == text


def test_no_plots_writes_tables_without_image_links(tmp_path: Path) -> None:
    write_run(tmp_path / "runs" / "0", fake_result(overrides=["model=cnn"]))
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "-o", str(out), "--no-plots"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "runs.csv"]
    assert ".png" not in (out / "report.md").read_text()
