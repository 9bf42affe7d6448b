"""Energy meters: the run's own energy (attributed.py) from RAPL, NVML or the power model;
codecarbon's machine estimate on request.

    cfg = EnergyConfig(backend="auto")
    meter = build_energy_meter(cfg, local_rank=0)  # None when backend == "none"
    meter.start(); meter.read_j(); meter.read_machine_j(); meter.stop(); meter.describe()
    meter.poll_interval_s  # None: a per-step counter; else the polling period of an estimate
    meter.uncertainty  # relative, e.g. 0.1 (a counter × the run's share), 0.4 (the model)
    meter.lost  # True once nothing is left to read: read_j() is None (unknown), never 0

`auto` charges the run its share of RAPL (CPU) and NVML (GPU) counters where readable, and the
power model for the CPU where RAPL is not ("rapl×cpu-share+nvml×gpu-share",
"model:cpu-time+rss", ...); `rapl`, `nvml` insist on that counter; `model` uses the model
alone. Each reads on the training thread, no sampling thread. `codecarbon` is its estimate of
the machine (a polled source on its own thread, fallback.py). An explicit backend that cannot be
read fails at build time with a one-line `BackendUnavailable`. A counter that fails mid-run
hands its part over to the model, keeping the joules already counted.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TypeVar

from frugal.meters.energy.attributed import (
    AttributedMeter,
    CpuShare,
    ModelPart,
    Part,
    SharedCounter,
)
from frugal.meters.energy.backend import Backend, BackendAbsent, BackendUnavailable
from frugal.meters.energy.codecarbon_meter import CodecarbonBackend
from frugal.meters.energy.config import EnergyConfig
from frugal.meters.energy.fallback import FallbackMeter
from frugal.meters.energy.nvml import NvmlBackend, ProcessShare, default_gpu_indices
from frugal.meters.energy.power import power_model
from frugal.meters.energy.rapl import RaplBackend
from frugal.meters.energy.usage import RunUsage

__all__ = [
    "AttributedMeter",
    "BackendUnavailable",
    "EnergyConfig",
    "FallbackMeter",
    "build_energy_meter",
]
B = TypeVar("B", bound=Backend)

log = logging.getLogger(__name__)


def build_energy_meter(
    cfg: EnergyConfig, local_rank: int = 0
) -> AttributedMeter | FallbackMeter | None:
    """The meter `cfg` asks for, probed but not started; None when `cfg.backend == "none"`."""
    if cfg.backend == "none":
        return None
    if cfg.backend == "codecarbon":
        return FallbackMeter(
            [_codecarbon(cfg, _gpu_indices(cfg, local_rank))],
            cfg.measure_power_secs,
            machine_figure=cfg.codecarbon_tracking_mode == "machine",
        )
    notes: list[str] = []
    usage = RunUsage()
    model = functools.partial(_model, cfg, usage)
    rapl = None
    if cfg.backend in ("auto", "rapl"):
        rapl = _try_build(lambda: RaplBackend(cfg.rapl_root), notes, required=cfg.backend == "rapl")
    # the CPU side: its share of the RAPL counters, else the power model
    parts: list[Part] = [SharedCounter(rapl, CpuShare(usage)) if rapl is not None else model()]
    if cfg.backend in ("auto", "nvml"):
        indices = _gpu_indices(cfg, local_rank)
        nvml = _try_build(lambda: NvmlBackend(indices), notes, required=cfg.backend == "nvml")
        if nvml is not None:
            parts.append(SharedCounter(nvml, ProcessShare(nvml, lambda: _run_pids(usage))))
    return AttributedMeter(parts, fallback=model, scope=cfg.scope, pue=cfg.pue, notes=notes)


def _model(cfg: EnergyConfig, usage: RunUsage) -> ModelPart:
    return ModelPart(usage, lambda: power_model(cfg.cpu_watts_per_core, cfg.ram_watts_per_gb))


def _codecarbon(cfg: EnergyConfig, gpu_indices: list[int]) -> Backend:
    return CodecarbonBackend(
        cfg.country_iso_code,
        cfg.measure_power_secs,
        tracking_mode=cfg.codecarbon_tracking_mode,
        gpu_ids=gpu_indices,
    )


def _gpu_indices(cfg: EnergyConfig, local_rank: int) -> list[int]:
    if cfg.gpu_indices is not None:
        return list(cfg.gpu_indices)
    return default_gpu_indices(local_rank)  # asks torch about CUDA


def _run_pids(usage: RunUsage) -> set[int]:
    return {usage.pid, *usage.children()}


def _try_build(builder: Callable[[], B], notes: list[str], required: bool = False) -> B | None:
    """The backend, or None (noted) where it is not readable here; `required`: raise."""
    try:
        return builder()
    except BackendAbsent as err:  # not on this machine: say so quietly
        if required:
            raise
        log.info("energy: %s", err)
        notes.append(str(err))
    except BackendUnavailable as err:  # there but unreadable: the user may want to fix it
        if required:
            raise
        log.warning("energy: %s; trying the next backend", err)
        notes.append(str(err))
    return None
