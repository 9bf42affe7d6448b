"""The user's own data (`data=files`): read, check, split and standardise a `.npz` or `.csv`.

Everything a file can get wrong is found before training starts and reported as one line naming
`data.source.path` (or `test_path`): missing, not a regular file (FIFOs and devices are never
opened), unsupported, empty, text where numbers belong, NaN or infinity, ragged rows, labels
that are not the integers 0..K-1 with K >= 2, too few rows for the splits, an `.npz` member
that is not a `.npy` array, arrays larger than the memory available (from the headers, before
anything is loaded: `frugal.data.sizes`). A file is read once per process:
`frugal.pipeline.validate` reads it to check it, `train` gets the same arrays.
"""

from __future__ import annotations

import csv
import functools
import zipfile
import zlib
from pathlib import Path

import numpy as np

from frugal.core.errors import ConfigError, bad, first_line, setting
from frugal.core.inputs import regular_file
from frugal.data.arrays import Splits, split_validation
from frugal.data.sizes import check_file

EXPECTED_FILE = "a .npz with arrays x, y (optionally x_test, y_test) or a .csv of numbers"
EXPECTED_LABELS = "integer labels 0..K-1 with K >= 2"
MAX_LABEL = 2**31  # no larger label fits an int64 cast safely or a classifier's output layer
Table = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]  # x, y, x_test, y_test


def files(
    path: str,
    test_path: str | None = None,
    val_size: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    label_column: str | int = -1,
    standardize: bool = True,
) -> Splits:
    """The user's own data: `.npz` with arrays `x` (or `X`), `y` (optionally `x_test`,
    `y_test`) or a `.csv` of numeric features with a label column (default: the last; a header
    row is detected). Missing splits are carved out reproducibly (`test_fraction`, then
    `val_size` or `val_fraction` of the rest). `standardize`: every feature is shifted and
    scaled to mean 0, std 1 with statistics of the training split only (constant features are
    only centred).
    """
    _check_options(
        val_size, val_fraction, test_fraction, seed, label_column, standardize, test_path is None
    )
    x, y, x_test, y_test = read_table(path, "data.source.path", label_column)
    if test_path is not None:
        x_test, y_test, _, _ = read_table(test_path, "data.source.test_path", label_column)
        if x_test.shape[1:] != x.shape[1:]:
            raise bad(
                "data.source.test_path",
                test_path,
                f"samples of shape {x_test.shape[1:]}, the training file's are {x.shape[1:]}",
                "the same features",
            )
    num_classes = _num_classes(path, y if y_test is None else np.concatenate([y, y_test]))
    n_test = 0 if x_test is not None else max(int(len(x) * test_fraction), 1)
    n_val = val_size or max(int((len(x) - n_test) * val_fraction), 1)
    if len(x) < n_test + n_val + 1:
        split = f"{n_test} test, {n_val} validation" if n_test else f"{n_val} validation"
        raise bad(
            "data.source.path",
            path,
            f"{len(x)} rows cannot hold {split} and training rows",
            f"at least {n_test + n_val + 1} rows (or smaller splits)",
        )
    if n_test:
        x, y, x_test, y_test = split_validation(x, y, n_test, seed + 1, "data.source.test_fraction")
    x_train, y_train, x_val, y_val = split_validation(x, y, n_val, seed, "data.source.val_size")
    if standardize:
        x_train, x_val, x_test = standardized(x_train, x_val, x_test)
    name = Path(str(path)).name
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, num_classes, name)


def standardized(x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """`x_train` and `others` scaled with the mean and std of `x_train` (per feature)."""
    mean = x_train.mean(axis=0, dtype=np.float64)
    std = x_train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0  # a constant feature is only centred
    return tuple(((x - mean) / std).astype(np.float32) for x in (x_train, *others))


def read_table(value: object, key: str, label_column: str | int = -1) -> Table:
    """(x, y, x_test, y_test) of one file, checked; the same arrays for an unchanged file."""
    path = regular_file(value, key, EXPECTED_FILE)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise bad(
            key,
            value,
            f"unsupported file type {suffix or '(no suffix)'!r}",
            "a .npz or .csv file",
        )
    check_file(path, key, value)  # headers and size only: nothing is allocated on their word
    info = path.stat()
    identity = (str(path.resolve()), info.st_ino, info.st_size, info.st_mtime_ns)
    return _read_table(identity, suffix, key, str(value), label_column)


@functools.lru_cache(maxsize=4)
def _read_table(
    identity: tuple[str, int, int, int], suffix: str, key: str, value: str, label_column: str | int
) -> Table:
    path = Path(identity[0])
    where = setting(key, value)
    if suffix == ".npz":
        x, y, x_test, y_test = _read_npz(path, where)
    else:
        x, y = _read_csv(path, where, label_column)
        x_test = y_test = None
    for name, features, labels in (("x", x, y), ("x_test", x_test, y_test)):
        if features is not None:
            _check_arrays(where, name, features, labels, csv=suffix == ".csv")
    if x_test is not None and x_test.shape[1:] != x.shape[1:]:
        raise bad(
            where,
            ...,
            f"x_test holds samples of shape {x_test.shape[1:]}, x of shape {x.shape[1:]}",
            "the same features in both",
        )
    if x_test is not None:
        x_test, y_test = x_test.astype(np.float32), y_test.astype(np.int64)
    return x.astype(np.float32), y.astype(np.int64), x_test, y_test


def _read_npz(path: Path, where: str) -> Table:
    if not zipfile.is_zipfile(path):
        raise bad(where, ..., "is not a zip archive", "a .npz written by numpy.savez")
    try:
        archive = np.load(path, allow_pickle=False)  # never unpickles: a file cannot run code
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise bad(where, ..., "is not an .npz archive", EXPECTED_FILE)
        with archive:
            names = set(archive.files)
            x_name = "x" if "x" in names else "X"
            if not {x_name, "y"} <= names:
                raise bad(
                    where,
                    ...,
                    f"holds arrays {sorted(names)}",
                    "arrays x and y (optionally x_test, y_test)",
                )
            if ("x_test" in names) != ("y_test" in names):
                raise bad(where, ..., "holds only one of x_test, y_test", "both")
            stored = {"x": x_name, "y": "y", "x_test": "x_test", "y_test": "y_test"}
            arrays = {
                name: _numeric(where, name, archive[member])
                for name, member in stored.items()
                if member in names
            }
    except ConfigError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        raise bad(
            where,
            ...,
            f"not a readable .npz archive ({first_line(err)})",
            EXPECTED_FILE,
        ) from None
    return arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test")


def _numeric(where: str, name: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise bad(where, ..., f"array {name} holds {array.dtype} values", "numbers")
    return array


def _read_csv(path: Path, where: str, label_column: str | int) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a BOM (Excel) is no cell
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise bad(
            where,
            ...,
            f"cannot be read as CSV text ({first_line(err)})",
            EXPECTED_FILE,
        ) from None
    if not rows:
        raise bad(where, ..., "holds no rows", EXPECTED_FILE)
    header = [cell.strip() for cell in rows[0]] if not all(map(_is_number, rows[0])) else None
    if header is not None:
        rows = rows[1:]
    if not rows:
        raise bad(where, ..., "holds a header but no data rows", EXPECTED_FILE)
    width = len(header) if header is not None else len(rows[0])
    for number, row in enumerate(rows, 1):
        if len(row) != width:
            first = "the header" if header is not None else "data row 1"
            raise bad(
                where,
                ...,
                f"data row {number} has {len(row)} columns, {first} has {width}",
                "the same number of columns on every row",
            )
    if width < 2:
        raise bad(where, ..., "has one column", "feature columns and a label column")
    column = _label_index(label_column, header, width)
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        number, cell = _first_text_cell(rows)
        raise bad(
            where,
            ...,
            f"data row {number} holds {cell!r}, not a number",
            "numeric columns",
        ) from None
    return np.delete(table, column, axis=1), table[:, column]  # labels checked by the caller


def _first_text_cell(rows: list[list[str]]) -> tuple[int | str, str]:
    for number, row in enumerate(rows, 1):
        for cell in row:
            if not _is_number(cell):
                return number, cell
    return "?", "?"


def _label_index(label_column: str | int, header: list[str] | None, width: int) -> int:
    if isinstance(label_column, int) and not isinstance(label_column, bool):
        if -width <= label_column < width:
            return label_column % width
        raise bad(
            "data.source.label_column",
            label_column,
            f"the file has {width} columns",
            f"an index in -{width}..{width - 1} or a header name",
        )
    if header is None or str(label_column) not in header:
        names = ", ".join(header) if header is not None else "none: the file has no header row"
        raise bad(
            "data.source.label_column",
            label_column,
            f"no such column (header: {names})",
            "a column index or a header name",
        )
    return header.index(str(label_column))


def _check_arrays(where: str, name: str, x: np.ndarray, y: np.ndarray, csv: bool) -> None:
    y_name = name.replace("x", "y")
    if x.ndim < 2:
        raise bad(where, ..., f"{name} has shape {x.shape}", "(samples, features…)")
    if y.ndim != 1:
        raise bad(where, ..., f"{y_name} has shape {y.shape}", "(samples,)")
    if len(x) != len(y):
        raise bad(
            where,
            ...,
            f"{name} has {len(x)} rows, {y_name} has {len(y)}",
            "as many labels as samples",
        )
    if len(x) == 0 or x[0].size == 0:
        raise bad(where, ..., f"{name} has shape {x.shape}", "samples with features")
    non_finite = np.argwhere(~np.isfinite(x))
    if len(non_finite):
        row = int(non_finite[0][0])
        sample = f"data row {row + 1}" if csv else f"{name}[{row}]"
        raise bad(where, ..., f"{sample} holds {x[tuple(non_finite[0])]}", "finite numbers")
    if y.dtype.kind == "f":
        bad_labels = y[~np.isfinite(y) | (y != np.round(y))]
        if len(bad_labels):
            raise bad(where, ..., f"label {bad_labels[0]:g} is not a whole number", EXPECTED_LABELS)
    if y.min() < 0:
        raise bad(where, ..., f"label {y.min():g} is negative", EXPECTED_LABELS)
    if y.max() >= MAX_LABEL:  # labels 0..K-1 all occur, so K is far below this
        raise bad(where, ..., f"label {y.max():g} is too large", EXPECTED_LABELS)


def _num_classes(path: object, labels: np.ndarray) -> int:
    classes = np.unique(labels).astype(np.int64)
    where = setting("data.source.path", path)
    if len(classes) < 2:
        raise bad(where, ..., f"every label is {classes[0]}", EXPECTED_LABELS)
    if classes[-1] != len(classes) - 1:
        present = set(classes.tolist())
        missing = []  # the first few labels that never occur (never the whole range: 0..2^31)
        for label in range(int(classes[-1]) + 1):
            if label not in present:
                missing.append(label)
                if len(missing) > 5:
                    break
        listed = ", ".join(map(str, missing[:5])) + (", …" if len(missing) > 5 else "")
        raise bad(
            where,
            ...,
            f"labels run from 0 to {classes[-1]} but {listed} never occur",
            EXPECTED_LABELS,
        )
    return len(classes)


def _check_options(
    val_size: object,
    val_fraction: object,
    test_fraction: object,
    seed: object,
    label_column: object,
    standardize: object,
    carves_test: bool = True,
) -> None:
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise bad(f"data.source.{key}", value, "", "a fraction between 0 and 1 (exclusive)")
    if carves_test and val_fraction + test_fraction >= 1:  # with test_path: no test is carved
        raise bad(
            "data.source.val_fraction",
            val_fraction,
            f"with test_fraction={test_fraction} nothing is left to train on",
            "val_fraction + test_fraction < 1",
        )
    for key, value in (("val_size", val_size), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(f"data.source.{key}", value, "", "a whole number >= 0")
    if isinstance(label_column, bool) or not isinstance(label_column, int | str):
        raise bad("data.source.label_column", label_column, "", "a column index or a header name")
    if not isinstance(standardize, bool):
        raise bad("data.source.standardize", standardize, "", "true or false")


def _is_number(text: str) -> bool:
    try:
        np.float64(text)  # as numpy parses the table
    except ValueError:
        return False
    return True
