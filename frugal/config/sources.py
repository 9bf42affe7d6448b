"""The data group: frugal's sources (their arguments, the files they read, what they hold) or a
DataModule of your own, and what is known of the data before it is built: its task, one
sample's shape and classes, and how many samples train."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from frugal.config import schema
from frugal.config.resolve import validated
from frugal.config.targets import bind, check_target, few, target_signature
from frugal.core.errors import bad
from frugal.core.inputs import regular_file
from frugal.data import sizes

FILE_FORM = "a .npz with arrays x, y (optionally x_test, y_test) or a .csv of numbers"  # files.py
GENERIC_DATA = ("synthetic", "files")  # sources whose shape is the user's: any model may fit
CACHE_ENV = "FRUGAL_CACHE_DIR"  # conf/paths/default.yaml: where generated datasets are cached


def check_paths(node: Any) -> None:
    validated(schema.Paths, node, "paths")
    check_dir_path("paths.cache_dir", node["cache_dir"])


def check_dir_path(key: str, value: str) -> None:
    """A directory frugal creates where missing (a cache) has no file standing in its way.
    Checked, never created, here; one that cannot be written only goes without the cache."""
    path = Path(value).expanduser()
    env = CACHE_ENV if os.environ.get(CACHE_ENV) == value else None
    source = f" (set by {env})" if env else ""
    expected = f"{env} naming a directory, or unset" if env else "a directory path"
    for part in (path, *path.parents):
        try:
            if not part.exists():
                continue
        except OSError as err:
            raise bad(key, value, f"cannot be read{source} ({err.strerror})", expected) from None
        if not part.is_dir():
            where = "is a file" if part == path else f"lies under {part}, which is a file"
            raise bad(key, value, where + source, expected)
        return


def check_data(node: Any, copies: int = 1) -> None:
    """The data group; `copies`: processes on this machine that each hold the data."""
    if isinstance(node, dict) and "_target_" in node and "source" not in node:
        own = validated(schema.OwnData, node, "data")
        arguments = own.kwargs or {}
        bind("data.kwargs", arguments, own.target, target_signature("data", own.target))
        return
    validated(schema.Data, node, "data")
    check_target("data.source", node["source"], schema.SOURCES, schema.TargetNode)
    source = node["source"]
    if data_task(node) == "files":  # a missing file or a FIFO: found before torch is imported
        for name in ("path", "test_path"):
            if source.get(name) is not None:
                key = f"data.source.{name}"
                path = regular_file(source[name], key, FILE_FORM)
                sizes.check_file(path, key, source[name], copies)  # headers only
    if data_task(node) == "synthetic":
        sizes.check_synthetic(source, copies)
    if data_task(node) == "mnist1d" and source.get("cache_dir") is not None:
        check_dir_path("data.source.cache_dir", str(source["cache_dir"]))
    if data_task(node) == "mnist1d" and dataset_args(node["source"]):
        from mnist1d.data import get_dataset_args  # its generator's arguments, only when set

        defaults = vars(get_dataset_args())
        accepted = sorted(defaults)
        for name in sorted(dataset_args(node["source"])):
            if name not in accepted:
                raise bad(
                    f"data.source.{name}",
                    node["source"][name],
                    "not an mnist1d dataset argument",
                    f"one of {few(accepted)}",
                )
            check_like(f"data.source.{name}", node["source"][name], defaults[name])
        sizes.check_mnist1d(node["source"], copies)


def check_like(key: str, value: Any, default: Any) -> None:
    """`value` has the kind of `default` (a generator argument typed only by its default):
    true/false, a whole number >= 0, a finite number >= 0, text, or a list of such."""

    def fits(value: Any, default: Any) -> bool:
        if isinstance(default, bool) or isinstance(value, bool):
            return isinstance(value, bool) and isinstance(default, bool)
        if isinstance(default, int):
            return isinstance(value, int) and value >= 0
        if isinstance(default, float):
            return isinstance(value, int | float) and math.isfinite(value) and value >= 0
        if isinstance(default, list):
            return (
                isinstance(value, list)
                and len(value) == len(default)
                and all(fits(v, d) for v, d in zip(value, default, strict=True))
            )
        return isinstance(value, type(default))

    if not fits(value, default):
        kinds = {bool: "true or false", int: "a whole number >= 0", float: "a number >= 0"}
        kind = kinds.get(type(default))
        expected = f"{kind}, e.g. {default!r}" if kind else f"a value like {default!r}"
        raise bad(key, value, "not accepted", expected)


def data_task(data: dict[str, Any]) -> str | None:
    target = (data.get("source") or {}).get("_target_", "")
    return target.rpartition(".")[2] if target.startswith("frugal.data.sources.") else None


STATIC_SHAPES = {"mnist1d": ((40,), 10), "digits": ((1, 8, 8), 10)}  # (one sample, classes)


def file_splits(node: dict[str, Any]) -> Any:
    """A files source's splits (read from its files); None for any other data."""
    if data_task(node["data"]) != "files":
        return None
    from frugal.data.files import files  # torch and Lightning: not on the quick command line path

    return files(**{k: v for k, v in node["data"]["source"].items() if k != "_target_"})


def known_shape(node: dict[str, Any], splits: Any) -> tuple[tuple[int, ...], int] | None:
    """(one sample's shape, classes) where known before the data is built."""
    if splits is not None:
        return splits.input_shape, splits.num_classes
    return data_shape(node["data"])


def train_size(node: dict[str, Any], splits: Any) -> int | None:
    """Training samples of frugal's own sources (as `frugal.data.sources` splits them), known
    without generating them; None where only building the data would tell."""
    if splits is not None:
        return len(splits.y_train)
    task, source = data_task(node["data"]), node["data"].get("source") or {}
    if task == "synthetic":
        total = source.get("num_samples", 512)
        return total - 2 * max(total // 8, 1)
    if task == "mnist1d" and not dataset_args(source):
        return schema.MNIST1D_TRAIN - source.get("val_size", 400)
    if task == "digits":
        return schema.DIGITS_IMAGES - source.get("val_size", 180) - source.get("test_size", 360)
    return None


def dataset_args(source: dict[str, Any]) -> set[str]:
    """Keys beyond a source's typed ones (mnist1d's generator arguments change its shape)."""
    model = schema.SOURCES.get(source.get("_target_", ""))
    typed = {info.alias or name for name, info in model.model_fields.items()} if model else set()
    return set(source) - typed - set(schema.HYDRA_KEYS)


def data_shape(data: dict[str, Any]) -> tuple[tuple[int, ...], int] | None:
    """(one sample's shape, classes) of frugal's own sources, known without building them."""
    task, source = data_task(data), data.get("source") or {}
    if task == "synthetic":
        return (source.get("features", 16),), source.get("num_classes", 4)
    if task in STATIC_SHAPES and not dataset_args(source):
        return STATIC_SHAPES[task]
    return None
