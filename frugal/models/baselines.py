"""The MNIST-1D paper's baselines (Greydanus 2020): an MLP and a 3-layer 1D CNN.

Inputs are `(B, L)` sequences (or `(B, C, L)`); the CNN with the paper's settings has 5,210
parameters on MNIST-1D (L = 40, 10 classes).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from frugal.models.registry import register_model


class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: int = 100, depth: int = 2):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = in_features
        for _ in range(depth):
            layers += [nn.Linear(width_in, hidden), nn.ReLU()]
            width_in = hidden
        layers.append(nn.Linear(width_in, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # (B, ...) -> (B, classes)
        return self.net(x)


def conv1d_out_len(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


class CNN1d(nn.Module):
    """Three strided Conv1d layers (kernels 5/3/3, stride 2, padding 1) and a linear head."""

    def __init__(
        self,
        length: int,
        num_classes: int,
        in_channels: int = 1,
        channels: int = 25,
        kernels: tuple[int, ...] = (5, 3, 3),
    ):
        super().__init__()
        convs: list[nn.Module] = []
        c_in, out_len = in_channels, length
        for k in kernels:
            convs += [nn.Conv1d(c_in, channels, k, stride=2, padding=1), nn.ReLU()]
            c_in, out_len = channels, conv1d_out_len(out_len, k, 2, 1)
        self.in_channels = in_channels
        self.features = nn.Sequential(*convs)
        self.head = nn.Linear(channels * out_len, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:  # (B, L) -> (B, 1, L)
            x = x.unsqueeze(1)
        return self.head(self.features(x).flatten(1))


def _length_and_channels(input_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(input_shape) == 1:
        return input_shape[0], 1
    if len(input_shape) == 2:
        return input_shape[1], input_shape[0]
    raise ValueError(f"a 1D CNN needs (L,) or (C, L) inputs, got {input_shape}")


@register_model
def mlp(
    input_shape: tuple[int, ...], num_classes: int, hidden: int = 100, depth: int = 2
) -> nn.Module:
    return MLP(math.prod(input_shape), num_classes, hidden=hidden, depth=depth)


@register_model
def cnn(input_shape: tuple[int, ...], num_classes: int, channels: int = 25) -> nn.Module:
    length, in_channels = _length_and_channels(input_shape)
    return CNN1d(length, num_classes, in_channels=in_channels, channels=channels)
