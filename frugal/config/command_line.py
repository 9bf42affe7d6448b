"""`frugal-train`'s command line, checked before Hydra runs anything.

Hydra writes `.hydra/` into the run directory before the task function starts, so a check made
inside the job would be too late to leave an earlier run untouched. `check_command_line`
therefore composes the configuration itself (Hydra's compose API, the same config search path
and overrides), turns Hydra's own errors into the one-line form, and runs `check_config` on
the result; in a multirun, on every element of every sweep. Only then does `@hydra.main` run.
"""

from __future__ import annotations

import itertools
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, IntervalSweep, Override
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from frugal.config.check import check_config, plain
from frugal.config.rundir import check_not_inside_a_run, check_output_dirs
from frugal.core.errors import ConfigError, bad
from frugal.sweep.envelope import check_same, declared, envelope_of, read_envelope

# Flags after which Hydra does not train: nothing to check (it prints, completes, or explains).
NO_RUN_FLAGS = ("hydra_help", "cfg", "info", "shell_completion", "experimental_rerun")
MAX_COMBINATIONS = 32  # a larger sweep is checked one element at a time around its first job
MAX_INT_DIGITS = sys.get_int_max_str_digits()  # Python's limit on reading an int from text
OVERRIDE_FORM = "key=value, with a value that has spaces or special characters quoted: key='a b'"


def check_command_line(argv: list[str], config_dir: str, config_name: str = "train") -> None:
    """Raise ConfigError (one line) for anything wrong on `argv`; return when Hydra may run."""
    args = parse_flags(argv)
    if any(getattr(args, flag, None) for flag in NO_RUN_FLAGS):
        return
    overrides = [parse_override(text) for text in args.overrides]
    for flag, value in (("--config-dir", args.config_dir), ("--config-path", args.config_path)):
        if value and not Path(value).expanduser().is_dir():
            raise bad(flag, value, "no such directory", "a directory of config files (.yaml)")
    if args.config_dir:
        overrides.append(
            parse_override(f"hydra.searchpath=[{_quoted('file://' + args.config_dir)}]")
        )
    primary = str(Path(args.config_path).absolute()) if args.config_path else config_dir
    name = args.config_name or config_name
    with initialize_config_dir(config_dir=primary, version_base="1.3", job_name="train"):
        if not args.multirun:
            single = [o for o in overrides if o.is_sweep_override()]
            if single:
                o = single[0]
                raise bad(
                    o.get_key_element(),
                    _value_text(o),
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
            _check(single_cfg, job_num=None)
            return
        # Every job's values first, then where the jobs write: a wrong element is named even
        # when the sweep directory is wrong too (as a single run checks its directory last).
        jobs = [
            _check(composed(name, combination), job_num=job_num, dirs=False)
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


def _check(cfg: DictConfig, job_num: int | None, dirs: bool = True) -> tuple[DictConfig, Path]:
    """Check one job (its output directories too, unless `dirs` is False: `check_dirs`);
    returns its configuration as it will run and the directory it writes into."""
    key = "hydra.run.dir" if job_num is None else "hydra.sweep.dir"
    set_output_dir(cfg, job_num, key)
    output_dir = Path(str(cfg.hydra.runtime.output_dir))
    check_hydra(cfg)
    check_output_dir_key(cfg, output_dir, key)
    if cfg.get("ckpt_path") or cfg.get("resume"):
        from frugal.checkpoint import resolve_resume  # the run's own configuration, restored

        cfg = resolve_resume(cfg)
        check_resumed_here(cfg, output_dir, key)
    here = job_num is None or not runs_elsewhere(cfg)
    check_config(cfg, output_key=key, on_this_machine=here, check_dirs=False)
    if dirs:
        check_dirs(cfg, output_dir, key)
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
        from frugal.sweep.halving import check_settings

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


# ---- flags and overrides ---------------------------------------------------------------------
def parse_flags(argv: list[str]) -> Any:
    """Hydra's own flags (`-m`, `--cfg`, `-cd` ...), parsed by Hydra's own parser."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()

    def error(message: str) -> None:
        raise ConfigError(
            f"{message}; expected key=value overrides and Hydra's flags (frugal-train --help)"
        )

    parser.error = error  # type: ignore[method-assign]
    return parser.parse_args(argv)


def parse_override(text: str) -> Override:
    try:
        override = OverridesParser.create().parse_overrides([text])[0]
        if not override.key_or_group:
            raise bad(text, ..., "no key before '='", OVERRIDE_FORM)
        return override
    except (HydraException, ValueError) as err:  # ValueError: Python's 4,300-digit int limit
        key, _, value = text.partition("=")
        odd = next((c for c in text if not c.isascii() or not c.isprintable()), None)
        digits = max((len(run) for run in re.findall(r"\d+", value)), default=0)
        if isinstance(err, ValueError) and 0 < MAX_INT_DIGITS < digits:
            problem = f"a number of {digits:,} digits"
            expected = f"a number of at most {MAX_INT_DIGITS:,} digits (1e30 for a large one)"
        elif odd is not None:
            problem = f"holds {odd!r} (U+{ord(odd):04X}), which Hydra's override syntax rejects"
            expected = "plain ASCII, or the value quoted: key='...'"
        else:
            problem = f"Hydra cannot parse it ({_first_line(err)})"
            expected = OVERRIDE_FORM
        name = key.lstrip("+~").strip()
        if "=" not in text or not name:
            raise bad(text, ..., problem, expected) from None
        raise bad(name, value, problem, expected) from None


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("See https", "^"))]
    return lines[0] if lines else type(err).__name__


def _value_text(override: Override) -> str:
    return override.input_line.partition("=")[2] if override.input_line else ""


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---- composition -----------------------------------------------------------------------------
def composed(config_name: str, overrides: list[Override]) -> DictConfig:
    """The configuration Hydra would build; its errors as one line naming the override."""
    lines = [o.input_line for o in overrides]
    try:
        return compose(config_name, overrides=lines, return_hydra_config=True)
    except Exception as err:  # Hydra raises ValueError and others besides its own errors
        raise hydra_error(err, overrides, config_name) from None


def hydra_error(err: BaseException, overrides: list[Override], config_name: str) -> ConfigError:
    """Hydra's composition errors (several lines each) as the one-line form."""
    text = str(err)
    by_key = {o.key_or_group: o for o in overrides}
    if isinstance(err, MissingConfigException):
        found = re.search(r"Could not find '([^']+)'", text)
        if found:
            group, _, option = found.group(1).rpartition("/")
            options = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], re.M)
            expected = f"one of {', '.join(options)}" if options else "an existing option"
            override = by_key.get(group)
            value = _value_text(override) if override else option
            return bad(group or found.group(1), value, "no such option", expected)
    for pattern, problem, expected in _COMPOSITION_ERRORS:
        found = re.search(pattern, text)
        if found:
            key = found.group(1)
            override = by_key.get(key)
            value = _value_text(override) if override else ...
            return bad(key, value, problem, expected.format(key=key, value=value))
    cause = err.__cause__ or err
    culprit = next((o for o in overrides if o.input_line and o.input_line in text), None)
    culprit = culprit or _culprit(overrides, config_name)
    if culprit is not None:
        return bad(
            culprit.get_key_element(),
            _value_text(culprit),
            f"rejected by Hydra ({_first_line(cause)})",
            "a value of the type Hydra expects (frugal-train --cfg all)",
        )
    return bad("configuration", ..., _first_line(err), OVERRIDE_FORM)


def _culprit(overrides: list[Override], config_name: str) -> Override | None:
    """The first override that fails on its own (for an error that does not name it)."""
    for override in overrides:
        try:
            compose(config_name, overrides=[override.input_line], return_hydra_config=True)
        except Exception:
            return override
    return None


_COMPOSITION_ERRORS = (
    (
        r"Could not override '([^']+)'",
        "unknown key",
        "a key of the configuration (frugal-train --cfg job lists them), or +{key}=... to add one",
    ),
    (
        r"Could not append to config. An item is already at '([^']+)'",
        "already set (+ adds a new key)",
        "{key}=... without the +",
    ),
    (
        r"Could not delete from config. '([^']+)' does not exist",
        "no such key to delete",
        "~ before an existing key",
    ),
    (
        r"Error merging override ([^=\s]+)=",
        "not of the type Hydra declares",
        "a value of the declared type (frugal-train --cfg hydra shows it)",
    ),
)


def set_output_dir(cfg: DictConfig, job_num: int | None, key: str) -> None:
    """Fill `hydra.runtime.output_dir` as Hydra will (run: `hydra.run.dir`; multirun:
    `hydra.sweep.dir/hydra.sweep.subdir` of job `job_num`), so `${paths.output_dir}`
    resolves to the directory the run would write into."""
    if job_num is not None:
        with read_write(cfg.hydra.job), open_dict(cfg.hydra.job):
            cfg.hydra.job.num = job_num
            cfg.hydra.job.id = str(job_num)
    HydraConfig.instance().set_config(cfg)
    try:
        if job_num is None:
            output_dir = Path(str(cfg.hydra.run.dir))
        else:
            output_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
    except OmegaConfBaseException as err:
        raw = OmegaConf.to_container(cfg.hydra, resolve=False)
        where = "run" if job_num is None else "sweep"
        raise bad(
            key, raw[where]["dir"], f"cannot be resolved ({_first_line(err)})", "a directory path"
        ) from None
    where = cfg.hydra.run.dir if job_num is None else cfg.hydra.sweep.dir
    if not str(where).strip():  # Hydra would write into the working directory itself
        raise bad(key, str(where), "empty", "a directory path, e.g. outputs/<name>")
    if job_num is not None and not str(cfg.hydra.sweep.subdir).strip():
        raise bad(
            "hydra.sweep.subdir",
            "",
            "empty: every job would write into one directory",
            "a subdirectory per job, e.g. ${hydra.job.num}",
        )
    with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
        cfg.hydra.runtime.output_dir = str(output_dir.absolute())
    HydraConfig.instance().set_config(cfg)


# ---- sweeps ----------------------------------------------------------------------------------
def sweep_combinations(config_name: str, overrides: list[Override]) -> Iterator[list[Override]]:
    """The overrides of each job to check: every job of a small sweep, else the first job and
    each other element of each sweep on top of it (a wrong value is then found, a wrong pair
    of values is left to the job)."""
    fixed = [o for o in overrides if not o.is_sweep_override()]
    sweeps = [(o.get_key_element(), elements(o)) for o in overrides if o.is_sweep_override()]
    first = [*fixed, *(values[0] for _, values in sweeps if values)]
    base = composed(config_name, first)
    swept = {key.lstrip("+~") for key, _ in sweeps}
    for key, value in (OmegaConf.select(base, "hydra.sweeper.params") or {}).items():
        if key not in swept:  # the command line wins over the config's grid
            sweeps.append((key, elements(parse_override(f"{key}={value}"))))
    sweeps = [(key, values) for key, values in sweeps if values]
    total = 1
    for _, values in sweeps:
        total *= len(values)
    if total <= MAX_COMBINATIONS:
        for chosen in itertools.product(*(values for _, values in sweeps)):
            yield [*fixed, *chosen]
        return
    firsts = [values[0] for _, values in sweeps]
    yield [*fixed, *firsts]
    for i, (_, values) in enumerate(sweeps):
        for value in values[1:]:
            yield [*fixed, *firsts[:i], value, *firsts[i + 1 :]]


def elements(override: Override) -> list[Override]:
    """One plain override per element of a sweep; an interval gives its two ends; a sweep
    Hydra can only expand with its config loader (glob) gives none (left to Hydra)."""
    if not override.is_sweep_override():
        return [override]
    key = override.get_key_element()
    value = override.value()
    if isinstance(value, IntervalSweep):
        texts = [str(value.start), str(value.end)]
    elif isinstance(value, Glob):
        texts = _glob_options(override, value)
    else:
        try:
            texts = list(override.sweep_string_iterator())
        except ValueError as err:  # range(0, 3, 0)
            raise bad(
                key, _value_text(override), f"not a sweep ({err})", "a, b, c or range(start, stop)"
            ) from None
        except (HydraException, AttributeError, TypeError):
            return []
    return [parse_override(f"{key}={text}") for text in texts]


def _glob_options(override: Override, glob: Glob) -> list[str]:
    """The options of a config group that `glob(...)` selects (as Hydra's loader expands it)."""
    from hydra.core.global_hydra import GlobalHydra

    group = override.key_or_group
    options: list[str] = []
    if GlobalHydra.instance().is_initialized():
        options = GlobalHydra.instance().config_loader().get_group_options(group)
    if not options:
        raise bad(
            group,
            _value_text(override),
            "glob() selects options of a config group, and this is not one",
            "a list of values: key=a,b,c",
        )
    chosen = glob.filter(options)
    if not chosen:
        raise bad(
            group, _value_text(override), "matches no option", f"a pattern for {_few(options)}"
        )
    return chosen


def _few(names: list[str], most: int = 12) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


# ---- sweeps with an envelope (frugal.sweep.launch) -------------------------------------------
def first_job(overrides: list[str], config_dir: str, name: str | None) -> DictConfig:
    """The composed configuration of a sweep's first job (Hydra's own settings included)."""
    parsed = [parse_override(text) for text in overrides]
    with initialize_config_dir(config_dir=config_dir, version_base="1.3", job_name="train"):
        return next(iter(sweep_combinations_cfgs(name or "train", parsed)))


def sweep_combinations_cfgs(config_name: str, overrides: list[Override]) -> Iterator[DictConfig]:
    for combination in sweep_combinations(config_name, overrides):
        yield composed(config_name, combination)


def planned_jobs(overrides: list[str], config_dir: str, name: str | None) -> int:
    """How many jobs the basic sweeper launches: the product of every sweep's elements."""
    parsed = [parse_override(text) for text in overrides]
    with initialize_config_dir(config_dir=config_dir, version_base="1.3", job_name="train"):
        config_name = name or "train"
        fixed_and_first = [o for o in parsed if not o.is_sweep_override()]
        base = composed(config_name, fixed_and_first)
        counts = {
            o.get_key_element().lstrip("+~"): len(elements(o))
            for o in parsed
            if o.is_sweep_override()
        }
        for key, value in (OmegaConf.select(base, "hydra.sweeper.params") or {}).items():
            counts.setdefault(key, len(elements(parse_override(f"{key}={value}"))))
    total = 1
    for count in counts.values():
        total *= max(count, 1)
    return total
