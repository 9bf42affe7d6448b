"""`model.kwargs.width_mult=auto` (or `depth=auto`): given only a budget, the size that fits.

The planner spends `budget.search_share` of the run's budget (default 0.2) on short pilot runs,
one per size of the ladder (`size_search.width_mult`, `size_search.depth`), each with an equal
part of that share. Each pilot's validation curve (`size_search.metric` against the budget it
spent) is fitted with a saturating power law (`frugal.core.curves`) and extrapolated to what
the size would have spent by the end: its pilot's spending plus everything left after the
pilots (`size_search.warm_start`: the chosen size continues from its pilot's weights, with a
fresh optimizer and schedule). The size with the best predicted result is trained with the
rest of the budget. Pilots included, the run stays within its budget: the final run's budget is
the declared one less what the pilots really spent.

The run directory holds the final run's outputs; pilots write to `pilots/<knob>=<size>/` (their
`result.json` says `run.role: pilot`). The run's `result.json` books the pilots' spending in
`spent`, keeps the declared `budget`, and records the search in `size_search`: candidates,
fits, predictions, the choice, and what the choice then achieved.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf, open_dict

from frugal.budget.spec import BudgetSpec, as_budget
from frugal.config.resolve import plain
from frugal.config.size_search import axis_of, ladder, searched, with_size
from frugal.config.sources import data_shape
from frugal.core.curves import JointLaw, as_error, fit_joint_law, from_error
from frugal.core.keys import ADDITIVE_KEYS, CONFIG_KEY
from frugal.core.record import CHOICE_FILE, MalformedError, SizeChoice, parse
from frugal.core.status import FRONTIER_STATUSES, RESUMABLE_STATUSES
from frugal.core.units import percent
from frugal.models.accounting import flop_per_sample
from frugal.models.registry import build_model
from frugal.runs.attempts import kept_charge, left_behind, set_aside
from frugal.runs.record import (
    LAST_CKPT,
    RESULT_FILE,
    read_json_object,
    read_result,
    write_json_atomic,
)
from frugal.sweep.size_record import pilot_candidate, search_record

log = logging.getLogger("frugal")

PILOTS_DIR = "pilots"
MIN_VAL_EVERY = 5  # steps: validating more often would spend a pilot's budget on validation


# ---- the search ------------------------------------------------------------------------------
TrainOne = Callable[..., tuple[dict[str, Any], dict[str, Any]]]


@dataclass(frozen=True)
class Search:
    """One size search, as configured: its run, budget, ladder and the metric it predicts."""

    cfg: Any
    node: dict[str, Any]  # the configuration resolved, Hydra's own node left out
    budget: BudgetSpec
    run_dir: Path
    axis: str  # the budget key the search divides (`axis_of`)
    sizes: list[dict[str, Any]]

    @property
    def settings(self) -> dict[str, Any]:
        return self.node["size_search"]

    @property
    def metric(self) -> str:
        return str(self.settings["metric"])


@dataclass(frozen=True)
class FinalPlan:
    """What the final run is given, once every pilot has run."""

    chosen: dict[str, Any]
    budget: dict[str, float]  # per key: what is left after the pilots and set-aside attempts
    ckpt: Path | None  # an interrupted final run goes on from here
    pilot_spent: dict[str, float | None]
    set_aside: dict[str, float | None]
    joint: JointLaw | None


def search_and_train(
    cfg: Any, budget: BudgetSpec, train_one: TrainOne, **kwargs: Any
) -> tuple[dict, dict]:
    """Pilots, fits, the choice, then the final run; returns the final run's (result, objects)
    with the search booked in and recorded. `budget`: the search's, as checked;
    `train_one(cfg, init_from=..., **kwargs)` is one ordinary run (`frugal.pipeline`)."""
    node = plain(cfg)  # resolved, Hydra's own node left out
    run_dir = Path(str(cfg.paths.output_dir))
    finished = _finished(run_dir)
    if finished is not None and "size_search" in finished:  # resumed with nothing left to do
        log.info("size search: finished in an earlier attempt; %s", run_dir / RESULT_FILE)
        return finished, {}
    axis = axis_of(budget)
    assert axis is not None  # checked at start-up (check_search)
    search = Search(cfg, node, budget, run_dir, axis, ladder(node))
    log.info(
        "size search: %d sizes of %s, %s of the budget for pilots",
        len(search.sizes),
        "/".join(searched(node)),
        percent(budget.search_share),
    )
    candidates = []
    for candidate, result in _pilots(search, train_one, kwargs):
        candidates.append(candidate)
        if result.get("status") in RESUMABLE_STATUSES:  # stopped: resume=<run> goes on
            return result, {}
    return _train_final(search, candidates, _plan_final(search, candidates), train_one, kwargs)


def _pilots(
    search: Search, train_one: TrainOne, kwargs: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Each size's pilot, run (or found finished in an earlier attempt): (its candidate, its
    result), smallest size first."""
    budget = search.budget
    previous: dict[str, Any] | None = None
    part = budget.search_share / len(search.sizes)
    pilot_allowance = _allowance(budget, {k: v * part for k, v in budget.enforced().items()})
    for size in search.sizes:
        pilot_dir = search.run_dir / PILOTS_DIR / _label(size)
        result = _finished(pilot_dir)
        if result is None:
            every = _val_every(search.node, size, previous, search.settings)
            ckpt = _continued(pilot_dir, pilot_allowance)
            pilot_cfg = _pilot_config(search.cfg, size, budget, part, pilot_dir, every, ckpt)
            result, _ = train_one(pilot_cfg, **kwargs)
            result.setdefault("run", {})["role"] = "pilot"
            write_json_atomic(pilot_dir / RESULT_FILE, result)
        candidate = pilot_candidate(size, pilot_dir, result, search.axis, search.metric)
        candidate["set_aside"] = kept_charge(pilot_dir, pilot_allowance)
        previous = result
        yield candidate, result


def _plan_final(search: Search, candidates: list[dict[str, Any]]) -> FinalPlan:
    """The fits, each size's prediction at the end of the budget, the choice (kept on disk:
    an interrupted final run's checkpoint fits no other size) and the final run's budget."""
    budget, run_dir, axis, metric = search.budget, search.run_dir, search.axis, search.metric
    joint = _fit_across_sizes(candidates, metric)
    pilot_spent = _sum_spent([c[kind] for c in candidates for kind in ("spent", "set_aside")])
    # the final run's attempts killed before their first checkpoint are charged too
    final_allowance = _allowance(budget, _left(budget, pilot_spent))
    final_ckpt = _continued(run_dir, final_allowance)
    set_aside = kept_charge(run_dir, final_allowance)
    final_budget = _left(budget, _sum_spent([pilot_spent, set_aside]))
    margin = _margin(candidates, axis)
    for candidate in candidates:
        own = candidate["spent"].get(axis) or 0.0
        at = (own if search.settings["warm_start"] else 0.0) + final_budget[axis] * (1 - margin)
        candidate["predicted_at"] = at
        predicted = candidate["_fit"].predict(at)
        candidate["predicted"] = None if predicted is None else from_error(metric, predicted)
    chosen = _choose(candidates, metric, _read_choice(run_dir) if final_ckpt else None)
    write_json_atomic(run_dir / PILOTS_DIR / CHOICE_FILE, {"size": chosen["size"]})
    log.info(
        "size search: chose %s (predicted %s %.4g); final run with %s",
        _label(chosen["size"]),
        metric,
        chosen["predicted"] if chosen["predicted"] is not None else math.nan,
        ", ".join(f"{k}={v:.4g}" for k, v in final_budget.items() if v is not None),
    )
    return FinalPlan(chosen, final_budget, final_ckpt, pilot_spent, set_aside, joint)


def _train_final(
    search: Search,
    candidates: list[dict[str, Any]],
    plan: FinalPlan,
    train_one: TrainOne,
    kwargs: dict[str, Any],
) -> tuple[dict, dict]:
    """The chosen size trained with what is left; its result books the pilots' spending and
    records the search."""
    warm_start = search.settings["warm_start"]
    final_cfg = _final_config(search.cfg, plan.chosen["size"], plan.budget, plan.ckpt)
    init_from = None
    if warm_start:
        last = Path(plan.chosen["dir"]) / LAST_CKPT
        init_from = last if last.is_file() and plan.ckpt is None else None
    result, objects = train_one(final_cfg, init_from=init_from, **kwargs)
    result = _booked(result, search.budget, _sum_spent([plan.pilot_spent, plan.set_aside]))
    result["size_search"] = {"law": plan.joint.record() if plan.joint else None} | search_record(
        search.settings,
        search.metric,
        search.axis,
        search.budget,
        search.budget.search_share,
        candidates,
        plan.chosen,
        plan.pilot_spent,
        plan.budget,
        search.run_dir,
        result,
        warm_start and Path(plan.chosen["dir"], LAST_CKPT).is_file(),
    )
    result["size_search"]["final_set_aside"] = plan.set_aside
    write_json_atomic(search.run_dir / RESULT_FILE, result)
    return result, objects


def _continued(run_dir: Path, allowance: Mapping[str, float | None]) -> Path | None:
    """How an unfinished part of a search (a pilot, the final run) goes on when the search is
    resumed: from its last checkpoint, its ledger with it; an attempt that left no checkpoint
    is set aside under `attempts/` and charged (`frugal.runs.attempts`); the part starts again."""
    last = run_dir / LAST_CKPT
    if last.is_file():
        return last
    if left_behind(run_dir):
        set_aside(run_dir, allowance)
    return None


def _allowance(budget: BudgetSpec, amounts: Mapping[str, float]) -> dict[str, float | None]:
    """What an attempt of unknown spending is charged, per cumulative key: all it was allowed
    where the key is enforced, unknown (None) where it is not."""
    enforced = budget.enforced()
    return {key: amounts.get(key) if key in enforced else None for key in ADDITIVE_KEYS}


def _read_choice(run_dir: Path) -> dict[str, Any] | None:
    """The size an interrupted final run was training (its checkpoint fits no other)."""
    saved = read_json_object(run_dir / PILOTS_DIR / CHOICE_FILE)
    try:
        return parse(SizeChoice, saved, CHOICE_FILE).size
    except MalformedError:  # absent or unusable: the search chooses again
        return None


def _fit_across_sizes(candidates: list[dict[str, Any]], metric: str) -> JointLaw | None:
    """One law for every size (`frugal.core.curves.JointLaw`), fitted on all pilots' points
    against parameters and samples seen; each candidate's own fit is then that law's slice
    for its size. Without it (too few points, a failed fit) each size keeps its own fit."""
    triples = [
        (c["_params"], d, as_error(metric, y)) for c in candidates for d, y in c["_samples_points"]
    ]
    joint = fit_joint_law(triples)
    if joint is None:
        return None
    for candidate in candidates:
        per_x = candidate["_samples_per_x"]
        if per_x:
            candidate["_fit"] = joint.per_size(candidate["_params"], per_x)
            candidate["fit"] = {**candidate["_fit"].record(), "from": "joint"}
    return joint


def _label(size: Mapping[str, Any]) -> str:
    return ",".join(f"{knob}={value:g}" for knob, value in size.items())


def _finished(run_dir: Path) -> dict[str, Any] | None:
    """A pilot (or the search) that finished in an earlier attempt of this run is reused, not
    run again."""
    result = read_result(run_dir)
    return result if result is not None and result.get("status") in FRONTIER_STATUSES else None


def _pilot_config(
    cfg: Any,
    size: Mapping[str, Any],
    budget: BudgetSpec,
    part: float,
    pilot_dir: Path,
    val_every_steps: int,
    ckpt: Path | None = None,
) -> Any:
    """One pilot: this size, `part` of every cumulative budget, a constant learning rate (a
    decaying schedule would flatten the curve by itself, not by what the size can learn),
    validated often enough to fit a curve, no inference measurement, its own directory."""
    pilot = copy.deepcopy(cfg)
    with open_dict(pilot):
        for knob, value in size.items():
            pilot.model.kwargs[knob] = value
        for key, limit in budget.enforced().items():
            if key in ADDITIVE_KEYS:
                pilot.budget[CONFIG_KEY[key]] = as_budget(key, limit * part)
        pilot.paths.output_dir = str(pilot_dir)
        pilot.ckpt_path = None if ckpt is None else str(ckpt)  # an interrupted pilot goes on
        pilot.resume = None
        pilot.trainer.default_root_dir = str(pilot_dir)
        pilot.trainer.check_val_every_n_epoch = None
        pilot.trainer.val_check_interval = val_every_steps
        pilot.scheduler = None
        pilot.inference.enabled = False
        pilot.logger = None
        pilot.sweep_budget = None
    return pilot


def _val_every(
    node: Mapping[str, Any],
    size: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    search: Mapping[str, Any],
) -> int:
    """Validation interval of a pilot, so that its curve has about `size_search.validations`
    points: the steps it will run are guessed from the previous (smaller) pilot's steps scaled
    by their FLOPs per sample. That under-guesses a larger model's steps (small models are
    overhead-bound), which only adds points. The first pilot uses `val_every_steps`."""
    default = int(search["val_every_steps"])
    if previous is None:
        return default
    steps = previous.get("steps")
    flop_before = ((previous.get("model") or {}).get("flop_per_sample") or {}).get("dense")
    flop_now = _flop_per_sample(node, size)
    if not steps or not flop_before or not flop_now:
        return default
    expected = steps * flop_before / flop_now
    return max(MIN_VAL_EVERY, min(default, int(expected // int(search["validations"]))))


def _flop_per_sample(node: Mapping[str, Any], size: Mapping[str, Any]) -> float | None:
    """Forward FLOPs per sample of the model at `size` (None when the data's shape is only
    known once the data is built: the user's own data module)."""
    shape = data_shape(node["data"])
    if shape is None:
        return None
    model = with_size(dict(node), size)["model"]
    try:
        built = build_model(OmegaConf.create(model), *shape)
        return float(flop_per_sample(built, shape[0])["dense"])
    except Exception:  # the run will say what is wrong with this size
        return None


def _final_config(
    cfg: Any, size: Mapping[str, Any], final_budget: dict[str, float], ckpt: Path | None
) -> Any:
    final = copy.deepcopy(cfg)
    with open_dict(final):
        final.ckpt_path = None if ckpt is None else str(ckpt)  # an interrupted final run goes on
        final.resume = None
        for knob, value in size.items():
            final.model.kwargs[knob] = value
        for key, amount in final_budget.items():
            final.budget[CONFIG_KEY[key]] = as_budget(key, amount)
        final.sweep_budget = None
    return final


def _sum_spent(spents: list[Mapping[str, Any]]) -> dict[str, float | None]:
    """Spending summed over runs; unknown in any run leaves the total unknown."""
    total: dict[str, float | None] = {}
    for key in ADDITIVE_KEYS:
        values = [s.get(key) for s in spents]
        total[key] = None if any(v is None for v in values) else float(sum(values))
    return total


def _left(budget: BudgetSpec, pilot_spent: Mapping[str, float | None]) -> dict[str, float]:
    """The final run's budget: each enforced cumulative limit less what the pilots spent (an
    unknown pilot spending leaves nothing: never count it as 0)."""
    left = {}
    for key, limit in budget.enforced().items():
        if key not in ADDITIVE_KEYS:
            continue
        spent = pilot_spent.get(key)
        left[key] = 0.0 if spent is None else max(limit - spent, 0.0)
    return left


def _margin(candidates: list[dict[str, Any]], axis: str) -> float:
    """An estimated energy is enforced short of its limit (budget.estimate_margin): the final
    run will spend about that much less of the axis."""
    if axis not in ("energy_j", "carbon_g"):
        return 0.0
    return max((c.get("_margin", 0.0) for c in candidates), default=0.0)


def _choose(
    candidates: list[dict[str, Any]], metric: str, saved: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The best predicted result; a size without a prediction only when none has one; ties go
    to the smaller size (the ladder's order). An interrupted final run keeps its `saved` size."""
    kept = [c for c in candidates if saved is not None and c["size"] == dict(saved)]
    if kept:
        return kept[0]
    predicted = [c for c in candidates if c["predicted"] is not None]
    if not predicted:
        return candidates[0]
    errors = [as_error(metric, c["predicted"]) for c in predicted]
    return predicted[errors.index(min(errors))]


def _booked(
    result: dict[str, Any], budget: BudgetSpec, pilot_spent: Mapping[str, float | None]
) -> dict[str, Any]:
    """The final run's result with the pilots' spending added and the declared budget."""
    result = copy.deepcopy(result)
    spent = result.get("spent") or {}
    for key in ADDITIVE_KEYS:
        ours, theirs = spent.get(key), pilot_spent.get(key)
        spent[key] = None if ours is None or theirs is None else ours + theirs
    result["spent"] = spent
    result["budget"] = budget.limits()
    return result
