"""RAPL energy counters through Linux powercap sysfs (Intel, and AMD through the same driver).

`<root>/intel-rapl:<p>` is a package (socket); `<root>/intel-rapl:<p>:<s>` its sub-zones. The
count is every package plus every `dram` zone: core and uncore sit inside the package (counting
them would count twice), dram does not. `psys` (whole platform, includes the packages) and
unknown zones are skipped and listed. Counters are microjoules that wrap at
`max_energy_range_uj`: a read at least every few minutes (the meter's poller) catches each wrap.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugal.meters.energy.backend import BackendAbsent, BackendUnavailable

# intel-rapl:0, intel-rapl:0:2; amd-rapl for kernels or containers that name it so.
# intel-rapl-mmio:* duplicates the package zone through MMIO and must not match.
_ZONE_RE = re.compile(r"^(?:intel|amd)-rapl:(\d+)(?::(\d+))?$")
_READ_BYTES = 32  # a uint64 in decimal and a newline


@dataclass(frozen=True)
class RaplZone:
    label: str  # "package-0", "package-0/dram"
    energy_path: Path
    max_range_uj: int


def counter_delta_uj(previous_uj: int, current_uj: int, max_range_uj: int) -> int:
    """Energy between two reads of a counter that wraps to 0 after `max_range_uj`."""
    return (current_uj - previous_uj) % max_range_uj


def discover_zones(root: str | Path) -> tuple[list[RaplZone], list[str]]:
    """(zones to count, labels of zones skipped and why), from a powercap tree."""
    root = Path(root)
    if not root.is_dir():
        raise BackendAbsent(f"RAPL: no powercap directory {root}")
    dirs: dict[str, Path] = {}  # zone id -> directory; /sys/class/powercap lists zones flat
    for path in _children(root):
        if _ZONE_RE.match(path.name) and path.is_dir():
            dirs.setdefault(path.name, path)
            for sub in _children(path):  # sub-zones nested in their package (sysfs devices/)
                if _ZONE_RE.match(sub.name) and sub.is_dir():
                    dirs.setdefault(sub.name, sub)
    names = {zone_id: _read_text(d / "name") for zone_id, d in dirs.items()}
    counted: list[RaplZone] = []
    skipped: list[str] = []
    for zone_id in sorted(dirs, key=_zone_sort_key):
        match = _ZONE_RE.match(zone_id)
        assert match is not None
        name = names[zone_id] or zone_id
        parent_name = None
        if match.group(2) is not None:
            parent_id = zone_id.rsplit(":", 1)[0]
            parent_name = names.get(parent_id) or parent_id
        is_package = parent_name is None and name.startswith("package")
        label = name if parent_name is None else f"{parent_name}/{name}"
        if not (is_package or name == "dram"):
            skipped.append(label)
            continue
        counted.append(
            RaplZone(
                label=label,
                energy_path=dirs[zone_id] / "energy_uj",
                max_range_uj=_read_int(dirs[zone_id] / "max_energy_range_uj"),
            )
        )
    if not counted:
        raise BackendAbsent(f"RAPL: no package zone under {root} (found: {sorted(dirs) or 'none'})")
    return counted, skipped


class RaplBackend:
    method = "rapl"
    measured = True
    cheap_read = True  # one pread per zone on an open file: microseconds
    poll_interval_s = None  # a counter: current at every read
    sampled_at_s = None
    power_w = None
    # Package and DRAM energy are measured, not modelled, since Haswell (Khan et al., "RAPL in
    # Action", ACM TOMPECS 2018); the rest of the machine (fans, disks, PSU) is not counted.
    uncertainty = 0.05

    def __init__(self, root: str | Path = "/sys/class/powercap") -> None:
        self.zones, self.skipped = discover_zones(root)
        for zone in self.zones:  # fail at build time, not mid-run
            _read_int(zone.energy_path)
        self._fds: list[int] = []
        self._previous_uj: list[int] = []
        self._total_uj = 0

    def start(self) -> None:
        self._fds = [os.open(zone.energy_path, os.O_RDONLY) for zone in self.zones]
        self._previous_uj = self._read_counters()
        self._total_uj = 0

    def sample_j(self) -> float:
        counters_uj = self._read_counters()
        for zone, previous_uj, current_uj in zip(
            self.zones, self._previous_uj, counters_uj, strict=True
        ):
            self._total_uj += counter_delta_uj(previous_uj, current_uj, zone.max_range_uj)
        self._previous_uj = counters_uj
        return self._total_uj / 1e6

    def stop(self) -> float | None:
        try:
            return self.sample_j() if self._fds else None
        finally:
            for fd in self._fds:
                os.close(fd)
            self._fds = []

    def describe(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"name": "rapl", "zones": [zone.label for zone in self.zones]}
        if self.skipped:
            entry["skipped"] = self.skipped  # inside a counted zone, or unknown
        return [entry]

    def _read_counters(self) -> list[int]:
        # pread at offset 0 re-reads a sysfs attribute without reopening it.
        return [int(os.pread(fd, _READ_BYTES, 0)) for fd in self._fds]


def _children(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except OSError:
        return []


def _zone_sort_key(zone_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in zone_id.split(":")[1:])


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text())
    except PermissionError as err:
        raise BackendUnavailable(
            f"RAPL: permission denied reading {path} (root-only since Linux 5.10: run as "
            f"root or `sudo chmod a+r {path.parent.parent}/intel-rapl:*/energy_uj`)"
        ) from err
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else type(err).__name__
        if err.errno == errno.ENOENT:
            reason = "missing"
        raise BackendUnavailable(f"RAPL: cannot read {path} ({reason})") from err
    except ValueError as err:
        raise BackendUnavailable(f"RAPL: {path} does not hold an integer") from err
