"""The stated power model used where no energy counter is readable (DESIGN.md, "What energy
means"): active watts per busy CPU thread and watts per GB of resident memory.

- CPU: the CPU's TDP from codecarbon's CPU database ÷ the logical CPUs this machine shows — the
  power per busy thread that codecarbon's own CPU-load model implies; for a CPU it does not
  list, codecarbon's default of 4 W per thread. `energy.cpu_watts_per_core` overrides (a
  virtual machine that shows a few threads of a large chip should set it).
- Memory: 0.3725 W per GB resident (Green Algorithms, Lannelongue et al., Adv. Sci. 2021),
  `energy.ram_watts_per_gb` overrides.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

RAM_WATTS_PER_GB = 0.3725  # Green Algorithms (Lannelongue, Grealey & Inouye, 2021)
DEFAULT_WATTS_PER_THREAD = 4.0  # codecarbon's figure for a CPU missing from its database
# Relative uncertainty of the model: TDP per thread stands for the active power of a busy
# thread within about a factor of 1.5 either way (turbo, SMT siblings, idle power not charged).
MODEL_UNCERTAINTY = 0.4
_CPU_POWER = "data/hardware/cpu_power.csv"  # codecarbon's CPU database, inside its package


@dataclass(frozen=True)
class PowerModel:
    cpu_watts_per_core: float
    ram_watts_per_gb: float
    cpu_source: str  # where the CPU figure comes from, for result.json

    def describe(self) -> dict[str, float | str]:
        return {
            "cpu_watts_per_core": self.cpu_watts_per_core,
            "ram_watts_per_gb": self.ram_watts_per_gb,
            "cpu_watts_source": self.cpu_source,
        }


def power_model(
    cpu_watts_per_core: float | None = None, ram_watts_per_gb: float | None = None
) -> PowerModel:
    """The model with the configured figures, the CPU's looked up where not configured (about
    1.5 s the first time: call it off the training thread)."""
    if cpu_watts_per_core is not None:
        cpu_w, source = float(cpu_watts_per_core), "config"
    else:
        cpu_w, source = cpu_watts_per_thread()
    ram_w = RAM_WATTS_PER_GB if ram_watts_per_gb is None else float(ram_watts_per_gb)
    return PowerModel(cpu_w, ram_w, source)


@functools.cache
def cpu_watts_per_thread() -> tuple[float, str]:
    """(watts per busy thread, source): this CPU's TDP in codecarbon's CPU database ÷ the
    logical CPUs, or codecarbon's default for a CPU it does not list. The model name is matched
    exactly, after the cleaning codecarbon also applies (its fuzzy matcher costs a second and a
    half of imports at every run start; an exact name is what a database row can vouch for)."""
    model = cpu_model_name()
    tdp_w = _tdp_of(model) if model else None
    if tdp_w is None:
        return (
            DEFAULT_WATTS_PER_THREAD,
            f"default 4 W per thread ({model or 'CPU'} not in database)",
        )
    threads = os.cpu_count() or 1
    return tdp_w / threads, f"codecarbon TDP {tdp_w:g} W ({model}) / {threads} threads"


def cpu_model_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The CPU's model name as the system reports it."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def clean_model_name(name: str) -> str:
    """ "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz" -> "Intel Xeon Gold 6148"."""
    name = re.sub(r"\((R|TM|tm|r)\)", "", name)
    name = re.sub(r"\s*@\s*[\d.]+\s*GHz", "", name)
    name = re.sub(r"\s+(CPU|Processor|\d+-Core Processor)$", "", name.strip())
    return re.sub(r"\s+", " ", name.replace(" CPU", "")).strip()


def _tdp_of(model: str) -> float | None:
    table = _codecarbon_tdp_table()
    for candidate in (model, clean_model_name(model)):
        tdp_w = table.get(candidate.lower())
        if tdp_w is not None:
            return tdp_w
    return None


@functools.cache
def _codecarbon_tdp_table() -> dict[str, float]:
    """Name (lower case) -> TDP in W, from codecarbon's `cpu_power.csv`; empty without it."""
    spec = importlib.util.find_spec("codecarbon")  # the data file, without importing codecarbon
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / _CPU_POWER
    table: dict[str, float] = {}
    try:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    table[row["Name"].strip().lower()] = float(row["TDP"])
                except (KeyError, TypeError, ValueError):
                    continue
    except OSError:
        return {}
    return table
