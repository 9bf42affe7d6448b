"""Per-step cost of the budgets only known once measured (time, energy, carbon), and the cost of
what follows a stop (the closing validation and checkpoint).

Training and evaluation are kept apart: the joules and seconds spent between the start of a
validation and the next training step (validation plus the checkpoint saves after it; the
callback measures them and passes their running total) are taken out of the training series,
so validations do not show up as jumps in the per-step cost. The per-step cost is the
least-squares slope of the cumulative training cost over a window of steps: a polled meter's
staircase or one slow step moves it little, where a two-point difference flaps (seen with
codecarbon's 1 s samples). Pure Python: no Lightning here.
"""

from __future__ import annotations

from collections import deque

FORECAST_KEYS = ("time_s", "energy_j")  # carbon follows energy: g = J × intensity
_EVALUATIONS_KEPT = 3  # the closing reserve is the largest of the last few evaluations


class CostForecaster:
    def __init__(self, window_steps: int = 200) -> None:
        if window_steps < 2:
            raise ValueError(f"window_steps={window_steps}: expected >= 2")
        self._points: deque[tuple[int, dict[str, float | None]]] = deque(maxlen=window_steps)
        self._evaluated: dict[str, float | None] = dict.fromkeys(FORECAST_KEYS, 0.0)
        self._evaluations: dict[str, deque[float]] = {
            key: deque(maxlen=_EVALUATIONS_KEPT) for key in FORECAST_KEYS
        }
        self._slope: dict[str, float | None] = dict.fromkeys(FORECAST_KEYS)
        self._saved: dict[str, float | None] = dict.fromkeys(FORECAST_KEYS, 0.0)
        self._saves: dict[str, deque[float]] = {
            key: deque(maxlen=_EVALUATIONS_KEPT) for key in FORECAST_KEYS
        }

    # ---- what the callback feeds in --------------------------------------------------------
    def observe_step(
        self,
        step: int,
        spent: dict[str, float | None],
        evaluated: dict[str, float | None],
        saved: dict[str, float | None] | None = None,
    ) -> None:
        """Cumulative spending of this segment right after training step `step`, the part of
        it spent on evaluations (validations with their checkpoint saves) so far, and the part
        of that spent on the checkpoint saves alone."""
        for key in FORECAST_KEYS:
            before, now = self._evaluated[key], evaluated.get(key)
            if before is not None and now is not None and now > before:
                self._evaluations[key].append(now - before)
            self._evaluated[key] = now
            saved_before, saved_now = self._saved[key], (saved or {}).get(key)
            if saved_before is not None and saved_now is not None and saved_now > saved_before:
                self._saves[key].append(saved_now - saved_before)
            self._saved[key] = saved_now
        self._points.append((step, self._training_part(spent)))

    def refit(self) -> None:
        """Recompute the per-step slopes (called at each re-plan, not every step)."""
        for key in FORECAST_KEYS:
            series = [(s, v[key]) for s, v in self._points if v[key] is not None]
            self._slope[key] = _slope(series)

    # ---- what the callback asks -------------------------------------------------------------
    def per_step(self, key: str) -> float | None:
        """Forecast cost of one training step: the window's slope, raised to the latest
        single-step cost when that is larger (a sudden slowdown is not averaged away)."""
        last = self._last_delta(key)
        slope = self._slope.get(key)
        known = [v for v in (slope, last) if v is not None]
        return max(known) if known else None

    def evaluation(self, key: str) -> float | None:
        """Cost of one validation with its checkpoint saves: the largest recently measured."""
        costs = self._evaluations.get(key)
        return max(costs) if costs else None

    def checkpoint(self, key: str) -> float | None:
        """Cost of the checkpoint saves after a validation: the largest recently measured."""
        costs = self._saves.get(key)
        return max(costs) if costs else None

    def _last_delta(self, key: str) -> float | None:
        if len(self._points) < 2:
            return None
        (s0, v0), (s1, v1) = self._points[-2], self._points[-1]
        a, b = v0.get(key), v1.get(key)
        if a is None or b is None or s1 <= s0:
            return None
        return max(b - a, 0.0) / (s1 - s0)

    def _training_part(self, spent: dict[str, float | None]) -> dict[str, float | None]:
        part: dict[str, float | None] = {}
        for key in FORECAST_KEYS:
            total, evaluated = spent.get(key), self._evaluated[key]
            part[key] = None if total is None or evaluated is None else total - evaluated
        return part


def _slope(series: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of value against step; None with fewer than two distinct steps."""
    n = len(series)
    if n < 2:
        return None
    mean_x = sum(s for s, _ in series) / n
    mean_y = sum(v for _, v in series) / n
    sxx = sum((s - mean_x) ** 2 for s, _ in series)
    if sxx == 0:
        return None
    sxy = sum((s - mean_x) * (v - mean_y) for s, v in series)
    return max(sxy / sxx, 0.0)
