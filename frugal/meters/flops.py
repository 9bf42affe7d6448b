"""FLOP counting with torch's own counter (`torch.utils.flop_counter.FlopCounterMode`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs executed by `fn()` (matmul/conv family, as counted by torch)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def forward_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Forward FLOPs of one batch `x`, without touching gradients or training state."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return count_flops(lambda: model(x))
    finally:
        model.train(was_training)


def train_step_flops(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[..., torch.Tensor]
) -> int:
    """Forward + backward FLOPs of one training batch. Leaves no trace: gradients are cleared
    and buffers (e.g. BatchNorm running statistics) restored."""
    buffers = {name: buf.detach().clone() for name, buf in model.named_buffers()}

    def step() -> None:
        loss_fn(model(x), y).backward()

    flop = count_flops(step)
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            buf.copy_(buffers[name])
    return flop
