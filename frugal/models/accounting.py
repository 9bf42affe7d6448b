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

`footprint` measures what a model will hold (parameters, buffers, activations) on the meta
device before it exists, for the config check to weigh against the memory available.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from frugal.meters.flops import forward_flops
from frugal.models.layers import weight_mask
from frugal.models.registry import configured_builder
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


# ---- what a model will hold, before it exists --------------------------------------------------
PROBE_DEPTH = 64  # a deeper model is measured at this depth and one more, and extrapolated
MODULE_BYTES = 2048  # Python's share of one nn.Module object (measured: about 2.3 KiB)
ACTIVATION_BYTES = 4  # float32 activations
KEPT_FOR_BACKWARD = 2  # each activation is kept for the backward pass and gets a gradient


@dataclass(frozen=True)
class Footprint:
    """What a model holds, measured on the meta device (shapes only: no memory, no arithmetic)."""

    parameters: int  # stored values
    parameter_bytes: int
    buffer_bytes: int  # masks, BatchNorm statistics
    modules: int
    activations: int | None  # values its layers output for one sample; None: not measurable

    def training_bytes(self, batch: int, optimizer_states: int) -> int:
        """Memory to train on batches of `batch`: weights, gradients and `optimizer_states`
        tensors per weight (Adam: 2), buffers, modules and the activations of a batch."""
        weights = self.parameter_bytes * (2 + optimizer_states)
        held = weights + self.buffer_bytes + self.modules * MODULE_BYTES
        return held + batch * (self.activations or 0) * ACTIVATION_BYTES * KEPT_FOR_BACKWARD

    def serving_bytes(self, batch: int, input_values: int) -> int:
        """Memory to predict a batch of `batch` inputs of `input_values` values each."""
        held = self.parameter_bytes + self.buffer_bytes + self.modules * MODULE_BYTES
        return held + batch * ((self.activations or 0) + input_values) * ACTIVATION_BYTES


def footprint(
    build: Callable[..., nn.Module], input_shape: tuple[int, ...], depth: object = None
) -> Footprint:
    """The footprint of `build(**overrides)` (a model builder with every other argument bound)
    for inputs of `input_shape`, built on the meta device. A `depth` beyond `PROBE_DEPTH` is
    not built (1,000,000 layers would take minutes and gigabytes just to construct): depths
    `PROBE_DEPTH` and one more are measured, and every further layer adds what that one did
    (so deep, a CNN's feature map has shrunk to its last size: each layer then adds the same)."""
    with torch.device("meta"):
        if not (isinstance(depth, int) and not isinstance(depth, bool) and depth > PROBE_DEPTH):
            return _measure(build(), input_shape)
        low, high = (_measure(build(depth=d), input_shape) for d in (PROBE_DEPTH, PROBE_DEPTH + 1))

    def grown(name: str) -> int:
        first, second = getattr(low, name), getattr(high, name)
        return first + (depth - PROBE_DEPTH) * max(second - first, 0)

    known = low.activations is not None and high.activations is not None
    return Footprint(
        parameters=grown("parameters"),
        parameter_bytes=grown("parameter_bytes"),
        buffer_bytes=grown("buffer_bytes"),
        modules=grown("modules"),
        activations=grown("activations") if known else None,
    )


def _measure(model: nn.Module, input_shape: tuple[int, ...]) -> Footprint:
    params = list(model.parameters())
    return Footprint(
        parameters=sum(p.numel() for p in params),
        parameter_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        modules=sum(1 for _ in model.modules()),
        activations=_activations(model, input_shape),
    )


def _activations(model: nn.Module, input_shape: tuple[int, ...]) -> int | None:
    """Values every leaf layer outputs for one sample, from a forward pass on the meta device;
    None where the model cannot run there (an operation meta tensors lack)."""
    total = 0

    def count(_module: nn.Module, _args: object, output: object) -> None:
        nonlocal total
        outputs = output if isinstance(output, tuple | list) else (output,)
        total += sum(o.numel() for o in outputs if isinstance(o, torch.Tensor))

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    hooks = [leaf.register_forward_hook(count) for leaf in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(2, *input_shape, device="meta"))  # 2: BatchNorm refuses one
    except Exception:  # the model's own code may fail on meta tensors in any way
        return None
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return total // 2


def model_footprint(
    model_cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> Footprint | None:
    """The `Footprint` of the model `model_cfg` describes for this data, measured on the meta
    device (nothing allocated); None where the builder cannot run there (the real build then
    reports what is wrong)."""
    builder, kwargs = configured_builder(model_cfg)
    shape, classes = tuple(int(n) for n in input_shape), int(num_classes)

    def build(**overrides: Any) -> nn.Module:
        return builder(input_shape=shape, num_classes=classes, **{**kwargs, **overrides})

    try:
        return footprint(build, shape, kwargs.get("depth"))
    except Exception:  # the user's code, or an operation the meta device lacks
        return None
