"""codecarbon backend (a real tracker in the slow test) and carbon intensity."""

from __future__ import annotations

import time
from typing import Any

import pytest

from frugal.meters.carbon import carbon_g, carbon_intensity
from frugal.meters.energy import BackendUnavailable, EnergyConfig, build_energy_meter
from frugal.meters.energy.backend import J_PER_KWH
from frugal.meters.energy.codecarbon_meter import CodecarbonBackend


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

    def start(self) -> None:
        total = type("Total", (), {"energy_consumed": 1e-6})()  # kWh
        for handler in self.kwargs["output_handlers"]:
            handler.live_out(total, total)


def test_silent_tracker_is_refused_loudly() -> None:
    backend = CodecarbonBackend("USA", 1.0, tracker_class=SilentTracker)
    with pytest.raises(BackendUnavailable, match="no reading after start"):
        backend.start()


def test_tracker_that_stops_pushing_becomes_unknown() -> None:
    now_s = [0.0]
    backend = CodecarbonBackend("USA", 1.0, tracker_class=OneShotTracker, clock=lambda: now_s[0])
    backend.start()
    assert backend.sample_j() == pytest.approx(1e-6 * J_PER_KWH)
    now_s[0] += 61.0  # 30 periods of 1 s, but never under 60 s
    assert backend.sample_j() is None
    backend.stop()


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


def test_unknown_country_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match=r"^energy.country_iso_code='XYZ': not in codecarbon"):
        carbon_intensity(EnergyConfig(country_iso_code="XYZ"))


def test_grams_from_joules() -> None:
    assert carbon_g(3.6e6, 400.0) == pytest.approx(400.0)
