"""Lifetime energy: training + N predictions, and where the ranking of runs changes with N.

A run's lifetime energy is a line in N: ``E(N) = T + c·N`` with ``T`` its training energy (plus
its source run's, for a compressed run) and ``c`` its measured inference joules per prediction.
Two runs' lines cross at most once, at the **break-even** ``N* = (T_b − T_a) / (c_a − c_b)``:
below it the run cheaper to train costs less over its lifetime, above it the run cheaper to
serve does.

Accuracy still matters: a run is on the **lifetime frontier** at N when no other run of its
dataset has both higher (or equal) test accuracy and lower (or equal) lifetime energy, one of
them strictly. Where another run dominates it is a ray of N (``[0, x]`` or ``[x, ∞)``, the two
lines being straight), so the set of N where a run is on the frontier is one interval — it
leaves the frontier at most once on each side — and the interval's ends are break-even points.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from frugal.core.status import FRONTIER_STATUSES
from frugal.report.collect import Run

MAX_BREAK_EVEN_ROWS = 30  # per dataset; more pairs are counted, not listed


@dataclass(frozen=True)
class Line:
    """One run's lifetime energy ``training_j + per_prediction_j × N``."""

    index: int  # into Comparison.runs
    training_j: float
    per_prediction_j: float
    accuracy: float | None

    def at(self, n: float) -> float:
        return self.training_j + self.per_prediction_j * n


@dataclass(frozen=True)
class BreakEven:
    """Runs ``cheap_first`` (less to train) and ``cheap_later`` (less per prediction) have equal
    lifetime energy at ``n`` predictions."""

    cheap_first: int  # run index
    cheap_later: int
    n: float
    energy_j: float  # the lifetime energy of both at n


@dataclass(frozen=True)
class FrontierSpan:
    """Where a run is on the lifetime frontier: ``low ≤ N ≤ high`` (``high`` may be ∞);
    ``None`` for a run on it at no N ≥ 0. ``entered_after``/``left_to``: the run that
    dominates it below ``low`` / above ``high`` (None: no bound on that side)."""

    low: float
    high: float
    entered_after: int | None
    left_to: int | None


def lifetime_line(run: Run, index: int, training_j: float | None) -> Line | None:
    """The run's line, or None when its training or its inference energy is unknown."""
    if training_j is None or run.inference_j_per_1k is None:
        return None
    return Line(index, float(training_j), float(run.inference_j_per_1k) / 1000, run.test_acc)


def break_even(a: Line, b: Line) -> BreakEven | None:
    """Where the lines of ``a`` and ``b`` cross at some N > 0; None when one costs no more at
    every N (or they are the same line)."""
    if a.training_j == b.training_j or a.per_prediction_j == b.per_prediction_j:
        return None
    first, later = (a, b) if a.training_j < b.training_j else (b, a)
    if later.per_prediction_j >= first.per_prediction_j:
        return None  # cheaper to train and to serve: cheaper at every N
    n = (later.training_j - first.training_j) / (first.per_prediction_j - later.per_prediction_j)
    return BreakEven(first.index, later.index, n, first.at(n))


def break_evens(lines: Sequence[Line]) -> list[BreakEven]:
    """Every pair's crossing, by N."""
    found = (break_even(a, b) for a, b in itertools.combinations(lines, 2))
    return sorted((b for b in found if b is not None), key=lambda b: (b.n, b.cheap_first))


def cheapest(lines: Sequence[Line], low: float = 0.0) -> list[tuple[float, int]]:
    """The lower envelope from N = ``low`` on, whatever the accuracy: ``(from N, run index)``
    per piece, in order (ties: the earlier run)."""
    if not lines:
        return []
    pieces: list[tuple[float, int]] = []
    n = low
    current = min(lines, key=lambda ln: (ln.at(n), ln.per_prediction_j, ln.index))
    pieces.append((n, current.index))
    while True:
        # The next line to undercut the current one: the smallest crossing beyond n.
        later = [
            (cross.n, line)
            for line in lines
            if line.per_prediction_j < current.per_prediction_j
            and (cross := break_even(current, line)) is not None
            and cross.n > n
        ]
        if not later:
            return pieces
        n = min(cross_n for cross_n, _ in later)
        current = min(
            (line for cross_n, line in later if cross_n == n),
            key=lambda ln: (ln.per_prediction_j, ln.index),
        )
        pieces.append((n, current.index))


def frontier_spans(lines: Sequence[Line]) -> dict[int, FrontierSpan | None]:
    """For each line (by run index): the N ≥ 0 where it is on the accuracy / lifetime-energy
    frontier. Lines without an accuracy are on it nowhere."""
    spans: dict[int, FrontierSpan | None] = {}
    for line in lines:
        if line.accuracy is None:
            spans[line.index] = None
            continue
        low, high = 0.0, math.inf
        entered_after = left_to = None
        empty = False
        for other in lines:
            if other is line or other.accuracy is None or other.accuracy < line.accuracy:
                continue
            region = _dominated(line, other)
            if region is None:
                continue
            side, x = region
            if side == "all":
                empty = True
                break
            if side == "below" and x >= low:  # dominated on [0, x]
                low, entered_after = x, other.index
            elif side == "above" and x <= high:  # dominated on [x, ∞)
                high, left_to = x, other.index
        if empty or low >= high:  # nowhere, or at a single N only
            spans[line.index] = None
        else:
            spans[line.index] = FrontierSpan(low, high, entered_after, left_to)
    return spans


def _dominated(line: Line, other: Line) -> tuple[str, float] | None:
    """Where ``other`` (accuracy ≥ the line's) dominates ``line``: ("all", 0), ("below", x)
    for N ≤ x, ("above", x) for N ≥ x, or None. Strictness: with equal accuracy, other must
    cost strictly less; with higher accuracy, no more."""
    assert other.accuracy is not None and line.accuracy is not None
    strict = other.accuracy == line.accuracy
    dt = other.training_j - line.training_j  # other minus line at N = 0
    dc = other.per_prediction_j - line.per_prediction_j  # slope of the difference
    # other dominates where d(N) = dt + dc·N is < 0 (strict) or <= 0.
    if dc == 0:
        return ("all", 0.0) if (dt < 0 if strict else dt <= 0) else None
    x = -dt / dc  # where the difference is 0
    if dc > 0:  # d grows: dominated for N up to x
        return ("below", x) if x > 0 else None
    # d falls: dominated from x on; from the start when it is already below at N = 0
    if x < 0 or (x == 0 and not strict):
        return ("all", 0.0)
    return ("above", x)


def eligible(run: Run) -> bool:
    """Runs whose lifetime is compared: trained as planned, with a test accuracy."""
    return run.status in FRONTIER_STATUSES and run.test_acc is not None


def training_energy_j(run: Run) -> float | None:
    """What training the run cost: its own energy plus, for a compressed run, its source run's
    (unknown when either is)."""
    own = run.spent["energy_j"]
    if run.compression is None:
        return own
    source = run.compression.source_spent["energy_j"]
    return None if own is None or source is None else own + source


def lifetime_energy_j(run: Run, inferences: float) -> float | None:
    """Training energy plus ``inferences`` predictions at the run's measured inference energy;
    unknown when either is."""
    line = lifetime_line(run, -1, training_energy_j(run))
    return None if line is None else line.at(inferences)


def dataset_lines(runs: Sequence[Run], indices: Sequence[int]) -> list[Line]:
    """The lifetime lines of one dataset's runs that trained as planned, have a test accuracy
    and known training and inference energy."""
    lines = []
    for i in indices:
        run = runs[i]
        line = lifetime_line(run, i, training_energy_j(run)) if eligible(run) else None
        if line is not None:
            lines.append(line)
    return lines
