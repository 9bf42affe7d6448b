"""Shared fixtures: compose the real Hydra config into a temporary run directory."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
# Tiny, fast and quiet: synthetic data, a small MLP, no energy meter and no inference
# measurement unless a test asks (`energy.backend=...`, `inference.enabled=true`).
TINY = [
    "data=synthetic",
    "model=mlp_tiny",
    "trainer.max_steps=30",
    "trainer.check_val_every_n_epoch=1",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "energy.backend=none",
    "inference.enabled=false",
    "threads=1",
]


def compose_cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path)
        cfg.paths.root_dir = str(tmp_path)
        cfg.paths.cache_dir = str(tmp_path / "cache")
    HydraConfig().set_config(cfg)
    return cfg


@pytest.fixture
def run_train(tmp_path: Path) -> Callable[..., tuple[dict[str, Any], dict[str, Any]]]:
    """Run `frugal.train.train` on the tiny config plus overrides; returns (result, objects)."""
    from frugal.train import train

    def run(*overrides: str, out: Path | None = None, **kwargs: Any):
        cfg = compose_cfg(out or tmp_path, *overrides)
        return train(cfg, **kwargs)

    return run


# The longest files first (their --durations, on a 2-core machine): pytest-xdist gives each
# worker a whole file at a time (--dist loadfile), and a long file started last would leave the
# other worker idle until it ends. The others follow in their usual order.
LONGEST_FILES = (
    "test_readme.py",  # ~85 s
    "test_config_corpus.py",  # ~45 s
    "test_ddp.py",  # ~40 s
    "test_rundir_safety.py",  # ~15 s
    "test_envelope.py",  # ~15 s
    "test_cluster.py",  # ~14 s
    "test_size_search_resume.py",  # ~11 s
    "test_cli.py",  # ~10 s
    "test_write_faults.py",  # ~9 s
    "test_resume_history.py",  # ~9 s
    "test_size_search.py",  # ~8 s
    "test_config_fuzz.py",  # ~8 s
    "test_hard_kill.py",  # ~8 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)

    items.sort(key=rank)  # stable: each file's tests keep their order


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest's own, named by the test's first 16 characters rather than 30: a pytest-xdist
    worker adds its folder (`popen-gw0/`) to every path, and an error line shortens a quoted
    value past 80 characters (frugal.core.errors.MAX_SHOWN) that tests look for whole."""
    name = re.sub(r"\W", "_", request.node.name)[:16]
    return tmp_path_factory.mktemp(name, numbered=True)


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    os.environ.pop("FRUGAL_DEBUG", None)


def train_argv(*args: str) -> list[str]:
    """The command line of `frugal-train <args>` in this interpreter."""
    return [sys.executable, "-m", "frugal.train", *args]


def run_trained(
    *args: str, cwd: Path, timeout_s: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`frugal-train <args>` run to its end, stdout and stderr captured apart."""
    return subprocess.run(
        train_argv(*args), capture_output=True, text=True, timeout=timeout_s, cwd=cwd, env=env
    )


def spawn_train(*args: str, cwd: Path) -> subprocess.Popen:
    """`python -m frugal.train <args>` in its own process group (a signal to the group reaches
    it as a terminal's Ctrl-C or a scheduler's kill would), output merged."""
    return subprocess.Popen(
        train_argv(*args),
        cwd=cwd,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen, timeout_s: float = 120, what: str = ""
) -> None:
    """Poll `ready` while `process` runs; fails with its output if it ends first."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(
                f"ended ({process.returncode}) before {what or 'ready'}: "
                f"{(out or err or '')[-3000:]}"
            )
        assert time.monotonic() < deadline, f"{what or 'ready'}: not within {timeout_s} s"
        time.sleep(0.05)


# ---- `frugal-train` in this process --------------------------------------------------------
# A fresh interpreter costs 6-10 s (torch and Lightning imported again); a run in this process
# costs only the run. Used wherever a separate process is not what is tested.


@dataclass
class Ran:
    """What a command did: its exit status and what it printed."""

    code: int
    out: str
    err: str

    @property
    def said(self) -> str:
        return f"{self.out[-3000:]}\n{self.err[-3000:]}"


@contextlib.contextmanager
def process_state_kept() -> Iterator[None]:
    """Leaves the process as it found it: what a `frugal-train` run changes in its process
    (environment, working directory, `sys.argv`, `sys.path`, signal handlers, torch's thread
    count, Hydra's global state and the logging handlers its job installs)."""
    environ, cwd = dict(os.environ), os.getcwd()
    argv, path = list(sys.argv), list(sys.path)
    from frugal.runs.signals import STOP_SIGNALS

    handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    loggers = {
        name: (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in root_handlers:
                handler.close()
        root.handlers[:] = root_handlers
        root.setLevel(root_level)
        for name, (kept, level, propagate, disabled) in loggers.items():
            logger = logging.getLogger(name)
            for handler in logger.handlers:
                if handler not in kept:
                    handler.close()
            logger.handlers[:] = kept
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled
        for signum, handler in handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if torch is not None and threads is not None:  # first imported by the run: as it set
            torch.set_num_threads(threads)
        sys.argv[:], sys.path[:] = argv, path
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        import frugal.train

        frugal.train._signals = None


def run_main(
    argv: Sequence[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    program: str = "frugal.train",
) -> Ran:
    """`frugal-train argv` (or `frugal-report`: program="frugal.report.cli") run to its end in
    this process, in `cwd`, with `env` added to the environment (`PYTHONPATH` also on
    `sys.path`, as a new interpreter would have it); its output captured."""
    import importlib

    main = importlib.import_module(program).main
    out, err = io.StringIO(), io.StringIO()
    with process_state_kept():
        if cwd is not None:
            os.chdir(cwd)
        os.environ.pop("FRUGAL_DEBUG", None)
        os.environ.update(env or {})
        folders = (env or {}).get("PYTHONPATH", "").split(os.pathsep)
        added = [str(Path(folder).resolve()) for folder in folders if folder]
        sys.path[:0] = added
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                returned = main(list(argv))
                code = int(returned or 0)
            except SystemExit as end:  # sys.exit(text) prints it and exits 1, as Python does
                code = end.code if isinstance(end.code, int) else int(end.code is not None)
                if isinstance(end.code, str):
                    print(end.code, file=err)
        _forget_modules_under(added)  # another test may import its own module of that name
    return Ran(code, out.getvalue(), err.getvalue())


def _forget_modules_under(folders: list[str]) -> None:
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None) or ""
        if any(where.startswith(folder + os.sep) for folder in folders):
            del sys.modules[name]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished tiny run as `frugal-train` leaves it (`.hydra/`, `train.log`, the marker,
    `result.json`, `curve.csv`, `ledger.json`, `csv/`, `checkpoints/`), trained once a session
    for the tests that only read a run; a test that changes one works on a copy."""
    run = tmp_path_factory.mktemp("finished") / "run"
    done = run_main([f"hydra.run.dir={run}", *TINY, "logger=csv"], cwd=run.parent)
    assert done.code == 0, done.said
    return run


def check_command(argv: list[str], monkeypatch, capsys) -> tuple[int | None, str, str]:
    """(exit status, stdout, stderr) of `frugal-train argv` in this process, Hydra's job
    replaced by a tripwire: an accepted command line returns None and trains nothing."""
    import frugal.train

    monkeypatch.setattr(frugal.train, "_hydra_main", lambda: None)
    capsys.readouterr()
    try:
        frugal.train.main(argv)
        code = None
    except SystemExit as exited:
        code = exited.code
    out, err = capsys.readouterr()
    return code, out, err
