"""`data=files` and friends: every malformed file is one line before anything is built;
standardisation; result.json's `data` section."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_cfg

from frugal.core.errors import ConfigError
from frugal.data import files as files_module
from frugal.data.build import build_datamodule, check_source, describe_data
from frugal.data.sources import files, synthetic
from frugal.runs.preflight import check_config


def _csv(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _rows(labels: list, features: int = 2) -> str:
    header = ",".join(f"f{i}" for i in range(features)) + ",label\n"
    return header + "".join(
        ",".join(str(i + j) for j in range(features)) + f",{label}\n"
        for i, label in enumerate(labels)
    )


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


GOOD_LABELS = [0, 1, 2] * 10


# (name, make(tmp_path) -> path, fragment of the one-line message)
BAD_FILES = [
    ("missing", lambda t: str(t / "nope.csv"), "no such file"),
    ("directory", lambda t: str(t), "is a directory"),
    ("empty", lambda t: _csv(t / "e.csv", ""), "is empty"),
    ("blank lines", lambda t: _csv(t / "b.csv", "\n\n \n"), "holds no rows"),
    ("header only", lambda t: _csv(t / "h.csv", "a,b,label\n"), "header but no data rows"),
    ("wrong suffix", lambda t: _csv(t / "d.txt", _rows(GOOD_LABELS)), "unsupported file type"),
    ("no suffix", lambda t: _csv(t / "data", _rows(GOOD_LABELS)), "unsupported file type"),
    ("text cell", lambda t: _csv(t / "t.csv", _rows(GOOD_LABELS) + "1,x,0\n"), "'x', not a number"),
    ("empty cell", lambda t: _csv(t / "c.csv", _rows(GOOD_LABELS) + "1,,0\n"), "not a number"),
    ("ragged", lambda t: _csv(t / "r.csv", _rows(GOOD_LABELS) + "1,2\n"), "data row 31 has 2"),
    ("one column", lambda t: _csv(t / "o.csv", "0\n1\n0\n1\n"), "has one column"),
    ("nan", lambda t: _csv(t / "n.csv", _rows(GOOD_LABELS) + "nan,1,0\n"), "holds nan"),
    ("inf", lambda t: _csv(t / "i.csv", _rows(GOOD_LABELS) + "inf,1,0\n"), "holds inf"),
    ("labels 0/5/10", lambda t: _csv(t / "l.csv", _rows([0, 5, 10] * 10)), "1, 2, 3, 4, 6, …"),
    ("negative label", lambda t: _csv(t / "g.csv", _rows([-1, 0, 1] * 10)), "label -1 is negative"),
    ("float label", lambda t: _csv(t / "f.csv", _rows([0, 1, 1.5] * 10)), "1.5 is not a whole"),
    ("nan label", lambda t: _csv(t / "nl.csv", _rows([0, 1, "nan"] * 10)), "not a whole number"),
    ("one class", lambda t: _csv(t / "k.csv", _rows([0] * 30)), "every label is 0"),
    ("one row", lambda t: _csv(t / "1.csv", _rows([0])), "every label is 0"),
    (
        "two rows",
        lambda t: _csv(t / "2.csv", _rows([0, 1])),
        "2 rows cannot hold 1 test, 1 validation",
    ),
    ("utf-16", lambda t: str(_utf16(t / "u.csv")), "cannot be read as CSV text"),
    ("not a zip", lambda t: _csv(t / "z.npz", "not a zip"), "not a zip archive"),
    ("npz without y", lambda t: _npz(t / "a.npz", x=np.zeros((9, 2))), "holds arrays ['x']"),
    (
        "npz length mismatch",
        lambda t: _npz(t / "m.npz", x=np.zeros((9, 2)), y=np.zeros(8)),
        "x has 9 rows, y has 8",
    ),
    (
        "npz strings",
        lambda t: _npz(t / "s.npz", x=np.array([["a", "b"]] * 9), y=np.zeros(9)),
        "array x holds <U1 values",
    ),
    (
        "npz objects",
        lambda t: _npz(t / "p.npz", x=np.array([[{}]] * 9, dtype=object), y=np.zeros(9)),
        "array x holds object values",  # from the header: nothing is unpickled
    ),
    (
        "npz flat x",
        lambda t: _npz(t / "v.npz", x=np.zeros(9), y=np.zeros(9)),
        "x has shape (9,)",
    ),
    (
        "npz only x_test",
        lambda t: _npz(t / "q.npz", x=np.zeros((9, 2)), y=np.zeros(9), x_test=np.zeros((3, 2))),
        "only one of x_test, y_test",
    ),
    (
        "npz 2-d labels",
        lambda t: _npz(t / "w.npz", x=np.zeros((9, 2)), y=np.zeros((9, 1))),
        "y has shape (9, 1)",
    ),
]


def _utf16(path: Path) -> Path:
    path.write_bytes(_rows(GOOD_LABELS).encode("utf-16"))
    return path


@pytest.mark.parametrize(
    "make, fragment", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_a_bad_file_is_one_line_naming_the_path(tmp_path, make, fragment):
    path = make(tmp_path)
    with pytest.raises(ConfigError) as err:
        files(path)
    message = str(err.value)
    assert message.startswith(f"data.source.path={str(path)!r}: "), message
    assert fragment in message and "; expected " in message and "\n" not in message


def test_a_fifo_or_device_is_never_opened(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # opening it for reading would block forever
    for path in (fifo, Path("/dev/null")):
        with pytest.raises(ConfigError, match="is not a regular file"):
            files(str(path))


def test_a_link_to_a_good_file_is_read(tmp_path):
    target = _csv(tmp_path / "good.csv", _rows(GOOD_LABELS))
    (tmp_path / "link.csv").symlink_to(target)
    assert files(str(tmp_path / "link.csv")).num_classes == 3


@pytest.mark.parametrize(
    "option, message",
    [
        ({"val_fraction": 2}, "data.source.val_fraction=2: expected a fraction"),
        ({"test_fraction": 0}, "data.source.test_fraction=0: expected a fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "expected val_fraction + test_fraction < 1"),
        ({"val_size": -1}, "data.source.val_size=-1: expected a whole number >= 0"),
        ({"val_size": 100}, "30 rows cannot hold 6 test, 100 validation and training rows"),
        ({"label_column": 9}, "data.source.label_column=9: the file has 3 columns"),
        ({"label_column": "species"}, "data.source.label_column='species': no such column"),
        ({"standardize": "yes"}, "data.source.standardize='yes': expected true or false"),
    ],
)
def test_bad_split_options_are_one_line(tmp_path, option, message):
    path = _csv(tmp_path / "good.csv", _rows(GOOD_LABELS))
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        files(path, **option)


def test_a_header_is_detected_and_a_label_column_named(tmp_path):
    text = "species,a,b\n" + "".join(f"{i % 3},{i},{2 * i}\n" for i in range(30))
    splits = files(_csv(tmp_path / "named.csv", text), label_column="species", standardize=False)
    assert splits.num_classes == 3 and splits.input_shape == (2,)
    assert sorted(np.concatenate([splits.x_train, splits.x_val, splits.x_test])[:, 0]) == list(
        range(30)
    )
    plain = files(_csv(tmp_path / "plain.csv", text.split("\n", 1)[1]), label_column=0)
    assert plain.num_classes == 3  # no header: the first row is data


def test_npz_with_its_own_test_split(tmp_path):
    rng = np.random.default_rng(0)
    path = _npz(
        tmp_path / "d.npz",
        X=rng.normal(size=(40, 3, 2)),
        y=np.arange(40) % 2,
        x_test=rng.normal(size=(10, 3, 2)),
        y_test=np.arange(10) % 2,
    )
    splits = files(path, val_fraction=0.25)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (30, 10, 10)
    assert splits.input_shape == (3, 2) and splits.x_train.dtype == np.float32


def test_a_test_file_with_other_features_is_refused(tmp_path):
    train = _csv(tmp_path / "train.csv", _rows(GOOD_LABELS, features=2))
    test = _csv(tmp_path / "test.csv", _rows(GOOD_LABELS, features=3))
    with pytest.raises(ConfigError, match=r"^data.source.test_path=.*expected the same features"):
        files(train, test_path=test)


# ---- standardisation: a real dataset -------------------------------------------------------
@pytest.fixture
def wine_csv(tmp_path) -> str:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame  # 13 features on scales from 0.1 to 1,000; 3 classes
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_features_are_standardised_on_the_training_split_only(wine_csv):
    raw = files(wine_csv, label_column="target", standardize=False)
    scaled = files(wine_csv, label_column="target")
    np.testing.assert_allclose(scaled.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.x_train.std(axis=0), 1, atol=1e-5)
    mean, std = raw.x_train.mean(axis=0), raw.x_train.std(axis=0)
    np.testing.assert_allclose(scaled.x_test, (raw.x_test - mean) / std, rtol=1e-4, atol=1e-4)
    assert abs(scaled.x_test.mean()) > 1e-3  # test statistics played no part
    np.testing.assert_array_equal(scaled.y_train, raw.y_train)  # the same split


def test_a_constant_feature_is_only_centred(tmp_path):
    text = "a,b,label\n" + "".join(f"{i},7,{i % 2}\n" for i in range(20))
    splits = files(_csv(tmp_path / "c.csv", text))
    assert np.all(splits.x_train[:, 1] == 0) and np.isfinite(splits.x_test).all()


def test_standardising_wine_lifts_accuracy(run_train, wine_csv, tmp_path):
    common = [
        "data=files",
        f"data.source.path={wine_csv}",
        "data.source.label_column=target",
        "model=logreg",
        "trainer.max_steps=150",
        "trainer.check_val_every_n_epoch=10",
    ]
    raw, _ = run_train(*common, "data.source.standardize=false", out=tmp_path / "raw")
    scaled, _ = run_train(*common, out=tmp_path / "scaled")
    assert scaled["metrics"]["test/acc"] >= 0.9
    assert scaled["metrics"]["test/acc"] > raw["metrics"]["test/acc"]
    assert scaled["data"]["name"] == raw["data"]["name"] == "wine.csv"
    assert (scaled["data"]["train"], scaled["data"]["val"], scaled["data"]["test"]) == (129, 14, 35)
    assert scaled["data"]["hash"] != raw["data"]["hash"]  # the model saw other numbers


# ---- checked before anything is built, read once -------------------------------------------
def test_validate_rejects_a_bad_file_before_anything_is_built(tmp_path):
    bad = _csv(tmp_path / "bad.csv", _rows([0, 5, 10] * 10))
    cfg = compose_cfg(tmp_path, "data=files", f"data.source.path={bad}")
    with pytest.raises(ConfigError, match=r"^data.source.path=.*never occur"):
        check_config(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_a_file_is_read_once_for_checking_and_training(tmp_path):
    path = _csv(tmp_path / "good.csv", _rows(GOOD_LABELS))
    cfg = compose_cfg(tmp_path, "data=files", f"data.source.path={path}")
    files_module._read_table.cache_clear()
    check_source(cfg.data)
    datamodule = build_datamodule(cfg.data)
    info = files_module._read_table.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert datamodule.num_classes == 3 and datamodule.input_shape == (2,)
    (tmp_path / "good.csv").write_text(_rows([0, 1] * 15))  # changed on disk: read again
    assert build_datamodule(cfg.data).num_classes == 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data=files"], r"^data.source.path=\?\?\?: not set"),
        (["+data.source.bogus=1"], r"^data.source.bogus=1: not an argument of .*synthetic"),
        (["data.source.num_classes=1"], r"^data.source.num_classes=1: expected a whole number"),
        (["+data._target_=mypkg.Data"], r"^data._target_='mypkg.Data': a built-in dataset"),
        (["data=own"], r"^data._target_=\?\?\?: not set"),
        (["data=own", "data._target_=nosuch.Data"], r"^data._target_='nosuch.Data': cannot import"),
        (["data=own", "data._target_=torch.nn.Linear"], r"is not a LightningDataModule"),
    ],
)
def test_bad_data_configs_are_one_line(tmp_path, overrides, message):
    cfg = compose_cfg(tmp_path, *overrides)
    with pytest.raises(ConfigError, match=message):
        check_source(cfg.data)
        build_datamodule(cfg.data)


def test_describe_data_names_sizes_and_hashes_the_splits():
    splits = synthetic(num_samples=64)
    from frugal.data.arrays import ArrayDataModule

    described = describe_data(ArrayDataModule(splits, 8), {})
    assert described["name"] == "synthetic"
    assert (described["train"], described["val"], described["test"]) == (48, 8, 8)
    assert (
        described["hash"]
        == describe_data(ArrayDataModule(synthetic(num_samples=64), 8), {})["hash"]
    )
    assert len(described["hash"]) == 16
    other = describe_data(ArrayDataModule(synthetic(num_samples=64, seed=1), 8), {})
    assert other["hash"] != described["hash"]
