"""The run directory's one owner (DESIGN.md, "The run directory"): what a run directory is,
how a run writes into it (`directory`), one process per run (`locks`), and checkpoints saved
atomically (`checkpoint_io`, imported on its own: it needs torch)."""

from frugal.runs.directory import MARKER, open_nofollow, write_atomic
from frugal.runs.locks import claim, claimed, release, try_claim

__all__ = ["MARKER", "claim", "claimed", "open_nofollow", "release", "try_claim", "write_atomic"]
