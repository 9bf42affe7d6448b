"""A configuration as plain values (interpolations resolved, nothing left `???`), and one group
validated against its schema model, each problem as the one line (`frugal.core.errors`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ValidationError

from frugal.config import schema
from frugal.core.errors import bad, from_validation_error

M = TypeVar("M", bound=BaseModel)


def plain(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """`cfg` as plain Python values, interpolations resolved; one line for a value that does
    not resolve or is left `???`."""
    if not isinstance(cfg, DictConfig):
        return dict(cfg)
    unresolved = {
        k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"
    }
    missing = _first_missing(unresolved, "")
    if missing is not None:  # before resolving: an interpolation of it would name another key
        raise bad(missing, ..., "not set (???)", f"a value, e.g. {missing}=...")
    resolved: dict[str, Any] = {}
    for name in cfg:
        if name == "hydra":
            continue
        try:
            value = cfg[name]
            if isinstance(value, DictConfig | ListConfig):
                value = OmegaConf.to_container(value, resolve=True)
            resolved[name] = value
        except OmegaConfBaseException as err:
            key = getattr(err, "full_key", None) or name
            problem = str(err).splitlines()[0] if str(err) else type(err).__name__
            raw = _at(unresolved, key)
            if "Missing mandatory value" in problem:
                raise bad(key, ..., "not set (???)", f"a value, e.g. {key}=...") from err
            raise bad(key, raw, f"cannot be resolved ({problem})", "a value or ${...}") from err
    return resolved


def _at(node: Any, key: str) -> Any:
    """The value at dotted `key` of nested dicts and lists, `...` where there is none."""
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return ...
    return node


def _first_missing(node: Any, prefix: str) -> str | None:
    if node == "???":
        return prefix
    if isinstance(node, dict):
        for name, value in node.items():
            found = _first_missing(value, f"{prefix}.{name}" if prefix else str(name))
            if found:
                return found
    return None


def validated(model: type[M], node: Any, prefix: str) -> M:
    if not isinstance(node, dict):
        raise bad(prefix, node, "not a group of keys", group_form(prefix))
    try:
        return model.model_validate(node)
    except ValidationError as err:
        raise from_validation_error(err, model, prefix, node) from None


def group_form(prefix: str) -> str:
    info = schema.TopLevel.model_fields.get(prefix)
    return info.description if info is not None and info.description else "a group of keys"
