"""The one watcher thread of a node that follows its source (``Node(watch=True)``).

It waits for new sets from the source and hands each to the node, which verifies it and
switches (or refuses it, saying why in one log line). The thread is a daemon, holds the
node only weakly (a node dropped without ``close()`` does not keep it running: the
thread stops when the node is collected), and ``stop()`` ends it: the node's ``close()``.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Protocol

from ._source import Source
from ._trust import CandidateSet

__all__ = ["DEFAULT_WATCH_INTERVAL", "Watcher"]

logger = logging.getLogger(__name__)
DEFAULT_WATCH_INTERVAL = 1.0  # seconds between two looks at the files (or store retries)
STOP_TIMEOUT = 10.0


class _Follower(Protocol):
    identity: str

    def offer(self, candidate: CandidateSet) -> bool: ...


class Watcher:
    """Feeds a node the sets its source delivers, in a daemon thread, until stopped."""

    def __init__(self, node: _Follower, source: Source, interval: float) -> None:
        self._node = weakref.ref(node)
        self._source = source
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"nngsec-watch-{node.identity}", daemon=True
        )
        # A node dropped without close(): stop the thread when it is collected.
        self._finalizer = weakref.finalize(node, self._signal)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self._follow()
        except Exception as error:  # the source broke: say so once, instead of dying silently
            logger.error(
                "stopped watching %s: internal error %s: %s (still running the last verified "
                "set; please report it)",
                self._source.where,
                type(error).__name__,
                error,
            )
        finally:
            self._stop.set()

    def _follow(self) -> None:
        for candidate in self._source.changes(self._stop, self._interval):
            node = self._node()
            if node is None or self._stop.is_set():
                return
            try:
                node.offer(candidate)
            except Exception as error:  # a bug must not end the watching silently
                logger.error(
                    "watching %s: internal error %s: %s (still running the last "
                    "verified set; please report it)",
                    self._source.where,
                    type(error).__name__,
                    error,
                )
            del node

    def _signal(self) -> None:
        self._stop.set()
        self._source.interrupt()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """End the thread and wait for it (a set being applied is finished first)."""
        self._finalizer.detach()
        self._signal()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(STOP_TIMEOUT)
