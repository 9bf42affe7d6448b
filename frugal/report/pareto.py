"""Pareto frontier of (cost, score) points: minimise the cost, maximise the score."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence


def pareto_front(costs: Sequence[float | None], scores: Sequence[float | None]) -> list[bool]:
    """Which points no other point dominates.

    A point dominates another when it costs no more and scores no less, and is strictly better
    in one of the two. So exact duplicates of a frontier point are all on the frontier (neither
    dominates the other), while a point tied on one objective and worse on the other is not.
    Points with an unknown (``None``) or non-finite value are never on the frontier and never
    dominate. The cost may be energy (J) or training FLOPs; the score is usually accuracy.
    """
    if len(costs) != len(scores):
        raise ValueError(f"costs and scores differ in length: {len(costs)} != {len(scores)}")
    known = [i for i in range(len(costs)) if _finite(costs[i]) and _finite(scores[i])]
    on_front = [False] * len(costs)
    best_score = -math.inf  # best score among points of strictly lower cost
    # Sweep by cost ascending: at each cost, the top scorers are on the frontier iff they beat
    # everything cheaper.
    for _, group in itertools.groupby(
        sorted(known, key=lambda i: costs[i]), key=lambda i: costs[i]
    ):
        indices = list(group)
        top = max(scores[i] for i in indices)
        if top > best_score:
            for i in indices:
                on_front[i] = scores[i] == top
            best_score = top
    return on_front


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
