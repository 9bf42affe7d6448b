"""RAPL reader against fake powercap trees: the real code path, pointed at tmp_path."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fakes.pynvml_stub import StubGpu, StubNvml
from fakes.rapl_tree import set_energy, write_two_socket_intel, write_zone
from hypothesis import given, settings
from hypothesis import strategies as st

from frugal.meters.energy import BackendUnavailable, EnergyConfig, build_energy_meter
from frugal.meters.energy.rapl import RaplBackend, counter_delta_uj, discover_zones


def test_counts_packages_and_dram_only(tmp_path: Path) -> None:
    write_two_socket_intel(tmp_path)
    zones, skipped = discover_zones(tmp_path)
    assert [z.label for z in zones] == [
        "package-0",
        "package-0/dram",
        "package-1",
        "package-1/dram",
    ]
    # core/uncore are inside the package, psys contains it: counting them would count twice
    assert skipped == ["package-0/core", "package-0/uncore", "package-1/core", "psys"]


def test_reads_joules_since_start(tmp_path: Path) -> None:
    write_two_socket_intel(tmp_path)
    backend = RaplBackend(tmp_path)
    backend.start()
    set_energy(tmp_path, "intel-rapl:0", 1_000_000 + 5_000_000)  # +5 J
    set_energy(tmp_path, "intel-rapl:0:0", 500_000 + 4_000_000)  # core: already in package
    set_energy(tmp_path, "intel-rapl:0:2", 2_000_000 + 1_000_000)  # dram +1 J
    set_energy(tmp_path, "intel-rapl:1", 3_000_000 + 2_500_000)  # +2.5 J
    set_energy(tmp_path, "intel-rapl:2", 99_000_000)  # psys: ignored
    assert backend.sample_j() == pytest.approx(8.5)
    assert backend.stop() == pytest.approx(8.5)
    assert backend.describe()[0]["zones"][1] == "package-0/dram"
    assert backend.poll_interval_s is None and backend.uncertainty == 0.05  # a counter


def test_rapl_meter_is_a_per_step_counter(tmp_path: Path) -> None:
    write_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    meter = build_energy_meter(EnergyConfig(backend="rapl", rapl_root=str(tmp_path)))
    assert meter is not None
    meter.start()
    set_energy(tmp_path, "intel-rapl:0", 3_000_000)
    assert meter.read_j() == pytest.approx(3.0)  # read at the call, no poller needed
    meter.stop()
    info = meter.describe()
    # the counter's 5 %, plus 5 % for the run's share of it (/proc/stat ticks)
    assert info["precision"] == "per-step counter" and info["uncertainty"] == pytest.approx(0.1)


def test_wraps_through_max_energy_range(tmp_path: Path) -> None:
    write_zone(tmp_path, "intel-rapl:0", "package-0", 990_000, max_uj=1_000_000)
    backend = RaplBackend(tmp_path)
    backend.start()
    set_energy(tmp_path, "intel-rapl:0", 20_000)  # wrapped: 10_000 to the top, 20_000 after
    assert backend.sample_j() == pytest.approx(0.03)
    set_energy(tmp_path, "intel-rapl:0", 50_000)
    assert backend.sample_j() == pytest.approx(0.06)
    backend.stop()


@settings(max_examples=40, deadline=None)
@given(
    max_uj=st.integers(min_value=1_000, max_value=2**40),
    start_fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
    step_fractions=st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), max_size=20),
)
def test_any_counter_sequence_gives_the_true_total(
    max_uj: int, start_fraction: float, step_fractions: list[float]
) -> None:
    # Between two reads the counter moves by less than one full range (the poller's job).
    steps_uj = [int(f * max_uj) for f in step_fractions]
    counter_uj = int(start_fraction * max_uj)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_zone(root, "intel-rapl:0", "package-0", counter_uj, max_uj=max_uj)
        backend = RaplBackend(root)
        backend.start()
        for step_uj in steps_uj:
            counter_uj = (counter_uj + step_uj) % max_uj
            set_energy(root, "intel-rapl:0", counter_uj)
            backend.sample_j()
        assert backend.stop() == pytest.approx(sum(steps_uj) / 1e6)


def test_counter_delta_is_exact_modulo_range() -> None:
    assert counter_delta_uj(10, 25, 100) == 15
    assert counter_delta_uj(90, 5, 100) == 15


def test_nested_sysfs_layout_is_not_double_counted(tmp_path: Path) -> None:
    # devices/virtual/powercap/intel-rapl/: sub-zones inside their package, and listed flat
    package = write_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    write_zone(package, "intel-rapl:0:0", "dram", 0)
    write_zone(tmp_path, "intel-rapl:0:0", "dram", 0)
    zones, _ = discover_zones(tmp_path)
    assert [z.label for z in zones] == ["package-0", "package-0/dram"]


def test_amd_names_and_missing_name_files(tmp_path: Path) -> None:
    write_zone(tmp_path, "amd-rapl:0", "package-0", 0)
    write_zone(tmp_path, "amd-rapl:0:0", "core", 0)
    write_zone(tmp_path, "intel-rapl:1", None, 0)  # no name file: skipped, not a crash
    zones, skipped = discover_zones(tmp_path)
    assert [z.label for z in zones] == ["package-0"]
    assert skipped == ["package-0/core", "intel-rapl:1"]


def test_no_tree_is_a_one_line_error(tmp_path: Path) -> None:
    cfg = EnergyConfig(backend="rapl", rapl_root=str(tmp_path / "absent"))
    with pytest.raises(BackendUnavailable, match=r"^RAPL: no powercap directory .*absent$"):
        build_energy_meter(cfg)


def test_unreadable_counter_falls_to_next_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    energy = tmp_path / "intel-rapl:0" / "energy_uj"
    energy.unlink()
    energy.mkdir()  # tests run as root here: chmod 000 would not stop a read
    with pytest.raises(BackendUnavailable, match=r"cannot read .*energy_uj") as err:
        build_energy_meter(EnergyConfig(backend="rapl", rapl_root=str(tmp_path)))
    assert "\n" not in str(err.value)

    monkeypatch.setitem(
        __import__("sys").modules, "pynvml", StubNvml([StubGpu(energy_mj=0)]).module()
    )
    cfg = EnergyConfig(rapl_root=str(tmp_path), gpu_indices=[0], measure_power_secs=3600)
    meter = build_energy_meter(cfg)
    assert meter is not None
    assert "cannot read" in caplog.text and "trying the next backend" in caplog.text
    meter.start()
    try:  # the CPU side falls to the power model; the GPU is charged its share of NVML
        assert meter.method == "model:cpu-time+rss+nvml×gpu-share"
        assert "RAPL: cannot read" in meter.describe()["note"]
    finally:
        meter.stop()


def test_permission_denied_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    read_text = Path.read_text

    def denied(path: Path, *args: object, **kwargs: object) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return read_text(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(BackendUnavailable, match=r"permission denied .*run as root") as err:
        RaplBackend(tmp_path)
    assert "\n" not in str(err.value)
