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
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from frugal.core.pareto import pareto_front
from frugal.core.status import Status
from frugal.report import compare, load_runs, plots
from frugal.report.cli import main
from frugal.report.collect import BUDGET_KEYS, Run, load_curve
from frugal.report.lifetime import Line, break_even, cheapest, frontier_spans
from frugal.report.table import CSV_COLUMNS


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


def only_run(run_dir: Path) -> Run:
    """The one run `frugal-report` reads under `run_dir` (none skipped)."""
    runs, skipped = load_runs([run_dir])
    assert not skipped and len(runs) == 1, skipped
    return runs[0]


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
    assert "| ★ | 1 | model=cnn seed=0 |" in report  # numbered as in the plots
    assert "900 J ±30% (codecarbon:cpu\\_load, est.)" not in report  # intraword _ kept
    assert "900 J ±30% (codecarbon:cpu_load, est.)" in report
    assert "1.8 kJ ±5% (rapl)" in report
    assert "5 runs did not record the uncertainty" not in report
    assert "4 runs recorded no energy uncertainty: assumed ±30% for an estimate" in report
    assert "### Over seeds" in report and "91.0 ± 1.4%" in report
    skipped = report.split("## Skipped")[1]
    assert "5`: result.json: invalid JSON" in skipped
    assert "6`: result.json: missing key metrics" in skipped
    assert "00-00-00/3`" not in skipped  # in the table: only its curve is missing
    curves = report.split("## Curves not drawn")[1].split("## Skipped")[0]
    assert "#4 `" in curves and "3` (model=big): curve.csv: missing" in curves
    runs_table = report.split("## Dataset: dataset unknown")[1].split("##")[0]
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
    assert not comparison.has_seed_groups(range(3))


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
    runs, skipped = load_runs([tmp_path])
    assert not runs and [s.path for s in skipped] == [tmp_path] and reason in skipped[0].reason


def test_non_numeric_amount_is_malformed(tmp_path: Path) -> None:
    result = fake_result(overrides=[])
    result["spent"]["energy_j"] = "812 J"
    write_run(tmp_path, json.dumps(result))
    runs, skipped = load_runs([tmp_path])
    assert not runs and "spent.energy_j is not a number: '812 J'" in skipped[0].reason


def test_bad_curve_skips_only_the_curve(tmp_path: Path) -> None:
    write_run(tmp_path, fake_result(overrides=[]))
    (tmp_path / "curve.csv").write_text("step,samples,energy_j,val/acc\n1,100,,0.5\n2,abc,3,0.6\n")
    run = only_run(tmp_path)
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
    assert only_run(tmp_path).overrides == ("model=cnn", "budget.energy=2kJ")


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


def test_no_plots_writes_tables_without_image_links(tmp_path: Path) -> None:
    write_run(tmp_path / "runs" / "0", fake_result(overrides=["model=cnn"]))
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "-o", str(out), "--no-plots"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "runs.csv"]
    assert ".png" not in (out / "report.md").read_text()


def with_data(result: dict[str, Any], name: str, digest: str = "c0ffee00") -> dict[str, Any]:
    result["data"] = {"name": name, "train": 4000, "val": 500, "test": 500, "hash": digest}
    return result


def test_datasets_never_share_a_frontier(tmp_path: Path) -> None:
    """Each dataset (name and content hash) is its own section and frontier; an older run
    without a data section falls back to its data= override, else to unknown."""
    runs = {
        "iris0": with_data(
            fake_result(overrides=["model=mlp"], test_acc=0.97, energy_j=5.0), "iris"
        ),
        "iris1": with_data(
            fake_result(overrides=["model=cnn"], test_acc=0.90, energy_j=9.0), "iris"
        ),
        "m0": with_data(
            fake_result(overrides=["model=mlp"], test_acc=0.60, energy_j=400.0), "mnist1d"
        ),
        "m1": with_data(
            fake_result(overrides=["model=cnn"], test_acc=0.80, energy_j=900.0), "mnist1d"
        ),
        "other": with_data(fake_result(overrides=["model=cnn"], test_acc=0.5), "mnist1d", "beef"),
        "old": fake_result(overrides=["data=digits", "model=cnn"], test_acc=0.99, energy_j=1.0),
    }
    for name, result in runs.items():
        write_run(tmp_path / "runs" / name, result)
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "-o", str(out)]) == 0

    rows = {Path(row["run_dir"]).name: row for row in read_rows(out / "runs.csv")}
    on_front = {name for name, row in rows.items() if row["on_frontier"] == "true"}
    # One frontier per dataset: the digits run (99 %, 1 J) would dominate every other one.
    assert on_front == {"iris0", "m0", "m1", "other", "old"}
    assert rows["old"]["dataset"] == "digits" and rows["old"]["data_hash"] == ""
    report = (out / "report.md").read_text()
    sections = [line for line in report.splitlines() if line.startswith("## Dataset: ")]
    assert sections == [
        "## Dataset: iris (hash c0ffee00) — 4k train / 500 val / 500 test",
        "## Dataset: mnist1d (hash c0ffee00) — 4k train / 500 val / 500 test",
        "## Dataset: digits (hash not recorded)",
        "## Dataset: mnist1d (hash beef) — 4k train / 500 val / 500 test",
    ]  # in the order first seen
    assert "on 4 datasets" in report
    image = matplotlib.image.imread(out / "pareto.png")
    assert image.shape[0] > image.shape[1]  # four rows of panels: taller than wide


def test_energy_within_uncertainty_is_not_resolved(tmp_path: Path) -> None:
    """README's sweep: three models at one 500 J budget, 451–458 J of a ±30 % estimate."""
    for name, energy, acc in (
        ("cnn", 451.0, 0.80),
        ("lowrank", 455.0, 0.84),
        ("wide", 458.0, 0.86),
    ):
        result = fake_result(overrides=[f"model={name}"], model=name, test_acc=acc, energy_j=energy)
        result["energy"]["uncertainty"] = 0.3
        write_run(tmp_path / "runs" / name, with_data(result, "mnist1d"))
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "-o", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert (
        "Energy differences between these runs (451–458 J) are within the ±30% estimate "
        "uncertainty: the frontier is not resolved in energy."
    ) in report
    assert "assumed" not in report.split("## Dataset")[1]  # the runs stated their uncertainty


def test_measured_energy_apart_is_resolved_and_close_neighbours_are_named(tmp_path: Path) -> None:
    points = (("a", 100.0, 0.70), ("b", 103.0, 0.75), ("c", 400.0, 0.90))
    for name, energy, acc in points:
        result = fake_result(
            overrides=[f"model={name}"], model=name, test_acc=acc, energy_j=energy, measured=True
        )
        write_run(tmp_path / name, result)
    runs, _ = load_runs([tmp_path])
    comparison = compare(runs)
    assert comparison.on_energy_front == [True, True, True]
    (unresolved,) = comparison.unresolved["dataset unknown"]
    assert unresolved.indices == (0, 1) and not unresolved.whole
    assert unresolved.uncertainty == 0.05 and unresolved.assumed  # ±5 % for a meter, assumed
    out = tmp_path / "out"
    assert main([str(tmp_path), "-o", str(out), "--no-plots"]) == 0
    report = (out / "report.md").read_text()
    assert "Frontier runs #1, #2 (100–103 J) differ in energy by less than the ±5% meter" in report
    assert "not resolved in energy." not in report


def test_compressed_run_shows_its_story(tmp_path: Path) -> None:
    result = fake_result(
        overrides=["compress=svd"], test_acc=0.88, energy_j=40.0, compute_flop=1e11
    )
    result["compression"] = {
        "method": "svd",
        "options": {"rank_ratio": 0.25},
        "source_run": "outputs/train/runs/base",
        "acc_after_compression": 0.61,
        "source_spent": {"energy_j": 900.0, "compute_flop": 2e12},
    }
    write_run(tmp_path / "runs" / "0", result)
    write_run(tmp_path / "runs" / "1", fake_result(overrides=["model=mlp"], test_acc=0.7))
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "-o", str(out), "--no-plots"]) == 0
    section = (out / "report.md").read_text().split("### Compressed runs")[1]
    assert (
        "| 1 | compress=svd | svd | outputs/train/runs/base | 61.0% | 88.0% | 40 J | 900 J "
        "| 940 J |" in section
    )
    assert "2.1 TFLOP" in section
    row = read_rows(out / "runs.csv")[0]
    assert row["acc_after_compression"] == "0.61" and float(row["total_energy_j"]) == 940.0
    assert read_rows(out / "runs.csv")[1]["total_energy_j"] == "800.0"


def test_lifetime_energy_adds_inference(tmp_path: Path) -> None:
    with_inference = fake_result(overrides=["model=cnn"], energy_j=800.0)
    with_inference["inference"] = {"energy_j_per_1k": 0.5}
    write_run(tmp_path / "runs" / "0", with_inference)
    write_run(tmp_path / "runs" / "1", fake_result(overrides=["model=mlp"], energy_j=300.0))
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "-o", str(out), "--no-plots", "--inferences", "1e6"]) == 0
    rows = read_rows(out / "runs.csv")
    assert float(rows[0]["lifetime_energy_j"]) == 800.0 + 1000 * 0.5
    assert rows[1]["lifetime_energy_j"] == ""  # no inference measured: unknown, not training only
    report = (out / "report.md").read_text()
    assert "lifetime energy (1M predictions) |" in report and "| 1.3 kJ |" in report


def lifetime_runs(root: Path) -> Path:
    """Four runs of one dataset: (model, test acc, training J, inference J per 1k).
    cnn: cheap to train; wide: most accurate, dear to serve; distilled: dear to train, cheap to
    serve; lowrank: beaten by cnn at every N (less accurate, dearer to train and to serve)."""
    spec = [
        ("cnn", 0.90, 800.0, 0.08),
        ("wide_cnn", 0.93, 2000.0, 0.5),
        ("distilled", 0.92, 2500.0, 0.05),
        ("lowrank", 0.88, 900.0, 0.1),
    ]
    for k, (model, acc, energy_j, per_1k) in enumerate(spec):
        result = fake_result(overrides=[f"model={model}"], model=model, test_acc=acc)
        result["spent"]["energy_j"] = energy_j
        result["inference"] = {"energy_j_per_1k": per_1k, "latency_ms_p50": 0.05}
        write_run(root / str(k), result)
    return root


def test_break_even_and_lifetime_frontier_in_report(tmp_path: Path) -> None:
    runs = lifetime_runs(tmp_path / "runs")
    out = tmp_path / "out"
    assert main([str(runs), "-o", str(out), "--no-plots"]) == 0
    report = (out / "report.md").read_text()
    section = report[report.index("### Lifetime energy") :]
    # wide (#2) and distilled (#3): 2000 + 0.5e-3 N = 2500 + 0.05e-3 N at N = 500 / 0.45e-3
    assert "| 1.11M | 2.56 kJ | #2 model=wide_cnn (93.0%) | #3 model=distilled (92.0%) |" in section
    # cnn (#1) and distilled: 1700 J / 0.03 mJ = 56.7M predictions
    assert "| 56.7M | 5.33 kJ | #1 model=cnn (90.0%) | #3 model=distilled (92.0%) |" in section
    assert "| 4 | model=lowrank | 88.0% | 900 J | 0.1 J | 1 kJ | no N |" in section
    assert "| 2 | model=wide_cnn | 93.0% | 2 kJ | 0.5 J | 2.5 kJ | every N |" in section
    assert "N ≤ 56.7M (beyond: #3)" in section and "N ≥ 1.11M (below: #2)" in section
    assert "whatever the accuracy: #1 (90.0%), then #3 (92.0%) from N = 56.7M." in section
    assert "order of magnitude" in section  # estimated energies: the caveat is said


def test_lifetime_plot_is_drawn_only_with_inference(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main([str(lifetime_runs(tmp_path / "runs")), "-o", str(out)]) == 0
    image = matplotlib.image.imread(out / "lifetime.png")
    assert image.shape[0] > 400 and image.shape[1] > 800
    assert "(lifetime.png)" in (out / "report.md").read_text()
    write_run(tmp_path / "plain" / "0", fake_result(overrides=["model=cnn"]))
    assert main([str(tmp_path / "plain"), "-o", str(tmp_path / "out2")]) == 0
    assert not (tmp_path / "out2" / "lifetime.png").exists()
    assert "lifetime.png" not in (tmp_path / "out2" / "report.md").read_text()


def _line(index: int, training_j: float, per_1k: float, accuracy: float | None = 0.9) -> Line:
    return Line(index, training_j, per_1k / 1000, accuracy)


def test_break_even_of_two_lines() -> None:
    cheap_to_train, cheap_to_serve = _line(0, 100.0, 1.0), _line(1, 1100.0, 0.5)
    crossing = break_even(cheap_to_train, cheap_to_serve)
    assert crossing is not None and crossing.n == pytest.approx(2e6)
    assert (crossing.cheap_first, crossing.cheap_later) == (0, 1)
    assert crossing.energy_j == pytest.approx(2100.0)
    assert break_even(cheap_to_serve, cheap_to_train) == crossing  # order does not matter
    assert break_even(_line(0, 100.0, 0.5), _line(1, 200.0, 1.0)) is None  # cheaper both ways
    assert break_even(_line(0, 100.0, 0.5), _line(1, 100.0, 1.0)) is None  # equal at N = 0 only


def test_cheapest_follows_the_lower_envelope() -> None:
    lines = [_line(0, 100.0, 1.0), _line(1, 1100.0, 0.5), _line(2, 10_000.0, 0.01)]
    # 0 until 2M; 1 until (10000-1100)/(0.49e-3) = 18.2M; then 2
    pieces = cheapest(lines)
    assert [i for _, i in pieces] == [0, 1, 2]
    assert pieces[1][0] == pytest.approx(2e6) and pieces[2][0] == pytest.approx(8900 / 0.49e-3)


def test_frontier_spans_are_one_interval_per_run() -> None:
    lines = [
        _line(0, 100.0, 1.0, accuracy=0.90),  # cheapest early; overtaken by 1 (more accurate)
        _line(1, 1100.0, 0.5, accuracy=0.92),  # on the frontier at every N (most accurate)
        _line(2, 50.0, 2.0, accuracy=0.80),  # cheapest up to 50k, then 0 is cheaper and better
        _line(3, 200.0, 1.5, accuracy=0.85),  # dominated by 0 at every N
        _line(4, 100.0, 1.0, accuracy=0.90),  # 0's twin: both stay on the frontier
    ]
    spans = frontier_spans(lines)
    assert spans[1] is not None and (spans[1].low, spans[1].high) == (0.0, math.inf)
    assert spans[0] is not None and spans[0].low == 0.0
    assert spans[0].high == pytest.approx(2e6) and spans[0].left_to == 1
    assert spans[2] is not None and spans[2].high == pytest.approx(5e4)
    assert spans[3] is None
    assert spans[4] == spans[0]


def test_long_numbers_are_rounded_in_labels_only_while_distinct(tmp_path: Path) -> None:
    lrs = ["0.0012345678901234", "0.0045678901234567", "0.0012349999999999"]
    for i, lr in enumerate(lrs):
        write_run(tmp_path / "a" / str(i), fake_result(overrides=[f"optimizer.lr={lr}"]))
    comparison = compare(load_runs([tmp_path / "a"])[0])
    assert comparison.labels == [f"lr={lr}" for lr in lrs]  # 0.00123 twice: kept exact
    for i, lr in enumerate(lrs[:2]):
        write_run(tmp_path / "b" / str(i), fake_result(overrides=[f"optimizer.lr={lr}"]))
    comparison = compare(load_runs([tmp_path / "b"])[0])
    assert comparison.labels == ["lr=0.00123", "lr=0.00457"]


def test_status_is_the_shared_enum(sweep: Path) -> None:
    runs, _ = load_runs([sweep])
    assert {run.status for run in runs} == {
        Status.COMPLETED,
        Status.BUDGET_EXHAUSTED,
        Status.REFUSED,
    }


def test_curve_gaps_stay_gaps(tmp_path: Path) -> None:
    """An empty cell is a NaN in the drawn line (a gap), neither dropped nor 0."""
    path = tmp_path / "curve.csv"
    path.write_text(
        "step,samples,compute_flop,energy_j,time_s,val/acc\n"
        "1,100,1e9,0,1,0.4\n2,200,2e9,,2,0.5\n3,300,3e9,9,3,\n4,400,4e9,12,4,0.7\n"
    )
    curve = load_curve(path)
    assert curve.energy_j == [0.0, None, 9.0, 12.0] and curve.val_acc == [0.4, 0.5, None, 0.7]
    fig = Figure()
    ax = fig.add_subplot()
    end = plots._draw_curve(
        ax, plots._nan_for_unknown(curve.energy_j), plots._nan_for_unknown(curve.val_acc), {}
    )
    (line,) = ax.get_lines()
    xs, ys = line.get_xdata(), line.get_ydata()
    assert len(xs) == 4 and xs[0] == 0.0 and math.isnan(xs[1]) and math.isnan(ys[2])
    assert end == (12.0, 0.7)


@pytest.mark.parametrize(
    ("costs", "scale"),
    [
        ([451.0, 455.0, 458.0], "linear"),  # a narrow span: no log axis
        ([2.0, 15.0, 300.0], "log"),
        ([0.0, 2.0, 300.0], "symlog"),  # a 0 J point stays on the axis
    ],
)
def test_cost_axis_never_drops_a_point(costs: list[float], scale: str) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    ax.scatter(costs, [0.5] * len(costs))
    plots._cost_axis(ax, costs, costs)
    assert ax.get_xscale() == scale
    low, high = ax.get_xlim()
    assert low <= min(costs) and high >= max(costs)


def test_hollow_legend_sample_has_the_plotted_shape(tmp_path: Path) -> None:
    for i in range(3):
        result = fake_result(
            overrides=[f"seed={i}"], seed=i, status="budget_exhausted", stopped_by="energy"
        )
        write_run(tmp_path / str(i), result)
    comparison = compare(load_runs([tmp_path])[0])
    handles = plots._pareto_handles(comparison, list(comparison.by_dataset().items()), ["k"] * 3)
    (hollow,) = [h for h in handles if isinstance(h, tuple) and "hollow" in h[1]]
    assert [sample.get_marker() for sample in hollow[0]] == ["s"]  # squares, as plotted
    shapes = [h.get_marker() for h in handles if isinstance(h, Line2D) and h.get_label()]
    assert "o" not in shapes  # no run completed: no circle in the legend
