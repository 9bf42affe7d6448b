"""Checkpoints: read safely, checked before use, and resumed by run.

- **Safe.** Every checkpoint frugal reads is loaded with `torch.load(weights_only=True)`: tensors
  and plain values only, so a crafted file cannot run code. Lightning gets the same setting
  (`trainer.fit/test(weights_only=True)`). The checkpoints frugal writes hold nothing else.
- **Checked up front.** `ckpt_path` must be a regular file, a PyTorch checkpoint, and one that
  frugal-train wrote (model weights under `backbone.*`, the budget ledger among the callbacks'
  states); before training or compressing, its weights must fit the configured model, else one
  line names `ckpt_path` and the mismatch.
- **Resume by run.** `ckpt_path=<run>/checkpoints/last.ckpt` (or `resume=<run>`) continues that
  run: its saved configuration (`<run>/.hydra/config.yaml`) is restored — model, data,
  optimizer, budget, trainer, … — this command line's overrides are applied on top, and outputs
  go to the same run directory. An override that would change the run's model, data or budget
  is refused: that is a new run, not a resumed one.
"""

from __future__ import annotations

import copy
import functools
import json
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from frugal.budget.spec import BudgetSpec
from frugal.config.size_search import searched
from frugal.core.errors import ConfigError, bad, first_line, one_line, setting, shown
from frugal.core.inputs import regular_file
from frugal.models.registry import model_name
from frugal.runs.record import LAST_CKPT

EXPECTED = "a checkpoint frugal-train wrote, e.g. <run>/checkpoints/last.ckpt"
# The keys naming a checkpoint whose weights a run takes: to resume it, or to start from.
WEIGHT_KEYS = ("ckpt_path", "init_from")
SAVED_CONFIG = Path(".hydra") / "config.yaml"  # written by Hydra at the start of every run
# What a resumed run keeps from the original: changing any of these starts a new run instead.
KEPT = ("model", "data", "budget")
# Never restored from the saved config: machine paths, Hydra's own node, the resume itself.
NOT_RESTORED = ("paths", "hydra", "ckpt_path", "resume", "init_from")
MASK_KEY = re.compile(r"\.parametrizations\.weight\.\d+\.mask$")
MASKED_WEIGHT = re.compile(r"\.parametrizations\.weight\.original$")


# ---- reading ---------------------------------------------------------------------------------
def load_checkpoint(value: object, key: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint `value` names, loaded without executing anything and checked to be one
    frugal-train wrote. Raises ConfigError naming `key`. The same dict for an unchanged file."""
    path = regular_file(value, key, EXPECTED)
    info = path.stat()
    identity = (str(path.resolve()), info.st_ino, info.st_size, info.st_mtime_ns)
    return _load(identity, setting(key, value))


@functools.lru_cache(maxsize=2)
def _load(identity: tuple[str, int, int, int], where: str) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols: noise on stderr
            warnings.simplefilter("ignore")
            checkpoint = torch.load(identity[0], map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f"a {found[1]} object" if found else "objects other than tensors and plain values"
        raise bad(
            where,
            ...,
            f"holds {what}, which loading would have to execute",
            f"tensors and plain values only, as in {EXPECTED}",
        ) from None
    except Exception as err:  # truncated, not a zip, a text file: torch raises many kinds
        raise bad(
            where,
            ...,
            f"not a readable PyTorch checkpoint ({first_line(err)})",
            EXPECTED,
        ) from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(k, str) and k.startswith("backbone.") for k in state)
    ):
        raise bad(where, ..., "holds no frugal model weights (backbone.*)", EXPECTED)
    callbacks = checkpoint.get("callbacks")
    if not isinstance(callbacks, dict) or not any(
        isinstance(v, dict) and "ledger" in v for v in callbacks.values()
    ):
        raise bad(where, ..., "holds no budget ledger", EXPECTED)
    return checkpoint


def check_checkpoint(cfg: DictConfig) -> None:
    """Start-up check of `ckpt_path` and `init_from` (those set): readable checkpoints that
    frugal-train wrote."""
    for key in WEIGHT_KEYS:
        if cfg.get(key):
            load_checkpoint(cfg[key], key)


# ---- fitting the configured model ------------------------------------------------------------
def check_fits(module: nn.Module, cfg: DictConfig, key: str = "ckpt_path") -> None:
    """The weights in `cfg[key]` have the names and shapes of `module`'s (a FrugalModule
    before training starts). Masks added by sparse training are left out of the comparison:
    the sparsity callbacks add them again before Lightning restores the weights."""
    check_shapes(module.state_dict(), cfg, key)


def check_shapes(state: dict[str, Any], cfg: DictConfig, key: str = "ckpt_path") -> None:
    """`check_fits` for a FrugalModule's `state_dict` (meta tensors will do: only shapes are
    compared), so that the command line can check before anything is built for real."""
    named = cfg[key]
    checkpoint = load_checkpoint(named, key)
    expected = _weight_shapes(state)
    found = _weight_shapes(checkpoint["state_dict"])
    if expected == found:
        return
    where = setting(key, named)
    configured = describe_run(cfg)
    saved = saved_config(Path(str(named)).expanduser())
    trained = describe_run(saved) if saved is not None else None
    if trained is not None and trained != configured:
        raise bad(
            where,
            ...,
            f"trained as {trained}, configured {configured}",
            f"a checkpoint of the configured model and data (or {trained})",
        )
    raise bad(
        where,
        ...,
        f"its weights do not fit {configured} ({_difference(found, expected)})",
        "a checkpoint of the configured model and data",
    )


def load_weights(module: nn.Module, cfg: DictConfig, key: str = "ckpt_path") -> None:
    """Load the trained weights of `cfg[key]` into `module` (for `compress=`, `init_from=`):
    checked to fit; a weight trained under a mask (sparse training) arrives with its mask
    applied."""
    check_fits(module, cfg, key)
    wanted = module.state_dict().keys()
    state = load_checkpoint(cfg[key], key)["state_dict"]
    module.load_state_dict(_fold_masks(state, wanted))


def _weight_shapes(state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {
        MASKED_WEIGHT.sub(".weight", key): tuple(getattr(value, "shape", ()))
        for key, value in state.items()
        if not MASK_KEY.search(key)
    }


def _difference(found: dict[str, tuple], expected: dict[str, tuple]) -> str:
    for key, shape in expected.items():
        if key not in found:
            return f"{key} is missing from the checkpoint"
        if found[key] != shape:
            return f"{key} is {found[key]} in the checkpoint, {shape} in the model"
    extra = next(key for key in found if key not in expected)
    return f"the checkpoint has {extra}, the model does not"


def _fold_masks(state: dict[str, Any], wanted: Any) -> dict[str, Any]:
    folded = {}
    for key, value in state.items():
        if key in wanted:
            folded[key] = value
        elif MASKED_WEIGHT.search(key):
            prefix = MASKED_WEIGHT.sub("", key)
            masks = [v for k, v in state.items() if k.startswith(prefix) and MASK_KEY.search(k)]
            folded[f"{prefix}.weight"] = value * masks[0] if masks else value
    return folded


# ---- resume by run ---------------------------------------------------------------------------
def run_dir_of(ckpt: Path) -> Path | None:
    """The run directory a checkpoint belongs to (`<run>/checkpoints/<name>.ckpt` next to
    `<run>/.hydra/config.yaml`), None for a checkpoint kept anywhere else."""
    run = ckpt.expanduser().absolute().parent.parent
    if ckpt.parent.name == "checkpoints" and (run / SAVED_CONFIG).is_file():
        return run
    return None


def saved_config(ckpt: Path) -> DictConfig | None:
    """The saved configuration of the run `ckpt` belongs to, None if there is none to read."""
    run = run_dir_of(ckpt)
    if run is None:
        return None
    try:
        saved = OmegaConf.load(run / SAVED_CONFIG)
    except Exception:  # unreadable: then the checkpoint is used without its run's settings
        return None
    return saved if isinstance(saved, DictConfig) else None


def describe_run(cfg: DictConfig) -> str:
    """`model=<name> data=<dataset>` of a configuration, for one-line messages."""
    model = cfg.get("model") or {}
    data = cfg.get("data") or {}
    source = data.get("source") or {}
    if data.get("_target_"):
        dataset = str(data.get("_target_"))
    elif str(source.get("_target_", "")).endswith(".files"):
        dataset = f"files({source.get('path')})"
    else:
        dataset = str(source.get("_target_", "?")).rpartition(".")[2]
    name = model_name(model) if model else "?"
    return f"model={name} data={dataset}"


def resolve_resume(cfg: DictConfig) -> DictConfig:
    """The configuration a run actually uses when it resumes or compresses a checkpoint.

    - `resume=<run>` or `ckpt_path=<run>` (a directory) name `<run>/checkpoints/last.ckpt`.
    - Resuming a checkpoint of a run: the run's saved configuration, with this command line's
      overrides on top (an override of its model, data or budget is refused), written into the
      same run directory.
    - `compress=` with a checkpoint of a run: the run's model and data, unless overridden; the
      compressed model is fine-tuned as a new run under a fresh budget.
    - A checkpoint outside a run directory: used as configured (its weights are checked to fit
      by `check_fits`).
    """
    search = search_run(cfg)
    if search is not None:  # a size search continues its own parts (frugal.sweep.auto_size)
        where = setting("resume", cfg.resume)
        saved = saved_config(search / LAST_CKPT)
        assert saved is not None  # search_run checked it
        overrides = _overrides()
        _refuse_changes(overrides, cfg, saved, where)
        return _restored(cfg, saved, search, overrides)
    found = _checkpoint_named(cfg)
    if found is None:
        return cfg
    key, value, ckpt = found
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.ckpt_path = str(ckpt)
    run = run_dir_of(ckpt)
    saved = saved_config(ckpt)
    if run is None or saved is None:
        return cfg
    overrides = _overrides()
    overridden = {o.key_or_group.split(".")[0] for o in overrides}
    if cfg.get("compress"):
        with open_dict(cfg):
            for section in ("model", "data"):
                if section not in overridden and section in saved:
                    cfg[section] = saved[section]
        return cfg
    where = setting(key, value)
    if saved.get("compress"):
        raise bad(
            where,
            ...,
            "that run fine-tuned a compressed model, which cannot be resumed",
            "a run trained without compress=",
        )
    _refuse_changes(overrides, cfg, saved, where)
    return _restored(cfg, saved, run, overrides)


def _restored(
    cfg: DictConfig, saved: DictConfig, run: Path, overrides: list[Override]
) -> DictConfig:
    """The run's saved configuration, this command line's overrides on top, its directory."""
    original = cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for section in saved:
            if section not in NOT_RESTORED:
                cfg[section] = saved[section]
        for override in overrides:  # the command line wins where it may
            _apply(override, cfg, original)
        cfg.paths.output_dir = str(run)
    return cfg


def search_run(cfg: Any) -> Path | None:
    """The run `resume=<run>` names when that run is a size search (`model.kwargs.<knob>=auto`
    in its saved configuration): resumed as a whole, each pilot and the final run from its own
    checkpoint, not from one `ckpt_path`."""
    value = cfg.get("resume")
    if not value or cfg.get("ckpt_path"):
        return None
    run = Path(str(value)).expanduser().absolute()
    saved = saved_config(run / LAST_CKPT)
    if saved is None:
        return None
    return run if searched(saved) else None


def resume_argv(argv: list[str]) -> list[str]:
    """For the CLI, before Hydra composes: a command line resuming a run also gets
    `hydra.run.dir=<run> hydra.output_subdir=null`, so Hydra opens no new run directory and
    leaves the run's saved configuration (`.hydra/`) as it was — also when the command line
    names the run's directory itself. Other command lines are returned as they are."""
    if any(arg in ("-m", "--multirun") for arg in argv):
        return argv
    try:
        overrides = OverridesParser.create().parse_overrides(argv)
    except (HydraException, ValueError):  # ValueError: a number past Python's 4,300 digits
        return argv  # reported by the command-line check, as every parse error
    values = {o.key_or_group: o.value() for o in overrides if not o.is_delete()}
    if values.get("compress"):
        return argv  # compressing starts a new run
    try:
        run = search_run(values)
        found = _checkpoint_named(values) if run is None else None
    except ConfigError:
        return argv  # reported after composition, as every other bad input
    if found is not None:
        run = run_dir_of(found[2])
    if run is None:
        return argv
    added = [] if "hydra.output_subdir" in values else ["hydra.output_subdir=null"]
    given = values.get("hydra.run.dir")
    if given is None:
        return [*argv, f"hydra.run.dir={_quoted(str(run))}", *added]
    if Path(str(given)).expanduser().absolute() == run:
        return [*argv, *added]
    return argv  # elsewhere: the run directory check decides


def _checkpoint_named(cfg: Any) -> tuple[str, object, Path] | None:
    """(the key that named it, its value, the checkpoint file) for `resume=` or `ckpt_path=`."""
    resume, ckpt_path = cfg.get("resume"), cfg.get("ckpt_path")
    if resume and ckpt_path:
        raise bad(
            "resume",
            resume,
            f"given together with ckpt_path={shown(ckpt_path)}",
            "one of them",
        )
    if not resume and not ckpt_path:
        return None
    key, value = ("resume", resume) if resume else ("ckpt_path", ckpt_path)
    path = Path(str(value)).expanduser()
    if key == "ckpt_path" and not path.is_dir():
        return key, value, path
    last = path / LAST_CKPT
    if not last.is_file():
        raise bad(
            key,
            value,
            f"holds no {LAST_CKPT}",
            "a run directory frugal-train wrote, or a checkpoint file",
        )
    return key, value, last


def _overrides() -> list[Override]:
    """This command line's overrides (none known outside a Hydra app)."""
    if not HydraConfig.initialized():
        return []
    try:
        return OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    except HydraException:
        return []


def _refuse_changes(
    overrides: list[Override], cfg: DictConfig, saved: DictConfig, where: str
) -> None:
    for override in overrides:
        key = override.key_or_group
        root = key.split(".")[0]
        if root in NOT_RESTORED:
            continue
        if root in KEPT:
            keys = [key]
        elif root not in cfg:  # a group of global settings (experiment=…): compare its effect
            keys = list(KEPT)
        else:
            continue
        for kept in keys:
            if not _same(kept, cfg, saved):
                raise bad(
                    override.input_line,
                    ...,
                    f"{where} resumes a run trained with {kept}={_setting(saved, kept)}",
                    f"no change to a resumed run's {kept.split('.')[0]} (start a new run instead)",
                )


def _setting(cfg: DictConfig, key: str) -> str:
    """A setting of `cfg` as one short phrase: a model by its name, a section by its values."""
    value = OmegaConf.select(cfg, key, default=None)
    if key == "model" and isinstance(value, DictConfig):
        return model_name(value)
    if isinstance(value, DictConfig):
        plain = OmegaConf.to_container(value)
        text = json.dumps({k: v for k, v in plain.items() if v is not None}, default=str)
    else:
        text = "null" if value is None else str(value)
    return one_line(text if len(text) <= 80 else text[:77] + "...")  # a phrase, not a value


def _same(key: str, cfg: DictConfig, saved: DictConfig) -> bool:
    now = OmegaConf.select(cfg, key, default=None)
    before = OmegaConf.select(saved, key, default=None)
    plain = [OmegaConf.to_container(v) if isinstance(v, DictConfig) else v for v in (now, before)]
    if plain[0] == plain[1]:
        return True
    if key.split(".")[0] != "budget":
        return False
    try:  # the same budget written another way (2kJ, 2000J, 2000)
        return BudgetSpec.from_config(_budget(cfg)) == BudgetSpec.from_config(_budget(saved))
    except ConfigError:
        return False


def _budget(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg.get("budget") or {}, resolve=True)


def _apply(override: Override, cfg: DictConfig, original: DictConfig) -> None:
    key = override.key_or_group
    root = key.split(".")[0]
    if root in NOT_RESTORED or root in KEPT or root not in original:
        return  # kept sections were checked equal; global groups act through their keys
    if override.is_delete():
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        if isinstance(parent, DictConfig) and leaf in parent:
            del parent[leaf]
        return
    value = OmegaConf.select(original, key, default=None)
    OmegaConf.update(cfg, key, value, merge=False, force_add=True)


def _quoted(value: str) -> str:
    """`value` as one Hydra override value (quoted when it holds characters Hydra parses)."""
    if re.fullmatch(r"[\w/.\-+:]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
