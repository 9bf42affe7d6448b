"""Structured pruning: whole channels and neurons removed, leaving a smaller *dense* network
whose kernels really run faster (masks, `frugal.models.sparse`, only zero weights).

The surgery is Torch-Pruning's dependency graph (Fang et al., "DepGraph: Towards Any
Structural Pruning", CVPR 2023): removing output channels of one layer removes the matching
inputs of every layer that consumes them — through activations and flattening into a linear
head — so the network stays consistent. Each group (a layer's output channels with everything
coupled to them) is ranked by the L2 norm of all its weights (`GroupMagnitudeImportance`) and
cut to an exact width: `keep_ratio · original`, rounded half up, at least 1. The classifier —
the last Linear/Conv the forward pass runs — keeps its outputs, the logits.

For networks of plain Conv1d / Conv2d / Linear layers (frugal's mlp, cnn, wide_cnn, cnn2d, …).
Masked layers (`sparse_*` models, `sparsity=gmp|rigl|set`) are refused: a mask is a second
tensor of the weight's shape that the surgery would not cut.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
import torch_pruning as tp
from torch import Tensor, nn
from torch.nn.utils import parametrize

from frugal.models.baselines import scaled

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Linear)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The Conv/Linear layers of `model` by name, in registration order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


def widths(model: nn.Module) -> dict[str, int]:
    """Output channels / features of every Conv/Linear layer, by name."""
    return {name: int(m.weight.shape[0]) for name, m in prunable_layers(model).items()}


def kept_widths(original: Mapping[str, int], keep_ratio: float) -> dict[str, int]:
    """Each width times `keep_ratio`, rounded half up, at least 1."""
    return {name: scaled(width, keep_ratio) for name, width in original.items()}


def check_prunable(model: nn.Module) -> None:
    """Raise ValueError if `model` has masked (parametrized) layers."""
    masked = [name for name, m in model.named_modules() if parametrize.is_parametrized(m)]
    if masked:
        raise ValueError(
            f"layer {masked[0]!r} is masked (sparse training); structured pruning expects a "
            "dense model, e.g. model=cnn, wide_cnn or mlp"
        )


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode for a forward pass that must leave no trace (BatchNorm statistics)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def classifier(model: nn.Module, example: Tensor) -> nn.Module:
    """The last Conv/Linear layer the forward pass of `example` runs: it makes the logits."""
    ran: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda m, *_: ran.append(m))
        for m in prunable_layers(model).values()
    ]
    try:
        with evaluating(model), torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    if not ran:
        raise ValueError("the model runs no Conv/Linear layer: nothing to prune")
    return ran[-1]


def dependency_graph(model: nn.Module, example: Tensor) -> tp.DependencyGraph:
    with evaluating(model), torch.enable_grad():  # the trace follows autograd's graph
        return tp.DependencyGraph().build_dependency(model, example_inputs=example)


def prune_to_widths(model: nn.Module, example: Tensor, targets: Mapping[str, int]) -> int:
    """Cut every group whose root layer is wider than its entry in `targets` (by layer name) to
    that width, dropping the channels of least L2 importance; in place. `example` is one input
    batch. Returns the number of output channels removed (0: nothing to do)."""
    check_prunable(model)
    example = example[:2]  # tracing needs shapes only
    names = {m: name for name, m in prunable_layers(model).items()}
    graph = dependency_graph(model, example)
    importance = tp.importance.GroupMagnitudeImportance(p=2)
    cuts = []  # ranked on the unpruned model, then cut (as Torch-Pruning's own pruners do)
    groups = graph.get_all_groups(
        ignored_layers=[classifier(model, example)], root_module_types=list(PRUNABLE)
    )
    for group in groups:
        root, handler = group[0].dep.target.module, group[0].dep.handler
        width, target = graph.get_out_channels(root), targets.get(names.get(root, ""))
        if target is None or width <= target:
            continue
        dropped = importance(group).argsort()[: width - target]  # least important first
        cuts.append((root, handler, sorted(dropped.tolist())))
    for root, handler, idxs in cuts:
        graph.get_pruning_group(root, handler, idxs).prune()
    return sum(len(idxs) for *_, idxs in cuts)


def structured_prune(
    model: nn.Module, channel_ratio: float, input_shape: tuple[int, ...] | None
) -> nn.Module:
    """Prune every layer but the classifier to `channel_ratio` of its channels, in place
    (`compress=structured`); `input_shape` is one sample's shape, for tracing."""
    if not 0 < channel_ratio <= 1:
        raise ValueError(f"channel_ratio must be in (0, 1], got {channel_ratio}")
    if input_shape is None:
        raise ValueError("structured pruning traces the model: it needs the data's input_shape")
    example = example_input(model, input_shape)
    prune_to_widths(model, example, kept_widths(widths(model), channel_ratio))
    return model


def match_widths(model: nn.Module, state: Mapping[str, Tensor], input_shape: tuple[int, ...]):
    """Prune a freshly built `model` to the widths its pruned checkpoint weights `state` (keys
    as in `model.state_dict()`) have, so that they load; in place. Which channels go does not
    matter: the checkpoint's weights replace them. Raises ValueError for a checkpoint wider
    than the model."""
    found = {
        name: int(state[f"{name}.weight"].shape[0])
        for name in prunable_layers(model)
        if f"{name}.weight" in state
    }
    current = widths(model)
    wider = next((name for name, width in found.items() if width > current[name]), None)
    if wider is not None:
        raise ValueError(
            f"layer {wider!r} has {found[wider]} channels in the checkpoint, {current[wider]} "
            "in the model: a pruned model cannot grow back"
        )
    if found != {name: current[name] for name in found}:
        prune_to_widths(model, example_input(model, input_shape), found)


def example_input(model: nn.Module, input_shape: tuple[int, ...]) -> Tensor:
    param = next(model.parameters(), None)
    return torch.zeros(2, *input_shape, device=None if param is None else param.device)
