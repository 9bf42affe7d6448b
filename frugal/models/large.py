"""Deliberately large dense baselines, one per task: the upper end of the size axis.

`wide_mlp` (1,101,834 parameters on MNIST-1D), `wide_cnn` (408,074), `wide_cnn2d` for digits
(301,578). Same architectures as `mlp`/`cnn`/`cnn2d`, only wider.
"""

from __future__ import annotations

from torch import nn

from frugal.models.baselines import cnn, mlp
from frugal.models.cnn2d import cnn2d
from frugal.models.registry import register_model


@register_model
def wide_mlp(
    input_shape: tuple[int, ...], num_classes: int, hidden: int = 1024, depth: int = 2
) -> nn.Module:
    return mlp(input_shape, num_classes, hidden=hidden, depth=depth)


@register_model
def wide_cnn(
    input_shape: tuple[int, ...], num_classes: int, channels: int = 256, depth: int = 3
) -> nn.Module:
    return cnn(input_shape, num_classes, channels=channels, depth=depth)


@register_model
def wide_cnn2d(
    input_shape: tuple[int, ...], num_classes: int, channels: int = 128, depth: int = 3
) -> nn.Module:
    return cnn2d(input_shape, num_classes, channels=channels, depth=depth)
