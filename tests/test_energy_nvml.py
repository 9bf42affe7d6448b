"""NVML backend against a stub `pynvml` (scripted counters, a GPU with power only)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from fakes.pynvml_stub import StubGpu, StubNvml
from fakes.rapl_tree import set_energy, write_zone

from frugal.meters.energy import BackendUnavailable, EnergyConfig, build_energy_meter
from frugal.meters.energy.fallback import FallbackMeter
from frugal.meters.energy.nvml import NvmlBackend, default_gpu_indices


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> StubNvml:
    stub = StubNvml([StubGpu("A100", energy_mj=1_000_000), StubGpu("T4", energy_mj=None)])
    monkeypatch.setitem(sys.modules, "pynvml", stub.module())
    return stub


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_energy_counter_in_millijoules(nvml: StubNvml) -> None:
    backend = NvmlBackend([0])
    backend.start()
    nvml.gpus[0].energy_mj += 2_500  # 2.5 J
    assert backend.sample_j() == pytest.approx(2.5)
    nvml.gpus[0].energy_mj += 500
    assert backend.stop() == pytest.approx(3.0)
    assert nvml.inits == nvml.shutdowns  # probe and run each release NVML
    assert backend.describe() == [
        {"name": "nvml", "gpus": [{"index": 0, "name": "A100", "source": "energy_counter"}]}
    ]


def test_gpu_without_counter_integrates_power(nvml: StubNvml) -> None:
    clock = Clock()
    backend = NvmlBackend([0, 1], clock=clock)
    assert [g["source"] for g in backend.describe()[0]["gpus"]] == [
        "energy_counter",
        "power_polling",
    ]
    nvml.gpus[1].power_mw = 100_000
    backend.start()
    clock.now_s += 2.0
    nvml.gpus[1].power_mw = 200_000  # ramps 100 -> 200 W over 2 s: 300 J (trapezoid)
    assert backend.sample_j() == pytest.approx(300.0)
    clock.now_s += 1.0
    nvml.gpus[0].energy_mj += 10_000
    assert backend.sample_j() == pytest.approx(300.0 + 200.0 + 10.0)
    backend.stop()


def test_no_gpu_or_no_driver_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendUnavailable, match="no GPU for this rank"):
        NvmlBackend([])
    monkeypatch.setitem(sys.modules, "pynvml", StubNvml([], init_error=True).module())
    with pytest.raises(BackendUnavailable, match=r"^NVML: cannot initialise \(Driver Not"):
        build_energy_meter(EnergyConfig(backend="nvml", gpu_indices=[0]))


def test_lost_gpu_mid_run_falls_back(nvml: StubNvml) -> None:
    meter = FallbackMeter([NvmlBackend([0])], sample_every_s=0.01, clock=Clock())
    meter.start()
    assert meter.poll_interval_s is None  # an energy counter, read at every step
    nvml.gpus[0].energy_mj += 4_000
    deadline_s = time.monotonic() + 5
    while meter.read_j() != pytest.approx(4.0):
        assert time.monotonic() < deadline_s
        time.sleep(0.005)
    nvml.gpus[0].fail = True
    while meter.method == "nvml":
        assert time.monotonic() < deadline_s
        time.sleep(0.005)
    switch = meter.describe()["switches"][0]
    assert switch["from"] == "nvml" and switch["at_j"] == pytest.approx(4.0)
    assert "GPU is lost" in switch["reason"]
    assert meter.read_j() is None and meter.lost  # nothing left to read: unknown
    meter.stop()


def test_gpu_without_counter_is_polled_and_extrapolated(nvml: StubNvml) -> None:
    clock = Clock()
    nvml.gpus[1].power_mw = 100_000  # 100 W, steady
    meter = FallbackMeter([NvmlBackend([1], clock=clock)], sample_every_s=0.01, clock=clock)
    meter.start()
    assert meter.poll_interval_s == 0.01  # power is integrated at each poll
    assert meter.describe()["precision"] == "polled every 0.01 s"
    assert meter.uncertainty == 0.05
    clock.now_s += 1.0
    deadline_s = time.monotonic() + 5
    while meter.read_j() != pytest.approx(100.0):  # the poller's sample at 1 s
        assert time.monotonic() < deadline_s
        time.sleep(0.002)
    meter.stop()


def test_auto_sums_rapl_and_nvml(nvml: StubNvml, tmp_path: Path) -> None:
    write_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    cfg = EnergyConfig(rapl_root=str(tmp_path), gpu_indices=[0], scope="machine")
    meter = build_energy_meter(cfg)
    assert meter is not None
    meter.start()
    assert meter.method == "rapl+nvml" and meter.measured
    set_energy(tmp_path, "intel-rapl:0", 7_000_000)
    nvml.gpus[0].energy_mj += 3_000
    meter.stop()
    assert meter.read_j() == pytest.approx(10.0)  # the machine's figure, read at stop
    assert [b["method"] for b in meter.describe()["backends"]] == [
        "rapl×cpu-share",
        "nvml×gpu-share",
    ]


def test_auto_on_every_local_rank_charges_its_own_share(nvml: StubNvml, tmp_path: Path) -> None:
    write_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    cfg = EnergyConfig(rapl_root=str(tmp_path), gpu_indices=[0])
    meter = build_energy_meter(cfg, local_rank=1)
    assert meter is not None
    meter.start()
    assert meter.method == "rapl×cpu-share+nvml×gpu-share"  # its own processes' share of each
    set_energy(tmp_path, "intel-rapl:0", 5_000_000)
    meter.stop()
    run_j, machine_j = meter.read_j(), meter.read_machine_j()
    assert machine_j == pytest.approx(5.0)
    assert run_j is not None and 0.0 <= run_j <= machine_j


def test_default_gpu_is_this_ranks_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_gpu_indices(0) == []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # CUDA device 1 is NVML device 3
    assert default_gpu_indices(1) == [3]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert default_gpu_indices(1) == [1]
