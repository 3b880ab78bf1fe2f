"""Replay protection: a sliding-bitmap window per (sender key id, session), and floors.

For each session the receiver keeps the highest accepted sequence number and a bitmap of
the ``size`` numbers below it (bit ``i`` set = ``highest - i`` was accepted). A frame is
fresh when its number is above the highest, or inside the window and not yet marked.

Checking and recording are separate steps on purpose: a frame is checked early (cheap
rejection) but recorded only after every cryptographic check passed, so a forged frame
can never burn a sequence number of an honest sender.

Windows cannot be kept forever, so the guard forgets sessions, and keeps a *floor* so that
forgetting never reopens a replay. A frame of a session it has no window for is refused
(``stale``) if it is stamped before the floor:

- at creation the floor is the receiver's start time (less an optional backlog): a
  receiver that restarts has lost its windows, and must not accept again what its previous
  incarnation accepted;
- a session is forgotten once its newest accepted frame is older than ``max_age``, and the
  floor rises to that cutoff: every frame the session could replay is below it. The floor
  only rises, so a clock stepped back does not reopen forgotten sessions either;
- each sender keeps at most ``sessions_per_sender`` windows. Beyond that its oldest one is
  forgotten and that sender's own floor rises to the newest time it had accepted there.

Memory is thereby bounded by senders x sessions_per_sender x size / 8 bytes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

__all__ = ["ReplayGuard"]

Verdict = Literal["replay", "stale"] | None
SESSIONS_PER_SENDER = 256


@dataclass(slots=True)
class _Window:
    highest: int
    bitmap: int  # bit i: highest - i was accepted
    newest_time: float


class ReplayGuard:
    """Replay windows of all sessions seen on one receiving channel."""

    __slots__ = (
        "_by_sender",
        "_mask",
        "_next_sweep",
        "_sender_floor",
        "_sessions",
        "floor",
        "max_age",
        "sessions_per_sender",
        "size",
    )

    def __init__(
        self,
        size: int,
        max_age: float,
        *,
        floor: float = float("-inf"),
        sessions_per_sender: int = SESSIONS_PER_SENDER,
    ) -> None:
        if size < 1:
            raise ValueError("window size must be positive")
        self.size = size
        self.max_age = max_age
        self.floor = floor
        self.sessions_per_sender = sessions_per_sender
        self._mask = (1 << size) - 1
        self._sessions: dict[tuple[bytes, bytes], _Window] = {}
        self._by_sender: defaultdict[bytes, set[bytes]] = defaultdict(set)
        self._sender_floor: dict[bytes, float] = {}
        self._next_sweep = float("-inf")

    def __len__(self) -> int:
        return len(self._sessions)

    def check(self, key_id: bytes, session: bytes, seq: int, sent_at: float) -> Verdict:
        """Why this frame must be refused (``"replay"``, ``"stale"``), or ``None``."""
        window = self._sessions.get((key_id, session))
        if window is None:
            if sent_at < self.floor or sent_at <= self._sender_floor.get(key_id, float("-inf")):
                return "stale"  # older than what this receiver can still vouch for
            return None
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
            self._sessions[key] = _Window(seq, 1, sent_at)
            sessions = self._by_sender[key_id]
            sessions.add(session)
            if len(sessions) > self.sessions_per_sender:
                self._forget_oldest(key_id, sessions)
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
        if now >= self._next_sweep:
            self.evict(now)

    def _forget_oldest(self, key_id: bytes, sessions: set[bytes]) -> None:
        oldest = min(sessions, key=lambda s: self._sessions[(key_id, s)].newest_time)
        newest = self._sessions.pop((key_id, oldest)).newest_time
        sessions.discard(oldest)
        self._sender_floor[key_id] = max(self._sender_floor.get(key_id, newest), newest)

    def evict(self, now: float) -> int:
        """Forget sessions with nothing newer than ``max_age``; return how many."""
        cutoff = now - self.max_age
        self.floor = max(self.floor, cutoff)
        stale = [key for key, window in self._sessions.items() if window.newest_time < cutoff]
        for key_id, session in stale:
            del self._sessions[(key_id, session)]
            self._by_sender[key_id].discard(session)
            if not self._by_sender[key_id]:
                del self._by_sender[key_id]
        for key_id in [k for k, t in self._sender_floor.items() if t < cutoff]:
            del self._sender_floor[key_id]  # the global floor covers it now
        # Sweeping costs O(sessions); doing it at most every max_age/4 keeps the amortised
        # cost per frame constant while memory stays within 1.25 * max_age of traffic.
        self._next_sweep = now + self.max_age / 4
        return len(stale)
