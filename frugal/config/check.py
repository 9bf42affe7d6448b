"""The configuration's values checked, before anything is built or written (`check_values`;
`frugal.runs.preflight.check_config` adds what needs reading: files, checkpoints, the run
directory).

In order, so that the first problem found is the one a user can act on:
1. every value resolves (interpolations) and none is left `???` (`frugal.config.resolve`);
2. the top level, a sweep's envelope and a size search (`check_top`), then each group against
   its schema (`frugal.config.schema`, `schema_training`), `_target_` nodes bound to their
   target's signature, model kwargs to the builder's (`frugal.config.targets`), the data
   source (`frugal.config.sources`);
3. cross-checks: the budget (`BudgetSpec.from_config`, the unit parser), the energy node
   (`EnergyConfig`) and that a named RAPL/NVML backend is present, the accelerator exists,
   compression has a checkpoint, the model suits the data's task (`frugal.config.hardware`).
Every size a user can set is weighed against what this machine can hold (`frugal.core.machine`)
before anything is allocated: threads and processes here, a data source's arrays with the
data (`frugal.data.sizes`), the model's footprint on the meta device with the model
(`frugal.config.fit`).
Every problem raises `ConfigError` with one line (`frugal.core.errors`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from frugal.budget.spec import BudgetSpec, envelope_of
from frugal.config import schema, schema_training
from frugal.config.hardware import (
    check_accelerator,
    check_devices,
    check_energy,
    check_energy_backend,
    check_processes,
    check_threads,
    processes_here,
)
from frugal.config.resolve import plain, validated
from frugal.config.sources import GENERIC_DATA, check_data, check_paths, data_task
from frugal.config.targets import (
    check_compress,
    check_entries,
    check_model,
    check_target,
    check_trainer,
)
from frugal.core.errors import bad
from frugal.meters.energy.config import EnergyConfig


@dataclass
class Checked:
    """What start-up validation produced, before anything expensive is built."""

    budget: BudgetSpec
    energy: EnergyConfig


def check_top(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """`cfg` resolved (Hydra's own node left out), its top level, a sweep's envelope and a size
    search checked; returns the plain node the other checks take."""
    node = plain(cfg)
    node.pop("hydra", None)
    validated(schema.TopLevel, node, "")
    if node.get("sweep_budget") is not None:
        envelope_of(node["sweep_budget"])  # units and keys, each named in its own words
        validated(schema.SweepBudget, node["sweep_budget"], "sweep_budget")
    if node.get("size_search") is not None:
        validated(schema.SizeSearch, node["size_search"], "size_search")
    return node


def check_values(node: dict[str, Any], meter_given: bool, on_this_machine: bool) -> Checked:
    """Every group of `node` (from `check_top`, one concrete run: no size left `auto`), then
    the cross-checks; raises ConfigError. `meter_given`, `on_this_machine`: as
    `frugal.runs.preflight.check_config` takes them."""
    check_paths(node["paths"])
    if on_this_machine:  # before the data: each process holds its own copy
        check_processes(node["trainer"])
    check_data(node["data"], processes_here(node["trainer"]))
    check_model(node["model"])
    training = schema_training
    check_target("optimizer", node["optimizer"], training.OPTIMIZERS, training.Partial)
    if node.get("scheduler"):  # {} (scheduler=constant) and null: no scheduler
        check_target("scheduler", node["scheduler"], training.SCHEDULERS, training.Partial)
    if node.get("sparsity") is not None:
        check_target("sparsity", node["sparsity"], training.SPARSITY, schema.TargetNode)
    if node.get("compress") is not None:
        check_compress(node["compress"])
    if node.get("distill") is not None:
        validated(schema.Distill, node["distill"], "distill")
    check_trainer(node["trainer"])
    check_entries("callbacks", node.get("callbacks"), training.CALLBACKS)
    check_entries("logger", node.get("logger"), training.LOGGERS)
    if node.get("inference") is not None:
        validated(schema.Inference, node["inference"], "inference")
    budget = BudgetSpec.from_config(node.get("budget"))
    energy = check_energy(node.get("energy") or {})
    cross_check(node, budget, energy, meter_given, on_this_machine)
    return Checked(budget, energy)


# ---- cross-checks ----------------------------------------------------------------------------
def cross_check(
    node: dict[str, Any],
    budget: BudgetSpec,
    energy: EnergyConfig,
    meter_given: bool,
    on_this_machine: bool = True,
) -> None:
    trainer = node["trainer"]
    check_budget_needs(trainer, budget, energy, meter_given)
    if not meter_given and on_this_machine:
        check_energy_backend(energy)
    check_weights_named(node)
    if on_this_machine:
        check_accelerator(trainer)
    check_outputs_named(node)
    check_devices(trainer)
    check_horizon(node)
    check_task(node)
    check_structured_ranks(node)
    if on_this_machine:
        check_threads(node.get("threads"))


def check_weights_named(node: dict[str, Any]) -> None:
    """Where a run's starting weights come from: one place (`init_from` for a new run, else
    `ckpt_path`), and compression has a trained model."""
    if node.get("init_from") and (
        node.get("ckpt_path") or node.get("resume") or node.get("compress") is not None
    ):
        other = "compress" if node.get("compress") is not None else "a resumed run"
        raise bad(
            "init_from",
            node["init_from"],
            f"starts a new run from those weights; {other} takes its own from ckpt_path",
            "init_from (a new run from trained weights) or ckpt_path, not both",
        )
    if node.get("compress") is not None and not node.get("ckpt_path"):
        raise bad(
            "compress",
            node["compress"].get("method"),
            "needs a trained model to compress",
            "ckpt_path=<run>/checkpoints/last.ckpt as well",
        )


def check_outputs_named(node: dict[str, Any]) -> None:
    """Checkpoints saved only when checkpointing is on; a logger's package installed."""
    checkpointing = node["trainer"].get("enable_checkpointing")
    if checkpointing is False and any(
        (entry or {}).get("_target_", "").endswith("ModelCheckpoint")
        for entry in (node.get("callbacks") or {}).values()
    ):
        raise bad(
            "trainer.enable_checkpointing",
            False,
            "the callbacks group saves checkpoints",
            "true, or callbacks.model_checkpoint=null as well",
        )
    for name, entry in (node.get("logger") or {}).items():
        package = schema_training.LOGGER_PACKAGES.get((entry or {}).get("_target_"))
        if package and importlib.util.find_spec(package[0]) is None:
            raise bad(
                f"logger.{name}",
                entry["_target_"],
                f"needs the {package[0]} package",
                f"pip install {package[1]}, or logger=csv",
            )


def check_budget_needs(
    trainer: Mapping[str, Any], budget: BudgetSpec, energy: EnergyConfig, meter_given: bool
) -> None:
    """What the budget asks of the rest: an enforced budget no minimum of epochs or steps
    holds back, an energy or carbon budget a meter."""
    for key in ("min_epochs", "min_steps"):
        value = trainer.get(key)
        if budget.is_hard and value:
            raise bad(
                f"trainer.{key}",
                value,
                "Lightning ignores a stop until it is met, so it cannot "
                "be combined with an enforced budget",
                "null or 0",
            )
    wants_energy = {"energy_j", "carbon_g"} & set(budget.enforced())
    if not meter_given and energy.backend == "none" and wants_energy:
        raise bad(
            "energy.backend",
            "none",
            "an energy or carbon budget needs an energy meter",
            "auto, rapl, nvml or codecarbon",
        )


def check_structured_ranks(node: dict[str, Any]) -> None:
    """Structured pruning changes the model's shapes mid-run, which DDP cannot follow (its
    callback refuses more than one process; found here, before any process starts)."""
    target = (node.get("sparsity") or {}).get("_target_", "")
    trainer = node["trainer"]
    nodes = trainer.get("num_nodes") if isinstance(trainer.get("num_nodes"), int) else 1
    ranks = processes_here(trainer) * max(nodes, 1)
    if target.endswith("StructuredPruning") and ranks > 1:
        raise bad(
            "sparsity",
            "structured",
            f"prunes channels, which DDP cannot follow, and the run has {ranks} processes",
            "one device (trainer.devices=1, trainer.num_nodes=1), or sparsity=gmp/rigl/set",
        )


def check_horizon(node: dict[str, Any]) -> None:
    """A warmup that a fixed horizon (`trainer.max_steps`) never finishes is a mistake: the
    learning rate would never reach its peak."""
    scheduler, max_steps = node.get("scheduler") or {}, node["trainer"].get("max_steps")
    warmup = scheduler.get("warmup_steps") if isinstance(scheduler, dict) else None
    if isinstance(warmup, int) and isinstance(max_steps, int) and 0 < max_steps <= warmup:
        raise bad(
            "scheduler.warmup_steps",
            warmup,
            f"the run has trainer.max_steps={max_steps}, so the warmup never ends",
            f"a whole number of steps below {max_steps}, e.g. 0",
        )


def check_task(node: dict[str, Any]) -> None:
    """A model built for one benchmark is not trained on another (`data=digits model=cnn`):
    generic data (synthetic, files) takes any model that fits its shape."""
    task, data = node["model"].get("task"), data_task(node["data"])
    if task and data and data not in GENERIC_DATA and data != task:
        raise bad(
            "model.task",
            task,
            f"model={node['model'].get('name')} is built for {task}, not for data={data}",
            f"data={task}, or a model whose task is {data}",
        )
