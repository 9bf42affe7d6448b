"""The fallback chain: faults hand over to the next backend and keep the joules counted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from frugal.meters.base import EnergyMeter
from frugal.meters.energy import BackendUnavailable, EnergyConfig, build_energy_meter
from frugal.meters.energy.backend import SumBackend
from frugal.meters.energy.fallback import FallbackMeter

LOST = object()  # script entry: the backend loses its device/lock and raises


class ScriptedBackend:
    """Returns the scripted cumulative readings in turn; repeats the last one when done."""

    def __init__(
        self,
        method: str,
        readings: list[Any],
        measured: bool = True,
        cheap_read: bool = True,
        fail_start: bool = False,
        sample_delay_s: float = 0.0,
    ) -> None:
        self.method, self.measured, self.cheap_read = method, measured, cheap_read
        self._readings = list(readings)
        self._fail_start = fail_start
        self._delay_s = sample_delay_s
        self.started = self.stopped = False

    def start(self) -> None:
        if self._fail_start:
            raise BackendUnavailable(f"{self.method}: nothing to read")
        self.started = True

    def sample_j(self) -> float | None:
        time.sleep(self._delay_s)
        value = self._readings.pop(0) if len(self._readings) > 1 else self._readings[0]
        if value is LOST:
            raise RuntimeError("lock lost")
        return value

    def stop(self) -> float | None:
        self.stopped = True
        return None

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": self.method}]


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def started(backends: list[Any], poll_interval_s: float = 3600.0) -> FallbackMeter:
    meter = FallbackMeter(backends, poll_interval_s=poll_interval_s)
    meter.start()
    return meter


@pytest.mark.parametrize("fault", [LOST, None, 5.0], ids=["raises", "returns-none", "backwards"])
def test_fault_hands_over_and_keeps_energy(fault: Any) -> None:
    first = ScriptedBackend("rapl", [10.0, 20.0, fault])
    second = ScriptedBackend("codecarbon:cpu_load", [3.0], measured=False)
    meter = started([first, second])
    assert meter.read_j() == 10.0
    assert meter.read_j() == 20.0
    assert meter.read_j() == 20.0  # the fault: last good value while the poller switches
    wait_for(lambda: meter.method == "codecarbon:cpu_load")
    assert first.stopped
    assert meter.read_j() == 23.0  # 20 J kept, 3 J added by the new backend
    meter.stop()
    info = meter.describe()
    assert info["method"] == "codecarbon:cpu_load"
    assert info["measured"] is False  # part of the total is an estimate
    assert [b["name"] for b in info["backends"]] == ["rapl", "codecarbon:cpu_load"]
    [switch] = info["switches"]
    assert switch["from"] == "rapl" and switch["to"] == "codecarbon:cpu_load"
    assert switch["at_j"] == 20.0 and switch["reason"].startswith("rapl: read")


def test_nothing_left_means_unknown_never_zero() -> None:
    meter = started([ScriptedBackend("rapl", [4.0, None])])
    assert meter.read_j() == 4.0
    meter.read_j()
    wait_for(lambda: meter.method == "unavailable")
    assert meter.read_j() is None
    meter.stop()
    info = meter.describe()
    assert info["measured"] is False
    assert info["switches"][-1] == {
        "from": "rapl",
        "to": "unavailable",
        "reason": "rapl: read returned None",
        "at_j": 4.0,
    }
    assert "energy is unknown" in info["note"]


def test_no_backend_at_all() -> None:
    meter = started([])
    assert meter.read_j() is None and meter.method == "unavailable"
    meter.stop()


def test_backend_failing_at_start_is_skipped_and_recorded() -> None:
    meter = started(
        [ScriptedBackend("nvml", [0.0], fail_start=True), ScriptedBackend("codecarbon", [0.0])]
    )
    assert meter.method == "codecarbon"
    assert meter.read_j() == 0.0  # a real reading of zero, from a working backend
    meter.stop()
    [switch] = meter.describe()["switches"]
    assert switch["from"] == "nvml" and switch["at_j"] == 0.0
    assert "nothing to read" in switch["reason"]


def test_poller_samples_slow_backends_and_read_never_blocks() -> None:
    slow = ScriptedBackend("nvml", [0.0, 1.0, 2.0], cheap_read=False, sample_delay_s=0.05)
    meter = started([slow], poll_interval_s=0.01)
    began_s = time.perf_counter()
    meter.read_j()
    assert time.perf_counter() - began_s < 0.01  # returns the latest sample, no driver call
    wait_for(lambda: meter.read_j() == 2.0)
    meter.stop()


def test_poller_switches_slow_backend_on_fault() -> None:
    meter = started(
        [ScriptedBackend("nvml", [1.0, LOST], cheap_read=False), ScriptedBackend("cc", [0.5])],
        poll_interval_s=0.01,
    )
    wait_for(lambda: meter.method == "cc")
    assert meter.read_j() == 1.5
    meter.stop()


def test_sum_of_counters_is_one_backend() -> None:
    both = SumBackend([ScriptedBackend("rapl", [2.0]), ScriptedBackend("nvml", [3.0])])
    meter = started([both])
    assert meter.method == "rapl+nvml" and meter.measured
    assert meter.read_j() == 5.0
    meter.stop()
    assert meter.describe()["backends"] == [{"name": "rapl"}, {"name": "nvml"}]


def test_meter_follows_the_protocol() -> None:
    assert isinstance(FallbackMeter([], poll_interval_s=1.0), EnergyMeter)


def test_backend_none_builds_nothing() -> None:
    assert build_energy_meter(EnergyConfig(backend="none")) is None


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("backend", "foo", "energy.backend='foo': expected one of auto, rapl, nvml"),
        ("country_iso_code", "fr", "energy.country_iso_code='fr': expected an ISO"),
        ("carbon_intensity_g_per_kwh", -1.0, "energy.carbon_intensity_g_per_kwh=-1.0"),
        ("measure_power_secs", 0, "energy.measure_power_secs=0: expected a number"),
        ("gpu_indices", [0, -1], "energy.gpu_indices=[0, -1]: expected null or a list"),
        ("codecarbon_tracking_mode", "rank", "expected one of process, machine"),
    ],
)
def test_config_rejects_bad_values_in_one_line(field: str, value: Any, expected: str) -> None:
    with pytest.raises(ValueError) as err:
        EnergyConfig(**{field: value})
    assert expected in str(err.value) and "\n" not in str(err.value)
