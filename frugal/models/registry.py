"""One door to every architecture: `@register_model`, `create_model`, `list_models` (timm-style).

A builder takes the task's `input_shape` (without the batch dimension) and `num_classes`, plus
its own keyword arguments, and returns an `nn.Module` mapping `(B, *input_shape)` to
`(B, num_classes)` logits. A model of your own follows the same rule and needs no registration:
`model=own model._target_=pkg.module.Net` builds `Net(input_shape=…, num_classes=…,
**model.kwargs)` (`build_model`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from frugal.core.errors import bad, first_line, setting
from frugal.core.inputs import locate

ModelBuilder = Callable[..., nn.Module]

_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(fn: ModelBuilder | None = None, *, name: str | None = None) -> Any:
    """Register a builder under its function name (or `name`)."""

    def wrap(builder: ModelBuilder) -> ModelBuilder:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is already registered")
        _REGISTRY[key] = builder
        return builder

    return wrap(fn) if fn is not None else wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, **kwargs: Any
) -> nn.Module:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    return _REGISTRY[name](input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)


# ---- the config's door: `model=<registered name>` or `model=own model._target_=pkg.mod.Net` ----
OWN_MODEL_FORM = "a class or builder Net(input_shape, num_classes, **kwargs) returning an nn.Module"


def model_name(model_cfg: Mapping[str, Any]) -> str:
    """What result.json and reports call the model: its registered name, or for an own model
    `model.name` (by default its `_target_`)."""
    return str(model_cfg.get("name") or model_cfg.get("_target_"))


def check_model_config(model_cfg: Mapping[str, Any]) -> None:
    """Before any data exists: the model is registered or importable, and its kwargs are
    arguments it takes. Raises ConfigError."""
    _builder(_plain(model_cfg))


def build_model(
    model_cfg: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """The backbone `model_cfg` describes, for data of `input_shape` (one sample) and
    `num_classes`: built, then run once on a batch of zeros to check that it maps
    `(B, *input_shape)` to `(B, num_classes)` logits (lazy layers get their shapes here)."""
    cfg = _plain(model_cfg)
    builder, where = _builder(cfg)
    input_shape = tuple(int(n) for n in input_shape)
    try:
        model = builder(input_shape=input_shape, num_classes=int(num_classes), **cfg["kwargs"])
    except Exception as err:
        raise bad(
            where,
            ...,
            f"cannot be built for input {input_shape} and {num_classes} classes "
            f"({first_line(err)})",
            "a model for this data and valid model.kwargs",
        ) from err
    if not isinstance(model, nn.Module):
        raise bad(where, ..., f"returned a {type(model).__name__}", "an nn.Module")
    _check_logits(model, input_shape, int(num_classes), where)
    return model


def _plain(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(model_cfg, DictConfig):
        if OmegaConf.is_missing(model_cfg, "_target_"):
            raise bad("model._target_=???", ..., "not set", OWN_MODEL_FORM)
        model_cfg = OmegaConf.to_container(model_cfg, resolve=True)
    cfg = dict(model_cfg)
    kwargs = cfg.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise bad("model.kwargs", kwargs, "", "a mapping of keyword arguments")
    cfg["kwargs"] = dict(kwargs)
    return cfg


def _builder(cfg: dict[str, Any]) -> tuple[ModelBuilder, str]:
    """(the callable that builds the model, how errors name it)."""
    name, target = cfg.get("name"), cfg.get("_target_")
    if target is None:
        if name not in _REGISTRY:
            raise bad(
                "model.name",
                name,
                "unknown model",
                f"one of {', '.join(list_models())} or model=own model._target_=pkg.module.Net",
            )
        builder, where = _REGISTRY[name], f"model={name}"  # the group, as typed
    else:
        if name in _REGISTRY:
            raise bad(
                "model._target_",
                target,
                f"model={name} is a registered model and takes no _target_",
                f"model=own model._target_={target}",
            )
        builder, where = (
            locate(target, "model._target_", OWN_MODEL_FORM),
            setting("model._target_", target),
        )
        if not callable(builder):
            raise bad(where, ..., "is not callable", OWN_MODEL_FORM)
    _check_arguments(builder, cfg["kwargs"], where)
    return builder, where


def _check_arguments(builder: ModelBuilder, kwargs: dict[str, Any], where: str) -> None:
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):
        return  # a callable without a signature (a C extension): its call will tell
    params = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for required in ("input_shape", "num_classes"):
        if required not in params and not takes_any:
            raise bad(where, ..., f"takes no {required} argument", OWN_MODEL_FORM)
    for key, value in kwargs.items():
        if (key not in params and not takes_any) or key in ("input_shape", "num_classes"):
            accepted = [k for k in params if k not in ("input_shape", "num_classes", "self")]
            raise bad(
                f"model.kwargs.{key}",
                value,
                f"not an argument of {where}",
                f"one of {', '.join(accepted) or '(none)'}",
            )
    try:
        signature.bind(input_shape=(), num_classes=0, **kwargs)
    except TypeError as err:
        raise bad(where, ..., str(err), "+model.kwargs.<argument>=<value>") from None


def _check_logits(model: nn.Module, input_shape: tuple[int, ...], num_classes: int, where: str):
    batch = (2, *input_shape)  # 2: BatchNorm refuses a batch of one
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.zeros(batch))
    except Exception as err:
        raise bad(
            where,
            ...,
            f"fails on a batch of shape {batch} ({first_line(err)})",
            "a model for this data's input shape",
        ) from err
    finally:
        model.train(was_training)
    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
    if shape != (2, num_classes):
        raise bad(
            where,
            ...,
            f"maps a batch of shape {batch} to {shape}",
            f"logits of shape (2, {num_classes})",
        )


# ---- the size estimate: what the configured model will hold, before it is built --------------
def configured_builder(model_cfg: Mapping[str, Any]) -> tuple[ModelBuilder, dict[str, Any]]:
    """(the builder `model_cfg` names, its keyword arguments), checked as `check_model_config`
    checks them (`frugal.models.accounting.model_footprint` measures what it builds)."""
    cfg = _plain(model_cfg)
    builder, _ = _builder(cfg)
    return builder, cfg["kwargs"]


def grown_setting(model_cfg: Mapping[str, Any]) -> tuple[str, Any]:
    """(key, value) of the size argument set furthest above the builder's default (e.g.
    `model.kwargs.width_mult`, 100000), where a model too large for the machine is named;
    the model itself where no argument grew (the data's shape made it large)."""
    cfg = _plain(model_cfg)
    builder, _ = _builder(cfg)
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        params = {}
    best: tuple[float, str, Any] = (1.0, "model", model_name(cfg))
    for key, value in cfg["kwargs"].items():
        default = params[key].default if key in params else None
        numbers = (value, default)
        if all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
            ratio = value / default if default > 0 else float(value)
            if ratio > best[0]:
                best = (ratio, f"model.kwargs.{key}", value)
    return best[1], best[2]
