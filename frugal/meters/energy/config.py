"""`EnergyConfig`: the Hydra node `energy:`, validated at start-up."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("auto", "rapl", "nvml", "model", "codecarbon", "none")
TRACKING_MODES = ("process", "machine")
SCOPES = ("run", "machine")
# codecarbon's offline energy mix, one entry per country (what meters/carbon.py reads through
# codecarbon.input.DataSource, which costs pandas' import: ~0.7 s against ~5 ms for the file).
_ENERGY_MIX = "data/private_infra/global_energy_mix.json"


@dataclass
class EnergyConfig:
    # auto: RAPL and/or NVML where readable, the power model (model) for what they do not cover;
    # codecarbon: its machine-level estimate, polled on its own thread
    backend: str = "auto"
    # run: the energy of the run's own processes is what budgets enforce (attributed.py);
    # machine: the whole machine's figure (a dedicated node, wall-plug energy wanted)
    scope: str = "run"
    cpu_watts_per_core: float | None = None  # null: TDP / threads from codecarbon's database
    ram_watts_per_gb: float = 0.3725  # Green Algorithms (Lannelongue et al. 2021)
    pue: float = 1.0  # data-centre power usage effectiveness: multiplies every figure
    country_iso_code: str = "USA"  # ISO-3; codecarbon's offline carbon intensity for this country
    carbon_intensity_g_per_kwh: float | None = None  # set: wins over the country's figure
    measure_power_secs: float = 1.0  # poll period; shorter: fresher reads, more background work
    rapl_root: str = "/sys/class/powercap"
    gpu_indices: list[int] | None = None  # NVML indices; None: the GPU of this rank, if any
    # process: codecarbon counts this process's share of CPU load (right on a shared machine);
    # machine: the whole machine, as RAPL does.
    codecarbon_tracking_mode: str = "process"

    def __post_init__(self) -> None:
        self._check_readings()
        self._check_figures()

    def _check_readings(self) -> None:
        """What is read, and from where: the backend, the country's carbon intensity, the poll
        period, the RAPL root and the GPUs."""
        if self.backend not in BACKENDS:
            raise ValueError(
                f"energy.backend={self.backend!r}: expected one of {', '.join(BACKENDS)}"
            )
        if not isinstance(self.country_iso_code, str) or not re.fullmatch(
            r"[A-Z]{3}", self.country_iso_code
        ):
            raise ValueError(
                f"energy.country_iso_code={self.country_iso_code!r}: "
                "expected an ISO 3166-1 alpha-3 code such as USA, FRA, DEU"
            )
        countries = known_countries()
        if countries is not None and self.country_iso_code not in countries:
            raise ValueError(
                f"energy.country_iso_code={self.country_iso_code!r}: unknown country; "
                "expected an ISO 3166-1 alpha-3 code such as USA, FRA, DEU"
            )
        intensity = self.carbon_intensity_g_per_kwh
        if intensity is not None and not _is_finite_number(intensity, 0.0):
            raise ValueError(
                f"energy.carbon_intensity_g_per_kwh={intensity!r}: "
                "expected null or a number >= 0 (g CO2e per kWh)"
            )
        if not (_is_finite_number(self.measure_power_secs, 0.0) and self.measure_power_secs > 0):
            raise ValueError(
                f"energy.measure_power_secs={self.measure_power_secs!r}: "
                "expected a number of seconds > 0, e.g. 1.0"
            )
        if not isinstance(self.rapl_root, str) or not self.rapl_root:
            raise ValueError(
                f"energy.rapl_root={self.rapl_root!r}: expected a directory path, "
                "e.g. /sys/class/powercap"
            )
        if self.gpu_indices is not None:
            indices = list(self.gpu_indices)  # Hydra hands a ListConfig
            if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indices):
                raise ValueError(
                    f"energy.gpu_indices={self.gpu_indices!r}: "
                    "expected null or a list of GPU indices >= 0, e.g. [0, 1]"
                )
            self.gpu_indices = indices

    def _check_figures(self) -> None:
        """How the readings become the run's figure: scope, the power model's watts, PUE, and
        codecarbon's tracking mode."""
        if self.scope not in SCOPES:
            raise ValueError(f"energy.scope={self.scope!r}: expected one of {', '.join(SCOPES)}")
        watts = self.cpu_watts_per_core
        if watts is not None and not (_is_finite_number(watts, 0.0) and watts > 0):
            raise ValueError(
                f"energy.cpu_watts_per_core={watts!r}: expected null or watts > 0, e.g. 4.0"
            )
        if not _is_finite_number(self.ram_watts_per_gb, 0.0):
            raise ValueError(
                f"energy.ram_watts_per_gb={self.ram_watts_per_gb!r}: expected watts >= 0, "
                "e.g. 0.3725"
            )
        if not (_is_finite_number(self.pue, 1.0) and self.pue <= 10):
            raise ValueError(f"energy.pue={self.pue!r}: expected a number from 1 to 10, e.g. 1.2")
        if self.codecarbon_tracking_mode not in TRACKING_MODES:
            raise ValueError(
                f"energy.codecarbon_tracking_mode={self.codecarbon_tracking_mode!r}: "
                f"expected one of {', '.join(TRACKING_MODES)}"
            )


@functools.cache
def energy_mix() -> dict[str, dict] | None:
    """codecarbon's offline energy mix per country (ISO-3 -> its entry, with
    `carbon_intensity` in g/kWh); None without codecarbon. Read from its data file: asking
    codecarbon (`DataSource`) costs pandas' import, ~0.7 s at every run start."""
    spec = importlib.util.find_spec("codecarbon")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _ENERGY_MIX
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):  # another codecarbon layout: ask it, slowly
        from codecarbon.input import DataSource

        found = DataSource().get_global_energy_mix_data()
    return found if isinstance(found, dict) else None


def known_countries() -> frozenset[str] | None:
    """ISO codes in codecarbon's offline energy mix; None without codecarbon (nothing to check
    against: the carbon figure then needs energy.carbon_intensity_g_per_kwh anyway)."""
    mix = energy_mix()
    return None if mix is None else frozenset(mix)


def _is_finite_number(value: object, minimum: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= minimum
    )
