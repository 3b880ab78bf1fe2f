"""Every pattern and scheme, every sender to every receiver, replies included."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nngsec import Rejected

CHANNELS = [
    "pair-secretbox", "pair-signed", "pair-plaintext",
    "bus-secretbox", "bus-group", "bus-signed", "bus-plaintext",
    "pubsub-sealed", "pubsub-signed", "pubsub-plaintext",
    "pipeline-sealed", "pipeline-signed", "pipeline-plaintext",
    "survey-sealed", "survey-signed", "survey-plaintext",
    "pubsub-mac", "pipeline-mac", "survey-mac",
    "reqrep-single", "reqrep-peerbox", "reqrep-signed", "reqrep-plaintext",
]  # fmt: skip

topics = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["t.", "u."]),
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40),
).filter(lambda topic: len(topic.encode()) <= 255)


def test_channel_list_covers_the_policy(codec_world):
    assert sorted(CHANNELS) == sorted(codec_world.world.node("alice").policy.channels)


@pytest.mark.parametrize("channel", CHANNELS)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.binary(max_size=3000), topic=topics)
def test_every_sender_reaches_every_receiver(codec_world, channel, payload, topic):
    nodes = codec_world.nodes
    policy = nodes["alice"].policy
    pubsub = policy.channels[channel].pattern == "pubsub"
    for sender in sorted(policy.senders(channel)):
        frame = nodes[sender].seal(channel, payload, topic=topic if pubsub else None)
        if pubsub:
            assert frame.startswith(topic.encode() + b"\x00")  # binding: clear topic first
        for receiver in sorted(policy.receivers(channel) - {sender}):
            message = nodes[receiver].open(channel, frame)
            assert message.payload == payload
            assert message.sender == sender
            assert message.channel == channel
            assert message.topic == (topic if pubsub else None)
            assert message.sent_at == pytest.approx(codec_world.clock.now, abs=0.001)
            assert message.authenticated == (not channel.endswith("plaintext"))
            if policy.channels[channel].pattern in ("reqrep", "survey"):
                answer = nodes[receiver].reply(message, payload[::-1])
                reply = nodes[sender].open(channel, answer)
                assert reply.payload == payload[::-1]
                assert reply.sender == receiver
                assert reply.reply_to == message.ref


def test_sealed_frames_are_readable_by_neither_senders_nor_relays(codec_world):
    """A publisher that is not a subscriber cannot read another publisher's frame."""
    nodes = codec_world.nodes
    for channel in ("pubsub-sealed", "pipeline-sealed", "survey-sealed"):
        pubsub = channel.startswith("pubsub")
        frame = nodes["alice"].seal(channel, b"secret payload", topic="t.x" if pubsub else None)
        assert b"secret payload" not in frame
        with pytest.raises(Rejected) as caught:
            nodes["bob"].open(channel, frame)
        assert caught.value.reason == "no-key"


def test_payload_never_appears_in_encrypted_frames(codec_world):
    nodes = codec_world.nodes
    secret = b"the-plaintext-marker-1234567890"
    for channel in CHANNELS:
        if channel.endswith(("signed", "plaintext")):
            continue
        policy = nodes["alice"].policy
        sender = sorted(policy.senders(channel))[0]
        topic = "t." if policy.channels[channel].pattern == "pubsub" else None
        assert secret not in nodes[sender].seal(channel, secret, topic=topic), channel
