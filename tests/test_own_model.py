"""Models and DataModules of your own, from a module outside the package:
`model=own model._target_=pkg.Net`, `data=own data._target_=pkg.Data`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import compose_cfg

from frugal.core.errors import ConfigError
from frugal.data.build import build_datamodule, check_source
from frugal.models.registry import build_model, check_model_config

FRUGAL_TRAIN = Path(sys.executable).with_name("frugal-train")

MODULE = '''
"""A user's own network and data, nowhere near frugal's package."""
import math

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self, input_shape, num_classes, hidden=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.body(x)


class LazyNet(nn.Module):
    """Shapes found on the first batch."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    def forward(self, x):
        return self.body(x)


class WrongNet(Net):
    def forward(self, x):
        return super().forward(x)[:, :1]


class BadForward(Net):
    def forward(self, x):
        return super().forward(x.view(3, -1, 7))


class NoShape(nn.Module):
    def __init__(self, num_classes):
        super().__init__()


def not_a_model(input_shape, num_classes):
    return "a string"


class Blobs(L.LightningDataModule):
    """Three Gaussian blobs in `features` dimensions; states num_classes, not input_shape."""

    num_classes = 3

    def __init__(self, batch_size, n=300, features=6):
        super().__init__()
        self.batch_size, self.n, self.features = batch_size, n, features

    def setup(self, stage=None):
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 3, (self.n,), generator=g)
        x = 3 * torch.eye(3, self.features)[y] + torch.randn(self.n, self.features, generator=g)
        cut = [int(self.n * 0.6), int(self.n * 0.8)]
        self.sets = [TensorDataset(x[a:b], y[a:b]) for a, b in zip([0, *cut], [*cut, self.n])]

    def train_dataloader(self):
        return DataLoader(self.sets[0], batch_size=self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self):
        return DataLoader(self.sets[1], batch_size=100)

    def test_dataloader(self):
        return DataLoader(self.sets[2], batch_size=100)
'''

# Net(hidden=8) on synthetic data (16 features, 4 classes): 16·8 + 8 + 8·4 + 4 parameters.
PARAMS = 172
FORWARD_FLOP = 2 * (16 * 8 + 8 * 4)  # per sample: a multiply-add is 2 FLOPs
# backward: weight gradients of both layers, input gradient of the second only (the input
# needs none): 2·(128 + 32) + 2·32
TRAIN_FLOP = FORWARD_FLOP + 2 * (16 * 8 + 8 * 4) + 2 * 8 * 4
OWN_NET = ["model=own", "model._target_=mynets.Net", "+model.kwargs.hidden=8"]


@pytest.fixture
def mynets(tmp_path, monkeypatch) -> Path:
    (tmp_path / "mynets.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mynets", None)
    return tmp_path


def test_an_own_model_trains_under_a_budget_with_exact_counts(run_train, mynets):
    limit = 20 * 32 * TRAIN_FLOP  # 20 steps of 32 samples
    result, objects = run_train(*OWN_NET, f"budget.compute={limit}", "trainer.max_steps=100")
    assert result["model"]["name"] == "mynets.Net"
    assert result["model"]["params"] == result["model"]["params_effective"] == PARAMS
    assert result["model"]["flop_per_sample"] == {"dense": FORWARD_FLOP, "effective": FORWARD_FLOP}
    assert result["model"]["train_flop_per_sample"] == TRAIN_FLOP
    assert result["status"] == "budget_exhausted" and result["stopped_by"] == "compute"
    assert result["spent"]["compute_flop"] == result["steps"] * 32 * TRAIN_FLOP
    assert limit - 32 * TRAIN_FLOP < result["spent"]["compute_flop"] <= limit
    assert type(objects["module"].backbone).__name__ == "Net"


def test_an_own_datamodule_trains_and_is_described(run_train, mynets):
    result, objects = run_train(
        "data=own",
        "data._target_=mynets.Blobs",
        "+data.kwargs.n=500",
        "model=own",
        "model._target_=mynets.LazyNet",  # lazy layers are sized on a first batch of zeros
        "trainer.max_steps=40",
    )
    assert objects["datamodule"].input_shape == (6,)  # read from the first training batch
    assert result["model"]["params"] == 6 * 3 + 3
    assert result["data"]["name"] == "mynets.Blobs"
    assert (result["data"]["train"], result["data"]["val"], result["data"]["test"]) == (
        300,
        100,
        100,
    )
    assert result["data"]["hash"].startswith("cfg:")
    assert result["metrics"]["test/acc"] > 0.8


@pytest.mark.slow  # ~10 s; README's own-model commands run by default in test_readme
def test_own_model_from_the_command_line_trains_and_resumes_by_run(mynets):
    env = {**os.environ, "PYTHONPATH": str(mynets)}
    quiet = ["logger=none", "energy.backend=none", "trainer.enable_progress_bar=false"]
    run = mynets / "run"
    first = subprocess.run(
        [FRUGAL_TRAIN, *OWN_NET, "data=synthetic", "trainer.max_steps=20", *quiet,
         f"hydra.run.dir={run}"],
        cwd=mynets, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = subprocess.run(
        [FRUGAL_TRAIN, f"ckpt_path={run}/checkpoints/last.ckpt", "trainer.max_steps=40", *quiet],
        cwd=mynets, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads((run / "result.json").read_text())
    assert result["model"]["name"] == "mynets.Net" and result["model"]["params"] == PARAMS
    assert result["steps"] == 40 and result["data"]["name"] == "synthetic"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["+model._target_=mynets.Net"],
            r"^model._target_='mynets.Net': model=mlp_tiny is a regis",
        ),
        (["model=own"], r"^model._target_=\?\?\?: not set; expected a class or builder"),
        (
            ["model=own", "model._target_=nosuch.Net"],
            r"^model._target_='nosuch.Net': cannot import",
        ),
        (
            ["model=own", "model._target_=mynets.Nope"],
            r"^model._target_='mynets.Nope': mynets has no",
        ),
        (["model=own", "model._target_=mynets.NoShape"], r"takes no input_shape argument"),
        ([*OWN_NET, "+model.kwargs.bogus=1"], r"^model.kwargs.bogus=1: not an argument of model"),
        (["+model.kwargs.bogus=1"], r"^model.kwargs.bogus=1: not an argument of model=mlp_tiny"),
    ],
)
def test_a_bad_own_model_is_one_line_at_start_up(tmp_path, mynets, overrides, message):
    cfg = compose_cfg(tmp_path, *overrides)
    with pytest.raises(ConfigError, match=message):
        check_model_config(cfg.model)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=own", "model._target_=mynets.not_a_model"], "returned a str; expected an nn.Mod"),
        (["model=own", "model._target_=mynets.WrongNet"], r"to \(2, 1\); expected logits of shape"),
        (["model=cnn2d"], r"^model=cnn2d: cannot be built for input \(16,\) and 4 classes"),
        (["model=own", "model._target_=mynets.BadForward"], r"fails on a batch of shape \(2, 16\)"),
    ],
)
def test_a_model_that_does_not_fit_the_data_is_one_line(tmp_path, mynets, overrides, message):
    cfg = compose_cfg(tmp_path, *overrides)
    check_model_config(cfg.model)
    datamodule = build_datamodule(cfg.data)
    with pytest.raises(ConfigError, match=message):
        build_model(cfg.model, datamodule.input_shape, datamodule.num_classes)


def test_an_own_datamodule_without_classes_is_one_line(tmp_path, mynets):
    source = textwrap.dedent(MODULE).replace("    num_classes = 3\n", "")
    (mynets / "nonum.py").write_text(source)
    cfg = compose_cfg(tmp_path, "data=own", "data._target_=nonum.Blobs")
    check_source(cfg.data)
    with pytest.raises(ConfigError, match=r"^data.num_classes=None: .* states no num_classes"):
        build_datamodule(cfg.data)
