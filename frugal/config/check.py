"""`check_config(cfg)`: the whole configuration checked before anything is built or written.

In order, so that the first problem found is the one a user can act on:
1. every value resolves (interpolations) and none is left `???`;
2. each group against its schema (`frugal.config.schema`), `_target_` nodes bound to their
   target's signature, model kwargs to the builder's;
3. cross-checks: the budget (`BudgetSpec.from_config`, the unit parser), the energy node
   (`EnergyConfig`) and that a named RAPL/NVML backend is present, the accelerator exists,
   compression has a checkpoint, the model suits the data's task and shape;
4. what needs reading: a data file, a checkpoint, a distillation teacher (their own modules
   check them);
5. last, the output directory: never another run's (`frugal.config.rundir`).
Every size a user can set is weighed against what this machine can hold (`frugal.machine`)
before anything is allocated: threads and processes here, a data source's arrays with the
data (`frugal.data.sizes`), the model's footprint on the meta device with the model
(`frugal.models.accounting.footprint`).
Every problem raises `ConfigError` with one line (`frugal.core.errors`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ValidationError, create_model

from frugal.budget.spec import BudgetSpec
from frugal.config import schema
from frugal.config.rundir import check_output_dirs
from frugal.config.signatures import (
    NotFound,
    model_builder_signature,
    model_names,
    signature_of,
)
from frugal.core.errors import ConfigError, bad, from_validation_error
from frugal.core.units import format_amount
from frugal.data import sizes
from frugal.meters.energy.config import EnergyConfig
from frugal.sweep import auto_size
from frugal.sweep.envelope import envelope_of

M = TypeVar("M", bound=BaseModel)

# Arguments frugal passes itself when it builds a node: (key -> where they come from)
PASSED_BY_FRUGAL = {
    "trainer": {"callbacks": "the callbacks group", "logger": "the logger group"},
    "data.kwargs": {"batch_size": "data.batch_size"},
    "optimizer": {"params": "the model's parameters"},
    "scheduler": {"optimizer": "the optimizer group"},
    "model.kwargs": {"input_shape": "the data", "num_classes": "the data"},
}
FILE_FORM = "a .npz with arrays x, y (optionally x_test, y_test) or a .csv of numbers"  # files.py
GENERIC_DATA = ("synthetic", "files")  # sources whose shape is the user's: any model may fit
# What a callbacks.<name> and a logger.<name> must build: (a class deriving from, accepted form)
ENTRY_BASES = {
    "callbacks": (
        "lightning.pytorch.callbacks.callback.Callback",
        "a Lightning Callback class, e.g. lightning.pytorch.callbacks.EarlyStopping",
    ),
    "logger": (
        "lightning.pytorch.loggers.logger.Logger",
        "a Lightning Logger class, e.g. lightning.pytorch.loggers.CSVLogger",
    ),
}
CACHE_ENV = "FRUGAL_CACHE_DIR"  # conf/paths/default.yaml: where generated datasets are cached
PROCESS_BYTES = 200 * 2**20  # the least a training process takes: Python with torch loaded


@dataclass
class Checked:
    """What start-up validation produced, before anything expensive is built."""

    budget: BudgetSpec
    energy: EnergyConfig


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
    node = plain(cfg)
    node.pop("hydra", None)
    validated(schema.TopLevel, node, "")
    if node.get("sweep_budget") is not None:
        envelope_of(node["sweep_budget"])  # units and keys, each named in its own words
        validated(schema.SweepBudget, node["sweep_budget"], "sweep_budget")
    if node.get("size_search") is not None:
        validated(schema.SizeSearch, node["size_search"], "size_search")
    if auto_size.searched(node):  # every size of the ladder is checked as its own run
        auto_size.check_from_scratch(node)
        sizes = auto_size.ladder(node)
        checked = None
        for size in sizes:
            concrete = auto_size.with_size(node, size)
            checked = check_config(concrete, meter_given, output_key, on_this_machine, check_dirs)
        if checked is None:
            checked = Checked(BudgetSpec.from_config(node.get("budget")), EnergyConfig())
        auto_size.check_search(node, checked.budget)
        return checked
    check_paths(node["paths"])
    if on_this_machine:  # before the data: each process holds its own copy
        check_processes(node["trainer"])
    check_data(node["data"], processes_here(node["trainer"]))
    check_model(node["model"])
    check_target("optimizer", node["optimizer"], schema.OPTIMIZERS, schema.Partial)
    if node.get("scheduler"):  # {} (scheduler=constant) and null: no scheduler
        check_target("scheduler", node["scheduler"], schema.SCHEDULERS, schema.Partial)
    if node.get("sparsity") is not None:
        check_target("sparsity", node["sparsity"], schema.SPARSITY, schema.TargetNode)
    if node.get("compress") is not None:
        check_compress(node["compress"])
    if node.get("distill") is not None:
        validated(schema.Distill, node["distill"], "distill")
    check_trainer(node["trainer"])
    check_entries("callbacks", node.get("callbacks"), schema.CALLBACKS)
    check_entries("logger", node.get("logger"), schema.LOGGERS)
    if node.get("inference") is not None:
        validated(schema.Inference, node["inference"], "inference")
    budget = BudgetSpec.from_config(node.get("budget"))
    energy = check_energy(node.get("energy") or {})
    cross_check(node, budget, energy, meter_given, on_this_machine)
    check_contents(cfg, node)
    if check_dirs:
        check_output_dirs(node, output_key)
    return Checked(budget, energy)


# ---- 1. resolve ------------------------------------------------------------------------------
def plain(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """`cfg` as plain Python values, interpolations resolved; one line for a value that does
    not resolve or is left `???`."""
    if not isinstance(cfg, DictConfig):
        return dict(cfg)
    unresolved = {
        k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"
    }
    missing = _first_missing(unresolved, "")
    if missing is not None:  # before resolving: an interpolation of it would name another key
        raise bad(missing, ..., "not set (???)", f"a value, e.g. {missing}=...")
    resolved: dict[str, Any] = {}
    for name in cfg:
        if name == "hydra":
            continue
        try:
            value = cfg[name]
            if isinstance(value, DictConfig | ListConfig):
                value = OmegaConf.to_container(value, resolve=True)
            resolved[name] = value
        except OmegaConfBaseException as err:
            key = getattr(err, "full_key", None) or name
            problem = str(err).splitlines()[0] if str(err) else type(err).__name__
            raw = _at(unresolved, key)
            if "Missing mandatory value" in problem:
                raise bad(key, ..., "not set (???)", f"a value, e.g. {key}=...") from err
            raise bad(key, raw, f"cannot be resolved ({problem})", "a value or ${...}") from err
    return resolved


def _at(node: Any, key: str) -> Any:
    """The value at dotted `key` of nested dicts and lists, `...` where there is none."""
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return ...
    return node


def _first_missing(node: Any, prefix: str) -> str | None:
    if node == "???":
        return prefix
    if isinstance(node, dict):
        for name, value in node.items():
            found = _first_missing(value, f"{prefix}.{name}" if prefix else str(name))
            if found:
                return found
    return None


# ---- 2. groups -------------------------------------------------------------------------------
def validated(model: type[M], node: Any, prefix: str) -> M:
    if not isinstance(node, dict):
        raise bad(prefix, node, "not a group of keys", _group_form(prefix))
    try:
        return model.model_validate(node)
    except ValidationError as err:
        raise from_validation_error(err, model, prefix, node) from None


def _group_form(prefix: str) -> str:
    info = schema.TopLevel.model_fields.get(prefix)
    return info.description if info is not None and info.description else "a group of keys"


def check_paths(node: Any) -> None:
    validated(schema.Paths, node, "paths")
    check_dir_path("paths.cache_dir", node["cache_dir"])


def check_dir_path(key: str, value: str) -> None:
    """A directory frugal creates where missing (a cache) has no file standing in its way.
    Checked, never created, here; one that cannot be written only goes without the cache."""
    path = Path(value).expanduser()
    env = CACHE_ENV if os.environ.get(CACHE_ENV) == value else None
    source = f" (set by {env})" if env else ""
    expected = f"{env} naming a directory, or unset" if env else "a directory path"
    for part in (path, *path.parents):
        try:
            if not part.exists():
                continue
        except OSError as err:
            raise bad(key, value, f"cannot be read{source} ({err.strerror})", expected) from None
        if not part.is_dir():
            where = "is a file" if part == path else f"lies under {part}, which is a file"
            raise bad(key, value, where + source, expected)
        return


def check_data(node: Any, copies: int = 1) -> None:
    """The data group; `copies`: processes on this machine that each hold the data."""
    if isinstance(node, dict) and "_target_" in node and "source" not in node:
        own = validated(schema.OwnData, node, "data")
        arguments = own.kwargs or {}
        bind("data.kwargs", arguments, own.target, _target_signature("data", own.target))
        return
    validated(schema.Data, node, "data")
    check_target("data.source", node["source"], schema.SOURCES, schema.TargetNode)
    source = node["source"]
    if data_task(node) == "files":  # a missing file or a FIFO: found before torch is imported
        from frugal.inputs import regular_file

        for name in ("path", "test_path"):
            if source.get(name) is not None:
                key = f"data.source.{name}"
                path = regular_file(source[name], key, FILE_FORM)
                sizes.check_file(path, key, source[name], copies)  # headers only
    if data_task(node) == "synthetic":
        sizes.check_synthetic(source, copies)
    if data_task(node) == "mnist1d" and source.get("cache_dir") is not None:
        check_dir_path("data.source.cache_dir", str(source["cache_dir"]))
    if data_task(node) == "mnist1d" and _dataset_args(node["source"]):
        from mnist1d.data import get_dataset_args  # its generator's arguments, only when set

        defaults = vars(get_dataset_args())
        accepted = sorted(defaults)
        for name in sorted(_dataset_args(node["source"])):
            if name not in accepted:
                raise bad(
                    f"data.source.{name}",
                    node["source"][name],
                    "not an mnist1d dataset argument",
                    f"one of {_few(accepted)}",
                )
            check_like(f"data.source.{name}", node["source"][name], defaults[name])
        sizes.check_mnist1d(node["source"], copies)


def check_like(key: str, value: Any, default: Any) -> None:
    """`value` has the kind of `default` (a generator argument typed only by its default):
    true/false, a whole number >= 0, a finite number >= 0, text, or a list of such."""

    def fits(value: Any, default: Any) -> bool:
        if isinstance(default, bool) or isinstance(value, bool):
            return isinstance(value, bool) and isinstance(default, bool)
        if isinstance(default, int):
            return isinstance(value, int) and value >= 0
        if isinstance(default, float):
            return isinstance(value, int | float) and math.isfinite(value) and value >= 0
        if isinstance(default, list):
            return (
                isinstance(value, list)
                and len(value) == len(default)
                and all(fits(v, d) for v, d in zip(value, default, strict=True))
            )
        return isinstance(value, type(default))

    if not fits(value, default):
        kinds = {bool: "true or false", int: "a whole number >= 0", float: "a number >= 0"}
        kind = kinds.get(type(default))
        expected = f"{kind}, e.g. {default!r}" if kind else f"a value like {default!r}"
        raise bad(key, value, "not accepted", expected)


def check_target(
    prefix: str, node: Any, known: dict[str, type[schema.TargetNode]], default: type
) -> None:
    """A node Hydra instantiates: typed where frugal knows the target, and every key an
    argument of the target."""
    if not isinstance(node, dict):
        raise bad(prefix, node, "not a group of keys", _group_form(prefix.split(".")[0]))
    target = node.get("_target_")
    if not isinstance(target, str) or not target:
        raise bad(f"{prefix}._target_", target, "missing", "an importable class or function")
    model = known.get(target, default)
    validated(model, node, prefix)
    typed = {info.alias or name for name, info in model.model_fields.items()}
    arguments = {k: v for k, v in node.items() if k not in typed and k not in schema.HYDRA_KEYS}
    if arguments or target not in known:
        signature = _target_signature(prefix, target)
        try:
            bind(
                prefix, arguments, target, signature, given=None if node.get("_partial_") else typed
            )
        except ConfigError as err:
            if target in known:
                raise
            # another target than the group's: the keys may be right and the target wrong
            setting, _, rest = str(err).partition(": ")
            raise ConfigError(f"{prefix}._target_={target!r} with {setting}: {rest}") from None


def _target_signature(prefix: str, target: str) -> inspect.Signature:
    try:
        return signature_of(target)
    except NotFound as err:
        raise bad(
            f"{prefix.removesuffix('.kwargs')}._target_",
            target,
            f"cannot be imported ({err})",
            "an importable class or function (PYTHONPATH=. for a module in this directory)",
        ) from None


def bind(
    prefix: str,
    arguments: dict[str, Any],
    what: str,
    signature: inspect.Signature,
    given: set[str] | None = None,
) -> None:
    """Every key of `arguments` is an argument of `what` (a target or a model) that frugal
    does not pass itself. With `given` (the keys set besides `arguments`), every argument
    without a default must be set."""
    passed = PASSED_BY_FRUGAL.get(prefix, {})
    params = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = [
        name
        for name, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and name not in passed
    ]
    for name, value in arguments.items():
        if name in passed:
            raise bad(
                f"{prefix}.{name}", value, f"set by frugal from {passed[name]}", "no such key"
            )
        if name not in params and not takes_any:
            expected = (
                f"one of {_few(accepted)}" if accepted else f"no arguments ({what} takes none)"
            )
            raise bad(f"{prefix}.{name}", value, f"not an argument of {what}", expected)
    if given is None:
        return
    for name in accepted:
        if params[name].default is inspect.Parameter.empty and name not in {*arguments, *given}:
            raise bad(f"{prefix}.{name}", ..., f"missing, {what} needs it", "a value")


def _few(names: list[str], most: int = 12) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "") if names else "(none)"


def check_model(node: Any) -> None:
    if isinstance(node, dict) and node.get("_target_") is not None:
        validated(schema.OwnModel, node, "model")
        return  # imported and bound by the registry's own check (check_contents)
    model = validated(schema.Model, node, "model")
    signature = model_builder_signature(model.name)
    if signature is None:
        raise bad(
            "model.name",
            model.name,
            "not a registered model",
            f"one of {_few(model_names(), 30)}, or model=own model._target_=pkg.module.Net",
        )
    kwargs = model.kwargs or {}
    bind("model.kwargs", kwargs, f"model {model.name}", signature)
    validated(_kwargs_schema(model.name, signature), kwargs, "model.kwargs")


def _kwargs_schema(name: str, signature: inspect.Signature) -> type[BaseModel]:
    """A pydantic model of the builder's keyword arguments: frugal's shared ranges
    (`schema.MODEL_KWARGS`) where the name is known, else the annotation's type."""
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.name in PASSED_BY_FRUGAL["model.kwargs"] or param.kind in (
            inspect.Parameter.VAR_KEYWORD,
            inspect.Parameter.VAR_POSITIONAL,
        ):
            continue
        if param.name in schema.MODEL_KWARGS:
            kind, expected, constraints = schema.MODEL_KWARGS[param.name]
        else:
            kind, expected = schema.ANNOTATIONS.get(str(param.annotation), (Any, "a value"))
            constraints = {}
        if param.default is None and kind is not Any:
            kind = kind | None
        fields[param.name] = (kind, schema.key(None, expected, **constraints))
    extra = (
        "allow"
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
        else "forbid"
    )
    return create_model(  # type: ignore[call-overload]
        f"{name}_kwargs",
        __config__=schema.ConfigDict(strict=True, extra=extra, allow_inf_nan=False),
        **fields,
    )


def check_compress(node: Any) -> None:
    if not isinstance(node, dict):
        raise bad("compress", node, "not a group of keys", "compress=svd or compress=prune")
    method = node.get("method")
    if method not in schema.COMPRESSION:
        raise bad(
            "compress.method", method, "not an accepted value", " or ".join(schema.COMPRESSION)
        )
    validated(schema.COMPRESSION[method], node, "compress")


def check_trainer(node: Any) -> None:
    """Typed as Lightning's Trainer whatever the `_target_` (a subclass takes the same
    arguments); another target must import, and keys beyond those typed bind to it."""
    check_target("trainer", node, schema.TRAINERS, schema.Trainer)


def check_entries(group: str, node: Any, known: dict[str, type[schema.TargetNode]]) -> None:
    """A keyed dict of nodes (`callbacks.<name>`, `logger.<name>`); `<name>: null` is off."""
    if node is None:
        return
    if not isinstance(node, dict):
        raise bad(group, node, "not a group of keys", _group_form(group))
    for name, entry in node.items():
        if entry is None:
            continue
        if not isinstance(entry, dict) or "_target_" not in entry:
            raise bad(
                f"{group}.{name}", entry, "not a node to build", "null, or a node with _target_"
            )
        target = entry["_target_"]
        if isinstance(target, str) and target and target not in known:
            check_kind(f"{group}.{name}", target, *ENTRY_BASES[group])
        check_target(f"{group}.{name}", entry, known, schema.TargetNode)


def check_kind(prefix: str, target: str, base: str, expected: str) -> None:
    """`target` is a class deriving from `base` (Lightning's Callback or Logger): Hydra would
    call anything else, a function such as os.system included, with the node's keys."""
    _target_signature(prefix, target)  # importable, else its own line
    from hydra.utils import get_object

    try:
        found = get_object(target)
    except Exception as err:  # the user's module may fail in any way while importing
        raise bad(f"{prefix}._target_", target, f"cannot be imported ({err})", expected) from None
    lineage = inspect.getmro(found) if inspect.isclass(found) else ()
    if base not in {f"{cls.__module__}.{cls.__qualname__}" for cls in lineage}:
        if inspect.isclass(found):
            what = "a class"
        else:
            what = "a function" if callable(found) else f"a {type(found).__name__}"
        wanted = f"Lightning {base.rpartition('.')[2]}"
        raise bad(f"{prefix}._target_", target, f"{what}, not a {wanted} class", expected)


def check_energy(node: dict[str, Any]) -> EnergyConfig:
    names = {field.name for field in dataclasses.fields(EnergyConfig)}
    for key, value in node.items():
        if key not in names:
            raise bad(f"energy.{key}", value, "unknown key", f"one of {', '.join(sorted(names))}")
    try:
        return EnergyConfig(**node)
    except (TypeError, ValueError) as err:
        setting, _, rest = str(err).splitlines()[0].partition(": ")
        if rest.startswith("expected"):  # EnergyConfig's own "key=value: expected ..."
            raise ConfigError(f"{setting}: not accepted; {rest}") from None
        raise ConfigError(str(err).splitlines()[0]) from None


# ---- 3. cross-checks -------------------------------------------------------------------------
def cross_check(
    node: dict[str, Any],
    budget: BudgetSpec,
    energy: EnergyConfig,
    meter_given: bool,
    on_this_machine: bool = True,
) -> None:
    trainer = node["trainer"]
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
    if not meter_given:
        if energy.backend == "none" and wants_energy:
            raise bad(
                "energy.backend",
                "none",
                "an energy or carbon budget needs an energy meter",
                "auto, rapl, nvml or codecarbon",
            )
        if on_this_machine:
            check_energy_backend(energy)
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
    if on_this_machine:
        check_accelerator(trainer)
    checkpointing = trainer.get("enable_checkpointing")
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
        package = schema.LOGGER_PACKAGES.get((entry or {}).get("_target_"))
        if package and importlib.util.find_spec(package[0]) is None:
            raise bad(
                f"logger.{name}",
                entry["_target_"],
                f"needs the {package[0]} package",
                f"pip install {package[1]}, or logger=csv",
            )
    check_devices(trainer)
    check_horizon(node)
    check_task(node)
    check_structured_ranks(node)
    if on_this_machine:
        check_threads(node.get("threads"))


def processes_here(trainer: Any) -> int:
    """Training processes this machine runs (`trainer.devices`: one per device), each holding
    its own data and model; 1 where the number is left to Lightning (auto, -1)."""
    devices = trainer.get("devices") if isinstance(trainer, dict) else None
    if isinstance(devices, list):
        return max(len(devices), 1)
    if isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1:
        return devices
    return 1


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


def check_threads(threads: object) -> None:
    """More torch threads than CPUs only slow a step down (and a million fail to start)."""
    if not isinstance(threads, int) or isinstance(threads, bool):
        return  # null: torch's own choice
    from frugal.machine import usable_cpus

    cpus = usable_cpus()
    if threads > cpus:
        raise bad(
            "threads",
            threads,
            f"this process may use {cpus} CPU(s)",
            f"a whole number of threads in [1, {cpus}], or null (torch's default)",
        )


def check_processes(trainer: dict[str, Any]) -> None:
    """One training process per device, each at least a Python with torch loaded."""
    from frugal.machine import available_memory_bytes

    processes = processes_here(trainer)
    available = available_memory_bytes()
    most = max(available // PROCESS_BYTES, 1)
    if processes > most:
        raise bad(
            "trainer.devices",
            trainer.get("devices"),
            f"{processes} processes need about {format_amount(processes * PROCESS_BYTES, 'B')}"
            f", more than the {format_amount(available, 'B')} of memory available",
            f"at most {most} devices on this machine",
        )


def check_energy_backend(energy: EnergyConfig) -> None:
    """An energy backend named explicitly must be readable here (auto and codecarbon always
    have a fallback). Probed the way the meter will build it, without starting anything."""
    from frugal.meters.energy.backend import BackendUnavailable

    try:
        if energy.backend == "rapl":
            from frugal.meters.energy.rapl import RaplBackend

            RaplBackend(energy.rapl_root)
        elif energy.backend == "nvml":
            from frugal.meters.energy.nvml import NvmlBackend, default_gpu_indices

            indices = energy.gpu_indices
            NvmlBackend(indices if indices is not None else default_gpu_indices(0))
    except BackendUnavailable as err:
        raise bad(
            "energy.backend",
            energy.backend,
            f"not readable here ({err})",
            "auto (the best meter this machine has), codecarbon or none",
        ) from None


def check_devices(trainer: dict[str, Any]) -> None:
    """Lightning takes a list of devices (GPU indices) only on an accelerator with devices."""
    devices = trainer.get("devices")
    if trainer.get("accelerator") == "cpu" and isinstance(devices, list):
        raise bad(
            "trainer.devices",
            devices,
            "a list of GPU indices, but trainer.accelerator is cpu",
            "a whole number of CPU processes >= 1, or auto (or trainer.accelerator=gpu)",
        )


def check_accelerator(trainer: dict[str, Any]) -> None:
    accelerator, devices = trainer.get("accelerator"), trainer.get("devices")
    if accelerator == "auto" and isinstance(devices, list):
        import torch

        if not torch.cuda.is_available():
            raise bad(
                "trainer.devices",
                devices,
                "a list of GPU indices, but this machine has no CUDA GPU",
                "a whole number of CPU processes >= 1, or auto",
            )
    if accelerator in ("gpu", "cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise bad(
                "trainer.accelerator", accelerator, "no CUDA GPU on this machine", "cpu or auto"
            )
        wanted = len(devices) if isinstance(devices, list) else devices
        if isinstance(wanted, int) and wanted > count:
            raise bad(
                "trainer.devices",
                devices,
                f"this machine has {count} GPU(s)",
                f"1..{count}, -1 or auto",
            )
    elif accelerator == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise bad(
                "trainer.accelerator", accelerator, "no Apple GPU on this machine", "cpu or auto"
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


def data_task(data: dict[str, Any]) -> str | None:
    target = (data.get("source") or {}).get("_target_", "")
    return target.rpartition(".")[2] if target.startswith("frugal.data.sources.") else None


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


# ---- 4. contents -----------------------------------------------------------------------------
STATIC_SHAPES = {"mnist1d": ((40,), 10), "digits": ((1, 8, 8), 10)}  # (one sample, classes)


def check_contents(cfg: DictConfig | Mapping[str, Any], node: dict[str, Any]) -> None:
    """Checks that read files or import the user's code; each lives with what it checks
    (`frugal.data.build`, `frugal.checkpoint`, `frugal.models.registry`)."""
    cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(node)
    shape, splits = None, None
    if "_target_" in node["data"] or data_task(node["data"]) == "files":
        from frugal.data.build import check_source  # reads a data file once, in full

        check_source(cfg.data)
        if data_task(node["data"]) == "files":
            from frugal.data.files import files

            splits = files(**{k: v for k, v in node["data"]["source"].items() if k != "_target_"})
            shape = (splits.input_shape, splits.num_classes)
    if node.get("ckpt_path") or node.get("init_from"):
        from frugal.checkpoint import check_checkpoint

        check_checkpoint(cfg)
    if node.get("distill") is not None:
        from frugal.distill import check_teacher  # reads the teacher's checkpoint and run

        check_teacher(node["distill"], node["data"])
    backbone = None
    samples = train_size(node, splits)
    if node["model"].get("_target_") is not None:
        from frugal.models.registry import build_model, check_model_config

        check_model_config(cfg.model)
        shape = shape or data_shape(node["data"])
        if shape is not None:  # the user's model, built once for the data: runs on zeros
            check_model_memory(node, shape, samples)
            backbone = build_model(cfg.model, *shape)
    elif "_target_" not in node["data"]:
        shape = shape or data_shape(node["data"])
        backbone = check_model_fits(node["model"], shape)  # a depth the input cannot take
        if shape is not None:
            check_model_memory(node, shape, samples)
    for key in ("ckpt_path", "init_from"):
        if node.get(key) and backbone is not None:
            check_checkpoint_fits(cfg, node, backbone, key)
    if shape is not None:
        check_batches(node, samples)


def check_model_memory(
    node: dict[str, Any], shape: tuple[tuple[int, ...], int], samples: int | None
) -> None:
    """The model, trained on batches of `data.batch_size` and served on batches of
    `inference.serving_batch`, fits in the memory available: its footprint is measured on the
    meta device. The line names the setting that made it too large: the batch where the
    batch's activations outweigh the model, else the model argument set furthest above its
    default (`registry.grown_setting`)."""
    from frugal.machine import available_memory_bytes
    from frugal.models import registry  # registers frugal's models

    input_shape, classes = shape
    size = registry.model_footprint(node["model"], input_shape, classes)
    if size is None:
        return
    trainer, data = node["trainer"], node["data"]
    model_setting = registry.grown_setting(node["model"])
    demands = []  # (bytes, what for, the setting named)
    if on_gpu(trainer):  # the host builds the weights; the rest lives on the device
        demands.append((size.serving_bytes(0, 0) * processes_here(trainer), "hold", model_setting))
    else:
        states = optimizer_states(node["optimizer"])
        batch = data["batch_size"] if samples is None else min(data["batch_size"], samples)
        held = size.training_bytes(0, states)
        per_batch = size.training_bytes(batch, states) - held
        named = ("data.batch_size", data["batch_size"]) if per_batch > held else model_setting
        demands.append(((held + per_batch) * processes_here(trainer), "train", named))
        inference = node.get("inference") or {}
        if inference.get("enabled", True):
            serving = inference.get("serving_batch", 256)
            held = size.serving_bytes(0, 0)
            per_batch = size.serving_bytes(serving, math.prod(input_shape)) - held
            named = ("inference.serving_batch", serving) if per_batch > held else model_setting
            demands.append((held + per_batch, "serve", named))
    available = available_memory_bytes()
    for needed, purpose, (key, value) in demands:
        if needed > available:
            raise bad(
                key,
                value,
                f"the model ({size.parameters:,} parameters) needs about "
                f"{format_amount(needed, 'B')} to {purpose}, more than the "
                f"{format_amount(available, 'B')} of memory available",
                "a smaller model or batch, one this machine can hold",
            )


def optimizer_states(optimizer: dict[str, Any]) -> int:
    """Tensors the optimizer keeps per weight: Adam's two moments, SGD's momentum."""
    target = str(optimizer.get("_target_", ""))
    if target.endswith("SGD"):
        return 1 if optimizer.get("momentum") else 0
    return 2  # Adam, AdamW, and any other: the common upper bound


def on_gpu(trainer: dict[str, Any]) -> bool:
    """Whether training runs on a CUDA GPU (auto picks one where present)."""
    accelerator = trainer.get("accelerator")
    if accelerator in ("gpu", "cuda"):
        return True
    if accelerator == "auto":
        import torch

        return torch.cuda.is_available()
    return False


def check_checkpoint_fits(
    cfg: DictConfig, node: dict[str, Any], backbone: Any, key: str = "ckpt_path"
) -> None:
    """The weights of checkpoint `key` fit the configured model (as `frugal.pipeline` checks
    again before loading them). Left to the run where sparse training is involved: its
    callbacks may change shapes (structured pruning) before the weights are loaded."""
    from pathlib import Path

    from frugal.checkpoint import check_shapes, saved_config

    saved = saved_config(Path(str(node[key])).expanduser())
    if node.get("sparsity") is not None or (saved is not None and saved.get("sparsity")):
        return
    state = {f"backbone.{name}": value for name, value in backbone.state_dict().items()}
    check_shapes(state, cfg, key)


def train_size(node: dict[str, Any], splits: Any) -> int | None:
    """Training samples of frugal's own sources (as `frugal.data.sources` splits them), known
    without generating them; None where only building the data would tell."""
    if splits is not None:
        return len(splits.y_train)
    task, source = data_task(node["data"]), node["data"].get("source") or {}
    if task == "synthetic":
        total = source.get("num_samples", 512)
        return total - 2 * max(total // 8, 1)
    if task == "mnist1d" and not _dataset_args(source):
        return schema.MNIST1D_TRAIN - source.get("val_size", 400)
    if task == "digits":
        return schema.DIGITS_IMAGES - source.get("val_size", 180) - source.get("test_size", 360)
    return None


def check_batches(node: dict[str, Any], samples: int | None) -> None:
    """Lightning refuses a `val_check_interval` longer than an epoch, and trains nothing on
    `limit_train_batches` that rounds to 0 batches: found here, not after start-up."""
    trainer = node["trainer"]
    if samples is None or trainer.get("fast_dev_run") or trainer.get("overfit_batches"):
        return
    devices = trainer.get("devices")
    if isinstance(devices, list):
        ranks = len(devices)
    else:
        ranks = devices if isinstance(devices, int) and devices >= 1 else 1
    per_rank = samples // max(ranks * (trainer.get("num_nodes") or 1), 1)
    batch_size = node["data"]["batch_size"]
    batches = per_rank // batch_size if per_rank >= batch_size else 1  # full batches only
    limit = trainer.get("limit_train_batches")
    if isinstance(limit, float):
        batches = int(batches * limit)
        if batches == 0:
            raise bad(
                "trainer.limit_train_batches",
                limit,
                f"leaves no batch of the {per_rank // batch_size or 1} in an epoch",
                "a larger fraction, or a whole number of batches >= 1",
            )
    elif isinstance(limit, int):
        batches = min(batches, limit)
    interval = trainer.get("val_check_interval")
    if (
        isinstance(interval, int)
        and not isinstance(interval, bool)
        and trainer.get("check_val_every_n_epoch") is not None
        and interval > batches
    ):
        raise bad(
            "trainer.val_check_interval",
            interval,
            f"longer than an epoch ({batches} training batches of {batch_size})",
            f"a whole number of steps <= {batches}, a fraction of an epoch in (0, 1], or "
            "trainer.check_val_every_n_epoch=null to count steps across epochs",
        )


def _dataset_args(source: dict[str, Any]) -> set[str]:
    """Keys beyond a source's typed ones (mnist1d's generator arguments change its shape)."""
    model = schema.SOURCES.get(source.get("_target_", ""))
    typed = {info.alias or name for name, info in model.model_fields.items()} if model else set()
    return set(source) - typed - set(schema.HYDRA_KEYS)


def data_shape(data: dict[str, Any]) -> tuple[tuple[int, ...], int] | None:
    """(one sample's shape, classes) of frugal's own sources, known without building them."""
    task, source = data_task(data), data.get("source") or {}
    if task == "synthetic":
        return (source.get("features", 16),), source.get("num_classes", 4)
    if task in STATIC_SHAPES and not _dataset_args(source):
        return STATIC_SHAPES[task]
    return None


def check_model_fits(model: dict[str, Any], shape: tuple | None) -> Any:
    """Build the model for the data's shape on the meta device (no memory, no arithmetic): a
    depth the input cannot take, or a 2D CNN on flat features, is found before any work.
    Returns the (meta) model, None where it could not be built here."""
    if shape is None:
        return None
    import torch

    from frugal.models import create_model
    from frugal.models.accounting import PROBE_DEPTH

    input_shape, classes = shape
    kwargs = dict(model.get("kwargs") or {})
    deep = isinstance(kwargs.get("depth"), int) and kwargs["depth"] > PROBE_DEPTH
    if deep:  # one layer past the probe finds a depth the input cannot take, in no time
        kwargs["depth"] = PROBE_DEPTH + 1
    try:
        with torch.device("meta"):
            built = create_model(model["name"], input_shape, classes, **kwargs)
            return None if deep else built  # not the configured model: nothing to compare
    except ValueError as err:
        raise bad(
            "model",
            model["name"],
            f"cannot be built for data of shape {tuple(input_shape)} ({str(err).splitlines()[0]})",
            "a model and model.kwargs that fit the data",
        ) from None
    except Exception:  # an operation the meta device lacks: the real build will tell
        return None
