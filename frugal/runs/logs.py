"""Console logging, each line once (wired in conf/hydra/default.yaml)."""

from __future__ import annotations

import logging


class NotFrom(logging.Filter):
    """Drops the records of one logger and its children.

    Lightning adds a console handler of its own to the `lightning` logger when it is imported
    (after Hydra has set logging up, so Hydra's configuration cannot remove it) and lets its
    records propagate: the root's console would print each of them a second time. The root's
    console therefore skips them; the log file still gets them.
    """

    def __init__(self, name: str):
        super().__init__()
        self.excluded = name

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == self.excluded or record.name.startswith(self.excluded + "."))
