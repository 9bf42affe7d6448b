"""A fake Linux powercap tree, laid out like /sys/class/powercap (zones listed flat)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MAX_UJ = 262_143_328_850  # a real Intel package's max_energy_range_uj


def write_zone(
    root: Path, zone_id: str, name: str | None, energy_uj: int, max_uj: int = DEFAULT_MAX_UJ
) -> Path:
    """Create `root/<zone_id>/{name,energy_uj,max_energy_range_uj}`; name None: no name file."""
    zone = root / zone_id
    zone.mkdir(parents=True, exist_ok=True)
    if name is not None:
        (zone / "name").write_text(f"{name}\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def set_energy(root: Path, zone_id: str, energy_uj: int) -> None:
    (root / zone_id / "energy_uj").write_text(f"{energy_uj}\n")


def write_two_socket_intel(root: Path) -> Path:
    """package-0 (core, uncore, dram), package-1 (core, dram), psys, an MMIO duplicate."""
    write_zone(root, "intel-rapl:0", "package-0", 1_000_000)
    write_zone(root, "intel-rapl:0:0", "core", 500_000)
    write_zone(root, "intel-rapl:0:1", "uncore", 100_000)
    write_zone(root, "intel-rapl:0:2", "dram", 2_000_000, max_uj=65_712_999_613)
    write_zone(root, "intel-rapl:1", "package-1", 3_000_000)
    write_zone(root, "intel-rapl:1:0", "core", 700_000)
    write_zone(root, "intel-rapl:1:1", "dram", 4_000_000, max_uj=65_712_999_613)
    write_zone(root, "intel-rapl:2", "psys", 9_000_000)
    write_zone(root, "intel-rapl-mmio:0", "package-0", 1_000_000)
    (root / "intel-rapl").mkdir()  # the control-type directory: no counter of its own
    return root
