"""Peak memory of the training process: the accelerator's allocator peak when training on
CUDA, else the growth of this process's resident set (RSS) over its size at start."""

from __future__ import annotations

import psutil
import torch


class PeakMemoryMeter:
    def __init__(self, device: torch.device):
        self.device = device
        self.on_cuda = device.type == "cuda"
        self.method = "cuda_max_allocated" if self.on_cuda else "rss_growth"
        self._process = psutil.Process()
        self._baseline_bytes = 0
        self._peak_bytes = 0

    def start(self) -> None:
        if self.on_cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._baseline_bytes = self._process.memory_info().rss
        self._peak_bytes = 0

    def read_bytes(self) -> int:
        """Peak since `start()`, in bytes (a sample of RSS on CPU: call it every few steps)."""
        if self.on_cuda:
            return int(torch.cuda.max_memory_allocated(self.device))
        growth = self._process.memory_info().rss - self._baseline_bytes
        self._peak_bytes = max(self._peak_bytes, growth)
        return self._peak_bytes
