"""Every command in README.md, run verbatim, so that README and code cannot drift apart.

Commands come from README's ```bash blocks (one per line, `#` comments stripped) and its
```console blocks (`$ command`, then the output it prints; `$ echo $?` then the exit status).
They run in order in one scratch directory (`outputs/` lands there, not in the checkout), as
README says, each exactly as written. `frugal-train` and `frugal-report` commands run in this
process (`conftest.run_main`: the same `main(argv)` the console script calls, in the scratch
directory, with the command's `NAME=value` settings in the environment), which spares a fresh
interpreter (torch and Lightning imported again: 6-10 s) per command; `make` commands, other
programs and the command in AS_WRITTEN (a multirun under the submitit launcher) run in a real
shell, as a user types them.

- training commands get `trainer.max_steps=20` appended (`ARGS=trainer.max_steps=20` for
  `make train`), so each takes seconds;
- `(exit N)` in a command's comment is the exit status it must end with, 0 otherwise;
- `<run>` is the latest single run's directory name, `<date_time>` the latest multirun's;
- a run leaves `result.json`, `curve.csv`, `ledger.json`, `checkpoints/last.ckpt` and
  `.hydra/`; a refused run its `result.json`; rejected input nothing at all; a report
  `report.md`, `runs.csv`, `pareto.png` and `curves.png`.

Not run, with the reason in SKIPPED: `make test` and `make test-slow` (the suite itself),
`make lint` (a check of the checkout, not of README), `make benchmarks` (minutes of
measurements, by design), `make studies …` (a study's runs, then its committed tables
refreshed). README's ```sh blocks are for other machines (SLURM) and are not read.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import run_main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHORTEN = "trainer.max_steps=20"
SKIPPED = {
    "make test": "the test suite itself",
    "make test-slow": "the slow half of the test suite",
    "make lint": "checks the checkout's code, not README",
    "make benchmarks": "several minutes of measurements on a quiet machine, by design",
}
# Skipped by their first words: a study takes a quarter of an hour and refreshes the tables and
# plots committed in experiments/ (the scratch directory links to the checkout's).
SKIPPED_PREFIXES = {"make studies": "a study: minutes of runs, then committed tables refreshed"}
RUN_FILES = ("result.json", "curve.csv", "ledger.json", "checkpoints/last.ckpt", ".hydra")
REPORT_FILES = ("report.md", "runs.csv", "pareto.png", "curves.png")
TIMEOUT_S = 300
# Run in a real shell although `frugal-train`: a multirun as the console script runs it, its
# jobs under the submitit launcher (processes of their own). `make train` runs the console
# script too.
AS_WRITTEN = {
    "frugal-train -m hydra/launcher=submitit_local model=cnn,mlp trainer.max_steps=300 "
    "budget.energy=200J",
}
IN_PROCESS = {"frugal-train": "frugal.train", "frugal-report": "frugal.report.cli"}
ENV_SETTING = r"[A-Z_][A-Z0-9_]*=\S*"
# What the scratch directory does not get from the checkout: outputs and caches, so that it
# looks like a fresh clone that has been set up.
NOT_IN_A_CLONE = {".git", "outputs", "multirun", "report", "reports", ".pytest_cache"}
NOT_IN_A_CLONE |= {".ruff_cache", "lightning_logs", "frugal.egg-info", "wine.csv"}


@dataclass
class Command:
    text: str  # verbatim, as README writes it
    exit_status: int = 0
    output: list[str] = field(default_factory=list)  # lines README shows it printing

    def __str__(self) -> str:
        return self.text


def readme_commands(text: str) -> list[Command]:
    commands: list[Command] = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S):
        if lang == "bash":
            for line in body.replace("\\\n", " ").splitlines():
                code, _, comment = line.partition(" #")
                if code.strip():
                    found = re.search(r"\(exit (\d+)\)", comment)
                    commands.append(Command(code.strip(), int(found[1]) if found else 0))
        elif lang == "console":
            for line in body.splitlines():
                if line.startswith("$ echo $?"):
                    commands[-1].exit_status = -1  # the next line sets it
                elif line.startswith("$ "):
                    commands.append(Command(line[2:].strip()))
                elif commands and commands[-1].exit_status == -1:
                    commands[-1].exit_status = int(line)
                elif commands and line.strip():
                    commands[-1].output.append(line)
    return commands


COMMANDS = readme_commands(README.read_text())


def test_readme_has_commands():
    assert any(c.text.startswith("frugal-train -m") for c in COMMANDS)
    assert any(c.text.startswith("frugal-report") for c in COMMANDS)
    assert any(c.exit_status == 2 for c in COMMANDS)  # the bad-input example


@dataclass
class Workspace:
    root: Path
    env: dict[str, str]
    last_run: Path | None = None
    last_multirun: Path | None = None

    def results(self) -> dict[Path, int]:
        return {p: p.stat().st_mtime_ns for p in self.root.glob("outputs/**/result.json")}

    def files(self) -> set[Path]:
        return set(self.root.glob("outputs/**/*"))

    def new_second(self) -> None:
        """Wait while a run or multirun directory is named by this second: a new command's
        directory is (`outputs/train/runs/<date_time>`), and a command in this process (a
        refusal, a report) may end within the second the one before it started."""
        while any(
            (self.root / "outputs/train" / kind / time.strftime("%Y-%m-%d_%H-%M-%S")).exists()
            for kind in ("runs", "multiruns")
        ):
            time.sleep(0.05)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A scratch directory that looks like a set-up clone to `make` (the Makefile, the
    project's venv) and gets the runs' outputs."""
    root = tmp_path_factory.mktemp("readme")
    venv = Path(sys.executable).parent.parent
    for path in REPO.iterdir():
        if path.name not in NOT_IN_A_CLONE and not path.name.startswith("emissions"):
            (root / path.name).symlink_to(path)
    if not (root / ".venv").exists():
        (root / ".venv").symlink_to(venv)
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "FRUGAL_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
    }
    env.pop("FRUGAL_DEBUG", None)
    return Workspace(root, env)


def as_run(command: Command, ws: Workspace) -> str:
    """README's command with its placeholders filled and its steps shortened."""
    text = command.text
    for placeholder, directory in (("<run>", ws.last_run), ("<date_time>", ws.last_multirun)):
        if placeholder in text:
            assert directory is not None, f"no earlier command made a {placeholder} directory"
            text = text.replace(placeholder, directory.name)
    unknown = re.findall(r"<[\w ]+>", text)
    assert not unknown, f"unknown placeholder {unknown} in {command.text!r}"
    words = program(text)
    if words[:2] == ["make", "train"]:
        return f"{text} ARGS={SHORTEN} -o .venv/.installed"  # never reinstall from a test
    if words[0] == "make":
        return f"{text} -o .venv/.installed"
    if words[0] == "frugal-train" and "--help" not in words:
        return f"{text} {SHORTEN}"
    return text


def program(command: str) -> list[str]:
    """The command's words after any leading `NAME=value` environment settings."""
    words = shlex.split(command)
    while words and re.fullmatch(ENV_SETTING, words[0]):
        words = words[1:]
    return words


def sweep_size(command: str) -> int | None:
    """How many jobs a plain comma sweep (`model=a,b,c`) makes; None for other sweepers."""
    if "hparams_search=" in command or "hydra/sweeper" in command:
        return None
    size = 1
    for word in shlex.split(command):
        if "=" in word and "," in word.split("=", 1)[1]:
            size *= len(word.split("=", 1)[1].split(","))
    return size


def check_runs(command: Command, ws: Workspace, run_dirs: list[Path], said: str = "") -> None:
    words = program(command.text)
    # a size search's pilots (`<run>/pilots/...`) are part of their run, not runs of their own
    run_dirs = [d for d in run_dirs if "pilots" not in d.relative_to(ws.root).parts]
    if "-m" in words or "--multirun" in words:
        expected = sweep_size(command.text)
        if not run_dirs and "sweep envelope continued" in said:
            return  # a relaunched sweep whose jobs had all finished: nothing to run again
        assert run_dirs, "a sweep left no run"
        if expected is not None:
            assert len(run_dirs) == expected, run_dirs
        ws.last_multirun = run_dirs[0].parent
    else:
        assert len(run_dirs) == 1, f"expected one run, found {run_dirs}"
        if command.exit_status != 4:
            ws.last_run = run_dirs[0]  # `<run>` from now on
    for run_dir in run_dirs:
        result = json.loads((run_dir / "result.json").read_text())
        if command.exit_status == 4:
            assert result["status"] == "refused"
            continue
        assert result["status"] in {"completed", "budget_exhausted"}, result["message"]
        missing = [name for name in RUN_FILES if not (run_dir / name).exists()]
        assert not missing, f"{run_dir} lacks {missing}"


def report_dir(command: str, ws: Workspace) -> Path | None:
    words = program(command)
    if words[0] == "frugal-report":
        return ws.root / (words[words.index("-o") + 1] if "-o" in words else "report")
    if words[:2] == ["make", "report"]:
        out = next((w.split("=", 1)[1] for w in words if w.startswith("OUT=")), "report")
        return ws.root / out
    return None


def run(command: Command, shell: str, ws: Workspace) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the command: in this process where it is
    `frugal-train` or `frugal-report` (see the module's docstring), else in a real shell."""
    words = shlex.split(shell)
    settings = {}
    while words and re.fullmatch(ENV_SETTING, words[0]):
        name, value = words.pop(0).split("=", 1)
        settings[name] = value
    if words[0] in IN_PROCESS and command.text not in AS_WRITTEN:
        assert not re.search(r"[|&;<>`$]", shell), f"not a plain command: {shell}"
        env = {"FRUGAL_CACHE_DIR": ws.env["FRUGAL_CACHE_DIR"], **settings}
        ran = run_main(words[1:], cwd=ws.root, env=env, program=IN_PROCESS[words[0]])
        return ran.code, ran.out, ran.err
    done = subprocess.run(
        ["bash", "-c", shell],
        cwd=ws.root,
        env=ws.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    return done.returncode, done.stdout, done.stderr


def test_some_commands_run_as_a_user_types_them():
    """The commands kept in a real shell are still in README."""
    texts = {c.text for c in COMMANDS}
    assert texts >= AS_WRITTEN, AS_WRITTEN - texts
    assert any(c.text == "make train" for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_readme_command(command: Command, workspace: Workspace):
    if command.text in SKIPPED:
        pytest.skip(SKIPPED[command.text])
    for prefix, reason in SKIPPED_PREFIXES.items():
        if command.text.startswith(prefix):
            pytest.skip(reason)
    ws = workspace
    shell = as_run(command, ws)
    before_results, before_files = ws.results(), ws.files()
    ws.new_second()
    started_ns = time.time_ns()
    code, stdout, stderr = run(command, shell, ws)
    said = f"$ {shell}\n{stdout[-3000:]}\n{stderr[-3000:]}"
    assert code == command.exit_status, said
    for line in command.output:
        assert line in stdout + stderr, said

    if command.exit_status == 2:  # rejected input writes nothing
        assert ws.files() == before_files, said
        return
    changed = sorted(
        path.parent for path, mtime in ws.results().items() if before_results.get(path) != mtime
    )
    words = program(command.text)
    if words[0] == "frugal-train" or words[:2] == ["make", "train"]:
        check_runs(command, ws, changed, said)
    out = report_dir(shell, ws)
    if out is not None:
        fresh = [
            name
            for name in REPORT_FILES
            if (out / name).is_file() and (out / name).stat().st_mtime_ns >= started_ns
        ]
        assert fresh == list(REPORT_FILES), f"{out} has only {fresh} from this command\n{said}"
