"""Where a run may write: its own directory, and nothing outside it (DESIGN.md, "The run
directory"; the file system's side is `frugal.runs`).

- `check_output_dirs` (every run, also `train(cfg)` from a script): no system directory, no
  link among what the run writes, no other run's outputs unless this run resumes that very run,
  and every configured name and path (`task_name`, a callback's `dirpath` and `filename`, a
  logger's `save_dir`, `name` and `version`, `trainer.default_root_dir`) inside the directory.
- `check_not_inside_a_run` (the command line, before Hydra writes `.hydra/` and its log): the
  directory lies inside no other run (a directory holding frugal's run marker) and is new,
  empty, or a frugal run's.

Checked before anything is written: a rejected run leaves every earlier run, and every other
file, byte for byte as it was.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from omegaconf import open_dict

from frugal.budget.ledger import LEDGER_FILE
from frugal.core.errors import bad
from frugal.runs.directory import (
    MARKER,
    entries,
    is_run,
    marked_ancestor,
    refuse_links,
    system_dir,
)
from frugal.runs.locks import claim, holder_of, in_use
from frugal.runs.record import CURVE_FILE, RESULT_FILE

CHECKPOINTS = "checkpoints"
INSIDE = "a path inside the run directory, e.g. ${paths.output_dir}/..."


def outputs_in(directory: Path) -> list[str]:
    """Which of a run's outputs `directory` holds (a `checkpoints/` folder counts when it holds
    any file)."""
    found = [name for name in (RESULT_FILE, LEDGER_FILE, CURVE_FILE) if (directory / name).exists()]
    checkpoints = directory / CHECKPOINTS
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        found.append(f"{CHECKPOINTS}/")
    return found


def resumes(directory: Path, node: dict[str, Any]) -> bool:
    """This run continues the run in `directory`: its checkpoint (`ckpt_path`, or `resume`, a
    run directory) lies inside it. Compressing a checkpoint starts a new run: never counts."""
    named = node.get("ckpt_path") or node.get("resume")
    if not named or node.get("compress"):
        return False
    return _inside(Path(str(named)).expanduser(), directory)


def continue_search(cfg: Any) -> Any:
    """A size search started again into its own directory (a relaunched sweep job, a requeued
    cluster job) once its final run has written there: `resume=<run>`, so that the directory
    check lets it go on (the search resumes each part itself, `frugal.sweep.auto_size`)."""
    run_dir = Path(str(cfg.paths.output_dir))
    if cfg.get("resume") or not run_dir.is_dir() or not outputs_in(run_dir):
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.resume = str(run_dir)
    return cfg


def check_output_dirs(node: dict[str, Any], output_key: str) -> None:
    """Raise ConfigError if this run would write where it must not."""
    check_task_name(node.get("task_name"))
    output_dir = Path(node["paths"]["output_dir"]).expanduser()
    if system_dir(output_dir):
        raise bad(
            output_key,
            str(output_dir),
            "a system directory (or the home directory itself)",
            "a directory of runs, e.g. outputs/<name>",
        )
    check_writable(output_key, output_dir)
    refuse_links(output_key, output_dir)
    found = outputs_in(output_dir) if output_dir.is_dir() else []
    if found and not resumes(output_dir, node):
        raise bad(
            output_key,
            str(output_dir),
            f"holds another run's outputs ({', '.join(found)})",
            "a new directory, or ckpt_path=<that run>/checkpoints/last.ckpt to resume that run",
        )
    for key, value, place in configured_paths(node):
        if not _inside(place, output_dir):
            raise bad(key, value, f"leaves the run directory {output_dir}", INSIDE)


def check_not_inside_a_run(key: str, directory: Path) -> None:
    """Before Hydra writes: `directory` lies inside no other run's directory (`<run>/sub`,
    `<run>/checkpoints`: that run would gain files it never wrote) and is new, empty, or a
    frugal run (`check_output_dirs` lets only that run's resume write into one). The command
    line's check (a script calling `train(cfg)` places its runs itself)."""
    try:
        resolved = directory.expanduser().resolve()
    except (OSError, RuntimeError):
        return
    parent = marked_ancestor(resolved)
    if parent is not None:
        raise bad(
            key,
            str(directory),
            f"lies inside another run's directory {parent} (it holds frugal's {MARKER})",
            "a directory outside any run, e.g. outputs/<name>",
        )
    if not resolved.is_dir():
        return
    holder = holder_of(resolved)
    if holder is not None:  # a run starting or training there now
        raise in_use(key, directory, holder)
    if is_run(resolved):
        return
    try:
        found = entries(resolved)
    except OSError as err:
        problem = f"cannot be read ({err.strerror})"
        raise bad(key, str(directory), problem, "a directory path") from None
    if found:
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise bad(
            key,
            str(directory),
            f"holds files that are not a frugal run's ({shown})",
            "a new or empty directory (a run writes only among its own files)",
        )


def check_task_name(name: Any) -> None:
    """`task_name` names a folder under `paths.log_dir`: never one outside it."""
    if name is None:
        return
    parts = Path(str(name)).parts
    if not str(name).strip() or Path(str(name)).is_absolute() or ".." in parts:
        raise bad(
            "task_name", name, "leaves the outputs folder", "a plain name, e.g. train or mnist1d"
        )


def configured_paths(node: dict[str, Any]) -> list[tuple[str, Any, Path]]:
    """(key, value, the path it makes) of every place the configuration names for a run's
    files: each must lie inside the run directory."""
    places = []
    for name, entry in (node.get("callbacks") or {}).items():
        if not isinstance(entry, dict):
            continue
        dirpath = entry.get("dirpath")
        if dirpath:
            places.append((f"callbacks.{name}.dirpath", dirpath, Path(str(dirpath))))
        filename = entry.get("filename")
        if filename:
            folder = Path(str(dirpath)) if dirpath else Path(node["paths"]["output_dir"])
            places.append((f"callbacks.{name}.filename", filename, _joined(folder, filename)))
    for name, entry in (node.get("logger") or {}).items():
        if not isinstance(entry, dict) or not entry.get("save_dir"):
            continue
        log_dir = Path(str(entry["save_dir"]))
        places.append((f"logger.{name}.save_dir", entry["save_dir"], log_dir))
        for part in ("name", "version"):  # Lightning logs into save_dir/name/version
            if entry.get(part) not in (None, ""):
                log_dir = _joined(log_dir, entry[part])
                places.append((f"logger.{name}.{part}", entry[part], log_dir))
    root = node["trainer"].get("default_root_dir")
    if root:
        places.append(("trainer.default_root_dir", root, Path(str(root))))
    return [(key, value, place.expanduser()) for key, value, place in places]


def _joined(folder: Path, name: Any) -> Path:
    """`folder/name` with `..` applied (an absolute `name` stands alone, as Lightning joins)."""
    return Path(os.path.normpath(folder / str(name)))


def check_writable(key: str, directory: Path) -> None:
    """`directory` is, or can be made, a writable directory: its nearest existing ancestor is
    a directory we may write in (a path under a regular file fails here, not in Hydra)."""
    existing = directory.absolute()
    while not existing.exists():
        if existing.is_symlink():  # a dangling link: creating the directory would fail
            raise bad(key, str(directory), f"{existing} is a broken link", "a directory path")
        existing = existing.parent
    if not existing.is_dir():
        raise bad(key, str(directory), f"{existing} is a file, not a directory", "a directory path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise bad(
            key, str(directory), f"{existing} is not writable", "a directory you may write in"
        )


def _inside(path: Path, directory: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError):
        return False


def claim_resumed(argv: list[str]) -> Path | None:
    """Claim the run a single command line resumes (`frugal.runs.claim`: one process per
    run), before Hydra appends to its log; returns its directory (release it after Hydra's
    run), None for any other command line. `frugal.runs.checkpoint.resume_argv` has set
    `hydra.run.dir` to the run's own directory."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if any(arg in ("-m", "--multirun") for arg in argv):
        return None
    texts = [arg for arg in argv if "=" in arg and not arg.startswith("-")]
    overrides = OverridesParser.create().parse_overrides(texts)
    values = {o.key_or_group: o.value() for o in overrides if not o.is_delete()}
    run_dir = values.get("hydra.run.dir")
    if not isinstance(run_dir, str) or not resumes(Path(run_dir).expanduser(), values):
        return None
    directory = Path(run_dir).expanduser()
    claim(directory, "resume" if values.get("resume") else "ckpt_path")
    return directory
