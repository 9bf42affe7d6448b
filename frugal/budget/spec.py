"""The budget a run may spend: schema, parsing and validation (the contract in README,
"The budget").

`BudgetSpec.from_config(cfg.budget)` is called before any data or model is built; every
problem raises `ConfigError` with one line naming the key, the value and the accepted form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from frugal.core.errors import bad
from frugal.core.keys import ADDITIVE_KEYS, AMOUNT_KEYS, CONFIG_KEY, SPENT_KEYS
from frugal.core.units import COUNT, SAMPLES, Dimension, UnitError, parse_amount

ON_EXCEED = ("stop", "warn", "error")
PLAN_MODES = ("fit", "refuse", "off")
DEFAULT_ESTIMATE_MARGIN = 0.1  # stop 10 % short of an energy/carbon limit that is only estimated
DEFAULT_WARMUP_STEPS = 20  # steps measured before time/energy per step is forecast
DEFAULT_SEARCH_SHARE = 0.2  # of the budget, spent on pilot runs when a model size is `auto`
# Budget keys a sweep's envelope can share: the amounts that add up across jobs (memory and params
# are properties of one run, capped per run with budget.memory / budget.params).
SHARED = tuple(CONFIG_KEY[key] for key in ADDITIVE_KEYS)


def as_budget(field_name: str, amount: float) -> float | int:
    """`amount` as a budget value the config accepts: a whole number of samples, and never 0
    (a budget must be > 0): a run left with nothing is refused by its planner."""
    if field_name == "data_samples":
        return max(int(amount), 1)
    return max(float(amount), 1e-9)


@dataclass(frozen=True)
class BudgetSpec:
    """Limits in SI base units; None = unlimited (measured and reported, never enforced)."""

    energy_j: float | None = None
    carbon_g: float | None = None
    compute_flop: float | None = None
    data_samples: float | None = None
    time_s: float | None = None
    memory_bytes: float | None = None
    params: float | None = None
    on_exceed: str = "stop"
    plan: str = "fit"
    estimate_margin: float = DEFAULT_ESTIMATE_MARGIN
    warmup_steps: int = DEFAULT_WARMUP_STEPS
    search_share: float = DEFAULT_SEARCH_SHARE

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> BudgetSpec:
        cfg = dict(cfg or {})
        known = {*AMOUNT_KEYS, "on_exceed", "plan", "estimate_margin", "warmup_steps"}
        known.add("search_share")
        for key in cfg:
            if key not in known:
                accepted = ", ".join(sorted(known))
                raise bad(f"budget.{key}", ..., "unknown budget key", f"one of {accepted}")
        limits: dict[str, Any] = {}
        for key, (field_name, dim) in AMOUNT_KEYS.items():
            value = cfg.get(key)
            if value is None:
                continue
            try:
                limits[field_name] = parse_amount_for(key, value, dim)
            except UnitError as err:  # a 5,000-digit value: one short line (`shown`)
                raise bad(f"budget.{key}", value, err.problem, err.expected) from None
        on_exceed = _choice(cfg, "on_exceed", ON_EXCEED, "stop")
        plan = _choice(cfg, "plan", PLAN_MODES, "fit")
        margin = cfg.get("estimate_margin", DEFAULT_ESTIMATE_MARGIN)
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < 1:
            raise bad("budget.estimate_margin", margin, "", "a fraction in [0, 1), e.g. 0.1")
        warmup = cfg.get("warmup_steps", DEFAULT_WARMUP_STEPS)
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise bad("budget.warmup_steps", warmup, "", "a whole number >= 1")
        share = cfg.get("search_share", DEFAULT_SEARCH_SHARE)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
            raise bad("budget.search_share", share, "", "a fraction in (0, 1), e.g. 0.2")
        return cls(
            **limits,
            on_exceed=on_exceed,
            plan=plan,
            estimate_margin=float(margin),
            warmup_steps=warmup,
            search_share=float(share),
        )

    def limits(self) -> dict[str, float | None]:
        """result.json's `budget` section: every amount key, None where unlimited."""
        return {key: getattr(self, key) for key in SPENT_KEYS}

    def enforced(self) -> dict[str, float]:
        return {key: value for key, value in self.limits().items() if value is not None}

    @property
    def is_hard(self) -> bool:
        """A budget that can stop or fail the run (min_epochs/min_steps would delay the stop)."""
        return bool(self.enforced()) and self.on_exceed in ("stop", "error")


def parse_amount_for(key: str, value: object, dim: Dimension) -> float:
    amount = parse_amount(value, dim)
    if dim in (COUNT, SAMPLES) and amount != int(amount):
        raise UnitError("must be a whole number", f"an amount of {key} such as {dim.examples}")
    return amount


def _choice(cfg: Mapping[str, Any], key: str, accepted: tuple[str, ...], default: str) -> str:
    value = cfg.get(key, default)
    if value is None:
        return default
    if value not in accepted:
        raise bad(f"budget.{key}", value, "", f"one of {', '.join(accepted)}")
    return str(value)


# ---- a sweep's envelope: `sweep_budget.<key>=<amount>` (shared by the jobs, frugal.sweep) -----
def envelope_of(node: Mapping[str, Any] | None) -> dict[str, float | None]:
    """`sweep_budget` as SI amounts per result.json key (None: not shared); raises ConfigError."""
    node = dict(node or {})
    limits: dict[str, float | None] = dict.fromkeys(ADDITIVE_KEYS)
    for key, value in node.items():
        if value is None:
            continue
        if key not in SHARED:
            if key in AMOUNT_KEYS:
                problem = "a cap of each run, not a sum over jobs"
                raise bad(f"sweep_budget.{key}", ..., problem, f"budget.{key}")
            raise bad(f"sweep_budget.{key}", ..., "unknown key", f"one of {', '.join(SHARED)}")
        field_name, dim = AMOUNT_KEYS[key]
        try:
            limits[field_name] = parse_amount_for(key, value, dim)
        except UnitError as err:
            raise bad(f"sweep_budget.{key}", value, err.problem, err.expected) from None
    return limits


def declared(node: Mapping[str, Any] | None) -> bool:
    """Whether `sweep_budget` declares an envelope (any amount set)."""
    return any(value is not None for value in envelope_of(node).values())
