"""The command line's logging: one handler for the library's records, and a way to quiet
them while a command reports the same events itself.

The library logs under ``nngsec.*`` (one logger per module) and never sets a level or adds a
handler: that is the application's choice. The command line is an application, so it
installs a handler; the demo, which shows every rejection in its table, and the bench
filter what reaches the handlers instead of changing any logger, so a program that runs
them in process (the tests do) keeps its own logging as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["configure", "quieted"]

FORMAT = "nngsec: %(levelname)s: %(message)s"


def configure() -> None:
    """Warnings and errors of nngsec on stderr, unless the process configured logging."""
    logging.basicConfig(level=logging.WARNING, format=FORMAT)


def _ours(record: logging.LogRecord) -> bool:
    return record.name == "nngsec" or record.name.startswith("nngsec.")


@contextmanager
def quieted(level: int = logging.ERROR) -> Iterator[None]:
    """While inside, nngsec's records below ``level`` do not reach the root logger's
    handlers nor Python's last-resort handler (a process with no logging set up, such as a
    spawned child). No logger's level, handlers or propagation is changed; a handler that a
    user attached to an ``nngsec`` logger still sees everything."""

    def keep(record: logging.LogRecord) -> bool:
        return record.levelno >= level or not _ours(record)

    handlers = [*logging.getLogger().handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        handler.addFilter(keep)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)
