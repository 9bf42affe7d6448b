"""What this machine can hold, asked before anything is allocated: the memory available now and
the CPUs this process may use.

Every size a user can set (threads, a data source's samples, features and classes, the arrays a
file declares, a model's width and depth, a serving batch) is checked against these by the
module that knows what the size costs, with the one line `frugal-train` prints for bad input:
a run that cannot fit is refused in a fraction of a second instead of failing after minutes
with a MemoryError, or swapping the machine to a halt.
"""

from __future__ import annotations

import os

import psutil

from frugal.core.errors import ConfigError, bad
from frugal.core.units import format_amount


def available_memory_bytes() -> int:
    """Memory the kernel can hand out now without swapping (free plus reclaimable caches)."""
    return int(psutil.virtual_memory().available)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity: a container's or a SLURM job's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def check_fits(key: str, value: object, needed_bytes: float, what: str, expected: str) -> None:
    """ConfigError naming `key`=`value` when `what` (e.g. "the synthetic data") needs more
    than the memory available now."""
    available = available_memory_bytes()
    if needed_bytes > available:
        raise bad(
            key,
            value,
            f"{what} needs about {format_amount(needed_bytes, 'B')}, more than the "
            f"{format_amount(available, 'B')} of memory available",
            expected,
        )


__all__ = ["ConfigError", "available_memory_bytes", "check_fits", "usable_cpus"]
