"""`FallbackMeter`: current readings (counters read on the spot, polled sources extrapolated),
precision metadata, and faults (raise, freeze, hang) that hand over without ever reading 0.

Energy time runs on a `Clock` the test moves; timeouts are real seconds, kept short.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fakes.backends import (
    LOST,
    Clock,
    CounterBackend,
    HangingBackend,
    PowerTrace,
    RaisingBackend,
    ScriptedBackend,
    StaircaseBackend,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from frugal.meters.base import EnergyMeter
from frugal.meters.energy import EnergyConfig, build_energy_meter
from frugal.meters.energy.backend import Backend, SumBackend
from frugal.meters.energy.bounded import Hung, call_bounded
from frugal.meters.energy.extrapolate import Trend
from frugal.meters.energy.fallback import FallbackMeter

PARKED_S = 3600.0  # a poller period that never comes during a test


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


def started(backends: list[Any], clock: Clock | None = None, **kwargs: Any) -> FallbackMeter:
    kwargs.setdefault("sample_every_s", PARKED_S)
    meter = FallbackMeter(backends, clock=clock or Clock(), **kwargs)
    meter.start()
    return meter


def elapsed_s(fn: Callable[[], object]) -> float:
    began_s = time.perf_counter()
    fn()
    return time.perf_counter() - began_s


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Lets every hung backend call return at teardown, so no test leaves a thread blocked."""
    event = threading.Event()
    yield event
    event.set()


# -- extrapolation --


def test_trend_extrapolates_the_last_interval() -> None:
    trend = Trend.started_at(10.0)
    assert trend.at(12.0) == 0.0  # no sample yet: power unknown, the last figure (0 J)
    trend = trend.then(11.0, 5.0)  # the first interval's average: 5 W
    assert trend.at(11.5) == pytest.approx(7.5)
    trend = trend.then(12.0, 25.0)  # 20 W over the last interval
    assert trend.at(12.25) == pytest.approx(30.0)
    assert trend.at(11.0) == 25.0  # never before the last sample
    assert trend.then(12.0, 25.0) == trend  # the same push read again
    assert Trend.started_at(10.0).then(10.0, 1.0, source_power_w=8.0).at(11.0) == 9.0
    assert trend.at_mean_power(13.0) == pytest.approx(25.0 + 12.5)  # 25 J over 2 s


def test_counter_is_read_on_the_spot() -> None:
    clock = Clock()
    trace = PowerTrace(clock, 10.0)
    meter = started([CounterBackend(trace)], clock)
    assert meter.poll_interval_s is None and meter.uncertainty == 0.05
    for power_w in (10.0, 40.0, 5.0):
        trace.set_power(power_w)
        clock.advance(0.7)
        assert meter.read_j() == pytest.approx(trace.energy_j(100.0), abs=1e-9)
    meter.stop()
    info = meter.describe()
    assert info["precision"] == "per-step counter" and info["poll_interval_s"] is None


def test_polled_reading_is_extrapolated_to_the_call() -> None:
    clock = Clock()
    trace = PowerTrace(clock, 10.0)
    meter = started([StaircaseBackend(trace, period_s=1.0)], clock)
    assert meter.poll_interval_s == 1.0 and meter.uncertainty == 0.3
    clock.advance(0.5)
    assert meter.read_j() == 0.0  # only the start's push: power unknown yet
    clock.advance(1.0)  # pushed 10 J at 1 s: the first interval's average is 10 W
    assert meter.read_j() == pytest.approx(15.0)  # 10 J + 10 W × 0.5 s: what was spent
    clock.advance(1.0)
    assert meter.read_j() == pytest.approx(25.0)
    trace.set_power(2.0)  # the load drops at 2.5 s: pushed 26 J at 3 s, 6 W on average
    clock.advance(1.4)
    over_j = meter.read_j()
    assert over_j == pytest.approx(26.0 + 6.0 * 0.9)  # at 3.9 s; the truth is 27.8 J
    clock.advance(0.2)  # 4.1 s: pushed 28 J at 4 s, at 2 W: reconciled to 28.2 J ...
    assert meter.read_j() == over_j  # ... but a reading never goes down
    clock.advance(2.0)
    assert meter.read_j() == pytest.approx(32.2)  # the energy caught up: current again
    meter.stop()
    assert meter.describe()["precision"] == "polled every 1 s"


@settings(max_examples=30, deadline=None)
@given(
    powers_w=st.lists(st.floats(0.0, 500.0), min_size=1, max_size=8),
    steps_s=st.lists(st.floats(0.01, 2.5), min_size=1, max_size=40),
)
def test_polled_reading_is_monotone_and_within_one_interval(
    powers_w: list[float], steps_s: list[float]
) -> None:
    clock = Clock()
    trace = PowerTrace(clock, powers_w[0])
    period_s = 1.0
    meter = started([StaircaseBackend(trace, period_s=period_s)], clock)
    one_interval_j = max(powers_w) * period_s
    readings = []
    for i, step_s in enumerate(steps_s):
        trace.set_power(powers_w[i % len(powers_w)])
        clock.advance(step_s)
        reading_j = meter.read_j()
        assert reading_j is not None
        true_j = trace.energy_j(100.0)
        assert true_j - one_interval_j - 1e-6 <= reading_j <= true_j + one_interval_j + 1e-6
        readings.append(reading_j)
    meter.stop()
    assert readings == sorted(readings)


def test_slow_backend_is_polled_at_the_meter_period() -> None:
    clock = Clock()
    slow = CounterBackend(PowerTrace(clock, 10.0), method="nvml", cheap_read=False)
    meter = started([slow], clock, sample_every_s=0.01)
    assert meter.poll_interval_s == 0.01
    clock.advance(2.0)
    wait_for(lambda: meter.read_j() == pytest.approx(20.0))  # the poller's sample at 2 s
    assert elapsed_s(meter.read_j) < 0.01  # no driver call on the caller's thread
    meter.stop()
    assert meter.describe()["precision"] == "polled every 0.01 s"


# -- faults: raise, freeze, hang --


def test_call_bounded_returns_raises_or_gives_up(release: threading.Event) -> None:
    assert call_bounded(lambda: 3, 1.0, "f()") == 3
    with pytest.raises(ZeroDivisionError):
        call_bounded(lambda: 1 / 0, 1.0, "g()")
    with pytest.raises(Hung, match=r"^h\(\) did not return within 0.05 s$"):
        call_bounded(release.wait, 0.05, "h()")


@pytest.mark.parametrize("fault", [LOST, None, 5.0], ids=["raises", "returns-none", "backwards"])
def test_fault_hands_over_and_keeps_energy(fault: Any) -> None:
    first = ScriptedBackend("rapl", [10.0, 20.0, fault])
    second = ScriptedBackend("codecarbon:cpu_load", [3.0], measured=False, uncertainty=0.3)
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
    assert info["uncertainty"] == 0.3  # the worst backend that counted
    assert [b["name"] for b in info["backends"]] == ["rapl", "codecarbon:cpu_load"]
    [switch] = info["switches"]
    assert switch["from"] == "rapl" and switch["to"] == "codecarbon:cpu_load"
    assert switch["at_j"] == 20.0 and switch["reason"].startswith("rapl: read")


def test_hand_over_gap_is_bridged_at_the_failed_power() -> None:
    clock = Clock()
    trace = PowerTrace(clock, 10.0)
    first = RaisingBackend(trace, samples_before=1, method="rapl")
    meter = started([first, CounterBackend(trace, method="backup")], clock)
    clock.advance(2.0)
    assert meter.read_j() == pytest.approx(20.0)
    clock.advance(1.0)
    assert meter.read_j() == pytest.approx(30.0)  # raised: 20 J at 10 W mean power, + 1 s
    wait_for(lambda: meter.method == "backup")
    clock.advance(1.0)
    assert meter.read_j() == pytest.approx(40.0)  # the gap counted, nothing lost
    meter.stop()


def test_nothing_left_means_unknown_never_zero() -> None:
    meter = started([ScriptedBackend("rapl", [4.0, None])])
    assert meter.read_j() == 4.0 and not meter.lost
    meter.read_j()
    wait_for(lambda: meter.method == "unavailable")
    assert meter.read_j() is None and meter.lost
    assert meter.poll_interval_s is None and meter.uncertainty is None
    meter.stop()
    assert meter.read_j() is None  # still unknown after stop, never 0
    info = meter.describe()
    assert info["measured"] is False and info["precision"] == "unavailable"
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
    assert not meter.lost  # it never had a reading
    meter.stop()
    assert meter.read_j() is None


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


def test_poller_switches_slow_backend_on_fault() -> None:
    meter = started(
        [ScriptedBackend("nvml", [1.0, LOST], cheap_read=False), ScriptedBackend("cc", [0.5])],
        sample_every_s=0.01,
    )
    wait_for(lambda: meter.method == "cc")
    assert meter.read_j() == 1.5
    meter.stop()


def test_frozen_source_hands_over_with_its_extrapolation() -> None:
    clock = Clock()
    trace = PowerTrace(clock, 10.0)
    frozen = StaircaseBackend(trace, period_s=1.0, method="codecarbon", freeze_after_s=2.0)
    meter = started([frozen, CounterBackend(trace, method="backup")], clock)
    clock.advance(4.5)
    assert meter.read_j() == pytest.approx(45.0)  # 20 J pushed at 2 s, extrapolated since
    assert meter.method == "codecarbon"  # 2.5 s without a push: not yet frozen (5 s)
    clock.advance(3.0)
    assert meter.read_j() == pytest.approx(75.0)  # 5.5 s without a push: frozen
    wait_for(lambda: meter.method == "backup")
    clock.advance(1.0)
    assert meter.read_j() == pytest.approx(85.0)  # the truth: 8.5 s at 10 W
    meter.stop()
    [switch] = meter.describe()["switches"]
    assert switch["reason"] == "codecarbon: no new sample for 5.5 s (polled every 1 s)"
    assert switch["at_j"] == pytest.approx(75.0)


def test_frozen_last_source_becomes_unknown() -> None:
    clock = Clock()
    frozen = StaircaseBackend(PowerTrace(clock, 10.0), period_s=1.0, freeze_after_s=1.0)
    meter = started([frozen], clock, stale_after_s=2.0)
    clock.advance(1.5)
    assert meter.read_j() == pytest.approx(15.0)
    clock.advance(1.6)
    assert meter.read_j() == pytest.approx(31.0)  # frozen: the last figure while switching
    wait_for(lambda: meter.lost)
    assert meter.read_j() is None and meter.method == "unavailable"
    meter.stop()
    assert frozen.stops == 1


def test_hang_in_start_is_bounded_and_undone(release: threading.Event) -> None:
    clock = Clock()
    trace = PowerTrace(clock, 10.0)
    hung = HangingBackend(trace, "start", release)
    meter = FallbackMeter(
        [hung, CounterBackend(trace, method="backup")],
        sample_every_s=PARKED_S,
        clock=clock,
        start_timeout_s=0.05,
    )
    assert elapsed_s(meter.start) < 1.0
    assert meter.method == "backup"
    [switch] = meter.describe()["switches"]
    assert switch["reason"].endswith("start() did not return within 0.05 s")
    release.set()
    wait_for(lambda: hung.stops == 1)  # started late: stopped at once, never counted
    meter.stop()


def test_hang_in_sample_on_the_poller_is_detected(release: threading.Event) -> None:
    clock = Clock()
    trace = PowerTrace(clock, 10.0)
    hung = HangingBackend(trace, "sample", release)
    meter = started(
        [hung, CounterBackend(trace, method="backup")],
        clock,
        sample_every_s=0.01,
        stale_after_s=0.2,
        stop_timeout_s=0.2,  # its stop() samples, and hangs too
    )
    assert hung.entered.wait(5.0)
    clock.advance(1.0)
    assert elapsed_s(meter.read_j) < 0.01  # the hung sample holds up no reading
    wait_for(lambda: meter.method == "backup")
    [switch] = meter.describe()["switches"]
    assert "sample_j() did not return within 0.2 s" in switch["reason"]
    clock.advance(1.0)
    reading_j = meter.read_j()
    assert reading_j is not None and reading_j >= 10.0  # the backup counts on
    meter.stop()


def test_hang_in_stop_is_bounded(release: threading.Event) -> None:
    clock = Clock()
    hung = HangingBackend(PowerTrace(clock, 10.0), "stop", release)
    meter = started([hung], clock, stop_timeout_s=0.05)
    clock.advance(2.0)
    assert elapsed_s(meter.stop) < 1.0
    assert meter.read_j() == pytest.approx(20.0)  # the last sample, taken before stop()


def test_stop_during_a_hung_hand_over_is_bounded(release: threading.Event) -> None:
    clock = Clock()
    trace = PowerTrace(clock, 10.0)
    failing = RaisingBackend(trace, samples_before=1, method="rapl")
    hung = HangingBackend(trace, "start", release)
    meter = started([failing, hung], clock, start_timeout_s=30.0, stop_timeout_s=0.05)
    clock.advance(1.0)
    assert meter.read_j() == pytest.approx(10.0)
    meter.read_j()  # raises: the poller starts the next backend, which hangs
    assert hung.entered.wait(5.0)
    assert elapsed_s(meter.stop) < 1.0
    assert meter.read_j() == pytest.approx(10.0)
    release.set()
    wait_for(lambda: hung.stops == 1)  # started after stop(): the poller stops it


def test_sum_of_counters_is_one_backend() -> None:
    both = SumBackend([ScriptedBackend("rapl", [2.0]), ScriptedBackend("nvml", [3.0])])
    meter = started([both])
    assert meter.method == "rapl+nvml" and meter.measured
    assert meter.poll_interval_s is None
    assert meter.read_j() == 5.0
    meter.stop()
    assert meter.describe()["backends"] == [{"name": "rapl"}, {"name": "nvml"}]


def test_meter_follows_the_protocol() -> None:
    assert isinstance(FallbackMeter([], sample_every_s=1.0), EnergyMeter)


def test_fakes_follow_the_backend_protocol() -> None:
    fake = CounterBackend(PowerTrace(Clock(), 1.0))
    assert all(hasattr(fake, name) for name in Backend.__annotations__)


def test_backend_none_builds_nothing() -> None:
    assert build_energy_meter(EnergyConfig(backend="none")) is None


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("backend", "foo", "energy.backend='foo': expected one of auto, rapl, nvml"),
        ("country_iso_code", "fr", "energy.country_iso_code='fr': expected an ISO"),
        ("country_iso_code", "XYZ", "energy.country_iso_code='XYZ': unknown country; expected"),
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
