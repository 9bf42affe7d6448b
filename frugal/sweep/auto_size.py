"""`model.kwargs.width_mult=auto` (or `depth=auto`): given only a budget, the size that fits.

The planner spends `budget.search_share` of the run's budget (default 0.2) on short pilot runs,
one per size of the ladder (`size_search.width_mult`, `size_search.depth`), each with an equal
part of that share. Each pilot's validation curve (`size_search.metric` against the budget it
spent) is fitted with a saturating power law (`frugal.sweep.curves`) and extrapolated to what
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
import csv
import itertools
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from frugal.attempts import kept_charge, left_behind, set_aside
from frugal.budget.spec import BudgetSpec, as_budget
from frugal.core.errors import bad
from frugal.core.keys import ADDITIVE_KEYS, CONFIG_KEY
from frugal.core.record import CHOICE_FILE, MalformedError, SizeChoice, parse
from frugal.core.status import FRONTIER_STATUSES, RESUMABLE_STATUSES
from frugal.core.units import percent
from frugal.record import LAST_CKPT, RESULT_FILE, read_json_object, read_result, write_json_atomic
from frugal.sweep.curves import JointLaw, as_error, fit_joint_law, fit_power_law, from_error

log = logging.getLogger("frugal")

KNOBS = ("width_mult", "depth")
AUTO = "auto"
PILOTS_DIR = "pilots"
# The budgets a search can divide, in the order one is chosen as the search's axis.
AXES = ("energy_j", "carbon_g", "time_s", "compute_flop", "data_samples")
CURVE_COLUMN = {  # curve.csv column holding each axis (carbon follows energy, times intensity)
    "energy_j": "energy_j",
    "carbon_g": "energy_j",
    "time_s": "time_s",
    "compute_flop": "compute_flop",
    "data_samples": "samples",
}
MIN_VAL_EVERY = 5  # steps: validating more often would spend a pilot's budget on validation


# ---- configuration ---------------------------------------------------------------------------
def searched(node: Mapping[str, Any]) -> list[str]:
    """The size knobs the model leaves to the planner (`model.kwargs.<knob>=auto`)."""
    model = node.get("model")
    kwargs = model.get("kwargs") if isinstance(model, Mapping) else None
    if not isinstance(kwargs, Mapping):  # not a group of keys: the schema says so
        return []
    return [knob for knob in KNOBS if kwargs.get(knob) == AUTO]


def ladder(node: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every size to try: the product of the ladders of the searched knobs."""
    knobs = searched(node)
    search = node.get("size_search") or {}
    values = [list(search.get(knob) or []) for knob in knobs]
    return [dict(zip(knobs, combo, strict=True)) for combo in itertools.product(*values)]


def with_size(node: dict[str, Any], size: Mapping[str, Any]) -> dict[str, Any]:
    concrete = copy.deepcopy(node)
    concrete["model"]["kwargs"] = {**(concrete["model"].get("kwargs") or {}), **size}
    return concrete


def check_from_scratch(node: Mapping[str, Any]) -> None:
    """Before any size is checked: a search trains its sizes from scratch (a checkpoint named
    here could fit one size only)."""
    if any(node.get(k) for k in ("ckpt_path", "init_from", "compress", "distill")):
        raise bad(
            f"model.kwargs.{searched(node)[0]}",
            AUTO,
            "a size search starts from scratch",
            "no ckpt_path, init_from, compress or distill with it (resume=<run> continues an "
            "interrupted search)",
        )


def check_search(node: Mapping[str, Any], budget: BudgetSpec) -> None:
    """What a size search needs beyond what every size's own checks found."""
    knob = searched(node)[0]
    if axis_of(budget) is None:
        raise bad(
            f"model.kwargs.{knob}",
            AUTO,
            "no budget to choose a size within",
            "a budget: add one, e.g. budget.energy=400J (or budget.compute, budget.data, "
            "budget.time, budget.carbon)",
        )
    if len(ladder(node)) < 2:
        raise bad(
            f"size_search.{knob}",
            ...,
            "needs at least two sizes to choose from",
            "a list of sizes, e.g. [0.5, 1.0, 2.0]",
        )
    trainer = node.get("trainer") or {}
    devices, nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1)
    if devices not in (1, "1") or nodes not in (1, None):
        raise bad(
            f"model.kwargs.{knob}",
            AUTO,
            "the size search runs on one device",
            "trainer.devices=1 and trainer.num_nodes=1, or a size picked for a multi-device run",
        )


def axis_of(budget: BudgetSpec) -> str | None:
    enforced = budget.enforced()
    return next((key for key in AXES if key in enforced), None)


# ---- the search ------------------------------------------------------------------------------
TrainOne = Callable[..., tuple[dict[str, Any], dict[str, Any]]]


def search_and_train(cfg: Any, train_one: TrainOne, **kwargs: Any) -> tuple[dict, dict]:
    """Pilots, fits, the choice, then the final run; returns the final run's (result, objects)
    with the search booked in and recorded. `train_one(cfg, init_from=..., **kwargs)` is one
    ordinary run (`frugal.pipeline`)."""
    from frugal.config.check import plain

    node = plain(cfg)  # resolved, Hydra's own node left out
    run_dir = Path(str(cfg.paths.output_dir))
    finished = _finished(run_dir)
    if finished is not None and "size_search" in finished:  # resumed with nothing left to do
        log.info("size search: finished in an earlier attempt; %s", run_dir / RESULT_FILE)
        return finished, {}
    budget = BudgetSpec.from_config(node.get("budget"))
    axis = axis_of(budget)
    assert axis is not None  # checked at start-up (check_search)
    search = node["size_search"]
    metric = str(search["metric"])
    sizes = ladder(node)
    share = budget.search_share
    log.info(
        "size search: %d sizes of %s, %s of the budget for pilots",
        len(sizes),
        "/".join(searched(node)),
        percent(share),
    )

    candidates: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    part = share / len(sizes)
    pilot_allowance = _allowance(budget, {k: v * part for k, v in budget.enforced().items()})
    for size in sizes:
        pilot_dir = run_dir / PILOTS_DIR / _label(size)
        result = _finished(pilot_dir)
        if result is None:
            every = _val_every(node, size, previous, search)
            ckpt = _continued(pilot_dir, pilot_allowance)
            pilot_cfg = _pilot_config(cfg, size, budget, part, pilot_dir, every, ckpt)
            result, _ = train_one(pilot_cfg, **kwargs)
            result.setdefault("run", {})["role"] = "pilot"
            write_json_atomic(pilot_dir / RESULT_FILE, result)
        candidate = _candidate(size, pilot_dir, result, axis, metric)
        candidate["set_aside"] = kept_charge(pilot_dir, pilot_allowance)
        candidates.append(candidate)
        previous = result
        if result.get("status") in RESUMABLE_STATUSES:  # stopped: resume=<run> goes on
            return result, {}

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
        at = (own if search["warm_start"] else 0.0) + final_budget[axis] * (1 - margin)
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

    final_cfg = _final_config(cfg, chosen["size"], final_budget, final_ckpt)
    init_from = None
    if search["warm_start"]:
        last = Path(chosen["dir"]) / LAST_CKPT
        init_from = last if last.is_file() and final_ckpt is None else None
    result, objects = train_one(final_cfg, init_from=init_from, **kwargs)
    result = _booked(result, budget, _sum_spent([pilot_spent, set_aside]))
    result["size_search"] = {"law": joint.record() if joint else None} | _record(
        search,
        metric,
        axis,
        budget,
        share,
        candidates,
        chosen,
        pilot_spent,
        final_budget,
        run_dir,
        result,
        search["warm_start"] and Path(chosen["dir"], LAST_CKPT).is_file(),
    )
    result["size_search"]["final_set_aside"] = set_aside
    write_json_atomic(run_dir / RESULT_FILE, result)
    return result, objects


def continue_search(cfg: Any) -> Any:
    """A size search started again into its own directory (a relaunched sweep job, a requeued
    cluster job) once its final run has written there: `resume=<run>`, so that the directory
    check lets it go on (the search resumes each part itself)."""
    from omegaconf import open_dict

    from frugal.config.rundir import outputs_in

    run_dir = Path(str(cfg.paths.output_dir))
    if cfg.get("resume") or not run_dir.is_dir() or not outputs_in(run_dir):
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.resume = str(run_dir)
    return cfg


def _continued(run_dir: Path, allowance: Mapping[str, float | None]) -> Path | None:
    """How an unfinished part of a search (a pilot, the final run) goes on when the search is
    resumed: from its last checkpoint, its ledger with it; an attempt that left no checkpoint
    is set aside under `attempts/` and charged (`frugal.attempts`), and the part starts again."""
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
    """One law for every size (`frugal.sweep.curves.JointLaw`), fitted on all pilots' points
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
    from omegaconf import open_dict

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
    from frugal.config.check import data_shape
    from frugal.models.accounting import flop_per_sample
    from frugal.models.registry import build_model

    shape = data_shape(node["data"])
    if shape is None:
        return None
    from omegaconf import OmegaConf

    model = with_size(dict(node), size)["model"]
    try:
        built = build_model(OmegaConf.create(model), *shape)
        return float(flop_per_sample(built, shape[0])["dense"])
    except Exception:  # the run will say what is wrong with this size
        return None


def _final_config(
    cfg: Any, size: Mapping[str, Any], final_budget: dict[str, float], ckpt: Path | None
) -> Any:
    from omegaconf import open_dict

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


def _candidate(
    size: Mapping[str, Any], pilot_dir: Path, result: dict[str, Any], axis: str, metric: str
) -> dict[str, Any]:
    points = _curve_points(pilot_dir / "curve.csv", axis, metric, result)
    fit = fit_power_law([(x, as_error(metric, y)) for x, y in points])
    spent = result.get("spent") or {}
    samples, on_axis = spent.get("data_samples"), spent.get(axis)
    model = result.get("model") or {}
    return {
        "size": dict(size),
        "dir": str(pilot_dir),
        "status": result.get("status"),
        "spent": {k: (result.get("spent") or {}).get(k) for k in ADDITIVE_KEYS},
        "points": points,
        "fit": fit.record(),
        "_fit": fit,
        "_margin": float((result.get("energy") or {}).get("estimate_margin") or 0.0),
        "_params": float(model.get("params_effective") or model.get("params") or 0),
        "_samples_points": _curve_points(pilot_dir / "curve.csv", "data_samples", metric, result),
        "_samples_per_x": samples / on_axis if samples and on_axis else None,
    }


def _curve_points(
    path: Path, axis: str, metric: str, result: Mapping[str, Any]
) -> list[tuple[float, float]]:
    """(spent on the axis, metric) at each validation of a run's curve.csv."""
    column = CURVE_COLUMN[axis]
    scale = 1.0
    if axis == "carbon_g":  # carbon = energy x intensity: the same curve, rescaled
        spent = result.get("spent") or {}
        if spent.get("carbon_g") and spent.get("energy_j"):
            scale = float(spent["carbon_g"]) / float(spent["energy_j"])
    points = []
    try:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                x, y = _number(row.get(column)), _number(row.get(metric))
                if x is not None and y is not None:
                    points.append((x * scale, y))
    except OSError:
        return []
    return points


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


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


def _record(
    search: Mapping[str, Any],
    metric: str,
    axis: str,
    budget: BudgetSpec,
    share: float,
    candidates: list[dict[str, Any]],
    chosen: dict[str, Any],
    pilot_spent: Mapping[str, float | None],
    final_budget: Mapping[str, float],
    run_dir: Path,
    result: Mapping[str, Any],
    warm_start: bool,
) -> dict[str, Any]:
    knobs = list(chosen["size"])
    own = (chosen["spent"].get(axis) or 0.0) if warm_start else 0.0
    curve = _curve_points(run_dir / "curve.csv", axis, metric, result)
    final_points = [(own + x, y) for x, y in curve]
    metrics = result.get("metrics") or {}
    return {
        "knob": knobs[0] if len(knobs) == 1 else knobs,
        "metric": metric,
        "budget_key": axis,
        "budget": budget.enforced()[axis],
        "share": share,
        "candidates": [
            {
                "size": c["size"][knobs[0]] if len(knobs) == 1 else c["size"],
                "dir": str(Path(c["dir"]).relative_to(run_dir)),
                "status": c["status"],
                "spent": c["spent"],
                "points": c["points"],
                "fit": c["fit"],
                "predicted": c["predicted"],
                "predicted_at": c["predicted_at"],
            }
            for c in candidates
        ],
        "pilot_spent": dict(pilot_spent),
        "final_budget": dict(final_budget),
        "choice": chosen["size"][knobs[0]] if len(knobs) == 1 else chosen["size"],
        "predicted": chosen["predicted"],
        "predicted_at": chosen["predicted_at"],
        "achieved": {k: metrics.get(k) for k in ("val/loss", "val/acc", "test/acc", "test/loss")},
        "final_points": final_points,
        "warm_start": warm_start,
    }
