"""What this machine can run: processes and threads, devices and accelerators, a named energy
backend that must be readable here, and the energy node itself. torch is imported only where a
GPU is asked for: the command line's quick checks run without it."""

from __future__ import annotations

import dataclasses
from typing import Any

from frugal.core.errors import ConfigError, bad
from frugal.core.machine import available_memory_bytes, usable_cpus
from frugal.core.units import format_amount
from frugal.meters.energy.backend import BackendUnavailable
from frugal.meters.energy.config import EnergyConfig
from frugal.meters.energy.nvml import NvmlBackend, default_gpu_indices
from frugal.meters.energy.rapl import RaplBackend

PROCESS_BYTES = 200 * 2**20  # the least a training process takes: Python with torch loaded


def check_energy(node: dict[str, Any]) -> EnergyConfig:
    names = {field.name for field in dataclasses.fields(EnergyConfig)}
    for key, value in node.items():
        if key not in names:
            raise bad(f"energy.{key}", value, "unknown key", f"one of {', '.join(sorted(names))}")
    try:
        return EnergyConfig(**node)
    except (TypeError, ValueError) as err:
        setting, _, rest = str(err).splitlines()[0].partition(": ")
        if rest.startswith("expected"):  # EnergyConfig's own "key=value: expected ..."
            raise ConfigError(f"{setting}: not accepted; {rest}") from None
        raise ConfigError(str(err).splitlines()[0]) from None


def processes_here(trainer: Any) -> int:
    """Training processes this machine runs (`trainer.devices`: one per device), each holding
    its own data and model; 1 where the number is left to Lightning (auto, -1)."""
    devices = trainer.get("devices") if isinstance(trainer, dict) else None
    if isinstance(devices, list):
        return max(len(devices), 1)
    if isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1:
        return devices
    return 1


def check_threads(threads: object) -> None:
    """More torch threads than CPUs only slow a step down (and a million fail to start)."""
    if not isinstance(threads, int) or isinstance(threads, bool):
        return  # null: torch's own choice
    cpus = usable_cpus()
    if threads > cpus:
        raise bad(
            "threads",
            threads,
            f"this process may use {cpus} CPU(s)",
            f"a whole number of threads in [1, {cpus}], or null (torch's default)",
        )


def check_processes(trainer: dict[str, Any]) -> None:
    """One training process per device, each at least a Python with torch loaded."""
    processes = processes_here(trainer)
    available = available_memory_bytes()
    most = max(available // PROCESS_BYTES, 1)
    if processes > most:
        raise bad(
            "trainer.devices",
            trainer.get("devices"),
            f"{processes} processes need about {format_amount(processes * PROCESS_BYTES, 'B')}"
            f", more than the {format_amount(available, 'B')} of memory available",
            f"at most {most} devices on this machine",
        )


def check_energy_backend(energy: EnergyConfig) -> None:
    """An energy backend named explicitly must be readable here (auto and codecarbon always
    have a fallback). Probed the way the meter will build it, without starting anything."""
    try:
        if energy.backend == "rapl":
            RaplBackend(energy.rapl_root)
        elif energy.backend == "nvml":
            indices = energy.gpu_indices
            NvmlBackend(indices if indices is not None else default_gpu_indices(0))
    except BackendUnavailable as err:
        raise bad(
            "energy.backend",
            energy.backend,
            f"not readable here ({err})",
            "auto (the best meter this machine has), codecarbon or none",
        ) from None


def check_devices(trainer: dict[str, Any]) -> None:
    """Lightning takes a list of devices (GPU indices) only on an accelerator with devices."""
    devices = trainer.get("devices")
    if trainer.get("accelerator") == "cpu" and isinstance(devices, list):
        raise bad(
            "trainer.devices",
            devices,
            "a list of GPU indices, but trainer.accelerator is cpu",
            "a whole number of CPU processes >= 1, or auto (or trainer.accelerator=gpu)",
        )


def check_accelerator(trainer: dict[str, Any]) -> None:
    accelerator, devices = trainer.get("accelerator"), trainer.get("devices")
    if accelerator == "auto" and isinstance(devices, list):
        import torch

        if not torch.cuda.is_available():
            raise bad(
                "trainer.devices",
                devices,
                "a list of GPU indices, but this machine has no CUDA GPU",
                "a whole number of CPU processes >= 1, or auto",
            )
    if accelerator in ("gpu", "cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise bad(
                "trainer.accelerator", accelerator, "no CUDA GPU on this machine", "cpu or auto"
            )
        wanted = len(devices) if isinstance(devices, list) else devices
        if isinstance(wanted, int) and wanted > count:
            raise bad(
                "trainer.devices",
                devices,
                f"this machine has {count} GPU(s)",
                f"1..{count}, -1 or auto",
            )
    elif accelerator == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise bad(
                "trainer.accelerator", accelerator, "no Apple GPU on this machine", "cpu or auto"
            )


def on_gpu(trainer: dict[str, Any]) -> bool:
    """Whether training runs on a CUDA GPU (auto picks one where present)."""
    accelerator = trainer.get("accelerator")
    if accelerator in ("gpu", "cuda"):
        return True
    if accelerator == "auto":
        import torch

        return torch.cuda.is_available()
    return False
