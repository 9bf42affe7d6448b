"""Compress a trained network before fine-tuning: `compress_model(model, method, **kwargs)`.

- `svd`: every Linear / Conv1d / Conv2d becomes its truncated SVD (`LowRankLinear`,
  `LowRankConv1d/2d`), at rank `rank_ratio · min(out, in·k^d)` or, if `energy` is set, the
  smallest rank keeping that fraction of the squared singular values. Every such layer is
  replaced, so ratios near 1 store *more* parameters than the dense layer.
- `prune`: magnitude pruning to `sparsity` zeros (`scope`: `global` threshold or per `layer`);
  the masks are `WeightMask` parametrizations, kept through fine-tuning.
- `structured`: whole channels and neurons removed (`frugal.models.structured`): every layer but
  the classifier keeps `channel_ratio` of its channels, a smaller dense model. It traces the
  model, so it needs `input_shape` (one sample's shape); the other methods ignore it.

Returns a compressed copy; the input model is left as it was.

`compression_record(...)` is what a `compress=… ckpt_path=…` run writes under `compression` in
its `result.json`: the method, the run the checkpoint came from and what that run spent, and the
validation accuracy right after compressing, before any fine-tuning.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from frugal.core.record import RESULT_FILE
from frugal.models.layers import (
    LowRankConv1d,
    LowRankConv2d,
    LowRankLinear,
    rank_for_energy,
    rank_for_ratio,
    unfolded_weight,
)
from frugal.models.sparse import magnitude_prune
from frugal.models.structured import structured_prune

METHODS = ("svd", "prune", "structured")
LOW_RANK = {nn.Linear: LowRankLinear, nn.Conv1d: LowRankConv1d, nn.Conv2d: LowRankConv2d}
Factorisable = nn.Linear | nn.Conv1d | nn.Conv2d


def low_rank_class(
    layer: nn.Module,
) -> type[LowRankLinear] | type[LowRankConv1d] | type[LowRankConv2d] | None:
    """The low-rank replacement of `layer` (masked layers included), None if it has none."""
    if getattr(layer, "groups", 1) != 1:  # depthwise convolutions are already cheap
        return None
    return next((low for dense, low in LOW_RANK.items() if isinstance(layer, dense)), None)


def compress_model(
    model: nn.Module, method: str, input_shape: tuple[int, ...] | None = None, **kwargs: Any
) -> nn.Module:
    if method == "svd":
        return svd_compress(copy.deepcopy(model), **kwargs)
    if method == "prune":
        return magnitude_prune(copy.deepcopy(model), **kwargs)
    if method == "structured":
        return structured_prune(copy.deepcopy(model), input_shape=input_shape, **kwargs)
    raise ValueError(f"compression method must be one of {METHODS}, got {method!r}")


def svd_rank(layer: Factorisable, rank_ratio: float, energy: float | None) -> int:
    matrix = unfolded_weight(layer)  # (out, in · k^d)
    if energy is None:
        return rank_for_ratio(*matrix.shape, rank_ratio)
    return rank_for_energy(torch.linalg.svdvals(matrix.double()), energy)


def svd_compress(
    model: nn.Module, rank_ratio: float = 0.5, energy: float | None = None
) -> nn.Module:
    """Replace every ungrouped Linear/Conv by its low-rank factors, in place (factors of layers
    that are already low-rank are left alone). A masked layer is factorised with its mask
    applied, and the result is dense."""
    targets = [
        (parent, child_name, child, low_cls)
        for parent in model.modules()
        if not isinstance(parent, LowRankLinear | LowRankConv1d | LowRankConv2d)
        for child_name, child in parent.named_children()
        if (low_cls := low_rank_class(child)) is not None
    ]
    for parent, child_name, child, low_cls in targets:
        low = low_cls.from_dense(child, svd_rank(child, rank_ratio, energy))
        setattr(parent, child_name, low.to(child.weight.device))
    return model


def accuracy(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> float | None:
    """Top-1 accuracy over (x, y) batches, in eval mode without gradients; None if empty."""
    was_training = model.training
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in batches:
            correct += int((model(x).argmax(dim=1) == y).sum())
            total += len(y)
    model.train(was_training)
    return correct / total if total else None


def source_run_dir(ckpt_path: str | Path) -> Path:
    """The run a checkpoint belongs to: `<run>/checkpoints/last.ckpt` → `<run>`."""
    path = Path(ckpt_path).resolve()
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def source_spent(ckpt_path: str | Path) -> dict[str, float | None] | None:
    """What the source run spent in all (not only up to this checkpoint: a best checkpoint
    cost the whole run that found it): its `result.json`, else its ledger (`ledger.json`,
    else the one the checkpoint carries). None when none of them can be read."""
    run_dir = source_run_dir(ckpt_path)
    for name in (RESULT_FILE, "ledger.json"):
        try:
            spent = json.loads((run_dir / name).read_text()).get("spent")
        except (OSError, ValueError, AttributeError, RecursionError):
            continue
        if isinstance(spent, dict):
            return spent
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception:  # an unreadable checkpoint has failed loading earlier, loudly
        return None
    for state in checkpoint.get("callbacks", {}).values():
        ledger = state.get("ledger") if isinstance(state, dict) else None
        if isinstance(ledger, dict) and isinstance(ledger.get("spent"), dict):
            return ledger["spent"]
    return None


def compression_record(
    options: dict[str, Any],
    ckpt_path: str | Path,
    compressed: nn.Module,
    val_batches: Iterable[tuple[Tensor, Tensor]],
) -> dict[str, Any]:
    """`result.json`'s `compression`; measures validation accuracy (not charged to the budget:
    it runs before training starts)."""
    return {
        "method": options.get("method"),
        "options": {key: value for key, value in options.items() if key != "method"},
        "source_ckpt": str(Path(ckpt_path).resolve()),
        "source_run": str(source_run_dir(ckpt_path)),
        "source_spent": source_spent(ckpt_path),
        "acc_after_compression": accuracy(compressed, val_batches),
    }
