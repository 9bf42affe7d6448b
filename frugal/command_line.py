"""`frugal-train`'s command line, checked before Hydra runs anything.

Hydra writes `.hydra/` into the run directory before the task function starts, so a check made
inside the job would be too late to leave an earlier run untouched. `check_command_line`
therefore composes the configuration itself (`frugal.config.compose`: Hydra's compose API, the
same config search path and overrides, Hydra's own errors in the one-line form), and runs
`check_config` (`frugal.runs.preflight`) on the result; in a multirun, on every element of
every sweep, with the sweep's envelope and sweeper. Only then does `@hydra.main` run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from frugal.budget.spec import declared, envelope_of
from frugal.config.accepted import Accepted
from frugal.config.compose import (
    composed,
    parse_flags,
    parse_override,
    quoted,
    set_output_dir,
    sweep_combinations,
    value_text,
)
from frugal.config.resolve import plain
from frugal.core.errors import bad
from frugal.runs.preflight import check_config
from frugal.runs.rundir import check_not_inside_a_run, check_output_dirs
from frugal.sweep.envelope import check_same, read_envelope
from frugal.sweep.halving import check_settings

# Flags after which Hydra does not train: nothing to check (it prints, completes, or explains).
NO_RUN_FLAGS = ("hydra_help", "cfg", "info", "shell_completion", "experimental_rerun")


def check_command_line(argv: list[str], config_dir: str, config_name: str = "train") -> Accepted:
    """Raise ConfigError (one line) for anything wrong on `argv`; return when Hydra may run,
    with what was checked of each run this process will start (`Accepted`: not checked again)."""
    accepted = Accepted()
    args = parse_flags(argv)
    if any(getattr(args, flag, None) for flag in NO_RUN_FLAGS):
        return accepted
    overrides = [parse_override(text) for text in args.overrides]
    for flag, value in (("--config-dir", args.config_dir), ("--config-path", args.config_path)):
        if value and not Path(value).expanduser().is_dir():
            raise bad(flag, value, "no such directory", "a directory of config files (.yaml)")
    if args.config_dir:
        overrides.append(
            parse_override(f"hydra.searchpath=[{quoted('file://' + args.config_dir)}]")
        )
    primary = str(Path(args.config_path).absolute()) if args.config_path else config_dir
    name = args.config_name or config_name
    with initialize_config_dir(config_dir=primary, version_base="1.3", job_name="train"):
        if args.multirun:
            check_multirun(name, overrides, accepted)
        else:
            check_single(name, overrides, accepted)
    return accepted


def check_single(name: str, overrides: list[Override], accepted: Accepted) -> None:
    """One run: no sweep, no envelope; its values, then where it writes."""
    single = [o for o in overrides if o.is_sweep_override()]
    if single:
        o = single[0]
        raise bad(
            o.get_key_element(),
            value_text(o),
            "a sweep needs --multirun",
            f"-m {o.input_line}, or one value",
        )
    single_cfg = composed(name, overrides)
    if declared(single_cfg.get("sweep_budget")):
        raise bad(
            "sweep_budget",
            ...,
            "an envelope is shared by the jobs of a multirun",
            "-m with a sweep, or budget.<key> for one run",
        )
    _check(single_cfg, accepted, job_num=None)


def check_multirun(name: str, overrides: list[Override], accepted: Accepted) -> None:
    """Every job's values first, then where the jobs write: a wrong element is named even when
    the sweep directory is wrong too (as a single run checks its directory last)."""
    jobs = [
        _check(composed(name, combination), accepted, job_num=job_num, dirs=False)
        for job_num, combination in enumerate(sweep_combinations(name, overrides))
    ]
    check_envelope_sweeper(jobs[0][0])
    check_launcher(jobs[0][0])
    job_dirs: dict[Path, int] = {}
    for job_num, (_, job_dir) in enumerate(jobs):
        if job_dir in job_dirs:  # hydra.sweep.subdir without ${hydra.job.num}
            raise bad(
                "hydra.sweep.subdir",
                job_dir.name,
                f"jobs {job_dirs[job_dir]} and {job_num} would write into one directory",
                "a subdirectory per job, e.g. ${hydra.job.num}",
            )
        job_dirs[job_dir] = job_num
    for cfg, job_dir in jobs:
        check_dirs(cfg, job_dir, "hydra.sweep.dir")


def _check(
    cfg: DictConfig, accepted: Accepted, job_num: int | None, dirs: bool = True
) -> tuple[DictConfig, Path]:
    """Check one job (its output directories too, unless `dirs` is False: `check_dirs`);
    returns its configuration as it will run and the directory it writes into. A job checked
    as it will run here is `accepted` under the configuration Hydra will compose for it."""
    key = "hydra.run.dir" if job_num is None else "hydra.sweep.dir"
    set_output_dir(cfg, job_num, key)
    output_dir = Path(str(cfg.hydra.runtime.output_dir))
    as_composed = cfg
    check_hydra(cfg)
    check_output_dir_key(cfg, output_dir, key)
    if cfg.get("ckpt_path") or cfg.get("resume"):
        from frugal.runs.checkpoint import resolve_resume  # torch: only a resumed run needs it

        cfg = resolve_resume(cfg)
        check_resumed_here(cfg, output_dir, key)
    here = job_num is None or not runs_elsewhere(cfg)
    checked = check_config(cfg, output_key=key, on_this_machine=here, check_dirs=False)
    if dirs:
        check_dirs(cfg, output_dir, key)
    if here:  # a job another machine runs checks what is that machine's itself
        accepted.add(as_composed, checked)
    return cfg, output_dir


def check_dirs(cfg: DictConfig, output_dir: Path, key: str) -> None:
    """Where the job writes: never into (or inside) another run's directory. A job of a sweep
    relaunched with the same envelope continues its own directory (`frugal.sweep.envelope`)."""
    if continues_sweep(cfg):
        return
    HydraConfig.instance().set_config(cfg)  # ${hydra:runtime.output_dir} of this very job
    node = plain(cfg)
    node.pop("hydra", None)
    check_output_dirs(node, key)
    check_not_inside_a_run(key, output_dir)


def check_envelope_sweeper(cfg: DictConfig) -> None:
    """A sweeper that allocates an envelope (hydra/sweeper=halving) has settings it can run
    with and an envelope declared."""
    sweeper = str(OmegaConf.select(cfg, "hydra.sweeper._target_", default="") or "")
    if sweeper.endswith("HalvingSweeper"):
        check_settings(OmegaConf.to_container(cfg.hydra.sweeper, resolve=True))
    if sweeper.endswith("HalvingSweeper") and not declared(cfg.get("sweep_budget")):
        raise bad(
            "hydra/sweeper",
            "halving",
            "allocates a sweep's budget envelope, and none is declared",
            "sweep_budget.<key>=<amount> as well, e.g. sweep_budget.energy=2kJ",
        )


# Programs a launcher runs on this machine: SLURM's (submitit submits with sbatch, and refuses
# to start without srun, which its job script runs).
LAUNCHER_PROGRAMS = {"SlurmLauncher": ("srun", "sbatch")}


def check_launcher(cfg: DictConfig) -> None:
    """A launcher whose programs are missing here (hydra/launcher=slurm off a SLURM cluster)
    is refused before the sweep writes anything."""
    target = str(OmegaConf.select(cfg, "hydra.launcher._target_", default="") or "")
    for launcher, programs in LAUNCHER_PROGRAMS.items():
        missing = [program for program in programs if shutil.which(program) is None]
        if target.endswith(launcher) and missing:
            choices = OmegaConf.select(cfg, "hydra.runtime.choices", default=None) or {}
            raise bad(
                "hydra/launcher",
                choices.get("hydra/launcher") or target.rpartition(".")[2],
                f"needs {' and '.join(missing)}, not found on PATH (this is not a SLURM login "
                "node)",
                "a SLURM cluster's login node, or no hydra/launcher (jobs run here)",
            )


def continues_sweep(cfg: DictConfig) -> bool:
    """A job of a sweep relaunched with its envelope (ConfigError: another envelope's sweep)."""
    sweep_budget = cfg.get("sweep_budget")
    if not declared(sweep_budget) or OmegaConf.select(cfg, "hydra.sweep.dir") is None:
        return False
    sweep_dir = Path(str(cfg.hydra.sweep.dir))
    state = read_envelope(sweep_dir)
    if state is None:
        return False
    check_same(state, envelope_of(sweep_budget), sweep_dir)
    return True


def check_hydra(cfg: DictConfig) -> None:
    """Hydra's own settings that would make it write outside the run, or crash after start."""
    subdir = OmegaConf.select(cfg, "hydra.output_subdir", default=None)
    if subdir is not None:
        parts = Path(str(subdir)).parts
        if not str(subdir).strip() or Path(str(subdir)).is_absolute() or ".." in parts:
            raise bad(
                "hydra.output_subdir",
                str(subdir),
                "not a folder inside the run directory",
                "null or a relative folder name, e.g. .hydra",
            )
    sweeper = OmegaConf.select(cfg, "hydra.sweeper", default=None)
    for name in ("n_trials", "n_jobs", "max_batch_size"):
        value = sweeper.get(name) if isinstance(sweeper, DictConfig) else None
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise bad(f"hydra.sweeper.{name}", value, "not accepted", "a whole number >= 1")


def check_output_dir_key(cfg: DictConfig, output_dir: Path, key: str) -> None:
    """`paths.output_dir` follows Hydra's directory: set apart, a run's outputs and its
    `.hydra/` and log would be split between two places."""
    try:
        named = OmegaConf.select(cfg, "paths.output_dir", default=None)
    except OmegaConfBaseException:
        return  # check_config names it
    if named is not None and not _same_place(Path(str(named)), output_dir):
        raise bad(
            "paths.output_dir",
            str(named),
            f"differs from {key}={output_dir}",
            f"no paths.output_dir (it follows {key}); set {key} instead",
        )


def check_resumed_here(cfg: DictConfig, output_dir: Path, key: str) -> None:
    """A resumed run continues in its own directory: Hydra must write nowhere else (its
    `.hydra/` and log would land in, and overwrite, another directory's)."""
    run = Path(str(cfg.paths.output_dir))
    if cfg.get("compress") or _same_place(run, output_dir):
        return
    named = "resume" if cfg.get("resume") else "ckpt_path"
    raise bad(
        key,
        str(output_dir),
        f"{named} resumes the run in {run}, which continues in its own directory",
        "one resumed run at a time, without -m"
        if key == "hydra.sweep.dir"
        else f"no {key} (the run's own is used), or {key}={run}",
    )


def _same_place(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().resolve() == b.expanduser().resolve()
    except (OSError, RuntimeError):
        return False


# Launchers whose jobs run on other machines (SLURM, Ray on AWS, RQ workers): GPUs and energy
# counters are the compute node's, checked by each job when it starts, not the login node's.
REMOTE_LAUNCHERS = ("SlurmLauncher", "RayAWSLauncher", "RQLauncher")


def runs_elsewhere(cfg: DictConfig) -> bool:
    target = str(OmegaConf.select(cfg, "hydra.launcher._target_", default="") or "")
    return target.endswith(REMOTE_LAUNCHERS)
