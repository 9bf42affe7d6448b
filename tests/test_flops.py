"""FLOP counts of the two paper models, derived by hand (2 FLOP per multiply-add)."""

import torch
from torch.nn import functional as F

from frugal.meters.flops import forward_flops, train_step_flops
from frugal.models import create_model

# CNN on (40,): conv1 19 positions × 25 out × 1 in × 5 taps; conv2 10 × 25 × 25 × 3;
# conv3 5 × 25 × 25 × 3; head 125 × 10.
CNN_FWD_MAC = 19 * 25 * 5 + 10 * 25 * 25 * 3 + 5 * 25 * 25 * 3 + 125 * 10
# Backward: weight gradient everywhere, input gradient everywhere but the first layer.
CNN_BWD_MAC = 2 * CNN_FWD_MAC - 19 * 25 * 5
MLP_FWD_MAC = 40 * 100 + 100 * 100 + 100 * 10
MLP_BWD_MAC = 2 * MLP_FWD_MAC - 40 * 100


def test_cnn_forward_and_training_flops():
    model = create_model("cnn", (40,), 10)
    x, y = torch.randn(100, 40), torch.randint(0, 10, (100,))
    assert forward_flops(model, x) == 100 * 2 * CNN_FWD_MAC == 6_350_000
    assert train_step_flops(model, x, y, F.cross_entropy) == 100 * 2 * (CNN_FWD_MAC + CNN_BWD_MAC)


def test_mlp_forward_and_training_flops():
    model = create_model("mlp", (40,), 10)
    x, y = torch.randn(100, 40), torch.randint(0, 10, (100,))
    assert forward_flops(model, x) == 100 * 2 * MLP_FWD_MAC == 3_000_000
    assert train_step_flops(model, x, y, F.cross_entropy) == 100 * 2 * (MLP_FWD_MAC + MLP_BWD_MAC)


def test_measuring_a_step_leaves_no_trace():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_step_flops(model, torch.randn(16, 4), torch.randint(0, 8, (16,)), F.cross_entropy)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
