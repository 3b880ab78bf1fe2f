"""``origin: mac`` on sealed channels (pubsub, pipeline, survey): one 16-byte MAC per
receiving identity of the frame's epoch, in the order of their names, each keyed by the
X25519 keys of the sender and that receiver, over one digest of the frame.

What it must keep: every receiver reads and authenticates every frame meant for it; no
receiver can forge a frame towards another receiver, as the sender or as another
receiver; a frame changed anywhere that a receiver relies on (everything but the other
receivers' MACs) is refused by it, and a frame stripped of any MAC by everyone; the MAC
comes before any X25519 or AEAD work. What it gives up is in the threat model.
"""

from __future__ import annotations

import hashlib

import pytest

from nngsec import Rejected
from nngsec._runtime._schemes import _crypto
from nngsec._runtime._wire import parse_frame
from tests.support import NAMES, FakeClock
from tests.test_codec_authority import forge_as, reason

MAC = 16
FIXED = 32 + 48 + 16  # e_pk, the wrapped content key, the AEAD tag


@pytest.fixture(scope="module")
def mac_nodes(codec_world):
    """The codec world's identities, with replay windows in memory only: a receiver made
    here starts with fresh windows (a node's persisted state would carry what an earlier
    receiver of the same identity accepted, and refuse it as a replay)."""
    world, clock = codec_world.world, codec_world.clock
    nodes = {name: world.node(name, clock=clock, state_dir=False) for name in NAMES}
    yield nodes
    for node in nodes.values():
        node.close()


def _body_start(frame: bytes, channel: str) -> int:
    return parse_frame(frame, has_topic=channel.startswith("pubsub"))[1]


def _topic(channel: str) -> str | None:
    return "t.x" if channel.startswith("pubsub") else None


@pytest.mark.parametrize("channel", ["pubsub-mac", "pipeline-mac", "survey-mac"])
def test_every_receiver_opens_and_the_body_grows_by_16_bytes_per_receiver(mac_nodes, channel):
    nodes = mac_nodes
    payload = b"21.5 degrees"
    frame = nodes["alice"].seal(channel, payload, topic=_topic(channel))
    assert len(frame) - _body_start(frame, channel) == len(payload) + FIXED + 2 * MAC
    for receiver in ("carol", "dave"):
        message = nodes[receiver].open(channel, frame)
        assert (message.payload, message.sender) == (payload, "alice")
    signed = nodes["alice"].seal(channel.replace("mac", "sealed"), payload, topic=_topic(channel))
    body = len(signed) - _body_start(signed, "pubsub" if channel.startswith("pubsub") else "")
    assert body == len(payload) + FIXED + 64  # the signature it replaces


def _slot_owner(frame: bytes, bit: int, holders: tuple[str, ...]) -> str | None:
    """The receiver whose MAC holds ``bit`` of the frame, if any."""
    start = len(frame) - MAC * len(holders)
    byte = bit // 8
    return holders[(byte - start) // MAC] if byte >= start else None


@pytest.mark.parametrize("channel", ["pubsub-mac", "survey-mac"])
def test_every_bit_flip_is_refused_by_every_receiver_it_concerns(mac_nodes, channel):
    """Outside the MAC list, by every receiver; in a receiver's MAC, by that receiver.
    Another receiver's MAC is that receiver's concern only (it is not covered by the
    others'): such a frame still gives every other receiver the true sender's payload."""
    nodes = mac_nodes
    frame = nodes["alice"].seal(channel, b"0123456789abcdef", topic=_topic(channel))
    holders = ("carol", "dave")
    refused: dict[str, set[str]] = {name: set() for name in holders}
    for bit in range(len(frame) * 8):
        tampered = bytearray(frame)
        tampered[bit // 8] ^= 1 << (bit % 8)
        owner = _slot_owner(frame, bit, holders)
        for receiver in holders:
            opener = nodes[receiver].receiver(channel)  # fresh replay windows
            if owner is None or owner == receiver:
                with pytest.raises(Rejected) as caught:
                    opener.open(bytes(tampered))
                refused[receiver].add(caught.value.reason)
            else:
                assert opener.open(bytes(tampered)).payload == b"0123456789abcdef"
    assert all("forged" in reasons for reasons in refused.values())
    for receiver in holders:
        assert nodes[receiver].receiver(channel).open(frame).sender == "alice"


def test_a_frame_missing_or_reordering_a_mac_is_refused_by_everyone(mac_nodes):
    nodes = mac_nodes
    frame = nodes["alice"].seal("pubsub-mac", b"reading" * 8, topic="t.x")  # > one MAC
    carol_mac, dave_mac = frame[-2 * MAC : -MAC], frame[-MAC:]
    without_dave, without_carol = frame[:-MAC], frame[: -2 * MAC] + dave_mac
    swapped = frame[: -2 * MAC] + dave_mac + carol_mac
    extra = frame + carol_mac
    for variant in (without_dave, without_carol, swapped, extra):
        for receiver in ("carol", "dave"):
            assert reason(nodes[receiver].receiver("pubsub-mac").open, variant) == "forged"


def _mac_for(world, receiver: str, claimed: str, channel: str, frame: bytes, holders) -> bytes:
    """``frame`` with ``receiver``'s MAC made as the spec says, by ``receiver`` itself:
    it holds its own box secret, so it can always compute its MAC from any sender."""
    codec = world.node(receiver).codec(channel)
    secret = world.keystore.identity(receiver).box_secret
    sender_pk = codec.policy.identities[claimed].box_key
    receiver_pk = codec.policy.identities[receiver].box_key
    shared = _crypto.x25519(secret, sender_pk)
    assert shared is not None
    label, binding = b"nngsec/v2/sealed/mac-key", codec.ctx.binding
    key = _crypto.kdf(shared, label, sender_pk, receiver_pk, binding)
    end = len(frame) - MAC * len(holders)
    digest = hashlib.blake2b(b"nngsec/v2/sealed/mac\x00" + frame[:end], digest_size=32).digest()
    tag = hashlib.blake2b(digest, digest_size=MAC, key=key).digest()
    at = end + MAC * holders.index(receiver)
    return frame[:at] + tag + frame[at + MAC :]


def test_a_receiver_cannot_forge_the_sender_towards_another_receiver(codec_world, mac_nodes):
    """carol holds the audience secret (she reads everything) and can compute her own
    MAC from alice; she cannot compute dave's. Her forgery convinces only herself: a MAC
    proves nothing to a third party (non-repudiation is what origin: mac gives up)."""
    world, nodes = codec_world.world, mac_nodes
    forged_frame = forge_as(nodes["carol"], "pubsub-mac", "alice", b"fake reading", topic="t.x")
    assert reason(nodes["dave"].receiver("pubsub-mac").open, forged_frame) == "forged"
    assert reason(nodes["carol"].receiver("pubsub-mac").open, forged_frame) == "forged"
    own_slot = _mac_for(world, "carol", "alice", "pubsub-mac", forged_frame, ("carol", "dave"))
    assert reason(nodes["dave"].receiver("pubsub-mac").open, own_slot) == "forged"
    assert nodes["carol"].receiver("pubsub-mac").open(own_slot).sender == "alice"


def test_another_sender_cannot_forge_a_senders_frame(mac_nodes):
    """bob publishes too: his MAC keys are bob's, not alice's."""
    nodes = mac_nodes
    frame = forge_as(nodes["bob"], "pubsub-mac", "alice", b"as alice", topic="t.x")
    for receiver in ("carol", "dave"):
        assert reason(nodes[receiver].receiver("pubsub-mac").open, frame) == "forged"
    assert nodes["carol"].open("pubsub-mac", nodes["bob"].seal("pubsub-mac", b"b", topic="t.x"))


MESH = """
channels:
  mesh:
    pattern: pipeline
    pushers: [alice, carol, dave]
    pullers: [carol, dave, erin]
    origin: mac
"""


def test_a_receiver_cannot_forge_another_receiver(world_factory):
    """carol and dave both receive and send: carol cannot pass a frame off as dave's to
    erin (nor as alice's), though she can to herself."""
    world = world_factory(MESH, NAMES)
    clock = FakeClock()
    nodes = {name: world.node(name, clock=clock, state_dir=False) for name in NAMES}
    holders = ("carol", "dave", "erin")
    for claimed in ("dave", "alice"):
        frame = forge_as(nodes["carol"], "mesh", claimed, b"job")
        frame = _mac_for(world, "carol", claimed, "mesh", frame, holders)
        assert reason(nodes["erin"].receiver("mesh").open, frame) == "forged"
        assert reason(nodes["dave"].receiver("mesh").open, frame) == "forged"
        assert nodes["carol"].receiver("mesh").open(frame).sender == claimed
    honest = nodes["dave"].seal("mesh", b"job from dave")
    for receiver in holders:
        assert nodes[receiver].receiver("mesh").open(honest).sender == "dave"


def test_the_mac_is_checked_before_any_x25519_or_aead_work(mac_nodes, monkeypatch):
    nodes = mac_nodes
    known = nodes["alice"].seal("pubsub-mac", b"first", topic="t.x")
    opener = nodes["carol"].receiver("pubsub-mac")
    assert opener.open(known).payload == b"first"  # caches the session's content key
    later = bytearray(nodes["alice"].seal("pubsub-mac", b"second", topic="t.x"))
    later[-2 * MAC] ^= 1  # carol's MAC
    fresh = forge_as(nodes["bob"], "pubsub-mac", "alice", b"new session", topic="t.x")
    calls: list[str] = []
    monkeypatch.setattr(_crypto, "x25519", lambda *a: calls.append("x25519"))
    monkeypatch.setattr(_crypto, "aead_open", lambda *a: calls.append("aead"))
    assert reason(opener.open, bytes(later)) == "forged"  # a known session
    assert reason(opener.open, fresh) == "forged"  # a new one
    assert calls == []


def test_a_large_audience_still_carries_the_largest_payload(world_factory):
    """20 receivers: 96 + 320 bytes of overhead, more than the 256 every other scheme fits
    in; a frame of max_message_size is not refused as too large."""
    names = [f"r{index:02}" for index in range(20)]
    body = (
        "channels:\n  wide:\n    pattern: pubsub\n    publishers: [alice]\n"
        f"    subscribers: [{', '.join(names)}]\n    origin: mac\n    max_message_size: 1KiB\n"
    )
    world = world_factory(body, ["alice", *names])
    frame = world.node("alice").seal("wide", bytes(1024), topic="t")
    assert len(frame) - _body_start(frame, "pubsub") == 1024 + FIXED + 20 * MAC
    for name in ("r00", "r19"):
        assert world.node(name).open("wide", frame).payload == bytes(1024)
    with pytest.raises(Rejected) as caught:
        world.node("r07").open("wide", frame + bytes(MAC))
    assert caught.value.reason == "too-large"


def test_after_a_rotation_frames_carry_the_new_audience(world_factory):
    """The audience of a frame is the holders of its epoch: a node with the new epoch
    sends one MAC per new holder, and a frame of the old epoch still opens."""
    body = (
        "channels:\n  t:\n    pattern: pubsub\n    publishers: [alice]\n"
        "    subscribers: [carol, dave]\n    origin: mac\n"
    )
    world = world_factory(body, ["alice", "carol", "dave"])
    old = world.node("alice").seal("t", b"epoch 1", topic="t")
    world.rotate("t")
    new = world.node("alice").seal("t", b"epoch 2", topic="t")
    carol = world.node("carol")
    assert carol.open("t", old).payload == b"epoch 1"
    assert carol.open("t", new).payload == b"epoch 2"
    epochs = [parse_frame(frame, has_topic=True)[0].epoch for frame in (old, new)]
    assert epochs[1] == epochs[0] + 1
