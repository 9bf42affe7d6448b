"""Knowledge distillation: the loss, the teacher's FLOPs booked to the student's budget, a frozen
teacher kept out of the student's checkpoints, and a bad teacher rejected in one line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import compose_cfg, run_main, run_trained
from omegaconf import OmegaConf
from torch.nn import functional as F

from frugal.core.errors import ConfigError
from frugal.pipeline import train
from frugal.runs.distill import build_teacher, kd_loss
from frugal.runs.preflight import check_config

REPO = Path(__file__).resolve().parents[1]
# synthetic data: 16 features, 4 classes, batch 32 (conf/data/synthetic.yaml)
TEACHER = ["model=mlp", "model.kwargs.hidden=32", "trainer.max_steps=30"]
TEACHER_FWD = 2 * (16 * 32 + 32 * 32 + 32 * 4)  # FLOP/sample: three Linear layers, 2 per MAC
# mlp_tiny (Linear 16→8, Linear 8→4): forward 2·(16·8 + 8·4); backward the weight gradients of
# both and the input gradient of the second (the data needs none)
STUDENT_STEP = 2 * (16 * 8 + 8 * 4) * 2 + 2 * 8 * 4
STEPS, BATCH = 12, 32


def hydra_run(run: Path, *overrides: str) -> dict:
    """A training run that leaves `.hydra/config.yaml`, as frugal-train does."""
    cfg = compose_cfg(run, *overrides)
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(
        OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), run / ".hydra" / "config.yaml"
    )
    return train(cfg)[0]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("teacher") / "run"
    hydra_run(run, *TEACHER)
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory, teacher: Path):
    out = tmp_path_factory.mktemp("student")
    cfg = compose_cfg(
        out, "distill=default", f"distill.teacher={teacher}", f"trainer.max_steps={STEPS}"
    )
    result, objects = train(cfg)
    return out, result, objects


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


# ---- the loss --------------------------------------------------------------------------------
def test_kd_loss_is_hintons_blend():
    torch.manual_seed(0)
    student, teacher, y = torch.randn(8, 5), torch.randn(8, 5), torch.randint(0, 5, (8,))
    temperature, alpha = 3.0, 0.7
    p_teacher = F.softmax(teacher / temperature, dim=1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(student / temperature, dim=1))).sum(1)
    expected = (1 - alpha) * F.cross_entropy(student, y) + alpha * temperature**2 * kl.mean()
    assert torch.allclose(kd_loss(student, teacher, y, temperature, alpha), expected, atol=1e-6)
    assert torch.allclose(
        kd_loss(student, teacher, y, temperature, 0.0), F.cross_entropy(student, y)
    )
    assert kd_loss(student, student, y, temperature, 1.0).abs() < 1e-6  # agreeing: nothing to learn


# ---- a distilled run -------------------------------------------------------------------------
def test_teacher_flops_are_booked(distilled):
    _, result, _ = distilled
    assert result["distill"]["teacher_flop_per_sample"] == TEACHER_FWD
    assert result["model"]["train_flop_per_sample"] == STUDENT_STEP + TEACHER_FWD
    assert result["steps"] == STEPS and result["spent"]["data_samples"] == STEPS * BATCH
    assert result["spent"]["compute_flop"] == STEPS * (STUDENT_STEP + TEACHER_FWD) * BATCH


def test_result_records_the_teacher(distilled, teacher):
    _, result, _ = distilled
    assert result["distill"] == {
        "teacher": str(teacher),
        "teacher_model": "mlp",
        "teacher_params": 16 * 32 + 32 + 32 * 32 + 32 + 32 * 4 + 4,
        "teacher_flop_per_sample": TEACHER_FWD,
        "temperature": 4.0,
        "alpha": 0.9,
    }
    assert result["status"] == "completed" and "test/acc" in result["metrics"]


def test_teacher_is_frozen_and_unchanged(distilled, teacher):
    _, _, objects = distilled
    model = objects["module"].distillation.teacher
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    trained = weights(teacher)
    now = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    assert now.keys() == trained.keys()
    assert all(torch.equal(now[k], trained[k]) for k in trained)


def test_student_checkpoint_holds_no_teacher(distilled):
    out, _, objects = distilled
    module = objects["module"]
    student = {f"backbone.{k}": v.shape for k, v in module.backbone.state_dict().items()}
    for name in ("last.ckpt", "best.ckpt"):
        saved = weights(out / "checkpoints" / name)
        assert {k: v.shape for k, v in saved.items()} == student
    teacher_ids = {id(p) for p in module.distillation.teacher.parameters()}
    assert not teacher_ids & {id(p) for p in module.parameters()}  # never optimised


def test_without_distill_result_says_null(run_train):
    result, objects = run_train("trainer.max_steps=2")
    assert result["distill"] is None and objects["module"].distillation is None


# ---- bad teachers ----------------------------------------------------------------------------
def test_missing_teacher_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "nope.ckpt"
    overrides = ["data=synthetic", "distill=default", f"distill.teacher={missing}"]
    done = run_main([*overrides, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert done.code == 2, done.err
    assert (
        done.err == f"frugal-train: distill.teacher={str(missing)!r}: no such file; expected "
        "a checkpoint frugal-train wrote, e.g. <run>/checkpoints/last.ckpt\n"
    )
    assert not (tmp_path / "run").exists()


def test_teacher_left_unset_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"^distill\.teacher: not set \(\?\?\?\)"):
        check_config(compose_cfg(tmp_path, "distill=default"))


def test_teacher_of_other_data_is_refused(tmp_path, teacher):
    cfg = compose_cfg(
        tmp_path, "distill=default", f"distill.teacher={teacher}", "data.source.seed=1"
    )
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert str(err.value).startswith(
        f"distill.teacher={str(teacher)!r}: the teacher (model=mlp data=synthetic) was trained "
        "with data.source.seed=0, configured data.source.seed=1; expected"
    )


def test_teacher_outside_a_run_is_refused(tmp_path, teacher):
    loose = tmp_path / "teacher.ckpt"
    shutil.copy(teacher, loose)
    cfg = compose_cfg(tmp_path / "out", "distill=default", f"distill.teacher={loose}")
    with pytest.raises(ConfigError, match=r"not in a run directory"):
        check_config(cfg)


@pytest.mark.parametrize(
    ("override", "expected"),
    [("distill.temperature=0", "a temperature > 0"), ("distill.alpha=1.5", "in [0, 1]")],
)
def test_bad_knobs_are_refused(tmp_path, teacher, override, expected):
    cfg = compose_cfg(tmp_path, "distill=default", f"distill.teacher={teacher}", override)
    with pytest.raises(ConfigError, match=rf"^{override.split('=')[0]}.*{re.escape(expected)}"):
        check_config(cfg)


# slow: two DDP ranks; single-process distillation is tested in the default run
@pytest.mark.slow
def test_ddp_ranks_each_run_their_own_teacher(tmp_path, teacher):
    """Two CPU ranks over gloo: each holds an unwrapped teacher; both ranks' teacher passes are
    booked, and the checkpoint is the student's alone."""
    run = tmp_path / "run"
    overrides = ["trainer=ddp", "trainer.devices=2", "trainer.max_steps=6", "threads=1"]
    overrides += ["data=synthetic", "model=mlp_tiny", "logger=none", "energy.backend=none"]
    overrides += ["trainer.enable_progress_bar=false", "distill=default"]
    overrides += [f"distill.teacher={teacher}", f"hydra.run.dir={run}"]
    done = run_trained(*overrides, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((run / "result.json").read_text())
    assert result["spent"]["compute_flop"] == 6 * 2 * BATCH * (STUDENT_STEP + TEACHER_FWD)
    assert all(k.startswith("backbone.net.") for k in weights(run / "checkpoints" / "last.ckpt"))
    assert len(weights(run / "checkpoints" / "last.ckpt")) == 4  # two Linear layers


def test_a_sparse_trained_teacher_runs_with_its_masks(tmp_path):
    run = tmp_path / "sparse"
    hydra_run(run, *TEACHER, "sparsity=gmp", "sparsity.final_sparsity=0.5", "sparsity.end_step=20")
    distill = {"teacher": str(run / "checkpoints" / "last.ckpt")}
    model = build_teacher(distill, (16,), 4)
    masked = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in masked) / sum(w.numel() for w in masked)
    assert zeros == pytest.approx(0.5, abs=0.02)
