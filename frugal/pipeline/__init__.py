"""One budgeted training run: build, fit, evaluate, record.

`train(cfg)` does the work and is what tests call; `frugal.train.main` is the thin Hydra
wrapper (it imports this module only once the command line has been checked). The configuration
is checked once per process (`frugal.runs.preflight.check_config`, or `frugal-train`'s command
line check handed down as `checked`); what a run derives from it — an envelope's reservation, a
size search's pilots and final run — is checked only where it differs (`check_derived`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Checkpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from frugal.budget.ledger import LEDGER_FILE
from frugal.callbacks.budget import BudgetCallback, Diverged
from frugal.callbacks.progress import BudgetProgressBar, progress_callback
from frugal.callbacks.recorder import CurveRecorder
from frugal.config import Checked
from frugal.config.size_search import searched
from frugal.core.status import Status
from frugal.data.build import build_datamodule
from frugal.meters.base import EnergyMeter
from frugal.meters.carbon import carbon_intensity
from frugal.models.accounting import count_params_effective
from frugal.models.compress import compression_record
from frugal.models.registry import build_model
from frugal.module import FrugalModule
from frugal.pipeline.result import (
    build_result,
    mark_write_failed,
    record_result,
    stopped_in_setup,
    training_metrics,
)
from frugal.runs import claimed
from frugal.runs.checkpoint import check_fits, load_weights, resolve_resume
from frugal.runs.cluster import note_job, resume_requeued
from frugal.runs.distill import build_distillation, distill_record
from frugal.runs.loggers import build_loggers
from frugal.runs.metering import build_meter, describe_meter, start_in_background, stop_meter
from frugal.runs.preflight import check_config, check_derived
from frugal.runs.record import CURVE_FILE, RESULT_FILE
from frugal.runs.signals import StopSignals
from frugal.runs.stop_record import BUILDING_DATA, BUILDING_MODEL, BUILDING_TRAINER
from frugal.runs.summary import print_summary
from frugal.runs.trainer import keep_frugal_signal_handlers, trainer_options
from frugal.runs.write_faults import WriteFaults
from frugal.sweep import auto_size, envelope

log = logging.getLogger("frugal")

# Runs whose model is tested: it trained as far as it went (a diverged run on its last finite
# checkpoint). Refused and interrupted runs are not (an interrupted one resumes instead).
TESTED = (Status.COMPLETED, Status.BUDGET_EXHAUSTED, Status.DIVERGED, Status.UNENFORCEABLE)


def train(
    cfg: DictConfig,
    energy_meter: EnergyMeter | None = None,
    callbacks: list[L.Callback] | None = None,
    clock: Callable[[], float] | None = None,
    signals: StopSignals | None = None,
    checked: Checked | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Plan, train under the budget, test, write outputs. Returns (result, objects).

    `energy_meter` replaces the configured backend (a meter of your own, or a fake in tests);
    `callbacks` run before the budget callback (instruments of your own); `clock` is the
    budget's clock in seconds (default `time.perf_counter`; simulations and tests); `signals`:
    the stop signals noted since the command line was accepted (`frugal-train` installs them;
    by default the run installs its own); `checked`: what `check_config` returned for this very
    configuration (`frugal-train` checked it before Hydra started), else it is checked here.
    A job of a sweep with `sweep_budget` first takes its share of the envelope
    (`frugal.sweep.envelope`); a model whose size is `auto` is chosen by pilot runs within the
    budget (`frugal.sweep.auto_size`).
    """
    cfg = resume_requeued(cfg)  # a requeued cluster job continues its own run (frugal.runs.cluster)
    cfg = resolve_resume(cfg)  # a resumed run continues with its own saved configuration
    meter_given = energy_meter is not None
    joins = envelope.declared(cfg.get("sweep_budget"))
    if checked is None:  # not handed down: checked here (an envelope's job: its dir once joined)
        checked = check_config(cfg, meter_given=meter_given, check_dirs=not joins)
    if joins:  # its budget becomes its reservation (a relaunch may continue its directory)
        cfg, finished = envelope.join(cfg, checked.budget)
        if finished is not None:  # it finished in an earlier launch of this sweep
            return finished, {}
        checked = check_derived(cfg, checked, meter_given=meter_given, check_dirs=True)
    run = dict(energy_meter=energy_meter, callbacks=callbacks, clock=clock, signals=signals)
    if searched(cfg):
        with claimed(Path(cfg.paths.output_dir)):  # the search's directory, its pilots inside
            parts = derived_runs(checked, meter_given)
            result, objects = auto_size.search_and_train(cfg, checked.budget, parts, **run)
    else:
        result, objects = train_one(cfg, checked, **run)
    trainer = objects.get("trainer")
    if trainer is None or trainer.is_global_zero:
        envelope.settle(cfg, result)
    return result, objects


def derived_runs(checked: Checked, meter_given: bool) -> auto_size.TrainOne:
    """`train_one` for the runs a size search derives from its checked configuration (every
    size of its ladder was checked up front): each pilot and the final run check only their
    own budget (`check_derived`)."""

    def run(cfg: DictConfig, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return train_one(cfg, check_derived(cfg, checked, meter_given=meter_given), **kwargs)

    return run


def train_one(
    cfg: DictConfig,
    checked: Checked,
    energy_meter: EnergyMeter | None = None,
    callbacks: list[L.Callback] | None = None,
    clock: Callable[[], float] | None = None,
    init_from: Path | None = None,
    signals: StopSignals | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run of a model of known size (`train`'s work), its configuration already checked
    (`checked`); `init_from`: a checkpoint whose weights the model starts from (a size
    search's final run), with a fresh optimizer and ledger, as `cfg.init_from` would."""
    if init_from is not None:
        cfg = with_init(cfg, init_from)
    output_dir = Path(cfg.paths.output_dir)
    with claimed(output_dir):  # one process per run, until its result is written (frugal.runs)
        note_job(output_dir)  # under submitit: which job writes here (its requeues resume)
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg.threads))
        own_signals = signals is None  # frugal-train hands down those it noted from the start
        signals = signals or StopSignals()
        signals.install()  # (again): a signal during set-up ends the run before its first step
        try:
            return build_fit_evaluate_record(
                cfg, checked, output_dir, signals, energy_meter, callbacks, clock
            )
        finally:
            if own_signals:
                signals.restore()


# ---- one run ---------------------------------------------------------------------------------
@dataclass
class Run:
    """What one run builds, and what its record is made of."""

    cfg: DictConfig
    checked: Checked
    output_dir: Path
    signals: StopSignals
    trainer: L.Trainer
    budget: BudgetCallback
    meter: EnergyMeter | None
    carbon: tuple[float, str]  # (g/kWh, where the figure comes from)
    faults: WriteFaults  # the first write that failed (disk full, permissions)
    ckpt_path: str | None  # the checkpoint the run resumes from
    datamodule: Any = None
    module: FrugalModule | None = None
    distillation: Any = None
    compression: dict[str, Any] | None = None
    test_spent: dict[str, float | None] | None = None
    inference: dict[str, Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def objects(self) -> dict[str, Any]:
        built = {"trainer": self.trainer, "module": self.module, "datamodule": self.datamodule}
        return {**built, "budget": self.budget}


def build_fit_evaluate_record(
    cfg: DictConfig,
    checked: Checked,
    output_dir: Path,
    signals: StopSignals,
    energy_meter: EnergyMeter | None,
    callbacks: list[L.Callback] | None,
    clock: Callable[[], float] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`train_one`'s work, in its claimed run directory. A signal noted during set-up ends the
    run before its first step, with its record (`stopped_in_setup`)."""
    run = build_run(cfg, checked, output_dir, signals, energy_meter, callbacks, clock)
    try:
        stopped = build(run)
        if stopped is not None:
            return stopped, {"trainer": run.trainer, "budget": run.budget}
        fit(run)
        spent = evaluate(run)
    finally:
        stop_meter(run.meter)
    return record(run, spent), run.objects()


# ---- build -----------------------------------------------------------------------------------
def build_run(
    cfg: DictConfig,
    checked: Checked,
    output_dir: Path,
    signals: StopSignals,
    energy_meter: EnergyMeter | None,
    callbacks: list[L.Callback] | None,
    clock: Callable[[], float] | None,
) -> Run:
    """The trainer and the energy meter first: the meter's start-up (codecarbon probes the
    hardware for ~2 s) then runs in the background while data and model are built."""
    ckpt_path = None if cfg.get("compress") else cfg.get("ckpt_path")  # compressed: fresh budget
    trainer = build_trainer(cfg, callbacks)
    meter = build_meter(checked.energy, trainer, energy_meter)
    carbon = carbon_intensity(checked.energy)
    budget_cb = BudgetCallback(
        checked.budget,
        energy_meter=meter,
        meter_started=start_in_background(meter),
        carbon_g_per_kwh=carbon[0],
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
    faults = WriteFaults(output_dir)
    return Run(
        cfg, checked, output_dir, signals, trainer, budget_cb, meter, carbon, faults, ckpt_path
    )


def build_trainer(cfg: DictConfig, callbacks: list[L.Callback] | None) -> L.Trainer:
    """The configured trainer: its loggers (appending on resume: `frugal.runs.loggers`), the
    configured callbacks then the caller's, the progress bar; frugal's signal handlers."""
    loggers = build_loggers(cfg.get("logger"))
    callbacks = [*build_callbacks(cfg, has_logger=bool(loggers)), *(callbacks or [])]
    if cfg.trainer.get("enable_progress_bar", True):
        progress = cfg.get("progress", "auto")
        callbacks.append(progress_callback(progress, cfg.get("progress_refresh_rate", 50)))
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        **trainer_options(cfg),  # bounded DDP collectives, atomic checkpoints (frugal.runs.trainer)
        callbacks=callbacks,
        logger=loggers or False,
        # Lightning adds a bar of its own unless told there is none (log lines instead of one)
        enable_progress_bar=any(isinstance(c, BudgetProgressBar) for c in callbacks),
    )
    keep_frugal_signal_handlers(trainer)
    return trainer


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


def build(run: Run) -> dict[str, Any] | None:
    """Data, then the model: a signal noted since the command line, or during either, stops
    the run here (its record, or None to go on)."""
    stop_here = partial(
        stopped_in_setup,
        cfg=run.cfg,
        signals=run.signals,
        trainer=run.trainer,
        budget=run.checked.budget,
        meter=run.meter,
    )
    if (stopped := stop_here(BUILDING_TRAINER)) is not None:  # noted since the command line
        return stopped
    L.seed_everything(run.cfg.seed, workers=True, verbose=False)
    run.datamodule = build_datamodule(run.cfg.data)
    if (stopped := stop_here(BUILDING_DATA, datamodule=run.datamodule)) is not None:
        return stopped
    run.module = build_module(run)
    # (a signal from here on stops the first step)
    return stop_here(BUILDING_MODEL, datamodule=run.datamodule, module=run.module)


def build_module(run: Run) -> FrugalModule:
    """The model, its teacher (distillation) and the weights it starts from."""
    cfg, datamodule = run.cfg, run.datamodule
    backbone = build_model(cfg.model, datamodule.input_shape, datamodule.num_classes)
    if cfg.get("distill"):  # the teacher: frozen, its forward passes booked to this budget
        run.distillation = build_distillation(
            cfg.distill, datamodule.input_shape, datamodule.num_classes
        )
    module = FrugalModule(
        backbone,
        optimizer=instantiate(cfg.optimizer),
        num_classes=datamodule.num_classes,
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        distillation=run.distillation,
    )
    return starting_weights(run, module)


def starting_weights(run: Run, module: FrugalModule) -> FrugalModule:
    """A compressed checkpoint (`compress=`), trained weights (`init_from=`), or a resumed
    run's checkpoint checked to fit before Lightning restores it (one line, not a traceback)."""
    cfg, input_shape = run.cfg, run.datamodule.input_shape
    if cfg.get("compress"):
        module = compress(module, cfg, input_shape)
        run.compression = compression_record(
            OmegaConf.to_container(cfg.compress, resolve=True),
            cfg.ckpt_path,
            module.backbone,
            run.datamodule.val_dataloader(),
        )
    elif cfg.get("init_from") and run.ckpt_path is None:  # resuming, it takes its own weights
        load_weights(module, cfg, "init_from")  # checked to fit; fresh optimizer and ledger
    elif run.ckpt_path is not None:
        for callback in run.trainer.callbacks:  # structured pruning: take the pruned shapes
            fit_checkpoint = getattr(callback, "fit_checkpoint", None)
            if fit_checkpoint is not None:
                fit_checkpoint(module, run.ckpt_path, input_shape)
        check_fits(module, cfg)
    return module


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


# ---- fit -------------------------------------------------------------------------------------
def fit(run: Run) -> None:
    """Train under the budget; a write fault (a checkpoint, curve.csv, ledger.json that could
    not be written), a divergence or a signal ends it with the run's status said."""
    try:
        with run.faults.caught():
            run.trainer.fit(
                run.module, datamodule=run.datamodule, ckpt_path=run.ckpt_path, weights_only=True
            )
    except Diverged:
        pass  # the callback recorded the step; the last update was skipped: weights finite
    except (SystemExit, KeyboardInterrupt) as err:
        # A signal Lightning handled itself (before our handlers were in place), or Ctrl-C
        # twice: the run stops resumably and says so.
        run.budget.mark_interrupted(run.signals.received, type(err).__name__)
    if run.signals.received is not None:  # arrived after the last step: still a stop request
        run.budget.mark_interrupted(run.signals.received, "signal after training")


# ---- evaluate --------------------------------------------------------------------------------
def evaluate(run: Run) -> dict[str, float | None]:
    """What training spent (before testing: a test checkpoint restores callbacks), its
    metrics, then — a run that trained as far as it went — the test and the inference cost,
    measured apart and never charged to the budget. Returns the spending."""
    spent = run.budget.spent()
    run.metrics = training_metrics(run.trainer, run.output_dir, resumed=run.ckpt_path is not None)
    if run.budget.status in TESTED and run.faults.first is None:
        with run.faults.caught():  # the logger's test metrics
            run.test_spent, test_metrics = run_test(run)
            run.metrics.update(test_metrics)
    if run.signals.received is not None:  # arrived during the test: the run still says so
        run.budget.mark_interrupted(run.signals.received, "signal during the test")
    tested = run.budget.status in TESTED and run.faults.first is None  # not interrupted in it
    if tested and run.trainer.is_global_zero:
        run.inference = run_inference(run)
    return spent


def run_test(run: Run) -> tuple[dict[str, float | None], dict[str, float]]:
    """Test the model; its time and energy are measured apart, never charged to the budget."""
    meter, trainer = run.meter, run.trainer
    start_s, start_j = time.perf_counter(), meter.read_j() if meter is not None else None
    try:
        trainer.test(
            run.module,
            datamodule=run.datamodule,
            ckpt_path=checkpoint_to_test(run.cfg, trainer),
            verbose=False,
            weights_only=True,  # tensors and plain values only: loading runs no code
        )
    except (SystemExit, KeyboardInterrupt) as err:
        run.budget.mark_interrupted(None, f"{type(err).__name__} during the test")
        return {"time_s": time.perf_counter() - start_s, "energy_j": None}, {}
    end_j = meter.read_j() if meter is not None else None
    energy_j = None if start_j is None or end_j is None else max(end_j - start_j, 0.0)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    return {"time_s": time.perf_counter() - start_s, "energy_j": energy_j}, metrics


def checkpoint_to_test(cfg: DictConfig, trainer: L.Trainer) -> str | None:
    """`test_on=best`: the weights with the best validation accuracy (selected on validation
    data only); `last`: the weights training ended with."""
    if cfg.get("test_on", "best") == "last":
        return None
    best = getattr(trainer.checkpoint_callback, "best_model_path", "")
    return best or None


def run_inference(run: Run) -> dict[str, Any] | None:
    """The tested model's inference cost (`frugal.runs.inference`), with the meter still
    running; never charged to the budget. Global rank 0 only. A failure costs the figures, not
    the run."""
    from frugal.runs.inference import measure_inference

    try:
        return measure_inference(
            run.module,
            run.datamodule,
            run.meter,
            run.cfg,
            device=run.trainer.strategy.root_device,
            should_stop=lambda: run.signals.received is not None,
        )
    except Exception:
        log.warning("inference: the measurement failed; inference is null", exc_info=True)
        return None


# ---- record ----------------------------------------------------------------------------------
def record(run: Run, spent: dict[str, float | None]) -> dict[str, Any]:
    """`result.json` (global rank 0 writes it, then the summary); a write that failed on any
    rank makes the run `write_failed`."""
    estimated = run.budget.energy_estimated
    energy = {
        **describe_meter(run.meter),
        "estimate_margin": run.checked.budget.estimate_margin if estimated else 0.0,
        "carbon_intensity_g_per_kwh": run.carbon[0],
        "carbon_intensity_source": run.carbon[1],
    }
    cfg, datamodule = run.cfg, run.datamodule
    result = build_result(
        cfg,
        run.checked,
        run.budget,
        run.trainer,
        run.module,
        datamodule,
        spent,
        energy,
        run.metrics,
    )
    result["test_spent"] = run.test_spent
    result["compression"] = run.compression  # null unless compress=…: where the model came from
    result["distill"] = (  # null unless distill=…: the teacher and the loss's settings
        distill_record(cfg.distill, run.distillation, datamodule.input_shape)
        if run.distillation is not None
        else None
    )
    result["inference"] = run.inference  # null when not measured (disabled, untested)
    if run.trainer.is_global_zero:
        record_result(run.output_dir / RESULT_FILE, result, run.faults)
        print_summary(result, run.output_dir)
    elif run.faults.first is not None:
        mark_write_failed(result, run.faults.first)
    return result
