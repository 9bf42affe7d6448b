"""`frugal-train --help`: the config groups and their options, the budget keys with their units,
and the exit statuses; Hydra's own help stays under `--hydra-help`."""

from __future__ import annotations

import textwrap
from pathlib import Path

from frugal.budget.spec import DEFAULT_ESTIMATE_MARGIN, ON_EXCEED, PLAN_MODES
from frugal.core.keys import AMOUNT_KEYS
from frugal.core.status import EXIT_CODES_HELP

HIDDEN_GROUPS = ("hydra", "local")  # Hydra's settings; a machine's own settings
_UNITS = {"J": "joules", "g": "grams CO2e", "FLOP": "FLOP", "s": "seconds", "B": "bytes"}


def help_text(config_dir: str | Path) -> str:
    lines = [
        "usage: frugal-train [group=option] [key=value ...] [-m] [--cfg job] [--hydra-help]",
        "",
        "Train a model under a declared budget; every run writes result.json and curve.csv.",
        "  frugal-train data=mnist1d model=cnn budget.energy=2kJ",
        "  frugal-train -m model=cnn,lowrank_cnn,wide_cnn budget.energy=500J   # a sweep",
        "",
        "Config groups (group=option; * marks the default):",
        *_groups(Path(config_dir)),
        "",
        "Budget keys (budget.<key>=<amount>; null = measure and report, never enforce):",
        "  key              unit in result.json   accepted amounts",
        *(
            f"  budget.{key:<9} {_UNITS.get(dim.si_unit, dim.si_unit):<21} {dim.examples}"
            for key, (_, dim) in AMOUNT_KEYS.items()
        ),
        f"  budget.on_exceed  {' | '.join(ON_EXCEED)} (default {ON_EXCEED[0]})",
        f"  budget.plan       {' | '.join(PLAN_MODES)} (default {PLAN_MODES[0]}: shorten the "
        "horizon to fit)",
        f"  budget.estimate_margin  a fraction in [0, 1) (default {DEFAULT_ESTIMATE_MARGIN}): an",
        "                    estimated energy or carbon stops this much short of its limit",
        "",
        "Other keys: seed, threads, test_on (best|last), ckpt_path (resume), objectives,",
        "  init_from (weights to start from), energy.backend (auto|rapl|nvml|codecarbon|none),",
        "  trainer.max_steps, ...",
        "  frugal-train --cfg job    prints the whole composed configuration",
        "",
        "Bad input is rejected before any work: one line on stderr, exit status 2",
        "  (FRUGAL_DEBUG=1 shows the traceback).",
        textwrap.fill(
            "Exit status: " + EXIT_CODES_HELP.removeprefix("exit status: ") + ".",
            96,
            subsequent_indent="  ",
        ),
    ]
    return "\n".join(lines)


def _groups(config_dir: Path) -> list[str]:
    defaults = _defaults(config_dir / "train.yaml")
    lines = []
    for group in sorted(p for p in config_dir.iterdir() if p.is_dir()):
        if group.name in HIDDEN_GROUPS:
            continue
        options = [
            f"{name}*" if defaults.get(group.name) == name else name
            for name in sorted(p.stem for p in group.glob("*.yaml"))
        ]
        if options:
            head = f"  {group.name + ':':<15} "
            lines.append(
                textwrap.fill(
                    ", ".join(options), 96, initial_indent=head, subsequent_indent=" " * len(head)
                )
            )
    return lines


def _defaults(primary: Path) -> dict[str, str]:
    """group -> default option, from the primary config's defaults list."""
    from omegaconf import OmegaConf

    try:
        entries = OmegaConf.to_container(OmegaConf.load(primary)).get("defaults", [])
    except (OSError, ValueError, AttributeError):
        return {}
    found = {}
    for entry in entries:
        if isinstance(entry, dict):
            for group, option in entry.items():
                found[str(group).removeprefix("optional ")] = option
    return found
