"""The schema of every config group: types, ranges and accepted values, as pydantic models.

Each field's `description` is the accepted form an error line ends with. Nodes Hydra
instantiates (`_target_`) get a typed model for the targets frugal ships (unknown keys are then
bound to the target's signature, so a new argument of the target needs no change here) and the
signature alone for any other target. Choice lists are read from the module that uses them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from frugal.config.signatures import constant_of
from frugal.core.keys import SPENT_KEYS


def choices(target: str) -> Any:
    """`Literal[...]` of the string constants `target` names (one home for each choice list)."""
    return Literal[tuple(constant_of(target))]  # type: ignore[valid-type]


def key(default: Any, expected: str, **constraints: Any) -> Any:
    """A field whose description is the accepted form an error line shows."""
    return Field(default, description=expected, **constraints)


def spelled(target: str) -> str:
    values = list(constant_of(target))
    return ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else values[0]


class Node(BaseModel):
    """A config node: exact types (no '5' for 5, no true for 1), finite numbers, no unknown key."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class TargetNode(Node):
    """A node Hydra instantiates: keys this model does not type are bound to the target's
    signature (`frugal.config.check.bind`)."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False, frozen=True)
    target: str = Field(alias="_target_", description="an importable class or function")


HYDRA_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")
METRICS = tuple(f"{stage}/{name}" for stage in ("train", "val", "test") for name in ("acc", "loss"))
NAMED_METRICS = ", ".join(METRICS)
OBJECTIVES = (*METRICS, *SPENT_KEYS)

WHOLE_GE0 = "a whole number >= 0"
WHOLE_GE1 = "a whole number >= 1"
OPEN_FRACTION = "a fraction in (0, 1), e.g. 0.1"
UNIT_FRACTION = "a fraction in (0, 1], e.g. 0.5"
CLOSED_FRACTION = "a fraction in [0, 1]"
SEED = "a whole number >= 0, e.g. 0"
SEED_MAX = 2**32 - 1  # numpy and Lightning's seed_everything accept no larger seed
MAX_WAIT_S = 7 * 86400  # a collective that waits longer has hung (timedelta overflows ~1e14 s)
TEXT = "text"


def _not_blank(text: str) -> str:
    if not text.strip():  # '' is the working directory to Path: never what was meant
        raise ValueError("empty (it would name the working directory)")
    return text


PathText = Annotated[str, AfterValidator(_not_blank)]  # a file or directory path, never blank


# ---- top level -------------------------------------------------------------------------------
class TopLevel(Node):
    """Keys of train.yaml itself; each group below is checked by its own model."""

    task_name: str = key("train", "a name for the run's folder, e.g. train")
    seed: int = key(
        0, "a whole number in [0, 4294967295] (numpy's range), e.g. 0", ge=0, le=SEED_MAX
    )
    ckpt_path: PathText | None = key(
        None, "null or a checkpoint file, e.g. <run>/checkpoints/last.ckpt"
    )
    resume: PathText | None = key(
        None, "null or a run directory to resume, e.g. outputs/train/runs/<run>"
    )
    init_from: PathText | None = key(
        None, "null or a checkpoint to start from, e.g. <run>/checkpoints/last.ckpt"
    )
    test_on: Literal["best", "last"] = key("best", "best or last")
    threads: int | None = key(1, "null or a whole number of threads >= 1", ge=1)
    objectives: list[str] | str = key(
        ["test/acc"], f"a list of metric or spent names, e.g. [test/acc, energy_j]: {NAMED_METRICS}"
    )
    progress: choices("frugal.callbacks.progress.MODES") = key(  # type: ignore[valid-type]
        "auto", spelled("frugal.callbacks.progress.MODES")
    )
    progress_refresh_rate: int = key(50, "a whole number of steps >= 0", ge=0)
    collective_timeout_s: float = key(
        120, "a number of seconds in (0, 604800] (a week), e.g. 120", gt=0, le=MAX_WAIT_S
    )
    debug: bool | None = key(None, "true, false or null")
    search: dict[str, Any] | None = key(None, "the search knobs of hparams_search")
    local: dict[str, Any] | None = key(None, "machine-specific settings (conf/local/default.yaml)")
    # the groups: each is validated by the model named in frugal.config.check.GROUPS
    data: Any = key(..., "a data group, e.g. data=mnist1d")
    model: Any = key(..., "a model group, e.g. model=cnn")
    optimizer: Any = key(..., "an optimizer group, e.g. optimizer=adamw")
    scheduler: Any = key(None, "null or a scheduler group, e.g. scheduler=budget_linear")
    budget: Any = key(None, "a budget group, e.g. budget.energy=2kJ")
    trainer: Any = key(..., "a trainer group, e.g. trainer=cpu")
    callbacks: Any = key(None, "a callbacks group, e.g. callbacks=default")
    logger: Any = key(None, "a logger group, e.g. logger=csv")
    paths: Any = key(..., "a paths group, e.g. paths=default")
    energy: Any = key(None, "an energy node, e.g. energy.backend=auto")
    compress: Any = key(None, "null, compress=svd, compress=prune or compress=structured")
    sparsity: Any = key(
        None, "null, sparsity=gmp, sparsity=rigl, sparsity=set or sparsity=structured"
    )
    distill: Any = key(None, "null, or distill=default distill.teacher=<run>/checkpoints/best.ckpt")
    inference: Any = key(None, "an inference node, e.g. inference.enabled=false")
    sweep_budget: Any = key(None, "a sweep envelope, e.g. sweep_budget.energy=20kJ (with -m)")
    size_search: Any = key(None, "the size search's ladder, e.g. size_search.width_mult=[0.5,1,2]")

    @field_validator("objectives")
    @classmethod
    def _objectives_are_known(cls, objectives: list[str] | str) -> list[str] | str:
        names = [objectives] if isinstance(objectives, str) else objectives
        unknown = [name for name in names if name not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objective {unknown[0]!r}")
        if not names:
            raise ValueError("empty")
        return objectives


# ---- inference -------------------------------------------------------------------------------
class Inference(Node):
    """The inference measurement after the test (`frugal.inference`)."""

    enabled: bool = key(True, "true or false")
    serving_batch: int = key(256, "a whole number of samples >= 1, e.g. 256", ge=1)
    latency_samples: int = key(200, "a whole number of forwards >= 1, e.g. 200", ge=1)
    warmup: int = key(5, WHOLE_GE0, ge=0)
    window_s: float | None = key(None, "null or a number of seconds > 0, e.g. 2", gt=0)
    quantize: choices("frugal.inference.QUANTIZE_MODES") | None = key(  # type: ignore[valid-type]
        None, f"null or {spelled('frugal.inference.QUANTIZE_MODES')}"
    )


# ---- sweep envelope (sweep_budget.<key>) ----------------------------------------------------
class SweepBudget(Node):
    """Amounts are parsed with their units by `frugal.sweep.envelope.envelope_of`."""

    energy: str | int | float | None = key(None, "an energy, e.g. 20kJ")
    carbon: str | int | float | None = key(None, "a mass of CO2, e.g. 50g")
    compute: str | int | float | None = key(None, "an amount of FLOP, e.g. 1PFLOP")
    data: str | int | float | None = key(None, "a number of samples, e.g. 1M")
    time: str | int | float | None = key(None, "a duration, e.g. 2h")


# ---- size search (model.kwargs.width_mult=auto) ---------------------------------------------
class SizeSearch(Node):
    width_mult: list[Annotated[float, Field(gt=0)]] = key(
        [0.25, 0.5, 1.0, 2.0, 4.0], "a list of numbers > 0, e.g. [0.5, 1.0, 2.0]"
    )
    depth: list[Annotated[int, Field(ge=1)]] = key(
        [1, 2, 3, 4], "a list of whole numbers of layers >= 1, e.g. [1, 2, 3]"
    )
    metric: Literal["val/loss", "val/acc"] = key("val/loss", "val/loss or val/acc")
    validations: int = key(8, "a whole number of points per pilot curve >= 4, e.g. 8", ge=4)
    val_every_steps: int = key(10, "a whole number of steps >= 1, e.g. 10", ge=1)
    warm_start: bool = key(True, "true or false")


# ---- paths -----------------------------------------------------------------------------------
class Paths(Node):
    root_dir: PathText = key(..., "a directory path", min_length=1)
    log_dir: PathText = key(..., "a directory path", min_length=1)
    output_dir: PathText = key(..., "a directory path", min_length=1)
    cache_dir: PathText = key(..., "a directory path", min_length=1)


# ---- data ------------------------------------------------------------------------------------
class Data(Node):
    source: dict[str, Any] = key(..., "a data source with _target_, e.g. data=mnist1d")
    batch_size: int = key(..., "a whole number of samples >= 1, e.g. 64", ge=1)


MNIST1D_TRAIN = 4000  # training sequences of mnist1d's default dataset (the rest is test)
DIGITS_IMAGES = 1797  # scikit-learn's load_digits


class Mnist1dSource(TargetNode):
    val_size: int = key(400, f"a whole number in [1, {MNIST1D_TRAIN - 1}]", ge=1, lt=MNIST1D_TRAIN)
    seed: int = key(0, SEED, ge=0)
    cache_dir: PathText | None = key(None, "null or a directory path")


class DigitsSource(TargetNode):
    val_size: int = key(180, f"a whole number >= 1, val_size + test_size < {DIGITS_IMAGES}", ge=1)
    test_size: int = key(360, f"a whole number >= 1, val_size + test_size < {DIGITS_IMAGES}", ge=1)
    seed: int = key(0, SEED, ge=0)

    @field_validator("test_size")
    @classmethod
    def _fits(cls, test_size: int, info: ValidationInfo) -> int:
        if test_size + info.data.get("val_size", 0) >= DIGITS_IMAGES:
            raise ValueError(f"with val_size it leaves none of the {DIGITS_IMAGES} images to train")
        return test_size


class SyntheticSource(TargetNode):
    num_samples: int = key(512, "a whole number >= 3 (train, validation, test)", ge=3)
    features: int = key(16, WHOLE_GE1, ge=1)
    num_classes: int = key(4, "a whole number of classes >= 2", ge=2)
    seed: int = key(0, SEED, ge=0)


class FilesSource(TargetNode):
    path: PathText = key(..., "the path of a .npz or .csv file", min_length=1)
    test_path: PathText | None = key(None, "null or the path of a .npz or .csv file")
    val_size: int = key(0, "a whole number >= 0 (0: use val_fraction)", ge=0)
    val_fraction: float = key(0.1, OPEN_FRACTION, gt=0, lt=1)
    test_fraction: float = key(0.2, OPEN_FRACTION, gt=0, lt=1)
    seed: int = key(0, SEED, ge=0)
    label_column: int | str = key(-1, "a column index (e.g. -1, the last) or a header name")
    standardize: bool = key(True, "true or false (features to mean 0, std 1)")

    @field_validator("test_fraction")
    @classmethod
    def _fits(cls, test_fraction: float, info: ValidationInfo) -> float:
        if (
            info.data.get("test_path") is None
            and test_fraction + info.data.get("val_fraction", 0) >= 1
        ):
            raise ValueError("with val_fraction it leaves no rows to train on")
        return test_fraction


class OwnData(Node):
    """`data=own data._target_=pkg.module.MyData`: any LightningDataModule."""

    target: str = Field(
        alias="_target_", description="a dotted path pkg.module.MyData", min_length=1
    )
    name: str | None = key(None, "a name for reports (by default the _target_)")
    kwargs: dict[str, Any] | None = key(None, "the data module's keyword arguments")
    num_classes: int | None = key(None, "null or a whole number of classes >= 2", ge=2)
    batch_size: int = key(..., "a whole number of samples >= 1, e.g. 64", ge=1)


SOURCES = {
    "frugal.data.sources.mnist1d": Mnist1dSource,
    "frugal.data.sources.digits": DigitsSource,
    "frugal.data.sources.synthetic": SyntheticSource,
    "frugal.data.sources.files": FilesSource,
}


# ---- model -----------------------------------------------------------------------------------
class Model(Node):
    name: str = key(..., "a registered model, e.g. cnn")
    task: str | None = key(None, "the task the model is built for, e.g. mnist1d or digits")
    kwargs: dict[str, Any] | None = key(None, "the builder's keyword arguments")


class OwnModel(Node):
    """`model=own model._target_=pkg.module.Net`: any nn.Module (frugal.models.registry)."""

    target: str = Field(alias="_target_", description="a dotted path pkg.module.Net", min_length=1)
    name: str = key(..., "a name for reports (by default the _target_)")
    task: str | None = key(None, "null (any data) or the task the model is built for")
    kwargs: dict[str, Any] | None = key(None, "the model's keyword arguments")


# Ranges of the builder arguments frugal's models share; any other argument is typed by its
# annotation (int, float, bool, str) alone.
MODEL_KWARGS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "channels": (int, "a whole number of channels >= 1", {"ge": 1}),
    "hidden": (int, "a whole number of units >= 1", {"ge": 1}),
    "depth": (int, "a whole number of layers >= 1", {"ge": 1}),
    "width_mult": (float, "a number > 0 that scales the width, e.g. 2.0", {"gt": 0}),
    "rank_ratio": (float, UNIT_FRACTION, {"gt": 0, "le": 1}),
    "density": (float, "a fraction of weights kept in (0, 1], e.g. 0.2", {"gt": 0, "le": 1}),
    "distribution": (
        choices("frugal.models.sparse.DISTRIBUTIONS"),
        spelled("frugal.models.sparse.DISTRIBUTIONS"),
        {},
    ),
    "bidirectional": (bool, "true or false", {}),
}
ANNOTATIONS: dict[str, tuple[Any, str]] = {
    "int": (int, "a whole number"),
    "float": (float, "a number"),
    "bool": (bool, "true or false"),
    "str": (str, TEXT),
}


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


# ---- distillation ----------------------------------------------------------------------------
class Distill(Node):
    """`distill=default`: knowledge distillation from a teacher checkpoint (frugal.distill)."""

    teacher: PathText = key(
        ...,
        "a checkpoint of a run on the same data, e.g. <run>/checkpoints/best.ckpt",
        min_length=1,
    )
    temperature: float = key(4.0, "a temperature > 0, e.g. 4.0", gt=0)
    alpha: float = key(0.9, "a weight of the teacher's term in [0, 1], e.g. 0.9", ge=0, le=1)


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


LOGGERS = {  # frugal's: Lightning's, appending on resume (frugal.loggers), which replace them
    "frugal.loggers.CSVLogger": FileLogger,
    "frugal.loggers.TensorBoardLogger": FileLogger,
    "lightning.pytorch.loggers.CSVLogger": FileLogger,
    "lightning.pytorch.loggers.TensorBoardLogger": FileLogger,
}
# Loggers that need a package frugal does not import otherwise: (module, install hint)
LOGGER_PACKAGES = {
    "frugal.loggers.TensorBoardLogger": ("tensorboard", "tensorboard"),
    "lightning.pytorch.loggers.TensorBoardLogger": ("tensorboard", "tensorboard"),
}
