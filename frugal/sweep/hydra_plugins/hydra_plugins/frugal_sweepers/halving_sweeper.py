"""`hydra/sweeper=halving`: successive halving inside the sweep's budget envelope.

    frugal-train -m hydra/sweeper=halving sweep_budget.energy=2kJ model=mlp,cnn seed=0,1,2

The configurations are the cartesian product of the sweep (command line and
`hydra.sweeper.params`, as Hydra's basic sweeper builds it). Rung by rung, each trial runs with
`budget.<key>=<b_r>` for every key of the envelope, the best are promoted by their validation
metrics and continue from their last weights (`init_from`; `warm_start=false`: from scratch),
and the envelope left is shared again (`frugal.sweep.halving` has the rules). Between
rungs each trial's result is read from its `result.json` (else its envelope entry), and
`halving.json` in the sweep directory records the rungs so far and the best configuration.

Job numbers follow the plan (rung r starts at the sum of the planned sizes below it), so a
relaunched sweep (same sweep directory) maps each trial to its job directory again: trials that
ended are not launched again, their results are reused; killed or interrupted ones are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from frugal.core.keys import CONFIG_KEY
from frugal.runs.record import LAST_CKPT, read_result, write_json_atomic
from frugal.sweep import halving
from frugal.sweep.envelope import locked, read_envelope, remaining
from frugal.sweep.halving import Objective, Trial

log = logging.getLogger(__name__)

DEFAULT_SUBDIRS = ("${hydra.job.num}", "${hydra:job.num}")
NO_ENVELOPE = (
    "hydra/sweeper=halving shares a sweep budget between its rungs, and this sweep declares "
    "none: add sweep_budget.<key>=<amount> (energy, carbon, compute, data or time), "
    "e.g. sweep_budget.energy=2kJ"
)


class HalvingSweeper(Sweeper):
    """Successive halving (eta-fold promotion) of a grid, within one budget envelope."""

    def __init__(
        self,
        eta: int = halving.DEFAULT_ETA,
        params: dict[str, str] | None = None,
        max_batch_size: int | None = None,
        warm_start: bool = True,
    ) -> None:
        super().__init__()
        settings = {"eta": eta, "params": params, "warm_start": warm_start}
        halving.check_settings(settings)  # before the sweep writes anything
        self.eta = eta
        self.warm_start = warm_start
        self.params = dict(params or {})
        self.max_batch_size = max_batch_size
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.objectives: list[Objective] = []

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.objectives = halving.objectives_of(config.get("objectives"))
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # ---- the sweep -------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> list[list[JobReturn]]:
        assert self.config is not None and self.launcher is not None
        configs = self.configurations(arguments)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        state = _envelope(sweep_dir)  # refused before anything is written
        check_no_budget_override(configs, state)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        planned = halving.rung_sizes(len(configs), self.eta)
        offsets = halving.rung_offsets(planned)
        log.info(
            "halving: %d configurations, eta=%d, rungs of %s trials, objectives %s",
            len(configs),
            self.eta,
            "/".join(map(str, planned)),
            ", ".join(f"{o.name} (promoted by {o.key})" for o in self.objectives),
        )
        record = self.sweep_record(configs, planned, state)
        returns: list[list[JobReturn]] = []
        alive = list(range(len(configs)))
        earlier: list[Trial] = []
        for rung in range(len(planned)):
            state = _envelope(sweep_dir)
            sizes = halving.sizes_from(planned, rung, len(alive))
            left = halving.remaining_for_rung(state, [t.job_id for t in earlier], remaining)
            budget = halving.per_trial_budget(left, sizes, self.eta)
            if halving.spent_out(budget):
                log.warning("halving: the envelope is spent before rung %d; stopping", rung)
                break
            trials = halving.rung_trials(configs, alive, rung, offsets[rung], budget)
            for trial in trials:
                if self.warm_start:
                    continue_lower(sweep_dir, state, trial, earlier)
                trial.job_id = self.job_id(trial)  # after init_from: a subdir may name it
            returns.append(self.run_rung(sweep_dir, trials))
            promoted = self.promote(trials, planned, rung)
            self.log_rung(rung, planned, budget, trials, promoted)
            record["rungs"].append(rung_record(rung, budget, trials, promoted))
            record["best"] = best_record(trials, self.objectives, configs) or record["best"]
            write_json_atomic(sweep_dir / halving.HALVING_FILE, record)
            _mark_rungs(sweep_dir, trials)
            earlier += trials
            alive = [t.config for t in trials if t.job_id in promoted]
            if not alive:
                if rung + 1 < len(planned):
                    log.warning(
                        "halving: no trial of rung %d has metrics to promote; stopping", rung
                    )
                break
        self.log_best(record["best"])
        return returns

    def sweep_record(
        self, configs: list[list[str]], planned: list[int], state: dict[str, Any]
    ) -> dict[str, Any]:
        """halving.json, before its first rung."""
        return {
            "eta": self.eta,
            "warm_start": self.warm_start,
            "objectives": [o.name for o in self.objectives],
            "promoted_by": [o.key for o in self.objectives],
            "configurations": configs,
            "plan": planned,
            "envelope": state.get("envelope"),
            "rungs": [],
            "best": None,
        }

    def run_rung(self, sweep_dir: Path, trials: list[Trial]) -> list[JobReturn]:
        """Launch what has not ended yet, then read every trial's outcome. A job that raised
        stops the sweep after its rung (as Hydra's basic sweeper does), before any promotion:
        a relaunch runs it again."""
        assert self.launcher is not None
        state = _envelope(sweep_dir)
        jobs = state.get("jobs") or {}
        results = {t.job_id: read_result(job_dir(sweep_dir, jobs, t.job_id)) for t in trials}
        launch, reuse = halving.select_to_launch(trials, jobs, results)
        for trial in reuse:
            check_same_overrides(job_dir(sweep_dir, jobs, trial.job_id), trial)
        if reuse:
            log.info(
                "halving: rung %d: %s ended in an earlier launch, reused: jobs %s",
                trials[0].rung,
                _count(len(reuse), "trial"),
                ", ".join(t.job_id for t in reuse),
            )
        returns: list[JobReturn] = []
        for batch in halving.contiguous(launch, self.max_batch_size):
            returns += self.launcher.launch(
                [t.overrides for t in batch], initial_job_idx=batch[0].job_num
            )
        state = _envelope(sweep_dir)
        jobs = state.get("jobs") or {}
        for trial in trials:
            result = read_result(job_dir(sweep_dir, jobs, trial.job_id))
            trial.values = halving.outcome_values(jobs.get(trial.job_id), result)
        failed = [r for r in returns if r.status == JobStatus.FAILED]
        if failed:
            _ = failed[0].return_value  # raises the job's exception, as the basic sweeper does
        return returns

    def promote(self, trials: list[Trial], planned: list[int], rung: int) -> list[str]:
        if rung + 1 >= len(planned):
            return []
        candidates = {t.job_id: t.values for t in trials}
        return [str(j) for j in halving.promote(candidates, planned[rung + 1], self.objectives)]

    # ---- configurations and jobs -----------------------------------------------------------
    def configurations(self, arguments: list[str]) -> list[list[str]]:
        """The cartesian product of the sweep, as Hydra's basic sweeper builds it: the config's
        `hydra.sweeper.params` first, the command line over them."""
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        lines = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        loader = self.hydra_context.config_loader if self.hydra_context is not None else None
        overrides = OverridesParser.create(config_loader=loader).parse_overrides(lines)
        for override in overrides:
            check_discrete(override)
        return [list(c) for c in BasicSweeper.split_arguments(overrides, None)[0]]

    def job_id(self, trial: Trial) -> str:
        """The trial's `hydra.sweep.subdir`, as its job will resolve it: the envelope's key for
        the job, and its directory under the sweep directory."""
        assert self.config is not None
        raw = OmegaConf.to_container(self.config.hydra.sweep, resolve=False).get("subdir")
        if str(raw).replace(" ", "") in DEFAULT_SUBDIRS:
            return str(trial.job_num)
        from hydra.core.hydra_config import HydraConfig

        assert self.hydra_context is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, trial.overrides)
        with open_dict(cfg):
            cfg.hydra.job.id = trial.job_num
            cfg.hydra.job.num = trial.job_num
        saved = HydraConfig.instance().cfg
        try:
            HydraConfig.instance().set_config(cfg)  # for ${hydra:job.override_dirname} and such
            return str(OmegaConf.select(cfg, "hydra.sweep.subdir"))
        finally:
            HydraConfig.instance().cfg = saved

    # ---- reporting -------------------------------------------------------------------------
    def log_rung(
        self,
        rung: int,
        planned: list[int],
        budget: dict[str, float],
        trials: list[Trial],
        promoted: list[str],
    ) -> None:
        first = self.objectives[0]
        scores = {t.job_id: (t.values or {}).get(first.key) for t in trials}
        shown = ", ".join(f"{j} ({first.key}={_fmt(scores[j])})" for j in promoted) or "none"
        log.info(
            "halving: rung %d/%d: %s at %s each; %d ranked by %s; promoted %s",
            rung,
            len(planned) - 1,
            _count(len(trials), "trial"),
            ", ".join(f"{key}={value:.4g}" for key, value in budget.items()),
            sum(halving.minimised(t.values, self.objectives) is not None for t in trials),
            ", ".join(o.key for o in self.objectives),
            shown,
        )

    def log_best(self, best: dict[str, Any] | None) -> None:
        if best is None:
            log.warning("halving: no trial ended with metrics; no best configuration")
            return
        metrics = best.get("metrics") or {}
        names = dict.fromkeys([o.key for o in self.objectives] + [o.name for o in self.objectives])
        shown = ", ".join(f"{name}={_fmt(metrics.get(name))}" for name in names)
        log.info(
            "halving: best: job %s (rung %d; %s): %s",
            best["job"],
            best["rung"],
            shown,
            " ".join(best["swept"]) or "(the only configuration)",
        )


# ---- helpers ---------------------------------------------------------------------------------
def _envelope(sweep_dir: Path) -> dict[str, Any]:
    state = read_envelope(sweep_dir)
    if state is None:
        raise HydraException(NO_ENVELOPE)
    if not any(v is not None for v in (state.get("envelope") or {}).values()):
        raise HydraException(NO_ENVELOPE)
    return state


def check_discrete(override: Override) -> None:
    if override.is_sweep_override() and not override.is_discrete_sweep():
        raise HydraException(
            f"hydra/sweeper=halving: {override.input_line}: a grid is expected "
            "(a,b,c, range(...) or choice(...)); intervals need a sampling sweeper (optuna)"
        )


def check_no_budget_override(configs: list[list[str]], state: dict[str, Any]) -> None:
    """Each trial's budget of an envelope key is the sweeper's to set."""
    shared = {
        f"budget.{CONFIG_KEY[k]}" for k, v in (state.get("envelope") or {}).items() if v is not None
    }
    for config in configs:
        for line in config:
            key = line.partition("=")[0].lstrip("+~")
            if key in shared:
                raise HydraException(
                    f"hydra/sweeper=halving: {line}: each trial's {key} is set by the sweeper "
                    f"from sweep_{key}; remove {key} from the command line"
                )


def continue_lower(
    sweep_dir: Path, state: dict[str, Any], trial: Trial, earlier: Sequence[Trial]
) -> None:
    """A promoted trial starts from the weights its configuration ended with one rung below
    (`init_from=<that job>/checkpoints/last.ckpt`), when that job left them."""
    lower = halving.lower_trial(trial, earlier)
    if lower is None:
        return
    ckpt = (job_dir(sweep_dir, state.get("jobs") or {}, lower.job_id) / LAST_CKPT).absolute()
    if not ckpt.is_file():
        log.warning("halving: job %s left no %s; trial starts from scratch", lower.job_id, ckpt)
        return
    trial.overrides.append(f"init_from={halving.override_text(str(ckpt))}")
    trial.continues = lower.job_id


def job_dir(sweep_dir: Path, jobs: dict[str, Any], job_id: str) -> Path:
    entry = jobs.get(job_id) or {}
    return Path(entry["dir"]) if entry.get("dir") else sweep_dir / job_id


def check_same_overrides(run_dir: Path, trial: Trial) -> None:
    """A reused job must have run this very trial (a changed grid relaunched into the same
    sweep directory would otherwise take another configuration's result)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return
    ran = OmegaConf.to_container(OmegaConf.load(path))
    if isinstance(ran, list) and sorted(map(str, ran)) != sorted(trial.overrides):
        ran_text = " ".join(map(str, ran))
        raise HydraException(
            f"hydra/sweeper=halving: job {trial.job_id} in {run_dir} ran {ran_text}, "
            f"not this sweep's trial {' '.join(trial.overrides)}; relaunch the same sweep, "
            "or give a new hydra.sweep.dir"
        )


def rung_record(
    rung: int, budget: dict[str, float], trials: Sequence[Trial], promoted: list[str]
) -> dict[str, Any]:
    return {
        "rung": rung,
        "budget": budget,
        "trials": [t.job_id for t in trials],
        "configurations": [t.config for t in trials],
        "continued_from": {t.job_id: t.continues for t in trials if t.continues is not None},
        "promoted": promoted,
    }


def best_record(
    trials: Sequence[Trial], objectives: list[Objective], configs: Sequence[Sequence[str]]
) -> dict[str, Any] | None:
    """The best trial of a rung (the highest rung with metrics holds the sweep's best)."""
    ranked = halving.promote({t.job_id: t.values for t in trials}, 1, objectives)
    if not ranked:
        return None
    best = next(t for t in trials if t.job_id == ranked[0])
    return {
        "job": best.job_id,
        "rung": best.rung,
        "configuration": best.config,
        "overrides": best.overrides,
        "swept": swept(configs, best.config),
        "metrics": best.values,
    }


def swept(configs: Sequence[Sequence[str]], config: int) -> list[str]:
    """The overrides of configuration `config` that the grid varies (what tells it apart)."""
    varying = {line for c in configs for line in c} - set.intersection(*map(set, configs))
    return [line for line in configs[config] if line in varying]


def _mark_rungs(sweep_dir: Path, trials: Sequence[Trial]) -> None:
    """Note each job's rung in envelope.json (`rung`), for reports reading the envelope."""
    with locked(sweep_dir) as book:
        jobs = (book["state"] or {}).get("jobs") or {}
        for trial in trials:
            if trial.job_id in jobs and jobs[trial.job_id].get("rung") != trial.rung:
                jobs[trial.job_id]["rung"] = trial.rung


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "?"
