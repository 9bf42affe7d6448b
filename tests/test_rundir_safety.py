"""The run directory (DESIGN.md, "The run directory"): nothing written outside it, nothing
written through a link, no system or foreign directory used, one process per run, one launch
per sweep job, checkpoints replaced atomically. Real file system, no mocks."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY, check_command, compose_cfg, run_main, spawn_train, wait_until

from frugal.command_line import check_command_line
from frugal.core.errors import ConfigError
from frugal.runs import MARKER, claim, open_nofollow, release, try_claim, write_atomic
from frugal.runs.checkpoint_io import AtomicCheckpointIO
from frugal.sweep.envelope import ENVELOPE_FILE, LOCK_SUFFIX, open_sweep
from frugal.train import CONF_DIR, train

QUICK = [*TINY, "inference.enabled=false"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (links as their target's text), byte for byte."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(folder))] = os.readlink(path).encode()
        elif path.is_file():
            found[str(path.relative_to(folder))] = path.read_bytes()
    return found


def command(argv: list[str], monkeypatch, capsys) -> tuple[int | None, str]:
    """(exit status, stderr) of `frugal-train argv` in this process; Hydra's job is a tripwire:
    an accepted command line returns None and writes nothing."""
    code, _, err = check_command(argv, monkeypatch, capsys)
    return code, err


def refused(argv: list[str], monkeypatch, capsys, *fragments: str) -> str:
    code, err = command(argv, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("frugal-train: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def finished(finished_run: Path) -> Path:
    """The session's finished tiny run (conftest), as `frugal-train` leaves one: only read."""
    for name in (MARKER, "result.json", "curve.csv", "csv/metrics.csv", "checkpoints/last.ckpt"):
        assert (finished_run / name).is_file(), name
    assert (finished_run / ".hydra" / "config.yaml").is_file()
    assert (finished_run / "train.log").is_file()
    return finished_run


def test_a_run_saves_its_checkpoints_through_the_atomic_io(run_train):
    _, objects = run_train("trainer.max_steps=2")
    assert isinstance(objects["trainer"].strategy.checkpoint_io, AtomicCheckpointIO)


@pytest.fixture
def run(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished run, to plant things in."""
    copy = tmp_path / "run"
    shutil.copytree(finished, copy, symlinks=True)
    return copy


# ---- where a run may be ----------------------------------------------------------------------
@pytest.mark.parametrize("where", ["/", "/etc", "/etc/frugal", "~", "/usr/lib/x"])
def test_system_directories_are_refused_and_nothing_written(where, monkeypatch, capsys):
    place = Path(where).expanduser()
    written = (MARKER, ".hydra", "train.log", "result.json", "ledger.json", "checkpoints")
    before = {name: (place / name).exists() for name in written}
    refused([f"hydra.run.dir={place}", *QUICK], monkeypatch, capsys, "a system directory")
    assert {name: (place / name).exists() for name in written} == before
    assert not (place / MARKER).exists()


def test_a_directory_of_the_users_own_files_is_refused(tmp_path, monkeypatch, capsys):
    own = tmp_path / "mine"
    (own / "csv").mkdir(parents=True)
    (own / "train.log").write_text("my own log\n")
    (own / "csv" / "metrics.csv").write_text("step,loss\n0,1.0\n")
    before = snapshot(own)
    line = refused([f"hydra.run.dir={own}", *QUICK], monkeypatch, capsys, "hydra.run.dir")
    assert "not a frugal run's (csv/, train.log)" in line
    assert snapshot(own) == before


def test_a_directory_below_a_stray_result_json_is_accepted(tmp_path, monkeypatch, capsys):
    (tmp_path / ".hydra").mkdir()
    for name in ("result.json", "ledger.json", ".hydra/config.yaml"):
        (tmp_path / name).write_text("{}")
    code, err = command([f"hydra.run.dir={tmp_path / 'mine' / 'run'}", *QUICK], monkeypatch, capsys)
    assert code is None, err


def test_a_directory_inside_a_run_is_refused(finished, monkeypatch, capsys):
    for inside in (finished / "sub", finished / "checkpoints"):
        line = refused([f"hydra.run.dir={inside}", *QUICK], monkeypatch, capsys)
        assert f"inside another run's directory {finished}" in line


def test_a_new_run_in_a_finished_run_is_refused_and_a_resume_of_it_accepted(
    finished, monkeypatch, capsys
):
    before = snapshot(finished)
    refused([f"hydra.run.dir={finished}", *QUICK], monkeypatch, capsys, "another run's outputs")
    code, err = command([f"resume={finished}", "trainer.max_steps=40"], monkeypatch, capsys)
    assert code is None, err
    assert snapshot(finished) == before


def test_a_run_of_an_older_frugal_without_marker_is_resumed(run, monkeypatch, capsys):
    (run / MARKER).unlink()
    code, err = command([f"resume={run}", "trainer.max_steps=40"], monkeypatch, capsys)
    assert code is None, err


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("callbacks.model_checkpoint.filename=../../../victim/checkpoints/best", "filename"),
        ("callbacks.model_checkpoint.dirpath=<victim>/checkpoints", "dirpath"),
        ("trainer.default_root_dir=<victim>", "default_root_dir"),
        ("task_name=../../../../../victim/x", "task_name"),
        ("logger=csv logger.csv.save_dir=<victim>", "logger.csv.save_dir"),
        ("logger=csv logger.csv.name=../../victim", "logger.csv.name"),
        ("logger=tensorboard logger.tensorboard.version=<victim>", "version"),
    ],
)
def test_names_and_paths_leaving_the_run_are_refused(override, key, tmp_path, monkeypatch, capsys):
    victim = tmp_path / "victim"
    (victim / "checkpoints").mkdir(parents=True)
    (victim / "checkpoints" / "best.ckpt").write_bytes(b"the victim's weights")
    before = snapshot(tmp_path)
    run_dir = tmp_path / "a" / "b" / "run"
    overrides = override.replace("<victim>", str(victim)).split(" ")
    monkeypatch.chdir(tmp_path)  # task_name: outputs/<task_name>/runs/... from here
    argv = [*QUICK, *overrides]
    if not override.startswith("task_name"):
        argv.insert(0, f"hydra.run.dir={run_dir}")
    refused(argv, monkeypatch, capsys, key, "leaves the")
    assert snapshot(tmp_path) == before


def test_a_script_sending_a_checkpoint_out_of_its_run_is_refused(tmp_path):
    cfg = compose_cfg(tmp_path / "run", "callbacks.model_checkpoint.filename=../../elsewhere/x")
    with pytest.raises(ConfigError, match=r"filename.*leaves the run directory"):
        train(cfg)
    assert not (tmp_path / "elsewhere").exists()


# ---- links -----------------------------------------------------------------------------------
LINKED = ["curve.csv", "train.log", "csv", "result.json", "ledger.json", MARKER]


@pytest.mark.parametrize(
    ("name", "dangling"),
    [
        *((name, False) for name in [*LINKED, "checkpoints", ".hydra"]),
        *((name, True) for name in LINKED),  # (without checkpoints/ there is nothing to resume)
    ],
)
def test_links_planted_before_a_resume_are_refused(
    name, dangling, run, tmp_path, monkeypatch, capsys
):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / name
    if not dangling:
        shutil.move(run / name, target)  # the link leads to a copy of the run's own entry
    else:
        shutil.rmtree(run / name) if (run / name).is_dir() else (run / name).unlink()
    (run / name).symlink_to(target)
    before = snapshot(outside)
    line = refused([f"resume={run}", "trainer.max_steps=40"], monkeypatch, capsys)
    assert f"{name} there is a symbolic link" in line
    assert snapshot(outside) == before
    assert target.exists() is not dangling


def test_a_script_resuming_through_a_link_is_refused(run, tmp_path):
    (tmp_path / "elsewhere.csv").write_text("not the run's\n")
    (run / "curve.csv").unlink()
    (run / "curve.csv").symlink_to(tmp_path / "elsewhere.csv")
    cfg = compose_cfg(run, "inference.enabled=false", f"ckpt_path={run}/checkpoints/last.ckpt")
    with pytest.raises(ConfigError, match=r"curve\.csv there is a symbolic link"):
        train(cfg)
    assert (tmp_path / "elsewhere.csv").read_text() == "not the run's\n"


def test_writes_never_follow_a_link(tmp_path):
    (tmp_path / "theirs").write_text("theirs\n")
    (tmp_path / "appended").symlink_to(tmp_path / "theirs")
    with pytest.raises(OSError) as raised:
        open_nofollow(tmp_path / "appended", "a")
    assert raised.value.errno == errno.ELOOP
    (tmp_path / "replaced").symlink_to(tmp_path / "theirs")
    write_atomic(tmp_path / "replaced", b"ours\n")  # the link is replaced, not written through
    assert not (tmp_path / "replaced").is_symlink()
    assert (tmp_path / "replaced").read_text() == "ours\n"
    assert (tmp_path / "theirs").read_text() == "theirs\n"


def test_a_link_where_the_envelope_lock_goes_is_refused(tmp_path):
    (tmp_path / "theirs").write_text("theirs\n")
    (tmp_path / (ENVELOPE_FILE + LOCK_SUFFIX)).symlink_to(tmp_path / "theirs")
    with pytest.raises(ConfigError, match="symbolic link"):
        open_sweep(tmp_path, {"data_samples": 1000.0}, "id", 2)
    assert (tmp_path / "theirs").read_text() == "theirs\n"


# ---- one process per run ---------------------------------------------------------------------
def hold(directory: Path) -> subprocess.Popen:
    """Another process holding `directory` (as a running frugal-train would)."""
    code = (
        "import sys, time; from pathlib import Path; from frugal.runs import claim; "
        "claim(Path(sys.argv[1])); print('held', flush=True); time.sleep(120)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def probe(directory: Path) -> str:
    """What another process finds when it tries to claim `directory` (its holder's pid, or
    None when it got it)."""
    code = (
        "import sys; from pathlib import Path; from frugal.runs import try_claim; "
        "print(try_claim(Path(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(directory)], capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip()


def test_a_second_process_on_a_run_is_refused_naming_the_holder(run, monkeypatch, capsys):
    holder = hold(run)
    try:
        before = snapshot(run)
        line = refused([f"resume={run}", "trainer.max_steps=40"], monkeypatch, capsys)
        assert f"in use by another frugal process (pid {holder.pid})" in line
        assert snapshot(run) == before  # not even a line of Hydra's log
    finally:
        holder.kill()  # SIGKILL: the kernel releases the lock
        holder.wait()
    assert try_claim(run) is None  # no stale lock
    release(run)


def test_a_new_run_where_another_is_starting_is_refused(tmp_path, monkeypatch, capsys):
    starting = tmp_path / "run"  # claimed, nothing written yet (a run in its set-up)
    holder = hold(starting)
    try:
        line = refused([f"hydra.run.dir={starting}", *QUICK], monkeypatch, capsys)
        assert f"(pid {holder.pid})" in line
        assert os.listdir(starting) == [MARKER]
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_reentrant_in_one_process_and_released_by_the_last_claim(tmp_path):
    claim(tmp_path)
    claim(tmp_path)  # the size search and a multirun call the pipeline again
    release(tmp_path)
    assert probe(tmp_path) == str(os.getpid())
    release(tmp_path)
    assert probe(tmp_path) == "None"
    assert json.loads((tmp_path / MARKER).read_text())["pid"] == os.getpid()


# ---- one launch per sweep job ----------------------------------------------------------------
def test_two_launches_of_one_sweep_run_each_job_once(tmp_path):
    sweep = tmp_path / "sweep"
    argv = [
        "-m",
        "seed=0,1",
        "sweep_budget.data=12k",
        f"hydra.sweep.dir={sweep}",
        *QUICK,
    ]
    first = spawn_train(*argv, cwd=tmp_path)
    wait_until((sweep / "0" / ".hydra").is_dir, first, what="the first job")
    # the second launch in this process, while the first process runs its first job
    second = run_main(argv, cwd=tmp_path)
    logs = [first.communicate(timeout=240)[0], second.out + second.err]
    assert [first.returncode, second.code] == [0, 0], logs
    trained = sum(log.count("of the sweep's envelope (attempt") for log in logs)
    assert trained == 2, logs  # each job trained by one launch only
    state = json.loads((sweep / ENVELOPE_FILE).read_text())
    assert {job["attempts"] for job in state["jobs"].values()} == {1}
    samples = [json.loads((sweep / n / "result.json").read_text()) for n in ("0", "1")]
    assert sum(r["spent"]["data_samples"] for r in samples) <= 12_000


# ---- atomic checkpoints ----------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (skipped where this runner may not mount one)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_checkpoint_save_that_fails_leaves_the_previous_one_whole(small_disk):
    io = AtomicCheckpointIO()
    last = small_disk / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"weights": torch.ones(100)}, last)
    before = last.read_bytes()
    with pytest.raises(OSError) as raised:  # ~800 KB on a 256 KiB disk
        io.save_checkpoint({"weights": torch.ones(200_000)}, last)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(last)
    assert last.read_bytes() == before
    assert os.listdir(last.parent) == ["last.ckpt"]  # no temporary file left behind
    assert torch.load(last, weights_only=True)["weights"].shape == (100,)


def test_check_command_line_accepts_a_new_directory(tmp_path):
    check_command_line([f"hydra.run.dir={tmp_path / 'new'}", *QUICK], CONF_DIR)
    assert not (tmp_path / "new").exists()
