"""frugal-report on size-search runs (``size_search`` in result.json, pilot runs under
``pilots/``) and on sweeps with a shared envelope (``envelope.json``, ``halving.json``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from test_report import fake_result, read_rows, write_run

from frugal.report.cli import main
from frugal.report.collect import collect_runs
from frugal.report.envelope import load_envelope, load_envelopes
from frugal.report.size_search import Fit, load_size_searches, parse_size_search

FIT = {"form": "e + a * x^-alpha", "e": 0.3, "a": 3.0, "alpha": 0.5, "ok": True}


def fitted_points(fit: dict[str, float], xs: list[float]) -> list[list[float]]:
    return [[x, fit["e"] + fit["a"] * x ** -fit["alpha"]] for x in xs]


def size_search(**changes: Any) -> dict[str, Any]:
    """A size_search section as a width_mult=auto run writes it: three candidates, the middle
    one's fit failed, width 1 chosen."""
    wide = {**FIT, "e": 0.1, "a": 6.0}
    section = {
        "knob": "width_mult",
        "metric": "val/loss",
        "budget_key": "energy_j",
        "budget": 400.0,
        "share": 0.2,
        "candidates": [
            {
                "size": 0.25,
                "dir": "pilots/width_mult=0.25",
                "status": "budget_exhausted",
                "spent": {"energy_j": 20.0, "time_s": 1.1},
                "points": fitted_points(FIT, [5.0, 10.0, 15.0, 20.0]),
                "fit": FIT,
                "predicted": 0.46,
            },
            {
                "size": 0.5,
                "dir": "pilots/width_mult=0.5",
                "status": "budget_exhausted",
                "spent": {"energy_j": 25.0},
                "points": [[12.0, 1.5], [25.0, 1.4]],
                "fit": {
                    "form": "e + a * x^-alpha",
                    "e": None,
                    "a": None,
                    "alpha": None,
                    "ok": False,
                },
                "predicted": None,
            },
            {
                "size": 1.0,
                "dir": "pilots/width_mult=1.0",
                "status": "budget_exhausted",
                "spent": {"energy_j": 33.0},
                "points": fitted_points(wide, [8.0, 16.0, 24.0, 33.0]),
                "fit": wide,
                "predicted": 0.42,
            },
        ],
        "pilot_spent": {"energy_j": 78.0},
        "final_budget": {"energy_j": 322.0},
        "choice": 1.0,
        "predicted": 0.42,
        "predicted_at": 355.0,
        "achieved": {"val/loss": 0.45, "val/acc": 0.93, "test/acc": 0.92},
        "final_points": [[100.0, 0.75], [200.0, 0.55], [355.0, 0.45]],
        "warm_start": True,
    }
    section.update(changes)
    return section


def write_search_run(run_dir: Path, section: Any = None) -> Path:
    """A size-search run with its pilots: one says ``role: pilot``, one only lives under
    ``pilots/`` (either is enough to leave it out of the runs)."""
    result = fake_result(overrides=["model=cnn", "model.kwargs.width_mult=auto"])
    result["size_search"] = size_search() if section is None else section
    write_run(run_dir, result)
    pilot = fake_result(overrides=["model=cnn", "model.kwargs.width_mult=0.25"], test_acc=0.5)
    pilot["run"]["role"] = "pilot"
    write_run(run_dir / "pilots" / "width_mult=0.25", pilot)
    unmarked = fake_result(overrides=["model=cnn", "model.kwargs.width_mult=1.0"], test_acc=0.6)
    write_run(run_dir / "pilots" / "width_mult=1.0", unmarked)
    return run_dir


def job(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "dir": None,
        "status": status,
        "reserved": {"energy_j": 500.0},
        "spent": None,
        "prior_spent": {"energy_j": 0.0},
        "attempts": 1,
        "started": None,
        "ended": None,
        "metrics": None,
        "rung": None,
        **fields,
    }


def write_sweep(root: Path, halving: dict[str, Any] | str | None = None) -> Path:
    """A multirun of three jobs under a 1.6 kJ envelope: job 0 completed (400 J), job 1 on its
    second attempt (300 J now, 100 J before), job 2 still running (or killed) with 500 J
    reserved. Charged: 400 + 400 + 500 = 1.3 kJ."""
    root.mkdir(parents=True)
    energies = {"0": 400.0, "1": 300.0}
    for job_id, energy in energies.items():
        write_run(root / job_id, fake_result(overrides=[f"seed={job_id}"], energy_j=energy))
    jobs = {
        "0": job(
            "completed",
            dir=str(root / "0"),
            spent={"energy_j": 400.0},
            started="2026-11-23T10:00:00+00:00",
            metrics={"val/acc": 0.9},
            rung=0,
        ),
        "2": job("running", dir=str(root / "2"), started="2026-11-23T10:02:00+00:00", rung=1),
        "1": job(
            "completed",
            dir=str(root / "1"),
            spent={"energy_j": 300.0},
            prior_spent={"energy_j": 100.0},
            attempts=2,
            started="2026-11-23T10:01:00",  # no zone: UTC
            rung=0,
        ),
    }
    envelope = {
        "version": 1,
        "sweep_id": "ab12cd34ef",
        "envelope": {"energy_j": 1600.0, "carbon_g": None, "time_s": None},
        "planned_jobs": 4,
        "jobs": jobs,
    }
    (root / "envelope.json").write_text(json.dumps(envelope))
    if halving is not None:
        text = halving if isinstance(halving, str) else json.dumps(halving)
        (root / "halving.json").write_text(text)
    return root


HALVING = {
    "rungs": [
        {"rung": 0, "budget": {"energy_j": 48.0}, "trials": ["0", "1"], "promoted": ["0"]},
        {"rung": 1, "budget": {"energy_j": 144.0}, "trials": ["2"], "promoted": []},
    ],
    "best": {"job": "0", "overrides": ["seed=0"], "metrics": {"val/acc": 0.9}},
}


def not_blank(path: Path) -> None:
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert image[..., :3].std() > 0.05


def test_size_search_section_plot_and_pilots_left_out(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_search_run(root / "search")
    write_run(root / "plain", fake_result(overrides=["model=mlp"], model="mlp", energy_j=300.0))
    orphan = fake_result(overrides=["model=cnn"], test_acc=0.4)
    orphan["run"]["role"] = "pilot"
    write_run(root / "lost" / "pilots" / "width_mult=2", orphan)
    write_run(root / "broken" / "pilots" / "x", "{not json")  # under no size-search run
    out = tmp_path / "out"

    assert main([str(root), "-o", str(out)]) == 0

    rows = read_rows(out / "runs.csv")
    assert sorted(Path(row["run_dir"]).name for row in rows) == ["plain", "search"]
    assert not any("pilots" in row["run_dir"] for row in rows)
    report = (out / "report.md").read_text()
    section = report.split("## Size search")[1].split("\n## ")[0]
    assert report.index("## Size search") < report.index("## Skipped")  # before the lists
    assert "![size search: pilot curves, fits and predictions](size_search.png)" in section
    assert "| ★ 1 | budget_exhausted | 33 J | 4 |" in section
    assert "| 0.5 | budget_exhausted | 25 J | 2 | fit failed | unknown |  |" in section
    assert "e = 0.3, a = 3, α = 0.5 | 0.46 |  |" in section
    assert "pilots spent 78 J, the final run had 322 J (warm start from its pilot)" in section
    assert (
        "**Chose width_mult = 1**: predicted val/loss 0.42 at 355 J, achieved 0.45 "
        "(0.03 worse than predicted); val/acc 93.0%, test/acc 92.0%." in section
    )
    assert "Pilot runs without a readable size-search run above them (1)" in section
    assert "lost/pilots/width_mult=2`" in section
    assert "broken/pilots/x" not in section and "broken/pilots/x`: result.json" in report
    not_blank(out / "size_search.png")


def test_pilots_are_left_out_by_role_or_by_place(tmp_path: Path) -> None:
    write_search_run(tmp_path / "search")
    collected = collect_runs([tmp_path])
    assert [run.dir.name for run in collected.runs] == ["search"]
    assert sorted(p.name for p in collected.pilots) == ["width_mult=0.25", "width_mult=1.0"]
    assert list(collected.size_searches) == [tmp_path / "search"]
    # Without the size-search run above it, only the pilot that says so is left out.
    collected = collect_runs([tmp_path / "search" / "pilots"])
    assert [run.dir.name for run in collected.runs] == ["width_mult=1.0"]


def test_fit_is_the_searchs_power_law_of_the_error() -> None:
    fit = Fit(form="e + a * x^-alpha", e=0.2, a=3.0, alpha=0.5, x_scale=1.0, ok=True)
    assert fit.error_at(9.0) == pytest.approx(1.2)
    assert fit.error_at(0.0) is None
    scaled = Fit(form="e + a * x^-alpha", e=0.2, a=3.0, alpha=0.5, x_scale=100.0, ok=True)
    assert scaled.error_at(900.0) == pytest.approx(1.2)  # x is divided by x_scale first
    failed = Fit(form="e + a * x^-alpha", e=None, a=None, alpha=None, x_scale=1.0, ok=False)
    assert failed.error_at(9.0) is None
    assert (
        Fit(form="e * log(x)", e=1.0, a=1.0, alpha=1.0, x_scale=1.0, ok=True).error_at(9.0) is None
    )
    huge = Fit(form=None, e=1.0, a=1e300, alpha=400.0, x_scale=1.0, ok=True)
    assert huge.error_at(1e-9) is None  # overflows: not drawn
    # An accuracy search fits 1 - accuracy: drawn as accuracy.
    search = parse_size_search(Path("r"), size_search(metric="val/acc"))
    assert search.higher_is_better
    first = search.candidates[0]
    assert search.fitted(first, 9.0) == pytest.approx(1 - (0.3 + 3.0 / 3.0))


def test_several_knobs_are_one_size(tmp_path: Path) -> None:
    """A search over width and depth together records sizes as objects."""
    section = size_search(knob=["width_mult", "depth"], choice={"width_mult": 1.0, "depth": 2})
    for candidate, depth in zip(section["candidates"], (1, 2, 2), strict=True):
        candidate["size"] = {"width_mult": candidate["size"], "depth": depth}
    search = parse_size_search(tmp_path, section)
    assert search.knob == "width_mult, depth"
    assert [c.label for c in search.candidates][2] == "width_mult=1 depth=2"
    assert search.chosen is search.candidates[2]
    assert search.choice_label() == "width_mult = 1, depth = 2"


@pytest.mark.parametrize(
    ("section", "reason"),
    [
        ("auto", "size_search is str, not an object"),
        (size_search(candidates={"a": 1}), "size_search.candidates is not a list"),
        (
            size_search(final_points=[[1.0, math.nan]]),
            "size_search.final_points[0].y is not finite",
        ),
        (size_search(final_points=[[1.0]]), "size_search.final_points[0] is not an [x, y] pair"),
        (size_search(share=3), "size_search.share = 3 is out of range"),
        (size_search(candidates=[{"size": -1}]), "size_search.candidates[0].size = -1"),
        (size_search(candidates=[{"size": 1, "fit": []}]), "candidates[0].fit is list"),
        (size_search(knob="w" * 600), "size_search.knob is 600 characters long"),
    ],
)
def test_malformed_size_search_is_not_shown_with_its_reason(
    tmp_path: Path, section: Any, reason: str
) -> None:
    searches, problems = load_size_searches({tmp_path: section})
    assert searches == [] and len(problems) == 1
    assert reason in problems[0].reason and problems[0].reason.startswith("result.json: ")


def test_malformed_size_search_keeps_the_run_and_says_why(tmp_path: Path) -> None:
    write_search_run(tmp_path / "runs" / "search", size_search(choice="one"))
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "-o", str(out), "--no-plots"]) == 0
    assert [Path(r["run_dir"]).name for r in read_rows(out / "runs.csv")] == ["search"]
    report = (out / "report.md").read_text()
    assert "result.json: size_search.choice is not a number: 'one'" in report
    assert "size_search.png" not in report and not (out / "size_search.png").exists()


def test_envelope_charges_running_jobs_their_reservation(tmp_path: Path) -> None:
    envelope = load_envelope(write_sweep(tmp_path / "sweep"))
    assert [job.id for job in envelope.jobs] == ["0", "1", "2"]  # start order, not file order
    assert envelope.keys == ["energy_j"]
    charged = {job.id: job.charged("energy_j") for job in envelope.jobs}
    assert charged == {"0": 400.0, "1": 400.0, "2": 500.0}  # prior attempts; the reservation
    assert envelope.total("energy_j") == 1300.0
    assert [job.is_reservation("energy_j") for job in envelope.jobs] == [False, False, True]


def test_envelope_counts_as_the_sweep_counts(tmp_path: Path) -> None:
    """The report's charges are the sweep's own (frugal.sweep.envelope): an interrupted job
    keeps its reservation, a finished one without spending too, a key never reserved is 0."""
    from frugal.sweep import envelope as sweep_envelope

    jobs = {
        "0": job("interrupted", spent={"energy_j": 40.0}),
        "1": job("completed", spent=None),
        "2": job("completed", spent={"energy_j": None, "time_s": 3.0}),
        "3": job("diverged", spent={"energy_j": 7.0}, prior_spent={"energy_j": None}),
        "4": job("running", reserved={"energy_j": None, "time_s": 9.0}),
        "5": job("refused", reserved={}, spent={"energy_j": 0.0}),
    }
    state = {"version": 1, "envelope": {"energy_j": 5000.0, "time_s": 60.0}, "jobs": jobs}
    (tmp_path / "envelope.json").write_text(json.dumps(state))
    envelope = load_envelope(tmp_path)
    expected = sweep_envelope.total_charged(state)
    assert envelope.total("energy_j") == expected["energy_j"] == 500 * 3 + 7
    assert envelope.total("time_s") == expected["time_s"] == 9.0


def test_envelope_section_and_plot(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", HALVING)
    out = tmp_path / "out"
    assert main([str(tmp_path), "-o", str(out)]) == 0

    report = (out / "report.md").read_text()
    section = report.split("## Sweep envelope")[1]
    assert "![charges of the sweep's jobs against its envelope](envelope.png)" in section
    assert "(sweep `ab12cd34ef`): 3 of 4 planned jobs recorded." in section
    assert "| energy | 1.6 kJ | 1.3 kJ (81.2%) | 300 J | 500 J (1 job) |" in section
    assert "Jobs by status: 2 completed, 1 running." in section
    assert "Largest job: job 2, 500 J of energy charged (running, its reservation)." in section
    assert "| 0 | 2 | energy 48 J | 1: 0 |" in section
    assert "| 1 | 1 | energy 144 J | 0 |" in section
    assert "Best: job 0 (run #1), val/acc 90.0% (`seed=0`)." in section
    assert "| 1 | #2 | completed | 0 | 2 | 2026-11-23 10:01:00 | 400 J |" in section
    assert "| 2 |  | running | 1 | 1 | 2026-11-23 10:02:00 | 500 J (reserved) |" in section
    assert str(sweep) not in [row["run_dir"] for row in read_rows(out / "runs.csv")]
    not_blank(out / "envelope.png")


def test_malformed_halving_only_drops_its_table(tmp_path: Path) -> None:
    envelope = load_envelope(write_sweep(tmp_path / "sweep", '{"rungs": 5}'))
    assert envelope.halving is None and "halving.json: rungs is not a list" in str(
        envelope.halving_problem
    )
    assert envelope.total("energy_j") == 1300.0


def _envelope_with(**changes: Any) -> str:
    data: dict[str, Any] = {
        "version": 1,
        "sweep_id": "x",
        "envelope": {"energy_j": 100.0},
        "planned_jobs": None,
        "jobs": {"0": job("completed", spent={"energy_j": 1.0})},
    }
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "envelope.json: invalid JSON"),
        ("[1, 2]", "envelope.json: top level is list, not an object"),
        ("[" * 100_000 + "]" * 100_000, "envelope.json: invalid JSON (nested too deep)"),
        (_envelope_with(version=2), "envelope.json: version 2, expected 1"),
        (_envelope_with(envelope={"energy_j": math.inf}), "envelope.energy_j is not finite"),
        (_envelope_with(envelope={"energy_j": -5}), "envelope.energy_j = -5 is out of range"),
        (_envelope_with(jobs=[]), "envelope.json: jobs is list, not an object"),
        (_envelope_with(jobs={"0": job("lost")}), "jobs.'0'.status is 'lost'"),
        (
            _envelope_with(jobs={"0": job("completed", spent={"energy_j": "9"})}),
            "jobs.'0'.spent.energy_j is not a number",
        ),
        (_envelope_with(jobs={"0": job("running", started="noon")}), "is not an ISO time"),
    ],
)
def test_malformed_envelope_is_skipped_with_its_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    (tmp_path / "envelope.json").write_text(text)
    envelopes, skipped = load_envelopes([tmp_path])
    assert envelopes == [] and len(skipped) == 1
    assert reason in skipped[0].reason


def test_envelope_not_a_regular_file_and_report_goes_on(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs / "0", fake_result(overrides=["seed=0"]))
    os.mkfifo(runs / "envelope.json")
    out = tmp_path / "out"
    assert main([str(runs), "-o", str(out), "--no-plots"]) == 0
    report = (out / "report.md").read_text()
    assert "## Sweep envelope" in report
    assert "envelope.json: not a regular file (a FIFO)" in report
    assert not (out / "envelope.png").exists()


def test_only_pilots_is_one_line_naming_them(tmp_path: Path, capsys) -> None:
    pilots = write_search_run(tmp_path / "search") / "pilots"
    (pilots / "width_mult=1.0" / "result.json").unlink()  # the unmarked one
    assert main([str(pilots), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only pilot runs of a size search under" in err


def test_markup_from_the_files_is_drawn_as_text(tmp_path: Path) -> None:
    """Names from result.json / envelope.json with mathtext in them neither crash a plot nor
    break report.md."""
    search = size_search(knob="$\\frac{", metric="val/$x^{", budget_key="$\\bad")
    write_search_run(tmp_path / "runs" / "search", search)
    sweep = write_sweep(tmp_path / "runs" / "sweep")
    data = json.loads((sweep / "envelope.json").read_text())
    data["jobs"]["$\\frac{"] = data["jobs"].pop("1")
    (sweep / "envelope.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "-o", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "**Chose $\\\\frac{ = 1**" in report and "| $\\\\frac{ | #" in report
    not_blank(out / "size_search.png")
    not_blank(out / "envelope.png")
