"""Sparse training callbacks acting on `pl_module.backbone`.

- `GradualMagnitudePruning` (Zhu & Gupta 2017): from dense (or `initial_sparsity`) to
  `final_sparsity` on the cubic schedule s(t) = s_f + (s_i − s_f)(1 − (t − t_0)/(t_1 − t_0))³,
  pruning the smallest magnitudes every `update_every` optimizer steps.
- `DynamicSparseTraining` (`mode="rigl"`, Evci et al. 2020; `mode="set"`, Mocanu et al. 2018):
  constant density; every `update_every` steps each sparse layer drops the fraction
  α/2 · (1 + cos(π t / t_end)) of its active weights with the smallest magnitude and grows as
  many where the dense gradient is largest (RigL) or at random (SET); grown weights start at 0.

Masks are `WeightMask` parametrizations added in `setup` (before a checkpoint is restored), so
they are part of the module's state dict; the schedule's state is in the callback's
`state_dict`. Masked weights still run through dense kernels: sparsity reduces effective
parameters and FLOPs (see `frugal.models.accounting`), not wall time.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from frugal.models.layers import WeightMask, dense_weight, set_mask, weight_mask
from frugal.models.sparse import (
    DISTRIBUTIONS,
    SCOPES,
    init_random_masks,
    layer_masks,
    magnitude_prune,
    maskable_layers,
    sparsity_of,
)


def _check_fraction(name: str, value: float, low_open: bool = False) -> None:
    low_ok = value > 0.0 if low_open else value >= 0.0
    if not (low_ok and value <= 1.0):
        accepted = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{name} must be in {accepted}, got {value}")


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be a positive number of steps, got {value}")


def schedule_end(trainer: L.Trainer, end_step: int | None, end_fraction: float) -> int:
    """`end_step`, else `end_fraction` of the planned horizon (`max_steps`, which the budget
    planner sets and may re-plan; the estimate from epochs when `max_steps` is unset)."""
    if end_step is not None:
        return end_step
    horizon = trainer.max_steps if trainer.max_steps > 0 else trainer.estimated_stepping_batches
    return max(1, math.floor(end_fraction * horizon))


class GradualMagnitudePruning(Callback):
    def __init__(
        self,
        final_sparsity: float = 0.9,
        initial_sparsity: float = 0.0,
        start_step: int = 0,
        end_step: int | None = None,
        end_fraction: float = 1.0,
        update_every: int = 10,
        scope: str = "layer",
    ):
        _check_fraction("final_sparsity", final_sparsity)
        _check_fraction("initial_sparsity", initial_sparsity)
        _check_fraction("end_fraction", end_fraction, low_open=True)
        _check_positive("update_every", update_every)
        _check_positive("end_step", end_step)
        if initial_sparsity > final_sparsity:
            raise ValueError(
                f"initial_sparsity {initial_sparsity} > final_sparsity {final_sparsity}"
            )
        if start_step < 0 or (end_step is not None and end_step <= start_step):
            raise ValueError(f"need 0 <= start_step < end_step, got {start_step}, {end_step}")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        self.final_sparsity = final_sparsity
        self.initial_sparsity = initial_sparsity
        self.start_step = start_step
        self.end_step = end_step
        self.end_fraction = end_fraction
        self.update_every = update_every
        self.scope = scope
        self.sparsity = 0.0  # applied so far (a masked backbone starts at its own)
        self.last_update_step = -1

    def sparsity_at(self, step: int, end_step: int) -> float:
        """Zhu & Gupta's cubic schedule; `initial_sparsity` before start, final after end."""
        if step < self.start_step:
            return self.initial_sparsity
        progress = min(1.0, (step - self.start_step) / max(1, end_step - self.start_step))
        gap = self.initial_sparsity - self.final_sparsity
        return self.final_sparsity + gap * (1.0 - progress) ** 3

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.sparsity = sparsity_of(pl_module.backbone)  # a resumed run then loads its own
        for layer in maskable_layers(pl_module.backbone).values():
            if weight_mask(layer) is None:
                set_mask(layer, torch.ones_like(layer.weight))

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        step = trainer.global_step  # optimizer steps done
        end = schedule_end(trainer, self.end_step, self.end_fraction)
        due = step % self.update_every == 0 or step == end
        if step == self.last_update_step or step < self.start_step or not due:
            return
        # never below what is applied: a re-planned (longer) horizon must not revive weights
        target = max(self.sparsity, self.sparsity_at(step, end))
        if target > self.sparsity:
            magnitude_prune(pl_module.backbone, target, self.scope)
            self.sparsity = target
        self.last_update_step = step

    def state_dict(self) -> dict[str, Any]:
        return {"sparsity": self.sparsity, "last_update_step": self.last_update_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.sparsity = state_dict["sparsity"]
        self.last_update_step = state_dict["last_update_step"]


MODES = ("rigl", "set")


class DynamicSparseTraining(Callback):
    """RigL / SET. `density` and `distribution` make the masks when the backbone has none
    (a `sparse_*` model brings its own and keeps them)."""

    def __init__(
        self,
        mode: str = "rigl",
        density: float = 0.1,
        distribution: str = "erk",
        update_every: int = 100,
        drop_fraction: float = 0.3,
        end_step: int | None = None,
        end_fraction: float = 0.75,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        _check_fraction("density", density, low_open=True)
        _check_fraction("drop_fraction", drop_fraction)
        _check_fraction("end_fraction", end_fraction, low_open=True)
        _check_positive("update_every", update_every)
        _check_positive("end_step", end_step)
        self.mode = mode
        self.density = density
        self.distribution = distribution
        self.update_every = update_every
        self.drop_fraction = drop_fraction
        self.end_step = end_step
        self.end_fraction = end_fraction
        self.updates = 0
        self.last_update_step = -1

    def drop_fraction_at(self, step: int, end_step: int) -> float:
        """Cosine decay from `drop_fraction` at step 0 to 0 at `end_step`."""
        return self.drop_fraction / 2 * (1 + math.cos(math.pi * min(step, end_step) / end_step))

    def is_update_step(self, trainer: L.Trainer, step: int) -> bool:
        end = schedule_end(trainer, self.end_step, self.end_fraction)
        return 0 < step < end and step % self.update_every == 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not layer_masks(pl_module.backbone):
            init_random_masks(pl_module.backbone, self.density, self.distribution)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        # RigL needs the dense gradient of the batch before its update step
        track = self.mode == "rigl" and self.is_update_step(trainer, trainer.global_step + 1)
        for _, mask in layer_masks(pl_module.backbone):
            mask.track_grad = track

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        step = trainer.global_step
        if step == self.last_update_step or not self.is_update_step(trainer, step):
            return
        end = schedule_end(trainer, self.end_step, self.end_fraction)
        fraction = self.drop_fraction_at(step, end)
        for layer, mask in layer_masks(pl_module.backbone):
            self._update_layer(trainer, layer, mask, fraction)
        self.updates += 1
        self.last_update_step = step

    def _grow_scores(self, trainer: L.Trainer, mask: WeightMask) -> Tensor:
        if self.mode == "set":
            return torch.rand_like(mask.mask)
        if mask.dense_grad is None:
            raise RuntimeError("RigL update without a dense gradient: no backward pass ran")
        grad = trainer.strategy.reduce(mask.dense_grad, reduce_op="mean")  # same on all ranks
        mask.dense_grad = None
        return grad.abs()

    @torch.no_grad()
    def _update_layer(
        self, trainer: L.Trainer, layer: nn.Module, mask: WeightMask, fraction: float
    ) -> None:
        weight = dense_weight(layer)
        grow_scores = self._grow_scores(trainer, mask)
        active = mask.mask.bool()
        n_drop = math.floor(fraction * int(active.sum()))
        if n_drop == 0 or bool(active.all()):
            return  # dense layers (ERK may keep small ones dense) are left alone
        drop_scores = torch.where(active, weight.abs(), torch.inf).flatten()
        new_mask = active.flatten().clone()
        new_mask[torch.topk(drop_scores, n_drop, largest=False).indices] = False
        grow_scores = grow_scores.flatten().masked_fill(new_mask, -torch.inf)
        new_mask[torch.topk(grow_scores, n_drop).indices] = True
        new_mask = trainer.strategy.broadcast(new_mask.view_as(active), src=0)
        grown = new_mask & ~active  # new connections start at zero, with fresh optimizer state
        weight[grown] = 0.0
        for optimizer in trainer.optimizers:
            for value in optimizer.state.get(weight, {}).values():
                if isinstance(value, Tensor) and value.shape == weight.shape:
                    value[grown] = 0.0
        set_mask(layer, new_mask.to(weight.dtype))

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "last_update_step": self.last_update_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.updates = state_dict["updates"]
        self.last_update_step = state_dict["last_update_step"]
