"""Every size a user can set is checked against what this machine can hold before anything is
allocated (one line naming the setting, exit 2, in well under a second), and input that used to
end in a traceback or a late rejection is refused up front (issue 19). The bad-input corpus
(tests/test_config_corpus.py) holds the command lines; here: what it cannot express (an
environment variable, whitespace in a value, the memory available), and the estimates
themselves."""

from __future__ import annotations

import io
import json
import math
import resource
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import frugal.core.machine
import frugal.data.sizes
import frugal.train
from frugal.budget.ledger import read_sidecar
from frugal.core.errors import ConfigError
from frugal.data.sources import _cached, synthetic
from frugal.models import create_model
from frugal.models.accounting import PROBE_DEPTH, footprint

QUICK = ["data=synthetic", "model=mlp_tiny", "logger=none", "energy.backend=none"]


def check_only(argv: list[str], monkeypatch, capsys) -> tuple[int, str, float]:
    """(exit status, stderr, seconds) of `frugal-train argv` checked in this process: an
    accepted command line fails the test instead of training."""

    def accepted() -> None:
        raise AssertionError(f"accepted: {argv}")

    monkeypatch.setattr(frugal.train, "_hydra_main", accepted)
    monkeypatch.setattr(sys, "argv", ["frugal-train", *argv])
    capsys.readouterr()
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exited:
        frugal.train.main()
    return exited.value.code, capsys.readouterr().err, time.perf_counter() - start


def refused(argv: list[str], key: str, monkeypatch, capsys, tmp_path: Path) -> str:
    """The one line `argv` is refused with, which names `key`; nothing written."""
    run = tmp_path / "run"
    code, err, _ = check_only([f"hydra.run.dir={run}", *argv], monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and key in lines[0], err
    assert "Traceback" not in err and not run.exists()
    return lines[0]


@pytest.mark.parametrize(
    ("case", "key"),
    [
        ("threads=1000000", "threads"),
        ("data.source.features=100000000", "data.source.features"),
        ("data.source.num_classes=1000000000", "data.source.num_classes"),
        ("model=mlp model.kwargs.depth=100000000", "model.kwargs.depth"),
        ("model=mlp model.kwargs.hidden=1000000000", "model.kwargs.hidden"),
        ("inference.serving_batch=1000000000", "inference.serving_batch"),
        ("trainer=ddp trainer.devices=100000", "trainer.devices"),
    ],
)
def test_a_size_the_machine_cannot_hold_is_refused_before_allocating(
    case, key, monkeypatch, capsys, tmp_path
):
    warm_up(monkeypatch, tmp_path)
    argv = [f"hydra.run.dir={tmp_path / 'run'}", *QUICK, *case.split(" ")]
    peak_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, err, _ = check_only(argv, monkeypatch, capsys)
    assert code == 2 and key in err and ("memory available" in err or "CPU" in err), err
    # shapes on the meta device: the refused size was never allocated (its timing, about
    # 0.2 s here, is not asserted: a shared machine's load is not the product's)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kib
    assert grown_kib < 256 * 1024, grown_kib


def warm_up(monkeypatch, tmp_path: Path) -> None:
    """One accepted command line first: what it imports (torch, the models) is not timed."""
    monkeypatch.setattr(frugal.train, "_hydra_main", lambda: None)
    frugal.train.main([f"hydra.run.dir={tmp_path / 'warm'}", *QUICK])
    assert not (tmp_path / "warm").exists()


def test_the_memory_line_says_how_much_is_needed_and_available(monkeypatch, capsys, tmp_path):
    line = refused(
        [*QUICK, "data.source.num_classes=1000000000"],
        "data.source.num_classes=1000000000",
        monkeypatch,
        capsys,
        tmp_path,
    )
    assert "needs about 119 GiB" in line and "of memory available" in line, line


def test_threads_up_to_the_cpus_are_accepted_and_one_more_is_not(monkeypatch, capsys, tmp_path):
    cpus = frugal.core.machine.usable_cpus()
    line = refused([*QUICK, f"threads={cpus + 1}"], "threads", monkeypatch, capsys, tmp_path)
    assert f"may use {cpus} CPU" in line and f"[1, {cpus}]" in line
    monkeypatch.setattr(frugal.train, "_hydra_main", lambda: None)
    frugal.train.main([f"hydra.run.dir={tmp_path / 'ok'}", *QUICK, f"threads={cpus}"])


@pytest.mark.parametrize("key", ["ckpt_path", "resume", "init_from", "data.source.path"])
@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_a_blank_path_never_names_the_working_directory(key, blank, monkeypatch, capsys, tmp_path):
    data = ["data=files"] if key.startswith("data.") else []
    line = refused([*QUICK, *data, f"{key}='{blank}'"], key, monkeypatch, capsys, tmp_path)
    if not blank:  # (a blank resume= names a directory called " ", refused as no run)
        assert "empty" in line or "at least 1 character" in line, line


def test_frugal_cache_dir_naming_a_file_is_one_line_naming_the_variable(
    monkeypatch, capsys, tmp_path
):
    a_file = tmp_path / "not_a_dir"
    a_file.write_text("")
    for value in (a_file, a_file / "below"):
        monkeypatch.setenv("FRUGAL_CACHE_DIR", str(value))
        line = refused(["data=mnist1d"], "paths.cache_dir", monkeypatch, capsys, tmp_path)
        assert "FRUGAL_CACHE_DIR" in line and "file" in line, line


def test_a_cache_that_cannot_be_written_only_costs_the_cache(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    arrays = _cached(str(a_file / "cache"), "tiny", {"n": 1}, lambda: {"x": np.ones(3)})
    assert arrays["x"].tolist() == [1.0, 1.0, 1.0]
    assert a_file.read_text() == ""


def test_synthetic_refuses_before_allocating():
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"^data\.source\.features=10000000000: "):
        synthetic(features=10**10)
    assert time.perf_counter() - start < 0.1


def _npz_declaring(path: Path, shape: tuple[int, ...], data: bytes = b"") -> Path:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    labels = io.BytesIO()
    np.save(labels, np.arange(min(shape[0], 10)) % 2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + data)
        archive.writestr("y.npy", labels.getvalue())
    return path


def test_an_npz_header_is_read_without_loading_the_array(tmp_path):
    path = _npz_declaring(tmp_path / "ok.npz", (1000, 8), bytes(1000 * 8 * 4))
    members = frugal.data.sizes.npz_members(path, "data.source.path=ok.npz")
    assert members["x"] == ((1000, 8), np.float32) and members["y"][0] == (10,)
    path = _npz_declaring(tmp_path / "big.npz", (10**12, 10))  # 40 TB declared, 128 B held
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"declares shape \(1000000000000, 10\) .* but holds"):
        frugal.data.sizes.check_file(path, "data.source.path", path)
    assert time.perf_counter() - start < 0.1


def test_an_honest_npz_larger_than_memory_is_refused_before_loading(tmp_path, monkeypatch):
    rows, features = 1000, 8
    path = _npz_declaring(tmp_path / "ok.npz", (rows, features), bytes(rows * features * 4))
    frugal.data.sizes.check_file(path, "data.source.path", path)  # fits: nothing said
    monkeypatch.setattr(frugal.core.machine, "available_memory_bytes", lambda: rows * features)
    with pytest.raises(ConfigError, match=r"reading this file needs about .* memory available"):
        frugal.data.sizes.check_file(path, "data.source.path", path)


def test_a_member_that_is_not_npy_is_refused(tmp_path):
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x", b"raw bytes")
    with pytest.raises(ConfigError, match=r"holds 'x', which is not a \.npy array"):
        frugal.data.sizes.npz_members(path, "data.source.path=odd.npz")


@pytest.mark.parametrize(
    ("name", "input_shape", "kwargs"),
    [
        ("mlp", (16,), {"hidden": 8}),
        ("cnn", (40,), {}),
        ("sparse_mlp", (40,), {}),
        ("lowrank_cnn", (40,), {}),
    ],
)
def test_a_deep_models_footprint_is_extrapolated_exactly(name, input_shape, kwargs):
    depth = PROBE_DEPTH + 40

    def build(**overrides):
        return create_model(name, input_shape, 10, **{**kwargs, "depth": depth, **overrides})

    estimate = footprint(build, input_shape, depth)
    built = footprint(build, input_shape)  # measured in full: no depth given, no shortcut
    assert estimate == built


def test_a_million_layers_are_estimated_not_built():
    def build(**overrides):
        return create_model("mlp", (16,), 4, **{"hidden": 8, "depth": 10**6, **overrides})

    start = time.perf_counter()
    size = footprint(build, (16,), 10**6)
    assert time.perf_counter() - start < 1.0
    assert size.parameters == 16 * 8 + 8 + (10**6 - 1) * (8 * 8 + 8) + 8 * 4 + 4
    assert size.training_bytes(32, 2) > size.parameter_bytes * 4


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # RecursionError in json.loads
        '{"version": 1, "spent": {"energy_j": ' + "9" * 400 + "}}",  # no float holds it
        '{"version": 1, "spent": {"energy_j": [[1]]}}',
    ],
)
def test_a_hostile_ledger_json_is_not_a_ledger(tmp_path, text):
    path = tmp_path / "ledger.json"
    path.write_text(text)
    assert read_sidecar(path) is None
    path.write_text('{"version": 1, "spent": {"energy_j": 1.5, "time_s": null}}')
    assert read_sidecar(path)["spent"]["energy_j"] == 1.5


def test_resuming_a_run_with_a_deeply_nested_ledger_json(run_train, tmp_path):
    first, _ = run_train("trainer.max_steps=10", out=tmp_path / "run")
    assert first["status"] == "completed"
    (tmp_path / "run" / "ledger.json").write_text("[" * 100_000 + "]" * 100_000)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    resumed, _ = run_train("trainer.max_steps=20", f"ckpt_path={ckpt}", out=tmp_path / "again")
    assert resumed["steps"] == 20
    assert resumed["spent"]["data_samples"] == 20 * 32  # the checkpoint's ledger carried


def test_the_halving_sweeper_refuses_eta_1_when_hydra_builds_it():
    from hydra_plugins.frugal_sweepers.halving_sweeper import HalvingSweeper

    with pytest.raises(ConfigError, match=r"^hydra\.sweeper\.eta=1: "):
        HalvingSweeper(eta=1)
    assert HalvingSweeper(eta=2).eta == 2


def test_an_amount_too_large_for_a_float_is_one_line():
    from frugal.budget.spec import BudgetSpec

    with pytest.raises(ConfigError) as err:
        BudgetSpec.from_config({"energy": 10**400})
    message = str(err.value)
    assert "too large" in message and len(message) < 300 and "\n" not in message
    assert math.isfinite(BudgetSpec.from_config({"energy": 10**300}).energy_j)


def test_result_json_nested_past_the_limit_reads_as_none(tmp_path):
    from frugal.runs.record import read_json_object

    path = tmp_path / "result.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert read_json_object(path) is None
    path.write_text(json.dumps({"status": "ok"}))
    assert read_json_object(path) == {"status": "ok"}
