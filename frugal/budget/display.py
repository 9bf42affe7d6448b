"""What a run shows of its budgets while it trains: each enforced budget's use for the progress
bar and the log lines (`energy 1.2/2 kJ est.`), and the metrics the loggers record."""

from __future__ import annotations

from frugal.budget.decision import METERED
from frugal.budget.plan import describe_use
from frugal.core.keys import CONFIG_KEY


def budget_use(
    limits: dict[str, float], spent: dict[str, float | None], energy_estimated: bool
) -> dict[str, str]:
    """Per config key, `spent/limit unit` of each budget in `limits`; `est.` after energy and
    carbon when the energy is an estimate."""
    estimated = METERED if energy_estimated else ()
    return {
        CONFIG_KEY[key]: describe_use(key, spent.get(key), limit, key in estimated)
        for key, limit in limits.items()
    }


def budget_metrics(limits: dict[str, float], spent: dict[str, float | None]) -> dict[str, float]:
    """`budget/<key>_used` and `budget/<key>_frac` of each budget in `limits` known so far."""
    metrics: dict[str, float] = {}
    for key, limit in limits.items():
        used = spent.get(key)
        if used is not None:
            metrics[f"budget/{CONFIG_KEY[key]}_used"] = used
            metrics[f"budget/{CONFIG_KEY[key]}_frac"] = used / limit
    return metrics
