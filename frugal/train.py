"""`frugal-train` (same as `python -m frugal.train`): one budgeted training run.

A thin Hydra wrapper around `frugal.pipeline.train`. The command line's budget is checked
before anything heavy is imported, so bad input gets its one-line error (exit status 2) at once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from frugal.budget.spec import BudgetSpec, ConfigError
from frugal.status import EXIT_BAD_INPUT, EXIT_OK, Status, exit_code


def train(cfg: DictConfig, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """See `frugal.pipeline.train`."""
    from frugal.pipeline import train as run

    return run(cfg, **kwargs)


def precheck_argv(argv: list[str]) -> None:
    """Validate `budget.*` overrides before Hydra composes anything: an unknown budget key
    must get our one-line error, not Hydra's multi-line struct error. Every element of a sweep
    (`budget.energy=1kJ,2kJ`, `choice(…)`, `range(…)`) is checked; interval sweeps and anything
    Hydra itself cannot parse are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        overrides = OverridesParser.create().parse_overrides(argv)
    except HydraException:
        return
    for override in overrides:
        key = override.key_or_group
        if override.package is not None or not key.startswith("budget.") or key.count(".") != 1:
            continue
        if override.is_sweep_override():
            try:
                values: list[Any] = list(override.sweep_string_iterator())
            except HydraException:
                continue  # an interval sweep: no finite list to check
        else:
            values = [override.value()]
        name = key.split(".", 1)[1]
        for value in values:
            BudgetSpec.from_config({name: _number_or_text(value)})


def _number_or_text(value: Any) -> Any:
    if not isinstance(value, str) or value in ("null", "None"):
        return None if value in ("null", "None") else value
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _debug(cfg: DictConfig | None = None) -> bool:
    return bool(os.environ.get("FRUGAL_DEBUG")) or bool(cfg is not None and cfg.get("debug"))


# An absolute path: Hydra resolves a relative one against the *package* when the function is
# started as a console script (`frugal-train`), and conf/ lives beside the package, not in it.
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    try:
        result, objects = train(cfg)
    except ConfigError as err:
        if _debug(cfg):
            raise
        print(f"frugal-train: {err}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    status = result["status"]
    signum = objects["budget"].signal
    code = exit_code(status, cfg.budget.get("on_exceed") or "stop", signum)
    if code != EXIT_OK:
        print(f"frugal-train: {status}: {result['message']}", file=sys.stderr)
        # In a sweep one refused or diverged job must not end the others; a signal does.
        if status == Status.INTERRUPTED or not _in_multirun():
            sys.exit(code)
    return objectives(cfg, result)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def objectives(cfg: DictConfig, result: dict[str, Any]) -> float | tuple[float | None, ...] | None:
    """What a Hydra sweeper optimises: `objectives: [test/acc, energy_j]` names metrics or
    spent keys; one name gives a float, several a tuple (multi-objective Optuna)."""
    names = list(cfg.get("objectives") or ["test/acc"])
    values = tuple(result["metrics"].get(name, result["spent"].get(name)) for name in names)
    return values[0] if len(values) == 1 else values


def main() -> None:
    try:
        precheck_argv(sys.argv[1:])
    except ConfigError as err:
        print(f"frugal-train: {err}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    _hydra_main()


if __name__ == "__main__":
    main()
