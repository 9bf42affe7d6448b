"""A command line as Hydra reads it: its flags and overrides parsed by Hydra's own parsers, the
configuration composed as Hydra will compose it (Hydra's errors turned into the one line, naming
the override), the directory each job writes into, and the jobs of a sweep. No run is checked
here (`frugal.command_line`, `frugal.runs.preflight`)."""

from __future__ import annotations

import itertools
import re
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

from frugal.core.errors import ConfigError, bad

MAX_COMBINATIONS = 32  # a larger sweep is checked one element at a time around its first job
MAX_INT_DIGITS = sys.get_int_max_str_digits()  # Python's limit on reading an int from text
OVERRIDE_FORM = "key=value, with a value that has spaces or special characters quoted: key='a b'"


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
            problem = f"Hydra cannot parse it ({first_line(err)})"
            expected = OVERRIDE_FORM
        name = key.lstrip("+~").strip()
        if "=" not in text or not name:
            raise bad(text, ..., problem, expected) from None
        raise bad(name, value, problem, expected) from None


def first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("See https", "^"))]
    return lines[0] if lines else type(err).__name__


def value_text(override: Override) -> str:
    return override.input_line.partition("=")[2] if override.input_line else ""


def quoted(text: str) -> str:
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
            value = value_text(override) if override else option
            return bad(group or found.group(1), value, "no such option", expected)
    for pattern, problem, expected in _COMPOSITION_ERRORS:
        found = re.search(pattern, text)
        if found:
            key = found.group(1)
            override = by_key.get(key)
            value = value_text(override) if override else ...
            return bad(key, value, problem, expected.format(key=key, value=value))
    cause = err.__cause__ or err
    culprit = next((o for o in overrides if o.input_line and o.input_line in text), None)
    culprit = culprit or _culprit(overrides, config_name)
    if culprit is not None:
        return bad(
            culprit.get_key_element(),
            value_text(culprit),
            f"rejected by Hydra ({first_line(cause)})",
            "a value of the type Hydra expects (frugal-train --cfg all)",
        )
    return bad("configuration", ..., first_line(err), OVERRIDE_FORM)


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
            key, raw[where]["dir"], f"cannot be resolved ({first_line(err)})", "a directory path"
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
                key, value_text(override), f"not a sweep ({err})", "a, b, c or range(start, stop)"
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
            value_text(override),
            "glob() selects options of a config group, and this is not one",
            "a list of values: key=a,b,c",
        )
    chosen = glob.filter(options)
    if not chosen:
        raise bad(
            group, value_text(override), "matches no option", f"a pattern for {_few(options)}"
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
