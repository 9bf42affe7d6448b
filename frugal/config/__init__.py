"""One schema for the whole configuration, checked before anything is built or written.

    check_config(cfg) -> Checked          # a composed config (what `frugal.pipeline` calls)
    check_command_line(argv, config_dir)  # argv as `frugal-train` gets it (before Hydra runs)

Every problem raises `ConfigError` whose message is the one line `frugal-train` prints:
`<key>=<value>: <what is wrong>; expected <accepted form>` (exit status 2).
"""

from frugal.config.check import Checked, check_config
from frugal.config.command_line import check_command_line
from frugal.config.usage import help_text
from frugal.core.errors import ConfigError

__all__ = ["Checked", "ConfigError", "check_command_line", "check_config", "help_text"]
