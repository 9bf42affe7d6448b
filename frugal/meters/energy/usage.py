"""What the run's own processes use — CPU seconds and resident memory — and how busy the whole
machine's CPUs were: the inputs of energy attribution (attributed.py).

The run is this process, its threads, and its descendants (data-loader workers) except other
ranks of the same run, which meter themselves (a descendant started with another LOCAL_RANK,
or one named by `exclude`): ranks then sum through the strategy without counting anyone twice.
Reads are a few system calls, cheap enough for every step:
this process's CPU time is `time.process_time()` (the kernel's precise per-process clock, all
threads); descendants are read from `/proc/<pid>/stat` and listed afresh every
`refresh_s` (listing scans /proc: about a millisecond). `proc_root` points the readers at a
fake tree in tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # jiffies per second
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# /proc/stat "cpu" fields that are work: user nice system idle iowait irq softirq steal ...
# (guest time is already inside user and nice).
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


def machine_busy_s(proc_root: str | Path = "/proc") -> float:
    """Seconds of busy CPU time of the whole machine, all CPUs, since boot (`/proc/stat`)."""
    with open(Path(proc_root) / "stat", "rb") as handle:
        first = handle.readline().split()
    if not first or first[0] != b"cpu":
        raise OSError(f"{proc_root}/stat: no aggregate cpu line")
    ticks = [int(value) for value in first[1:]]
    return sum(ticks[i] for i in _BUSY_FIELDS if i < len(ticks)) / CLK_TCK


def pid_cpu_s(pid: int, proc_root: str | Path = "/proc") -> float | None:
    """User + system CPU seconds of process `pid` (all its threads), None once it is gone."""
    try:
        raw = (Path(proc_root) / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()  # the name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def pid_rss_bytes(pid: int, proc_root: str | Path = "/proc") -> int | None:
    """Resident memory of `pid` in bytes (`/proc/<pid>/statm`), None once it is gone."""
    try:
        raw = (Path(proc_root) / str(pid) / "statm").read_bytes()
    except OSError:
        return None
    return int(raw.split()[1]) * PAGE_BYTES


def rank_of(pid: int, proc_root: str | Path = "/proc") -> str | None:
    """The LOCAL_RANK a process was started with (`/proc/<pid>/environ`), None when it has none
    or cannot be read. Lightning starts ranks 1.. as children of rank 0 with their own
    LOCAL_RANK; data-loader workers are forked and keep their rank's."""
    try:
        raw = (Path(proc_root) / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    for entry in raw.split(b"\0"):
        if entry.startswith(b"LOCAL_RANK="):
            return entry.split(b"=", 1)[1].decode(errors="replace")
    return None


def descendants(pid: int) -> list[int]:
    """Every living descendant of `pid` (psutil walks /proc)."""
    import psutil

    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


class RunUsage:
    """The CPU seconds and resident memory of the run's processes, never decreasing in CPU.

    A descendant that ends keeps the CPU time last read of it (an under-count of at most
    `refresh_s` of its work; a single-process run also takes the kernel's figure for reaped
    children, `os.times()`, where that is larger)."""

    def __init__(
        self,
        pid: int | None = None,
        proc_root: str | Path = "/proc",
        refresh_s: float = 2.0,
        list_children: Callable[[int], list[int]] = descendants,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.proc_root = Path(proc_root)
        self._own_clock = self.pid == os.getpid() and self.proc_root == Path("/proc")
        self._refresh_s = refresh_s
        self._list_children = list_children
        self._clock = clock
        self._excluded: set[int] = set()
        self._children: list[int] = []
        self._listed_at_s: float | None = None
        self._child_cpu_s: dict[int, float] = {}  # last reading of every descendant seen
        self.alone = True  # no other rank to leave out: reaped children are ours

    def exclude(self, pids: Iterable[int]) -> None:
        """Leave these processes and their descendants out (other ranks meter themselves)."""
        self._excluded = {int(p) for p in pids if int(p) != self.pid}
        self.alone = not self._excluded
        self._listed_at_s = None

    def own_cpu_s(self) -> float | None:
        if self._own_clock:
            return time.process_time()
        return pid_cpu_s(self.pid, self.proc_root)

    def cpu_s(self) -> float | None:
        """CPU seconds of the run's processes since they started; None if its own process
        cannot be read."""
        own_s = self.own_cpu_s()
        if own_s is None:
            return None
        for child in self.children():
            seconds = pid_cpu_s(child, self.proc_root)
            if seconds is not None:
                self._child_cpu_s[child] = max(seconds, self._child_cpu_s.get(child, 0.0))
        children_s = sum(self._child_cpu_s.values())
        if self._own_clock and self.alone:
            times = os.times()
            living_s = sum(self._child_cpu_s.get(c, 0.0) for c in self._children)
            children_s = max(children_s, times.children_user + times.children_system + living_s)
        return own_s + children_s

    def rss_bytes(self) -> int | None:
        """Resident memory of the run's processes now."""
        own = pid_rss_bytes(self.pid, self.proc_root)
        if own is None:
            return None
        return own + sum(pid_rss_bytes(c, self.proc_root) or 0 for c in self.children())

    def children(self) -> list[int]:
        """The run's living descendants (listed afresh every `refresh_s`)."""
        now_s = self._clock()
        if self._listed_at_s is None or now_s - self._listed_at_s >= self._refresh_s:
            self._listed_at_s = now_s
            found = self._list_children(self.pid)
            left_out = set(self._excluded)
            for pid in self._excluded:
                left_out.update(self._list_children(pid))
            own_rank = rank_of(self.pid, self.proc_root)
            self._children = [
                p
                for p in found
                if p not in left_out and rank_of(p, self.proc_root) in (own_rank, None)
            ]
        return self._children
