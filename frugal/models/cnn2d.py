"""A small 2D CNN for 8×8 images (scikit-learn digits): 3×3 convolutions, padding 1, strides
(1, 2, 2, ...) so 8×8 becomes 8×8, 4×4, 2×2, and a linear head; the 2D analogue of the paper's
1D CNN (16 channels: 5,450 parameters on digits)."""

from __future__ import annotations

from torch import Tensor, nn

from frugal.models.baselines import ConvFactory, scaled
from frugal.models.registry import register_model


def conv2d_out_size(size: int, stride: int) -> int:  # kernel 3, padding 1
    return (size - 1) // stride + 1


class CNN2d(nn.Module):
    """3×3 Conv2d layers, stride 1 then 2; the first is dense, `conv` builds the others."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        channels: int = 16,
        depth: int = 3,
        conv: ConvFactory = nn.Conv2d,
    ):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"a 2D CNN needs (C, H, W) inputs, got {input_shape}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        c_in, height, width = input_shape
        layers: list[nn.Module] = []
        for i in range(depth):
            stride = 1 if i == 0 else 2
            layer = nn.Conv2d if i == 0 else conv
            layers += [layer(c_in, channels, 3, stride=stride, padding=1), nn.ReLU()]
            c_in = channels
            height, width = conv2d_out_size(height, stride), conv2d_out_size(width, stride)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * height * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, classes)
        return self.head(self.features(x).flatten(1))


@register_model
def cnn2d(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: int = 16,
    depth: int = 3,
    width_mult: float = 1.0,
) -> nn.Module:
    return CNN2d(input_shape, num_classes, channels=scaled(channels, width_mult), depth=depth)


@register_model
def cnn2d_tiny(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return cnn2d(input_shape, num_classes, channels=4, depth=2)
