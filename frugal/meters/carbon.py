"""Carbon intensity of electricity (g CO2e per kWh): configured, or codecarbon's offline data."""

from __future__ import annotations

from frugal.meters.energy.backend import J_PER_KWH
from frugal.meters.energy.config import EnergyConfig, energy_mix


def carbon_intensity(cfg: EnergyConfig) -> tuple[float, str]:
    """(g CO2e per kWh, source): "config", or "codecarbon:offline:<ISO>" from its energy mix."""
    if cfg.carbon_intensity_g_per_kwh is not None:
        return float(cfg.carbon_intensity_g_per_kwh), "config"
    country = (energy_mix() or {}).get(cfg.country_iso_code)
    if country is None or country.get("carbon_intensity") is None:
        raise ValueError(
            f"energy.country_iso_code={cfg.country_iso_code!r}: not in codecarbon's offline "
            "energy-mix data; expected a country it lists (e.g. USA, FRA, DEU) or set "
            "energy.carbon_intensity_g_per_kwh"
        )
    return float(country["carbon_intensity"]), f"codecarbon:offline:{cfg.country_iso_code}"


def carbon_g(energy_j: float, g_per_kwh: float) -> float:
    """Grams CO2e emitted by `energy_j` joules at `g_per_kwh`."""
    return energy_j / J_PER_KWH * g_per_kwh
