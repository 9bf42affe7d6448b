"""frugal's Hydra plugins (`hydra/sweeper=halving`), made visible to Hydra.

Hydra instantiates only plugins whose class lives in the `hydra_plugins` namespace package.
frugal's live in `frugal/sweep/hydra_plugins/hydra_plugins/` (no `__init__.py` in
`hydra_plugins`: it is shared with the installed plugins, optuna's, submitit's), so that folder's
parent goes on `sys.path`; the class is also registered by hand, in case Hydra scanned its
plugins before.
"""

from __future__ import annotations

import sys
from pathlib import Path

PLUGINS_ROOT = Path(__file__).resolve().parent / "hydra_plugins"


def register() -> None:
    """Put frugal's plugins where Hydra finds them; calling it again does nothing more."""
    root = str(PLUGINS_ROOT)
    if root not in sys.path:
        sys.path.append(root)  # appended: a namespace package merges every folder it finds
    from hydra.core.plugins import Plugins
    from hydra_plugins.frugal_sweepers.halving_sweeper import HalvingSweeper

    Plugins.instance().register(HalvingSweeper)
