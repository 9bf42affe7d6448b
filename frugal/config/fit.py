"""The model against the data and this machine, before anything is allocated: built on the meta
device for the data's shape (a depth the input cannot take), its footprint weighed against the
memory available, and the epoch's batches against the validation interval. The models (torch)
are imported where a model is built: the command line's quick checks run without them."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from frugal.config.hardware import on_gpu, processes_here
from frugal.config.sources import file_splits, known_shape, train_size
from frugal.config.targets import check_model
from frugal.core.errors import bad
from frugal.core.machine import available_memory_bytes
from frugal.core.units import format_amount


def check_model_size(node: dict[str, Any]) -> None:
    """Another size of a size search's ladder, once the first size passed every check: what
    depends on the model's size only (its arguments, that it can be built for the data, the
    memory it needs)."""
    check_model(node["model"])
    splits = file_splits(node)
    cfg = OmegaConf.create(node)
    check_model_contents(cfg, node, known_shape(node, splits), train_size(node, splits))


def check_model_contents(
    cfg: DictConfig, node: dict[str, Any], shape: tuple | None, samples: int | None
) -> Any:
    """The model for the data's `shape`: the user's imported and built once (it runs on
    zeros), frugal's built on the meta device (a depth the input cannot take), and either's
    memory. Returns the model built, None where it could not be built here."""
    if node["model"].get("_target_") is not None:
        from frugal.models.registry import build_model, check_model_config  # torch

        check_model_config(cfg.model)
        if shape is None:
            return None
        check_model_memory(node, shape, samples)
        return build_model(cfg.model, *shape)
    backbone = check_model_fits(node["model"], shape)
    if shape is not None:
        check_model_memory(node, shape, samples)
    return backbone


def check_model_memory(
    node: dict[str, Any], shape: tuple[tuple[int, ...], int], samples: int | None
) -> None:
    """The model, trained on batches of `data.batch_size` and served on batches of
    `inference.serving_batch`, fits in the memory available: its footprint is measured on the
    meta device. The line names the setting that made it too large: the batch where the
    batch's activations outweigh the model, else the model argument set furthest above its
    default (`registry.grown_setting`)."""
    from frugal.models import registry  # torch; registers frugal's models
    from frugal.models.accounting import model_footprint

    input_shape, classes = shape
    size = model_footprint(node["model"], input_shape, classes)
    if size is None:
        return
    trainer, data = node["trainer"], node["data"]
    model_setting = registry.grown_setting(node["model"])
    demands = []  # (bytes, what for, the setting named)
    if on_gpu(trainer):  # the host builds the weights; the rest lives on the device
        demands.append((size.serving_bytes(0, 0) * processes_here(trainer), "hold", model_setting))
    else:
        states = optimizer_states(node["optimizer"])
        batch = data["batch_size"] if samples is None else min(data["batch_size"], samples)
        held = size.training_bytes(0, states)
        per_batch = size.training_bytes(batch, states) - held
        named = ("data.batch_size", data["batch_size"]) if per_batch > held else model_setting
        demands.append(((held + per_batch) * processes_here(trainer), "train", named))
        inference = node.get("inference") or {}
        if inference.get("enabled", True):
            serving = inference.get("serving_batch", 256)
            held = size.serving_bytes(0, 0)
            per_batch = size.serving_bytes(serving, math.prod(input_shape)) - held
            named = ("inference.serving_batch", serving) if per_batch > held else model_setting
            demands.append((held + per_batch, "serve", named))
    available = available_memory_bytes()
    for needed, purpose, (key, value) in demands:
        if needed > available:
            raise bad(
                key,
                value,
                f"the model ({size.parameters:,} parameters) needs about "
                f"{format_amount(needed, 'B')} to {purpose}, more than the "
                f"{format_amount(available, 'B')} of memory available",
                "a smaller model or batch, one this machine can hold",
            )


def optimizer_states(optimizer: dict[str, Any]) -> int:
    """Tensors the optimizer keeps per weight: Adam's two moments, SGD's momentum."""
    target = str(optimizer.get("_target_", ""))
    if target.endswith("SGD"):
        return 1 if optimizer.get("momentum") else 0
    return 2  # Adam, AdamW, and any other: the common upper bound


def check_batches(node: dict[str, Any], samples: int | None) -> None:
    """Lightning refuses a `val_check_interval` longer than an epoch, and trains nothing on
    `limit_train_batches` that rounds to 0 batches: found here, not after start-up."""
    trainer = node["trainer"]
    if samples is None or trainer.get("fast_dev_run") or trainer.get("overfit_batches"):
        return
    devices = trainer.get("devices")
    if isinstance(devices, list):
        ranks = len(devices)
    else:
        ranks = devices if isinstance(devices, int) and devices >= 1 else 1
    per_rank = samples // max(ranks * (trainer.get("num_nodes") or 1), 1)
    batch_size = node["data"]["batch_size"]
    batches = per_rank // batch_size if per_rank >= batch_size else 1  # full batches only
    limit = trainer.get("limit_train_batches")
    if isinstance(limit, float):
        batches = int(batches * limit)
        if batches == 0:
            raise bad(
                "trainer.limit_train_batches",
                limit,
                f"leaves no batch of the {per_rank // batch_size or 1} in an epoch",
                "a larger fraction, or a whole number of batches >= 1",
            )
    elif isinstance(limit, int):
        batches = min(batches, limit)
    interval = trainer.get("val_check_interval")
    if (
        isinstance(interval, int)
        and not isinstance(interval, bool)
        and trainer.get("check_val_every_n_epoch") is not None
        and interval > batches
    ):
        raise bad(
            "trainer.val_check_interval",
            interval,
            f"longer than an epoch ({batches} training batches of {batch_size})",
            f"a whole number of steps <= {batches}, a fraction of an epoch in (0, 1], or "
            "trainer.check_val_every_n_epoch=null to count steps across epochs",
        )


def check_model_fits(model: dict[str, Any], shape: tuple | None) -> Any:
    """Build the model for the data's shape on the meta device (no memory, no arithmetic): a
    depth the input cannot take, or a 2D CNN on flat features, is found before any work.
    Returns the (meta) model, None where it could not be built here."""
    if shape is None:
        return None
    import torch

    from frugal.models import create_model  # torch, as the import above
    from frugal.models.accounting import PROBE_DEPTH

    input_shape, classes = shape
    kwargs = dict(model.get("kwargs") or {})
    deep = isinstance(kwargs.get("depth"), int) and kwargs["depth"] > PROBE_DEPTH
    if deep:  # one layer past the probe finds a depth the input cannot take, in no time
        kwargs["depth"] = PROBE_DEPTH + 1
    try:
        with torch.device("meta"):
            built = create_model(model["name"], input_shape, classes, **kwargs)
            return None if deep else built  # not the configured model: nothing to compare
    except ValueError as err:
        raise bad(
            "model",
            model["name"],
            f"cannot be built for data of shape {tuple(input_shape)} ({str(err).splitlines()[0]})",
            "a model and model.kwargs that fit the data",
        ) from None
    except Exception:  # an operation the meta device lacks: the real build will tell
        return None
