"""How much memory a data source will take, known before it is generated or read, and the
check that it fits (`frugal.core.machine`): one line naming the setting, before any allocation.

- `synthetic`: its arrays from `num_samples`, `features` and `num_classes`;
- `mnist1d` with generator arguments (`data.source.num_samples=...`): from the generator's sizes;
- a file (`data=files`): an `.npz` by the shape and dtype each member's `.npy` header declares
  (read without loading the array; a member that is not a `.npy` array is refused), a `.csv` by
  its size on disk.

Torch-free (numpy only), so the command-line check can call it before torch is imported.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from frugal.core.errors import ConfigError, bad, setting
from frugal.core.machine import check_fits

# Peak bytes per value while a source builds its arrays (what stays, plus the temporaries):
SYNTHETIC_BYTES_PER_VALUE = 32  # three float64 temporaries (centre, noise, sum), float32 copy
SYNTHETIC_BYTES_PER_SAMPLE = 16  # the int64 labels and their split copy
MNIST1D_BYTES_PER_VALUE = 40  # float64 samples stacked, shuffled, normalised, cast to float32
MNIST1D_BYTES_PER_SAMPLE = 256  # one small array per sample in the generator's list
MNIST1D_STEP_COPIES = 16  # float64 arrays of one sample's padded length while it is transformed
# A file's values: as stored, cast to float32, split, and standardised through float64
FILE_BYTES_PER_VALUE = 28
CSV_BYTES_PER_FILE_BYTE = 16  # a CSV is parsed into Python strings (~60 bytes a cell) first
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
FILE_FORM = "a .npz written by numpy.savez (arrays x, y; optionally x_test, y_test)"
SMALLER = "a smaller value (this machine cannot hold the data)"


def check_synthetic(source: Mapping[str, Any], copies: int = 1) -> None:
    """`data=synthetic` fits in memory (`copies`: processes on this machine that each build it)."""
    defaults = {"num_samples": 512, "features": 16, "num_classes": 4}
    sizes = {key: source.get(key, default) for key, default in defaults.items()}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes.values()):
        return  # the schema names a wrong type or range
    samples, features, classes = sizes["num_samples"], sizes["features"], sizes["num_classes"]
    data = samples * (features * SYNTHETIC_BYTES_PER_VALUE + SYNTHETIC_BYTES_PER_SAMPLE)
    centres = classes * features * 8  # one float64 centre per class
    factors = ("num_samples", "features") if data >= centres else ("num_classes", "features")
    key = max(factors, key=lambda k: sizes[k] / defaults[k])  # the one set furthest up
    needed = (data + centres) * copies
    check_fits(f"data.source.{key}", sizes[key], needed, "the synthetic data", SMALLER)


MNIST1D_DEFAULTS = {
    "num_samples": 5000,
    "final_seq_length": 40,
    "template_len": 12,
    "padding": [36, 60],
}


def check_mnist1d(source: Mapping[str, Any], copies: int = 1) -> None:
    """`data=mnist1d` with the generator's sizes changed (num_samples, final_seq_length,
    template_len, padding) fits in memory."""
    given = {key: source.get(key, default) for key, default in MNIST1D_DEFAULTS.items()}
    padding = given["padding"] if isinstance(given["padding"], list) else [given["padding"]]
    numbers = [given["num_samples"], given["final_seq_length"], given["template_len"], *padding]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers):
        return  # the config check names a wrong type
    samples, length = given["num_samples"], given["final_seq_length"]
    kept = samples * (length * MNIST1D_BYTES_PER_VALUE + MNIST1D_BYTES_PER_SAMPLE)
    padded = given["template_len"] + max(padding, default=0)  # one sample while transformed
    step = padded * 8 * MNIST1D_STEP_COPIES
    named = ("num_samples", "final_seq_length") if kept >= step else ("padding", "template_len")
    ratios = {
        "num_samples": samples / MNIST1D_DEFAULTS["num_samples"],
        "final_seq_length": length / MNIST1D_DEFAULTS["final_seq_length"],
        "template_len": given["template_len"] / MNIST1D_DEFAULTS["template_len"],
        "padding": max(padding, default=0) / max(MNIST1D_DEFAULTS["padding"]),
    }
    key = max(named, key=lambda k: ratios[k])  # the setting furthest above its default
    needed = (kept + step) * copies
    check_fits(f"data.source.{key}", given[key], needed, "the mnist1d data", SMALLER)


# ---- files -----------------------------------------------------------------------------------
def check_file(path: Path, key: str, value: object, copies: int = 1) -> None:
    """The arrays of data file `path` (set as `key`=`value`) fit in memory, known from its
    headers (`.npz`) or its size (`.csv`)."""
    where = setting(key, value)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        members = npz_members(path, where)
        values = sum(math.prod(shape) for shape, _ in members.values())
        stored = sum(math.prod(shape) * dtype.itemsize for shape, dtype in members.values())
        needed = stored + values * FILE_BYTES_PER_VALUE
    elif suffix == ".csv":
        needed = os.stat(path).st_size * CSV_BYTES_PER_FILE_BYTE
    else:
        return
    check_fits(
        key, str(value), needed * copies, "reading this file", "a file this machine can hold"
    )


def npz_members(path: Path, where: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{array name: (shape, dtype)} of every member of an `.npz`, read from the `.npy` headers
    alone; ConfigError for a member that is not a numeric `.npy` array, or whose header
    declares more bytes than the member holds (no allocation is tried on a header's word)."""
    if not zipfile.is_zipfile(path):
        raise bad(where, ..., "is not a zip archive", FILE_FORM)
    try:
        with zipfile.ZipFile(path) as archive:
            return {
                info.filename.removesuffix(".npy"): _member(archive, info, where)
                for info in archive.infolist()
                if not info.is_dir()
            }
    except ConfigError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        lines = str(err).strip().splitlines()
        reason = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
        raise bad(where, ..., f"not a readable .npz archive ({reason})", FILE_FORM) from None


def _member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str
) -> tuple[tuple[int, ...], np.dtype]:
    name = info.filename
    if not name.endswith(".npy"):
        raise bad(where, ..., f"holds {name!r}, which is not a .npy array", FILE_FORM)
    with archive.open(info) as member:
        shape, dtype = _header(member, name, where)
    if dtype.kind not in NUMERIC_KINDS:
        raise bad(where, ..., f"array {name.removesuffix('.npy')} holds {dtype} values", "numbers")
    declared = math.prod(shape) * dtype.itemsize
    if declared > info.file_size:  # the bytes after the header are the array's
        raise bad(
            where,
            ...,
            f"array {name.removesuffix('.npy')} declares shape {shape} ({declared:,} bytes) but "
            f"holds {info.file_size:,} bytes",
            FILE_FORM,
        )
    return shape, dtype


def _header(member: BinaryIO, name: str, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one `.npy` stream, from its magic string and header only."""
    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        else:  # 2.0, and 3.0 (the same layout, its header UTF-8 where 2.0's is Latin-1)
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    except (ValueError, EOFError, UnicodeDecodeError) as err:
        lines = str(err).strip().splitlines()
        raise bad(
            where,
            ...,
            f"member {name!r} is not a readable .npy array "
            f"({lines[0] if lines else type(err).__name__})",
            FILE_FORM,
        ) from None
    return tuple(int(n) for n in shape), np.dtype(dtype)
