"""Successive halving inside a sweep's budget envelope: the pure logic behind
`hydra/sweeper=halving` (the Hydra plugin is `hydra_plugins.frugal_sweepers.halving_sweeper`).

n configurations (the cartesian product of the sweep) run on a small budget each; the best
third is promoted and runs again from scratch on three times the budget, and so on until one
or two configurations remain (eta = 3 by default):

    top rung      R   = floor(log_eta n)                      (eta**R <= n < eta**(R + 1))
    rung sizes    n_r = floor(n / eta**r)  for r = 0..R        (12, 4, 1 for n = 12; 1 <= n_R < eta)
    promotion     the best n_(r+1) = floor(n_r / eta) of rung r (validation metrics only)
    budget        b_r = b0 * eta**r per trial, b0 such that sum_r n_r * b_r = what is left

The standard (Hyperband) plan: the floor keeps every rung a whole multiple of eta above the next.
A promoted trial continues from its lower rung's last weights (`init_from`, the sweeper's
`warm_start`, on by default) with a fresh optimizer and a budget-clocked schedule over its own,
longer horizon (a warm restart): what the lower rungs spent is not thrown away, so the top
trial has trained on b_0 + ... + b_R in all. `warm_start=false` trains every rung from scratch.

The budget is recomputed before every rung, per envelope key, from what the envelope really
has left after the earlier rungs (`remaining_for_rung`): trials that spent less than they
reserved hand the rest to the later rungs, and the top rung gets whatever is left. A trial
without usable metrics (refused, diverged, unenforceable, failed, or a metric unknown) is
ranked last and never promoted: nothing says it would do better with more; a rung then holds
fewer trials, and its share goes to those that did.

Promotion never looks at a test metric: `test/acc` is promoted by `val/acc` (the test set
judges the winner, it does not pick it). `*/loss` and spent amounts (`energy_j`, ...) are
better lower, other metrics (`*/acc`) higher. Several objectives rank by NSGA-II: non-dominated
fronts first, then crowding distance within a front.

No Hydra here: the sweeper turns these decisions into launches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from frugal.core.errors import bad
from frugal.core.keys import CONFIG_KEY
from frugal.core.pareto import non_dominated_fronts
from frugal.core.record import HALVING_FILE  # noqa: F401  (the sweeper writes it)
from frugal.core.status import FINAL_STATUSES, FRONTIER_STATUSES

DEFAULT_ETA = 3
SIGNIFICANT_DIGITS = 6  # of a budget on the command line (rounded down: never above the share)
LOWER_IS_BETTER = ("loss", "err", "mse", "mae", "rmse", "perplexity")


# ---- the rung plan ---------------------------------------------------------------------------
def top_rung(n_configs: int, eta: int = DEFAULT_ETA) -> int:
    """R = floor(log_eta n), in integers (a float log misses exact powers: log(243, 3))."""
    _check_plan_args(n_configs, eta)
    rung = 0
    while eta ** (rung + 1) <= n_configs:
        rung += 1
    return rung


def rung_sizes(n_configs: int, eta: int = DEFAULT_ETA) -> list[int]:
    """Trials per rung: n_r = floor(n / eta**r), r = 0..R; the top rung holds 1 to eta - 1."""
    return [n_configs // eta**rung for rung in range(top_rung(n_configs, eta) + 1)]


def rung_offsets(sizes: Sequence[int]) -> list[int]:
    """The first job number of each rung: sum of the planned sizes below it. Fixed by the plan,
    so a relaunched sweep maps every trial to the same job (and job directory)."""
    offsets, total = [], 0
    for size in sizes:
        offsets.append(total)
        total += size
    return offsets


def check_settings(settings: Mapping[str, Any]) -> None:
    """The sweeper's own settings (`hydra.sweeper.*`), checked on the command line before
    anything is launched or written (and again when Hydra builds the sweeper). ConfigError."""
    eta = settings.get("eta", DEFAULT_ETA)
    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise bad(
            "hydra.sweeper.eta",
            eta,
            "not accepted",
            "a whole number >= 2 (rung r+1 keeps 1/eta of rung r's trials), e.g. 3",
        )
    warm_start = settings.get("warm_start", True)
    if not isinstance(warm_start, bool):
        raise bad("hydra.sweeper.warm_start", warm_start, "", "true or false")
    params = settings.get("params")
    if params is not None and not isinstance(params, Mapping):
        raise bad(
            "hydra.sweeper.params",
            params,
            "not a group of keys",
            "null or {key: 'a,b,c'}, e.g. hydra.sweeper.params={optimizer.lr: '1e-3,3e-3'}",
        )


def _check_plan_args(n_configs: int, eta: int) -> None:
    if n_configs < 1:
        raise ValueError(f"successive halving needs at least one configuration, got {n_configs}")
    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise ValueError(f"hydra.sweeper.eta={eta!r}: expected a whole number >= 2")


# ---- the allocation --------------------------------------------------------------------------
def sizes_from(planned: Sequence[int], rung: int, n_now: int) -> list[int]:
    """Sizes of rungs `rung`..R when rung `rung` really holds `n_now` trials (fewer than planned
    when trials below had no metrics): no later rung holds more than this one."""
    return [n_now] + [min(size, n_now) for size in planned[rung + 1 :]]


def rung_weight(sizes: Sequence[int], eta: int) -> float:
    """sum_s n_s * eta**s over `sizes` (rung `rung` first): the envelope in units of b_rung."""
    return float(sum(size * eta**step for step, size in enumerate(sizes)))


def per_trial_budget(
    left: Mapping[str, float], sizes: Sequence[int], eta: int = DEFAULT_ETA
) -> dict[str, float]:
    """b_r per envelope key, so that `sizes[0]` trials at b_r, `sizes[1]` at eta * b_r, ...
    spend exactly `left` (what the envelope holds for this rung and the later ones)."""
    weight = rung_weight(sizes, eta)
    if weight <= 0:
        return dict.fromkeys(left, 0.0)
    return {key: max(float(amount), 0.0) / weight for key, amount in left.items()}


def remaining_for_rung(
    state: Mapping[str, Any], earlier_job_ids: Sequence[str], remaining: Any
) -> dict[str, float]:
    """What the envelope holds for this rung and the later ones: the envelope less what the
    earlier rungs' jobs are charged (`remaining`, from `frugal.sweep.envelope`, computed on a
    state holding only those jobs). This rung's own jobs are left out, so a relaunched sweep
    gets the same budget for a rung some of whose trials already ran."""
    jobs = state.get("jobs") or {}
    earlier = {job_id: jobs[job_id] for job_id in earlier_job_ids if job_id in jobs}
    return dict(remaining({**state, "jobs": earlier}))


def budget_overrides(budget: Mapping[str, float]) -> list[str]:
    """`budget.<key>=<amount>` in the SI unit of each envelope key (joules, grams, FLOP,
    samples, seconds), rounded down so that a trial never asks for more than its share."""
    return [
        f"budget.{CONFIG_KEY[field_name]}={amount_text(field_name, amount)}"
        for field_name, amount in budget.items()
    ]


def amount_text(field_name: str, amount: float) -> str:
    if field_name == "data_samples":
        return str(max(int(amount), 0))  # whole samples
    return f"{round_down(amount):.{SIGNIFICANT_DIGITS}g}"


def round_down(amount: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    if amount <= 0 or not math.isfinite(amount):
        return 0.0
    scale = 10.0 ** (math.floor(math.log10(amount)) - digits + 1)
    return math.floor(amount / scale + 1e-9) * scale  # 1e-9: 48/1e-4 is 479999.99999999994


def spent_out(budget: Mapping[str, float]) -> bool:
    """True when some key has nothing left to give a trial (a budget must be > 0)."""
    return any(float(amount_text(key, amount)) <= 0 for key, amount in budget.items())


# ---- objectives ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Objective:
    name: str  # as configured: test/acc, val/loss, energy_j
    key: str  # what promotion reads: val/acc for test/acc
    maximize: bool


def objective(name: str) -> Objective:
    """`test/X` is promoted by `val/X` (never by the test set); a name without a stage
    (`energy_j`) is a spent amount, better lower; `*/loss` lower, other metrics higher."""
    stage, _, metric = name.rpartition("/")
    key = f"val/{metric}" if stage == "test" else name
    if not stage:
        return Objective(name, key, maximize=False)
    lower = any(word in metric.lower() for word in LOWER_IS_BETTER)
    return Objective(name, key, maximize=not lower)


def objectives_of(names: Any) -> list[Objective]:
    names = [names] if isinstance(names, str) else list(names or ["test/acc"])
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"objectives={names!r}: expected metric names, e.g. [test/acc, energy_j]")
    return [objective(name) for name in names]


def outcome_values(
    job: Mapping[str, Any] | None, result: Mapping[str, Any] | None
) -> dict[str, float] | None:
    """A trial's metrics and spent amounts, flat (`val/acc`, `energy_j`), from its result.json
    (else its envelope entry); None unless it ended in a status that may be promoted."""
    source = result if result and result.get("status") else job
    if not source or source.get("status") not in FRONTIER_STATUSES:  # trained as planned
        return None
    values: dict[str, float] = {}
    for part in ("spent", "metrics"):
        for key, value in (source.get(part) or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[key] = float(value)
    return values


def minimised(
    values: Mapping[str, float] | None, objectives: Sequence[Objective]
) -> tuple[float, ...] | None:
    """The objective vector, every entry better lower; None when any is unknown."""
    if values is None:
        return None
    vector = []
    for obj in objectives:
        value = values.get(obj.key)
        if value is None or not math.isfinite(value):
            return None
        vector.append(-value if obj.maximize else value)
    return tuple(vector)


# ---- ranking and promotion -------------------------------------------------------------------
def crowding_distance(points: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II's crowding distance in one front: the ends of each objective are infinite, so
    a front's extremes (the best trial of each objective) survive first."""
    distance = dict.fromkeys(front, 0.0)
    if len(front) <= 2:
        return dict.fromkeys(front, math.inf)
    for m in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: points[i][m])
        low, high = points[ordered[0]][m], points[ordered[-1]][m]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for before, here, after in zip(ordered, ordered[1:], ordered[2:], strict=False):
            distance[here] += (points[after][m] - points[before][m]) / (high - low)
    return distance


def rank(
    candidates: Mapping[Hashable, Mapping[str, float] | None], objectives: Sequence[Objective]
) -> list[Hashable]:
    """Candidates best first: one objective by its value, several by NSGA-II (front, then
    crowding distance); ties keep the candidates' order; those without metrics come last."""
    keys = list(candidates)
    vectors = {key: minimised(candidates[key], objectives) for key in keys}
    scored = [key for key in keys if vectors[key] is not None]
    unscored = [key for key in keys if vectors[key] is None]
    points = [vectors[key] for key in scored]
    if len(objectives) == 1:
        order = sorted(range(len(scored)), key=lambda i: (points[i][0], i))
    else:
        order = []
        for front in non_dominated_fronts(points):
            crowding = crowding_distance(points, front)
            order += sorted(front, key=lambda i: (-crowding[i], i))
    return [scored[i] for i in order] + unscored


def promote(
    candidates: Mapping[Hashable, Mapping[str, float] | None],
    n_promoted: int,
    objectives: Sequence[Objective],
) -> list[Hashable]:
    """The best `n_promoted` candidates that have metrics, best first."""
    ranked = rank(candidates, objectives)
    usable = [key for key in ranked if minimised(candidates[key], objectives) is not None]
    return usable[: max(n_promoted, 0)]


# ---- trials and resume -----------------------------------------------------------------------
@dataclass
class Trial:
    """One configuration at one rung: one job of the sweep."""

    config: int  # index into the sweep's configurations
    rung: int
    job_num: int  # Hydra's job number (hydra.job.num)
    overrides: list[str]  # the configuration's, then budget.<key>=<b_r>
    job_id: str = ""  # its hydra.sweep.subdir (the envelope's job key)
    continues: str | None = None  # the lower rung's job whose weights it starts from
    values: dict[str, float] | None = field(default=None, repr=False)


def rung_trials(
    configs: Sequence[Sequence[str]], alive: Sequence[int], rung: int, first_job: int, budget: dict
) -> list[Trial]:
    """Rung `rung`'s trials in configuration order, numbered from `first_job`."""
    extra = budget_overrides(budget)
    return [
        Trial(config=c, rung=rung, job_num=first_job + i, overrides=[*configs[c], *extra])
        for i, c in enumerate(sorted(alive))
    ]


def lower_trial(trial: Trial, earlier: Sequence[Trial]) -> Trial | None:
    """The same configuration's trial one rung below: the one a promoted trial continues."""
    return next((t for t in earlier if t.config == trial.config and t.rung == trial.rung - 1), None)


def override_text(value: str) -> str:
    """`value` quoted for Hydra's override parser, which reads it back unchanged (a path may
    hold `,`, `=` or spaces): quotes, and backslashes before a quote or the end, escaped."""
    escaped = re.sub(r"(\\*)'", lambda m: m[1] * 2 + "\\'", value)
    escaped = re.sub(r"(\\+)$", lambda m: m[1] * 2, escaped)
    return f"'{escaped}'"


def is_final(job: Mapping[str, Any] | None, result: Mapping[str, Any] | None) -> bool:
    """A trial that ended for good in an earlier launch (its envelope entry or its result.json
    says so): its record is reused. Missing, running (killed) or interrupted: launch it."""
    return any(
        source is not None and source.get("status") in FINAL_STATUSES for source in (job, result)
    )


def select_to_launch(
    trials: Sequence[Trial],
    jobs: Mapping[str, Mapping[str, Any]],
    results: Mapping[str, Mapping[str, Any] | None],
) -> tuple[list[Trial], list[Trial]]:
    """(trials to launch, trials whose earlier result is reused), both in job order."""
    launch, reuse = [], []
    for trial in trials:
        done = is_final(jobs.get(trial.job_id), results.get(trial.job_id))
        (reuse if done else launch).append(trial)
    return launch, reuse


def contiguous(trials: Sequence[Trial], max_batch: int | None = None) -> list[list[Trial]]:
    """Launch batches of consecutive job numbers (a launcher numbers a batch from its first
    job), at most `max_batch` each."""
    batches: list[list[Trial]] = []
    for trial in sorted(trials, key=lambda t: t.job_num):
        last = batches[-1] if batches else None
        if (
            last is not None
            and last[-1].job_num + 1 == trial.job_num
            and (max_batch is None or len(last) < max_batch)
        ):
            last.append(trial)
        else:
            batches.append([trial])
    return batches
