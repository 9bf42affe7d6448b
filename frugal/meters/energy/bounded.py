"""Run a backend call that may never return, and give up on it after a deadline.

Backends talk to drivers, sysfs and codecarbon's threads; any of them can hang (a GPU fallen off
the bus, a lock never released). The call runs in a daemon thread and the caller waits at most
`timeout_s`. A thread cannot be killed: one that never returns is abandoned, and being a daemon
it never holds up the interpreter's exit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Hung(TimeoutError):
    """The call did not return in time; the message names the call and the timeout."""


def call_bounded(
    fn: Callable[[], T],
    timeout_s: float,
    what: str,
    on_late: Callable[[], object] | None = None,
) -> T:
    """`fn()`'s result (or its exception) if it returns within `timeout_s`, else raise `Hung`.

    `on_late` runs in the abandoned thread if `fn` returns normally after the caller gave up:
    a backend that finishes starting after its timeout is stopped again, not left running.
    """
    outcome: list[tuple[bool, object]] = []  # [(ok, value or exception)]
    guard = threading.Lock()  # one of the two sides decides: delivered, or abandoned
    abandoned = False
    done = threading.Event()

    def run() -> None:
        try:
            result: tuple[bool, object] = (True, fn())
        except BaseException as err:  # handed to the caller, who decides what it means
            result = (False, err)
        with guard:
            outcome.append(result)
            late = abandoned
        done.set()
        if late and result[0] and on_late is not None:
            try:
                on_late()
            except Exception as err:
                log.debug("energy: undoing the late %s failed: %s", what, err)

    threading.Thread(target=run, name=f"frugal-energy {what}", daemon=True).start()
    done.wait(timeout_s)
    with guard:
        if not outcome:
            abandoned = True
            raise Hung(f"{what} did not return within {timeout_s:g} s")
    ok, value = outcome[0]
    if not ok:
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]
