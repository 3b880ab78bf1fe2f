"""The reply cache of a secured Rep socket (see :class:`ReplyCache`)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Protocol

__all__ = ["Parked", "ReplyCache"]


class Parked(Protocol):
    """A server context that received a copy of a request still being processed, waiting
    to be answered with the reply of the first copy. Neither method raises."""

    def send(self, reply: bytes) -> None: ...

    def close(self) -> None: ...


class ReplyCache:
    """What a server answered, by digest of the request frame, so that a request nng sends
    again (after ``resend_time``, 60 s by default, or a reconnect) is answered again rather
    than processed twice.

    It is consulted before any other check: only a byte-identical copy of a request that
    passed every check (and was answered) can match, and what it gets back is the same
    reply bytes, readable only by the client. Entries expire after ``RETENTION`` seconds
    and the cache holds at most ``MAX_BYTES`` of replies.

    A copy that arrives while the first is still being processed (on a server with
    contexts) is *parked*: its context is answered with the same reply once it exists,
    since that copy may carry the client's newest request id (a client sends its request
    again after a rejected reply, and NNG then routes only the newest id's reply to it).
    At most ``MAX_PARKED`` contexts wait at a time; beyond that a copy is dropped.
    """

    RETENTION = 300.0
    MAX_BYTES = 16 << 20
    MAX_ENTRIES = 4096
    MAX_PARKED = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_progress: OrderedDict[bytes, float] = OrderedDict()
        self._answered: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._parked: dict[bytes, list[Parked]] = {}
        self._parked_count = 0

    def claim(self, digest: bytes) -> tuple[bool, bytes | None]:
        """(seen before?, the reply if it was answered). A request not seen before is in
        progress from now on, in the same step, so that a copy another context receives
        meanwhile is recognised even while this one is still being checked; a request
        that fails its checks is released (:meth:`release`)."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            entry = self._answered.get(digest)
            if entry is not None:
                return True, entry[0]
            if digest in self._in_progress:
                return True, None
            self._in_progress[digest] = now
            return False, None

    def release(self, digest: bytes) -> None:
        """A claimed request was rejected: forget it (copies parked for it are let go)."""
        with self._lock:
            self._in_progress.pop(digest, None)
            parked = self._unpark(digest)
        for waiting in parked:
            waiting.close()

    def answered(self, digest: bytes, reply: bytes) -> None:
        """Record the reply, and answer the copies parked for it with it."""
        now = time.monotonic()
        with self._lock:
            self._in_progress.pop(digest, None)
            self._answered[digest] = (reply, now)
            self._bytes += len(reply)
            parked = self._unpark(digest)
            self._trim(now)
        for waiting in parked:
            waiting.send(reply)
            waiting.close()

    def park(self, digest: bytes, waiting: Parked) -> bool:
        """Keep ``waiting`` until the request is answered; ``False`` (nothing kept) when it
        is not in progress or too many wait already."""
        with self._lock:
            if digest not in self._in_progress or self._parked_count >= self.MAX_PARKED:
                return False
            self._parked.setdefault(digest, []).append(waiting)
            self._parked_count += 1
            return True

    def close_parked(self) -> None:
        """Let go of every parked context (before the socket closes under them)."""
        with self._lock:
            parked = [waiting for digest in list(self._parked) for waiting in self._unpark(digest)]
        for waiting in parked:
            waiting.close()

    def _unpark(self, digest: bytes) -> list[Parked]:
        parked = self._parked.pop(digest, [])
        self._parked_count -= len(parked)
        return parked

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
            digest, _ = pending.popitem(last=False)
            for waiting in self._unpark(digest):  # never answered: nothing will come
                waiting.close()
