"""The reply cache of a secured Rep socket (see :class:`ReplyCache`)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from ._wire import KEY_ID_SIZE, SESSION_SIZE

__all__ = ["ReplyCache", "RequestEntry", "request_key"]

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


@dataclass(eq=False, slots=True)
class RequestEntry:
    """One accepted request: its frame (held, not copied), and the reply once sent."""

    key: bytes
    request: bytes
    since: float
    reply: bytes | None = None
    counted: bool = False  # the reply's size is in the cache's total


class ReplyCache:
    """What a server answered, so that a request nng sends again (after ``resend_time``,
    60 s by default, or a reconnect) is answered again rather than processed twice.

    It is consulted before any other check, so what may match matters. Entries are
    found by :func:`request_key`, and an entry matches only a frame byte-identical to
    the request that passed every check (compared on a hit, the request being held by
    reference). Why the key is enough to find it: an honest sender never uses a
    (session, seq) twice under a key, so the reference names one frame of that sender;
    the AEAD tag is a 16-byte MAC of that frame's header and ciphertext under a key only
    the client and the service hold, so a second frame with the same reference and tag
    is a copy of the first, unless someone who copied the tag changed other bytes — and
    that frame differs from the held request, does not match, and goes through every
    check like any other (it is refused there). A match gets back the same reply bytes,
    sealed to the client, and nothing is executed twice.

    The cost per request is one lock operation (:meth:`started`); :meth:`lookup` reads
    without a lock (dictionary reads are atomic) and :meth:`answered` stores the reply in
    the entry and leaves its size to be counted under the next lock. Entries expire after
    ``RETENTION`` seconds; requests and replies together take at most ``MAX_BYTES``.
    """

    RETENTION = 300.0
    MAX_BYTES = 16 << 20
    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Oldest first. An OrderedDict, not a dict: dropping the oldest of a dict leaves a
        # hole at its front that every later look for the oldest walks over again.
        self._entries: OrderedDict[bytes, RequestEntry] = OrderedDict()
        self._bytes = 0  # requests and the replies counted so far
        self._uncounted: deque[RequestEntry] = deque()  # answered since the last count

    def lookup(self, key: bytes, frame: bytes) -> tuple[bool, bytes | None]:
        """(a copy of a request seen before?, the reply if it was answered)."""
        entry = self._entries.get(key)
        if (
            entry is None
            or time.monotonic() - entry.since > self.RETENTION
            or entry.request != frame
        ):
            return False, None
        return True, entry.reply

    def started(self, key: bytes, frame: bytes) -> RequestEntry:
        """Note an accepted request that is now being processed: the one lock operation."""
        now = time.monotonic()
        entry = RequestEntry(key, frame, now)
        with self._lock:
            while self._uncounted:
                answered = self._uncounted.popleft()
                # Only replies of entries still held: one trimmed before it was counted
                # was forgotten with its request size alone.
                if answered.reply is not None and self._entries.get(answered.key) is answered:
                    answered.counted = True
                    self._bytes += len(answered.reply)
            old = self._entries.pop(key, None)
            if old is not None:
                self._forget(old)
            self._entries[key] = entry
            self._bytes += len(frame)
            self._trim(now)
        return entry

    def answered(self, entry: RequestEntry, reply: bytes) -> None:
        """The reply sent to ``entry``'s request (no lock: one atomic store, and the
        reply's size is counted by the next :meth:`started`)."""
        entry.reply = reply
        self._uncounted.append(entry)

    def _forget(self, entry: RequestEntry) -> None:
        self._bytes -= len(entry.request)
        if entry.counted and entry.reply is not None:
            self._bytes -= len(entry.reply)

    def _trim(self, now: float) -> None:
        entries = self._entries
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
