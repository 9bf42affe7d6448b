"""A run outside Lightning's loop: its directory, its files and its life.

- The run directory's one owner (DESIGN.md, "The run directory"): what a run directory is and
  how a run writes into it (`directory`), one process per run (`locks`), where a run may write
  (`rundir`), checkpoints saved atomically (`checkpoint_io`), `result.json` and `curve.csv`
  (`record`), writes that fail (`write_faults`).
- Before it starts: its configuration and what it names checked (`preflight`), checkpoints read
  and resumed by run (`checkpoint`), a distillation teacher (`distill`).
- While and after it runs: stop signals (`signals`), the record of a run stopped outside the
  loop (`stop_record`), attempts set aside (`attempts`), cluster jobs requeued (`cluster`),
  loggers that append (`loggers`), the inference measurement (`inference`), the summary.
Modules that need torch are imported on their own; this package's face is plain Python."""

from frugal.runs.directory import MARKER, open_nofollow, write_atomic
from frugal.runs.locks import claim, claimed, release, try_claim

__all__ = ["MARKER", "claim", "claimed", "open_nofollow", "release", "try_claim", "write_atomic"]
