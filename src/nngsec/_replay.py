"""Replay protection: a sliding-bitmap window per (sender key id, session).

For each session the receiver keeps the highest accepted sequence number and a bitmap of
the ``size`` numbers below it (bit ``i`` set = ``highest - i`` was accepted). A frame is
fresh when its number is above the highest, or inside the window and not yet marked.

Checking and recording are separate steps on purpose: a frame is checked early (cheap
rejection) but recorded only after every cryptographic check passed, so a forged frame
can never burn a sequence number of an honest sender.

Sessions are forgotten once the newest timestamp they accepted is older than
``max_age``: every frame such a session could replay is then rejected as stale by the
time check, so forgetting it loses no protection, and memory stays bounded by the
sessions active within ``max_age``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReplayGuard"]


@dataclass(slots=True)
class _Window:
    highest: int
    bitmap: int  # bit i: highest - i was accepted
    newest_time: float


class ReplayGuard:
    """Replay windows of all sessions seen on one receiving channel."""

    __slots__ = ("_mask", "_next_sweep", "_sessions", "max_age", "size")

    def __init__(self, size: int, max_age: float) -> None:
        if size < 1:
            raise ValueError("window size must be positive")
        self.size = size
        self.max_age = max_age
        self._mask = (1 << size) - 1
        self._sessions: dict[tuple[bytes, bytes], _Window] = {}
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._sessions)

    def seen(self, key_id: bytes, session: bytes, seq: int) -> bool:
        """Whether ``seq`` of this session must be rejected as a replay."""
        window = self._sessions.get((key_id, session))
        if window is None or seq > window.highest:
            return False
        offset = window.highest - seq
        if offset >= self.size:
            return True  # below the window: can no longer be told apart, refuse
        return bool(window.bitmap >> offset & 1)

    def record(self, key_id: bytes, session: bytes, seq: int, sent_at: float, now: float) -> None:
        """Mark ``seq`` as accepted (call only after every other check passed)."""
        key = (key_id, session)
        window = self._sessions.get(key)
        if window is None:
            self._sessions[key] = _Window(seq, 1, sent_at)
        elif seq > window.highest:
            shift = seq - window.highest
            window.bitmap = ((window.bitmap << shift) | 1) & self._mask if shift < self.size else 1
            window.highest = seq
        else:
            window.bitmap |= 1 << (window.highest - seq)
        if window is not None and sent_at > window.newest_time:
            window.newest_time = sent_at
        if now >= self._next_sweep:
            self.evict(now)

    def evict(self, now: float) -> int:
        """Forget sessions with nothing newer than ``max_age``; return how many."""
        cutoff = now - self.max_age
        stale = [key for key, window in self._sessions.items() if window.newest_time < cutoff]
        for key in stale:
            del self._sessions[key]
        # Sweeping costs O(sessions); doing it at most every max_age/4 keeps the amortised
        # cost per frame constant while memory stays within 1.25 * max_age of traffic.
        self._next_sweep = now + self.max_age / 4
        return len(stale)
