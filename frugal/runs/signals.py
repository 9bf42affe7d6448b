"""Stop requests by signal (SIGTERM, SIGINT, the pre-emption signals SIGUSR1 — SLURM's and
Lightning's convention — and SIGUSR2 — submitit's, or whichever `SUBMITIT_PREEMPT_SIGNAL`
names): noted, never acted on inside the handler. Under a submitit job, a run stopped by a
pre-emption signal is then requeued (`frugal.runs.cluster.requeue`) and resumes where it stopped.

Lightning's own SIGTERM handler broadcasts a tensor from inside the handler and kills the other
ranks' processes; a signal that reaches rank 1 then waits on a collective rank 0 never joins
(seen: 5 hangs in 8 trials). Here a handler only records the signal; the budget callback folds
it into the stop decision that every rank agrees on at the end of the step, so all ranks stop on
the same step and save a resumable checkpoint. A second signal of the same kind while the first
is being honoured falls back to the default behaviour (Ctrl-C twice: stop now).

`frugal-train` installs one `StopSignals` as soon as its command line is accepted and hands it
down to the run: a signal at any later moment — Hydra's start, building data or the model, fit —
is noted, and the next check (between set-up phases, or the step loop) ends the run with
`status: interrupted` and its record (`frugal.runs.stop_record` before training).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any


def _stop_signals() -> tuple[int, ...]:
    """SIGTERM, SIGINT, SIGUSR1, SIGUSR2, and submitit's pre-emption signal if another."""
    found = [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2]
    preempt = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)
    uncatchable = (signal.SIGKILL, signal.SIGSTOP)
    if isinstance(preempt, signal.Signals) and preempt not in (*found, *uncatchable):
        found.append(preempt)
    return tuple(found)


STOP_SIGNALS = _stop_signals()


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
            if current != self._handle:  # a bound method is a new object at every access
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
