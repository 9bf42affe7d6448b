"""The whole registry: every model builds, maps (B, *input_shape) to (B, classes), has a config,
and its parameter and FLOP counts equal formulas derived by hand per layer family."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from frugal.models import create_model, list_models
from frugal.models.accounting import count_params, count_params_effective, flop_per_sample
from frugal.models.layers import weight_mask
from frugal.models.sparse import masked_layers

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
TASK_SHAPES = {"mnist1d": ((40,), 10), "digits": ((1, 8, 8), 10)}
SYNTHETIC = ((16,), 4)
CHANNELS_FIRST = ((3, 12), 5)  # a 1D model also takes (C, L)

# ---- per-layer formulas: (params, forward FLOPs per sample); a multiply-add is 2 FLOPs ----


def linear(n_in: int, n_out: int) -> tuple[int, int]:
    return n_in * n_out + n_out, 2 * n_in * n_out


def lowrank_linear(n_in: int, n_out: int, r: int) -> tuple[int, int]:
    return r * (n_in + n_out) + n_out, 2 * r * (n_in + n_out)


def conv(c_in: int, c_out: int, k: int, positions: int, dims: int) -> tuple[int, int]:
    return c_in * c_out * k**dims + c_out, 2 * c_in * c_out * k**dims * positions


def lowrank_conv(c_in: int, c_out: int, k: int, positions: int, dims: int, r: int):
    return r * c_in * k**dims + r * c_out + c_out, 2 * r * (c_in * k**dims + c_out) * positions


def dsconv(c_in: int, c_out: int, k: int, positions: int, dims: int) -> tuple[int, int]:
    return c_in * k**dims + c_in * c_out + c_out, 2 * (c_in * k**dims + c_in * c_out) * positions


def rank(rows: int, cols: int, ratio: float = 0.25) -> int:
    return max(1, math.floor(ratio * min(rows, cols) + 0.5))


def add(*parts: tuple[int, int]) -> tuple[int, int]:
    return sum(p for p, _ in parts), sum(f for _, f in parts)


# ---- per-family formulas, from the input shape ----


def seq(shape: tuple[int, ...]) -> tuple[int, int]:
    """(length, channels) of a 1D model's input."""
    return (shape[0], 1) if len(shape) == 1 else (math.prod(shape[1:]), shape[0])


def mlp_family(shape, classes, hidden=100, depth=2, lowrank=False):
    widths = [math.prod(shape)] + [hidden] * depth
    hidden_layers = [
        lowrank_linear(i, o, rank(i, o)) if lowrank else linear(i, o)
        for i, o in itertools.pairwise(widths)
    ]
    return add(*hidden_layers, linear(hidden, classes))


def cnn1d_family(shape, classes, ch=25, depth=3, kind="dense"):
    length, c_in = seq(shape)
    parts = []
    for i, k in enumerate((5,) + (3,) * (depth - 1)):
        length = (length + 2 - k) // 2 + 1
        if i == 0 or kind == "dense":
            parts.append(conv(c_in, ch, k, length, 1))
        elif kind == "lowrank":
            parts.append(lowrank_conv(c_in, ch, k, length, 1, rank(ch, c_in * k)))
        else:
            parts.append(dsconv(c_in, ch, k, length, 1))
        c_in = ch
    return add(*parts, linear(ch * length, classes))


def cnn2d_family(shape, classes, ch=16, depth=3, kind="dense"):
    c_in, side = shape[0], shape[1]
    parts = []
    for i in range(depth):
        side = side if i == 0 else (side - 1) // 2 + 1
        if i == 0 or kind == "dense":
            parts.append(conv(c_in, ch, 3, side * side, 2))
        elif kind == "lowrank":
            parts.append(lowrank_conv(c_in, ch, 3, side * side, 2, rank(ch, c_in * 9)))
        else:
            parts.append(dsconv(c_in, ch, 3, side * side, 2))
        c_in = ch
    return add(*parts, linear(ch * side * side, classes))


def gru_family(shape, classes, hidden=6, directions=2):
    length, c_in = seq(shape)
    gates = 3 * hidden  # reset, update, new
    params = directions * (gates * c_in + gates * hidden + 2 * gates)
    flop = directions * length * 2 * gates * (c_in + hidden)
    return add((params, flop), linear(directions * hidden * length, classes))


FAMILIES: dict[str, Callable[..., tuple[int, int]]] = {
    "logreg": lambda s, c: linear(math.prod(s), c),
    "mlp": mlp_family,
    "mlp_tiny": lambda s, c: mlp_family(s, c, hidden=8, depth=1),
    "wide_mlp": lambda s, c: mlp_family(s, c, hidden=1024),
    "lowrank_mlp": lambda s, c: mlp_family(s, c, lowrank=True),
    "sparse_mlp": mlp_family,
    "gru": gru_family,
    "cnn": cnn1d_family,
    "cnn_tiny": lambda s, c: cnn1d_family(s, c, ch=4, depth=2),
    "wide_cnn": lambda s, c: cnn1d_family(s, c, ch=256),
    "dsconv_cnn": lambda s, c: cnn1d_family(s, c, kind="ds"),
    "lowrank_cnn": lambda s, c: cnn1d_family(s, c, kind="lowrank"),
    "sparse_cnn": cnn1d_family,
    "cnn2d": cnn2d_family,
    "cnn2d_tiny": lambda s, c: cnn2d_family(s, c, ch=4, depth=2),
    "wide_cnn2d": lambda s, c: cnn2d_family(s, c, ch=128),
    "dsconv_cnn2d": lambda s, c: cnn2d_family(s, c, kind="ds"),
    "lowrank_cnn2d": lambda s, c: cnn2d_family(s, c, kind="lowrank"),
    "sparse_cnn2d": cnn2d_family,
}


def config(name: str) -> dict:
    return yaml.safe_load((CONF / f"{name}.yaml").read_text())


def cases(name: str) -> list[tuple[tuple[int, ...], int]]:
    task = config(name)["task"]
    return [TASK_SHAPES[task]] + ([SYNTHETIC, CHANNELS_FIRST] if task == "mnist1d" else [])


def test_every_model_has_a_formula_and_a_config():
    assert sorted(FAMILIES) == list_models()
    registered = sorted(p.stem for p in CONF.glob("*.yaml") if p.stem != "own")
    assert registered == list_models()  # model=own: any nn.Module, no registration


@pytest.mark.parametrize("name", list_models())
def test_config_names_its_model_and_task(name):
    cfg = config(name)
    assert cfg["name"] == name
    assert cfg["task"] in TASK_SHAPES  # its kwargs bind: the next test builds from them


@pytest.mark.parametrize("name", list_models())
def test_shapes_and_exact_counts(name):
    for shape, classes in cases(name):
        torch.manual_seed(0)
        model = create_model(name, shape, classes, **config(name)["kwargs"])
        assert model(torch.randn(3, *shape)).shape == (3, classes)

        params, flop = FAMILIES[name](shape, classes)
        assert count_params(model) == params
        measured = flop_per_sample(model, shape)
        assert measured["dense"] == flop
        if not name.startswith("sparse"):
            assert count_params_effective(model) == params
            assert measured["effective"] == flop
            continue
        # sparse: every Linear/Conv weight masked, exactly round(density · weights) kept
        layers = masked_layers(model).values()
        weights = sum(layer.weight.numel() for layer in layers)
        biases = params - weights
        density = config(name)["kwargs"]["density"]
        assert count_params_effective(model) == biases + math.floor(density * weights + 0.5)
        # each kept weight does the same multiply-adds as in the dense layer
        saved = sum(
            flop_layer * int((weight_mask(layer).mask == 0).sum()) // layer.weight.numel()
            for layer, flop_layer in zip(layers, _layer_flops(model, shape), strict=True)
        )
        assert measured["effective"] == flop - saved


def _layer_flops(model: torch.nn.Module, shape: tuple[int, ...]) -> list[int]:
    """Dense FLOPs per sample of each masked layer, by hand from its output positions."""
    flops = []
    outputs: dict[torch.nn.Module, torch.Size] = {}
    hooks = [
        layer.register_forward_hook(lambda mod, _a, out: outputs.__setitem__(mod, out.shape))
        for layer in masked_layers(model).values()
    ]
    model(torch.zeros(1, *shape))
    for hook in hooks:
        hook.remove()
    for layer in masked_layers(model).values():
        positions = math.prod(outputs[layer][2:])  # 1 for a Linear
        flops.append(2 * layer.weight.numel() * positions)
    return flops


def test_paper_parameter_counts():
    assert count_params(create_model("logreg", (40,), 10)) == 410
    assert count_params(create_model("mlp", (40,), 10)) == 15_210
    assert count_params(create_model("cnn", (40,), 10)) == 5_210
    assert count_params(create_model("gru", (40,), 10)) == 5_134


def test_width_and_depth_multipliers():
    assert (
        count_params(create_model("mlp", (40,), 10, width_mult=2.0))
        == mlp_family((40,), 10, hidden=200)[0]
    )
    assert (
        count_params(create_model("cnn", (40,), 10, width_mult=0.5, depth=4))
        == (cnn1d_family((40,), 10, ch=13, depth=4)[0])
    )
    with pytest.raises(ValueError, match="too deep"):
        create_model("cnn", (2,), 4)


def test_unknown_model_lists_registered_ones():
    with pytest.raises(KeyError, match="cnn_tiny"):
        create_model("no_such_model", (40,), 10)
