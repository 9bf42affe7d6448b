"""The schema of the groups that say how a run trains: optimizer and scheduler, sparse training
and compression, the trainer, callbacks and loggers (what is trained on what, and the top level,
are `frugal.config.schema`'s). Each node's `_target_` frugal ships has a typed model here; keys
it does not type are bound to the target's signature (`frugal.config.targets`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from frugal.config.schema import (
    CLOSED_FRACTION,
    METRICS,
    NAMED_METRICS,
    TEXT,
    WHOLE_GE0,
    WHOLE_GE1,
    Node,
    TargetNode,
    choices,
    key,
    spelled,
)

# ---- optimizer and scheduler -----------------------------------------------------------------
LR = "a learning rate > 0, e.g. 0.01"
WEIGHT_DECAY = "a number >= 0, e.g. 0.01"


class Partial(TargetNode):
    """Built by frugal later (with the model's parameters, or the optimizer): `_partial_`."""

    partial: Literal[True] = Field(
        alias="_partial_", description="true (frugal passes the rest when it builds it)"
    )


class Adam(Partial):  # torch.optim.Adam and AdamW
    lr: float = key(0.001, LR, gt=0)
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = key(
        (0.9, 0.999), "two numbers in [0, 1), e.g. [0.9, 0.999]"
    )
    eps: float = key(1e-8, "a number > 0, e.g. 1e-8", gt=0)
    weight_decay: float = key(0.0, WEIGHT_DECAY, ge=0)
    amsgrad: bool = key(False, "true or false")
    foreach: bool | None = key(None, "true, false or null")
    maximize: bool = key(False, "true or false")


class SGD(Partial):
    lr: float = key(0.001, LR, gt=0)
    momentum: float = key(0.0, "a number >= 0, e.g. 0.9", ge=0)
    dampening: float = key(0.0, "a number >= 0", ge=0)
    weight_decay: float = key(0.0, WEIGHT_DECAY, ge=0)
    nesterov: bool = key(False, "true or false (true needs momentum > 0 and dampening 0)")
    foreach: bool | None = key(None, "true, false or null")
    maximize: bool = key(False, "true or false")

    @field_validator("nesterov")
    @classmethod
    def _nesterov(cls, nesterov: bool, info: ValidationInfo) -> bool:
        if nesterov and (info.data.get("momentum", 0) <= 0 or info.data.get("dampening", 0) != 0):
            raise ValueError("needs momentum > 0 and dampening 0")
        return nesterov


OPTIMIZERS = {"torch.optim.Adam": Adam, "torch.optim.AdamW": Adam, "torch.optim.SGD": SGD}


class BudgetLR(Partial):
    shape: choices("frugal.schedules.SHAPES") = key(  # type: ignore[valid-type]
        "linear", spelled("frugal.schedules.SHAPES")
    )
    final_ratio: float = key(0.0, CLOSED_FRACTION, ge=0, le=1)
    warmup_steps: int = key(0, "a whole number of steps >= 0", ge=0)
    cooldown_fraction: float = key(0.2, "a fraction of the budget in (0, 1], e.g. 0.2", gt=0, le=1)
    cooldown_shape: choices("frugal.schedules.COOLDOWN_SHAPES") = key(  # type: ignore[valid-type]
        "linear", spelled("frugal.schedules.COOLDOWN_SHAPES")
    )


class CosineAnnealingLR(Partial):
    T_max: int = key(..., "a whole number of steps >= 1", ge=1)
    eta_min: float = key(0.0, "a learning rate >= 0", ge=0)


class StepLR(Partial):
    step_size: int = key(..., "a whole number of steps >= 1", ge=1)
    gamma: float = key(0.1, "a factor > 0, e.g. 0.1", gt=0)


SCHEDULERS = {
    "frugal.schedules.BudgetLR": BudgetLR,
    "torch.optim.lr_scheduler.CosineAnnealingLR": CosineAnnealingLR,
    "torch.optim.lr_scheduler.StepLR": StepLR,
}


# ---- sparse training and compression ---------------------------------------------------------
END_STEP = "null or a whole number of steps >= 1"
END_FRACTION = "a fraction of the horizon in (0, 1], e.g. 0.75"


class GradualMagnitudePruning(TargetNode):
    final_sparsity: float = key(0.9, "a fraction of weights zeroed in (0, 1), e.g. 0.9", gt=0, lt=1)
    initial_sparsity: float = key(0.0, "a fraction in [0, final_sparsity]", ge=0, lt=1)
    start_step: int = key(0, WHOLE_GE0, ge=0)
    end_step: int | None = key(None, END_STEP, ge=1)
    end_fraction: float = key(1.0, END_FRACTION, gt=0, le=1)
    update_every: int = key(10, "a whole number of steps >= 1", ge=1)
    scope: choices("frugal.models.sparse.SCOPES") = key(  # type: ignore[valid-type]
        "layer", spelled("frugal.models.sparse.SCOPES")
    )

    @field_validator("initial_sparsity")
    @classmethod
    def _below_final(cls, initial: float, info: ValidationInfo) -> float:
        if initial > info.data.get("final_sparsity", 1.0):
            raise ValueError("above final_sparsity")
        return initial

    @field_validator("end_step")
    @classmethod
    def _after_start(cls, end_step: int | None, info: ValidationInfo) -> int | None:
        if end_step is not None and end_step <= info.data.get("start_step", 0):
            raise ValueError("not after start_step")
        return end_step


class DynamicSparseTraining(TargetNode):
    mode: choices("frugal.callbacks.sparsity.MODES") = key(  # type: ignore[valid-type]
        "rigl", spelled("frugal.callbacks.sparsity.MODES")
    )
    density: float = key(0.1, "a fraction of weights kept in (0, 1), e.g. 0.1", gt=0, lt=1)
    distribution: choices("frugal.models.sparse.DISTRIBUTIONS") = key(  # type: ignore[valid-type]
        "erk", spelled("frugal.models.sparse.DISTRIBUTIONS")
    )
    update_every: int = key(100, "a whole number of steps >= 1", ge=1)
    drop_fraction: float = key(0.3, CLOSED_FRACTION, ge=0, le=1)
    end_step: int | None = key(None, END_STEP, ge=1)
    end_fraction: float = key(0.75, END_FRACTION, gt=0, le=1)


class StructuredPruning(TargetNode):
    channel_ratio: float = key(0.25, "a fraction of channels kept in (0, 1), e.g. 0.25", gt=0, lt=1)
    milestones: list[Annotated[float, Field(ge=0, lt=1)]] = key(
        [0.1, 0.2, 0.3],
        "a rising list of fractions of the run in [0, 1), e.g. [0.1, 0.2, 0.3]",
        min_length=1,
    )

    @field_validator("milestones")
    @classmethod
    def _rising(cls, milestones: list[float]) -> list[float]:
        if milestones != sorted(set(milestones)):
            raise ValueError("not rising")
        return milestones


SPARSITY = {
    "frugal.callbacks.sparsity.GradualMagnitudePruning": GradualMagnitudePruning,
    "frugal.callbacks.sparsity.DynamicSparseTraining": DynamicSparseTraining,
    "frugal.callbacks.structured.StructuredPruning": StructuredPruning,
}


class SvdCompression(Node):
    method: Literal["svd"] = key("svd", "svd")
    rank_ratio: float = key(0.5, "a fraction of the full rank in (0, 1], e.g. 0.5", gt=0, le=1)
    energy: float | None = key(
        None, "null or a fraction of σ² kept in (0, 1], e.g. 0.9", gt=0, le=1
    )


class PruneCompression(Node):
    method: Literal["prune"] = key("prune", "prune")
    sparsity: float = key(0.8, "a fraction of weights zeroed in (0, 1), e.g. 0.8", gt=0, lt=1)
    scope: choices("frugal.models.sparse.SCOPES") = key(  # type: ignore[valid-type]
        "global", spelled("frugal.models.sparse.SCOPES")
    )


class StructuredCompression(Node):
    method: Literal["structured"] = key("structured", "structured")
    channel_ratio: float = key(0.25, "a fraction of channels kept in (0, 1), e.g. 0.25", gt=0, lt=1)


COMPRESSION = {
    "svd": SvdCompression,
    "prune": PruneCompression,
    "structured": StructuredCompression,
}


# ---- trainer ---------------------------------------------------------------------------------
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
# Lightning's registered strategies that need no extra package; others are looked up in
# Lightning's registry (an import) only when named.
STRATEGIES = (
    "auto",
    "ddp",
    "ddp_spawn",
    "ddp_fork",
    "ddp_notebook",
    "ddp_find_unused_parameters_true",
    "ddp_find_unused_parameters_false",
    "fsdp",
    "single_device",
)
PRECISIONS = (
    "64-true", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true",
    "64", "32", "16", "bf16", 64, 32, 16,
    "transformer-engine", "transformer-engine-float16",
)  # fmt: skip
STEPS_OR_ALL = "a whole number >= 1, or -1 for no limit"
BATCHES = "a whole number of batches >= 0, or a fraction in [0, 1]"
DeviceCount = Annotated[int, Field(ge=1)]
GpuIndex = Annotated[int, Field(ge=0)]
Batches = Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0, le=1)]
TrainBatches = Annotated[int, Field(ge=1)] | Annotated[float, Field(gt=0, le=1)]  # 0: no training


class Trainer(TargetNode):
    """`lightning.pytorch.Trainer`'s arguments; callbacks and logger come from their groups."""

    accelerator: Literal[ACCELERATORS] = key("auto", ", ".join(ACCELERATORS))  # type: ignore[valid-type]
    strategy: str = key("auto", f"a Lightning strategy: {', '.join(STRATEGIES[:4])}, ...")
    devices: DeviceCount | Literal[-1, "auto"] | list[GpuIndex] = key(
        "auto", "a whole number of devices >= 1, -1 (all), auto, or a list of GPU indices"
    )
    num_nodes: int = key(1, WHOLE_GE1, ge=1)
    precision: Literal[PRECISIONS] | None = key(  # type: ignore[valid-type]
        None, "null, 32-true, 16-mixed, bf16-mixed, 64-true, ..."
    )
    fast_dev_run: bool | Annotated[int, Field(ge=0)] = key(False, "true, false or a whole number")
    max_epochs: Literal[-1] | DeviceCount | None = key(None, f"null, {STEPS_OR_ALL}")
    min_epochs: int | None = key(None, "null or a whole number >= 0", ge=0)
    max_steps: Literal[-1] | Annotated[int, Field(ge=1)] = key(-1, STEPS_OR_ALL)
    min_steps: int | None = key(None, "null or a whole number >= 0", ge=0)
    max_time: str | dict[str, int] | None = key(None, "null or DD:HH:MM:SS (prefer budget.time)")
    limit_train_batches: TrainBatches | None = key(
        None, "a whole number of batches >= 1, or a fraction in (0, 1]"
    )
    limit_val_batches: Batches | None = key(None, BATCHES)
    limit_test_batches: Batches | None = key(None, BATCHES)
    limit_predict_batches: Batches | None = key(None, BATCHES)
    overfit_batches: Batches = key(0.0, BATCHES)
    val_check_interval: Annotated[int, Field(ge=1)] | Annotated[float, Field(gt=0, le=1)] | None = (
        key(None, "null, a whole number of steps >= 1, or a fraction of an epoch in (0, 1]")
    )
    check_val_every_n_epoch: int | None = key(1, "null or a whole number of epochs >= 1", ge=1)
    num_sanity_val_steps: int | None = key(None, "null, -1 (all) or a whole number >= 0", ge=-1)
    log_every_n_steps: int | None = key(None, "null or a whole number of steps >= 1", ge=1)
    enable_checkpointing: bool | None = key(None, "true, false or null")
    enable_progress_bar: bool | None = key(None, "true, false or null")
    enable_model_summary: bool | None = key(None, "true, false or null")
    accumulate_grad_batches: int = key(1, WHOLE_GE1, ge=1)
    gradient_clip_val: float | None = key(None, "null or a number >= 0", ge=0)
    gradient_clip_algorithm: Literal["norm", "value"] | None = key(None, "null, norm or value")
    deterministic: bool | Literal["warn"] | None = key(None, "true, false, warn or null")
    benchmark: bool | None = key(None, "true, false or null")
    inference_mode: bool = key(True, "true or false")
    use_distributed_sampler: bool = key(True, "true or false")
    detect_anomaly: bool = key(False, "true or false")
    barebones: Literal[False] = key(False, "false (frugal's callbacks need Lightning's hooks)")
    sync_batchnorm: bool = key(False, "true or false")
    reload_dataloaders_every_n_epochs: int = key(0, WHOLE_GE0, ge=0)
    default_root_dir: str | None = key(None, "null or a directory path")
    profiler: Literal["simple", "advanced", "pytorch", "xla"] | dict[str, Any] | None = key(
        None, "null, simple, advanced, pytorch, xla, or a node with _target_"
    )

    @field_validator("check_val_every_n_epoch")
    @classmethod
    def _steps_across_epochs(cls, every: int | None, info: ValidationInfo) -> int | None:
        # Lightning counts a float val_check_interval in epochs: null here leaves none
        if every is None and isinstance(info.data.get("val_check_interval"), float):
            raise ValueError(
                "null counts validation in steps, but trainer.val_check_interval is a fraction "
                "of an epoch"
            )
        return every

    @field_validator("max_time")
    @classmethod
    def _max_time(cls, max_time: str | dict[str, int] | None) -> str | dict[str, int] | None:
        """As Lightning's Timer reads it: "DD:HH:MM:SS", or a dict of timedelta's keys."""
        if isinstance(max_time, str):
            parts = max_time.split(":")
            if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts):
                raise ValueError("not DD:HH:MM:SS")
            amounts = dict(
                zip(("days", "hours", "minutes", "seconds"), map(int, parts), strict=True)
            )
        elif isinstance(max_time, dict):
            units = ("weeks", "days", "hours", "minutes", "seconds", "milliseconds")
            unknown = [name for name in max_time if name not in units]
            if unknown or any(value < 0 for value in max_time.values()):
                raise ValueError(f"not a duration (keys: {', '.join(units)}; amounts >= 0)")
            amounts = max_time
        else:
            return max_time
        try:
            timedelta(**amounts)  # as Lightning's Timer builds it
        except OverflowError:
            raise ValueError("too long for a duration (at most 999999999 days)") from None
        return max_time

    @field_validator("strategy")
    @classmethod
    def _strategy_exists(cls, strategy: str) -> str:
        if strategy not in STRATEGIES:
            from lightning.pytorch.strategies import StrategyRegistry  # slow: only when needed

            if strategy not in StrategyRegistry.available_strategies():
                raise ValueError("not a Lightning strategy")
        return strategy


TRAINERS = {"lightning.pytorch.Trainer": Trainer, "lightning.Trainer": Trainer}


# ---- callbacks and loggers -------------------------------------------------------------------
class ModelCheckpoint(TargetNode):
    dirpath: str | None = key(None, "null or a directory inside the run's output directory")
    filename: str | None = key(None, "null or a file name, e.g. best")
    monitor: Literal[METRICS] | None = key(None, f"null or a logged metric: {NAMED_METRICS}")  # type: ignore[valid-type]
    mode: Literal["min", "max"] = key("min", "min or max")
    save_top_k: int = key(1, "a whole number >= -1 (-1: every checkpoint)", ge=-1)
    save_last: bool | Literal["link"] | None = key(None, "true, false, link or null")
    every_n_train_steps: int | None = key(None, "null or a whole number >= 0", ge=0)
    every_n_epochs: int | None = key(None, "null or a whole number >= 0", ge=0)
    verbose: bool = key(False, "true or false")
    save_weights_only: bool = key(False, "true or false")
    auto_insert_metric_name: bool = key(True, "true or false")


class LearningRateMonitor(TargetNode):
    logging_interval: Literal["step", "epoch"] | None = key(None, "step, epoch or null")
    log_momentum: bool = key(False, "true or false")
    log_weight_decay: bool = key(False, "true or false")


class EarlyStopping(TargetNode):
    monitor: Literal[METRICS] = key(..., f"a logged metric: {NAMED_METRICS}")  # type: ignore[valid-type]
    min_delta: float = key(0.0, "a number >= 0", ge=0)
    patience: int = key(3, WHOLE_GE0, ge=0)
    verbose: bool = key(False, "true or false")
    mode: Literal["min", "max"] = key("min", "min or max")
    strict: bool = key(True, "true or false")
    check_finite: bool = key(True, "true or false")
    stopping_threshold: float | None = key(None, "null or a number")
    divergence_threshold: float | None = key(None, "null or a number")
    check_on_train_epoch_end: bool | None = key(None, "true, false or null")
    log_rank_zero_only: bool = key(False, "true or false")


CALLBACKS = {
    "lightning.pytorch.callbacks.ModelCheckpoint": ModelCheckpoint,
    "lightning.pytorch.callbacks.EarlyStopping": EarlyStopping,
    "lightning.pytorch.callbacks.early_stopping.EarlyStopping": EarlyStopping,
    "lightning.pytorch.callbacks.LearningRateMonitor": LearningRateMonitor,
}


class FileLogger(TargetNode):  # CSVLogger and TensorBoardLogger
    save_dir: str = key(..., "a directory path, e.g. ${paths.output_dir}", min_length=1)
    name: str | None = key("lightning_logs", "null or a folder name")
    version: int | str | None = key(None, "null, a whole number or a folder name")
    prefix: str = key("", TEXT)


LOGGERS = {  # frugal's: Lightning's, appending on resume (frugal.runs.loggers), which replace them
    "frugal.runs.loggers.CSVLogger": FileLogger,
    "frugal.runs.loggers.TensorBoardLogger": FileLogger,
    "lightning.pytorch.loggers.CSVLogger": FileLogger,
    "lightning.pytorch.loggers.TensorBoardLogger": FileLogger,
}
# Loggers that need a package frugal does not import otherwise: (module, install hint)
LOGGER_PACKAGES = {
    "frugal.runs.loggers.TensorBoardLogger": ("tensorboard", "tensorboard"),
    "lightning.pytorch.loggers.TensorBoardLogger": ("tensorboard", "tensorboard"),
}
