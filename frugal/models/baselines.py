"""The MNIST-1D paper's baselines (Greydanus 2020): logistic regression, MLP, 3-layer 1D CNN, GRU.

Inputs are `(B, L)` sequences, `(B, C, L)`, or `(B, C, H, W)` images read as `(B, C, H·W)`.
With the paper's settings on MNIST-1D (L = 40, 10 classes): `logreg` 410 parameters, `mlp`
15,210, `cnn` 5,210, `gru` 5,134 (paper's accuracies: 32 %, 68 %, 94 %, 91 %).
`width_mult` scales hidden units / channels; `depth` counts hidden layers / conv layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor, nn

from frugal.models.registry import register_model

LinearFactory = Callable[[int, int], nn.Module]  # (in_features, out_features) -> layer
ConvFactory = Callable[..., nn.Module]  # (c_in, c_out, kernel, stride=, padding=) -> layer


def scaled(width: int, width_mult: float) -> int:
    """`width · width_mult`, rounded half up, at least 1."""
    return max(1, math.floor(width * width_mult + 0.5))


class MLP(nn.Module):
    """Flatten, `depth` hidden layers of ReLU units, linear head; `linear` builds hidden layers."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: int = 100,
        depth: int = 2,
        linear: LinearFactory = nn.Linear,
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = in_features
        for _ in range(depth):
            layers += [linear(width_in, hidden), nn.ReLU()]
            width_in = hidden
        layers.append(nn.Linear(width_in, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # (B, ...) -> (B, classes)
        return self.net(x)


def conv1d_out_len(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def paper_kernels(depth: int) -> tuple[int, ...]:
    """The paper's kernels (5, 3, 3), extended with 3s (or cut) to `depth` layers."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    return (5,) + (3,) * (depth - 1)


class CNN1d(nn.Module):
    """Strided Conv1d layers (stride 2, padding 1) and a linear head.

    The first layer is always a dense convolution (with one input channel, factorised or
    separable versions save nothing); `conv` builds the others.
    """

    def __init__(
        self,
        length: int,
        num_classes: int,
        in_channels: int = 1,
        channels: int = 25,
        kernels: tuple[int, ...] = (5, 3, 3),
        conv: ConvFactory = nn.Conv1d,
    ):
        super().__init__()
        convs: list[nn.Module] = []
        c_in, out_len = in_channels, length
        for i, k in enumerate(kernels):
            if conv1d_out_len(out_len, k, 2, 1) < 1:
                raise ValueError(f"kernels {kernels} are too deep for length {length}")
            layer = nn.Conv1d if i == 0 else conv
            convs += [layer(c_in, channels, k, stride=2, padding=1), nn.ReLU()]
            c_in, out_len = channels, conv1d_out_len(out_len, k, 2, 1)
        self.in_channels = in_channels
        self.features = nn.Sequential(*convs)
        self.head = nn.Linear(channels * out_len, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, L) | (B, C, L) | (B, C, H, W) -> (B, classes)
        x = x.reshape(x.shape[0], self.in_channels, -1)  # (B, C, L)
        return self.head(self.features(x).flatten(1))


def length_and_channels(input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(L,) -> (L, 1); (C, L) -> (L, C); (C, H, W) -> (H·W, C): images are read row by row."""
    if len(input_shape) == 1:
        return input_shape[0], 1
    if len(input_shape) in (2, 3):
        return math.prod(input_shape[1:]), input_shape[0]
    raise ValueError(f"a 1D model needs (L,), (C, L) or (C, H, W) inputs, got {input_shape}")


class GRUClassifier(nn.Module):
    """The paper's GRU: a (bidirectional) GRU over time, every step's state to a linear head."""

    def __init__(
        self,
        length: int,
        num_classes: int,
        in_channels: int = 1,
        hidden: int = 6,
        bidirectional: bool = True,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.gru = nn.GRU(in_channels, hidden, batch_first=True, bidirectional=bidirectional)
        directions = 2 if bidirectional else 1
        self.head = nn.Linear(directions * hidden * length, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], self.in_channels, -1).transpose(1, 2)  # (B, L, C)
        states, _ = self.gru(x)  # (B, L, directions · hidden)
        return self.head(states.flatten(1))


@register_model
def logreg(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


@register_model
def mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: int = 100,
    depth: int = 2,
    width_mult: float = 1.0,
) -> nn.Module:
    return MLP(math.prod(input_shape), num_classes, hidden=scaled(hidden, width_mult), depth=depth)


@register_model
def mlp_tiny(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return mlp(input_shape, num_classes, hidden=8, depth=1)


@register_model
def cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: int = 25,
    depth: int = 3,
    width_mult: float = 1.0,
) -> nn.Module:
    return paper_cnn(input_shape, num_classes, channels, depth, width_mult)


def paper_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: int,
    depth: int,
    width_mult: float,
    conv: ConvFactory = nn.Conv1d,
) -> CNN1d:
    """The paper's CNN shape (strided, kernels 5/3/3…) with any convolution layer."""
    length, in_channels = length_and_channels(input_shape)
    return CNN1d(
        length,
        num_classes,
        in_channels=in_channels,
        channels=scaled(channels, width_mult),
        kernels=paper_kernels(depth),
        conv=conv,
    )


@register_model
def cnn_tiny(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return cnn(input_shape, num_classes, channels=4, depth=2)


@register_model
def gru(
    input_shape: tuple[int, ...], num_classes: int, hidden: int = 6, bidirectional: bool = True
) -> nn.Module:
    length, in_channels = length_and_channels(input_shape)
    return GRUClassifier(length, num_classes, in_channels, hidden, bidirectional)
