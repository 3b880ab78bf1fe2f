"""Wire format 2 (issue 9, finding 5): 16-byte random sessions in every header and in
``reply_to``, the nonce ``session || seq``, and frames of other versions refused.

Beyond these, tests/test_vectors.py checks every byte of the format against the spec with
an independent implementation.
"""

from __future__ import annotations

import pytest

from nngsec import Rejected
from nngsec._runtime._schemes._base import nonce_of
from nngsec._runtime._wire import SESSION_SIZE, Header, encode_header, parse_frame

# A sealed pubsub frame of nngsec 0.1 (wire format 1, 8-byte session), from its vectors.
V1_FRAME = bytes.fromhex(
    "74656d702e6c696e6531000104000974656c656d65747279d33ee68ee1c5df27000000018ba1ebc9bb17f78e"
    "0000000000000000000001a3185c50001c17b486f8f71d98232ed37b60fc54e8cfb2ff92054b8bc38e6be40f"
    "69aa0240fbafde4a9d488a1ad76910d226a825291111eed20d26b7852f6a2beb5c1582d01cf5722831e5f824"
)
AEAD_CHANNELS = [
    "pair-secretbox", "bus-secretbox", "bus-group", "pubsub-sealed", "pipeline-sealed",
    "survey-sealed", "reqrep-single", "reqrep-peerbox",
]  # fmt: skip


def _header(node, channel: str, frame: bytes) -> Header:
    return parse_frame(frame, has_topic=node.policy.channels[channel].pattern_name == "pubsub")[0]


def _topic(node, channel: str) -> str | None:
    return "t.x" if node.policy.channels[channel].pattern_name == "pubsub" else None


@pytest.mark.parametrize("channel", AEAD_CHANNELS)
def test_every_sending_session_has_16_random_bytes(codec_world, channel):
    world, clock = codec_world.world, codec_world.clock
    sessions = set()
    for _ in range(8):  # a new Node: a new sending session
        node = world.node("alice", clock=clock)
        topic = _topic(node, channel)
        frame = node.seal(channel, b"x", topic=topic)
        header = _header(node, channel, frame)
        assert frame[len(topic) + 1 if topic else 0] == 2  # the version byte
        assert len(header.session) == SESSION_SIZE == 16
        assert header.seq == 0
        assert nonce_of(header) == header.session + bytes(8)  # session || seq, 24 bytes
        sessions.add(header.session)
    assert len(sessions) == 8


@pytest.mark.parametrize("channel", ["reqrep-single", "reqrep-peerbox", "survey-sealed"])
def test_a_reply_names_the_request_by_its_16_byte_session(codec_world, channel):
    nodes = codec_world.nodes
    request = nodes["carol"].open(channel, nodes["alice"].seal(channel, b"q"))
    frame = nodes["carol"].reply(request, b"a")
    header = _header(nodes["carol"], channel, frame)
    assert header.reply_to == request.ref
    assert len(request.ref.session) == 16
    # The request's key id, session and seq follow the fixed fields: 8 + 16 + 8 bytes.
    start = 4 + len(channel) + 8 + 4 + 16 + 8 + 8
    assert frame[start : start + 32] == (
        request.ref.key_id + request.ref.session + request.ref.seq.to_bytes(8, "big")
    )


def test_a_frame_of_nngsec_0_1_is_refused_with_an_upgrade_hint(codec_world):
    with pytest.raises(Rejected) as caught:
        codec_world.nodes["carol"].open("pubsub-sealed", V1_FRAME)
    assert caught.value.reason == "malformed"
    assert caught.value.detail.startswith(
        "wire format version 1, of nngsec 0.1: upgrade the sender"
    )


@pytest.mark.parametrize("version", [0, 3, 255])
def test_other_versions_are_refused_as_unsupported(codec_world, version):
    frame = bytearray(codec_world.nodes["alice"].seal("pair-secretbox", b"x"))
    frame[0] = version
    with pytest.raises(Rejected) as caught:
        codec_world.nodes["bob"].open("pair-secretbox", bytes(frame))
    assert caught.value.reason == "malformed"
    assert caught.value.detail == f"unsupported wire format version {version}"


@pytest.mark.parametrize(
    ("field", "value"), [("session", b"\x01" * 8), ("session", b"\x01" * 17), ("key_id", b"k")]
)
def test_a_header_with_a_short_or_long_field_is_not_encoded(field, value):
    fields = {"key_id": b"\x02" * 8, "session": b"\x01" * 16, field: value}
    header = Header(0x03, "c", fields["key_id"], 0, fields["session"], 0, 0)
    with pytest.raises(ValueError, match="key id must be 8 bytes and session 16"):
        encode_header(header)


def test_the_spec_states_the_sizes_and_defaults_of_the_code():
    from pathlib import Path

    from nngsec._policy._model import ChannelBase
    from nngsec._runtime._codec import _SLACK
    from nngsec._runtime._node import DEFAULT_CLOCK_SKEW
    from nngsec._runtime._wire import MAX_HEADER

    spec = (Path(__file__).parents[1] / "docs/spec/wire-format.md").read_text()
    assert f"`max_message_size` + **{_SLACK}** bytes" in spec
    assert "`MAX_HEADER` (400)" in spec and MAX_HEADER == 400
    assert f"256 + 4 + 64 + 44 + 32 = {MAX_HEADER} bytes" in spec
    fields = ChannelBase.model_fields
    assert fields["max_age"].default == 30.0 and "| `max_age` | 30 s |" in spec
    assert fields["replay_window"].default == 4096 and "| `replay_window` | 4096 frames |" in spec
    assert fields["max_message_size"].default == 1 << 20
    assert "| `max_message_size` | 1 MiB (1,048,576 bytes of payload) |" in spec
    assert DEFAULT_CLOCK_SKEW == 2.0 and "2 s by default" in spec
