"""`compress_model`: SVD factorisation and magnitude pruning of trained networks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from frugal.models import create_model
from frugal.models.accounting import count_params, count_params_effective
from frugal.models.compress import compress_model
from frugal.models.layers import LowRankConv1d, LowRankConv2d, LowRankLinear
from frugal.models.sparse import maskable_layers, sparsity_of

CONF = Path(__file__).resolve().parents[1] / "conf" / "compress"
SHAPES = {"mlp": (40,), "cnn": (40,), "cnn2d": (1, 8, 8), "dsconv_cnn": (40,)}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_svd_at_full_rank_preserves_outputs(name):
    model = create_model(name, SHAPES[name], 10)
    x = torch.randn(4, *SHAPES[name])
    compressed = compress_model(model, "svd", rank_ratio=1.0)
    torch.testing.assert_close(compressed(x), model(x), rtol=1e-4, atol=1e-4)
    factors = _factor_layers(compressed)
    dense = [m for m in maskable_layers(compressed).values() if getattr(m, "groups", 1) == 1]
    assert dense and all(m in factors for m in dense)  # every dense layer was factorised


def _factor_layers(model: torch.nn.Module) -> set[torch.nn.Module]:
    low_rank = (LowRankLinear, LowRankConv1d, LowRankConv2d)
    return {c for m in model.modules() if isinstance(m, low_rank) for c in m.children()}


def test_svd_is_a_copy_and_lowers_the_size():
    model = create_model("cnn", (40,), 10)
    compressed = compress_model(model, "svd", rank_ratio=0.25)
    assert count_params(model) == 5_210  # the input model is untouched
    # conv1 r=1: 1·5 + 25 + 25; conv2/3 r=6: 6·75 + 6·25 + 25; head r=3 (2.5 rounds up): 3·135 + 10
    assert count_params(compressed) == 55 + 2 * 625 + 415
    assert compressed(torch.randn(2, 40)).shape == (2, 10)


def test_svd_by_energy_keeps_that_fraction_of_each_spectrum():
    model = create_model("mlp", (40,), 10)
    compressed = compress_model(model, "svd", energy=0.5, rank_ratio=1.0)  # energy wins
    for dense, low in zip(
        [m for m in model.net if isinstance(m, torch.nn.Linear)],
        [m for m in compressed.net if isinstance(m, LowRankLinear)],
        strict=True,
    ):
        power = torch.linalg.svdvals(dense.weight.detach()).square()
        kept = power[: low.rank].sum() / power.sum()
        assert kept >= 0.5 > power[: low.rank - 1].sum() / power.sum()


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_prune_reaches_the_target_sparsity(scope):
    model = create_model("cnn", (40,), 10)
    pruned = compress_model(model, "prune", sparsity=0.8, scope=scope)
    weights = sum(m.weight.numel() for m in maskable_layers(pruned).values())
    assert weights == 5_125
    assert sparsity_of(pruned) == 4_100 / 5_125  # exactly 0.8
    assert count_params(pruned) == 5_210
    assert count_params_effective(pruned) == 85 + 1_025
    assert sparsity_of(model) == 0.0


def test_prune_then_svd_factorises_the_masked_weights():
    pruned = compress_model(create_model("mlp", (40,), 10), "prune", sparsity=0.5)
    x = torch.randn(3, 40)
    torch.testing.assert_close(
        compress_model(pruned, "svd", rank_ratio=1.0)(x), pruned(x), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("method", ["svd", "prune"])
def test_configs_bind_to_compress_model(method):
    options = yaml.safe_load((CONF / f"{method}.yaml").read_text())
    assert options["method"] == method
    model = compress_model(create_model("cnn", (40,), 10), **options)
    assert count_params_effective(model) < 5_210


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="svd"):
        compress_model(create_model("mlp", (40,), 10), "quantize")


def test_a_compressed_run_records_its_story(run_train, tmp_path):
    """`compression` in result.json: the source run, what it spent, and the accuracy right
    after compressing (before fine-tuning)."""
    source, _ = run_train("model=mlp_tiny", out=tmp_path / "source")
    ckpt = tmp_path / "source" / "checkpoints" / "last.ckpt"
    result, _ = run_train(
        "model=mlp_tiny",
        "compress=svd",
        "compress.rank_ratio=0.5",
        f"ckpt_path={ckpt}",
        "trainer.max_steps=5",
        out=tmp_path / "compressed",
    )
    story = result["compression"]
    assert story["method"] == "svd"
    assert story["options"]["rank_ratio"] == 0.5
    assert story["source_run"] == str((tmp_path / "source").resolve())
    assert story["source_spent"] == source["spent"]
    assert 0.0 <= story["acc_after_compression"] <= 1.0


def test_source_spent_falls_back_to_the_checkpoint_ledger(run_train, tmp_path):
    """A source run without its result.json (killed) still has its ledger in the checkpoint."""
    from frugal.models.compress import source_spent

    source, _ = run_train("model=mlp_tiny", out=tmp_path / "source")
    for name in ("result.json", "ledger.json"):
        (tmp_path / "source" / name).unlink(missing_ok=True)
    spent = source_spent(tmp_path / "source" / "checkpoints" / "last.ckpt")
    assert spent is not None
    assert spent["data_samples"] == source["spent"]["data_samples"]
