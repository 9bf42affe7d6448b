"""Every registered model through the real pipeline on its own task: two training steps, a test
pass, and a `result.json` whose model size matches the accounting of a freshly built model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from frugal.models import create_model, list_models
from frugal.models.accounting import count_params, count_params_effective, flop_per_sample

MODEL_CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
# 2-step runs never validate, so the checkpoint's val/acc monitor has nothing to watch
pytestmark = pytest.mark.filterwarnings("ignore:.*could not find the monitored key")
TASK_DATA = {"mnist1d": "data=mnist1d", "digits": "data=digits"}


@pytest.fixture(scope="session")
def mnist1d_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for every case: MNIST-1D is generated once (~2 s), then read from disk."""
    return tmp_path_factory.mktemp("mnist1d-cache")


def model_conf(name: str) -> dict:
    path = MODEL_CONF / f"{name}.yaml"
    assert path.is_file(), f"registered model {name!r} has no conf/model/{name}.yaml"
    return yaml.safe_load(path.read_text())


def expected_size(name: str, kwargs: dict, input_shape, num_classes: int, seed: int) -> dict:
    torch.manual_seed(seed)  # random masks drawn as the pipeline draws them
    model = create_model(name, input_shape, num_classes, **kwargs)
    return {
        "params": count_params(model),
        "params_effective": count_params_effective(model),
        "flop_per_sample": flop_per_sample(model, tuple(input_shape)),
    }


@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_and_tests_on_its_task(name, run_train, tmp_path, mnist1d_cache):
    conf = model_conf(name)
    assert conf["name"] == name
    assert conf["task"] in TASK_DATA, f"conf/model/{name}.yaml: unknown task {conf['task']!r}"
    overrides = [TASK_DATA[conf["task"]], f"model={name}"]
    if conf["task"] == "mnist1d":
        overrides.append(f"data.source.cache_dir={mnist1d_cache}")
    result, objects = run_train(
        *overrides, "trainer.max_steps=2", "trainer.check_val_every_n_epoch=1", "test_on=last"
    )
    if conf["task"] == "mnist1d":  # generated once, then shared by every case
        assert len(list(mnist1d_cache.glob("mnist1d-*.npz"))) == 1

    assert result["status"] == "completed"
    assert result["stopped_by"] is None
    assert result["steps"] == 2
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["steps"] == 2
    assert on_disk["model"]["name"] == name

    datamodule = objects["datamodule"]
    task_shape = {"mnist1d": (40,), "digits": (1, 8, 8)}[conf["task"]]
    assert tuple(datamodule.input_shape)[-len(task_shape) :] == task_shape
    assert datamodule.num_classes == 10
    expected = expected_size(
        name, conf.get("kwargs") or {}, datamodule.input_shape, 10, on_disk["seed"]
    )
    assert on_disk["model"]["params"] == expected["params"]
    assert on_disk["model"]["params_effective"] == expected["params_effective"]
    assert on_disk["model"]["flop_per_sample"] == expected["flop_per_sample"]
    assert 0 < on_disk["model"]["params_effective"] <= on_disk["model"]["params"]

    test_acc = on_disk["metrics"].get("test/acc")
    assert isinstance(test_acc, float) and 0.0 <= test_acc <= 1.0
    assert on_disk["spent"]["data_samples"] == 2 * datamodule.batch_size


def test_sparse_cnn_with_rigl_keeps_fewer_effective_params(run_train, tmp_path, mnist1d_cache):
    result, objects = run_train(
        "data=mnist1d",
        "model=sparse_cnn",
        "sparsity=rigl",
        "sparsity.update_every=2",  # two mask updates within the run
        f"data.source.cache_dir={mnist1d_cache}",
        "trainer.max_steps=6",
        "test_on=last",
    )
    assert result["status"] == "completed"
    assert result["steps"] == 6
    model = json.loads((tmp_path / "result.json").read_text())["model"]
    assert 0 < model["params_effective"] < model["params"]
    # sparse_cnn's masks are ERK at density 0.2: well under half the stored weights survive
    assert model["params_effective"] < 0.5 * model["params"]
    assert model["flop_per_sample"]["effective"] < model["flop_per_sample"]["dense"]
    backbone = objects["module"].backbone
    assert model["params_effective"] == count_params_effective(backbone)
