"""Integrity: every single-bit flip of a valid frame is rejected, and decoding never crashes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nngsec import Rejected
from tests.support import examples

# Every scheme and direction with integrity (plaintext has none by definition).
CASES = [
    ("pair-secretbox", "alice", "bob", False),
    ("bus-secretbox", "alice", "bob", False),
    ("bus-group", "alice", "bob", False),
    ("pubsub-sealed", "alice", "carol", False),
    ("pipeline-sealed", "alice", "carol", False),
    ("survey-sealed", "alice", "carol", False),
    ("survey-sealed", "alice", "carol", True),  # the response, peerbox
    ("reqrep-peerbox", "alice", "carol", False),
    ("reqrep-peerbox", "alice", "carol", True),
    ("reqrep-single", "alice", "carol", True),
    ("pubsub-signed", "alice", "carol", False),
    ("reqrep-signed", "alice", "carol", True),
]
# origin: mac, where each receiver checks only its own MAC, so a change in another's MAC is
# not its concern: tests/test_origin_mac.py flips every bit against every receiver.
MAC_CASES = [
    ("pubsub-mac", "alice", "carol", False),
    ("pubsub-mac", "alice", "dave", False),  # the second MAC of the list
    ("pipeline-mac", "alice", "carol", False),
    ("survey-mac", "alice", "dave", False),
    ("survey-mac", "alice", "carol", True),  # the response, peerbox
]


def _frame(nodes, channel, sender, receiver, reply):
    topic = "t.x" if channel.startswith("pubsub") else None
    frame = nodes[sender].seal(channel, b"0123456789abcdef", topic=topic)
    if not reply:
        return frame, nodes[receiver].receiver(channel)
    request = nodes[receiver].open(channel, frame)
    return nodes[receiver].reply(request, b"fedcba9876543210"), nodes[sender].receiver(channel)


@pytest.mark.parametrize(("channel", "sender", "receiver", "reply"), CASES)
def test_every_bit_flip_is_rejected(codec_world, channel, sender, receiver, reply):
    frame, opener = _frame(codec_world.nodes, channel, sender, receiver, reply)
    reasons = set()
    for bit in range(len(frame) * 8):
        tampered = bytearray(frame)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(Rejected) as caught:
            opener.open(bytes(tampered))
        reasons.add(caught.value.reason)
    # The untouched frame still opens: nothing above was rejected for an unrelated reason.
    assert opener.open(frame).payload in (b"0123456789abcdef", b"fedcba9876543210")
    assert "forged" in reasons


def test_truncations_and_extensions_are_rejected(codec_world):
    nodes = codec_world.nodes
    frame = nodes["alice"].seal("pubsub-sealed", b"payload", topic="t.x")
    opener = nodes["carol"].receiver("pubsub-sealed")
    for cut in range(len(frame)):
        with pytest.raises(Rejected):
            opener.open(frame[:cut])
    with pytest.raises(Rejected):
        opener.open(frame + b"\x00")
    assert opener.open(frame).payload == b"payload"


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=600), case=st.sampled_from(CASES + MAC_CASES))
def test_arbitrary_bytes_only_ever_raise_rejected(codec_world, data, case):
    channel, sender, receiver, reply = case
    with pytest.raises(Rejected):
        codec_world.nodes[sender if reply else receiver].open(channel, data)


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    case=st.sampled_from(CASES),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 64),
)
def test_mutated_frames_only_ever_raise_rejected(codec_world, case, edits, cut):
    channel, sender, receiver, reply = case
    frame, opener = _frame(codec_world.nodes, channel, sender, receiver, reply)
    mutated = bytearray(frame)
    for position, value in edits:
        mutated[position % len(mutated)] = value
    mutated = mutated[: len(mutated) - cut] if cut % 3 == 0 else mutated
    if bytes(mutated) == frame:
        return
    try:
        opener.open(bytes(mutated))
    except Rejected:
        return
    pytest.fail("a mutated frame was accepted")
