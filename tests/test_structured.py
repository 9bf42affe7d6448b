"""Structured pruning: exact sizes and FLOPs after the cut, and tiny runs — gradual pruning under
the budget (`sparsity=structured`), its resume, and `compress=structured`.

Sizes on the tiny configuration's data (16 features, 4 classes):
- `cnn_tiny`: Conv1d(1→4, k5) → Conv1d(4→4, k3) → Linear(4·4 → 4); lengths 16 → 7 → 4;
  144 parameters, 792 forward FLOP per sample. At half the channels (2): 12 + 14 + 36 = 62
  parameters; 2·(2·5·7 + 2·2·3·4 + 8·4) = 300 FLOP.
- `mlp_tiny`: Linear(16→8) → Linear(8→4); 172 parameters. A quarter of the units (2): 46.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from frugal.callbacks.structured import StructuredPruning
from frugal.command_line import check_command_line
from frugal.core.errors import ConfigError
from frugal.meters.flops import train_step_flops
from frugal.models import create_model
from frugal.models.accounting import count_params, flop_per_sample
from frugal.models.compress import compress_model
from frugal.models.structured import match_widths, structured_prune, widths

CONF = Path(__file__).resolve().parents[1] / "conf"
SHAPE, CLASSES, BATCH = (16,), 4, 32  # the tiny configuration's data (conftest.TINY)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny(name: str) -> torch.nn.Module:
    return create_model(name, SHAPE, CLASSES)


def step_flop(model: torch.nn.Module) -> int:
    """Forward + backward FLOPs of one training batch of the tiny configuration."""
    x, y = torch.randn(BATCH, *SHAPE), torch.randint(0, CLASSES, (BATCH,))
    return train_step_flops(model, x, y, torch.nn.functional.cross_entropy)


# ---- the surgery -------------------------------------------------------------------------------
def test_pruning_a_cnn_removes_channels_params_and_flops():
    model = tiny("cnn_tiny")
    assert count_params(model) == 144 and flop_per_sample(model, SHAPE)["dense"] == 792
    pruned = compress_model(model, "structured", input_shape=SHAPE, channel_ratio=0.5)
    assert widths(pruned) == {"features.0": 2, "features.2": 2, "head": 4}  # logits kept
    assert count_params(pruned) == 62
    assert flop_per_sample(pruned, SHAPE) == {"dense": 300, "effective": 300}
    assert pruned(torch.randn(3, *SHAPE)).shape == (3, CLASSES)
    assert count_params(model) == 144  # compress_model works on a copy


def test_pruning_an_mlp_keeps_the_largest_neurons_in_order():
    model = tiny("mlp_tiny")
    first, last = model.net[1], model.net[3]
    with torch.no_grad():  # hidden unit j scaled by j + 1: units 6 and 7 are the largest
        scale = torch.arange(1.0, 9.0)
        first.weight.mul_(scale[:, None]), first.bias.mul_(scale), last.weight.mul_(scale)
    original = first.weight.detach().clone()
    structured_prune(model, 0.25, SHAPE)
    assert count_params(model) == 46
    torch.testing.assert_close(model.net[1].weight, original[[6, 7]])


def test_a_masked_model_is_refused():
    with pytest.raises(ValueError, match="masked"):
        structured_prune(tiny("sparse_mlp"), 0.5, SHAPE)


def test_a_fresh_model_takes_a_pruned_checkpoints_widths():
    pruned = structured_prune(tiny("cnn_tiny"), 0.5, SHAPE)
    fresh = tiny("cnn_tiny")
    match_widths(fresh, pruned.state_dict(), SHAPE)
    fresh.load_state_dict(pruned.state_dict())
    x = torch.randn(2, *SHAPE)
    torch.testing.assert_close(fresh(x), pruned(x))
    with pytest.raises(ValueError, match="cannot grow back"):
        match_widths(pruned, tiny("cnn_tiny").state_dict(), SHAPE)


# ---- the schedule ------------------------------------------------------------------------------
def test_each_milestone_keeps_the_same_fraction_of_what_is_left():
    callback = StructuredPruning(channel_ratio=0.25, milestones=[0.1, 0.2])
    assert [callback.keep_ratio(i) for i in range(3)] == [1.0, 0.5, 0.25]
    assert [callback.prunes_due(p) for p in (0.0, 0.09, 0.1, 0.19, 0.2, 1.0)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["sparsity.channel_ratio=0"], "sparsity.channel_ratio"),
        (["sparsity.channel_ratio=1.5"], "sparsity.channel_ratio"),
        (["sparsity.milestones=[0.5,0.2]"], "sparsity.milestones"),
        (["sparsity.milestones=[1.0]"], "sparsity.milestones"),
        (["sparsity.milestones=[]"], "sparsity.milestones"),
        (["+sparsity.importance=l1"], "sparsity.importance"),
    ],
)
def test_bad_options_are_rejected_before_anything_runs(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_command_line(["sparsity=structured", *overrides], str(CONF))


def test_the_shipped_configs_are_valid():
    check_command_line(["sparsity=structured"], str(CONF))
    options = yaml.safe_load((CONF / "compress" / "structured.yaml").read_text())
    assert count_params(compress_model(tiny("cnn_tiny"), **options, input_shape=SHAPE)) < 144


# ---- tiny runs ---------------------------------------------------------------------------------
HALF_AT_MIDPOINT = [
    "model=cnn_tiny",
    "sparsity=structured",
    "sparsity.channel_ratio=0.5",
    "sparsity.milestones=[0.5]",
    "scheduler=budget_linear",
]


def test_a_run_prunes_midway_and_books_the_new_step_cost(run_train, tmp_path):
    result, objects = run_train(*HALF_AT_MIDPOINT)  # 30 steps: cut before step 15
    module, trainer = objects["module"], objects["trainer"]
    assert result["status"] == "completed" and result["steps"] == 30
    assert math.isfinite(result["metrics"]["val/loss"])
    assert result["model"]["params"] == result["spent"]["params"] == 62
    assert result["model"]["flop_per_sample"]["dense"] == 300
    full = step_flop(tiny("cnn_tiny"))
    half = step_flop(structured_prune(tiny("cnn_tiny"), 0.5, SHAPE))
    assert half < full / 2
    assert result["spent"]["compute_flop"] == 15 * full + 15 * half
    assert result["model"]["train_flop_per_sample"] == half / BATCH
    # the optimizer trains the pruned parameters, and the LR schedule ran on to its end
    optimizer = trainer.optimizers[0]
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert trained == {id(p) for p in module.parameters()}
    assert trainer.lr_scheduler_configs[0].scheduler.optimizer is optimizer
    assert optimizer.param_groups[0]["lr"] < 0.1 * optimizer.param_groups[0]["initial_lr"]
    # the best checkpoint (tested) is one of the pruned model
    best = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert best["state_dict"]["backbone.features.0.weight"].shape == (2, 1, 5)
    assert "test/acc" in result["metrics"]


def test_a_compute_budget_buys_more_of_the_cheaper_steps(run_train):
    """Planned for 40 full-size steps; the cut at step 10 makes the rest cheaper and the next
    re-plan lets the run reach its configured 60 steps within the same budget."""
    limit = 40 * step_flop(tiny("cnn_tiny"))
    result, _ = run_train(
        *HALF_AT_MIDPOINT[:3],
        "sparsity.milestones=[0.25]",
        "trainer.max_steps=60",
        f"budget.compute={limit}",
    )
    assert result["steps"] == 60
    assert result["spent"]["compute_flop"] <= limit


def test_a_pruned_run_resumes_with_its_pruned_shapes(run_train, tmp_path):
    run_train(*HALF_AT_MIDPOINT, "sparsity.milestones=[0.2,0.5]", "sparsity.channel_ratio=0.25")
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    result, objects = run_train(
        *HALF_AT_MIDPOINT,
        "sparsity.milestones=[0.2,0.5]",
        "sparsity.channel_ratio=0.25",
        f"ckpt_path={ckpt}",
        "trainer.max_steps=40",
    )
    assert result["status"] == "completed" and result["steps"] == 40
    assert widths(objects["module"].backbone) == {"features.0": 1, "features.2": 1, "head": 4}
    callback = next(c for c in objects["trainer"].callbacks if isinstance(c, StructuredPruning))
    assert callback.prunes_done == 2
    assert callback.original_widths == {"features.0": 4, "features.2": 4, "head": 4}


def test_compress_structured_fine_tunes_a_pruned_copy(run_train, tmp_path):
    run_train("model=cnn_tiny", out=tmp_path / "source")
    result, _ = run_train(
        "model=cnn_tiny",
        "compress=structured",
        "compress.channel_ratio=0.5",
        f"ckpt_path={tmp_path / 'source' / 'checkpoints' / 'last.ckpt'}",
        "trainer.max_steps=10",
        out=tmp_path / "pruned",
    )
    assert result["status"] == "completed" and result["steps"] == 10
    assert result["compression"]["method"] == "structured"
    assert 0.0 <= result["compression"]["acc_after_compression"] <= 1.0
    assert result["model"]["params"] == 62
    full = step_flop(structured_prune(tiny("cnn_tiny"), 0.5, SHAPE))
    assert result["spent"]["compute_flop"] == 10 * full


def test_a_run_with_a_masked_model_is_refused_in_one_line(run_train):
    with pytest.raises(ConfigError, match=r"^sparsity=structured: layer .* is masked"):
        run_train("model=sparse_mlp", "sparsity=structured")
