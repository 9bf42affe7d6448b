"""Checkpoints: loaded without running code, checked before use, resumed by run."""

from __future__ import annotations

import os
import re
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import TINY, compose_cfg
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from frugal.core.errors import ConfigError
from frugal.models.registry import build_model
from frugal.module import FrugalModule
from frugal.pipeline import train
from frugal.runs.checkpoint import (
    check_fits,
    load_checkpoint,
    load_weights,
    resolve_resume,
    resume_argv,
    run_dir_of,
)
from frugal.runs.preflight import check_config

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
QUIET = [o for o in TINY if not o.startswith(("data=", "model="))]  # keep model and data free


def compose_run(run: Path, *overrides: str) -> DictConfig:
    """Like conftest.compose_cfg, but only `overrides` name data and model (as a user's
    command line would), and the run's output directory is Hydra's own interpolation."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*QUIET, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run)
        cfg.paths.log_dir = cfg.paths.root_dir = str(run.parent)
        cfg.paths.cache_dir = str(run.parent / "cache")
    HydraConfig().set_config(cfg)
    return cfg


def hydra_run(run: Path, *overrides: str) -> dict:
    """A training run that leaves `.hydra/config.yaml` as `frugal-train` does."""
    cfg = compose_run(run, *overrides)
    saved = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(saved, run / ".hydra" / "config.yaml")
    result, _ = train(cfg)
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run of `model=mlp model.kwargs.hidden=8` on synthetic data (not the defaults)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    hydra_run(run, "data=synthetic", "model=mlp", "model.kwargs.hidden=8", "trainer.max_steps=20")
    return run


# ---- crafted files execute nothing ---------------------------------------------------------
class Payload:
    """Unpickling calls open(marker, "w"): the file appears if loading runs code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def crafted(tmp_path: Path, trained: Path) -> tuple[Path, Path]:
    """A real frugal checkpoint with one extra object whose unpickling creates a file."""
    marker = tmp_path / "ran"
    checkpoint = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"] = {"x": Payload(marker)}
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)
    return path, marker


@pytest.mark.parametrize("mode", ["resume", "compress=svd", "compress=prune"])
def test_a_crafted_checkpoint_runs_no_code(tmp_path, trained, mode):
    path, marker = crafted(tmp_path, trained)
    overrides = ["data=synthetic", "model=mlp", "model.kwargs.hidden=8", f"ckpt_path={path}"]
    cfg = compose_run(tmp_path / "out", *overrides, *([mode] if mode != "resume" else []))
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert re.match(rf"ckpt_path={re.escape(repr(str(path)))}: holds a [\w.]*open", str(err.value))
    assert not marker.exists() and not (tmp_path / "out" / "checkpoints").exists()


def test_lightning_itself_loads_with_weights_only(tmp_path, trained):
    from lightning.fabric.utilities.cloud_io import _load

    path, marker = crafted(tmp_path, trained)
    with pytest.raises(Exception, match="Weights only load failed"):
        _load(path, weights_only=True)  # what trainer.fit/test(weights_only=True) call
    assert not marker.exists()


def test_every_torch_load_in_the_product_is_weights_only():
    root = Path(__file__).resolve().parents[1] / "frugal"
    calls = [
        (path, match)
        for path in root.rglob("*.py")
        for match in re.finditer(r"torch\.load\(([^)]*)\)", path.read_text())
    ]
    assert calls  # the pattern still finds them
    for path, match in calls:
        assert "weights_only=True" in match[1], f"{path}: {match[0]}"
    pipeline = "".join(path.read_text() for path in (root / "pipeline").glob("*.py"))
    assert "trainer.fit(" in pipeline and "trainer.test(" in pipeline
    for call in re.findall(r"trainer\.(?:fit|test)\((?:[^()]|\([^()]*\))*\)", pipeline):
        assert "weights_only=True" in call, call


# ---- bad checkpoints: one line naming ckpt_path --------------------------------------------
def _plain_dict(t: Path) -> Path:
    torch.save({"weights": torch.zeros(3)}, t / "plain.ckpt")
    return t / "plain.ckpt"


def _no_ledger(t: Path, trained: Path) -> Path:
    checkpoint = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["callbacks"] = {}
    torch.save(checkpoint, t / "noledger.ckpt")
    return t / "noledger.ckpt"


def _truncated(t: Path, trained: Path) -> Path:
    data = (trained / "checkpoints" / "last.ckpt").read_bytes()
    (t / "cut.ckpt").write_bytes(data[: len(data) // 2])
    return t / "cut.ckpt"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _fifo(t: Path) -> Path:
    os.mkfifo(t / "pipe.ckpt")
    return t / "pipe.ckpt"


BAD_CHECKPOINTS = [
    ("missing", lambda t, r: t / "nope.ckpt", "no such file"),
    ("a directory", lambda t, r: t, "holds no checkpoints/last.ckpt"),
    ("empty", lambda t, r: _write(t / "e.ckpt", b""), "is empty"),
    ("text", lambda t, r: _write(t / "t.ckpt", b"hello\n"), "not a readable PyTorch checkpoint"),
    ("truncated", _truncated, "not a readable PyTorch checkpoint"),
    ("not frugal's", lambda t, r: _plain_dict(t), "holds no frugal model weights"),
    ("no ledger", _no_ledger, "holds no budget ledger"),
    ("a fifo", lambda t, r: _fifo(t), "is not a regular file"),
    ("a device", lambda t, r: Path("/dev/zero"), "is not a regular file"),
]


@pytest.mark.parametrize(
    "make, fragment", [c[1:] for c in BAD_CHECKPOINTS], ids=[c[0] for c in BAD_CHECKPOINTS]
)
def test_a_bad_checkpoint_is_one_line(tmp_path, trained, make, fragment):
    path = make(tmp_path, trained)
    cfg = compose_cfg(tmp_path / "out", f"ckpt_path={path}")
    with pytest.raises(ConfigError) as err:
        check_config(resolve_resume(cfg))
    message = str(err.value)
    assert message.startswith(f"ckpt_path={str(path)!r}: ") and fragment in message, message
    assert "; expected " in message and "\n" not in message


def test_another_model_or_input_shape_is_named(tmp_path, trained):
    loose = tmp_path / "loose.ckpt"  # outside its run: no saved config to restore
    loose.write_bytes((trained / "checkpoints" / "last.ckpt").read_bytes())
    for overrides, fragment in [
        (["model=cnn_tiny"], "do not fit model=cnn_tiny data=synthetic (backbone."),
        (["model=mlp", "model.kwargs.hidden=8", "data.source.features=8"], "(8, 16) in the"),
    ]:
        cfg = compose_cfg(tmp_path / "out", *overrides, f"ckpt_path={loose}")
        with pytest.raises(ConfigError, match=re.escape(fragment)):
            train(cfg)
        assert not (tmp_path / "out" / "checkpoints").exists()


def test_compress_names_the_model_the_checkpoint_was_trained_as(tmp_path, trained):
    ckpt = trained / "checkpoints" / "last.ckpt"
    cfg = compose_run(
        tmp_path / "out", "data=synthetic", "model=cnn_tiny", "compress=svd", f"ckpt_path={ckpt}"
    )
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert str(err.value).startswith(
        f"ckpt_path={str(ckpt)!r}: trained as model=mlp data=synthetic, configured model=cnn_tiny "
        "data=synthetic; expected"
    )


def test_compress_takes_model_and_data_from_the_run(tmp_path, trained):
    ckpt = trained / "checkpoints" / "last.ckpt"
    cfg = resolve_resume(compose_run(tmp_path / "out", "compress=prune", f"ckpt_path={ckpt}"))
    assert cfg.model.name == "mlp" and cfg.model.kwargs.hidden == 8
    assert cfg.data.source._target_.endswith("synthetic")
    assert cfg.paths.output_dir == str(tmp_path / "out")  # a new run, under a fresh budget


def test_weights_trained_under_masks_load_with_the_masks_applied(tmp_path):
    run = tmp_path / "sparse"
    _, objects = train(compose_cfg(run, "sparsity=gmp", "trainer.max_steps=20"))
    trained_weight = objects["module"].backbone.net[1].weight.detach().clone()  # masked
    assert (trained_weight == 0).any()
    cfg = compose_cfg(tmp_path / "out", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    backbone = build_model(cfg.model, (16,), 4)
    module = FrugalModule(backbone, optimizer=torch.optim.SGD, num_classes=4)
    check_fits(module, cfg)  # the masks are no mismatch
    load_weights(module, cfg)
    checkpoint = load_checkpoint(cfg.ckpt_path)["state_dict"]
    original = checkpoint["backbone.net.1.parametrizations.weight.original"]
    mask = checkpoint["backbone.net.1.parametrizations.weight.0.mask"]
    torch.testing.assert_close(module.backbone.net[1].weight.detach(), original * mask)


@pytest.mark.parametrize("overrides", [["scheduler=budget_cosine"], ["sparsity=rigl"]])
def test_every_checkpoint_frugal_writes_loads_weights_only(tmp_path, overrides):
    train(compose_cfg(tmp_path, *overrides, "trainer.max_steps=20"))
    for name in ("last.ckpt", "best.ckpt"):
        assert load_checkpoint(tmp_path / "checkpoints" / name)["global_step"] > 0


# ---- resume by run ---------------------------------------------------------------------------
def test_resume_by_run_restores_its_config_and_writes_into_it(tmp_path, trained):
    run = tmp_path / "run"
    run.mkdir()
    for item in trained.iterdir():  # a copy: the module's run stays as it is for other tests
        os.system(f"cp -r '{item}' '{run}/'")
    before = (run / "curve.csv").read_text()
    ckpt = run / "checkpoints" / "last.ckpt"
    cfg = compose_run(tmp_path / "elsewhere", f"ckpt_path={ckpt}", "trainer.max_steps=40")
    assert cfg.model.name == "cnn"  # the defaults, before the run's config is restored
    result, _ = train(cfg)
    assert (
        result["model"]["name"] == "mlp"
        and result["model"]["params"] == 16 * 8 + 8 + 8 * 8 + 8 + 8 * 4 + 4
    )
    assert result["data"]["name"] == "synthetic" and result["steps"] == 40
    assert result["run"]["dir"] == str(run)
    assert (run / "result.json").is_file() and not (tmp_path / "elsewhere").exists()
    assert (run / "curve.csv").read_text().startswith(before)  # appended to
    resumed = resolve_resume(compose_run(tmp_path / "x", f"resume={run}"))
    assert resumed.ckpt_path == str(ckpt) and resumed.model.kwargs.hidden == 8


@pytest.mark.parametrize(
    "override, message",
    [
        ("model=cnn", "model=cnn: ckpt_path=.* resumes a run trained with model=mlp; expected"),
        (
            "model.kwargs.width_mult=2",
            "model.kwargs.width_mult=2: .* with model.kwargs.width_mult=1.0",
        ),
        ("+model._target_=x.Net", r"\+model._target_=x.Net: .* with model._target_=null"),
        ("data=digits", "data=digits: .* trained with data="),
        ("budget.energy=1kJ", "budget.energy=1kJ: .* trained with budget.energy=null"),
        ("experiment=small_vs_large", "experiment=small_vs_large: .* trained with"),
    ],
)
def test_an_override_changing_what_a_run_is_is_refused(tmp_path, trained, override, message):
    ckpt = trained / "checkpoints" / "last.ckpt"
    cfg = compose_run(tmp_path / "out", f"ckpt_path={ckpt}", override)
    with pytest.raises(ConfigError, match=f"^{message}"):
        resolve_resume(cfg)


def test_repeating_the_run_s_own_settings_is_fine(tmp_path, trained):
    ckpt = trained / "checkpoints" / "last.ckpt"
    same = ["data=synthetic", "model=mlp", "model.kwargs.hidden=8", "budget.energy=null"]
    cfg = resolve_resume(compose_run(tmp_path / "out", f"ckpt_path={ckpt}", *same, "seed=3"))
    assert cfg.seed == 3 and cfg.trainer.max_steps == 30  # this command line's overrides
    assert cfg.model.kwargs.hidden == 8 and cfg.data.batch_size == 32  # the run's settings
    assert cfg.paths.output_dir == str(trained)


def test_a_budget_written_another_way_is_the_same_budget(tmp_path):
    run = tmp_path / "run"
    hydra_run(run, "data=synthetic", "model=mlp_tiny", "budget.data=2k", "trainer.max_steps=5")
    cfg = compose_run(tmp_path / "o", f"ckpt_path={run}", "budget.data=2000")
    assert resolve_resume(cfg).budget.data == "2k"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["resume=RUN", "ckpt_path=RUN"], "^resume=.*: given together with ckpt_path="),
        (["resume=TMP"], "^resume=.*: holds no checkpoints/last.ckpt"),
    ],
)
def test_bad_resume_requests(tmp_path, trained, overrides, message):
    overrides = [o.replace("RUN", str(trained)).replace("TMP", str(tmp_path)) for o in overrides]
    with pytest.raises(ConfigError, match=message):
        resolve_resume(compose_run(tmp_path / "o", *overrides))


def test_resuming_a_compress_run_is_refused(tmp_path, trained):
    run = tmp_path / "run"
    ckpt = trained / "checkpoints" / "last.ckpt"
    hydra_run(run, "compress=prune", f"ckpt_path={ckpt}", "trainer.max_steps=3")
    cfg = compose_run(tmp_path / "o", f"resume={run}")
    with pytest.raises(ConfigError, match="fine-tuned a compressed model"):
        resolve_resume(cfg)


def test_the_command_line_of_a_resumed_run_reopens_its_directory(tmp_path, trained):
    ckpt = str(trained / "checkpoints" / "last.ckpt")
    added = [f"hydra.run.dir={trained}", "hydra.output_subdir=null"]
    assert resume_argv([f"ckpt_path={ckpt}", "x=1"]) == [f"ckpt_path={ckpt}", "x=1", *added]
    assert resume_argv([f"resume={trained}"]) == [f"resume={trained}", *added]
    own_dir = [f"ckpt_path={ckpt}", f"hydra.run.dir={trained}"]  # .hydra/ is never rewritten
    assert resume_argv(own_dir) == [*own_dir, "hydra.output_subdir=null"]
    for unchanged in (
        [f"ckpt_path={ckpt}", "compress=svd"],
        [f"ckpt_path={ckpt}", "hydra.run.dir=/elsewhere"],
        ["-m", f"ckpt_path={ckpt}"],
        [f"ckpt_path={tmp_path / 'loose.ckpt'}"],
        ["model=mlp"],
    ):
        assert resume_argv(unchanged) == unchanged
    spaced = tmp_path / "a run's dir"
    (spaced / ".hydra").mkdir(parents=True)
    (spaced / ".hydra" / "config.yaml").write_text("{}")
    argv = resume_argv([f'ckpt_path="{spaced}/checkpoints/last.ckpt"'])
    (run_dir, _) = OverridesParser.create().parse_overrides(argv[1:])
    assert run_dir.key_or_group == "hydra.run.dir" and run_dir.value() == str(spaced)
    assert run_dir_of(spaced / "checkpoints" / "last.ckpt") == spaced


# ---- init_from: a new run starting from a trained run's weights ------------------------------
class FirstWeights(L.Callback):
    """Keeps the backbone's weights as training starts."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.state = {k: v.detach().clone() for k, v in pl_module.backbone.state_dict().items()}


def test_init_from_starts_a_new_run_from_the_weights(tmp_path, trained):
    ckpt = trained / "checkpoints" / "last.ckpt"
    before = {p.name: p.stat().st_mtime_ns for p in trained.rglob("*") if p.is_file()}
    first = FirstWeights()
    cfg = compose_run(
        tmp_path / "new", "data=synthetic", "model=mlp", "model.kwargs.hidden=8",
        f"init_from={ckpt}", "trainer.max_steps=5",
    )  # fmt: skip
    result, _ = train(cfg, callbacks=[first])
    saved = load_checkpoint(ckpt)["state_dict"]
    assert first.state.keys() == {k.removeprefix("backbone.") for k in saved}
    for name, value in first.state.items():
        assert torch.equal(value, saved[f"backbone.{name}"]), name
    # a new run: its own directory, ledger and steps; the trained run is left as it was
    assert result["steps"] == 5 and result["status"] == "completed"
    assert (tmp_path / "new" / "checkpoints" / "last.ckpt").is_file()
    assert {p.name: p.stat().st_mtime_ns for p in trained.rglob("*") if p.is_file()} == before


FRESH = ["data=synthetic", "model=mlp"]


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ([*FRESH, "init_from={tmp}/missing.ckpt"], "missing.ckpt': no such file"),
        ([*FRESH, "init_from={ckpt}", "model=cnn_tiny"], "trained as model=mlp"),
        (["init_from={ckpt}", "ckpt_path={ckpt}"], "a resumed run takes its own"),
        (["init_from={ckpt}", "compress=svd", "ckpt_path={ckpt}"], "compress takes its own"),
    ],
)
def test_a_bad_init_from_is_one_line(tmp_path, trained, overrides, says):
    ckpt = trained / "checkpoints" / "last.ckpt"
    cfg = compose_run(tmp_path / "out", *[o.format(tmp=tmp_path, ckpt=ckpt) for o in overrides])
    with pytest.raises(ConfigError) as err:
        train(resolve_resume(cfg))
    message = str(err.value)
    assert message.startswith("init_from=") and says in message, message
    assert "\n" not in message and not (tmp_path / "out" / "checkpoints").exists()
