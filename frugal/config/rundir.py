"""Never touch another run: a run writes only into a directory that holds no other run's
outputs, unless it resumes that very run (its `ckpt_path` lies inside the directory).

Checked last, before anything is written: the output directory, and any place outside it that
the configuration sends checkpoints or logs to. A rejected run therefore leaves every earlier
run byte for byte as it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from frugal.budget.ledger import LEDGER_FILE
from frugal.config.errors import bad
from frugal.record import CURVE_FILE, RESULT_FILE

CHECKPOINTS = "checkpoints"
RUN_OUTPUTS = (RESULT_FILE, LEDGER_FILE, CURVE_FILE, f"{CHECKPOINTS}/")


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


def check_output_dirs(node: dict[str, Any], output_key: str) -> None:
    """Raise ConfigError if this run would write where it must not."""
    output_dir = Path(node["paths"]["output_dir"]).expanduser()
    check_writable(output_key, output_dir)
    resuming = resumes(output_dir, node)
    found = outputs_in(output_dir) if output_dir.is_dir() else []
    if found and not resuming:
        raise bad(
            output_key,
            str(output_dir),
            f"holds another run's outputs ({', '.join(found)})",
            "a new directory, or ckpt_path=<that run>/checkpoints/last.ckpt to resume that run",
        )
    for key, place in elsewhere(node):
        if _inside(place, output_dir):
            continue
        check_writable(key, place)
        found = [name for name in outputs_in(place) if name != f"{CHECKPOINTS}/"]
        if place.is_dir() and any(place.glob("*.ckpt")):
            found.append("*.ckpt")
        if found and not resumes(place, node):
            raise bad(
                key,
                str(place),
                f"holds another run's outputs ({', '.join(found)})",
                "a directory of this run's own, e.g. ${paths.output_dir}/...",
            )


# What marks a directory as a run's (Hydra's saved configuration: also a run that crashed)
RUN_MARKERS = (RESULT_FILE, LEDGER_FILE, ".hydra/config.yaml")


def check_not_inside_a_run(key: str, directory: Path) -> None:
    """`directory` is not inside another run's directory (`<run>/checkpoints`, `<run>/.hydra`,
    `<run>/sub`): that run would gain files it never wrote. The command line's check (a
    script calling `train(cfg)` places its runs itself)."""
    try:
        resolved = directory.expanduser().resolve()
    except (OSError, RuntimeError):
        return
    for parent in resolved.parents:
        found = [name for name in RUN_MARKERS if (parent / name).is_file()]
        if found:
            raise bad(
                key,
                str(directory),
                f"lies inside another run's directory {parent} (it holds {', '.join(found)})",
                "a directory outside any run, e.g. outputs/<name>",
            )


def elsewhere(node: dict[str, Any]) -> list[tuple[str, Path]]:
    """(key, directory) of every other place the configuration writes into."""
    places = []
    for name, entry in (node.get("callbacks") or {}).items():
        if isinstance(entry, dict) and entry.get("dirpath"):
            places.append((f"callbacks.{name}.dirpath", Path(entry["dirpath"])))
    for name, entry in (node.get("logger") or {}).items():
        if isinstance(entry, dict) and entry.get("save_dir"):
            places.append((f"logger.{name}.save_dir", Path(entry["save_dir"])))
    root = node["trainer"].get("default_root_dir")
    if root:
        places.append(("trainer.default_root_dir", Path(root)))
    return [(key, place.expanduser()) for key, place in places]


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
