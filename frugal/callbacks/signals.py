"""Stop requests by signal (SIGTERM, SIGINT, SLURM's pre-emption SIGUSR1): noted, never acted on
inside the handler.

Lightning's own SIGTERM handler broadcasts a tensor from inside the handler and kills the other
ranks' processes; a signal that reaches rank 1 then waits on a collective rank 0 never joins
(seen: 5 hangs in 8 trials). Here a handler only records the signal; the budget callback folds
it into the stop decision that every rank agrees on at the end of the step, so all ranks stop on
the same step and save a resumable checkpoint. A second signal of the same kind while the first
is being honoured falls back to the default behaviour (Ctrl-C twice: stop now).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class StopSignals:
    def __init__(self) -> None:
        self._received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def received(self) -> int | None:
        """The first stop signal received, or None."""
        return self._received

    def install(self) -> None:
        """Take over the stop signals (again: Lightning installs its own at the start of fit).
        Only the main thread may set handlers; elsewhere this does nothing."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            current = signal.getsignal(signum)
            if current is not self._handle:
                self._previous.setdefault(signum, current)
                signal.signal(signum, self._handle)

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._received is None:
            self._received = signum
            return
        # Asked again: stop at once, the default way.
        signal.signal(signum, signal.SIG_DFL)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.raise_signal(signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
