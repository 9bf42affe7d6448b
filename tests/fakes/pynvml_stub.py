"""A stand-in for the `pynvml` module: scripted GPUs, injected through sys.modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # pynvml's own name
    pass


@dataclass
class StubGpu:
    name: str = "Stub GPU"
    energy_mj: int | None = 0  # None: no energy counter (NVMLError_NotSupported)
    power_mw: int = 0
    fail: bool = False  # every call raises NVMLError (a lost device)
    # (pid, SM utilisation %) samples NVML keeps per process; empty: NVMLError_NotFound
    processes: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class StubNvml:
    gpus: list[StubGpu] = field(default_factory=list)
    init_error: bool = False
    inits: int = 0
    shutdowns: int = 0

    def module(self) -> SimpleNamespace:
        """An object with pynvml's names, to put in sys.modules["pynvml"]."""
        return SimpleNamespace(
            NVMLError=NVMLError,
            NVMLError_NotSupported=NVMLError_NotSupported,
            nvmlInit=self.init,
            nvmlShutdown=self.shutdown,
            nvmlDeviceGetHandleByIndex=self.handle,
            nvmlDeviceGetName=lambda h: self._gpu(h).name,
            nvmlDeviceGetTotalEnergyConsumption=self.energy,
            nvmlDeviceGetPowerUsage=lambda h: self._gpu(h).power_mw,
            nvmlDeviceGetProcessUtilization=self.process_utilization,
        )

    def process_utilization(self, handle: int, last_seen_us: int) -> list[SimpleNamespace]:
        gpu = self._gpu(handle)
        if not gpu.processes:
            raise NVMLError("Not Found")
        stamp = last_seen_us + 1
        return [SimpleNamespace(pid=p, smUtil=u, timeStamp=stamp) for p, u in gpu.processes]

    def init(self) -> None:
        if self.init_error:
            raise NVMLError("Driver Not Loaded")
        self.inits += 1

    def shutdown(self) -> None:
        self.shutdowns += 1

    def handle(self, index: int) -> int:
        if index >= len(self.gpus):
            raise NVMLError("Invalid Argument")
        return index

    def energy(self, handle: int) -> int:
        gpu = self._gpu(handle)
        if gpu.energy_mj is None:
            raise NVMLError_NotSupported("Not Supported")
        return gpu.energy_mj

    def _gpu(self, handle: int) -> StubGpu:
        gpu = self.gpus[handle]
        if gpu.fail:
            raise NVMLError("GPU is lost")
        return gpu
