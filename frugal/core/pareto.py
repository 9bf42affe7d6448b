"""The Pareto frontier, once: which points no other point dominates. The report's frontier
(cost against score, `pareto_front`) and the halving sweeper's NSGA-II ranking
(`non_dominated_fronts`) are both built on `first_front`."""

from __future__ import annotations

import math
from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a is no worse than b everywhere and better somewhere (every coordinate minimised)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def first_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices (ascending) of the points no other point dominates, every coordinate minimised.

    Exact duplicates of a frontier point are all on it (neither dominates the other). In
    lexicographic order a point can only be dominated by one before it, and then also by a
    frontier point before it: each point is checked against the frontier found so far.
    """
    front: list[int] = []
    for i in sorted(range(len(points)), key=lambda i: tuple(points[i])):
        if not any(dominates(points[j], points[i]) for j in front):
            front.append(i)
    return sorted(front)


def non_dominated_fronts(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """NSGA-II's non-dominated sort: indices of `points`, front by front (each ascending)."""
    fronts: list[list[int]] = []
    left = list(range(len(points)))
    while left:
        front = [left[i] for i in first_front([points[i] for i in left])]
        fronts.append(front)
        taken = set(front)
        left = [i for i in left if i not in taken]
    return fronts


def pareto_front(costs: Sequence[float | None], scores: Sequence[float | None]) -> list[bool]:
    """Which (cost, score) points are on the frontier: the cost minimised, the score maximised.

    A point dominates another when it costs no more and scores no less, and is strictly better
    in one of the two; so a point tied on one objective and worse on the other is not on it.
    Points with an unknown (``None``) or non-finite value are never on the frontier and never
    dominate. The cost may be energy (J) or training FLOPs; the score is usually accuracy.
    """
    if len(costs) != len(scores):
        raise ValueError(f"costs and scores differ in length: {len(costs)} != {len(scores)}")
    known = [i for i in range(len(costs)) if _finite(costs[i]) and _finite(scores[i])]
    points = [(float(costs[i]), -float(scores[i])) for i in known]  # type: ignore[arg-type]
    on_front = [False] * len(costs)
    for i in first_front(points):
        on_front[known[i]] = True
    return on_front


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
