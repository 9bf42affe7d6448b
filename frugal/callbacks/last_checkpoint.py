"""The last checkpoint (`checkpoints/last.ckpt`, beside the run's other checkpoints): saved when
training stops, resumable, never of diverged or untrained weights; and what a run keeps when an
exception ends its training."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch

from frugal.budget.decision import Diverged
from frugal.runs.write_faults import WriteFailed

log = logging.getLogger(__name__)


def save_last(trainer: L.Trainer) -> None:
    ckpt = trainer.checkpoint_callback
    dirpath = getattr(ckpt, "dirpath", None) or Path(trainer.default_root_dir) / "checkpoints"
    trainer.save_checkpoint(Path(dirpath) / "last.ckpt")


def finite(module: torch.nn.Module) -> bool:
    """Whether every weight of `module` is finite."""
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def finite_everywhere(trainer: L.Trainer, module: torch.nn.Module) -> bool:
    """Whether the weights are finite on every rank (a rank that skipped the update may
    differ): a collective, so only where every rank asks."""
    found = finite(module)
    if trainer.world_size > 1:
        found = trainer.strategy.reduce_boolean_decision(found, all=True)
    return found


def keep_after(
    trainer: L.Trainer,
    module: torch.nn.Module,
    exception: BaseException,
    trained: bool,
    settle: Callable[[], None],
    write_ledger: Callable[[], None],
) -> None:
    """After `exception` ended training: book what was spent (`settle`), keep a resumable
    checkpoint and write the ledger. Ranks may be anywhere when an error strikes: no collective
    (a gather, a checkpoint's barrier) unless the stop was agreed (divergence) or there is only
    one rank. A failure is logged: it never masks `exception`."""
    diverged = isinstance(exception, Diverged)
    agreed = diverged or trainer.world_size == 1
    try:
        if agreed and not diverged:
            settle()
        if agreed and finite_everywhere(trainer, module) and trained:
            save_last(trainer)
    except Exception as err:
        log.error("could not save a checkpoint after %s: %s", type(exception).__name__, err)
    try:
        write_ledger()
    except WriteFailed as err:
        log.error("could not write the ledger after %s: %s", type(exception).__name__, err)
