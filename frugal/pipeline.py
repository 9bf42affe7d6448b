"""One budgeted training run: validate, build, plan, train, test, record.

`train(cfg)` does the work and is what tests call; `frugal.train.main` is the thin Hydra
wrapper (it imports this module only once the command line has been checked).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.accelerators import CUDAAccelerator
from lightning.pytorch.callbacks import Checkpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from frugal.budget.ledger import LEDGER_FILE
from frugal.callbacks.budget import BudgetCallback, Diverged
from frugal.callbacks.progress import BudgetProgressBar, progress_callback
from frugal.callbacks.recorder import CurveRecorder
from frugal.callbacks.signals import StopSignals
from frugal.checkpoint import check_fits, load_weights, resolve_resume
from frugal.cluster import note_job, resume_requeued, trainer_plugins
from frugal.config import Checked, check_config
from frugal.core.status import Status
from frugal.data.build import build_datamodule, describe_data
from frugal.distill import build_distillation, distill_record
from frugal.loggers import build_loggers
from frugal.meters.base import EnergyMeter
from frugal.meters.carbon import carbon_intensity
from frugal.meters.energy import EnergyConfig, build_energy_meter
from frugal.meters.energy.nvml import nvml_indices
from frugal.models.accounting import count_params, count_params_effective, flop_per_sample
from frugal.models.compress import compression_record
from frugal.models.registry import build_model, model_name
from frugal.module import FrugalModule
from frugal.record import (
    CURVE_FILE,
    RESULT_FILE,
    last_validation,
    read_result,
    versions,
    write_json_atomic,
)
from frugal.runs import claimed
from frugal.runs.checkpoint_io import AtomicCheckpointIO
from frugal.stop_record import (
    BUILDING_DATA,
    BUILDING_MODEL,
    BUILDING_TRAINER,
    may_stop_in_setup,
    write_interrupted,
)
from frugal.summary import print_summary
from frugal.sweep import auto_size, envelope
from frugal.write_faults import WriteFailed, WriteFaults, writing

log = logging.getLogger("frugal")

# Runs whose model is tested: it trained as far as it went (a diverged run on its last finite
# checkpoint). Refused and interrupted runs are not (an interrupted one resumes instead).
TESTED = (Status.COMPLETED, Status.BUDGET_EXHAUSTED, Status.DIVERGED, Status.UNENFORCEABLE)


def validate(cfg: DictConfig, meter_given: bool = False) -> Checked:
    """Every user-facing check that can run before training objects exist, in one schema
    (`frugal.config`); raises ConfigError. `frugal-train` ran the same checks before Hydra
    wrote anything; tests and scripts calling `train(cfg)` get them here."""
    return check_config(cfg, meter_given=meter_given)


def build_callbacks(cfg: DictConfig, has_logger: bool) -> list[L.Callback]:
    callbacks = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None or "_target_" not in node:
            continue
        if name == "lr_monitor" and not has_logger:
            continue  # LearningRateMonitor refuses to run without a logger
        callbacks.append(instantiate(node))
    if cfg.get("sparsity"):
        callbacks.append(instantiate(cfg.sparsity))
    return callbacks


def train(
    cfg: DictConfig,
    energy_meter: EnergyMeter | None = None,
    callbacks: list[L.Callback] | None = None,
    clock: Callable[[], float] | None = None,
    signals: StopSignals | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Plan, train under the budget, test, write outputs. Returns (result, objects).

    `energy_meter` replaces the configured backend (a meter of your own, or a fake in tests);
    `callbacks` run before the budget callback (instruments of your own); `clock` is the
    budget's clock in seconds (default `time.perf_counter`; simulations and tests); `signals`:
    the stop signals noted since the command line was accepted (`frugal-train` installs them;
    by default the run installs its own).
    A job of a sweep with `sweep_budget` first takes its share of the envelope
    (`frugal.sweep.envelope`); a model whose size is `auto` is chosen by pilot runs within the
    budget (`frugal.sweep.auto_size`).
    """
    cfg = resume_requeued(cfg)  # a requeued cluster job continues its own run (frugal.cluster)
    cfg = resolve_resume(cfg)  # a resumed run continues with its own saved configuration
    meter_given = energy_meter is not None
    if envelope.declared(cfg.get("sweep_budget")):
        # its budget becomes its reservation of the envelope (its directory is checked after:
        # a relaunch may continue it)
        check_config(cfg, meter_given=meter_given, check_dirs=False)
        cfg, finished = envelope.join(cfg)
        if finished is not None:  # it finished in an earlier launch of this sweep
            return finished, {}
    run = dict(energy_meter=energy_meter, callbacks=callbacks, clock=clock, signals=signals)
    if auto_size.searched(cfg):
        validate(cfg, meter_given=meter_given)
        with claimed(Path(cfg.paths.output_dir)):  # the search's directory, its pilots inside
            result, objects = auto_size.search_and_train(cfg, train_one, **run)
    else:
        result, objects = train_one(cfg, **run)
    trainer = objects.get("trainer")
    if trainer is None or trainer.is_global_zero:
        envelope.settle(cfg, result)
    return result, objects


def train_one(
    cfg: DictConfig,
    energy_meter: EnergyMeter | None = None,
    callbacks: list[L.Callback] | None = None,
    clock: Callable[[], float] | None = None,
    init_from: Path | None = None,
    signals: StopSignals | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run of a model of known size (`train`'s work); `init_from`: a checkpoint whose
    weights the model starts from (a size search's pilot), with a fresh optimizer and ledger,
    as `cfg.init_from` would."""
    if init_from is not None:
        cfg = with_init(cfg, init_from)
    checked = validate(cfg, meter_given=energy_meter is not None)
    output_dir = Path(cfg.paths.output_dir)
    with claimed(output_dir):  # one process per run, until its result is written (frugal.runs)
        return _train_claimed(cfg, checked, output_dir, energy_meter, callbacks, clock, signals)


def _train_claimed(
    cfg: DictConfig,
    checked: Checked,
    output_dir: Path,
    energy_meter: EnergyMeter | None,
    callbacks: list[L.Callback] | None,
    clock: Callable[[], float] | None,
    signals: StopSignals | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`train_one`'s work, in its claimed run directory."""
    note_job(output_dir)  # under submitit: which job writes here (its requeues resume)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    ckpt_path = cfg.get("ckpt_path")
    if cfg.get("compress"):
        ckpt_path = None  # a compressed model is fine-tuned under a fresh budget

    # The trainer and the energy meter first: the meter's start-up (codecarbon probes the
    # hardware for ~2 s) then runs in the background while data and model are built.
    own_signals = signals is None  # frugal-train hands down those it noted from the start
    signals = signals or StopSignals()
    signals.install()  # (again): a signal during set-up ends the run before its first step
    loggers = build_loggers(cfg.get("logger"))  # appending on resume (frugal.loggers)
    callbacks = [*build_callbacks(cfg, has_logger=bool(loggers)), *(callbacks or [])]
    if cfg.trainer.get("enable_progress_bar", True):
        progress = cfg.get("progress", "auto")
        callbacks.append(progress_callback(progress, cfg.get("progress_refresh_rate", 50)))
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        **ddp_with_timeout(cfg),
        # atomic checkpoints; under SLURM, frugal, not Lightning, handles the signals
        plugins=[AtomicCheckpointIO(), *trainer_plugins().get("plugins", [])],
        callbacks=callbacks,
        logger=loggers or False,
        # Lightning adds a bar of its own unless told there is none (log lines instead of one)
        enable_progress_bar=any(isinstance(c, BudgetProgressBar) for c in callbacks),
    )
    meter = build_meter(checked.energy, trainer, energy_meter)
    intensity, intensity_source = carbon_intensity(checked.energy)
    budget_cb = BudgetCallback(
        checked.budget,
        energy_meter=meter,
        meter_started=start_in_background(meter),
        carbon_g_per_kwh=intensity,
        count_params=lambda m: count_params_effective(m.backbone),
        ledger_path=output_dir / LEDGER_FILE,
        signals=signals,
        clock=clock,
    )
    curve = CurveRecorder(budget_cb, output_dir / CURVE_FILE, resume=ckpt_path is not None)
    # Before the checkpoint callbacks (Lightning does not reorder them at fit unless the model
    # configures callbacks): a validation's curve row, small, is written before the large
    # checkpoints, and the budget times the saves after its own on_validation_end.
    first_save = next(
        (i for i, c in enumerate(trainer.callbacks) if isinstance(c, Checkpoint)),
        len(trainer.callbacks),
    )
    trainer.callbacks[first_save:first_save] = [budget_cb, curve]
    # Lightning's own SIGTERM handler broadcasts a tensor and kills the other ranks from inside
    # the handler (a hang under DDP when the signal reaches rank 1): frugal's handlers, which
    # only note the signal, stay in place through fit and test instead.
    trainer._signal_connector.register_signal_handlers = lambda: None
    faults = WriteFaults(output_dir)  # the first write that failed (disk full, permissions)
    early = {"trainer": trainer, "budget": budget_cb}  # what a run stopped in set-up returns
    stop_here = partial(
        stopped_in_setup, cfg=cfg, signals=signals, trainer=trainer, checked=checked, meter=meter
    )

    try:
        if (stopped := stop_here(BUILDING_TRAINER)) is not None:  # noted since the command line
            return stopped, early
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule = build_datamodule(cfg.data)
        if (stopped := stop_here(BUILDING_DATA, datamodule=datamodule)) is not None:
            return stopped, early
        backbone = build_model(cfg.model, datamodule.input_shape, datamodule.num_classes)
        distillation = None
        if cfg.get("distill"):  # the teacher: frozen, its forward passes booked to this budget
            distillation = build_distillation(
                cfg.distill, datamodule.input_shape, datamodule.num_classes
            )
        module = FrugalModule(
            backbone,
            optimizer=instantiate(cfg.optimizer),
            num_classes=datamodule.num_classes,
            scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
            distillation=distillation,
        )
        compression = None
        if cfg.get("compress"):
            module = compress(module, cfg, datamodule.input_shape)
            compression = compression_record(
                OmegaConf.to_container(cfg.compress, resolve=True),
                cfg.ckpt_path,
                module.backbone,
                datamodule.val_dataloader(),
            )
        elif cfg.get("init_from") and ckpt_path is None:  # resuming, it takes its own weights
            load_weights(module, cfg, "init_from")  # checked to fit; fresh optimizer and ledger
        elif ckpt_path is not None:
            for callback in trainer.callbacks:  # structured pruning: take the pruned shapes
                fit_checkpoint = getattr(callback, "fit_checkpoint", None)
                if fit_checkpoint is not None:
                    fit_checkpoint(module, ckpt_path, datamodule.input_shape)
            check_fits(module, cfg)  # before Lightning restores it: one line, not a traceback
        stopped = stop_here(BUILDING_MODEL, datamodule=datamodule, module=module)
        if stopped is not None:  # (a signal from here on stops the first step)
            return stopped, early

        try:
            with faults.caught():  # a checkpoint, curve.csv, ledger.json that could not be written
                trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except Diverged:
            pass  # the callback recorded the step; the last update was skipped: weights finite
        except (SystemExit, KeyboardInterrupt) as err:
            # A signal Lightning handled itself (before our handlers were in place), or Ctrl-C
            # twice: the run stops resumably and says so.
            budget_cb.mark_interrupted(signals.received, type(err).__name__)
        if signals.received is not None:  # arrived after the last step: still a stop request
            budget_cb.mark_interrupted(signals.received, "signal after training")
        spent = budget_cb.spent()  # before testing: a test checkpoint restores callbacks
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if "/" in k}
        for key, value in last_validation(output_dir / CURVE_FILE).items():
            metrics.setdefault(key, value)  # resumed with nothing left: its last validation
        if ckpt_path is not None:  # resumed: what this segment did not measure again is kept
            for key, value in earlier_metrics(output_dir).items():
                metrics.setdefault(key, value)
        test_spent = inference = None
        if budget_cb.status in TESTED and faults.first is None:
            with faults.caught():  # the logger's test metrics
                test_spent, test_metrics = run_test(cfg, trainer, module, datamodule, budget_cb)
                metrics.update(test_metrics)
        if signals.received is not None:  # arrived during the test: the run still says so
            budget_cb.mark_interrupted(signals.received, "signal during the test")
        tested = budget_cb.status in TESTED and faults.first is None  # not interrupted in the test
        if tested and trainer.is_global_zero:
            inference = run_inference(cfg, trainer, module, datamodule, budget_cb, signals)
    finally:
        stop_meter(budget_cb)
        if own_signals:
            signals.restore()

    energy = {
        **describe_meter(meter),
        "estimate_margin": checked.budget.estimate_margin if budget_cb.energy_estimated else 0.0,
        "carbon_intensity_g_per_kwh": intensity,
        "carbon_intensity_source": intensity_source,
    }
    result = build_result(
        cfg, checked, budget_cb, trainer, module, datamodule, spent, energy, metrics
    )
    result["test_spent"] = test_spent
    result["compression"] = compression  # null unless compress=…: where the model came from
    result["distill"] = (  # null unless distill=…: the teacher and the loss's settings
        distill_record(cfg.distill, distillation, datamodule.input_shape)
        if distillation is not None
        else None
    )
    result["inference"] = inference  # null when not measured (inference.enabled=false, untested)
    if trainer.is_global_zero:
        record_result(output_dir / RESULT_FILE, result, faults)
        print_summary(result, output_dir)
    elif faults.first is not None:
        mark_write_failed(result, faults.first)
    objects = {"trainer": trainer, "module": module, "datamodule": datamodule, "budget": budget_cb}
    return result, objects


def stopped_in_setup(
    phase: str,
    cfg: DictConfig,
    signals: StopSignals,
    trainer: L.Trainer,
    checked: Checked,
    meter: EnergyMeter | None,
    datamodule: Any = None,
    module: FrugalModule | None = None,
) -> dict[str, Any] | None:
    """A signal noted during set-up, at the end of `phase`: the run's record (written by global
    rank 0; what was built so far described, nothing trained: `frugal.stop_record`), or None to
    go on — no signal, or a rank of a multi-process run (the first step stops them together)."""
    if signals.received is None or not may_stop_in_setup(trainer.num_nodes):
        return None
    known: dict[str, Any] = {"budget": checked.budget.limits(), "energy": describe_meter(meter)}
    if datamodule is not None:
        known["data"] = describe_data(datamodule, cfg.data)
    if module is not None:
        known["model"] = model_record(cfg, module, datamodule.input_shape, None)
    return write_interrupted(cfg, signals.received, phase, known, trainer.is_global_zero)


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


def run_test(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: FrugalModule,
    datamodule: Any,
    budget_cb: BudgetCallback,
) -> tuple[dict[str, float | None], dict[str, float]]:
    """Test the model; its time and energy are measured apart, never charged to the budget."""
    meter = budget_cb.energy_meter
    start_s, start_j = time.perf_counter(), meter.read_j() if meter is not None else None
    try:
        trainer.test(
            module,
            datamodule=datamodule,
            ckpt_path=checkpoint_to_test(cfg, trainer),
            verbose=False,
            weights_only=True,  # tensors and plain values only: loading runs no code
        )
    except (SystemExit, KeyboardInterrupt) as err:
        budget_cb.mark_interrupted(None, f"{type(err).__name__} during the test")
        return {"time_s": time.perf_counter() - start_s, "energy_j": None}, {}
    end_j = meter.read_j() if meter is not None else None
    energy_j = None if start_j is None or end_j is None else max(end_j - start_j, 0.0)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    return {"time_s": time.perf_counter() - start_s, "energy_j": energy_j}, metrics


def run_inference(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: FrugalModule,
    datamodule: Any,
    budget_cb: BudgetCallback,
    signals: StopSignals,
) -> dict[str, Any] | None:
    """The tested model's inference cost (`frugal.inference`), with the meter still running;
    never charged to the budget. Global rank 0 only. A failure costs the figures, not the run."""
    from frugal.inference import measure_inference

    try:
        return measure_inference(
            module,
            datamodule,
            budget_cb.energy_meter,
            cfg,
            device=trainer.strategy.root_device,
            should_stop=lambda: signals.received is not None,
        )
    except Exception:
        log.warning("inference: the measurement failed; inference is null", exc_info=True)
        return None


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


def ddp_with_timeout(cfg: DictConfig) -> dict[str, Any]:
    """`strategy: ddp` with every collective bounded: a rank that died or stopped answering
    ends the others' waits with an error instead of a hang."""
    if cfg.trainer.get("strategy") != "ddp":
        return {}
    from datetime import timedelta

    from lightning.pytorch.strategies import DDPStrategy

    timeout_s = float(cfg.get("collective_timeout_s") or 120)
    return {"strategy": DDPStrategy(timeout=timedelta(seconds=timeout_s))}


def start_in_background(meter: EnergyMeter | None) -> Future | None:
    """Start the meter on a helper thread (its start-up probes hardware for seconds); the
    budget callback waits for it, bounded, before the first step."""
    if meter is None:
        return None
    starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frugal-energy")
    started = starter.submit(meter.start)
    starter.shutdown(wait=False)
    return started


def stop_meter(budget_cb: BudgetCallback, timeout_s: float = 30.0) -> None:
    """Stop the meter even when training never reached its first step; never wait on a meter
    that hangs (stopping twice is harmless)."""
    meter = budget_cb.energy_meter
    if meter is None:
        return
    stopper = threading.Thread(target=meter.stop, name="frugal-energy-stop", daemon=True)
    stopper.start()
    stopper.join(timeout_s)
    if stopper.is_alive():
        log.warning("energy: the meter did not stop within %.0f s; left behind", timeout_s)


def build_meter(
    energy: EnergyConfig, trainer: L.Trainer, given: EnergyMeter | None
) -> EnergyMeter | None:
    """This rank's energy meter. The run's own energy (energy.scope=run) is metered by every
    rank for its own processes, and ranks sum it; a machine-level figure (energy.scope=machine,
    or codecarbon's estimate) once per node, by its local rank 0, and nodes sum it. A meter
    handed in (`train(energy_meter=...)`) is local rank 0's."""
    per_rank = energy.scope == "run" and energy.backend != "codecarbon" and given is None
    if per_rank:
        return build_energy_meter(energy, local_rank=trainer.local_rank)
    if trainer.local_rank != 0:
        return None
    return given or build_energy_meter(node_energy_config(energy, trainer), local_rank=0)


def node_energy_config(energy: EnergyConfig, trainer: L.Trainer) -> EnergyConfig:
    """Energy is metered once per node, by local rank 0: it must read every GPU this node
    trains on, not only its own, and — for codecarbon's CPU estimate — every rank's process,
    which its `process` tracking mode would not see (it counts only local rank 0's): with
    several ranks on the node it tracks the machine instead (an over-count, never an under)."""
    if trainer.num_devices > 1 and energy.codecarbon_tracking_mode == "process":
        energy = replace(energy, codecarbon_tracking_mode="machine")
    if energy.gpu_indices is not None or not isinstance(trainer.accelerator, CUDAAccelerator):
        return energy
    return replace(energy, gpu_indices=nvml_indices(list(trainer.device_ids)))


def describe_meter(meter: EnergyMeter | None) -> dict[str, Any]:
    if meter is None:
        return {"method": "unavailable", "measured": False}
    describe = getattr(meter, "describe", None)
    return describe() if describe else {"method": meter.method, "measured": meter.measured}


def checkpoint_to_test(cfg: DictConfig, trainer: L.Trainer) -> str | None:
    """`test_on=best`: the weights with the best validation accuracy (selected on validation
    data only); `last`: the weights training ended with."""
    if cfg.get("test_on", "best") == "last":
        return None
    best = getattr(trainer.checkpoint_callback, "best_model_path", "")
    return best or None


def compress(module: FrugalModule, cfg: DictConfig, input_shape: tuple[int, ...]) -> FrugalModule:
    """Load the trained weights of `cfg.ckpt_path` (safely, checked to fit), then factorise or
    prune the backbone (`compress=svd|prune|structured`)."""
    from frugal.models.compress import compress_model

    load_weights(module, cfg)
    options = OmegaConf.to_container(cfg.compress, resolve=True)
    module.backbone = compress_model(module.backbone, input_shape=input_shape, **options)
    return module


def with_init(cfg: DictConfig, ckpt: Path) -> DictConfig:
    named = cfg.copy()
    with open_dict(named):
        named.init_from = str(ckpt)
    return named


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


def run_info(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"dir": str(output_dir), "name": model_name(cfg.model), "overrides": []}
    if HydraConfig.initialized():
        info["overrides"] = list(HydraConfig.get().overrides.task)
    return info
