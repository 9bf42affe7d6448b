"""Sparse training callbacks: schedules by value, and tiny Trainer runs for density and resume."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from frugal.callbacks.sparsity import DynamicSparseTraining, GradualMagnitudePruning
from frugal.callbacks.structured import StructuredPruning
from frugal.models import create_model
from frugal.models.layers import weight_mask
from frugal.models.sparse import layer_masks, maskable_layers, sparsity_of
from frugal.module import FrugalModule

CONF = Path(__file__).resolve().parents[1] / "conf" / "sparsity"
pytestmark = pytest.mark.filterwarnings("ignore:You defined a `validation_step`")


def module(name: str = "mlp_tiny") -> FrugalModule:
    return FrugalModule(
        create_model(name, (16,), 4), optimizer=partial(torch.optim.Adam, lr=1e-2), num_classes=4
    )


def loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(
        torch.randn(200, 16, generator=g), torch.randint(0, 4, (200,), generator=g)
    )
    return DataLoader(data, batch_size=20)


def fit(
    model: FrugalModule, callback: L.Callback, max_steps: int, ckpt_path: str | None = None
) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, train_dataloaders=loader(), ckpt_path=ckpt_path)
    return trainer


def nonzeros(model: FrugalModule) -> list[int]:
    return [int(mask.mask.sum()) for _, mask in layer_masks(model.backbone)]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_configs_instantiate(path):
    callback = instantiate(OmegaConf.load(path))
    assert isinstance(callback, GradualMagnitudePruning | DynamicSparseTraining | StructuredPruning)


def test_cubic_schedule_values():
    gmp = GradualMagnitudePruning(final_sparsity=0.9, start_step=10)
    assert gmp.sparsity_at(5, end_step=110) == 0.0
    assert gmp.sparsity_at(10, end_step=110) == 0.0
    assert gmp.sparsity_at(60, end_step=110) == pytest.approx(0.9 - 0.9 * 0.5**3)
    assert gmp.sparsity_at(110, end_step=110) == pytest.approx(0.9)
    assert gmp.sparsity_at(500, end_step=110) == pytest.approx(0.9)
    ramp = GradualMagnitudePruning(final_sparsity=0.8, initial_sparsity=0.2)
    assert ramp.sparsity_at(0, end_step=100) == pytest.approx(0.2)
    assert ramp.sparsity_at(25, end_step=100) == pytest.approx(0.8 - 0.6 * 0.75**3)


def test_cosine_drop_fraction():
    rigl = DynamicSparseTraining(drop_fraction=0.3)
    assert rigl.drop_fraction_at(0, end_step=100) == pytest.approx(0.3)
    assert rigl.drop_fraction_at(50, end_step=100) == pytest.approx(0.15)
    assert rigl.drop_fraction_at(100, end_step=100) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (GradualMagnitudePruning, {"final_sparsity": 1.5}, "final_sparsity"),
        (GradualMagnitudePruning, {"initial_sparsity": 0.5, "final_sparsity": 0.2}, "initial"),
        (GradualMagnitudePruning, {"scope": "row"}, "scope"),
        (GradualMagnitudePruning, {"start_step": 50, "end_step": 10}, "start_step"),
        (DynamicSparseTraining, {"mode": "snip"}, "mode"),
        (DynamicSparseTraining, {"density": 0.0}, "density"),
        (DynamicSparseTraining, {"update_every": 0}, "update_every"),
        (DynamicSparseTraining, {"distribution": "normal"}, "distribution"),
    ],
)
def test_bad_arguments_are_rejected_with_the_accepted_form(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_gmp_reaches_final_sparsity_at_end_step():
    model = module()
    gmp = GradualMagnitudePruning(final_sparsity=0.8, update_every=3, end_fraction=0.5)
    fit(model, gmp, max_steps=12)
    weights = sum(layer.weight.numel() for layer in maskable_layers(model.backbone).values())
    assert sparsity_of(model.backbone) == pytest.approx(0.8, abs=1 / weights)
    assert gmp.state_dict() == {"sparsity": pytest.approx(0.8), "last_update_step": 12}


@pytest.mark.parametrize("mode", ["rigl", "set"])
def test_dynamic_sparse_training_moves_masks_at_constant_density(mode):
    model = module("sparse_cnn")  # brings its own ERK masks, 20 % dense
    before_counts = nonzeros(model)
    before = [mask.mask.clone() for _, mask in layer_masks(model.backbone)]
    dst = DynamicSparseTraining(mode=mode, update_every=2, drop_fraction=0.5)
    fit(model, dst, max_steps=10)
    assert dst.updates == 3  # steps 2, 4, 6; none at or after 0.75 · 10
    assert nonzeros(model) == before_counts
    after = [mask.mask for _, mask in layer_masks(model.backbone)]
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    assert all(not mask.track_grad for _, mask in layer_masks(model.backbone))


def test_rigl_grows_where_the_gradient_is_largest_from_zero():
    model = module("mlp_tiny")
    dst = DynamicSparseTraining(mode="rigl", density=0.5, distribution="uniform", update_every=1)
    fit(model, dst, max_steps=1)  # masks exist; one step, no update (0 < step < end fails)
    layer, mask = layer_masks(model.backbone)[0]
    active = mask.mask.bool().clone()
    scores = torch.arange(1.0, active.numel() + 1).view_as(active)  # distinct, positive
    mask.dense_grad = torch.where(active, 0.0, scores)
    trainer = L.Trainer(accelerator="cpu", logger=False)
    dst._update_layer(trainer, layer, mask, fraction=0.25)
    grown = mask.mask.bool() & ~active
    n_drop = int(0.25 * active.sum())
    assert int(grown.sum()) == n_drop  # the inactive positions with the largest gradient
    expected = torch.where(active, -1.0, scores).flatten().topk(n_drop).indices
    assert torch.equal(grown.flatten().nonzero().flatten(), expected.sort().values)
    assert bool((layer.parametrizations.weight.original[grown] == 0).all())


@pytest.mark.parametrize(
    "make_callback",
    [
        lambda: GradualMagnitudePruning(final_sparsity=0.9, update_every=2),
        lambda: DynamicSparseTraining(mode="set", density=0.3, update_every=2, end_fraction=1.0),
    ],
)
def test_resume_restores_masks_and_schedule(tmp_path, make_callback):
    model, callback = module(), make_callback()
    trainer = fit(model, callback, max_steps=6)
    ckpt = tmp_path / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    saved_masks = [mask.mask.clone() for _, mask in layer_masks(model.backbone)]
    saved_state = callback.state_dict()

    torch.manual_seed(1)  # fresh dense weights, fresh random masks: all must come from ckpt
    resumed_model, resumed = module(), make_callback()
    fit(resumed_model, resumed, max_steps=6, ckpt_path=str(ckpt))  # already done: no step
    assert resumed.state_dict() == saved_state
    for layer, saved in zip(
        maskable_layers(resumed_model.backbone).values(), saved_masks, strict=True
    ):
        assert torch.equal(weight_mask(layer).mask, saved)
