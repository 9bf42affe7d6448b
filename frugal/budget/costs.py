"""What training costs, per budget key: one more step, a validation with its checkpoint saves,
the final checkpoint, and the reserve the stop rule keeps for what follows a stop.

Compute and data cost exactly what one measured step spends (`measured_step`, all ranks
together) and nothing to validate; time and energy cost what the forecast says
(`CostForecaster`, fed by the books), carbon follows energy (`carbon_g`: grams for a number
of joules, None when carbon is not counted). Pure Python: the callback reads the
validation schedule from the trainer and hands in its numbers (`val_batches`: batches per
validation, None when the run does not validate).
"""

from __future__ import annotations

from collections.abc import Callable

from frugal.budget.forecast import CostForecaster

FORECAST_KEYS = ("time_s", "energy_j", "carbon_g")  # known per step once measured


class CostModel:
    def __init__(
        self,
        forecast_window_steps: int = 200,
        carbon_g: Callable[[float], float] | None = None,
    ):
        self.forecast = CostForecaster(forecast_window_steps)
        self.carbon_g = carbon_g
        self._exact: dict[str, float] = {}  # one step's samples and FLOPs, all ranks
        self.flop_per_sample: float | None = None  # forward + backward, as measured

    def measured_step(self, samples: int, step_flop: float, world_size: int) -> None:
        """One training step on one rank: `samples` in its batch, `step_flop` to train on it."""
        self.flop_per_sample = step_flop / samples
        self._exact = {
            "data_samples": float(samples * world_size),
            "compute_flop": step_flop * world_size,
        }

    def per_step(self, key: str) -> float | None:
        """One more training step, all ranks together; None where not known (yet)."""
        if key in self._exact:
            return self._exact[key]
        if key == "carbon_g":
            return self._to_carbon(self.forecast.per_step("energy_j"))
        return self.forecast.per_step(key)

    def evaluation(self, key: str, val_batches: float | None) -> float:
        """A validation with its checkpoint saves: measured, or before the first one an
        estimate of one step per validation batch (forward only costs less: a safe side)."""
        if key in self._exact:
            return 0.0  # validation spends no training samples or FLOPs
        if key == "carbon_g":
            return self._to_carbon(self.evaluation("energy_j", val_batches)) or 0.0
        measured = self.forecast.evaluation(key)
        if measured is not None:
            return measured
        if val_batches is None:
            return 0.0
        return (self.per_step(key) or 0.0) * max(val_batches, 1)

    def checkpoint(self, key: str) -> float:
        """The final checkpoint: the largest recently measured save, at least one step."""
        step = self.per_step(key) or 0.0
        if key == "carbon_g":
            saved = self._to_carbon(self.forecast.checkpoint("energy_j"))
        else:
            saved = self.forecast.checkpoint(key)
        return max(step, saved or 0.0)

    def reserve(self, key: str, val_batches: float | None) -> float:
        """What a stop still spends: the closing validation and the final checkpoint."""
        if key in self._exact:
            return 0.0
        return self.evaluation(key, val_batches) + self.checkpoint(key)

    def to_continue(
        self, keys: dict[str, float], val_batches: float | None, validations: int
    ) -> dict[str, float]:
        """Per key: the next step, and for time and energy what must follow it — the
        `validations` due (after it, continuing, and at a stop after it) and the final
        checkpoint."""
        costs: dict[str, float] = {}
        for key in keys:
            step = self.per_step(key)
            if step is None:
                continue  # memory, params: checked as they stand
            if key in self._exact:
                costs[key] = step
                continue
            evaluation = self.evaluation(key, val_batches)
            costs[key] = step + self.checkpoint(key) + evaluation * validations
        return costs

    def rates(
        self, keys: dict[str, float], val_batches: float | None, interval: int | None
    ) -> tuple[dict[str, float], dict[str, float]]:
        """For planning: (per key, a step with its share of the validations `interval` steps
        apart; the reserve a stop needs)."""
        per_step: dict[str, float] = {}
        reserve: dict[str, float] = {}
        for key in keys:
            step = self.per_step(key)
            if step is None:
                continue
            if key in FORECAST_KEYS and interval:
                step += self.evaluation(key, val_batches) / interval  # validations on the way
            per_step[key] = step
            reserve[key] = self.reserve(key, val_batches)
        return per_step, reserve

    def spent_fractions(
        self,
        limits: dict[str, float],
        spent: dict[str, float | None],
        pending_steps: int,
        to_continue: dict[str, float],
    ) -> list[float]:
        """Per forecast budget, the fraction of what training steps may spend that is spent
        once `pending_steps` steps not booked yet are (at their forecast cost); 1 when the stop
        rule lets no step run after the next."""
        fractions: list[float] = []
        for key, limit in limits.items():
            used, per_step = spent.get(key), self.per_step(key)
            if key not in FORECAST_KEYS or used is None or not per_step:
                continue
            used += pending_steps * per_step
            # What training steps may spend, the one about to run included: the limit less
            # the final checkpoint (about a step). A closing validation, when one is due, is
            # caught by `last`: the same rule as the stop, so no step runs at LR 0.
            spendable = limit - self.checkpoint(key)
            last = used + per_step + to_continue.get(key, 0.0) > limit  # none after this one
            fractions.append(1.0 if last or spendable <= 0 else used / spendable)
        return fractions

    def _to_carbon(self, energy_j: float | None) -> float | None:
        if energy_j is None or self.carbon_g is None:
            return None
        return self.carbon_g(energy_j)
