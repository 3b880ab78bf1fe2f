"""The reply cache of a secured Rep socket (see :class:`ReplyCache`)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Protocol

from ._wire import KEY_ID_SIZE, SESSION_SIZE

__all__ = ["Parked", "ReplyCache", "RequestEntry", "request_key"]

_PREFIX = 4  # version, kind, flags, channel length: then the channel name
# key id, epoch (u32), session, seq (u64): the request's reference, with its epoch
_REFERENCE = KEY_ID_SIZE + 4 + SESSION_SIZE + 8
_TAG = 16  # the last bytes of the frame: the AEAD tag of a peerbox request


def request_key(frame: bytes, channel_length: int) -> bytes:
    """What a request is found by: its reference (key id, epoch, session and sequence
    number, read where the header of a frame of this channel has them; reqrep frames
    have no topic) and its last 16 bytes, the AEAD tag on a peerbox channel.

    Read at fixed places, without parsing: a frame that is not a valid request gives a
    key that no accepted request has, or one whose entry it is not byte-identical to.
    """
    at = _PREFIX + channel_length
    return frame[at : at + _REFERENCE] + frame[-_TAG:]


class Parked(Protocol):
    """A server context that received a copy of a request still being processed, waiting
    to be answered with the reply of the first copy. Neither method raises."""

    def send(self, reply: bytes) -> None: ...

    def close(self) -> None: ...


@dataclass(eq=False, slots=True)
class RequestEntry:
    """One request: its frame (held, not copied), the reply once sent, and the copies
    that wait for that reply."""

    key: bytes
    request: bytes
    since: float
    reply: bytes | None = None
    counted: bool = False  # the reply's size is in the cache's total
    parked: list[Parked] = field(default_factory=list)


class ReplyCache:
    """What a server answered, so that a request nng sends again (after ``resend_time``,
    60 s by default, or a reconnect) is answered again rather than processed twice.

    It is consulted before any other check, so what may match matters. A request is
    *claimed* (:meth:`claim`) when it arrives, before its checks, so that a copy another
    context receives meanwhile is recognised even while the first is still being checked;
    a request that fails its checks is released (:meth:`release`). Entries are found by
    :func:`request_key`, and an entry matches only a frame byte-identical to its request
    (compared on a hit, the request being held by reference). Why the key is enough to
    find it: an honest sender never uses a (session, seq) twice under a key, so the
    reference names one frame of that sender; the AEAD tag is a 16-byte MAC of that
    frame's header and ciphertext under a key only the client and the service hold, so a
    second frame with the same reference and tag is a copy of the first, unless someone
    who copied the tag changed other bytes — and that frame is not a copy: it claims
    nothing and goes through every check like any other (where it is refused, or, if the
    entry's frame was the changed one, accepted and adopted in its place:
    :meth:`adopt`). A match gets back the same reply bytes, sealed to the client, and
    nothing is executed twice.

    A copy that arrives while the first is still being processed (on a server with
    contexts) is *parked* (:meth:`park`): its context is answered with the same reply once
    it exists, since that copy may carry the client's newest request id (a client sends
    its request again after a rejected reply, and NNG then routes only the newest id's
    reply to it). At most ``MAX_PARKED`` contexts wait at a time; beyond that a copy is
    dropped.

    The cost per request is one lock operation (:meth:`claim`): :meth:`answered` stores
    the reply in the entry without a lock and leaves its size to be counted under the next
    one; it takes the lock only when copies are parked. Entries expire after
    ``RETENTION`` seconds; requests and replies together take at most ``MAX_BYTES``.
    """

    RETENTION = 300.0
    MAX_BYTES = 16 << 20
    MAX_ENTRIES = 4096
    MAX_PARKED = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Oldest first. An OrderedDict, not a dict: dropping the oldest of a dict leaves a
        # hole at its front that every later look for the oldest walks over again.
        self._entries: OrderedDict[bytes, RequestEntry] = OrderedDict()
        self._bytes = 0  # requests and the replies counted so far
        self._uncounted: deque[RequestEntry] = deque()  # answered since the last count
        self._parked_count = 0

    def claim(self, key: bytes, frame: bytes) -> tuple[RequestEntry | None, bool]:
        """The entry ``frame`` belongs to, and whether it is a copy of a request seen
        before: ``(entry, True)`` for a byte-identical copy (``entry.reply`` is the reply,
        or ``None`` while the first copy is checked or processed); ``(entry, False)`` for a
        request not seen before, claimed (in progress) from now on, in the same step;
        ``(None, False)`` for a frame with a known key but other bytes, which claims
        nothing. The one lock operation of a request."""
        now = time.monotonic()
        with self._lock:
            self._count()
            closing = self._trim(now)  # expired entries first: they match nothing
            entry = self._entries.get(key)
            if entry is not None:
                result = (entry, True) if entry.request == frame else (None, False)
            else:
                result = (self._insert(key, frame, now), False)
                closing += self._trim(now)
        _close(closing)
        return result

    def adopt(self, key: bytes, frame: bytes) -> RequestEntry:
        """An accepted request that claimed nothing (its key's entry held other bytes,
        which then were not the true request): it takes the entry's place."""
        now = time.monotonic()
        with self._lock:
            self._count()
            old = self._entries.pop(key, None)
            closing = []
            if old is not None:
                self._forget(old)
                closing = self._unpark(old)
            entry = self._insert(key, frame, now)
            closing += self._trim(now)
        _close(closing)
        return entry

    def release(self, entry: RequestEntry) -> None:
        """A claimed request was rejected: forget it (copies parked for it are let go)."""
        with self._lock:
            if self._entries.get(entry.key) is entry:
                del self._entries[entry.key]
                self._forget(entry)
            parked = self._unpark(entry)
        _close(parked)

    def answered(self, entry: RequestEntry, reply: bytes) -> None:
        """The reply sent to ``entry``'s request; copies parked for it get it too. No lock
        unless copies are parked (one atomic store; the reply's size is counted by the next
        :meth:`claim`)."""
        entry.reply = reply
        self._uncounted.append(entry)
        if entry.parked:  # a copy parked before the store above: answer it here
            with self._lock:
                parked = self._unpark(entry)
            for waiting in parked:
                waiting.send(reply)
                waiting.close()

    def park(self, entry: RequestEntry, waiting: Parked) -> bool:
        """Keep ``waiting`` until ``entry``'s request is answered (at once if it was
        meanwhile); ``False`` (nothing kept) when the request is no longer held or too
        many wait already."""
        with self._lock:
            if self._entries.get(entry.key) is not entry or self._parked_count >= self.MAX_PARKED:
                return False
            # Parked first, then the reply looked at: answered() stores the reply before it
            # looks for parked copies, so one of the two always sees the other.
            entry.parked.append(waiting)
            self._parked_count += 1
            reply = entry.reply
            if reply is None:
                return True
            entry.parked.remove(waiting)
            self._parked_count -= 1
        waiting.send(reply)
        waiting.close()
        return True

    def close_parked(self) -> None:
        """Let go of every parked context (before the socket closes under them)."""
        with self._lock:
            parked = [w for entry in self._entries.values() for w in self._unpark(entry)]
        _close(parked)

    # -- under the lock --------------------------------------------------------------------
    def _insert(self, key: bytes, frame: bytes, now: float) -> RequestEntry:
        entry = RequestEntry(key, frame, now)
        self._entries[key] = entry
        self._bytes += len(frame)
        return entry

    def _unpark(self, entry: RequestEntry) -> list[Parked]:
        parked, entry.parked = entry.parked, []
        self._parked_count -= len(parked)
        return parked

    def _forget(self, entry: RequestEntry) -> None:
        self._bytes -= len(entry.request)
        if entry.counted and entry.reply is not None:
            self._bytes -= len(entry.reply)

    def _count(self) -> None:
        """Count the replies stored since the last call."""
        while self._uncounted:
            answered = self._uncounted.popleft()
            # Only replies of entries still held: one trimmed before it was counted was
            # forgotten with its request size alone.
            if (
                answered.reply is not None
                and not answered.counted
                and self._entries.get(answered.key) is answered
            ):
                answered.counted = True
                self._bytes += len(answered.reply)

    def _trim(self, now: float) -> list[Parked]:
        """Drop entries past the limits, oldest first; the copies parked for a dropped
        request are returned, to be let go."""
        entries = self._entries
        closing: list[Parked] = []
        while entries:
            entry = next(iter(entries.values()))
            if (
                len(entries) <= self.MAX_ENTRIES
                and self._bytes <= self.MAX_BYTES
                and now - entry.since <= self.RETENTION
            ):
                break
            entries.popitem(last=False)
            self._forget(entry)
            closing.extend(self._unpark(entry))  # never answered now: nothing will come
        return closing


def _close(parked: list[Parked]) -> None:
    for waiting in parked:
        waiting.close()
