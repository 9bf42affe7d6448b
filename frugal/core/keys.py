"""The budget keys, once: each amount a budget can cap, by its name in the config
(`budget.energy`) and in `result.json`, the ledger and `BudgetSpec` (`energy_j`), with its
dimension (units and their parsing: `frugal.core.units`). Every other view of the keys below
is derived from `AMOUNT_KEYS`.
"""

from __future__ import annotations

from frugal.core.units import CARBON, COMPUTE, COUNT, ENERGY, MEMORY, SAMPLES, TIME, Dimension

# config key -> (result key, dimension), in result.json's order
AMOUNT_KEYS: dict[str, tuple[str, Dimension]] = {
    "energy": ("energy_j", ENERGY),
    "carbon": ("carbon_g", CARBON),
    "compute": ("compute_flop", COMPUTE),
    "data": ("data_samples", SAMPLES),
    "time": ("time_s", TIME),
    "memory": ("memory_bytes", MEMORY),
    "params": ("params", COUNT),
}
SPENT_KEYS = tuple(result_key for result_key, _ in AMOUNT_KEYS.values())  # energy_j, ...
CONFIG_KEY = {result_key: key for key, (result_key, _) in AMOUNT_KEYS.items()}  # energy_j -> energy
UNIT = {result_key: dim.si_unit for result_key, dim in AMOUNT_KEYS.values()}  # energy_j -> J
# Amounts that add up, across a run's restarts and across an envelope's jobs: memory is a peak
# and params a property of one model, capped per run.
ADDITIVE_KEYS = ("energy_j", "carbon_g", "compute_flop", "data_samples", "time_s")
