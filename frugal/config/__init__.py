"""The configuration's schema and checks of its values, before anything is built or written.

    check_values(check_top(cfg), ...) -> Checked  # frugal.config.check: the values alone
    Accepted                                     # what the command line checked, by value

A whole run's check (files, checkpoints, its directory) is `frugal.runs.preflight.check_config`;
`frugal-train`'s, before Hydra runs, `frugal.command_line.check_command_line`. A run's
configuration is checked once per process; each function is handed the `Checked`.

Every problem raises `ConfigError` whose message is the one line `frugal-train` prints:
`<key>=<value>: <what is wrong>; expected <accepted form>` (exit status 2).
"""

from frugal.config.accepted import Accepted
from frugal.config.check import Checked
from frugal.config.usage import help_text
from frugal.core.errors import ConfigError

__all__ = ["Accepted", "Checked", "ConfigError", "help_text"]
