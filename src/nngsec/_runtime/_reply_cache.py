"""The reply cache of a secured Rep socket (see :class:`ReplyCache`)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["ReplyCache"]


class ReplyCache:
    """What a server answered, by digest of the request frame, so that a request nng sends
    again (after ``resend_time``, 60 s by default, or a reconnect) is answered again rather
    than processed twice.

    It is consulted before any other check: only a byte-identical copy of a request that
    passed every check (and was answered) can match, and what it gets back is the same
    reply bytes, readable only by the client. Entries expire after ``RETENTION`` seconds
    and the cache holds at most ``MAX_BYTES`` of replies.
    """

    RETENTION = 300.0
    MAX_BYTES = 16 << 20
    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_progress: OrderedDict[bytes, float] = OrderedDict()
        self._answered: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0

    def started(self, digest: bytes) -> None:
        with self._lock:
            self._in_progress[digest] = time.monotonic()
            self._trim(time.monotonic())

    def answered(self, digest: bytes, reply: bytes) -> None:
        now = time.monotonic()
        with self._lock:
            self._in_progress.pop(digest, None)
            self._answered[digest] = (reply, now)
            self._bytes += len(reply)
            self._trim(now)

    def lookup(self, digest: bytes) -> tuple[bool, bytes | None]:
        """(seen before?, the reply if it was answered)."""
        with self._lock:
            self._trim(time.monotonic())
            entry = self._answered.get(digest)
            if entry is not None:
                return True, entry[0]
            return digest in self._in_progress, None

    def _trim(self, now: float) -> None:
        answered = self._answered
        while answered and (
            len(answered) > self.MAX_ENTRIES
            or self._bytes > self.MAX_BYTES
            or now - next(iter(answered.values()))[1] > self.RETENTION
        ):
            _, (reply, _) = answered.popitem(last=False)
            self._bytes -= len(reply)
        pending = self._in_progress
        while pending and (
            len(pending) > self.MAX_ENTRIES or now - next(iter(pending.values())) > self.RETENTION
        ):
            pending.popitem(last=False)
