"""The replay guard against a reference model (hypothesis stateful testing), and its bounds.

Frames are created by honest senders (sequence numbers and timestamps only grow within a
session) and delivered by an adversarial network: lost, reordered, duplicated, delayed,
interleaved across senders and sessions, long after they were sent. Senders open more
sessions than the guard keeps windows for (so windows become tombstones, and tombstones
are dropped into floors), and the receiver restarts from its persisted marks.

Two oracles judge every delivery: the *truth* (every frame ever accepted, never
forgotten), which the guard must never contradict by accepting a frame twice or a stale
one; and the *reference*, the spec's rules ("Replay window" in docs/spec/wire-format.md)
on exact sets instead of bitmaps, which the guard must match decision for decision.
"""

from __future__ import annotations

import os
import tracemalloc
from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nngsec._runtime._replay import TOMBSTONE_BYTES, WINDOW_BYTES, ReplayGuard
from nngsec._runtime._replay_state import decode_snapshot, encode_snapshot
from tests.support import examples

WINDOW = 64
MAX_AGE = 30.0
SENDERS = 3
WINDOWS_PER_SENDER = 2  # small bounds, so that the model reaches every path
TOMBS_PER_SENDER = 2
TOMBS = 4
TICK = 0.001  # every frame gets its own time stamp (the guard breaks ties by insertion)
NO_TIME = float("-inf")

Session = tuple[bytes, bytes]  # (key id, session id)


def new_guard(floor: float = NO_TIME) -> ReplayGuard:
    return ReplayGuard(
        WINDOW,
        MAX_AGE,
        floor=floor,
        sessions_per_sender=WINDOWS_PER_SENDER,
        tombstones_per_sender=TOMBS_PER_SENDER,
        max_tombstones=TOMBS,
    )


@dataclass
class Live:
    """The reference's view of a window."""

    highest: int
    newest: float
    floor_seq: int
    floor_time: float


@dataclass
class Tomb:
    highest: int
    newest: float
    floor_time: float


class ReplayMachine(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.now = 1000.0
        self.guard = new_guard(floor=self.now)
        self.sessions: list[Session] = []
        self.next_seq: dict[Session, int] = {}
        self.frames: list[tuple[Session, int, float]] = []
        self.accepted: set[tuple[Session, int]] = set()  # the truth
        # The reference: what the spec says the guard remembers.
        self.floor = self.now
        self.sender_floor: dict[bytes, float] = {}
        self.live: dict[Session, Live] = {}
        self.tombs: dict[Session, Tomb] = {}  # oldest first
        self.next_sweep = NO_TIME
        self.last_record: float | None = None
        self.restart(sender=0)

    @rule(sender=st.integers(0, SENDERS - 1))
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
            self.now += TICK
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
        # The receiver: time first, then the guard; record only on acceptance.
        if self.now - sent_at > MAX_AGE:
            actual = "stale"
        elif verdict := self.guard.check(key_id, session_id, seq, sent_at):
            actual = verdict
        else:
            self.guard.record(key_id, session_id, seq, sent_at, self.now)
            self.last_record = self.now
            actual = "accept"
        expected = self.expected(session, seq, sent_at)
        if actual == "accept":  # the truth: never twice, never stale
            assert (session, seq) not in self.accepted, (session, seq)
            assert self.now - sent_at <= MAX_AGE
        assert actual == expected, (session, seq, sent_at, self.now)
        if expected == "accept":
            self.accepted.add((session, seq))
            self.remember(session, seq, sent_at)

    def expected(self, session: Session, seq: int, sent_at: float) -> str:
        """The spec's decision, on exact facts."""
        if self.now - sent_at > MAX_AGE or sent_at < self.floor:
            return "stale"
        live = self.live.get(session)
        if live is not None:
            if sent_at <= live.floor_time:
                return "stale"
            if seq <= live.floor_seq:
                return "replay"
            if (session, seq) in self.accepted or live.highest - seq >= WINDOW:
                return "replay"
            return "accept"
        tomb = self.tombs.get(session)
        if tomb is not None:
            if sent_at <= tomb.floor_time:
                return "stale"
            return "replay" if seq <= tomb.highest else "accept"
        if sent_at <= self.sender_floor.get(session[0], NO_TIME):
            return "stale"
        # Not remembered at all: then nothing of this session that was accepted can still
        # pass the time checks (it was swept, or dropped into the sender's floor).
        assert (session, seq) not in self.accepted
        return "accept"

    def remember(self, session: Session, seq: int, sent_at: float) -> None:
        live = self.live.get(session)
        if live is not None:
            live.highest = max(live.highest, seq)
            live.newest = max(live.newest, sent_at)
        else:
            tomb = self.tombs.pop(session, None)
            if tomb is not None:
                live = Live(seq, max(sent_at, tomb.newest), tomb.highest, tomb.floor_time)
            else:
                live = Live(seq, sent_at, -1, self.sender_floor.get(session[0], NO_TIME))
            self.live[session] = live
            mine = [s for s in self.live if s[0] == session[0]]
            if len(mine) > WINDOWS_PER_SENDER:
                oldest = min(mine, key=lambda s: self.live[s].newest)
                gone = self.live.pop(oldest)
                self.bury(oldest, Tomb(gone.highest, gone.newest, gone.floor_time))
        if self.now >= self.next_sweep:
            self.sweep()

    def bury(self, session: Session, tomb: Tomb) -> None:
        self.tombs[session] = tomb
        mine = [s for s in self.tombs if s[0] == session[0]]
        if len(mine) > TOMBS_PER_SENDER:
            self.drop(mine[0])
        if len(self.tombs) > TOMBS:
            self.drop(next(iter(self.tombs)))

    def drop(self, session: Session) -> None:
        tomb = self.tombs.pop(session)
        sender = session[0]
        self.sender_floor[sender] = max(self.sender_floor.get(sender, NO_TIME), tomb.newest)

    def sweep(self) -> None:
        cutoff = self.now - MAX_AGE
        self.floor = max(self.floor, cutoff)
        self.live = {s: w for s, w in self.live.items() if w.newest >= cutoff}
        self.tombs = {s: t for s, t in self.tombs.items() if t.newest >= cutoff}
        self.sender_floor = {k: t for k, t in self.sender_floor.items() if t >= cutoff}
        self.next_sweep = self.now + MAX_AGE / 4

    @rule()
    def reboot(self):
        """The receiver restarts from its persisted state (through the file format)."""
        key_id, channel = b"r" * 8, "jobs"
        data = encode_snapshot(
            key_id, channel, self.guard.floor, self.guard.sender_floors(), self.guard.marks()
        )
        content = decode_snapshot(data, key_id, channel)
        self.guard = new_guard()
        self.guard.restore(
            content.marks.values(),
            sender_floors=content.sender_floors,
            floor=content.floor,
            now=self.now,
        )
        # The reference: every remembered session becomes a tombstone, oldest first.
        cutoff = self.now - MAX_AGE
        marks = [(s, w.highest, w.newest) for s, w in self.live.items()]
        marks += [(s, t.highest, t.newest) for s, t in self.tombs.items()]
        self.live, self.tombs = {}, {}
        self.sender_floor = {k: t for k, t in self.sender_floor.items() if t >= cutoff}
        for session, highest, newest in sorted(marks, key=lambda m: m[2]):
            if newest >= cutoff:
                floor_time = self.sender_floor.get(session[0], NO_TIME)
                self.bury(session, Tomb(highest, newest, floor_time))
        self.next_sweep = NO_TIME
        assert all(mark[3] >= cutoff for mark in self.guard.marks())

    @invariant()
    def memory_is_bounded(self):
        assert len(self.guard) <= SENDERS * WINDOWS_PER_SENDER
        assert self.guard.tombstones <= TOMBS

    @invariant()
    def memory_holds_only_recent_sessions(self):
        """A recording at time t sweeps if the last sweep is max_age/4 old, and a sweep
        keeps only sessions with an acceptance within max_age: so right after any
        recording, no session older than 1.25 * max_age is remembered."""
        if self.last_record is None:
            return
        for mark in self.guard.marks():
            assert mark[3] >= self.last_record - MAX_AGE * 1.25


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
    assert deliver(guard, 1, sent_at=100.0, now=100.0) == "accept"
    # A frame of a session the guard knows, but stamped before the floor: the previous
    # run may have accepted it, and the window (created after the floor) cannot know.
    assert deliver(guard, 0, sent_at=99.5, now=100.0) == "stale"


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


def session(index: int) -> bytes:
    return index.to_bytes(16, "big")


def test_a_recreated_window_refuses_at_or_below_the_evicted_highest():
    """Finding 1 of issue 9 on one session: evicted with highest 5, it comes back with a
    fresh frame (seq 9); the evicted frames 0..5 are refused (5 itself included: "at or
    below"), the never-accepted 6..8 pass once. Before tombstones, 0..5 passed again."""
    guard = ReplayGuard(WINDOW, MAX_AGE, sessions_per_sender=1)
    for seq in range(6):
        assert deliver(guard, seq, sent_at=1.0 + seq, now=6.0, session=session(0)) == "accept"
    assert deliver(guard, 0, sent_at=7.0, now=7.0, session=session(1)) == "accept"  # evicts 0
    assert guard.tombstones == 1
    assert deliver(guard, 9, sent_at=8.0, now=8.0, session=session(0)) == "accept"  # evicts 1
    results = [deliver(guard, s, sent_at=1.0 + s, now=9.0, session=session(0)) for s in range(9)]
    assert results == ["replay"] * 6 + ["accept"] * 3
    assert deliver(guard, 0, sent_at=7.0, now=9.0, session=session(1)) == "replay"


def test_an_authorised_sender_cannot_grow_memory_without_bound():
    guard = ReplayGuard(
        WINDOW, MAX_AGE, sessions_per_sender=8, tombstones_per_sender=16, max_tombstones=20
    )
    for index in range(100):
        sent_at, now = float(index) / 10, float(index) / 10
        assert deliver(guard, 0, sent_at=sent_at, now=now, session=session(index)) == "accept"
    assert (len(guard), guard.tombstones) == (8, 16)
    # A replay from a session that still has a tombstone: refused exactly...
    assert deliver(guard, 0, sent_at=8.0, now=10.0, session=session(80)) == "replay"
    # ...and one whose tombstone was dropped, by the sender's time floor (7.5: session 75)
    assert deliver(guard, 0, sent_at=5.0, now=10.0, session=session(50)) == "stale"
    # Other senders (their own windows and bounds) and the sender's new sessions pass.
    assert deliver(guard, 0, sent_at=5.0, now=10.0, key_id=b"o" * 8) == "accept"
    assert deliver(guard, 0, sent_at=10.0, now=10.0, session=b"n" * 16) == "accept"
    # The total bound holds across senders: 20 tombstones, whoever made them.
    for index in range(30):
        key_id = bytes([index]) * 8
        for number in range(9):
            deliver(guard, 0, sent_at=10.0, now=10.0, key_id=key_id, session=session(number))
    assert guard.tombstones == 20


def test_a_session_whose_tombstone_was_dropped_cannot_come_back_with_an_empty_window():
    """Beyond the tombstone bound the time floor applies to the re-created window too."""
    guard = ReplayGuard(
        WINDOW, MAX_AGE, sessions_per_sender=1, tombstones_per_sender=1, max_tombstones=10
    )
    assert deliver(guard, 0, sent_at=1.0, now=1.0, session=session(0)) == "accept"
    assert deliver(guard, 1, sent_at=2.0, now=2.0, session=session(0)) == "accept"
    deliver(guard, 0, sent_at=3.0, now=3.0, session=session(1))  # session 0: a tombstone
    deliver(guard, 0, sent_at=4.0, now=4.0, session=session(2))  # 0's tombstone dropped
    assert deliver(guard, 5, sent_at=5.0, now=5.0, session=session(0)) == "accept"
    assert deliver(guard, 1, sent_at=2.0, now=5.0, session=session(0)) == "stale"
    assert deliver(guard, 0, sent_at=1.0, now=5.0, session=session(0)) == "stale"
    assert deliver(guard, 4, sent_at=4.5, now=5.0, session=session(0)) == "accept"
    # ...and so does the tombstone that window becomes in turn.
    assert deliver(guard, 0, sent_at=6.0, now=6.0, session=session(3)) == "accept"
    assert guard.check(K, session(0), 1, 2.0) == "stale"
    assert guard.check(K, session(0), 6, 6.0) is None
    # After max_age the sender's floor is forgotten: the receiver's floor covers it.
    assert guard.sender_floors() == {K: 4.0}  # (session 2's tombstone went too)
    assert deliver(guard, 0, sent_at=40.0, now=40.0, session=session(4)) == "accept"
    assert guard.sender_floors() == {}
    assert guard.check(K, session(0), 1, 2.0) == "stale"


def test_only_a_fresh_guard_is_restored():
    guard = ReplayGuard(WINDOW, MAX_AGE)
    deliver(guard, 0)
    with pytest.raises(ValueError, match="holds no session"):
        guard.restore([], sender_floors={}, floor=0.0, now=0.0)


def test_restored_marks_refuse_at_or_below_and_accept_above():
    first = ReplayGuard(WINDOW, MAX_AGE)
    for seq in (0, 1, 2, 5):
        assert deliver(first, seq, sent_at=10.0 + seq, now=16.0) == "accept"
    second = ReplayGuard(WINDOW, MAX_AGE)
    second.restore(first.marks(), sender_floors={}, floor=first.floor, now=20.0)
    assert [deliver(second, s, sent_at=10.0 + s, now=20.0) for s in range(7)] == [
        *["replay"] * 6,
        "accept",
    ]
    # Marks older than max_age are not restored: the time check covers their frames.
    third = ReplayGuard(WINDOW, MAX_AGE)
    third.restore(second.marks(), sender_floors={}, floor=second.floor, now=50.0)
    assert third.tombstones == 0


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"size": 0}, "window size"),
        ({"sessions_per_sender": 0}, "bounds"),
        ({"max_tombstones": 0}, "bounds"),
    ],
)
def test_bounds_must_be_positive(bounds, message):
    arguments = {"size": WINDOW, **bounds}
    size = arguments.pop("size")
    with pytest.raises(ValueError, match=message):
        ReplayGuard(size, MAX_AGE, **arguments)


def test_the_stated_memory_bound():
    """The module's docstring states bytes per window (4096 bits) and per tombstone
    (16-byte sessions); measure them, so the stated bound stays true."""
    windows = ReplayGuard(4096, MAX_AGE)
    tombstones = ReplayGuard(4096, MAX_AGE, sessions_per_sender=1, max_tombstones=10_000)
    key_id = os.urandom(8)
    count = 5000
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(windows.sessions_per_sender):
            sid = os.urandom(16)
            windows.record(key_id, sid, 0, 1.0, 1.0)
            windows.record(key_id, sid, 4095, 1.0, 1.0)  # the whole bitmap in use
        middle = tracemalloc.get_traced_memory()[0]
        for _ in range(count):  # each new session retires the previous one's window
            tombstones.record(key_id, os.urandom(16), 0, 1.0, 1.0)
        end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert tombstones.tombstones == count - 1
    per_window = (middle - start) / windows.sessions_per_sender
    per_tombstone = (end - middle) / count
    assert 0.8 * WINDOW_BYTES <= per_window <= WINDOW_BYTES, per_window
    assert 0.6 * TOMBSTONE_BYTES <= per_tombstone <= TOMBSTONE_BYTES, per_tombstone


def test_marks_name_every_session_remembered():
    guard = ReplayGuard(WINDOW, MAX_AGE, sessions_per_sender=1)
    deliver(guard, 3, sent_at=1.0, now=1.0, session=session(0))
    deliver(guard, 7, sent_at=2.0, now=2.0, session=session(1))
    assert sorted(guard.marks()) == [(K, session(0), 3, 1.0), (K, session(1), 7, 2.0)]
