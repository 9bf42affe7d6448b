"""A run's energy meter: which rank meters what, started in the background, stopped without
ever waiting on a meter that hangs, and described in `result.json`'s `energy`."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import lightning as L
from lightning.pytorch.accelerators import CUDAAccelerator

from frugal.meters.base import EnergyMeter
from frugal.meters.energy import EnergyConfig, build_energy_meter
from frugal.meters.energy.nvml import nvml_indices

log = logging.getLogger("frugal")


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


def start_in_background(meter: EnergyMeter | None) -> Future | None:
    """Start the meter on a helper thread (its start-up probes hardware for seconds); the
    budget callback waits for it, bounded, before the first step."""
    if meter is None:
        return None
    starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frugal-energy")
    started = starter.submit(meter.start)
    starter.shutdown(wait=False)
    return started


def stop_meter(meter: EnergyMeter | None, timeout_s: float = 30.0) -> None:
    """Stop the meter even when training never reached its first step; never wait on a meter
    that hangs (stopping twice is harmless)."""
    if meter is None:
        return
    stopper = threading.Thread(target=meter.stop, name="frugal-energy-stop", daemon=True)
    stopper.start()
    stopper.join(timeout_s)
    if stopper.is_alive():
        log.warning("energy: the meter did not stop within %.0f s; left behind", timeout_s)


def describe_meter(meter: EnergyMeter | None) -> dict[str, Any]:
    """How the run's joules were measured (`result.json` `energy`, before the run's figures)."""
    if meter is None:
        return {"method": "unavailable", "measured": False}
    describe = getattr(meter, "describe", None)
    return describe() if describe else {"method": meter.method, "measured": meter.measured}
