"""Nodes Hydra builds (`_target_`): typed where frugal knows the target, every other key bound to
the target's signature; the model group against its builder's signature and frugal's shared
ranges of its arguments; callbacks and loggers, which must be Lightning's kinds."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from frugal.config import schema, schema_training
from frugal.config.resolve import group_form, validated
from frugal.config.signatures import NotFound, model_builder_signature, model_names, signature_of
from frugal.core.errors import ConfigError, bad

# Arguments frugal passes itself when it builds a node: (key -> where they come from)
PASSED_BY_FRUGAL = {
    "trainer": {"callbacks": "the callbacks group", "logger": "the logger group"},
    "data.kwargs": {"batch_size": "data.batch_size"},
    "optimizer": {"params": "the model's parameters"},
    "scheduler": {"optimizer": "the optimizer group"},
    "model.kwargs": {"input_shape": "the data", "num_classes": "the data"},
}
# What a callbacks.<name> and a logger.<name> must build: (a class deriving from, accepted form)
ENTRY_BASES = {
    "callbacks": (
        "lightning.pytorch.callbacks.callback.Callback",
        "a Lightning Callback class, e.g. lightning.pytorch.callbacks.EarlyStopping",
    ),
    "logger": (
        "lightning.pytorch.loggers.logger.Logger",
        "a Lightning Logger class, e.g. lightning.pytorch.loggers.CSVLogger",
    ),
}


def check_target(
    prefix: str, node: Any, known: dict[str, type[schema.TargetNode]], default: type
) -> None:
    """A node Hydra instantiates: typed where frugal knows the target, and every key an
    argument of the target."""
    if not isinstance(node, dict):
        raise bad(prefix, node, "not a group of keys", group_form(prefix.split(".")[0]))
    target = node.get("_target_")
    if not isinstance(target, str) or not target:
        raise bad(f"{prefix}._target_", target, "missing", "an importable class or function")
    model = known.get(target, default)
    validated(model, node, prefix)
    typed = {info.alias or name for name, info in model.model_fields.items()}
    arguments = {k: v for k, v in node.items() if k not in typed and k not in schema.HYDRA_KEYS}
    if arguments or target not in known:
        signature = target_signature(prefix, target)
        try:
            bind(
                prefix, arguments, target, signature, given=None if node.get("_partial_") else typed
            )
        except ConfigError as err:
            if target in known:
                raise
            # another target than the group's: the keys may be right and the target wrong
            setting, _, rest = str(err).partition(": ")
            raise ConfigError(f"{prefix}._target_={target!r} with {setting}: {rest}") from None


def target_signature(prefix: str, target: str) -> inspect.Signature:
    try:
        return signature_of(target)
    except NotFound as err:
        raise bad(
            f"{prefix.removesuffix('.kwargs')}._target_",
            target,
            f"cannot be imported ({err})",
            "an importable class or function (PYTHONPATH=. for a module in this directory)",
        ) from None


def bind(
    prefix: str,
    arguments: dict[str, Any],
    what: str,
    signature: inspect.Signature,
    given: set[str] | None = None,
) -> None:
    """Every key of `arguments` is an argument of `what` (a target or a model) that frugal
    does not pass itself. With `given` (the keys set besides `arguments`), every argument
    without a default must be set."""
    passed = PASSED_BY_FRUGAL.get(prefix, {})
    params = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = [
        name
        for name, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and name not in passed
    ]
    for name, value in arguments.items():
        if name in passed:
            raise bad(
                f"{prefix}.{name}", value, f"set by frugal from {passed[name]}", "no such key"
            )
        if name not in params and not takes_any:
            expected = (
                f"one of {few(accepted)}" if accepted else f"no arguments ({what} takes none)"
            )
            raise bad(f"{prefix}.{name}", value, f"not an argument of {what}", expected)
    if given is None:
        return
    for name in accepted:
        if params[name].default is inspect.Parameter.empty and name not in {*arguments, *given}:
            raise bad(f"{prefix}.{name}", ..., f"missing, {what} needs it", "a value")


def few(names: list[str], most: int = 12) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "") if names else "(none)"


def check_model(node: Any) -> None:
    if isinstance(node, dict) and node.get("_target_") is not None:
        validated(schema.OwnModel, node, "model")
        return  # imported and bound by the registry's own check (check_contents)
    model = validated(schema.Model, node, "model")
    signature = model_builder_signature(model.name)
    if signature is None:
        raise bad(
            "model.name",
            model.name,
            "not a registered model",
            f"one of {few(model_names(), 30)}, or model=own model._target_=pkg.module.Net",
        )
    kwargs = model.kwargs or {}
    bind("model.kwargs", kwargs, f"model {model.name}", signature)
    validated(_kwargs_schema(model.name, signature), kwargs, "model.kwargs")


def _kwargs_schema(name: str, signature: inspect.Signature) -> type[BaseModel]:
    """A pydantic model of the builder's keyword arguments: frugal's shared ranges
    (`schema.MODEL_KWARGS`) where the name is known, else the annotation's type."""
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.name in PASSED_BY_FRUGAL["model.kwargs"] or param.kind in (
            inspect.Parameter.VAR_KEYWORD,
            inspect.Parameter.VAR_POSITIONAL,
        ):
            continue
        if param.name in schema.MODEL_KWARGS:
            kind, expected, constraints = schema.MODEL_KWARGS[param.name]
        else:
            kind, expected = schema.ANNOTATIONS.get(str(param.annotation), (Any, "a value"))
            constraints = {}
        if param.default is None and kind is not Any:
            kind = kind | None
        fields[param.name] = (kind, schema.key(None, expected, **constraints))
    extra = (
        "allow"
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
        else "forbid"
    )
    return create_model(  # type: ignore[call-overload]
        f"{name}_kwargs",
        __config__=ConfigDict(strict=True, extra=extra, allow_inf_nan=False),
        **fields,
    )


def check_compress(node: Any) -> None:
    if not isinstance(node, dict):
        raise bad("compress", node, "not a group of keys", "compress=svd or compress=prune")
    method = node.get("method")
    if method not in schema_training.COMPRESSION:
        raise bad(
            "compress.method",
            method,
            "not an accepted value",
            " or ".join(schema_training.COMPRESSION),
        )
    validated(schema_training.COMPRESSION[method], node, "compress")


def check_trainer(node: Any) -> None:
    """Typed as Lightning's Trainer whatever the `_target_` (a subclass takes the same
    arguments); another target must import, and keys beyond those typed bind to it."""
    check_target("trainer", node, schema_training.TRAINERS, schema_training.Trainer)


def check_entries(group: str, node: Any, known: dict[str, type[schema.TargetNode]]) -> None:
    """A keyed dict of nodes (`callbacks.<name>`, `logger.<name>`); `<name>: null` is off."""
    if node is None:
        return
    if not isinstance(node, dict):
        raise bad(group, node, "not a group of keys", group_form(group))
    for name, entry in node.items():
        if entry is None:
            continue
        if not isinstance(entry, dict) or "_target_" not in entry:
            raise bad(
                f"{group}.{name}", entry, "not a node to build", "null, or a node with _target_"
            )
        target = entry["_target_"]
        if isinstance(target, str) and target and target not in known:
            check_kind(f"{group}.{name}", target, *ENTRY_BASES[group])
        check_target(f"{group}.{name}", entry, known, schema.TargetNode)


def check_kind(prefix: str, target: str, base: str, expected: str) -> None:
    """`target` is a class deriving from `base` (Lightning's Callback or Logger): Hydra would
    call anything else, a function such as os.system included, with the node's keys."""
    target_signature(prefix, target)  # importable, else its own line
    from hydra.utils import get_object

    try:
        found = get_object(target)
    except Exception as err:  # the user's module may fail in any way while importing
        raise bad(f"{prefix}._target_", target, f"cannot be imported ({err})", expected) from None
    lineage = inspect.getmro(found) if inspect.isclass(found) else ()
    if base not in {f"{cls.__module__}.{cls.__qualname__}" for cls in lineage}:
        if inspect.isclass(found):
            what = "a class"
        else:
            what = "a function" if callable(found) else f"a {type(found).__name__}"
        wanted = f"Lightning {base.rpartition('.')[2]}"
        raise bad(f"{prefix}._target_", target, f"{what}, not a {wanted} class", expected)
