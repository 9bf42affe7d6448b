"""`result.json` of a run: built from what the run measured (the contract in README, "Outputs
of a run") and written — or marked `write_failed` when a write failed; for a run a signal
stopped during set-up, from what it had built (`stopped_in_setup`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from frugal.budget.spec import BudgetSpec
from frugal.callbacks.budget import BudgetCallback
from frugal.config import Checked
from frugal.core.status import Status
from frugal.data.build import describe_data
from frugal.meters.base import EnergyMeter
from frugal.models.accounting import count_params, count_params_effective, flop_per_sample
from frugal.models.registry import model_name
from frugal.module import FrugalModule
from frugal.runs.metering import describe_meter
from frugal.runs.record import CURVE_FILE, last_validation, read_result, versions, write_json_atomic
from frugal.runs.signals import StopSignals
from frugal.runs.stop_record import may_stop_in_setup, write_interrupted
from frugal.runs.write_faults import WriteFailed, WriteFaults, writing


def build_result(
    cfg: DictConfig,
    checked: Checked,
    budget_cb: BudgetCallback,
    trainer: L.Trainer,
    module: FrugalModule,
    datamodule: L.LightningDataModule,
    spent: dict[str, float | None],
    energy: dict[str, Any],
    metrics: dict[str, float],
) -> dict[str, Any]:
    """`result.json`: the contract in README, "Outputs of a run"."""
    plan = budget_cb.plan
    return {
        "status": budget_cb.status,
        "stopped_by": budget_cb.stopped_by,
        "message": budget_cb.message,
        "budget": checked.budget.limits(),
        "spent": spent,
        "energy": energy,
        "data": describe_data(datamodule, cfg.data),
        "model": model_record(
            cfg, module, datamodule.input_shape, budget_cb.train_flop_per_sample
        ),  # after training: masks may have changed
        "plan": {
            "mode": checked.budget.plan,
            "max_steps": plan.max_steps if plan else None,
            "binding": plan.binding if plan else None,
            "allowed_steps": plan.allowed_steps if plan else {},
        },
        "metrics": metrics,
        "steps": trainer.global_step,
        "epochs": trainer.current_epoch,
        "seed": cfg.seed,
        "versions": versions(),
        "run": run_info(cfg, Path(cfg.paths.output_dir)),
    }


def model_record(
    cfg: DictConfig,
    module: FrugalModule,
    input_shape: tuple[int, ...],
    train_flop_per_sample: float | None,
) -> dict[str, Any]:
    """`result.json`'s `model`: its name, parameters (all and effective), FLOPs per sample."""
    return {
        "name": model_name(cfg.model),
        "params": count_params(module.backbone),
        "params_effective": count_params_effective(module.backbone),
        "flop_per_sample": flop_per_sample(module.backbone, input_shape),
        "train_flop_per_sample": train_flop_per_sample,
    }


def stopped_in_setup(
    phase: str,
    cfg: DictConfig,
    signals: StopSignals,
    trainer: L.Trainer,
    budget: BudgetSpec,
    meter: EnergyMeter | None,
    datamodule: Any = None,
    module: FrugalModule | None = None,
) -> dict[str, Any] | None:
    """A signal noted during set-up, at the end of `phase`: the run's record (written by global
    rank 0; what was built so far described, nothing trained: `frugal.runs.stop_record`), or
    None to go on — no signal, or a rank of a multi-process run (the first step stops them
    together)."""
    if signals.received is None or not may_stop_in_setup(trainer.num_nodes):
        return None
    known: dict[str, Any] = {"budget": budget.limits(), "energy": describe_meter(meter)}
    if datamodule is not None:
        known["data"] = describe_data(datamodule, cfg.data)
    if module is not None:
        known["model"] = model_record(cfg, module, datamodule.input_shape, None)
    return write_interrupted(cfg, signals.received, phase, known, trainer.is_global_zero)


def run_info(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"dir": str(output_dir), "name": model_name(cfg.model), "overrides": []}
    if HydraConfig.initialized():
        info["overrides"] = list(HydraConfig.get().overrides.task)
    return info


def training_metrics(trainer: L.Trainer, output_dir: Path, resumed: bool) -> dict[str, float]:
    """The training and validation metrics of the run: what Lightning logged last, then the
    run's last validation in `curve.csv` (resumed with nothing left: it validated no more),
    then — resumed — what its `result.json` recorded before (`earlier_metrics`)."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if "/" in k}
    for key, value in last_validation(output_dir / CURVE_FILE).items():
        metrics.setdefault(key, value)
    if resumed:  # what this segment did not measure again is kept
        for key, value in earlier_metrics(output_dir).items():
            metrics.setdefault(key, value)
    return metrics


def earlier_metrics(output_dir: Path) -> dict[str, float]:
    """The training and validation metrics the run's `result.json` recorded before this resume
    (a resumed segment that trains nothing measures none of them). Test metrics are not
    carried: a tested run measures them anew, an untested one has other weights."""
    metrics = (read_result(output_dir) or {}).get("metrics")
    if not isinstance(metrics, dict):
        return {}
    return {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(key, str)
        and not key.startswith("test/")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }


def record_result(path: Path, result: dict[str, Any], faults: WriteFaults) -> None:
    """`result.json`, the run's status `write_failed` if a write failed (this one included:
    then its status and message are on stderr only). It is small: written before the summary
    and after the failed file (an atomic write leaves no partial file taking the room)."""
    if faults.first is not None:
        mark_write_failed(result, faults.first)
    with faults.caught(), writing(path):
        write_json_atomic(path, result)
    if faults.first is not None:
        mark_write_failed(result, faults.first)


def mark_write_failed(result: dict[str, Any], failed: WriteFailed) -> None:
    """A write fault ends the run `write_failed` whatever it was about to end with; `message`
    names the path and the errno (the one stderr line `frugal-train` prints)."""
    result.update(status=Status.WRITE_FAILED.value, stopped_by=None, message=str(failed))
