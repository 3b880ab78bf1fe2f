"""The replay window against a reference model (hypothesis stateful testing).

Frames are created by honest senders (sequence numbers and timestamps only grow within a
session) and delivered by an adversarial network: lost, reordered, duplicated, delayed,
interleaved across senders and sessions, long after they were sent. The receiver's
decision (time check, then the window) must equal the reference: accept a frame exactly
once, unless it is stale or has fallen below the window.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nngsec._replay import ReplayGuard

WINDOW = 64
MAX_AGE = 30.0


class ReplayMachine(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.now = 1000.0
        self.guard = ReplayGuard(WINDOW, MAX_AGE)
        self.sessions: list[tuple[bytes, bytes]] = []  # (key id, session)
        self.next_seq: dict[tuple[bytes, bytes], int] = {}
        self.frames: list[tuple[tuple[bytes, bytes], int, float]] = []
        self.accepted: set[tuple[tuple[bytes, bytes], int]] = set()
        self.highest: dict[tuple[bytes, bytes], int] = {}
        self.newest: dict[tuple[bytes, bytes], float] = {}
        self.restart(sender=0)

    @rule(sender=st.integers(0, 2))
    def restart(self, sender):
        """A sender starts (or restarts): a new random session, counter from 0."""
        session = (bytes([sender]) * 8, len(self.sessions).to_bytes(8, "big"))
        self.sessions.append(session)
        self.next_seq[session] = 0

    @rule(index=st.integers(0, 100), count=st.integers(1, 5), lost=st.integers(0, 80))
    def send(self, index, count, lost):
        """A sender emits frames; ``lost`` earlier numbers are skipped (never delivered)."""
        session = self.sessions[index % len(self.sessions)]
        self.next_seq[session] += lost
        for _ in range(count):
            self.frames.append((session, self.next_seq[session], self.now))
            self.next_seq[session] += 1

    @rule(seconds=st.sampled_from([0.0, 0.5, 5.0, 14.0, 29.0, 31.0, 90.0]))
    def wait(self, seconds):
        self.now += seconds

    @precondition(lambda self: self.frames)
    @rule(pick=st.integers(0, 10_000), recent=st.booleans())
    def deliver(self, pick, recent):
        frames = self.frames[-8:] if recent else self.frames
        session, seq, sent_at = frames[pick % len(frames)]
        key_id, session_id = session
        # The receiver: time first, then the window; record only on acceptance.
        if self.now - sent_at > MAX_AGE:
            actual = "stale"
        elif self.guard.seen(key_id, session_id, seq):
            actual = "replay"
        else:
            self.guard.record(key_id, session_id, seq, sent_at, self.now)
            self.last_record = self.now
            actual = "accept"
        # The reference: never forgets anything.
        if self.now - sent_at > MAX_AGE:
            expected = "stale"
        elif (session, seq) in self.accepted or self.highest.get(session, -1) - seq >= WINDOW:
            expected = "replay"
        else:
            expected = "accept"
            self.accepted.add((session, seq))
            self.highest[session] = max(self.highest.get(session, -1), seq)
            self.newest[session] = max(self.newest.get(session, sent_at), sent_at)
        assert actual == expected, (session, seq, sent_at, self.now)

    @invariant()
    def memory_is_bounded_by_recent_sessions(self):
        """A recording at time t sweeps if the last sweep is max_age/4 old, and a sweep
        keeps only sessions with an acceptance within max_age: so right after any
        recording, no session older than 1.25 * max_age is remembered."""
        if not hasattr(self, "last_record"):
            return
        for session in self.guard._sessions:
            assert self.newest[session] >= self.last_record - MAX_AGE * 1.25


ReplayMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestReplayWindow = ReplayMachine.TestCase


def test_reordering_inside_the_window_is_accepted_exactly_once():
    guard = ReplayGuard(WINDOW, MAX_AGE)
    order = [5, 1, 3, 0, 2, 4, 70, 10, 6]
    results = []
    for seq in [*order, *order]:
        fresh = not guard.seen(b"k" * 8, b"s" * 8, seq)
        if fresh:
            guard.record(b"k" * 8, b"s" * 8, seq, 0.0, 0.0)
        results.append(fresh)
    # After 70, the window covers 7..70: 10 is inside and accepted, 6 fell below it.
    assert results == [True] * 7 + [True, False] + [False] * 9


def test_sessions_are_evicted_after_max_age():
    guard = ReplayGuard(WINDOW, MAX_AGE)
    for index in range(1000):
        guard.record(index.to_bytes(8, "big"), b"s" * 8, 0, sent_at=0.0, now=0.0)
    assert len(guard) == 1000
    guard.record(b"late" * 2, b"s" * 8, 0, sent_at=31.0, now=31.0)
    assert len(guard) == 1  # the 1000 old sessions are gone, their frames are all stale
