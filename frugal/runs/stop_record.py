"""The record of a run that ends outside the training loop: a signal during set-up, before its
first training step, or a write fault the run could not record itself.

`frugal-train` notes stop signals from the moment its command line is accepted
(`frugal.runs.signals`); between set-up phases — Hydra's job start, building the trainer,
the data, the model — a noted signal ends the run here instead of going on: `result.json` says
`interrupted` and names the signal and the phase, and the exit status is 128 + the signal. A
scheduler or a sweeper then tells a stopped run from a crash, and `resume=<run>` starts it.

What the record holds: for a new run, nothing trained (`steps: 0`, 0 samples and FLOPs) and
the rest of `spent` unknown (null, never 0); for a run being resumed (or a relaunched sweep
job), its earlier figures — its last `result.json` and the spending its `ledger.json` holds —
so an interrupted attempt never erases what the run recorded. A run that had ended for good
keeps its `result.json` as it was (the exit status and the line on stderr still say
`interrupted`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from frugal.budget.ledger import CUMULATIVE, LEDGER_FILE, read_sidecar
from frugal.budget.spec import BudgetSpec
from frugal.core.errors import ConfigError
from frugal.core.keys import SPENT_KEYS
from frugal.core.status import FINAL_STATUSES, Status
from frugal.runs.record import RESULT_FILE, read_result, versions, write_json_atomic
from frugal.runs.signals import signal_name
from frugal.runs.write_faults import WriteFailed, writing

# The set-up phases a signal is checked after, in order (named in the record's message).
STARTING = "starting"
BUILDING_TRAINER = "building the trainer"
BUILDING_DATA = "building the data"
BUILDING_MODEL = "building the model"
UNTRAINED = ("data_samples", "compute_flop")  # exactly 0 when no step ran; the rest unknown
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # Lightning's
PEER_VARIABLES = ("WORLD_SIZE", "SLURM_NTASKS")  # set when ranks are started together


def interrupted_record(
    cfg: DictConfig, signum: int, phase: str, known: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`result.json` of a run stopped by `signum` during `phase`; `known`: sections the caller
    has built (`budget`, `energy`, `data`, `model`) replace what is inferred here."""
    record = stopped_record(cfg, Status.INTERRUPTED, "", known)
    record["message"] = (
        f"{signal_name(signum)} received during set-up ({phase}); stopped before training at "
        f"step {record['steps']}"
    )
    return record


def stopped_record(
    cfg: DictConfig, status: Status, message: str, known: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`result.json` of a run that ended with `status` where the pipeline could not write its
    own record: the run's earlier record and ledger where it has them, `known` on top."""
    output_dir = Path(str(cfg.paths.output_dir))
    previous = read_result(output_dir) or {}
    ledger = read_sidecar(output_dir / LEDGER_FILE)
    record = {**_fresh(cfg), **previous, **(known or {})}
    record.update(
        status=status.value,
        stopped_by=None,
        message=message,
        spent=_spent(previous.get("spent"), ledger),
        steps=_whole(previous.get("steps")) or _whole((ledger or {}).get("step")) or 0,
    )
    return record


def write_interrupted(
    cfg: DictConfig,
    signum: int,
    phase: str,
    known: Mapping[str, Any] | None = None,
    is_global_zero: bool | None = None,
) -> dict[str, Any]:
    """Write and return the record of `interrupted_record` (global rank 0 writes it; before a
    trainer says which rank this is, the launcher's environment does). A run that had ended for
    good (a finished run being resumed, a sweep job that finished in an earlier launch) keeps
    its record: this attempt changed nothing in it, and a relaunched sweep reuses it."""
    record = interrupted_record(cfg, signum, phase, known)
    previous = read_result(Path(str(cfg.paths.output_dir))) or {}
    if previous.get("status") in FINAL_STATUSES:  # nothing trained: the run is as it recorded
        record["message"] += f"; {RESULT_FILE} left as it was ({previous['status']})"
        return record
    write_record(cfg, record, is_global_zero)
    return record


def write_record(
    cfg: DictConfig, record: Mapping[str, Any], is_global_zero: bool | None = None
) -> None:
    """`result.json` in the run directory, by global rank 0; a write fault is `WriteFailed`."""
    if is_global_zero is False or (is_global_zero is None and global_rank() != 0):
        return
    path = Path(str(cfg.paths.output_dir)) / RESULT_FILE
    with writing(path):
        write_json_atomic(path, record)


def may_stop_in_setup(num_nodes: int = 1) -> bool:
    """Whether a signal noted during set-up may end the run there: only while this process is
    its run's only one (one process, or rank 0 of one node before fit starts the others). Ranks
    started together (torchrun, SLURM tasks, several nodes) go on to fit instead, where the
    first step stops them all together: one rank ending alone would leave the others waiting
    for it until the collective timeout."""
    peers = any(int(os.environ.get(name, "1") or 1) > 1 for name in PEER_VARIABLES)
    return global_rank() == 0 and not peers and int(num_nodes or 1) == 1


def global_rank() -> int:
    """This process's rank as the launcher set it (before any trainer exists), as Lightning
    reads it; 0 outside a multi-process launch."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def _fresh(cfg: DictConfig) -> dict[str, Any]:
    """The record's sections before anything was built: the contract's keys, unknown as null."""
    from hydra.core.hydra_config import HydraConfig

    from frugal.models.registry import model_name  # torch: a signal before set-up is quick

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    name = model_name(cfg.model)
    return {
        "budget": _limits(cfg),
        "test_spent": None,
        "energy": {"method": "unavailable", "measured": False},
        "data": None,
        "model": {"name": name, "params": None, "params_effective": None, "flop_per_sample": None},
        "plan": {"mode": _plan_mode(cfg), "max_steps": None, "binding": None, "allowed_steps": {}},
        "metrics": {},
        "epochs": 0,
        "seed": cfg.get("seed"),
        "versions": versions(),
        "run": {"dir": str(cfg.paths.output_dir), "name": name, "overrides": overrides},
        "compression": None,
        "distill": None,
        "inference": None,
    }


def _limits(cfg: DictConfig) -> dict[str, float | None]:
    try:
        return BudgetSpec.from_config(cfg.get("budget")).limits()
    except ConfigError:  # checked before the run started; never a reason to lose the record
        return dict.fromkeys(SPENT_KEYS)


def _plan_mode(cfg: DictConfig) -> str | None:
    budget = cfg.get("budget")
    return budget.get("plan") if budget is not None else None


def _spent(
    recorded: Mapping[str, Any] | None, ledger: Mapping[str, Any] | None
) -> dict[str, float | None]:
    """What the run spent before this attempt: the larger of its last record and its ledger
    (written after it, at every re-plan) per cumulative key; nothing for a new run."""
    spent: dict[str, float | None] = {key: None for key in SPENT_KEYS}
    if recorded is None and ledger is None:
        spent.update({key: 0.0 for key in UNTRAINED})
        return spent
    for source in (recorded or {}, (ledger or {}).get("spent") or {}):
        for key in SPENT_KEYS:
            value = _number(source.get(key))
            if value is None:
                continue
            current = spent[key]
            larger = key in CUMULATIVE or key == "memory_bytes"
            spent[key] = max(value, current) if larger and current is not None else value
    return spent


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def _whole(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number >= 0 else None


def write_fault_record(cfg: DictConfig, failed: WriteFailed) -> dict[str, Any]:
    """The record of a run a write fault ended where the pipeline could not record it (a
    pilot's result, the envelope, set-up): written if there is room, returned either way."""
    record = stopped_record(cfg, Status.WRITE_FAILED, str(failed))
    with suppress(OSError):  # no room for it either: the one line on stderr says what failed
        write_record(cfg, record)
    return record
