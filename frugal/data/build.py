"""From the `data` config to a LightningDataModule, and what result.json says about it.

Two kinds of `data` config:
- a *source* (`data.source._target_`, e.g. `frugal.data.sources.files`): a function returning
  `Splits`, served by `ArrayDataModule`;
- an own LightningDataModule (`data=own data._target_=pkg.module.MyData`), built as
  `MyData(batch_size=data.batch_size, **data.kwargs)`.

Either way the module handed to the pipeline states `input_shape` (one sample) and
`num_classes`, which the model is built for.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
from omegaconf import DictConfig, OmegaConf

from frugal.core.errors import bad, first_line, setting
from frugal.core.inputs import locate
from frugal.data.arrays import ArrayDataModule, Splits
from frugal.data.files import files

OWN_DATA_FORM = "a LightningDataModule class MyData(batch_size, **kwargs)"
HASH_CHARS = 16  # of a sha256 hex digest: plenty to tell datasets apart


def check_source(data_cfg: DictConfig) -> None:
    """Checks that need no training objects, run before anything is built: the source or the
    DataModule exists and takes the configured arguments; a `data=files` file is read and
    checked in full (the arrays are kept for `build_datamodule`). Raises ConfigError."""
    if _is_own(data_cfg):
        _own_class(data_cfg)
        return
    source, kwargs = _source(data_cfg)
    if source is files:
        files(**kwargs)


def build_datamodule(data_cfg: DictConfig) -> L.LightningDataModule:
    """The DataModule `data_cfg` describes, with `input_shape` and `num_classes` attributes."""
    if _is_own(data_cfg):
        return _own_datamodule(data_cfg)
    source, kwargs = _source(data_cfg)
    return ArrayDataModule(source(**kwargs), data_cfg.batch_size)


def describe_data(datamodule: L.LightningDataModule, data_cfg: DictConfig) -> dict[str, Any]:
    """result.json's `data`: `name`, split sizes and `hash`, which tells apart datasets that
    share a name (two CSV files, another split or standardisation). For arrays, `hash` covers
    every split's bytes; an own DataModule's data is not seen as arrays, so its hash covers its
    configuration (`cfg:` prefix)."""
    splits = getattr(datamodule, "splits", None)
    if isinstance(splits, Splits):
        return {
            "name": splits.name,
            "train": len(splits.y_train),
            "val": len(splits.y_val),
            "test": len(splits.y_test),
            "hash": splits_hash(splits),
        }
    config = OmegaConf.to_container(data_cfg, resolve=True)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    return {
        "name": str(data_cfg.get("name") or data_cfg.get("_target_")),
        "train": _size(datamodule.train_dataloader),
        "val": _size(datamodule.val_dataloader),
        "test": _size(datamodule.test_dataloader),
        "hash": "cfg:" + digest.hexdigest()[:HASH_CHARS],
    }


def splits_hash(splits: Splits) -> str:
    """sha256 of every split's arrays (shapes, dtypes and bytes), shortened."""
    digest = hashlib.sha256()
    for array in (splits.x_train, splits.y_train, splits.x_val, splits.y_val):
        _update(digest, array)
    for array in (splits.x_test, splits.y_test):
        _update(digest, array)
    return digest.hexdigest()[:HASH_CHARS]


def _update(digest: Any, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())


def _is_own(data_cfg: DictConfig) -> bool:
    """An own DataModule (`_target_` set, or still to be set: `???`)."""
    return "_target_" in data_cfg or OmegaConf.is_missing(data_cfg, "_target_")


def _source(data_cfg: DictConfig) -> tuple[Callable[..., Splits], dict[str, Any]]:
    """The source function and its keyword arguments, checked against its signature."""
    node = data_cfg.get("source")
    if node is None or "_target_" not in node:
        raise bad(
            "data.source=null",
            ...,
            "no data source",
            "data=<one of conf/data> or data=own data._target_=pkg.module.MyData",
        )
    for key in node:
        if OmegaConf.is_missing(node, key):
            raise bad(f"data.source.{key}=???", ..., "not set", "a value for it")
    kwargs = OmegaConf.to_container(node, resolve=True)
    target = kwargs.pop("_target_")
    source = locate(target, "data.source._target_", "a function returning frugal Splits")
    _check_arguments(source, kwargs, "data.source", setting("data.source._target_", target))
    return source, kwargs


def _own_class(data_cfg: DictConfig) -> type[L.LightningDataModule]:
    if "source" in data_cfg:
        raise bad(
            "data._target_",
            data_cfg._target_,
            "a built-in dataset takes no _target_",
            f"data=own data._target_={data_cfg._target_}",
        )
    if OmegaConf.is_missing(data_cfg, "_target_"):
        raise bad("data._target_=???", ..., "not set", OWN_DATA_FORM)
    target = data_cfg._target_
    cls = locate(target, "data._target_", OWN_DATA_FORM)
    if not (inspect.isclass(cls) and issubclass(cls, L.LightningDataModule)):
        raise bad("data._target_", target, "is not a LightningDataModule", OWN_DATA_FORM)
    kwargs = {"batch_size": data_cfg.get("batch_size"), **_own_kwargs(data_cfg)}
    _check_arguments(cls, kwargs, "data.kwargs", setting("data._target_", target))
    return cls


def _own_kwargs(data_cfg: DictConfig) -> dict[str, Any]:
    node = data_cfg.get("kwargs")
    kwargs = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, dict):
        raise bad("data.kwargs", kwargs, "", "a mapping of keyword arguments")
    return kwargs


def _own_datamodule(data_cfg: DictConfig) -> L.LightningDataModule:
    cls = _own_class(data_cfg)
    where = setting("data._target_", data_cfg._target_)
    try:
        datamodule = cls(batch_size=data_cfg.batch_size, **_own_kwargs(data_cfg))
    except Exception as err:
        raise bad(where, ..., f"cannot be built ({first_line(err)})", "valid data.kwargs") from err
    if getattr(datamodule, "input_shape", None) is None:
        datamodule.input_shape = _first_batch_shape(datamodule, where)
    if getattr(datamodule, "num_classes", None) is None:
        num_classes = data_cfg.get("num_classes")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise bad(
                "data.num_classes",
                num_classes,
                f"{where} states no num_classes",
                "data.num_classes=K (K >= 2) or a num_classes attribute",
            )
        datamodule.num_classes = num_classes
    datamodule.input_shape = tuple(int(n) for n in datamodule.input_shape)
    return datamodule


def _first_batch_shape(datamodule: L.LightningDataModule, where: str) -> tuple[int, ...]:
    """One sample's shape, from the first training batch (costs one `setup("fit")`)."""
    try:
        datamodule.prepare_data()
        datamodule.setup("fit")
        x = next(iter(datamodule.train_dataloader()))[0]
    except Exception as err:
        raise bad(
            where,
            ...,
            f"no first training batch to read the input shape from ({first_line(err)})",
            "an input_shape attribute or batches (x, y)",
        ) from err
    return tuple(x.shape[1:])


def _check_arguments(
    fn: Callable[..., Any], kwargs: dict[str, Any], prefix: str, where: str
) -> None:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for key, value in kwargs.items():
        if key not in params:
            accepted = ", ".join(k for k in params if k != "self")
            raise bad(f"{prefix}.{key}", value, f"not an argument of {where}", f"one of {accepted}")


def _size(loader: Callable[[], Any]) -> int | None:
    """Samples in a DataModule's split; None where it cannot tell."""
    try:
        return len(loader().dataset)
    except Exception:  # a split the module does not have, or an unsized dataset
        return None
