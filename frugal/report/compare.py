"""What a report compares: run labels, seed groups and Pareto frontiers, computed once for the
table and the plots."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from frugal.report.collect import Run
from frugal.report.pareto import pareto_front

# Runs that trained as planned. Refused runs did not train, interrupted ones were cut short by
# hand and diverged ones show a broken optimiser, not the cost of an accuracy: shown, never on
# the frontier.
FRONTIER_STATUSES = frozenset({"completed", "budget_exhausted"})
FRONTIER_MARK = "★"
_SEED_OVERRIDE = re.compile(r"^\+{0,2}seed=")
# Overrides that change how a run looks or where it writes, never what it trains: not part of
# a run's identity, so they neither split groups nor clutter labels.
_COSMETIC_OVERRIDE = re.compile(
    r"^[+~]{0,2}(hydra\.|paths\.|trainer\.enable_progress_bar=|trainer\.enable_model_summary=|"
    r"progress_refresh_rate=)"
)


@dataclass(frozen=True)
class Comparison:
    """Runs with their labels, seed groups and frontier membership, index-aligned."""

    runs: list[Run]
    labels: list[str]  # short, unique: the overrides that differ between runs
    groups: list[str]  # label of the run's config without its seed
    on_energy_front: list[bool]  # max test accuracy, min energy (J)
    on_flop_front: list[bool]  # max test accuracy, min training FLOPs

    def by_group(self) -> dict[str, list[int]]:
        """Run indices per config, in first-seen order."""
        members: dict[str, list[int]] = {}
        for i, group in enumerate(self.groups):
            members.setdefault(group, []).append(i)
        return members

    @property
    def has_seed_groups(self) -> bool:
        return any(len(indices) > 1 for indices in self.by_group().values())


def compare(runs: list[Run]) -> Comparison:
    eligible = [run.status in FRONTIER_STATUSES for run in runs]
    accuracies = [run.test_acc if ok else None for run, ok in zip(runs, eligible, strict=True)]
    return Comparison(
        runs=runs,
        labels=run_labels(runs),
        groups=group_labels(runs),
        on_energy_front=pareto_front([run.energy_j for run in runs], accuracies),
        on_flop_front=pareto_front([run.compute_flop for run in runs], accuracies),
    )


def config_key(run: Run) -> tuple[str, ...]:
    """What makes two runs the same config, seed apart: the overrides without ``seed=``, or the
    model and the budget when the run did not record its overrides."""
    if run.overrides is None:
        budget = (f"{key}={value}" for key, value in run.budget.items() if value is not None)
        return (f"model={run.model}", *budget)
    kept = (
        o for o in run.overrides if not (_SEED_OVERRIDE.match(o) or _COSMETIC_OVERRIDE.match(o))
    )
    return tuple(sorted(kept))


def group_labels(runs: list[Run]) -> list[str]:
    return _distinct_parts([config_key(run) for run in runs], fallback=[r.model for r in runs])


def run_labels(runs: list[Run]) -> list[str]:
    """The config label, plus the seed when several runs share a config, plus the directory name
    when that is still ambiguous."""
    labels = group_labels(runs)
    repeated = Counter(labels)
    labels = [
        f"{label} seed={run.seed}" if repeated[label] > 1 and run.seed is not None else label
        for label, run in zip(labels, runs, strict=True)
    ]
    repeated = Counter(labels)
    return [
        f"{label} ({run.dir.name})" if repeated[label] > 1 else label
        for label, run in zip(labels, runs, strict=True)
    ]


def _distinct_parts(keys: list[tuple[str, ...]], fallback: list[str]) -> list[str]:
    """Each key shortened to the parts not shared by every key (``model=cnn`` when only the model
    varies), with override names cut to their last component where that stays unambiguous
    (``energy=2kJ`` for ``budget.energy=2kJ``); ``fallback`` where nothing is left."""
    shared = set.intersection(*(set(key) for key in keys)) if len(keys) > 1 else set()
    varying = [[part for part in key if part not in shared] for key in keys]
    short = _short_override_names({part for parts in varying for part in parts})
    labels = [" ".join(short[part] for part in parts) for parts in varying]
    return [label or alt for label, alt in zip(labels, fallback, strict=True)]


def _short_override_names(overrides: set[str]) -> dict[str, str]:
    names = {o.partition("=")[0] for o in overrides if "=" in o}
    tails = Counter(name.rpartition(".")[2] for name in names)
    short = {}
    for override in overrides:
        name, equals, value = override.partition("=")
        tail = name.rpartition(".")[2]
        short[override] = f"{tail}={value}" if equals and tails[tail] == 1 else override
    return short
