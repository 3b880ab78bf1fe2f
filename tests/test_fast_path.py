"""The fast paths of sealing and opening give what the general way gives, on every frame.

A receiver remembers each session it accepted a frame of and opens that session's usual
frames by a shorter route (``Receiver.open``); a sender seals by a plan made from its
first frame (``Sender.seal``). Each test here runs the same traffic through a fast and a
general (``fast = False``) receiver or sender, side by side, and requires the same
outcome for every frame: the same message, or a rejection with the same reason. Each
also requires that the fast path was taken, so a fast path that diverged on any frame,
or was never used, fails here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nngsec import Node, Rejected
from nngsec._runtime._codec import Receiver, Sender
from nngsec._runtime._schemes._base import SendState
from tests.support import NAMES, FakeClock, examples, outcomes_in_two_threads

# (channel, sender, receiver, topic): forward frames of every scheme
FORWARD = [
    ("pair-secretbox", "alice", "bob", None),
    ("pair-signed", "alice", "bob", None),
    ("pair-plaintext", "alice", "bob", None),
    ("bus-secretbox", "alice", "bob", None),
    ("bus-group", "alice", "bob", None),
    ("bus-signed", "alice", "bob", None),
    ("pubsub-sealed", "alice", "carol", "t.x"),
    ("pubsub-mac", "alice", "carol", "t.x"),
    ("pubsub-signed", "alice", "carol", "u.y"),
    ("pubsub-plaintext", "alice", "carol", "t.x"),
    ("pipeline-sealed", "alice", "carol", None),
    ("pipeline-mac", "alice", "dave", None),
    ("survey-sealed", "alice", "carol", None),
    ("survey-mac", "alice", "carol", None),
    ("reqrep-peerbox", "alice", "carol", None),
    ("reqrep-single", "alice", "carol", None),
    ("reqrep-signed", "alice", "carol", None),
]
# (channel, asker, answerer): replies and survey responses
ANSWERS = [
    ("reqrep-peerbox", "alice", "carol"),
    ("reqrep-single", "alice", "carol"),
    ("reqrep-signed", "alice", "carol"),
    ("reqrep-plaintext", "alice", "carol"),
    ("survey-sealed", "alice", "carol"),
]
PAYLOAD = b"0123456789abcdef"


@pytest.fixture(scope="module")
def nodes(codec_world: Any) -> Iterator[dict[str, Any]]:
    """The codec world's identities with replay windows in memory only (every receiver
    made here starts empty) and one clock the tests move."""
    world, clock = codec_world.world, FakeClock()
    made = {name: world.node(name, clock=clock, state_dir=False) for name in NAMES}
    made["clock"] = clock
    yield made
    for name in NAMES:
        made[name].close()


def outcome(receiver: Receiver, frame: bytes, reply_to: Any = None) -> tuple[str, Any]:
    try:
        message = receiver.open(frame, reply_to=reply_to)
    except Rejected as rejected:
        return "rejected", rejected.reason
    return "accepted", tuple(message)


@dataclass
class Pair:
    """A fast and a general receiver of one identity, fed the same frames; counts how
    often the fast one decided on the fast path."""

    fast: Receiver
    general: Receiver
    taken: list[int] = field(default_factory=lambda: [0])

    def __post_init__(self) -> None:
        self.general.fast = False
        known = self.fast._open_known
        taken = self.taken

        def counting(*args: Any) -> Any:
            try:
                message = known(*args)
            except Rejected:
                taken[0] += 1
                raise
            taken[0] += message is not None
            return message

        self.fast._open_known = counting  # type: ignore[method-assign,assignment]

    def same(self, frame: bytes, reply_to: Any = None) -> tuple[str, Any]:
        fast = outcome(self.fast, frame, reply_to)
        general = outcome(self.general, frame, reply_to)
        assert fast == general, (frame.hex(), fast, general)
        return fast


def _pair(nodes: dict[str, Any], channel: str, name: str, accept: str = "any") -> Pair:
    return Pair(nodes[name].receiver(channel, accept), nodes[name].receiver(channel, accept))


def _behind_head(pair: Pair, size: int, topic: str | None) -> int:
    """Bytes of a frame of ``size`` after what the fast path looks up."""
    return size - pair.fast._head_size - (len(topic) + 1 if topic is not None else 0)


def _flipped(frame: bytes, bit: int) -> bytes:
    changed = bytearray(frame)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


@pytest.mark.parametrize(("channel", "sender", "receiver", "topic"), FORWARD)
def test_every_bit_flip_has_the_same_outcome_on_both_paths(nodes, channel, sender, receiver, topic):
    """Each flip is of a fresh frame of a session both receivers know (so it reaches the
    fast path unless the flip makes it unusual), and the untouched frames still open."""
    seal = nodes[sender].sender(channel).seal
    pair = _pair(nodes, channel, receiver, "forward")
    plain = channel.endswith("plaintext")
    assert pair.same(seal(PAYLOAD, topic))[0] == "accepted"  # the session becomes known
    size = len(seal(PAYLOAD, topic))
    reasons = set()
    # From the last bit to the first: on plaintext a flip of a high bit of seq is accepted,
    # and the window is then past every later frame.
    for bit in reversed(range(size * 8)):
        verdict, detail = pair.same(_flipped(seal(PAYLOAD, topic), bit))
        reasons.add(detail if verdict == "rejected" else verdict)
    last = pair.same(seal(PAYLOAD, topic))
    assert last == ("rejected", "replay") if plain else last[0] == "accepted"
    # A quarter of the flips behind the looked-up bytes at least (a flip in them, or in a
    # sealed session's ephemeral and wrapped keys, is unusual).
    assert pair.taken[0] > 2 * _behind_head(pair, size, topic), "the fast path was not taken"
    if not plain:
        assert "forged" in reasons


@pytest.mark.parametrize(("channel", "asker", "answerer"), ANSWERS)
def test_every_bit_flip_of_an_answer_has_the_same_outcome_on_both_paths(
    nodes, channel, asker, answerer
):
    """Replies and survey responses, with the request they must answer (the fast path)
    and without (the general way, for both)."""
    ask = nodes[asker].sender(channel).seal_ref
    answering = nodes[answerer].receiver(channel, "forward")
    answer = nodes[answerer].sender(channel).reply
    pair = _pair(nodes, channel, asker, "reply")

    def exchange() -> tuple[bytes, Any]:
        request, ref = ask(PAYLOAD)
        return answer(answering.open(request), PAYLOAD), ref

    reply, ref = exchange()
    assert pair.same(reply, ref)[0] == "accepted"
    size = len(reply)
    for bit in reversed(range(size * 8)):  # (last to first: see the test above)
        reply, ref = exchange()
        pair.same(_flipped(reply, bit), ref)
        if bit % 64 == 0:  # the same frame, as awaited and as not: both ways agree
            pair.same(reply, ref)
            pair.same(reply)
    if not channel.endswith("plaintext"):  # (there, a flip of seq moved the window on)
        reply, ref = exchange()
        assert pair.same(reply, ref)[0] == "accepted"
    reply, _ = exchange()
    assert pair.same(reply, ref)[1] == "replay"  # an answer to another request
    assert pair.taken[0] > 2 * _behind_head(pair, size, None), "the fast path was not taken"


# -- random traffic: order, loss, copies, time, damage -----------------------------------
Step = tuple[str, int, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(
            ["send", "send", "send", "hold", "release", "again", "flip", "cut", "wait"]
        ),
        st.integers(0, 1 << 16),
        st.integers(0, 1 << 16),
    ),
    min_size=1,
    max_size=40,
)
TRAFFIC = [
    case
    for case in FORWARD
    if case[0]
    in {
        "pair-secretbox",
        "bus-secretbox",
        "pubsub-sealed",
        "pubsub-mac",
        "reqrep-peerbox",
        "pipeline-mac",
        "pubsub-plaintext",
    }
]


@pytest.mark.parametrize(("channel", "sender", "receiver", "topic"), TRAFFIC)
def test_random_traffic_has_the_same_outcome_on_both_paths(nodes, channel, sender, receiver, topic):
    clock: FakeClock = nodes["clock"]
    start = clock.now
    taken = [0]

    @settings(max_examples=examples(40), deadline=None)
    @given(script=steps)
    def run(script: list[Step]) -> None:
        clock.now = start
        # a new session per example, and new receivers: every example starts afresh
        seal = nodes[sender].sender(channel).seal
        pair = _pair(nodes, channel, receiver, "forward")
        sent: list[bytes] = []
        held: list[bytes] = []
        for action, a, b in script:
            if action == "send":
                sent.append(seal(PAYLOAD[: a % 17], topic))
                pair.same(sent[-1])
            elif action == "hold":  # sealed now, delivered later: reordering
                held.append(seal(PAYLOAD, topic))
            elif action == "release" and held:
                frame = held.pop(a % len(held))
                sent.append(frame)
                pair.same(frame)
            elif action == "again" and sent:  # a copy (a replay)
                pair.same(sent[a % len(sent)])
            elif action == "flip" and sent:
                frame = sent[a % len(sent)]
                pair.same(_flipped(frame, b % (len(frame) * 8)))
            elif action == "cut" and sent:
                frame = sent[a % len(sent)]
                pair.same(frame[: b % len(frame)])
            elif action == "wait":  # up to past max_age (30 s here) and the skew
                clock.advance((a % 40_000) / 1000)
        taken[0] += pair.taken[0]

    run()
    clock.now = start
    assert taken[0] > 0, "the fast path was never taken"


# -- sealing: the fast and the general sender give the same bytes ------------------------
def _twins(nodes: dict[str, Any], channel: str, name: str) -> tuple[Sender, Sender]:
    """Two senders of one identity with the same session, and the general one of them
    without plans; the node's random source is fixed for the test (``constant``), so
    sealed channels draw the same ephemeral and content keys for both."""
    one, other = nodes[name].sender(channel), nodes[name].sender(channel)
    session = bytes(range(16))
    one.state, other.state = SendState(session), SendState(session)
    other.fast = False
    return one, other


def constant(size: int) -> bytes:
    return bytes([7]) * size


@pytest.mark.parametrize(("channel", "sender", "receiver", "topic"), FORWARD)
def test_the_fast_and_the_general_sender_seal_the_same_bytes(
    nodes, monkeypatch, channel, sender, receiver, topic
):
    codec = nodes[sender].codec(channel)
    monkeypatch.setattr(codec.ctx, "random", constant)
    fast, general = _twins(nodes, channel, sender)
    clock: FakeClock = nodes["clock"]
    for index in range(6):
        payload = PAYLOAD * index
        assert fast.seal(payload, topic) == general.seal(payload, topic), index
        assert fast.seal_ref(payload, topic) == general.seal_ref(payload, topic), index
        clock.advance(0.25)
    assert fast._plans and not general._plans  # the fast one sealed by its plan


@pytest.mark.parametrize(("channel", "asker", "answerer"), ANSWERS)
def test_the_fast_and_the_general_sender_answer_with_the_same_bytes(
    nodes, channel, asker, answerer
):
    ask = nodes[asker].sender(channel).seal
    answering = nodes[answerer].receiver(channel, "forward")
    fast, general = _twins(nodes, channel, answerer)
    for _ in range(4):
        request = answering.open(ask(PAYLOAD))
        assert fast.reply(request, PAYLOAD) == general.reply(request, PAYLOAD)
    assert fast._plans and not general._plans


def test_a_plan_is_not_used_by_a_restarted_session_nor_after_a_policy_switch(nodes, monkeypatch):
    """The plan names its session and policy: a restarted session (what a forked child
    does) or another codec in the slot (a policy switch) seals the general way again."""
    sender = nodes["alice"].sender("pair-secretbox")
    general: list[object] = []
    real = Sender._frame

    def counted(*args: Any) -> Any:
        general.append(args)
        return real(sender, *args)

    monkeypatch.setattr(sender, "_frame", counted)
    sender.seal(PAYLOAD)
    sender.seal(PAYLOAD)
    assert len(general) == 1  # the second by the plan
    old = sender.state.session
    sender.state.restart()
    frame = sender.seal(PAYLOAD)
    assert len(general) == 2 and old not in frame and sender.state.session in frame
    slot, codec = sender.slot, sender.slot.codec
    try:
        slot.replace(copy.copy(codec))  # another codec object: as after a switch
        sender.seal(PAYLOAD)
        assert len(general) == 3
        sender.seal(PAYLOAD)
        assert len(general) == 3
    finally:
        slot.replace(codec)


# -- unusual frames of a known session: the general way decides ---------------------------
UNUSUAL = [
    case
    for case in FORWARD
    if case[0]
    in {
        "pair-secretbox",
        "bus-secretbox",
        "pubsub-sealed",
        "pubsub-mac",
        "reqrep-peerbox",
        "pubsub-plaintext",
    }
]


@pytest.mark.parametrize(("channel", "sender", "receiver", "topic"), UNUSUAL)
def test_late_and_early_frames_of_a_known_session_take_the_general_way(
    nodes, channel, sender, receiver, topic
):
    clock: FakeClock = nodes["clock"]
    start = clock.now
    seal = nodes[sender].sender(channel).seal
    pair = _pair(nodes, channel, receiver, "forward")
    try:
        assert pair.same(seal(PAYLOAD, topic))[0] == "accepted"
        late = seal(PAYLOAD, topic)
        clock.advance(30.5)  # past max_age
        assert pair.same(late) == ("rejected", "stale")
        clock.advance(5)
        early = seal(PAYLOAD, topic)
        clock.advance(-5)  # stamped 5 s ahead: past the 2 s skew allowance
        assert pair.same(early) == ("rejected", "stale")
        assert pair.same(seal(PAYLOAD, topic))[0] == "accepted"
        assert pair.taken[0] == 1
    finally:
        clock.now = start


@pytest.mark.parametrize(("channel", "sender", "receiver", "topic"), UNUSUAL)
def test_a_frame_of_a_known_session_over_max_message_size_is_refused_as_too_large(
    codec_world, nodes, channel, sender, receiver, topic
):
    """The receiver's policy allows 16 bytes, the sender's more (a sender on another
    version of the policy): the larger frames of a known session are too large."""
    world = codec_world.world
    text = world.policy_path.read_text()
    small = world.root / f"small-{channel}.yaml"
    small.write_text(
        text.replace(f"  {channel}:\n", f"  {channel}:\n    max_message_size: 16B\n", 1)
    )
    (world.root / f"small-{channel}.keys.json").write_bytes(
        world.policy_path.with_suffix(".keys.json").read_bytes()
    )
    with Node(
        small, identity=receiver, keystore=world.keystore, clock=nodes["clock"], state_dir=False
    ) as node:
        seal = nodes[sender].sender(channel).seal
        pair = _pair({receiver: node}, channel, receiver, "forward")
        assert pair.same(seal(PAYLOAD, topic))[0] == "accepted"
        assert pair.same(seal(PAYLOAD * 2, topic)) == ("rejected", "too-large")
        assert pair.same(seal(PAYLOAD, topic))[0] == "accepted"
        assert pair.taken[0] == 1


EXPIRING = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor]
    subscribers: [dashboard]
"""


def test_a_known_session_of_an_identity_that_expired_is_refused_as_revoked(world_factory):
    from nngsec._formats._units import format_utc
    from tests.support import NOW

    world = world_factory(EXPIRING, ("sensor", "dashboard"))
    key = str(world.keystore.identity("sensor").public.to_text())
    text = world.policy_path.read_text()
    world.policy_path.write_text(
        text.replace(
            f"  sensor: {key}", f"  sensor: {{key: {key}, expires: {format_utc(NOW + 60)}}}"
        )
    )
    clock = FakeClock()
    sensor = world.node("sensor", clock=clock, state_dir=False)
    dashboard = world.node("dashboard", clock=clock, state_dir=False)
    seal = sensor.sender("telemetry").seal
    pair = _pair({"dashboard": dashboard}, "telemetry", "dashboard", "forward")
    assert pair.same(seal(b"in time", "t"))[0] == "accepted"
    assert pair.same(seal(b"in time", "t"))[0] == "accepted"
    late = seal(b"late", "t")
    clock.advance(61)
    assert pair.same(late) == ("rejected", "revoked")
    assert pair.taken[0] == 1


def test_a_known_session_under_a_retired_epoch_is_refused_as_no_key(world_factory):
    """The sender keeps the epoch it had; a receiver that also holds the new one accepts
    the old one's frames until its grace ends, and then refuses them (no-key)."""
    world = world_factory(EXPIRING, ("sensor", "dashboard"))
    clock = FakeClock()
    sensor = world.node("sensor", clock=clock, state_dir=False)
    seal = sensor.sender("telemetry").seal
    world.rotate("telemetry", now=clock.now, grace=10)
    dashboard = world.node("dashboard", clock=clock, state_dir=False)
    pair = _pair({"dashboard": dashboard}, "telemetry", "dashboard", "forward")
    assert pair.same(seal(b"old epoch", "t"))[0] == "accepted"
    assert pair.same(seal(b"old epoch", "t"))[0] == "accepted"
    clock.advance(11)
    assert pair.same(seal(b"past its grace", "t")) == ("rejected", "no-key")
    assert pair.taken[0] == 1
    sensor.close()
    dashboard.close()


@pytest.mark.parametrize("channel", ["pair-secretbox", "pubsub-mac"])
def test_a_copy_accepted_while_a_frame_was_opened_is_refused_under_the_lock(nodes, channel):
    """Two threads with one frame: both pass the checks before the cryptography, and only
    the check again under the receiver's lock refuses the second (the copy is opened here
    from inside the first one's cryptography, which is where another thread could run)."""
    topic = "t.x" if channel.startswith("pubsub") else None
    seal = nodes["alice"].sender(channel).seal
    receiver = nodes["carol" if topic else "bob"].receiver(channel, "forward")
    receiver.open(seal(PAYLOAD, topic))  # the session becomes known
    frame = seal(PAYLOAD, topic)
    (known,) = receiver._known.values()
    inner: list[Any] = []

    def open_and_race(*args: Any) -> Any:
        if not inner:
            inner.append(None)
            inner[0] = receiver.open(frame)  # the copy, accepted first
        return known.open(*args)

    receiver._known = {head: k._replace(open=open_and_race) for head, k in receiver._known.items()}
    assert outcome(receiver, frame) == ("rejected", "replay")
    assert inner[0].payload == PAYLOAD


def test_the_receive_fast_path_unpacks_the_session_record_in_its_field_order():
    """``Receiver._open_known`` reads a ``_Known`` in one unpacking, by position: a field
    added or moved must be added or moved there too (this pins the order it reads)."""
    from nngsec._runtime._codec import _Known

    assert _Known._fields == (
        "codec", "sender", "channel", "key", "key_id", "session", "own_key_id", "window",
        "epoch", "topic", "open", "body_prefix", "overhead", "until", "reply", "plain",
        "header_rest", "max_payload", "max_age", "skew", "authenticated",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("channel", "sender", "receiver", "topic"),
    [case for case in FORWARD if case[0] in {"pair-secretbox", "pubsub-mac", "reqrep-peerbox"}],
)
def test_two_threads_racing_one_frame_through_the_fast_path_accept_it_once(
    nodes, channel, sender, receiver, topic
):
    """Both threads pass the fast path's replay check before either decrypts (a barrier
    in the session's opener holds them there); under the lock the window is checked
    again, so the frame is accepted once and the other copy is a replay. (Without the
    second check both would slide the window and return the message.) Covers the plain
    window slide and the journaled one of a request."""
    import threading

    seal = nodes[sender].sender(channel).seal
    opener = nodes[receiver].receiver(channel)
    assert opener.open(seal(PAYLOAD, topic)).payload == PAYLOAD  # the session is known
    [(head, known)] = opener._known.items()
    both_checked = threading.Barrier(2)

    def open_after_both_checked(frame: bytes, start: int, nonce_at: int) -> bytes | None:
        both_checked.wait(timeout=5)
        opened: bytes | None = known.open(frame, start, nonce_at)
        return opened

    opener._known[head] = known._replace(open=open_after_both_checked)
    frame = seal(PAYLOAD, topic)
    assert outcomes_in_two_threads(lambda: opener.open(frame)) == sorted([str(PAYLOAD), "replay"])
