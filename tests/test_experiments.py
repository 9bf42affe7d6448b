"""Every `experiment=` config composes and trains a few steps with its own data and model, and
the Pareto search (`hparams_search=pareto_optuna`) wires each family's knobs through."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF_DIR, compose_cfg
from fakes.meters import FakeEnergyMeter
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from frugal.train import train

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(path.stem for path in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
SEARCH = "pareto_optuna"
# A few steps with the experiment's own data and model; no validation (an epoch is 36 steps).
FEW_STEPS = ["trainer.max_steps=3"]


def test_there_are_experiments():
    assert {"mnist1d_table", "small_vs_large", "budgeted_schedules"} <= set(EXPERIMENTS)


def choices(*overrides: str) -> dict[str, str | None]:
    """The config group choices the real config (no test overrides) makes."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    return dict(cfg.hydra.runtime.choices)


def run_few_steps(
    tmp_path: Path, cache_dir: Path, *overrides: str
) -> tuple[DictConfig, dict[str, object]]:
    """compose_cfg's tiny settings, then the experiment's own data and model back on top."""
    chosen = choices(*overrides)
    own = [f"data={chosen['data']}", f"model={chosen['model']}"]
    cfg = compose_cfg(tmp_path, *overrides, *own, *FEW_STEPS)
    cfg.paths.cache_dir = str(cache_dir)  # MNIST-1D generated once for the module
    result, _ = train(cfg, energy_meter=FakeEnergyMeter(measured=False))
    return cfg, result


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_trains(name, tmp_path, cache_dir):
    chosen = choices(f"experiment={name}")
    cfg, result = run_few_steps(tmp_path, cache_dir, f"experiment={name}")
    assert cfg.model.name == result["model"]["name"]
    assert chosen["data"] != "synthetic"  # a study config names its task
    assert result["status"] in {"completed", "budget_exhausted"}
    assert result["steps"] == 3
    assert json.loads((tmp_path / "result.json").read_text())["steps"] == 3


def sweep_params() -> dict[str, list[str]]:
    """hparams_search=pareto_optuna's search space, parsed as the sweeper parses it: the
    choices of a choice sweep, both ends of an interval."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"hparams_search={SEARCH}"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    space = {}
    for override in parsed:
        if override.is_interval_sweep():
            values = [override.value().start, override.value().end]
        else:
            values = list(override.sweep_string_iterator())
        space[override.get_key_element()] = [str(value) for value in values]
    return space


def test_search_is_two_objective_over_existing_families():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"hparams_search={SEARCH}"], return_hydra_config=True)
    assert list(cfg.objectives) == ["test/acc", "energy_j"]
    assert list(cfg.hydra.sweeper.direction) == ["maximize", "minimize"]
    assert set(sweep_params()["experiment"]) <= set(EXPERIMENTS)


@pytest.mark.parametrize(
    ("family", "knob", "value", "where"),
    [
        ("pareto_lowrank_cnn", "search.rank_ratio", "0.5", "model.kwargs.rank_ratio"),
        ("pareto_rigl_cnn", "search.density", "0.3", "sparsity.density"),
    ],
)
def test_family_reads_its_search_knob(family, knob, value, where, tmp_path, cache_dir):
    overrides = (f"hparams_search={SEARCH}", f"experiment={family}", f"{knob}={value}")
    cfg, _ = run_few_steps(tmp_path, cache_dir, *overrides, "model.kwargs.width_mult=0.5")
    assert OmegaConf.select(cfg, where) == float(value)
    assert cfg.model.kwargs.width_mult == 0.5


@pytest.mark.parametrize("end", [0, -1])
def test_every_family_accepts_every_knob(end, tmp_path, cache_dir):
    """No trial can crash on a knob its family lacks: each family trains with all of them set,
    at either end of the search space."""
    space = sweep_params()
    knobs = {key: values[end] for key, values in space.items() if key != "experiment"}
    for family in space["experiment"]:
        overrides = [f"hparams_search={SEARCH}", f"experiment={family}"]
        overrides += [f"{key}={value}" for key, value in knobs.items()]
        _, result = run_few_steps(tmp_path / family, cache_dir, *overrides)
        assert result["steps"] == 3


# slow: a real Optuna sweep; the sweep machinery runs in the default suite through README
@pytest.mark.slow
def test_optuna_sweep_returns_both_objectives(tmp_path):
    """Two real trials through Hydra's Optuna sweeper on synthetic data, into the default
    sweep directory (no `hydra.sweep.dir`: README's command)."""
    cmd = [
        sys.executable,
        "-m",
        "frugal.train",
        "-m",
        f"hparams_search={SEARCH}",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "data=synthetic",
        "budget.data=320",
        "trainer.check_val_every_n_epoch=1",
        "trainer.enable_progress_bar=false",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (sweep_dir,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    results = sorted(sweep_dir.glob("*/result.json"))
    assert len(results) == 2
    solutions = OmegaConf.load(sweep_dir / "optimization_results.yaml").solutions
    assert solutions and all(len(s["values"]) == 2 for s in solutions)


STUDIES = sorted(path.parent.name for path in (REPO / "experiments").glob("*/run.sh"))


def test_study_scripts_write_only_to_outputs():
    """A study's run.sh must not overwrite its committed tables and plots: `make studies` does
    that, through experiments/publish.sh. The only file of experiments/ it names is its
    summarize.py."""
    assert STUDIES
    for study in STUDIES:
        script = (REPO / "experiments" / study / "run.sh").read_text()
        code = "\n".join(line.split("#", 1)[0] for line in script.splitlines())
        named = set(re.findall(r"(?<![\w/])experiments/[\w./]+", code))
        assert named <= {f"experiments/{study}/summarize.py"}, (study, named)
        assert f"OUT=outputs/experiments/{study}\n" in code, study


def test_publish_copies_a_study_outputs_but_not_its_runs(tmp_path):
    out = tmp_path / "outputs/experiments/demo"
    (out / "runs/0").mkdir(parents=True)
    (out / "runs/0/result.json").write_text("{}")
    (out / "report").mkdir()
    (out / "report/report.md").write_text("new report")
    (out / "results.md").write_text("new table")
    committed = tmp_path / "experiments/demo"
    committed.mkdir(parents=True)
    (committed / "results.md").write_text("old table")
    (committed / "README.md").write_text("kept")
    publish = REPO / "experiments/publish.sh"
    done = subprocess.run(
        ["bash", str(publish), "demo"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (committed / "results.md").read_text() == "new table"
    assert (committed / "report/report.md").read_text() == "new report"
    assert (committed / "README.md").read_text() == "kept"
    assert not (committed / "runs").exists()


def test_publish_refuses_a_study_never_run(tmp_path):
    done = subprocess.run(
        ["bash", str(REPO / "experiments/publish.sh"), "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "run bash experiments/demo/run.sh first" in done.stderr
