"""The schema of every config group: types, ranges and accepted values, as pydantic models.

Each field's `description` is the accepted form an error line ends with. Nodes Hydra
instantiates (`_target_`) get a typed model for the targets frugal ships (unknown keys are then
bound to the target's signature, so a new argument of the target needs no change here) and the
signature alone for any other target. Choice lists are read from the module that uses them.

Here: the top level, what is trained on what (paths, data, model), distillation, the inference
measurement, a sweep's envelope and a size search; how it trains (optimizer, scheduler,
sparsity, compression, trainer, callbacks, loggers) is `frugal.config.schema_training`'s.
"""

from __future__ import annotations

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
    signature (`frugal.config.targets.bind`)."""

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
    # the groups: each is validated by its own model (frugal.config.check.check_values)
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
    """The inference measurement after the test (`frugal.runs.inference`)."""

    enabled: bool = key(True, "true or false")
    serving_batch: int = key(256, "a whole number of samples >= 1, e.g. 256", ge=1)
    latency_samples: int = key(200, "a whole number of forwards >= 1, e.g. 200", ge=1)
    warmup: int = key(5, WHOLE_GE0, ge=0)
    window_s: float | None = key(None, "null or a number of seconds > 0, e.g. 2", gt=0)
    quantize: choices("frugal.runs.inference.QUANTIZE_MODES") | None = key(  # type: ignore[valid-type]
        None, f"null or {spelled('frugal.runs.inference.QUANTIZE_MODES')}"
    )


# ---- sweep envelope (sweep_budget.<key>) ----------------------------------------------------
class SweepBudget(Node):
    """Amounts are parsed with their units by `frugal.budget.spec.envelope_of`."""

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


# ---- distillation ----------------------------------------------------------------------------
class Distill(Node):
    """`distill=default`: knowledge distillation from a teacher checkpoint (frugal.runs.distill)."""

    teacher: PathText = key(
        ...,
        "a checkpoint of a run on the same data, e.g. <run>/checkpoints/best.ckpt",
        min_length=1,
    )
    temperature: float = key(4.0, "a temperature > 0, e.g. 4.0", gt=0)
    alpha: float = key(0.9, "a weight of the teacher's term in [0, 1], e.g. 0.9", ge=0, le=1)
