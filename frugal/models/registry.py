"""One door to every architecture: `@register_model`, `create_model`, `list_models` (timm-style).

A builder takes the task's `input_shape` (without the batch dimension) and `num_classes`, plus
its own keyword arguments, and returns an `nn.Module` mapping `(B, *input_shape)` to
`(B, num_classes)` logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

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
