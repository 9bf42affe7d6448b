"""Low-rank networks: the dense baselines with factorised hidden layers / convolutions.

`rank_ratio` sets each factorised layer's rank to `rank_ratio · min(out, in · k^d)`; the first
convolution (one input channel) and the classifier head stay dense.
"""

from __future__ import annotations

import math
from functools import partial

from torch import nn

from frugal.models.baselines import MLP, paper_cnn, scaled
from frugal.models.cnn2d import CNN2d
from frugal.models.layers import LowRankConv1d, LowRankConv2d, LowRankLinear
from frugal.models.registry import register_model


@register_model
def lowrank_mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: int = 100,
    depth: int = 2,
    width_mult: float = 1.0,
    rank_ratio: float = 0.25,
) -> nn.Module:
    return MLP(
        math.prod(input_shape),
        num_classes,
        hidden=scaled(hidden, width_mult),
        depth=depth,
        linear=partial(LowRankLinear.with_ratio, rank_ratio=rank_ratio),
    )


@register_model
def lowrank_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: int = 25,
    depth: int = 3,
    width_mult: float = 1.0,
    rank_ratio: float = 0.25,
) -> nn.Module:
    conv = partial(LowRankConv1d.with_ratio, rank_ratio=rank_ratio)
    return paper_cnn(input_shape, num_classes, channels, depth, width_mult, conv=conv)


@register_model
def lowrank_cnn2d(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: int = 16,
    depth: int = 3,
    width_mult: float = 1.0,
    rank_ratio: float = 0.25,
) -> nn.Module:
    return CNN2d(
        input_shape,
        num_classes,
        channels=scaled(channels, width_mult),
        depth=depth,
        conv=partial(LowRankConv2d.with_ratio, rank_ratio=rank_ratio),
    )
