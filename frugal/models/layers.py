"""Building blocks for compact networks: low-rank, depthwise-separable and masked layers.

Each layer stores exactly the tensors it executes, so `sum(p.numel())` is its real size:
- `LowRankLinear`: W (out, in) ≈ U (out, r) · V (r, in); r·(in + out) + out parameters.
- `LowRankConv1d/2d`: a rank-r convolution (in → r channels, full kernel) followed by a 1×1
  projection (r → out). This is the truncated SVD of the kernel unfolded as (out, in·k^d), so a
  trained convolution converts exactly at full rank; r·in·k^d + r·out + out parameters.
- `DepthwiseSeparableConv1d/2d`: per-channel k^d filter then 1×1 mixing (MobileNet);
  in·k^d + in·out + out parameters.
- `WeightMask`: a `torch.nn.utils.parametrize` parametrization `weight = original * mask` that
  turns any Linear/Conv into a masked-sparse one. The mask is a buffer (saved in the state dict);
  the layer still runs the dense kernel, so masks save parameters, not time.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

DenseLayer = nn.Linear | nn.Conv1d | nn.Conv2d


def rank_for_ratio(rows: int, cols: int, rank_ratio: float) -> int:
    """Rank `rank_ratio · min(rows, cols)`, rounded half up, at least 1."""
    if not 0.0 < rank_ratio <= 1.0:
        raise ValueError(f"rank_ratio must be in (0, 1], got {rank_ratio}")
    return max(1, math.floor(rank_ratio * min(rows, cols) + 0.5))


def rank_for_energy(singular_values: Tensor, energy: float) -> int:
    """Smallest rank whose singular values keep `energy` of the squared spectrum (Frobenius)."""
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1], got {energy}")
    power = singular_values.double().square()
    kept = torch.cumsum(power, 0) / power.sum()
    # a small tolerance so energy=1.0 does not ask for more rank than float rounding allows
    return min(int(torch.searchsorted(kept, energy - 1e-12).item()) + 1, len(singular_values))


def svd_factors(matrix: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """`matrix` (m, n) ≈ left (m, r) @ right (r, n), splitting √σ to both sides."""
    u, s, vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    root_s = s[:rank].sqrt()
    left = u[:, :rank] * root_s
    right = root_s[:, None] * vh[:rank]
    return left.to(matrix.dtype), right.to(matrix.dtype)


def unfolded_weight(layer: DenseLayer) -> Tensor:
    """The layer's weight as a matrix (out, in · k^d), the map whose rank SVD truncates."""
    return layer.weight.detach().flatten(1)


class LowRankLinear(nn.Module):
    """y = U (V x) + b with U (out, r), V (r, in)."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        if not 1 <= rank <= min(in_features, out_features):
            raise ValueError(f"rank must be in [1, {min(in_features, out_features)}], got {rank}")
        self.rank = rank
        self.v = nn.Linear(in_features, rank, bias=False)
        self.u = nn.Linear(rank, out_features, bias=bias)

    @classmethod
    def with_ratio(cls, in_features: int, out_features: int, rank_ratio: float) -> LowRankLinear:
        return cls(in_features, out_features, rank_for_ratio(out_features, in_features, rank_ratio))

    @classmethod
    def from_dense(cls, layer: nn.Linear, rank: int) -> LowRankLinear:
        low = cls(layer.in_features, layer.out_features, rank, bias=layer.bias is not None)
        left, right = svd_factors(unfolded_weight(layer), rank)
        with torch.no_grad():
            low.u.weight.copy_(left)
            low.v.weight.copy_(right)
            if layer.bias is not None:
                low.u.bias.copy_(layer.bias)
        return low

    def forward(self, x: Tensor) -> Tensor:  # (B, in) -> (B, out)
        return self.u(self.v(x))


class _LowRankConv(nn.Module):
    conv_cls: type[nn.Conv1d] | type[nn.Conv2d]
    dims: int  # spatial dimensions

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        rank: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ):
        super().__init__()
        max_rank = min(out_channels, in_channels * kernel_size**self.dims)
        if not 1 <= rank <= max_rank:
            raise ValueError(f"rank must be in [1, {max_rank}], got {rank}")
        self.rank = rank
        self.reduce = self.conv_cls(
            in_channels, rank, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.project = self.conv_cls(rank, out_channels, 1, bias=bias)

    @classmethod
    def with_ratio(
        cls,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        rank_ratio: float,
        stride: int = 1,
        padding: int = 0,
    ) -> _LowRankConv:
        rank = rank_for_ratio(out_channels, in_channels * kernel_size**cls.dims, rank_ratio)
        return cls(in_channels, out_channels, kernel_size, rank, stride=stride, padding=padding)

    @classmethod
    def from_dense(cls, layer: nn.Conv1d | nn.Conv2d, rank: int) -> _LowRankConv:
        if layer.groups != 1 or any(d != 1 for d in layer.dilation):
            raise ValueError("only ungrouped, undilated convolutions can be factorised")
        if isinstance(layer.padding, str) or len(set(layer.padding)) != 1:
            raise ValueError(f"only symmetric integer padding is supported, got {layer.padding}")
        if len(set(layer.kernel_size)) != 1 or len(set(layer.stride)) != 1:
            raise ValueError("only square kernels and strides are supported")
        low = cls(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size[0],
            rank,
            stride=layer.stride[0],
            padding=layer.padding[0],
            bias=layer.bias is not None,
        )
        left, right = svd_factors(unfolded_weight(layer), rank)  # (out, r), (r, in·k^d)
        with torch.no_grad():
            low.reduce.weight.copy_(right.reshape(low.reduce.weight.shape))
            low.project.weight.copy_(left.reshape(low.project.weight.shape))
            if layer.bias is not None:
                low.project.bias.copy_(layer.bias)
        return low

    def forward(self, x: Tensor) -> Tensor:  # (B, in, *spatial) -> (B, out, *spatial')
        return self.project(self.reduce(x))


class LowRankConv1d(_LowRankConv):
    conv_cls = nn.Conv1d
    dims = 1


class LowRankConv2d(_LowRankConv):
    conv_cls = nn.Conv2d
    dims = 2


class _DepthwiseSeparableConv(nn.Module):
    conv_cls: type[nn.Conv1d] | type[nn.Conv2d]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ):
        super().__init__()
        # no bias before the pointwise layer: it would fold into the pointwise bias
        self.depthwise = self.conv_cls(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            groups=in_channels,
            bias=False,
        )
        self.pointwise = self.conv_cls(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, in, *spatial) -> (B, out, *spatial')
        return self.pointwise(self.depthwise(x))


class DepthwiseSeparableConv1d(_DepthwiseSeparableConv):
    conv_cls = nn.Conv1d


class DepthwiseSeparableConv2d(_DepthwiseSeparableConv):
    conv_cls = nn.Conv2d


class WeightMask(nn.Module):
    """Parametrization `weight = original * mask`; `mask` is a {0, 1} buffer of the weight's shape.

    With `track_grad` set, the gradient of the loss with respect to the masked weight is stored in
    `dense_grad` (dense: defined at pruned positions too), which RigL uses to grow connections;
    the gradient reaching `original` is zero at pruned positions.
    """

    def __init__(self, mask: Tensor):
        super().__init__()
        self.register_buffer("mask", mask.detach().clone())
        self.track_grad = False
        self.dense_grad: Tensor | None = None

    def forward(self, weight: Tensor) -> Tensor:
        masked = weight * self.mask
        if self.track_grad and masked.requires_grad:
            masked.register_hook(self._store_grad)
        return masked

    def _store_grad(self, grad: Tensor) -> None:
        self.dense_grad = (
            grad.detach().clone() if self.dense_grad is None else self.dense_grad + grad
        )


def weight_mask(layer: nn.Module) -> WeightMask | None:
    """The layer's `WeightMask` on `weight`, if it has one."""
    if not parametrize.is_parametrized(layer, "weight"):
        return None
    masks = [p for p in layer.parametrizations.weight if isinstance(p, WeightMask)]
    return masks[0] if masks else None


def dense_weight(layer: nn.Module) -> Tensor:
    """The stored weight before masking (the parameter the optimiser updates)."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


def set_mask(layer: DenseLayer, mask: Tensor) -> WeightMask:
    """Mask `layer.weight` with `mask` (adds the parametrization on first use, else updates it)."""
    if mask.shape != layer.weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != weight {tuple(layer.weight.shape)}")
    existing = weight_mask(layer)
    mask = mask.to(device=layer.weight.device, dtype=layer.weight.dtype)
    if existing is None:
        parametrize.register_parametrization(layer, "weight", WeightMask(mask))
        return weight_mask(layer)  # type: ignore[return-value]
    existing.mask.copy_(mask)
    return existing
