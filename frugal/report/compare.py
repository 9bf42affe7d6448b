"""What a report compares: run numbers, labels, seed groups, Pareto frontiers and whether the
energy axis resolves them, computed once for the table and the plots.

Runs on different datasets are never compared: every frontier, label and seed group is computed
within one dataset (name and content hash).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from frugal.core.pareto import pareto_front
from frugal.core.status import FRONTIER_STATUSES
from frugal.report.collect import Run

FRONTIER_MARK = "★"
_SEED_OVERRIDE = re.compile(r"^\+{0,2}seed=")
# Overrides that change how a run looks or where it writes, never what it trains: not part of
# a run's identity, so they neither split groups nor clutter labels.
_COSMETIC_OVERRIDE = re.compile(
    r"^[+~]{0,2}(hydra\.|paths\.|trainer\.enable_progress_bar=|trainer\.enable_model_summary=|"
    r"progress_refresh_rate=)"
)
_LONG_NUMBER = re.compile(r"^-?\d+\.\d{4,}(e-?\d+)?$|^-?\d\.\d{4,}e-?\d+$")


@dataclass(frozen=True)
class Unresolved:
    """Runs of one dataset whose energies differ by less than their uncertainty: their error
    bars overlap, so their order in energy is not known."""

    indices: tuple[int, ...]  # into Comparison.runs, by energy
    low_j: float
    high_j: float
    uncertainty: float  # the largest relative uncertainty among them
    estimated: bool  # one of them is an estimate
    assumed: bool  # one of them did not state its uncertainty
    whole: bool  # every run of the dataset that could be on the frontier is among them


@dataclass(frozen=True)
class Comparison:
    """Runs with their numbers, labels, groups and frontier membership, index-aligned. Runs are
    ordered by dataset (first seen first), then by directory."""

    runs: list[Run]
    labels: list[str]  # short, unique within a dataset: the overrides that differ between runs
    groups: list[str]  # label of the run's config without its seed
    datasets: list[str]  # Dataset.key of each run
    on_energy_front: list[bool]  # max test accuracy, min energy (J), within the dataset
    on_flop_front: list[bool]  # max test accuracy, min training FLOPs, within the dataset
    unresolved: dict[str, list[Unresolved]]  # dataset -> energy ties within uncertainty

    @property
    def numbers(self) -> list[int]:
        """The run numbers shown in the plots and the tables: 1, 2, ..."""
        return list(range(1, len(self.runs) + 1))

    def by_dataset(self) -> dict[str, list[int]]:
        """Run indices per dataset, in order."""
        return _indices_by(self.datasets)

    def by_group(self, indices: Sequence[int]) -> dict[str, list[int]]:
        """Indices per config among ``indices`` (one dataset's runs), in first-seen order."""
        return _indices_by([self.groups[i] for i in indices], indices)

    def has_seed_groups(self, indices: Sequence[int]) -> bool:
        return any(len(group) > 1 for group in self.by_group(indices).values())


def compare(runs: list[Run]) -> Comparison:
    first_seen = {key: k for k, key in enumerate(dict.fromkeys(r.dataset.key for r in runs))}
    runs = sorted(runs, key=lambda r: first_seen[r.dataset.key])  # stable: directory order
    n = len(runs)
    labels, groups = [""] * n, [""] * n
    on_energy, on_flop = [False] * n, [False] * n
    unresolved: dict[str, list[Unresolved]] = {}
    for dataset, indices in _indices_by([r.dataset.key for r in runs]).items():
        subset = [runs[i] for i in indices]
        eligible = [run.status in FRONTIER_STATUSES for run in subset]
        accuracies = [r.test_acc if ok else None for r, ok in zip(subset, eligible, strict=True)]
        energy_front = pareto_front([r.energy_j for r in subset], accuracies)
        flop_front = pareto_front([r.compute_flop for r in subset], accuracies)
        for k, i, label, group in zip(
            range(len(indices)), indices, run_labels(subset), group_labels(subset), strict=True
        ):
            labels[i], groups[i] = label, group
            on_energy[i], on_flop[i] = energy_front[k], flop_front[k]
        unresolved[dataset] = unresolved_energy(runs, indices, on_energy)
    return Comparison(
        runs=runs,
        labels=labels,
        groups=groups,
        datasets=[r.dataset.key for r in runs],
        on_energy_front=on_energy,
        on_flop_front=on_flop,
        unresolved=unresolved,
    )


def unresolved_energy(
    runs: Sequence[Run], indices: Sequence[int], on_front: Sequence[bool]
) -> list[Unresolved]:
    """Where the energy axis cannot order runs of one dataset (``indices``).

    Two energies are told apart when their uncertainty intervals ``E·(1 ± u)`` — the error bars
    of pareto.png — do not overlap. When the cheapest and the dearest run that could be on the
    frontier overlap, no energy difference among them means anything: one entry, ``whole``.
    Otherwise, each chain of frontier runs whose neighbours overlap (and whose energies are
    not all equal) is one entry.
    """
    candidates = sorted(
        (
            i
            for i in indices
            if runs[i].status in FRONTIER_STATUSES
            and runs[i].energy_j is not None
            and runs[i].test_acc is not None
        ),
        key=lambda i: runs[i].energy_j,  # type: ignore[arg-type, return-value]
    )
    if len(candidates) < 2:
        return []
    if _overlap(runs[candidates[0]], runs[candidates[-1]]):
        return [_unresolved(runs, candidates, whole=True)]
    front = [i for i in candidates if on_front[i]]
    chains: list[list[int]] = []
    for previous, current in itertools.pairwise(front):
        if not _overlap(runs[previous], runs[current]):
            continue
        if chains and chains[-1][-1] == previous:
            chains[-1].append(current)
        else:
            chains.append([previous, current])
    entries = [_unresolved(runs, chain, whole=False) for chain in chains]
    return [u for u in entries if u.high_j > u.low_j]  # equal energies have no order to resolve


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


def _overlap(cheaper: Run, dearer: Run) -> bool:
    """Whether the uncertainty intervals of two known energies overlap; ``cheaper`` costs no
    more than ``dearer``."""
    low, high = cheaper.energy_j, dearer.energy_j
    assert low is not None and high is not None
    return low * (1 + cheaper.energy_uncertainty) >= high * (1 - dearer.energy_uncertainty)


def _unresolved(runs: Sequence[Run], indices: Sequence[int], whole: bool) -> Unresolved:
    chosen = [runs[i] for i in indices]
    energies = [r.energy_j for r in chosen if r.energy_j is not None]
    return Unresolved(
        indices=tuple(indices),
        low_j=min(energies),
        high_j=max(energies),
        uncertainty=max(r.energy_uncertainty for r in chosen),
        estimated=any(r.energy_estimated for r in chosen),
        assumed=any(r.energy_uncertainty_assumed for r in chosen),
        whole=whole,
    )


def _indices_by(keys: Sequence[str], indices: Sequence[int] | None = None) -> dict[str, list[int]]:
    """``indices`` (default: positions of ``keys``) grouped by key, in first-seen order."""
    members: dict[str, list[int]] = {}
    for key, i in zip(keys, range(len(keys)) if indices is None else indices, strict=True):
        members.setdefault(key, []).append(i)
    return members


def _distinct_parts(keys: list[tuple[str, ...]], fallback: list[str]) -> list[str]:
    """Each key shortened to the parts not shared by every key (``model=cnn`` when only the model
    varies), with override names cut to their last component where that stays unambiguous
    (``energy=2kJ`` for ``budget.energy=2kJ``) and long numbers to 3 significant digits where
    the labels stay distinct (``lr=0.00123`` for an Optuna trial's ``lr=0.0012345678901234``);
    ``fallback`` where nothing is left."""
    shared = set.intersection(*(set(key) for key in keys)) if len(keys) > 1 else set()
    varying = [[part for part in key if part not in shared] for key in keys]
    short = _short_override_names({part for parts in varying for part in parts})
    exact = [" ".join(short[part] for part in parts) for parts in varying]
    rounded = [" ".join(_round_value(short[part]) for part in parts) for parts in varying]
    labels = rounded if len(set(rounded)) == len(set(exact)) else exact
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


def _round_value(override: str) -> str:
    name, equals, value = override.partition("=")
    if not equals or not _LONG_NUMBER.match(value):
        return override
    return f"{name}={float(value):.3g}"
