"""Masked sparsity: which layers carry masks, how density is spread over them, magnitude pruning,
and the sparse networks built on it (`sparse_mlp`, `sparse_cnn`, `sparse_cnn2d`).

Every Linear/Conv weight in a model is maskable (`WeightMask` parametrization, see `layers.py`).
Non-zero counts are integers allotted so that the model's total is exactly
`round(density · maskable weights)`, whatever the per-layer distribution:
- `uniform`: every layer at `density`;
- `erk`: Erdős–Rényi-kernel (Evci et al. 2020): layer density ∝ (out + in + Σk) / (out · in · Πk),
  scaled to the target; layers that would exceed 1 are kept dense and the rest rescaled.

Sparse networks start from random masks (static sparse training); `frugal.callbacks.sparsity`
moves them during training (RigL / SET) or grows sparsity from dense (gradual pruning).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from frugal.models.baselines import MLP, paper_cnn, scaled
from frugal.models.cnn2d import CNN2d
from frugal.models.layers import DenseLayer, WeightMask, dense_weight, set_mask, weight_mask
from frugal.models.registry import register_model

DISTRIBUTIONS = ("uniform", "erk")
SCOPES = ("global", "layer")


def maskable_layers(model: nn.Module) -> dict[str, DenseLayer]:
    """Every Linear / Conv1d / Conv2d by qualified name (layers inside low-rank or separable
    blocks included; recurrent weights are not)."""
    return {
        name: module for name, module in model.named_modules() if isinstance(module, DenseLayer)
    }


def masked_layers(model: nn.Module) -> dict[str, DenseLayer]:
    return {name: layer for name, layer in maskable_layers(model).items() if weight_mask(layer)}


def layer_masks(model: nn.Module) -> list[tuple[DenseLayer, WeightMask]]:
    """(layer, its mask) for every masked layer."""
    return [
        (layer, mask)
        for layer in maskable_layers(model).values()
        if (mask := weight_mask(layer)) is not None
    ]


def sparsity_of(model: nn.Module) -> float:
    """Fraction of the maskable weights that masks set to zero (0.0 without masks)."""
    total = sum(layer.weight.numel() for layer in maskable_layers(model).values())
    zeros = sum(int((mask.mask == 0).sum()) for _, mask in layer_masks(model))
    return zeros / total if total else 0.0


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def erk_densities(shapes: list[torch.Size], density: float) -> list[float]:
    """Per-layer densities of the Erdős–Rényi-kernel distribution with overall `density`."""
    _check_fraction("density", density)
    numels = [math.prod(shape) for shape in shapes]
    raw = [sum(shape) / n for shape, n in zip(shapes, numels, strict=True)]
    dense: set[int] = set()
    while True:
        sparse = [i for i in range(len(shapes)) if i not in dense]
        budget = density * sum(numels) - sum(numels[i] for i in dense)
        scale = budget / sum(raw[i] * numels[i] for i in sparse) if sparse else 0.0
        saturated = {i for i in sparse if scale * raw[i] > 1.0}
        if not saturated:
            return [1.0 if i in dense else scale * raw[i] for i in range(len(shapes))]
        dense |= saturated


def allot_nonzeros(numels: list[int], densities: list[float], total: int) -> list[int]:
    """Integer non-zeros per layer near `density · numel`, summing exactly to `total`
    (largest remainders first, never above a layer's size)."""
    targets = [d * n for d, n in zip(densities, numels, strict=True)]
    counts = [min(math.floor(t), n) for t, n in zip(targets, numels, strict=True)]
    order = sorted(range(len(numels)), key=lambda i: counts[i] - targets[i])  # largest remainder
    left = total - sum(counts)
    while left > 0:
        room = [i for i in order if counts[i] < numels[i]]
        if not room:
            raise ValueError(f"cannot place {total} non-zeros in {sum(numels)} weights")
        for i in room[:left]:
            counts[i] += 1
        left = total - sum(counts)
    return counts


def layer_nonzeros(layers: list[DenseLayer], density: float, distribution: str) -> list[int]:
    """Non-zeros per layer for an overall `density` spread by `distribution`."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    _check_fraction("density", density)
    shapes = [layer.weight.shape for layer in layers]
    numels = [math.prod(shape) for shape in shapes]
    densities = erk_densities(shapes, density) if distribution == "erk" else [density] * len(layers)
    return allot_nonzeros(numels, densities, math.floor(density * sum(numels) + 0.5))


def init_random_masks(model: nn.Module, density: float, distribution: str = "erk") -> nn.Module:
    """Mask every maskable layer at random, `density` overall; returns `model` (modified)."""
    layers = list(maskable_layers(model).values())
    for layer, keep in zip(layers, layer_nonzeros(layers, density, distribution), strict=True):
        flat = torch.zeros(layer.weight.numel(), device=layer.weight.device)
        flat[torch.randperm(flat.numel(), device=flat.device)[:keep]] = 1.0
        set_mask(layer, flat.view_as(layer.weight))
    return model


def top_k_mask(scores: Tensor, keep: int) -> Tensor:
    """{0, 1} tensor of `scores`' shape with ones at the `keep` largest scores."""
    flat = torch.zeros(scores.numel(), device=scores.device)
    flat[torch.topk(scores.flatten(), keep, sorted=False).indices] = 1.0
    return flat.view_as(scores)


def magnitude_prune(model: nn.Module, sparsity: float, scope: str = "global") -> nn.Module:
    """Mask the smallest-magnitude weights of every maskable layer, `sparsity` zeros overall
    (`global`: one threshold over all layers; `layer`: each layer at `sparsity`).

    Weights already masked rank below all others; if the target keeps more than are active,
    the revived ones restart at zero, so the function the model computes does not jump.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    _check_fraction("sparsity", sparsity)
    layers = list(maskable_layers(model).values())
    scores = []
    for layer in layers:
        score = layer.weight.detach().abs()  # masked: already multiplied by the mask
        mask = weight_mask(layer)
        scores.append(score if mask is None else score.masked_fill(mask.mask == 0, -1.0))
    density = 1.0 - sparsity
    if scope == "layer":
        keeps = layer_nonzeros(layers, density, "uniform")
        new_masks = [top_k_mask(s, k) for s, k in zip(scores, keeps, strict=True)]
    else:
        flat = torch.cat([s.flatten() for s in scores])
        keep = top_k_mask(flat, math.floor(density * flat.numel() + 0.5))
        sizes = [s.numel() for s in scores]
        new_masks = [m.view_as(s) for m, s in zip(keep.split(sizes), scores, strict=True)]
    with torch.no_grad():
        for layer, score, mask in zip(layers, scores, new_masks, strict=True):
            dense_weight(layer)[(score < 0) & (mask > 0)] = 0.0
            set_mask(layer, mask)
    return model


@register_model
def sparse_mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: int = 100,
    depth: int = 2,
    width_mult: float = 1.0,
    density: float = 0.2,
    distribution: str = "erk",
) -> nn.Module:
    dense = MLP(math.prod(input_shape), num_classes, hidden=scaled(hidden, width_mult), depth=depth)
    return init_random_masks(dense, density, distribution)


@register_model
def sparse_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: int = 25,
    depth: int = 3,
    width_mult: float = 1.0,
    density: float = 0.2,
    distribution: str = "erk",
) -> nn.Module:
    dense = paper_cnn(input_shape, num_classes, channels, depth, width_mult)
    return init_random_masks(dense, density, distribution)


@register_model
def sparse_cnn2d(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: int = 16,
    depth: int = 3,
    width_mult: float = 1.0,
    density: float = 0.2,
    distribution: str = "erk",
) -> nn.Module:
    dense = CNN2d(input_shape, num_classes, channels=scaled(channels, width_mult), depth=depth)
    return init_random_masks(dense, density, distribution)
