"""Dataset loaders, each returning `Splits`. Nothing here downloads: MNIST-1D is generated
locally by the `mnist1d` package, digits ships with scikit-learn, user data is read from disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from frugal.core.errors import bad
from frugal.data.arrays import Splits, split_validation
from frugal.data.files import files as files
from frugal.data.sizes import check_mnist1d, check_synthetic

log = logging.getLogger(__name__)


def mnist1d(
    val_size: int = 400, seed: int = 0, cache_dir: str | None = None, **dataset_args: object
) -> Splits:
    """MNIST-1D (Greydanus 2020): 4,000 train / 1,000 test sequences of length 40, 10 classes.

    The validation split is carved from the 4,000 training examples; the 1,000 test examples
    are kept for test. Generation takes ~2 s, so the arrays are cached under `cache_dir`.
    `dataset_args` override `mnist1d.data.get_dataset_args()` fields (e.g. `num_samples`).
    """
    from mnist1d.data import get_dataset_args, make_dataset

    _whole("seed", seed, 0)
    args = get_dataset_args()
    for key, value in dataset_args.items():
        if not hasattr(args, key):
            raise bad(
                f"data.source.{key}",
                value,
                "not an mnist1d dataset argument",
                f"one of {', '.join(sorted(vars(args)))}",
            )
        setattr(args, key, value)
    check_mnist1d(vars(args))
    data = _cached(cache_dir, "mnist1d", vars(args), lambda: make_dataset(args))
    x_train, y_train, x_val, y_val = split_validation(data["x"], data["y"], val_size, seed)
    return Splits(x_train, y_train, x_val, y_val, data["x_test"], data["y_test"], 10, "mnist1d")


def digits(val_size: int = 180, test_size: int = 360, seed: int = 0) -> Splits:
    """scikit-learn's 8x8 digits (1,797 images), as (1, 8, 8) images scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    _whole("seed", seed, 0)
    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_rest, y_rest, x_test, y_test = split_validation(
        x, y, test_size, seed + 1, "data.source.test_size"
    )
    x_train, y_train, x_val, y_val = split_validation(x_rest, y_rest, val_size, seed)
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, 10, "digits")


def synthetic(
    num_samples: int = 512, features: int = 16, num_classes: int = 4, seed: int = 0
) -> Splits:
    """A small, learnable task for tests: Gaussian clusters, one per class."""
    _whole("num_samples", num_samples, 3)  # one test, one validation, one training sample
    _whole("features", features, 1)
    _whole("num_classes", num_classes, 2)
    _whole("seed", seed, 0)
    check_synthetic({"num_samples": num_samples, "features": features, "num_classes": num_classes})
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2.0, size=(num_classes, features))
    y = rng.integers(0, num_classes, size=num_samples)
    x = (centers[y] + rng.normal(0, 1.0, size=(num_samples, features))).astype(np.float32)
    n_test = max(num_samples // 8, 1)
    x_rest, y_rest, x_test, y_test = split_validation(x, y, n_test, seed + 1)
    x_train, y_train, x_val, y_val = split_validation(x_rest, y_rest, n_test, seed)
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, num_classes, "synthetic")


def _whole(key: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise bad(f"data.source.{key}", value, "", f"a whole number >= {minimum}")


def _cached(cache_dir: str | None, name: str, args: dict, make) -> dict:
    """Load generated arrays from `cache_dir`, keyed by the generator's arguments."""
    if cache_dir is None:
        return make()
    key = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = Path(cache_dir).expanduser() / f"{name}-{key}.npz"
    if path.is_file():
        with np.load(path) as arrays:
            return {k: arrays[k] for k in arrays.files}
    data = make()
    arrays = {k: np.asarray(v) for k, v in data.items() if k in ("x", "y", "x_test", "y_test")}
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        tmp.replace(path)  # atomic: concurrent sweep jobs never read a half-written cache
    except OSError as err:  # a cache is a saving, never a reason to fail: the config check
        log.warning("%s arrays not cached at %s: %s", name, path, err)  # refuses a bad path
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return arrays
    log.info("cached %s arrays at %s", name, path)
    return arrays
