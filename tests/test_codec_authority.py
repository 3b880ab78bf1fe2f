"""Origin authenticity, authorisation and the cheap checks, each with the exact reason."""

from __future__ import annotations

import pytest

from nngsec import PolicyError, Rejected, UsageError
from nngsec._runtime._schemes._base import SendState
from nngsec._runtime._wire import Header, encode_header, parse_frame
from tests.support import outcomes_in_two_threads


def forge_as(attacker, channel, claimed, payload, *, topic=None):
    """What a malicious member can build: a frame naming ``claimed`` as its sender, made
    with every key the attacker holds (its channel keys and its own signing key)."""
    codec = attacker.codec(channel)
    scheme = codec.forward
    claimed_key = attacker.policy.identities[claimed]
    header = Header(
        kind=scheme.kind,
        channel=channel,
        key_id=claimed_key.key_id,
        epoch=scheme.send_epoch(None, None),
        session=b"\x01" * 16,
        seq=7,
        time_ms=int(codec.clock() * 1000),
        topic=topic.encode() if topic is not None else None,
    )
    hdr = encode_header(header)
    return hdr + scheme.seal(SendState(b"\x01" * 16), header, hdr, payload, None)


def reason(callable_, *args):
    with pytest.raises(Rejected) as caught:
        callable_(*args)
    return caught.value.reason


def test_a_subscriber_cannot_forge_a_publishers_frame(codec_world):
    nodes = codec_world.nodes
    # carol can decrypt pubsub-sealed (she subscribes) but cannot sign as alice.
    frame = forge_as(nodes["carol"], "pubsub-sealed", "alice", b"fake reading", topic="t.x")
    assert reason(nodes["dave"].open, "pubsub-sealed", frame) == "forged"
    # Signing as herself does not help: she holds no publishing role.
    own = forge_as(nodes["carol"], "pubsub-sealed", "carol", b"fake reading", topic="t.x")
    assert reason(nodes["dave"].open, "pubsub-sealed", own) == "unauthorized"


def test_a_publisher_cannot_forge_another_publishers_frame(codec_world):
    nodes = codec_world.nodes
    frame = forge_as(nodes["bob"], "pubsub-sealed", "alice", b"fake", topic="t.x")
    assert reason(nodes["carol"].open, "pubsub-sealed", frame) == "forged"


def test_bus_members_cannot_impersonate_each_other_unless_origin_group(codec_world):
    nodes = codec_world.nodes
    frame = forge_as(nodes["bob"], "bus-secretbox", "alice", b"as alice")
    assert reason(nodes["carol"].open, "bus-secretbox", frame) == "forged"
    # origin: group is an explicit choice to trust every member with every name.
    frame = forge_as(nodes["bob"], "bus-group", "alice", b"as alice")
    assert nodes["carol"].open("bus-group", frame).sender == "alice"


def test_a_relay_rewriting_the_topic_is_caught(codec_world):
    nodes = codec_world.nodes
    for channel in ("pubsub-sealed", "pubsub-signed"):
        frame = nodes["alice"].seal(channel, b"21.5", topic="t.line1")
        for rewritten in (b"t.line2", b"u.line1", b"t.line1.more", b"t."):
            moved = rewritten + frame[len(b"t.line1") :]
            assert reason(nodes["carol"].open, channel, moved) == "forged", rewritten
        assert nodes["carol"].open(channel, frame).topic == "t.line1"


def test_topic_outside_the_allowed_prefixes(codec_world):
    nodes = codec_world.nodes
    with pytest.raises(UsageError, match="not allowed"):
        nodes["alice"].seal("pubsub-sealed", b"x", topic="v.other")
    frame = forge_as(nodes["alice"], "pubsub-signed", "alice", b"x", topic="v.other")
    assert reason(nodes["carol"].open, "pubsub-signed", frame) == "unauthorized"


@pytest.mark.parametrize("channel", ["pair-secretbox", "pair-signed", "bus-secretbox", "bus-group"])
def test_a_frame_reflected_to_its_sender_is_refused(codec_world, channel):
    nodes = codec_world.nodes
    frame = nodes["alice"].seal(channel, b"hello bob")
    assert reason(nodes["alice"].open, channel, frame) == "unauthorized"
    assert nodes["bob"].open(channel, frame).payload == b"hello bob"


def test_only_pair_members_can_use_a_pair_channel(codec_world):
    with pytest.raises(PolicyError, match="no role"):
        codec_world.nodes["carol"].seal("pair-secretbox", b"x")


def test_replies_are_bound_to_their_request_and_their_client(codec_world):
    nodes = codec_world.nodes
    channel = "reqrep-peerbox"
    request = nodes["alice"].seal(channel, b"open valve 3")
    received = nodes["carol"].open(channel, request)
    reply = nodes["carol"].reply(received, b"valve 3 open")
    # Another client cannot read it, even though it shares the service.
    assert reason(nodes["bob"].open, channel, reply) == "no-key"
    # The request reflected to its own client is not a reply.
    assert reason(nodes["alice"].receiver(channel, "reply").open, request) == "no-key"
    # Rebinding the reply to another request (rewriting reply_to) breaks authentication.
    _, start = parse_frame(reply, has_topic=False)
    rebound = bytearray(reply)
    rebound[start - 1] ^= 1  # last byte of reply_to.seq
    assert reason(nodes["alice"].open, channel, bytes(rebound)) == "forged"
    message = nodes["alice"].open(channel, reply)
    assert message.reply_to == received.ref and message.sender == "carol"
    # A reply is not a request: a server refuses it.
    assert reason(nodes["dave"].receiver(channel, "forward").open, reply) == "no-key"


def test_cheap_checks_in_order(codec_world):
    nodes, clock = codec_world.nodes, codec_world.clock
    frame = nodes["alice"].seal("pubsub-sealed", b"x", topic="t.x")
    # wrong-channel: a valid frame of another channel
    other = nodes["alice"].seal("pubsub-signed", b"x", topic="t.x")
    assert reason(nodes["carol"].open, "pubsub-sealed", other) == "wrong-channel"
    # forged: a plaintext frame on a sealed channel (downgrade)
    downgrade = bytearray(frame)
    downgrade[len(b"t.x\x00") + 1] = 0x01  # the kind byte

    assert reason(nodes["carol"].open, "pubsub-sealed", bytes(downgrade)) == "forged"
    # unknown-sender: a key id nobody in the policy has
    id_at = len(b"t.x\x00") + 4 + len("pubsub-sealed")
    stranger = bytearray(frame)
    stranger[id_at : id_at + 8] = b"\xee" * 8
    assert reason(nodes["carol"].open, "pubsub-sealed", bytes(stranger)) == "unknown-sender"
    # unauthorized: an identity of the policy with no sending role (erin)
    erin_id = nodes["alice"].policy.identities["erin"].key_id
    outsider = bytearray(frame)
    outsider[id_at : id_at + 8] = erin_id
    assert reason(nodes["carol"].open, "pubsub-sealed", bytes(outsider)) == "unauthorized"
    # stale, both ways; the allowance admits only slightly-future frames
    clock.advance(30.001)
    assert reason(nodes["carol"].open, "pubsub-sealed", frame) == "stale"
    clock.advance(-30.001 - 1.5)
    assert nodes["carol"].open("pubsub-sealed", frame).payload == b"x"  # 1.5 s ahead: fine
    clock.advance(1.5)
    future = nodes["alice"].seal("pubsub-sealed", b"y", topic="t.x")
    clock.advance(-2.5)
    assert reason(nodes["carol"].open, "pubsub-sealed", future) == "stale"
    clock.advance(2.5)
    # replay
    assert reason(nodes["carol"].open, "pubsub-sealed", frame) == "replay"
    assert nodes["carol"].open("pubsub-sealed", future).payload == b"y"


def test_a_stale_detail_says_which_way_the_clock_is_off(codec_world):
    """Both are ``stale`` (a binding reason), but an operator must know where to look: a
    frame from the future means the sender's clock is ahead, an old one that it is late."""
    nodes, clock = codec_world.nodes, codec_world.clock
    clock.advance(5.0)
    ahead = nodes["alice"].seal("pubsub-sealed", b"x", topic="t.x")
    clock.advance(-5.0)
    with pytest.raises(Rejected) as future:
        nodes["carol"].open("pubsub-sealed", ahead)
    assert future.value.reason == "stale"
    assert future.value.detail == (
        "from the future: stamped 5.000s ahead of this receiver's clock, over the 2s clock "
        "skew allowed (the sender's clock is ahead)"
    )
    assert str(future.value).startswith("stale: from the future")
    old = nodes["alice"].seal("pubsub-sealed", b"x", topic="t.x")
    clock.advance(31.0)
    with pytest.raises(Rejected) as late:
        nodes["carol"].open("pubsub-sealed", old)
    assert late.value.reason == "stale"
    assert late.value.detail == "too old: sent 31.000s ago, over the channel's max_age of 30s"


def test_max_age_is_exact_for_old_frames(codec_world):
    nodes, clock = codec_world.nodes, codec_world.clock
    frame = nodes["alice"].seal("pubsub-sealed", b"x", topic="t.x")
    clock.advance(30.0)  # exactly max_age: still fresh
    assert nodes["carol"].open("pubsub-sealed", frame).payload == b"x"
    frame = nodes["alice"].seal("pubsub-sealed", b"x", topic="t.x")
    clock.advance(30.002)
    assert reason(nodes["carol"].open, "pubsub-sealed", frame) == "stale"


def test_too_large(codec_world):
    nodes = codec_world.nodes
    limit = nodes["alice"].policy.channels["pubsub-signed"].max_message_size
    with pytest.raises(UsageError, match="exceeds max_message_size"):
        nodes["alice"].seal("pubsub-signed", bytes(limit + 1), topic="t.")
    big = forge_as(nodes["alice"], "pubsub-signed", "alice", bytes(limit + 1), topic="t.")
    assert reason(nodes["carol"].open, "pubsub-signed", big) == "too-large"
    huge = b"t.\x00" + bytes(limit + 5000)
    assert reason(nodes["carol"].open, "pubsub-signed", huge) == "too-large"
    assert nodes["carol"].open(
        "pubsub-signed", nodes["alice"].seal("pubsub-signed", bytes(limit), topic="t.")
    ).payload == bytes(limit)


def test_rejections_never_carry_the_payload(codec_world):
    nodes = codec_world.nodes
    secret = b"do-not-leak-this-payload"
    frame = nodes["alice"].seal("pubsub-signed", secret, topic="t.x")
    tampered = frame[:-1] + bytes([frame[-1] ^ 1])
    with pytest.raises(Rejected) as caught:
        nodes["carol"].open("pubsub-signed", tampered)
    assert secret.decode() not in str(caught.value) and secret.decode() not in repr(caught.value)
    assert secret.decode() not in repr(nodes["carol"].open("pubsub-signed", frame))


def test_signed_frames_are_bound_to_their_policy(world_factory):
    """Two deployments that share identities and channel names do not share frames. (The
    other schemes bind the policy through their keys; a signature must bind it itself.)"""
    from nngsec import Node, load_policy

    body = (
        "channels:\n  audit:\n"
        "    {pattern: pubsub, publishers: [ctl], subscribers: [obs], scheme: signed}\n"
    )
    world = world_factory(body, ["ctl", "obs"])
    other = world.root / "production.yaml"
    other.write_text(world.policy_path.read_text().replace("name: factory", "name: production"))
    production = Node(load_policy(other), identity="obs", keystore=world.keystore)
    staging = world.node("obs")
    frame = world.node("ctl").seal("audit", b"staging only", topic="t")
    assert staging.open("audit", frame).payload == b"staging only"
    assert reason(production.open, "audit", frame) == "forged"


def test_a_reply_to_another_request_is_refused_before_decryption(codec_world):
    nodes = codec_world.nodes
    first = nodes["alice"].seal("reqrep-peerbox", b"one")
    second = nodes["alice"].codec("reqrep-peerbox").sender().seal_ref(b"two")[1]
    answer = nodes["carol"].reply(nodes["carol"].open("reqrep-peerbox", first), b"for one")
    receiver = nodes["alice"].receiver("reqrep-peerbox", "reply")
    with pytest.raises(Rejected) as caught:
        receiver.open(answer, reply_to=second)
    assert caught.value.reason == "replay"
    assert receiver.open(answer).payload == b"for one"  # nothing was recorded meanwhile


def test_two_threads_opening_one_frame_accept_it_once(codec_world, monkeypatch):
    """A socket and its contexts share one receiver: a frame raced through it by two
    threads (both past the first replay check) must still be accepted exactly once."""
    import threading

    nodes = codec_world.nodes
    frame = nodes["alice"].seal("pubsub-signed", b"once", topic="t.x")
    receiver = nodes["carol"].receiver("pubsub-signed")
    scheme, _ = receiver.schemes[next(iter(receiver.schemes))]
    both_checked = threading.Barrier(2)
    real_open = scheme.open

    def open_after_both_checked(*args, **kwargs):
        both_checked.wait(timeout=5)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(scheme, "open", open_after_both_checked)
    assert outcomes_in_two_threads(lambda: receiver.open(frame)) == ["b'once'", "replay"]


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [("unknown", "unknown-sender"), ("erin", "unauthorized"), ("revoked", "revoked")],
)
def test_senders_are_refused_before_any_cryptography(world_factory, monkeypatch, tamper, expected):
    """Unknown, unauthorised and revoked senders cost no public-key operation: the scheme's
    key lookup and opening must not even be reached."""
    body = (
        "channels:\n  t:\n    pattern: pubsub\n    publishers: [alice, mallory]\n"
        "    subscribers: [carol]\nrevoked: [mallory]\n"
    )
    world = world_factory(body, ["alice", "carol", "erin", "mallory"])
    carol = world.node("carol")
    frame = bytearray(world.node("alice").seal("t", b"x", topic="a"))
    at = len(b"a\x00") + 4 + len("t")
    policy = carol.policy
    frame[at : at + 8] = {
        "unknown": b"\xee" * 8,
        "erin": policy.identities["erin"].key_id,
        "revoked": policy.identities["mallory"].key_id,
    }[tamper]
    receiver = carol.receiver("t")
    scheme, _ = receiver.schemes[next(iter(receiver.schemes))]

    def no_crypto(*args, **kwargs):
        raise AssertionError("cryptography ran for a sender that should be refused first")

    monkeypatch.setattr(scheme, "open_key", no_crypto)
    monkeypatch.setattr(scheme, "open", no_crypto)
    with pytest.raises(Rejected) as caught:
        receiver.open(bytes(frame))
    assert caught.value.reason == expected


def test_key_material_never_shows_in_reprs(codec_world):
    """Objects holding secrets print without them (logs, tracebacks, debuggers)."""
    nodes = codec_world.nodes
    sender = nodes["alice"].sender("pubsub-sealed")
    sender.seal(b"x", topic="t.x")  # caches the session's content key
    (content_key,) = [key for _, key in sender.state.cache.values()]
    carol = nodes["carol"]
    carol_key = carol.keystore.identity("carol")
    secrets = [
        content_key.hex(),
        repr(content_key),
        repr(carol_key.box_secret),
        repr(carol.channel_keys["pubsub-sealed"].current.secret),
        carol_key.box_secret.hex(),
        carol_key.to_text(),
        carol.channel_keys["pubsub-sealed"].current.secret.hex(),
    ]
    shown = " ".join(
        repr(thing)
        for thing in (sender.state, carol_key, carol, carol.channel_keys["pubsub-sealed"])
    )
    for secret in secrets:
        assert secret not in shown
        if secret.startswith("nngsec-"):  # a key in text form: its body alone neither
            assert secret.split(":", 1)[1] not in shown
