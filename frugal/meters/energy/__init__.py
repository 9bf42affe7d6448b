"""Energy meters: RAPL (CPU packages + DRAM), NVML (GPUs), codecarbon (estimate), with fallback.

    cfg = EnergyConfig(backend="auto")
    meter = build_energy_meter(cfg, local_rank=0)  # None when backend == "none"
    meter.start(); meter.read_j(); meter.stop(); meter.describe()
    meter.poll_interval_s  # None: a per-step counter; else the polling period of an estimate
    meter.uncertainty  # relative, e.g. 0.05 (counters), 0.3 (codecarbon's CPU-load estimate)
    meter.lost  # True once no backend is left: read_j() is None (unknown), never 0

`auto` sums RAPL and NVML where readable (method "rapl+nvml", "rapl" or "nvml"), else uses
codecarbon's estimate ("codecarbon:<cpu mode>"). Every check runs here, before anything starts:
an explicit backend that cannot be read fails at build time with a one-line
`BackendUnavailable`. Any backend that fails, freezes or hangs mid-run hands over to the next
(codecarbon after a counter), keeping the joules already counted (fallback.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from frugal.meters.energy.backend import Backend, BackendAbsent, BackendUnavailable, combine
from frugal.meters.energy.codecarbon_meter import CodecarbonBackend
from frugal.meters.energy.config import EnergyConfig
from frugal.meters.energy.fallback import FallbackMeter
from frugal.meters.energy.nvml import NvmlBackend, default_gpu_indices
from frugal.meters.energy.rapl import RaplBackend

__all__ = ["BackendUnavailable", "EnergyConfig", "FallbackMeter", "build_energy_meter"]

log = logging.getLogger(__name__)


def build_energy_meter(cfg: EnergyConfig, local_rank: int = 0) -> FallbackMeter | None:
    """The meter `cfg` asks for, probed but not started; None when `cfg.backend == "none"`."""
    if cfg.backend == "none":
        return None
    gpu_indices: list[int] = []
    if cfg.backend != "rapl":  # asking torch about CUDA costs its import
        gpu_indices = (
            cfg.gpu_indices if cfg.gpu_indices is not None else default_gpu_indices(local_rank)
        )
    builders: dict[str, Callable[[], Backend]] = {
        "rapl": lambda: RaplBackend(cfg.rapl_root),
        "nvml": lambda: NvmlBackend(gpu_indices),
        "codecarbon": lambda: CodecarbonBackend(
            cfg.country_iso_code,
            cfg.measure_power_secs,
            tracking_mode=cfg.codecarbon_tracking_mode,
            gpu_ids=gpu_indices,
        ),
    }
    notes: list[str] = []
    if cfg.backend == "auto":
        # RAPL is machine-wide: one rank per machine counts it, or ranks would sum it N times.
        counters = ["rapl", "nvml"] if local_rank == 0 else ["nvml"]
        if local_rank != 0:
            notes.append(f"local rank {local_rank}: RAPL left to local rank 0")
        parts = [b for b in (_try_build(builders[name], notes) for name in counters) if b]
        chain = [combine(parts)] if parts else []
    else:
        chain = [builders[cfg.backend]()]  # unreadable: BackendUnavailable, one line
    if cfg.backend != "codecarbon":  # an estimate to fall back on when a counter fails
        fallback = _try_build(builders["codecarbon"], notes)
        if fallback is not None:
            chain.append(fallback)
    return FallbackMeter(chain, sample_every_s=cfg.measure_power_secs, notes=notes)


def _try_build(builder: Callable[[], Backend], notes: list[str]) -> Backend | None:
    try:
        return builder()
    except BackendAbsent as err:  # not on this machine: say so quietly
        log.info("energy: %s", err)
        notes.append(str(err))
    except BackendUnavailable as err:  # there but unreadable: the user may want to fix it
        log.warning("energy: %s; trying the next backend", err)
        notes.append(str(err))
    return None
