"""What frugal sets on every Lightning Trainer it builds, beyond the configured `trainer` group:
bounded DDP collectives, atomic checkpoints, and its own signal handlers kept in place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import lightning as L
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import DictConfig

from frugal.runs.checkpoint_io import AtomicCheckpointIO
from frugal.runs.cluster import trainer_plugins


def trainer_options(cfg: DictConfig) -> dict[str, Any]:
    """The Trainer's arguments frugal sets: atomic checkpoints; under SLURM, frugal, not
    Lightning, handles the signals (`trainer_plugins`); `strategy: ddp` with every collective
    bounded — a rank that died or stopped answering ends the others' waits with an error
    instead of a hang."""
    options: dict[str, Any] = {
        "plugins": [AtomicCheckpointIO(), *trainer_plugins().get("plugins", [])]
    }
    if cfg.trainer.get("strategy") == "ddp":
        timeout_s = float(cfg.get("collective_timeout_s") or 120)
        options["strategy"] = DDPStrategy(timeout=timedelta(seconds=timeout_s))
    return options


def keep_frugal_signal_handlers(trainer: L.Trainer) -> None:
    """Lightning installs a SIGTERM handler of its own at the start of every fit and test
    (after `on_fit_start`, before the trainer's "run-stage" barrier and the sanity check) that
    kills the launcher's other processes and broadcasts a tensor from inside the handler: under
    DDP, a SIGTERM that reaches rank 1 alone waits on a collective rank 0 never joins (a hang;
    `frugal.runs.signals`). Lightning has no public switch for it (`SLURMEnvironment(
    auto_requeue=False)` drops only its SLURM requeue handlers), and handlers put back from a
    callback's hook would leave it in place over that barrier. Upstream: Lightning-AI/
    pytorch-lightning#20806 (SIGTERM not handled consistently across DDP ranks, open), whose
    fix #20825 added the broadcast in the handler. So the private connector is disarmed, and
    frugal's handlers, which only note the signal, stay in place through fit and test."""
    trainer._signal_connector.register_signal_handlers = lambda: None
