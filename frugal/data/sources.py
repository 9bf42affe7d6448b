"""Dataset loaders, each returning `Splits`. Nothing here downloads: MNIST-1D is generated
locally by the `mnist1d` package, digits ships with scikit-learn, user data is read from disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from frugal.data.arrays import Splits, split_validation

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

    args = get_dataset_args()
    for key, value in dataset_args.items():
        if not hasattr(args, key):
            raise ValueError(f"data.source.{key}: not an mnist1d dataset argument")
        setattr(args, key, value)
    data = _cached(cache_dir, "mnist1d", vars(args), lambda: make_dataset(args))
    x_train, y_train, x_val, y_val = split_validation(data["x"], data["y"], val_size, seed)
    return Splits(x_train, y_train, x_val, y_val, data["x_test"], data["y_test"], 10, "mnist1d")


def digits(val_size: int = 180, test_size: int = 360, seed: int = 0) -> Splits:
    """scikit-learn's 8x8 digits (1,797 images), as (1, 8, 8) images scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_rest, y_rest, x_test, y_test = split_validation(x, y, test_size, seed + 1)
    x_train, y_train, x_val, y_val = split_validation(x_rest, y_rest, val_size, seed)
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, 10, "digits")


def synthetic(
    num_samples: int = 512, features: int = 16, num_classes: int = 4, seed: int = 0
) -> Splits:
    """A small, learnable task for tests: Gaussian clusters, one per class."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2.0, size=(num_classes, features))
    y = rng.integers(0, num_classes, size=num_samples)
    x = (centers[y] + rng.normal(0, 1.0, size=(num_samples, features))).astype(np.float32)
    n_test = max(num_samples // 8, 1)
    x_rest, y_rest, x_test, y_test = split_validation(x, y, n_test, seed + 1)
    x_train, y_train, x_val, y_val = split_validation(x_rest, y_rest, n_test, seed)
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, num_classes, "synthetic")


def files(
    path: str,
    test_path: str | None = None,
    val_size: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    label_column: str | int = -1,
) -> Splits:
    """The user's own data: `.npz` with arrays `x`, `y` (optionally `x_test`, `y_test`) or a
    `.csv` of numeric features with a label column (default: the last). Missing splits are
    carved out reproducibly.
    """
    x, y, x_test, y_test = _read_table(Path(path), label_column)
    if test_path is not None:
        x_test, y_test, _, _ = _read_table(Path(test_path), label_column)
    if x_test is None:
        x, y, x_test, y_test = split_validation(x, y, max(int(len(x) * test_fraction), 1), seed + 1)
    n_val = val_size or max(int(len(x) * val_fraction), 1)
    x_train, y_train, x_val, y_val = split_validation(x, y, n_val, seed)
    classes = np.unique(np.concatenate([y, y_test]))
    if classes.min() < 0 or not np.array_equal(classes, np.arange(classes.max() + 1)):
        raise ValueError(f"data.source.path={path}: labels must be integers 0..K-1, got {classes}")
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, int(classes.max()) + 1, "files")


def _read_table(
    path: Path, label_column: str | int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    if not path.is_file():
        raise ValueError(f"data.source.path={path}: no such file")
    if path.suffix == ".npz":
        with np.load(path) as arrays:
            missing = {"x", "y"} - set(arrays.files)
            if missing:
                raise ValueError(f"data.source.path={path}: missing arrays {sorted(missing)}")
            x, y = arrays["x"].astype(np.float32), arrays["y"].astype(np.int64)
            has_test = {"x_test", "y_test"} <= set(arrays.files)
            x_test = arrays["x_test"].astype(np.float32) if has_test else None
            y_test = arrays["y_test"].astype(np.int64) if has_test else None
        return x, y, x_test, y_test
    if path.suffix == ".csv":
        header = path.read_text().splitlines()[0].split(",")
        has_header = any(not _is_number(cell) for cell in header)
        table = np.loadtxt(path, delimiter=",", skiprows=int(has_header), ndmin=2)
        col = header.index(label_column) if isinstance(label_column, str) else int(label_column)
        y = table[:, col]
        if not np.all(y == np.round(y)):
            raise ValueError(f"data.source.path={path}: label column {label_column} is not integer")
        return np.delete(table, col, axis=1).astype(np.float32), y.astype(np.int64), None, None
    raise ValueError(f"data.source.path={path}: expected a .npz or .csv file")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # atomic: concurrent sweep jobs never read a half-written cache
    log.info("cached %s arrays at %s", name, path)
    return arrays
