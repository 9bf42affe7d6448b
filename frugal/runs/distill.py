"""Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural
Network"): a student trained under the budget on the labels and on a trained teacher's
softened predictions, `distill=default distill.teacher=<run>/checkpoints/best.ckpt`.

- **The teacher** is a checkpoint frugal-train wrote, read with `weights_only=True`
  (`frugal.runs.checkpoint`), rebuilt from its run's saved model config and checked at start-up to
  have been trained on the configured data (same source and split: a teacher that saw the
  student's validation or test data would leak it).
- **Frozen and apart.** Eval mode, no gradients, and held in a plain attribute of the module,
  not a submodule: the optimizer never sees it, checkpoints hold the student only, and under
  DDP each rank keeps its own copy, never wrapped or synchronised (its weights are identical
  and never change). `FrugalModule._apply` moves it with the student (device, dtype).
- **Its forward passes are spending.** `FrugalModule.step_flops` adds the teacher's forward
  FLOPs to each training step's, so the plan, `budget.compute` and `spent.compute_flop` count
  them; time and energy count them because they are measured.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor, nn
from torch.nn import functional as F

from frugal.core.errors import ConfigError, bad, setting, shown
from frugal.models.accounting import count_params, flop_per_sample
from frugal.models.registry import build_model, model_name
from frugal.runs.checkpoint import describe_run, load_checkpoint, load_weights, saved_config

KEY = "distill.teacher"
EXPECTED = "a checkpoint of a frugal-train run on the same data, e.g. <run>/checkpoints/best.ckpt"
NOT_COMPARED = ("cache_dir",)  # where a dataset is cached does not change it


def kd_loss(
    student_logits: Tensor, teacher_logits: Tensor, y: Tensor, temperature: float, alpha: float
) -> Tensor:
    """(1 − α)·CE(student, y) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)).

    T² keeps the soft term's gradients on the scale of the hard term's as T changes (Hinton et
    al. 2015, section 2); the KL is averaged over the batch, like the cross-entropy."""
    hard = F.cross_entropy(student_logits, y)
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1),
        F.log_softmax(teacher_logits / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return (1 - alpha) * hard + alpha * temperature**2 * soft


@dataclass(frozen=True)
class Distillation:
    """What a FrugalModule needs to distil: the frozen teacher and the loss's two knobs."""

    teacher: nn.Module
    temperature: float
    alpha: float

    def loss(self, student_logits: Tensor, x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():  # not inference_mode: its tensors cannot enter the autograd graph
            teacher_logits = self.teacher(x)
        return kd_loss(student_logits, teacher_logits, y, self.temperature, self.alpha)


# ---- the teacher -----------------------------------------------------------------------------
def check_teacher(distill: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    """Start-up check of `distill.teacher`: a readable checkpoint frugal-train wrote, in a run
    directory (whose saved config tells its model and data), trained on `data` (the configured
    data node, resolved) and not a compressed model. Raises ConfigError naming
    `distill.teacher`."""
    value = distill.get("teacher")
    load_checkpoint(value, KEY)
    where = setting(KEY, value)
    saved = saved_config(Path(str(value)).expanduser())
    if saved is None or "model" not in saved or "data" not in saved:
        raise bad(
            where,
            ...,
            "not in a run directory (no <run>/.hydra/config.yaml beside its checkpoints/), so its "
            "model and data are unknown",
            EXPECTED,
        )
    if saved.get("compress"):
        raise bad(
            where,
            ...,
            "a model compressed with compress=, which cannot be rebuilt from its run's config",
            "a teacher trained without compress=",
        )
    trained, configured = _identity(_data_of(saved)), _identity(dict(data))
    prefix = "data.source" if isinstance(data.get("source"), dict) else "data"
    difference = _first_difference(trained, configured, prefix)
    if difference is not None:
        key, was, now = difference
        raise bad(
            where,
            ...,
            f"the teacher ({describe_run(saved)}) was trained with {key}={_value(was)}, "
            f"configured {key}={_value(now)}",
            "a teacher trained on the configured data and split",
        )


def build_teacher(
    distill: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """The teacher named by `distill.teacher` (checked by `check_teacher`), built from its run's
    model config, its weights checked to fit and loaded (a sparse-trained teacher's with their
    masks applied: it runs dense), frozen and in eval mode, on the CPU."""
    value = distill["teacher"]
    saved = saved_config(Path(str(value)).expanduser())
    if saved is None:
        raise bad(KEY, value, "not in a run directory", EXPECTED)
    holder = nn.Module()  # the checkpoint names its weights backbone.*, as a FrugalModule does
    holder.backbone = build_model(saved.model, input_shape, num_classes)
    teacher_cfg = copy.deepcopy(saved)
    with open_dict(teacher_cfg):
        teacher_cfg.ckpt_path = str(value)
    try:
        load_weights(holder, teacher_cfg)
    except ConfigError as err:  # said of ckpt_path: say it of distill.teacher
        reason = str(err).partition(": ")[2]
        raise ConfigError(f"{setting(KEY, value)}: {reason}") from None
    teacher = holder.backbone
    teacher.requires_grad_(False)
    return teacher.eval()


def build_distillation(
    distill: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> Distillation:
    return Distillation(
        teacher=build_teacher(distill, input_shape, num_classes),
        temperature=float(distill["temperature"]),
        alpha=float(distill["alpha"]),
    )


def distill_record(
    distill: Mapping[str, Any], distillation: Distillation, input_shape: tuple[int, ...]
) -> dict[str, Any]:
    """result.json's `distill`: the teacher and the loss's settings. `teacher_flop_per_sample`
    is the teacher's forward FLOPs per sample as executed, which every training sample also
    books (inference by the student alone costs `model.flop_per_sample`)."""
    teacher = distillation.teacher
    saved = saved_config(Path(str(distill["teacher"])).expanduser())
    return {
        "teacher": str(Path(str(distill["teacher"])).expanduser().resolve()),
        "teacher_model": model_name(saved.model) if saved is not None else None,
        "teacher_params": count_params(teacher),
        "teacher_flop_per_sample": flop_per_sample(teacher, input_shape)["dense"],
        "temperature": distillation.temperature,
        "alpha": distillation.alpha,
    }


# ---- same data -------------------------------------------------------------------------------
def _data_of(saved: DictConfig) -> dict[str, Any]:
    """The saved run's data node, resolved where it can be (`${paths...}` of that run)."""
    try:
        return OmegaConf.to_container(saved.data, resolve=True)  # type: ignore[return-value]
    except Exception:  # a resolver only Hydra's app knows: compare the values as written
        return OmegaConf.to_container(saved.data, resolve=False)  # type: ignore[return-value]


def _identity(data: dict[str, Any]) -> dict[str, Any]:
    """What makes the data the same: the source node (frugal's sources) or the whole node (a
    DataModule of your own), without the batch size and cache location."""
    source = data.get("source")
    node = source if isinstance(source, dict) else data
    return {k: v for k, v in node.items() if k not in (*NOT_COMPARED, "batch_size")}


def _first_difference(trained: Any, configured: Any, prefix: str) -> tuple[str, Any, Any] | None:
    if isinstance(trained, dict) and isinstance(configured, dict):
        for name in sorted({*trained, *configured}, key=str):
            found = _first_difference(
                trained.get(name, ...), configured.get(name, ...), f"{prefix}.{name}"
            )
            if found is not None:
                return found
        return None
    return None if trained == configured else (prefix, trained, configured)


def _value(value: Any) -> str:
    return "(unset)" if value is ... else shown(value)
