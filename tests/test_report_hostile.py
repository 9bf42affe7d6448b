"""frugal-report on hostile files: anything malformed, non-finite, absurd or not a regular file
is skipped with its reason, never hangs or crashes the report, and never hides a good run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_report import fake_result, only_run, read_rows, write_run

from frugal.report.cli import main
from frugal.report.collect import MAX_FILE_BYTES, load_runs

NASTY_NAME = "evil|name\n## injected heading <script>x</script> **b** [l](http://e) `c`"


def _with(path: str, value: Any) -> dict[str, Any]:
    """A good result.json with one value replaced: ``path`` like ``spent.energy_j``."""
    result = fake_result(overrides=["model=cnn"])
    *sections, key = path.split(".")
    target = result
    for section in sections:
        target = target[section]
    target[key] = value
    return result


def _text(result: dict[str, Any]) -> str:
    return json.dumps(result)  # allow_nan: writes Infinity / NaN literals, as a hostile file may


HOSTILE_TEXT = {
    "huge_energy": (
        _text(_with("spent.energy_j", 1e308)),
        "spent.energy_j = 1e+308 is out of range",
    ),
    "inf_energy": (_text(_with("spent.energy_j", float("inf"))), "spent.energy_j is not finite"),
    "nan_accuracy": (_text(_with("metrics.test/acc", float("nan"))), "test/acc is not finite"),
    "overflow_literal": (
        _text(fake_result(overrides=[])).replace('"energy_j": 800.0', '"energy_j": 1e400', 1),
        "spent.energy_j is not finite",
    ),
    "digits_5000": (
        _text(_with("spent.compute_flop", 7)).replace(
            '"compute_flop": 7', '"compute_flop": ' + "9" * 5000
        ),
        "invalid JSON (Exceeds the limit",
    ),
    "digits_4000": (
        _text(_with("spent.compute_flop", 7)).replace(
            '"compute_flop": 7', '"compute_flop": ' + "9" * 4000
        ),
        "spent.compute_flop is not finite: an integer of 4000 digits",
    ),
    "deep_nesting": (
        '{"status": "completed", "spent": ' + "[" * 200_000 + "]" * 200_000 + "}",
        "nested too deep",
    ),
    "accuracy_percent": (_text(_with("metrics.test/acc", 92.0)), "test/acc = 92.0 is out of range"),
    "negative_energy": (
        _text(_with("spent.energy_j", -5.0)),
        "spent.energy_j = -5.0 is out of range",
    ),
    "unknown_status": (_text(_with("status", ["completed"])), "unknown status list"),
    "long_name": (
        _text(_with("model.name", "x" * 100_000)),
        "model.name is 100000 characters long",
    ),
    "bad_uncertainty": (
        _text(_with("energy.uncertainty", "30%")),
        "energy.uncertainty is not a number",
    ),
    "binary": (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    "empty": ("", "invalid JSON"),
}


def write_hostile(run_dir: Path, text: str | bytes) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    data = text if isinstance(text, bytes) else text.encode()
    (run_dir / "result.json").write_bytes(data)


def build_hostile_dir(root: Path) -> tuple[list[str], list[str]]:
    """Good runs beside every hostile file; returns (good run names, hostile run names)."""
    good = {
        "good_a": fake_result(overrides=["model=cnn"], test_acc=0.9, energy_j=800.0),
        "good_b": fake_result(overrides=["model=mlp"], model="mlp", test_acc=0.8, energy_j=300.0),
        "good_nasty_name": fake_result(overrides=["model=odd"], model=NASTY_NAME, test_acc=0.7),
    }
    for name, result in good.items():
        write_run(root / name, result)
    # A good run whose curve is hostile: the run stays, only its curve goes.
    write_run(root / "good_bad_curve", fake_result(overrides=["model=big"], model="big"))
    (root / "good_bad_curve" / "curve.csv").write_text(
        "step,samples,compute_flop,energy_j,time_s,val/acc\n1,100,1,1e308,1,0.5\n"
    )
    write_run(root / "good_fifo_curve", fake_result(overrides=["model=tiny"], model="tiny"))
    (root / "good_fifo_curve" / "curve.csv").unlink()
    os.mkfifo(root / "good_fifo_curve" / "curve.csv")

    hostile = []
    for name, (text, _) in HOSTILE_TEXT.items():
        write_hostile(root / name, text)
        hostile.append(name)
    (root / "fifo").mkdir()
    os.mkfifo(root / "fifo" / "result.json")  # opening it for reading would wait for a writer
    (root / "dev_zero").mkdir()
    (root / "dev_zero" / "result.json").symlink_to("/dev/zero")  # never ends
    (root / "sparse_huge").mkdir()
    with (root / "sparse_huge" / "result.json").open("wb") as file:
        file.truncate(MAX_FILE_BYTES * 64)  # 1 GiB of holes: size checked before reading
    (root / "directory" / "result.json").mkdir(parents=True)
    (root / "loop").mkdir()
    (root / "loop" / "result.json").symlink_to(root / "loop" / "result.json")
    hostile += ["fifo", "dev_zero", "sparse_huge", "directory", "loop"]
    return [*good, "good_bad_curve", "good_fifo_curve"], hostile


def test_hostile_directory_reports_the_good_runs_within_10_s(tmp_path: Path) -> None:
    good, hostile = build_hostile_dir(tmp_path / "runs")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "frugal.report", str(tmp_path / "runs"), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"{len(good)} runs, {len(hostile)} skipped" in done.stdout
    assert sorted(Path(row["run_dir"]).name for row in read_rows(out / "runs.csv")) == sorted(good)
    report = (out / "report.md").read_text()
    skipped = report.split("## Skipped")[1]
    for name in hostile:
        assert f"/{name}`: " in skipped, name
    assert all(f"/{name}`" not in skipped for name in good)  # Skipped: only runs not reported
    assert "fifo`: result.json: not a regular file (a FIFO)" in skipped
    assert "dev_zero`: result.json: not a regular file (a character device)" in skipped
    assert "directory`: result.json: not a regular file (a directory)" in skipped
    assert "loop`: result.json: unreadable (Too many levels of symbolic links)" in skipped
    curves = report.split("## Curves not drawn")[1].split("## Skipped")[0]
    assert "energy_j = '1e308' is out of range" in curves and "(a FIFO)" in curves
    for name in ("pareto.png", "curves.png"):
        assert (out / name).stat().st_size > 20_000


def test_markup_in_a_name_cannot_break_the_report(tmp_path: Path) -> None:
    write_run(tmp_path / "runs" / "0", fake_result(overrides=["model=odd"], model=NASTY_NAME))
    write_run(tmp_path / "runs" / "1", fake_result(overrides=["model=cnn"]))
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "-o", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert not any(line.startswith("## injected") for line in report.splitlines())
    assert "<script>" not in report and "\\<script\\>" in report
    row = next(line for line in report.splitlines() if "evil" in line)
    cells = row.replace("\\|", "").split("|")
    table_width = next(line for line in report.splitlines() if line.startswith("| --- ")).count("|")
    assert len(cells) == table_width + 1  # the name's pipe is escaped, not a column
    assert "evil\\|name\\\\n## injected heading" in row  # renders as evil|name\\n## ...
    assert read_rows(out / "runs.csv")[0]["model"] == NASTY_NAME  # the data itself is intact


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXT))
def test_hostile_result_is_skipped_with_its_reason(tmp_path: Path, name: str) -> None:
    text, reason = HOSTILE_TEXT[name]
    write_hostile(tmp_path, text)
    runs, skipped = load_runs([tmp_path])
    assert not runs and [s.path for s in skipped] == [tmp_path]
    assert reason in skipped[0].reason
    assert len(skipped[0].reason) < 200  # a reason, not the file


def test_out_naming_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write_run(tmp_path / "runs" / "0", fake_result(overrides=["model=cnn"]))
    taken = tmp_path / "report.md"
    taken.write_text("mine\n")
    done = subprocess.run(
        [sys.executable, "-m", "frugal.report", str(tmp_path / "runs"), "-o", str(taken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == f"frugal-report: -o {taken}: is a file; expected a directory\n"
    assert taken.read_text() == "mine\n"


def test_out_under_a_file_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "runs" / "0", fake_result(overrides=["model=cnn"]))
    (tmp_path / "file").write_text("")
    assert main([str(tmp_path / "runs"), "-o", str(tmp_path / "file" / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("is not a directory; expected a directory\n")


def test_only_hostile_runs_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    write_hostile(tmp_path / "bad\nrun", '{"status": "completed\\n## x"}')
    assert main([str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad\\nrun: result.json: missing key spent" in err
    assert not (tmp_path / "out").exists()


def test_curve_cells_out_of_range_drop_only_the_curve(tmp_path: Path) -> None:
    write_run(tmp_path, fake_result(overrides=[]))
    with (tmp_path / "curve.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["step", "samples", "energy_j", "val/acc"])
        writer.writerow([1, 100, 3.0, "nan"])
    run = only_run(tmp_path)
    assert run.curve is None and run.test_acc == 0.9
    assert (
        run.curve_problem == "curve.csv: line 2: val/acc = 'nan' is out of range (expected 0 to 1)"
    )
