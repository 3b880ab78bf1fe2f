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

from nngsec._runtime._replay import ReplayGuard
from tests.support import examples

WINDOW = 64
MAX_AGE = 30.0


class ReplayMachine(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.now = 1000.0
        self.guard = ReplayGuard(WINDOW, MAX_AGE, floor=self.now)
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
        elif verdict := self.guard.check(key_id, session_id, seq, sent_at):
            actual = verdict
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


ReplayMachine.TestCase.settings = settings(
    max_examples=examples(150), stateful_step_count=60, deadline=None
)
TestReplayWindow = ReplayMachine.TestCase


K, S = b"k" * 8, b"s" * 8


def deliver(guard, seq, sent_at=0.0, now=0.0, key_id=K, session=S):
    verdict = guard.check(key_id, session, seq, sent_at)
    if verdict is None:
        guard.record(key_id, session, seq, sent_at, now)
    return verdict or "accept"


def test_reordering_inside_the_window_is_accepted_exactly_once():
    guard = ReplayGuard(WINDOW, MAX_AGE)
    order = [5, 1, 3, 0, 2, 4, 70, 10, 6]
    results = [deliver(guard, seq) for seq in [*order, *order]]
    # After 70, the window covers 7..70: 10 is inside and accepted, 6 fell below it.
    assert results == ["accept"] * 8 + ["replay"] + ["replay"] * 9


def test_sessions_are_evicted_after_max_age():
    guard = ReplayGuard(WINDOW, MAX_AGE)
    for index in range(1000):
        guard.record(index.to_bytes(8, "big"), S, 0, sent_at=0.0, now=0.0)
    assert len(guard) == 1000
    guard.record(b"late" * 2, S, 0, sent_at=31.0, now=31.0)
    assert len(guard) == 1  # the 1000 old sessions are gone, their frames are all stale


def test_a_restarted_receiver_refuses_what_it_may_have_accepted_before():
    guard = ReplayGuard(WINDOW, MAX_AGE, floor=100.0)  # created at t=100
    assert deliver(guard, 0, sent_at=99.999, now=100.0) == "stale"
    assert deliver(guard, 0, sent_at=100.0, now=100.0) == "accept"
    assert deliver(guard, 1, sent_at=99.0, now=100.0) == "accept"  # a known session: window


def test_a_clock_stepped_back_does_not_reopen_forgotten_sessions():
    guard = ReplayGuard(WINDOW, MAX_AGE)
    assert deliver(guard, 0, sent_at=0.0, now=0.0) == "accept"
    assert deliver(guard, 0, sent_at=40.0, now=40.0, session=b"t" * 8) == "accept"  # sweeps
    assert len(guard) == 1
    # The receiver's clock goes back 20 s (an NTP step, a VM restore): the time check
    # would now pass for the frame stamped 0.0, but the floor remembers the sweep.
    assert deliver(guard, 0, sent_at=0.0, now=20.0) == "stale"


def test_eviction_between_a_time_check_and_the_window_check():
    """Thread 1 read the clock (frame still fresh) before thread 2 recorded a frame whose
    sweep forgot the session: thread 1 must still refuse the replay."""
    guard = ReplayGuard(WINDOW, MAX_AGE)
    assert deliver(guard, 0, sent_at=0.0, now=0.0) == "accept"
    # thread 2, at t=30.001, records another sender's frame; its sweep forgets session S
    assert deliver(guard, 0, sent_at=30.001, now=30.001, key_id=b"o" * 8) == "accept"
    # thread 1 had checked the time at t=30.000 (0.0 is exactly max_age old: fresh)
    assert guard.check(K, S, 0, 0.0) == "stale"


def test_an_authorised_sender_cannot_grow_memory_without_bound():
    guard = ReplayGuard(WINDOW, MAX_AGE, sessions_per_sender=8)
    for index in range(100):
        assert (
            deliver(
                guard, 0, sent_at=float(index), now=float(index) / 10, session=bytes([index]) * 8
            )
            == "accept"
        )
    assert len(guard) == 8
    # A replay from a forgotten session is refused by the sender's own floor...
    assert deliver(guard, 0, sent_at=5.0, now=10.0, session=bytes([5]) * 8) == "stale"
    # ...while other senders and the sender's new sessions are unaffected.
    assert deliver(guard, 0, sent_at=5.0, now=10.0, key_id=b"o" * 8) == "accept"
    assert deliver(guard, 0, sent_at=100.0, now=10.0, session=b"n" * 8) == "accept"
