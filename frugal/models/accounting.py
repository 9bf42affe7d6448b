"""Exact size and cost of a model: stored vs effective parameters, dense vs effective FLOPs.

- stored parameters: every parameter tensor (a masked layer's full underlying weight; masks are
  buffers and do not count);
- effective parameters: masked layers count their mask's non-zeros; low-rank layers already store
  only their factors, so for them effective = stored;
- dense FLOPs per sample: measured with torch's counter on the model as it runs (masked layers
  execute their full dense kernels; low-rank layers execute their factors);
- effective FLOPs per sample: dense minus the multiply-adds of masked-out weights, i.e. what a
  kernel exploiting the sparsity would execute. Each weight of a Linear/Conv takes part in the
  same number of multiply-adds, so a layer's FLOPs scale exactly with its density.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from frugal.meters.flops import forward_flops
from frugal.models.layers import weight_mask
from frugal.models.sparse import masked_layers


def count_params(model: nn.Module) -> int:
    """Stored parameters (shared tensors once)."""
    return sum(p.numel() for p in model.parameters())


def masked_out(layer: nn.Module) -> int:
    """Weights of `layer` its mask sets to zero (0 without a mask)."""
    mask = weight_mask(layer)
    return 0 if mask is None else int((mask.mask == 0).sum().item())


def count_params_effective(model: nn.Module) -> int:
    """Stored parameters minus masked-out weights."""
    return count_params(model) - sum(masked_out(layer) for layer in masked_layers(model).values())


def flop_per_sample(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Forward FLOPs of one sample: {"dense": as executed, "effective": masks accounted for}."""
    param = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape, device=None if param is None else param.device)
    layers = masked_layers(model)
    layer_inputs: dict[str, torch.Size] = {}  # name -> shape of the layer's input

    def record(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            layer_inputs.setdefault(name, args[0].shape)

        return hook

    hooks = [layer.register_forward_pre_hook(record(name)) for name, layer in layers.items()]
    try:
        dense = forward_flops(model, x)
    finally:
        for hook in hooks:
            hook.remove()
    saved = 0
    for name, layer in layers.items():
        if name not in layer_inputs:  # a layer the forward pass does not use
            continue
        layer_flop = forward_flops(layer, torch.zeros(layer_inputs[name], device=x.device))
        # exact: layer_flop is a multiple of numel (each weight used equally often)
        saved += layer_flop * masked_out(layer) // layer.weight.numel()
    return {"dense": dense, "effective": dense - saved}
