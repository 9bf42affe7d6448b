"""Compact CNNs: the paper's CNN and the digits CNN with depthwise-separable convolutions after
the first layer (25 channels on MNIST-1D: 2,860 parameters against the dense CNN's 5,210)."""

from __future__ import annotations

from torch import nn

from frugal.models.baselines import paper_cnn, scaled
from frugal.models.cnn2d import CNN2d
from frugal.models.layers import DepthwiseSeparableConv1d, DepthwiseSeparableConv2d
from frugal.models.registry import register_model


@register_model
def dsconv_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: int = 25,
    depth: int = 3,
    width_mult: float = 1.0,
) -> nn.Module:
    return paper_cnn(
        input_shape, num_classes, channels, depth, width_mult, conv=DepthwiseSeparableConv1d
    )


@register_model
def dsconv_cnn2d(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: int = 16,
    depth: int = 3,
    width_mult: float = 1.0,
) -> nn.Module:
    return CNN2d(
        input_shape,
        num_classes,
        channels=scaled(channels, width_mult),
        depth=depth,
        conv=DepthwiseSeparableConv2d,
    )
