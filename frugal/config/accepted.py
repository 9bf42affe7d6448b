"""What `frugal-train`'s command line check found good, kept for the runs it starts.

The command line is checked before Hydra writes anything (`check_command_line`); Hydra then
composes the same configuration again for each run it starts in this process. A run whose
configuration is one the check passed is handed that check's `Checked` instead of being checked
a second time. One that differs (a sweeper's own trial, a run directory named by a clock that
ticked in between) finds none and is checked by the run itself, as a script's `train(cfg)` is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig

from frugal.config.check import Checked
from frugal.config.resolve import plain
from frugal.core.errors import ConfigError


class Accepted:
    """Checked configurations by their resolved values (Hydra's own node left out)."""

    def __init__(self) -> None:
        self._checked: dict[str, Checked] = {}

    def add(self, cfg: DictConfig | Mapping[str, Any], checked: Checked) -> None:
        key = _key(cfg)
        if key is not None:
            self._checked[key] = checked

    def get(self, cfg: DictConfig | Mapping[str, Any]) -> Checked | None:
        """The `Checked` of a configuration with the same values, or None."""
        key = _key(cfg)
        return None if key is None else self._checked.get(key)

    def __len__(self) -> int:
        return len(self._checked)


def _key(cfg: DictConfig | Mapping[str, Any]) -> str | None:
    try:
        node = plain(cfg)
    except ConfigError:  # one that does not resolve was never accepted
        return None
    node.pop("hydra", None)
    return json.dumps(node, sort_keys=True, default=repr)
