"""Peak memory of one training run, the same whether the run has its process to itself or is
one job of a multirun.

- **CUDA** (`method: cuda_max_allocated`): the allocator's peak since `start()`
  (`torch.cuda.reset_peak_memory_stats`): every tensor on the device, parameters included.
- **CPU** (`method: cpu_tensor_peak`): the largest total of CPU tensor storage the run holds at
  once, over two samples: the first `sample_steps` training steps (parameters, gradients,
  optimizer state, activations, the training tensors batches are indexed from) and the first
  validation forward pass (the same resident state plus an evaluation batch and its
  activations, often the larger: evaluation batches are bigger). A torch dispatch mode sees
  every operator's inputs and outputs, and a weak reference says when a storage is freed.
  Steps have fixed shapes, so later steps repeat the figure; outside the samples nothing is
  counted and `read_bytes()` is free.

Not counted on CPU: Python objects, library code, allocator caches and kernels' scratch
buffers. They dominate a resident-set (RSS) reading and depend on what the process ran before
(a warm process inside a multirun grows by almost nothing), which is why the run's own tensors
are counted instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode
from torch.utils._pytree import tree_flatten
from torch.utils.hooks import RemovableHandle

SAMPLE_STEPS = 3  # step 1 creates gradients and optimizer state; steps 2-3 are the steady state


class TensorBytes(TorchDispatchMode):
    """Live and peak bytes of the CPU tensor storages that operators touch while the mode is
    on the stack (`resume()` … `pause()`). A storage counts from the first time it is seen
    until it is freed, whether or not the mode is on the stack then; a view counts once."""

    def __init__(self) -> None:
        super().__init__()
        self.live_bytes = 0
        self.peak_bytes = 0
        self.on_stack = False
        self._refs: dict[int, weakref.ref] = {}  # id(storage) -> weak reference

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        self.see(tree_flatten((args, kwargs, out))[0])
        return out

    def see(self, values: Any) -> None:
        for value in values:
            if (
                isinstance(value, torch.Tensor)
                and value.device.type == "cpu"
                and value.layout == torch.strided
            ):
                self._see(value.untyped_storage())

    def _see(self, storage: torch.UntypedStorage) -> None:
        key = id(storage)
        ref = self._refs.get(key)
        if ref is not None and ref() is storage:
            return
        nbytes = storage.nbytes()
        self._refs[key] = weakref.ref(storage, lambda _, k=key, n=nbytes: self._freed(k, n))
        self.live_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)

    def _freed(self, key: int, nbytes: int) -> None:
        self._refs.pop(key, None)
        self.live_bytes -= nbytes

    def resume(self) -> None:
        if not self.on_stack:
            self.__enter__()
            self.on_stack = True

    def pause(self) -> None:
        if self.on_stack and _get_current_dispatch_mode() is self:  # never pop another's mode
            self.__exit__(None, None, None)
        self.on_stack = False

    def finish(self) -> None:
        """Off the stack, and no more bookkeeping (the peak stays)."""
        self.pause()
        self._refs.clear()


def resident_tensors(module: L.LightningModule) -> Iterator[torch.Tensor]:
    """What a training run keeps between steps: parameters, buffers, gradients, optimizer
    state."""
    yield from module.parameters()
    yield from module.buffers()
    yield from (p.grad for p in module.parameters() if p.grad is not None)
    try:
        optimizers = module.trainer.optimizers
    except RuntimeError:  # not attached to a trainer
        optimizers = []
    for optimizer in optimizers:
        for state in optimizer.state.values():
            yield from (v for v in state.values() if isinstance(v, torch.Tensor))


class PeakMemoryMeter:
    def __init__(self, device: torch.device, sample_steps: int = SAMPLE_STEPS):
        if sample_steps < 1:
            raise ValueError(f"sample_steps={sample_steps}: expected a whole number >= 1")
        self.device = device
        self.on_cuda = device.type == "cuda"
        self.method = "cuda_max_allocated" if self.on_cuda else "cpu_tensor_peak"
        self.sample_steps = sample_steps
        self._counter: TensorBytes | None = None
        self._hooks: list[RemovableHandle] = []
        self._eval_module: L.LightningModule | None = None
        self._reads = 0

    def start(self) -> None:
        """Call at the start of training, on the thread that trains."""
        self._reads = 0
        if self.on_cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        _stop_active()  # a run that ended inside a sample must not count into this one
        self._counter = TensorBytes()
        self._counter.resume()
        self._eval_module = None
        self._hooks = [
            register_module_forward_pre_hook(self._before_forward),
            register_module_forward_hook(self._after_forward),
        ]
        _active.append(self)

    def read_bytes(self) -> int:
        """Peak since `start()`, in bytes; call once per training step."""
        if self.on_cuda:
            return int(torch.cuda.max_memory_allocated(self.device))
        if self._counter is None:
            return 0
        self._reads += 1
        if self._reads == self.sample_steps:
            self._counter.pause()
        return self._counter.peak_bytes

    def stop(self) -> None:
        """End both samples now (they also end by themselves)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []
        if self._counter is not None:
            self._counter.finish()
        if self in _active:
            _active.remove(self)

    # ---- the validation sample: the first forward pass of a LightningModule without grad ----
    def _before_forward(self, module: Any, args: Any) -> None:
        if torch.is_grad_enabled() or self._eval_module is not None:
            return
        if not isinstance(module, L.LightningModule) or self._counter is None:
            return
        self._eval_module = module
        self._counter.see(resident_tensors(module))  # gradients may be new since the sample
        self._counter.resume()

    def _after_forward(self, module: Any, args: Any, output: Any) -> None:
        if module is self._eval_module and self._counter is not None:
            if self._reads >= self.sample_steps:
                self._counter.pause()
            for handle in self._hooks:
                handle.remove()
            self._hooks = []


_active: list[PeakMemoryMeter] = []  # meters whose samples may still be running


def _stop_active() -> None:
    while _active:
        _active[-1].stop()
