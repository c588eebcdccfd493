"""The operators' terminal: a Rich console that never lets stored text drive the terminal.

Whatever the database holds (a name typed before the text policy existed, an import from elsewhere), every
string printed goes through `models.text.for_terminal`: control characters (ESC sequences), bidi controls
(U+202E) and line separators are shown as visible escapes. Lines are never wrapped (`soft_wrap`), so that
a link printed stays one piece a terminal can open.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console

from models.text import for_terminal


class SafeConsole(Console):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("soft_wrap", True)
        super().__init__(**kwargs)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        safe = [for_terminal(o, keep_newlines=True) if isinstance(o, str) else o for o in objects]
        super().print(*safe, **kwargs)


# Prefect's client services (events, logs sent to the API) warn on their own loggers while they drain at
# exit ("EventsWorker - Still processing items: 3 items remaining..."): noise for whoever runs a command,
# the items are sent all the same.
PREFECT_CLIENT_SERVICES = ("EventsWorker", "APILogWorker", "QueueService")


# Prefect's "Created task run … View it in the UI at …" line: the CLI prints its own link to the run.
PREFECT_CLIENT_INFO = ("prefect.tasks",)


def quiet_prefect_client_services() -> None:
    """Keep Prefect's client service warnings away from a CLI user (errors still show), and its client's
    information lines (warnings still show)."""
    for name in PREFECT_CLIENT_SERVICES:
        logging.getLogger(name).setLevel(logging.ERROR)
    for name in PREFECT_CLIENT_INFO:
        # A filter, not a level: Prefect's logging configuration, applied when it is first imported, resets
        # the levels of the loggers under "prefect" (a filter stays).
        logger = logging.getLogger(name)
        if not any(isinstance(f, WarningsOnly) for f in logger.filters):
            logger.addFilter(WarningsOnly())


class WarningsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING
