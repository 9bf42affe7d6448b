"""Low-rank, depthwise-separable and masked layers, checked numerically."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from frugal.models.accounting import count_params, count_params_effective, flop_per_sample
from frugal.models.layers import (
    DepthwiseSeparableConv1d,
    DepthwiseSeparableConv2d,
    LowRankConv1d,
    LowRankConv2d,
    LowRankLinear,
    dense_weight,
    rank_for_energy,
    rank_for_ratio,
    set_mask,
    weight_mask,
)
from frugal.models.sparse import (
    allot_nonzeros,
    erk_densities,
    init_random_masks,
    layer_nonzeros,
    magnitude_prune,
    sparsity_of,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_low_rank_linear_from_svd_is_exact_at_full_rank_and_optimal_below():
    dense = nn.Linear(12, 7)
    x = torch.randn(5, 12)
    full = LowRankLinear.from_dense(dense, rank=7)
    torch.testing.assert_close(full(x), dense(x), rtol=1e-5, atol=1e-5)
    assert count_params(full) == 7 * (12 + 7) + 7

    # Eckart–Young: the rank-3 error is the norm of the dropped singular values
    low = LowRankLinear.from_dense(dense, rank=3)
    sigma = torch.linalg.svdvals(dense.weight.detach())
    error = torch.linalg.matrix_norm(dense.weight - low.u.weight @ low.v.weight)
    torch.testing.assert_close(error, sigma[3:].norm(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("dense", "low_cls", "x_shape"),
    [
        (nn.Conv1d(3, 8, 5, stride=2, padding=1), LowRankConv1d, (2, 3, 17)),
        (nn.Conv2d(3, 8, 3, stride=2, padding=1), LowRankConv2d, (2, 3, 9, 9)),
    ],
)
def test_low_rank_conv_from_svd_is_exact_at_full_rank(dense, low_cls, x_shape):
    x = torch.randn(x_shape)
    full_rank = min(8, dense.weight[0].numel())
    low = low_cls.from_dense(dense, full_rank)
    torch.testing.assert_close(low(x), dense(x), rtol=1e-4, atol=1e-5)
    k_d = dense.weight[0, 0].numel()
    assert count_params(low) == full_rank * 3 * k_d + full_rank * 8 + 8
    truncated = low_cls.from_dense(dense, 2)
    assert truncated(x).shape == dense(x).shape
    assert count_params(truncated) == 2 * 3 * k_d + 2 * 8 + 8


def test_low_rank_rejects_impossible_ranks():
    with pytest.raises(ValueError, match="rank must be in"):
        LowRankLinear(4, 6, rank=5)
    with pytest.raises(ValueError, match="rank_ratio"):
        rank_for_ratio(4, 6, 0.0)


def test_rank_by_ratio_and_by_energy():
    assert rank_for_ratio(100, 40, 0.25) == 10
    assert rank_for_ratio(25, 75, 0.25) == 6  # 6.25 rounds to 6
    assert rank_for_ratio(10, 3, 0.1) == 1  # never 0
    sigma = torch.tensor([3.0, 2.0, 1.0, 0.0])  # σ² = 9, 4, 1, 0 of 14
    assert rank_for_energy(sigma, 9 / 14) == 1
    assert rank_for_energy(sigma, 0.9) == 2
    assert rank_for_energy(sigma, 1.0) == 3


@pytest.mark.parametrize(
    ("ds_cls", "conv_cls", "x_shape"),
    [
        (DepthwiseSeparableConv1d, nn.Conv1d, (2, 4, 15)),
        (DepthwiseSeparableConv2d, nn.Conv2d, (2, 4, 7, 7)),
    ],
)
def test_depthwise_separable_equals_its_dense_convolution(ds_cls, conv_cls, x_shape):
    ds = ds_cls(4, 6, 3, stride=2, padding=1)
    k_d = 3 ** (len(x_shape) - 2)
    assert count_params(ds) == 4 * k_d + 4 * 6 + 6
    # the dense kernel it represents: W[o, i] = pointwise[o, i] · depthwise[i]
    dense = conv_cls(4, 6, 3, stride=2, padding=1)
    with torch.no_grad():
        pointwise = ds.pointwise.weight.flatten(1)  # (out, in)
        depthwise = ds.depthwise.weight[:, 0]  # (in, *k)
        dense.weight.copy_(torch.einsum("oi,i...->oi...", pointwise, depthwise))
        dense.bias.copy_(ds.pointwise.bias)
    x = torch.randn(x_shape)
    torch.testing.assert_close(ds(x), dense(x), rtol=1e-4, atol=1e-5)


def test_masked_layer_computes_with_zeros_and_keeps_dense_gradient():
    layer = nn.Linear(6, 4)
    zeroed = nn.Linear(6, 4)
    mask = (torch.rand(4, 6) > 0.5).float()
    with torch.no_grad():
        zeroed.weight.copy_(layer.weight * mask)
        zeroed.bias.copy_(layer.bias)
    original = layer.weight
    parametrization = set_mask(layer, mask)
    assert dense_weight(layer) is original  # the optimizer's parameter survives masking
    x = torch.randn(3, 6)
    torch.testing.assert_close(layer(x), zeroed(x))

    parametrization.track_grad = True
    layer(x).square().sum().backward()
    zeroed(x).square().sum().backward()
    torch.testing.assert_close(parametrization.dense_grad, zeroed.weight.grad)
    torch.testing.assert_close(original.grad, zeroed.weight.grad * mask)  # 0 where masked
    assert count_params(layer) == 6 * 4 + 4
    assert count_params_effective(layer) == int(mask.sum()) + 4


def test_masks_round_trip_through_the_state_dict():
    model = init_random_masks(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)), 0.5)
    fresh = init_random_masks(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)), 0.5)
    fresh.load_state_dict(model.state_dict())
    for i in (0, 2):
        assert torch.equal(weight_mask(fresh[i]).mask, weight_mask(model[i]).mask)


def test_erk_densities_by_hand():
    # ERK raw densities (out + in)/(out · in): 10×10 → 0.2, 100×100 → 0.02
    shapes = [torch.Size([10, 10]), torch.Size([100, 100])]
    total = 100 + 10_000
    # ε (0.2 · 100 + 0.02 · 10000) = 0.1 · total → ε = 1010 / 220
    scale = 0.1 * total / 220
    assert erk_densities(shapes, 0.1) == pytest.approx([0.2 * scale, 0.02 * scale])
    # at 0.5 the small layer saturates: dense, the large one gets the rest
    assert erk_densities(shapes, 0.5) == pytest.approx([1.0, (0.5 * total - 100) / 10_000])
    # convolutions count their kernel dims: (out + in + k) / (out · in · k)
    conv = erk_densities([torch.Size([4, 2, 3]), torch.Size([40, 20, 3])], 0.02)
    assert conv[0] / conv[1] == pytest.approx((9 / 24) / (63 / 2400))


def test_allotted_nonzeros_sum_exactly():
    counts = allot_nonzeros([10, 10, 10], [1 / 3, 1 / 3, 1 / 3], 10)
    assert sum(counts) == 10 and max(counts) - min(counts) == 1
    layers = [nn.Linear(40, 100), nn.Linear(100, 100), nn.Linear(100, 10)]
    for distribution in ("uniform", "erk"):
        assert sum(layer_nonzeros(layers, 0.2, distribution)) == 3000


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_magnitude_prune_reaches_the_target_and_keeps_the_largest(scope):
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    magnitude_prune(model, 0.7, scope)
    assert sparsity_of(model) == pytest.approx(0.7, abs=1 / 750)
    weights = [dense_weight(model[i]).abs() for i in (0, 2)]
    masks = [weight_mask(model[i]).mask.bool() for i in (0, 2)]
    if scope == "global":
        kept = torch.cat([w[m] for w, m in zip(weights, masks, strict=True)])
        pruned = torch.cat([w[~m] for w, m in zip(weights, masks, strict=True)])
        assert kept.min() >= pruned.max()
    else:
        for w, m in zip(weights, masks, strict=True):
            assert int(m.sum()) == math.floor(0.3 * m.numel() + 0.5)
            assert w[m].min() >= w[~m].max()


def test_prune_less_than_the_current_sparsity_revives_at_zero():
    model = nn.Sequential(nn.Linear(10, 10))
    magnitude_prune(model, 0.8)
    before = model(torch.ones(1, 10))
    magnitude_prune(model, 0.5)
    assert sparsity_of(model) == pytest.approx(0.5)
    torch.testing.assert_close(model(torch.ones(1, 10)), before)


def test_effective_flops_scale_with_each_layers_density():
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 8, 3))
    set_mask(model[0], torch.ones(4, 2, 3))
    mask = torch.zeros(3, 32)
    mask[:, :8] = 1  # 24 of 96 head weights
    set_mask(model[2], mask)
    dense = 2 * 2 * 4 * 3 * 8 + 2 * 32 * 3
    assert flop_per_sample(model, (2, 10)) == {"dense": dense, "effective": dense - 2 * 72}
