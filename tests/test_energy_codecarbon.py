"""codecarbon backend (a real tracker in the slow test) and carbon intensity."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest
from fakes.backends import Clock, CounterBackend, PowerTrace

from frugal.meters.carbon import carbon_g, carbon_intensity
from frugal.meters.energy import BackendUnavailable, EnergyConfig, build_energy_meter
from frugal.meters.energy.backend import J_PER_KWH
from frugal.meters.energy.codecarbon_meter import CodecarbonBackend
from frugal.meters.energy.fallback import FallbackMeter


class SilentTracker:
    """What a locked-out second codecarbon instance does: accepts every call, measures nothing."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class OneShotTracker(SilentTracker):
    """Pushes totals once at start, then its measuring thread dies."""

    _conf: ClassVar[dict[str, list[str]]] = {"hardware": ["CPU(Cpu Load)", "RAM"]}  # private

    def start(self) -> None:
        # 1e-6 kWh = 3.6 J; codecarbon's own power figures (W) come with every push
        fields = {"energy_consumed": 1e-6, "cpu_power": 5.0, "gpu_power": 0.0, "ram_power": 3.0}
        total = type("Total", (), fields)()
        for handler in self.kwargs["output_handlers"]:
            handler.live_out(total, total)


class BrokenTracker(SilentTracker):
    def __init__(self, **kwargs: Any) -> None:
        raise OSError("cannot read /proc/cpuinfo")


def test_silent_tracker_is_refused_loudly() -> None:
    backend = CodecarbonBackend("USA", 1.0, tracker_class=SilentTracker)
    with pytest.raises(BackendUnavailable, match="no reading after start"):
        backend.start()


def test_tracker_whose_constructor_raises_hands_over() -> None:
    clock = Clock()
    broken = CodecarbonBackend("USA", 1.0, tracker_class=BrokenTracker, clock=clock)
    with pytest.raises(OSError, match="cpuinfo"):
        broken.start()  # raised, never swallowed: the meter moves on
    meter = FallbackMeter(
        [
            CodecarbonBackend("USA", 1.0, tracker_class=BrokenTracker, clock=clock),
            CounterBackend(PowerTrace(clock, 5.0), method="backup"),
        ],
        sample_every_s=3600,
        clock=clock,
    )
    meter.start()
    assert meter.method == "backup"
    meter.stop()
    [switch] = meter.describe()["switches"]
    assert switch["reason"] == "codecarbon: OSError: cannot read /proc/cpuinfo"


def test_estimate_is_polled_and_uncertain() -> None:
    clock = Clock()
    backend = CodecarbonBackend("USA", 0.5, tracker_class=OneShotTracker, clock=clock)
    backend.start()
    assert backend.method == "codecarbon:cpu_load"
    assert backend.poll_interval_s == 0.5 and backend.uncertainty == 0.3
    assert backend.sample_j() == pytest.approx(1e-6 * J_PER_KWH)
    assert backend.sampled_at_s == clock.now_s  # the push's time, not the read's
    assert backend.power_w == 8.0  # CPU + GPU + RAM
    backend.stop()


def test_tracker_that_stops_pushing_is_frozen_then_unknown() -> None:
    clock = Clock()
    backend = CodecarbonBackend("USA", 1.0, tracker_class=OneShotTracker, clock=clock)
    meter = FallbackMeter([backend], sample_every_s=3600, clock=clock)
    meter.start()
    assert meter.read_j() == pytest.approx(3.6)
    assert meter.poll_interval_s == 1.0 and meter.describe()["uncertainty"] == 0.3
    clock.advance(0.5)  # before a second push: extrapolated at codecarbon's own 8 W
    assert meter.read_j() == pytest.approx(3.6 + 4.0)
    clock.advance(5.0)  # no push for more than max(5 periods of 1 s, 5 s)
    assert meter.read_j() == pytest.approx(3.6 + 44.0)  # extrapolated, never 0
    deadline_s = time.monotonic() + 5
    while not meter.lost:
        assert time.monotonic() < deadline_s
        time.sleep(0.002)
    assert meter.read_j() is None and meter.method == "unavailable"
    meter.stop()
    assert "no new sample for 5.5 s" in meter.describe()["switches"][0]["reason"]


@pytest.mark.slow
def test_real_tracker_estimates_this_machine() -> None:
    meter = build_energy_meter(EnergyConfig(backend="codecarbon", measure_power_secs=0.5))
    assert meter is not None
    began_s = time.perf_counter()
    meter.start()
    start_s = time.perf_counter() - began_s
    assert meter.method.startswith("codecarbon:") and meter.measured is False
    deadline_s = time.monotonic() + 10
    while not (meter.read_j() or 0.0) > 0.0:
        assert time.monotonic() < deadline_s
        sum(range(100_000))
    began_s = time.perf_counter()
    meter.read_j()
    read_s = time.perf_counter() - began_s
    meter.stop()
    info = meter.describe()
    assert info["backends"][0]["tracking_mode"] == "process" and info["switches"] == []
    assert info["precision"] == "polled every 0.5 s" and info["uncertainty"] == 0.3
    assert meter.read_j() > 0.0
    assert read_s < 1e-3  # the latest push, no measuring on the caller's thread
    print(f"codecarbon start {start_s:.2f} s, method {meter.method}, {meter.read_j():.2f} J")


@pytest.mark.parametrize(("iso", "g_per_kwh"), [("FRA", 56.039), ("USA", 369.473)])
def test_carbon_intensity_from_codecarbon_offline_data(iso: str, g_per_kwh: float) -> None:
    # codecarbon 3.3's global_energy_mix.json (2023 figures); another release may differ.
    value, source = carbon_intensity(EnergyConfig(country_iso_code=iso))
    assert source == f"codecarbon:offline:{iso}"
    assert value == pytest.approx(g_per_kwh, rel=0.5)


def test_configured_carbon_intensity_wins() -> None:
    cfg = EnergyConfig(country_iso_code="FRA", carbon_intensity_g_per_kwh=123.0)
    assert carbon_intensity(cfg) == (123.0, "config")


def test_unknown_country_is_rejected_before_anything_starts() -> None:
    # XYZ has the form of an ISO code: codecarbon's offline data says it is no country
    with pytest.raises(ValueError, match=r"^energy.country_iso_code='XYZ': unknown country;"):
        EnergyConfig(country_iso_code="XYZ")


def test_grams_from_joules() -> None:
    assert carbon_g(3.6e6, 400.0) == pytest.approx(400.0)
