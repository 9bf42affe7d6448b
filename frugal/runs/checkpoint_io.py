"""Checkpoints saved atomically in their own directory.

Lightning's `TorchCheckpointIO` writes through fsspec into a temporary file in /tmp and moves
it into place: across file systems that is a copy in place, so a disk that fills up leaves a
truncated `last.ckpt` that can be neither resumed nor reported. Here the checkpoint is written
to a temporary file beside its target, fsynced and renamed over it (`frugal.runs.write_atomic`):
a save that fails leaves the previous checkpoint whole, removes its temporary file, and raises
the OSError (errno kept, naming the checkpoint).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

from frugal.runs.directory import write_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose local saves are atomic in the checkpoint's own directory
    (remote URLs keep Lightning's own transaction)."""

    @override
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()  # serialised first: a failed write is then an OSError, not torch's
        torch.save(checkpoint, buffer)
        write_atomic(target, buffer.getbuffer())

    @override
    def remove_checkpoint(self, path: _PATH) -> None:
        """A checkpoint file (or link) is unlinked, never followed."""
        if not _is_local_file_protocol(path) or (os.path.isdir(path) and not os.path.islink(path)):
            super().remove_checkpoint(path)
            return
        Path(path).unlink(missing_ok=True)
