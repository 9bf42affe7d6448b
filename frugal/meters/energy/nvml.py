"""NVIDIA GPU energy through NVML (`pynvml`, package nvidia-ml-py).

Volta and newer expose a cumulative energy counter (millijoules since the driver loaded):
read it. GPUs without it (`NVMLError_NotSupported`) have their power polled and integrated
(trapezoid rule) at each sample, taken by the meter's poller every `measure_power_secs`; this is
still a hardware reading, and `describe()` says which GPU used which source.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from frugal.meters.energy.backend import BackendAbsent, BackendUnavailable

ENERGY_COUNTER = "energy_counter"
POWER_POLLING = "power_polling"


@dataclass
class _Gpu:
    index: int
    name: str
    source: str  # ENERGY_COUNTER or POWER_POLLING
    handle: Any = None
    start_mj: int = 0  # counter at start()
    energy_j: float = 0.0  # integrated power, POWER_POLLING only
    last_power_w: float = 0.0
    last_time_s: float = 0.0


def default_gpu_indices(local_rank: int) -> list[int]:
    """NVML index of this rank's CUDA device, or [] without CUDA."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return nvml_indices([local_rank])


def nvml_indices(cuda_ids: list[int]) -> list[int]:
    """NVML indices of CUDA devices: CUDA numbers the visible devices, NVML all of them."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    if all(v.isdigit() for v in visible) and len(visible) > max(cuda_ids, default=-1):
        return [int(visible[i]) for i in cuda_ids]
    return list(cuda_ids)


class NvmlBackend:
    method = "nvml"
    measured = True
    poll_interval_s = None  # current at every sample; power polling is the meter's poller's job
    sampled_at_s = None
    power_w = None
    # nvmlDeviceGetPowerUsage: "accurate to within +/- 5% of current power draw" (NVML docs)
    uncertainty = 0.05

    def __init__(self, gpu_indices: list[int], clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        if not gpu_indices:
            raise BackendAbsent("NVML: no GPU for this rank (no CUDA, energy.gpu_indices unset)")
        self._nvml = _import_pynvml()
        self._gpus = self._probe(gpu_indices)
        # Energy counters only: one driver call per GPU (typically tens of µs), read on the spot
        # at every step, so the figure is a per-step counter (a driver hung there would hang the
        # step's CUDA work anyway). Any GPU on power polling: sampled by the meter's poller, and
        # extrapolated between polls.
        self.cheap_read = all(gpu.source == ENERGY_COUNTER for gpu in self._gpus)

    def start(self) -> None:
        nvml = self._nvml
        nvml.nvmlInit()
        now_s = self._clock()
        for gpu in self._gpus:
            gpu.handle = nvml.nvmlDeviceGetHandleByIndex(gpu.index)
            if gpu.source == ENERGY_COUNTER:
                gpu.start_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
            else:
                gpu.energy_j = 0.0
                gpu.last_power_w = nvml.nvmlDeviceGetPowerUsage(gpu.handle) / 1e3  # mW
                gpu.last_time_s = now_s

    def sample_j(self) -> float:
        nvml = self._nvml
        now_s = self._clock()
        total_j = 0.0
        for gpu in self._gpus:
            if gpu.source == ENERGY_COUNTER:
                total_j += (
                    nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle) - gpu.start_mj
                ) / 1e3
            else:
                power_w = nvml.nvmlDeviceGetPowerUsage(gpu.handle) / 1e3
                gpu.energy_j += 0.5 * (power_w + gpu.last_power_w) * (now_s - gpu.last_time_s)
                gpu.last_power_w, gpu.last_time_s = power_w, now_s
                total_j += gpu.energy_j
        return total_j

    def stop(self) -> float | None:
        try:
            return self.sample_j()
        finally:
            self._nvml.nvmlShutdown()

    def describe(self) -> list[dict[str, Any]]:
        gpus = [{"index": g.index, "name": g.name, "source": g.source} for g in self._gpus]
        return [{"name": "nvml", "gpus": gpus}]

    def _probe(self, gpu_indices: list[int]) -> list[_Gpu]:
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            raise BackendAbsent(f"NVML: cannot initialise ({err})") from err
        try:
            gpus = []
            for index in gpu_indices:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = nvml.nvmlDeviceGetName(handle)
                name = name.decode() if isinstance(name, bytes) else str(name)
                try:
                    nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                    source = ENERGY_COUNTER
                except nvml.NVMLError_NotSupported:
                    nvml.nvmlDeviceGetPowerUsage(handle)  # neither: NVMLError below
                    source = POWER_POLLING
                gpus.append(_Gpu(index=index, name=name, source=source))
            return gpus
        except nvml.NVMLError as err:
            raise BackendUnavailable(f"NVML: GPU {gpu_indices}: {err}") from err
        finally:
            nvml.nvmlShutdown()


class ProcessShare:
    """The run's share of its GPUs' work since the previous call: the SM utilisation samples
    NVML keeps per process (`nvmlDeviceGetProcessUtilization`), the run's processes against
    every process on the devices. 1 when no other process shows up (or NVML keeps no samples:
    an over-count rather than an under-count)."""

    name = "gpu-share"

    def __init__(self, backend: NvmlBackend, pids: Callable[[], set[int]]) -> None:
        self._backend = backend
        self._pids = pids  # the run's processes, asked at every call (workers come and go)
        self._seen_us = 0  # NVML returns the samples newer than this timestamp

    def start(self) -> None:
        self._seen_us = 0
        self()

    def __call__(self) -> float:
        nvml = self._backend._nvml
        ours = self._pids()
        run, total = 0, 0
        newest_us = self._seen_us
        for gpu in self._backend._gpus:
            try:
                samples = nvml.nvmlDeviceGetProcessUtilization(gpu.handle, self._seen_us)
            except nvml.NVMLError:  # no samples in the window, or not supported
                continue
            for sample in samples:
                newest_us = max(newest_us, int(sample.timeStamp))
                total += int(sample.smUtil)
                if int(sample.pid) in ours:
                    run += int(sample.smUtil)
        self._seen_us = newest_us
        return 1.0 if total == 0 else min(run / total, 1.0)


def _import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as err:
        raise BackendAbsent("NVML: pynvml is not installed (pip install nvidia-ml-py)") from err
    return pynvml
