"""How a run ended: the one enum of statuses shared by the run, the report and the studies,
and the exit status `frugal-train` returns for each (the contract in README, "Statuses").

Kept free of heavy imports: `frugal-report` reads it too.
"""

from __future__ import annotations

import signal
from enum import StrEnum


class Status(StrEnum):
    COMPLETED = "completed"  # the configured horizon was reached, no budget crossed
    BUDGET_EXHAUSTED = "budget_exhausted"  # a budget ran out; stopped_by names it
    REFUSED = "refused"  # the planner refused, before or (on forecast) during training
    DIVERGED = "diverged"  # a non-finite loss; message names the step
    UNENFORCEABLE = "unenforceable"  # an enforced budget lost its meter mid-run
    INTERRUPTED = "interrupted"  # a signal: SIGTERM, SIGINT, SLURM's pre-emption signal
    WRITE_FAILED = "write_failed"  # an output could not be written; message names path, errno


# Statuses whose runs trained as planned: the only ones a Pareto frontier may use.
FRONTIER_STATUSES = frozenset({Status.COMPLETED, Status.BUDGET_EXHAUSTED})
# Statuses of runs that stopped before their end and continue with `resume=<run>` (the last
# complete checkpoint and the ledger are intact): a sweep relaunches them, an envelope keeps
# their reservation. Every other status is final.
RESUMABLE_STATUSES = frozenset({Status.INTERRUPTED, Status.WRITE_FAILED})
FINAL_STATUSES = frozenset(Status) - RESUMABLE_STATUSES
# An envelope's job while it runs (or after a kill left it so): not a Status, since a run never
# records it; resumed like the resumable statuses.
RUNNING = "running"

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1  # a bug: a traceback, never a user's mistake
EXIT_BAD_INPUT = 2  # rejected before any work, one line on stderr
EXIT_BUDGET_ERROR = 3  # budget_exhausted under budget.on_exceed=error
EXIT_REFUSED = 4
EXIT_DIVERGED = 5
EXIT_UNENFORCEABLE = 6
EXIT_WRITE_FAILED = 7
EXIT_SIGNAL_BASE = 128  # interrupted: 128 + the signal number (SIGTERM: 143, SIGINT: 130)


def exit_code(status: str, on_exceed: str = "stop", signum: int | None = None) -> int:
    """The exit status of a run that ended with `status`."""
    status = Status(status)
    if status is Status.BUDGET_EXHAUSTED:
        return EXIT_BUDGET_ERROR if on_exceed == "error" else EXIT_OK
    if status is Status.INTERRUPTED:
        return EXIT_SIGNAL_BASE + int(signum if signum is not None else signal.SIGTERM)
    return {
        Status.COMPLETED: EXIT_OK,
        Status.REFUSED: EXIT_REFUSED,
        Status.DIVERGED: EXIT_DIVERGED,
        Status.UNENFORCEABLE: EXIT_UNENFORCEABLE,
        Status.WRITE_FAILED: EXIT_WRITE_FAILED,
    }[status]


EXIT_CODES_HELP = (
    "exit status: 0 completed or budget_exhausted, 1 internal error, 2 bad input, "
    "3 budget_exhausted under budget.on_exceed=error, 4 refused, 5 diverged, 6 unenforceable, "
    "7 write_failed (disk full, permissions), 128+N interrupted by signal N (143 SIGTERM, "
    "130 SIGINT)"
)
