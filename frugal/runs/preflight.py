"""A run's configuration checked before anything is built or written (`check_config`): its values
(`frugal.config.check`), then what needs reading — a data file, a checkpoint and whether its
weights fit the model, a distillation teacher — and last the output directory: never another
run's (`frugal.runs.rundir`). A size search is checked as the first size of its ladder, then
each other size's model. Each reader lives with what it reads; torch comes with the first
checkpoint or model read (the command line's quick checks run without it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from frugal.budget.spec import BudgetSpec
from frugal.config.check import Checked, check_budget_needs, check_top, check_values
from frugal.config.fit import check_batches, check_model_contents, check_model_size
from frugal.config.resolve import plain
from frugal.config.size_search import check_from_scratch, check_search, ladder, searched, with_size
from frugal.config.sources import data_task, file_splits, known_shape, train_size
from frugal.meters.energy.config import EnergyConfig
from frugal.runs.rundir import check_output_dirs


def check_config(
    cfg: DictConfig | Mapping[str, Any],
    meter_given: bool = False,
    output_key: str = "paths.output_dir",
    on_this_machine: bool = True,
    check_dirs: bool = True,
) -> Checked:
    """Every check that can run before data and model exist; raises ConfigError.

    `meter_given`: the caller brings its own energy meter (the configured backend is not used);
    `output_key`: how the output directory is named in an error (`hydra.run.dir` on the
    command line); `on_this_machine`: False when a launcher runs the job on another machine
    (SLURM from a login node): its GPUs and energy counters are checked by the job itself;
    `check_dirs=False` leaves the output directories to the caller (a sweep checks every job's
    values first, then their directories)."""
    node = check_top(cfg)
    if searched(node):
        return check_ladder(node, meter_given, output_key, on_this_machine, check_dirs)
    checked = check_values(node, meter_given, on_this_machine)
    check_contents(cfg, node)
    if check_dirs:
        check_output_dirs(node, output_key)
    return checked


def check_ladder(
    node: dict[str, Any], meter_given: bool, output_key: str, on_this_machine: bool, dirs: bool
) -> Checked:
    """A size search: the ladder's first size as its own run, then each other's model (all
    that differs between them), then what the search itself needs."""
    check_from_scratch(node)
    checked = None
    for size in ladder(node):
        concrete = with_size(node, size)
        if checked is None:
            checked = check_config(concrete, meter_given, output_key, on_this_machine, dirs)
        else:
            check_model_size(concrete)
    if checked is None:
        checked = Checked(BudgetSpec.from_config(node.get("budget")), EnergyConfig())
    check_search(node, checked.budget)
    return checked


def check_derived(
    cfg: DictConfig, checked: Checked, meter_given: bool = False, check_dirs: bool = False
) -> Checked:
    """A configuration frugal derived from one `check_config` passed — a sweep job's
    reservation of its envelope (`frugal.sweep.envelope.join`), a size search's pilots and final
    run (`frugal.sweep.auto_size`) — checked only where it differs: its budget, with what
    depends on it. Returns `checked` with that budget; raises ConfigError. `check_dirs`: its
    output directory too (a sweep job's, left by its first check, once it has joined)."""
    node = cfg.get("budget")
    budget = BudgetSpec.from_config(OmegaConf.to_container(node, resolve=True) if node else None)
    check_budget_needs(cfg.trainer, budget, checked.energy, meter_given)
    if check_dirs:
        resolved = plain(cfg)
        resolved.pop("hydra", None)
        check_output_dirs(resolved, "paths.output_dir")
    return Checked(budget, checked.energy)


def check_contents(cfg: DictConfig | Mapping[str, Any], node: dict[str, Any]) -> None:
    """Checks that read files or import the user's code; each lives with what it checks
    (`frugal.data.build`, `frugal.runs.checkpoint`, `frugal.runs.distill`, `frugal.config.fit`).
    Their modules import torch: imported here, when a run needs them."""
    cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(node)
    if "_target_" in node["data"] or data_task(node["data"]) == "files":
        from frugal.data.build import check_source  # torch; reads a data file once, in full

        check_source(cfg.data)
    splits = file_splits(node)
    if node.get("ckpt_path") or node.get("init_from"):
        from frugal.runs.checkpoint import check_checkpoint  # torch

        check_checkpoint(cfg)
    if node.get("distill") is not None:
        from frugal.runs.distill import check_teacher  # torch; reads the teacher and its run

        check_teacher(node["distill"], node["data"])
    shape, samples = known_shape(node, splits), train_size(node, splits)
    backbone = check_model_contents(cfg, node, shape, samples)
    for key in ("ckpt_path", "init_from"):
        if node.get(key) and backbone is not None:
            check_checkpoint_fits(cfg, node, backbone, key)
    if shape is not None:
        check_batches(node, samples)


def check_checkpoint_fits(
    cfg: DictConfig, node: dict[str, Any], backbone: Any, key: str = "ckpt_path"
) -> None:
    """The weights of checkpoint `key` fit the configured model (as `frugal.pipeline` checks
    again before loading them). Left to the run where sparse training is involved: its
    callbacks may change shapes (structured pruning) before the weights are loaded."""
    from frugal.runs.checkpoint import check_shapes, saved_config  # torch

    saved = saved_config(Path(str(node[key])).expanduser())
    if node.get("sparsity") is not None or (saved is not None and saved.get("sparsity")):
        return
    state = {f"backbone.{name}": value for name, value in backbone.state_dict().items()}
    check_shapes(state, cfg, key)
