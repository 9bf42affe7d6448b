"""Questions about a configuration that asks for a size search (`model.kwargs.width_mult=auto`
or `depth=auto`): which knobs are searched, the ladder of sizes to try, one size made concrete,
and what a search needs before it starts. The search itself runs in `frugal.sweep.auto_size`."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any

from frugal.budget.spec import BudgetSpec
from frugal.core.errors import bad

KNOBS = ("width_mult", "depth")
AUTO = "auto"
# The budgets a search can divide, in the order one is chosen as the search's axis.
AXES = ("energy_j", "carbon_g", "time_s", "compute_flop", "data_samples")


def searched(node: Mapping[str, Any]) -> list[str]:
    """The size knobs the model leaves to the planner (`model.kwargs.<knob>=auto`)."""
    model = node.get("model")
    kwargs = model.get("kwargs") if isinstance(model, Mapping) else None
    if not isinstance(kwargs, Mapping):  # not a group of keys: the schema says so
        return []
    return [knob for knob in KNOBS if kwargs.get(knob) == AUTO]


def ladder(node: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every size to try: the product of the ladders of the searched knobs."""
    knobs = searched(node)
    search = node.get("size_search") or {}
    values = [list(search.get(knob) or []) for knob in knobs]
    return [dict(zip(knobs, combo, strict=True)) for combo in itertools.product(*values)]


def with_size(node: dict[str, Any], size: Mapping[str, Any]) -> dict[str, Any]:
    concrete = copy.deepcopy(node)
    concrete["model"]["kwargs"] = {**(concrete["model"].get("kwargs") or {}), **size}
    return concrete


def axis_of(budget: BudgetSpec) -> str | None:
    enforced = budget.enforced()
    return next((key for key in AXES if key in enforced), None)


def check_from_scratch(node: Mapping[str, Any]) -> None:
    """Before any size is checked: a search trains its sizes from scratch (a checkpoint named
    here could fit one size only)."""
    if any(node.get(k) for k in ("ckpt_path", "init_from", "compress", "distill")):
        raise bad(
            f"model.kwargs.{searched(node)[0]}",
            AUTO,
            "a size search starts from scratch",
            "no ckpt_path, init_from, compress or distill with it (resume=<run> continues an "
            "interrupted search)",
        )


def check_search(node: Mapping[str, Any], budget: BudgetSpec) -> None:
    """What a size search needs beyond what every size's own checks found."""
    knob = searched(node)[0]
    if axis_of(budget) is None:
        raise bad(
            f"model.kwargs.{knob}",
            AUTO,
            "no budget to choose a size within",
            "a budget: add one, e.g. budget.energy=400J (or budget.compute, budget.data, "
            "budget.time, budget.carbon)",
        )
    if len(ladder(node)) < 2:
        raise bad(
            f"size_search.{knob}",
            ...,
            "needs at least two sizes to choose from",
            "a list of sizes, e.g. [0.5, 1.0, 2.0]",
        )
    trainer = node.get("trainer") or {}
    devices, nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1)
    if devices not in (1, "1") or nodes not in (1, None):
        raise bad(
            f"model.kwargs.{knob}",
            AUTO,
            "the size search runs on one device",
            "trainer.devices=1 and trainer.num_nodes=1, or a size picked for a multi-device run",
        )
