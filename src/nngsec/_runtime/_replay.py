"""Replay protection: a sliding-bitmap window per (sender key id, session), tombstones, floors.

For each session the receiver keeps the highest accepted sequence number and a bitmap of
the ``size`` numbers below it (bit ``i`` set = ``highest - i`` was accepted). A frame is
fresh when its number is above the highest, or inside the window and not yet marked.

Checking and recording are separate steps on purpose: a frame is checked early (cheap
rejection) but recorded only after every cryptographic check passed, so a forged frame
can never burn a sequence number of an honest sender.

Windows cannot be kept forever, so the guard forgets, in three steps that never reopen a
replay:

- each sender keeps at most ``sessions_per_sender`` windows. Beyond that its oldest window
  becomes a *tombstone*: the session's highest accepted number and newest accepted time
  (16 bytes of facts instead of ``size`` bits). A window re-created for that session refuses
  (``replay``) every number **at or below** the tombstone's highest, whatever its bitmap
  says; numbers above it were never accepted and pass. Persisted replay state
  (``_replay_state``) comes back as tombstones too;
- tombstones are bounded, per sender (``tombstones_per_sender``) and in total
  (``max_tombstones``). Beyond that the oldest one is dropped and its sender's *time floor*
  rises to the newest time it covered: a frame of that sender stamped at or before the
  floor is refused (``stale``) unless the session still has a tombstone, and so is every
  frame of a window created while the floor stood (a session whose tombstone was dropped
  cannot come back with an empty window);
- a window or tombstone whose newest accepted frame is older than ``max_age`` is forgotten,
  and the receiver's global floor rises to that cutoff: every frame the session could
  replay is below it. Floors only rise, so a clock stepped back does not reopen forgotten
  sessions either. The global floor is checked for every frame (it also carries
  ``Node(not_before=...)`` and the conservative start of a receiver whose state was lost).

Memory, for ``S`` sending identities (the policy bounds them; an authorised sender opening
sessions at will cannot go beyond): at most ``S * sessions_per_sender`` windows of ``size/8``
bytes of bitmap each, plus ``min(S * tombstones_per_sender, max_tombstones)`` tombstones,
plus one time floor per sender. Measured in CPython 3.11 (``WINDOW_BYTES`` and
``TOMBSTONE_BYTES``, pinned by a test): a window of 4096 bits takes at most 800 bytes, a
tombstone of a 16-byte session 240 bytes. With the defaults, one sender opening sessions
at will costs at most 256 x 800 B + 8192 x 240 B = 2.2 MB, and all senders together at
most ``S`` x 205 kB of windows plus 65536 x 240 B = 16 MB of tombstones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MAX_TOMBSTONES",
    "SESSIONS_PER_SENDER",
    "TOMBSTONES_PER_SENDER",
    "Mark",
    "ReplayGuard",
    "Verdict",
]

Verdict = Literal["replay", "stale"] | None
SESSIONS_PER_SENDER = 256
TOMBSTONES_PER_SENDER = 8192
MAX_TOMBSTONES = 65536
WINDOW_BYTES = 800  # measured upper bound of one window of 4096 bits (tests/test_replay.py)
TOMBSTONE_BYTES = 240  # measured upper bound of one tombstone (tests/test_replay.py)
_NO_TIME = float("-inf")
_NO_SEQ = -1  # sequence numbers are unsigned


Mark = tuple[bytes, bytes, int, float]
"""What a receiver must remember of a session: (key id, session, the highest accepted
sequence number, the newest accepted ``time``). A plain tuple: a checkpoint takes every
session's mark under the receiver's lock."""


@dataclass(slots=True)
class _Window:
    highest: int
    bitmap: int  # bit i: highest - i was accepted
    newest_time: float
    floor_seq: int  # from a tombstone: every number at or below it was, or may have been, seen
    floor_time: float  # the sender's time floor when the window was created without tombstone


@dataclass(slots=True)
class _Tombstone:
    highest: int
    newest_time: float
    floor_time: float


class ReplayGuard:
    """Replay windows, tombstones and floors of one receiver (all senders of a channel)."""

    __slots__ = (
        "_by_sender",
        "_mask",
        "_next_sweep",
        "_sender_floor",
        "_sessions",
        "_tombs_by_sender",
        "_tombstones",
        "changes",
        "floor",
        "max_age",
        "max_tombstones",
        "sessions_per_sender",
        "size",
        "tombstones_per_sender",
    )

    def __init__(
        self,
        size: int,
        max_age: float,
        *,
        floor: float = _NO_TIME,
        sessions_per_sender: int = SESSIONS_PER_SENDER,
        tombstones_per_sender: int = TOMBSTONES_PER_SENDER,
        max_tombstones: int = MAX_TOMBSTONES,
    ) -> None:
        if size < 1:
            raise ValueError("window size must be positive")
        if sessions_per_sender < 1 or tombstones_per_sender < 1 or max_tombstones < 1:
            raise ValueError("the guard's bounds must be positive")
        self.size = size
        self.max_age = max_age
        self.floor = floor
        self.sessions_per_sender = sessions_per_sender
        self.tombstones_per_sender = tombstones_per_sender
        self.max_tombstones = max_tombstones
        self.changes = 0  # counts what changed since creation (a checkpoint compares it)
        self._mask = (1 << size) - 1
        self._sessions: dict[tuple[bytes, bytes], _Window] = {}
        # Insertion-ordered sets (dicts with no values): a sender's windows; its tombstones
        # oldest first; and all tombstones oldest first (for the total bound).
        self._by_sender: dict[bytes, dict[bytes, None]] = {}
        self._tombs_by_sender: dict[bytes, dict[bytes, None]] = {}
        self._tombstones: dict[tuple[bytes, bytes], _Tombstone] = {}
        self._sender_floor: dict[bytes, float] = {}
        self._next_sweep = _NO_TIME

    def __len__(self) -> int:
        """The number of windows (tombstones are counted by :attr:`tombstones`)."""
        return len(self._sessions)

    @property
    def tombstones(self) -> int:
        return len(self._tombstones)

    def check(self, key_id: bytes, session: bytes, seq: int, sent_at: float) -> Verdict:
        """Why this frame must be refused (``"replay"``, ``"stale"``), or ``None``."""
        if sent_at < self.floor:
            return "stale"  # older than what this receiver can still vouch for
        key = (key_id, session)
        window = self._sessions.get(key)
        if window is None:
            tomb = self._tombstones.get(key)
            if tomb is not None:
                if sent_at <= tomb.floor_time:
                    return "stale"
                return "replay" if seq <= tomb.highest else None
            if sent_at <= self._sender_floor.get(key_id, _NO_TIME):
                return "stale"  # the session may have been forgotten with the sender's floor
            return None
        if sent_at <= window.floor_time:
            return "stale"
        if seq <= window.floor_seq:
            return "replay"  # accepted before the window was re-created
        if seq > window.highest:
            return None
        offset = window.highest - seq
        if offset >= self.size:
            return "replay"  # below the window: can no longer be told apart, refuse
        return "replay" if window.bitmap >> offset & 1 else None

    def record(self, key_id: bytes, session: bytes, seq: int, sent_at: float, now: float) -> None:
        """Mark ``seq`` as accepted (call only after every other check passed)."""
        key = (key_id, session)
        window = self._sessions.get(key)
        if window is None:
            tomb = self._tombstones.pop(key, None)
            if tomb is not None:
                del self._tombs_by_sender[key_id][session]
                if not self._tombs_by_sender[key_id]:
                    del self._tombs_by_sender[key_id]
                window = _Window(
                    seq, 1, max(sent_at, tomb.newest_time), tomb.highest, tomb.floor_time
                )
            else:
                floor_time = self._sender_floor.get(key_id, _NO_TIME)
                window = _Window(seq, 1, sent_at, _NO_SEQ, floor_time)
            self._sessions[key] = window
            sessions = self._by_sender.setdefault(key_id, {})
            sessions[session] = None
            if len(sessions) > self.sessions_per_sender:
                self._retire_oldest(key_id, sessions)
        else:
            if seq > window.highest:
                shift = seq - window.highest
                window.bitmap = (
                    ((window.bitmap << shift) | 1) & self._mask if shift < self.size else 1
                )
                window.highest = seq
            else:
                window.bitmap |= 1 << (window.highest - seq)
            window.newest_time = max(window.newest_time, sent_at)
        self.changes += 1
        if now >= self._next_sweep:
            self.evict(now)

    # -- the receive fast path (``Receiver.open``): in-order frames of a known window ------
    def window(self, key_id: bytes, session: bytes) -> object | None:
        """The window of a session, as an opaque handle for :meth:`current` and
        :meth:`advance` (``None`` if the session has none)."""
        return self._sessions.get((key_id, session))

    def current(self, window: object, key: tuple[bytes, bytes], seq: int, sent_at: float) -> bool:
        """Whether ``window`` is still the window of its session (``key``: key id and
        session) and a frame is above everything it accepted, within every floor: then
        :meth:`check` passes it, and :meth:`advance` records it as :meth:`record` would.
        ``False`` says nothing: the frame goes through :meth:`check`."""
        w: _Window = window  # type: ignore[assignment]
        return (
            seq > w.highest
            and sent_at > w.floor_time
            and sent_at >= self.floor
            and self._sessions.get(key) is w
        )

    def advance(self, window: object, seq: int, sent_at: float, now: float) -> None:
        """Record a frame :meth:`current` passed (under the receiver's lock, after every
        other check): the window slides up to ``seq``, in place."""
        w: _Window = window  # type: ignore[assignment]
        shift = seq - w.highest
        w.bitmap = ((w.bitmap << shift) | 1) & self._mask if shift < self.size else 1
        w.highest = seq
        w.newest_time = max(w.newest_time, sent_at)
        self.changes += 1
        if now >= self._next_sweep:
            self.evict(now)

    def _retire_oldest(self, key_id: bytes, sessions: dict[bytes, None]) -> None:
        """The sender's window with the oldest newest frame becomes a tombstone."""
        oldest = min(sessions, key=lambda s: self._sessions[(key_id, s)].newest_time)
        window = self._sessions.pop((key_id, oldest))
        del sessions[oldest]
        self._bury(
            key_id, oldest, _Tombstone(window.highest, window.newest_time, window.floor_time)
        )

    def _bury(self, key_id: bytes, session: bytes, tomb: _Tombstone) -> None:
        self._tombstones[(key_id, session)] = tomb
        mine = self._tombs_by_sender.setdefault(key_id, {})
        mine[session] = None
        if len(mine) > self.tombstones_per_sender:
            self._drop_tombstone(key_id, next(iter(mine)))
        if len(self._tombstones) > self.max_tombstones:
            self._drop_tombstone(*next(iter(self._tombstones)))

    def _drop_tombstone(self, key_id: bytes, session: bytes) -> None:
        """Forget a tombstone; the sender's time floor covers what it covered."""
        tomb = self._tombstones.pop((key_id, session))
        mine = self._tombs_by_sender[key_id]
        del mine[session]
        if not mine:
            del self._tombs_by_sender[key_id]
        floor = self._sender_floor.get(key_id, _NO_TIME)
        self._sender_floor[key_id] = max(floor, tomb.newest_time)

    def evict(self, now: float) -> int:
        """Forget windows and tombstones with nothing newer than ``max_age``; return how
        many windows were forgotten."""
        cutoff = now - self.max_age
        self.floor = max(self.floor, cutoff)
        stale = [key for key, window in self._sessions.items() if window.newest_time < cutoff]
        for key_id, session in stale:
            del self._sessions[(key_id, session)]
            sessions = self._by_sender[key_id]
            del sessions[session]
            if not sessions:
                del self._by_sender[key_id]
        buried = [key for key, tomb in self._tombstones.items() if tomb.newest_time < cutoff]
        for key_id, session in buried:
            del self._tombstones[(key_id, session)]
            mine = self._tombs_by_sender[key_id]
            del mine[session]
            if not mine:
                del self._tombs_by_sender[key_id]
        for key_id in [k for k, t in self._sender_floor.items() if t < cutoff]:
            del self._sender_floor[key_id]  # the global floor covers it now
        if stale or buried:
            self.changes += 1
        # Sweeping costs O(sessions); doing it at most every max_age/4 keeps the amortised
        # cost per frame constant while memory stays within 1.25 * max_age of traffic.
        self._next_sweep = now + self.max_age / 4
        return len(stale)

    # -- persistence (see _replay_state) --------------------------------------------------
    def marks(self) -> list[Mark]:
        """Every session this guard remembers (windows and tombstones), as (key id,
        session, highest, newest time): plain tuples, since a checkpoint takes them under
        the receiver's lock (65,792 sessions in 25 ms)."""
        marks = [(k, s, w.highest, w.newest_time) for (k, s), w in self._sessions.items()]
        marks += [(k, s, t.highest, t.newest_time) for (k, s), t in self._tombstones.items()]
        return marks

    def sender_floors(self) -> dict[bytes, float]:
        return dict(self._sender_floor)

    def restore(
        self,
        marks: Iterable[Mark],
        *,
        sender_floors: dict[bytes, float],
        floor: float,
        now: float,
    ) -> None:
        """Start from what a previous receiver accepted: each mark becomes a tombstone (a
        frame at or below its highest is refused, one above it passes), floors only rise.
        Marks older than ``max_age`` are dropped; the bounds apply as to any tombstone.
        Only a guard that holds no session yet can be restored (marks of one session
        from several files are merged before)."""
        if self._sessions or self._tombstones:
            raise ValueError("restore() starts a guard that holds no session yet")
        cutoff = now - self.max_age
        self.floor = max(self.floor, floor)
        for key_id, value in sender_floors.items():
            if value >= cutoff:
                self._sender_floor[key_id] = value
        # Oldest first, so that the bounds drop the oldest (into the sender's floor).
        for key_id, session, highest, newest_time in sorted(marks, key=lambda m: m[3]):
            if newest_time < cutoff:
                continue
            # A session lost with a dropped tombstone before the restart stays under the
            # sender's floor, as it was.
            floor_time = self._sender_floor.get(key_id, _NO_TIME)
            self._bury(key_id, session, _Tombstone(highest, newest_time, floor_time))
        self.changes += 1
