"""The codec beyond NNG: ``Node.seal``/``Node.open`` over real ZeroMQ sockets (pyzmq, a
test extra). ZeroMQ's prefix subscription filters on nngsec's clear topic for every scheme
of a pubsub channel, as ``docs/guide/other-transports.md`` says; REQ/REP carries requests
and replies bound to them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import zmq

from nngsec import Node, Rejected
from tests.support import ALICE, ALL_CHANNELS, BOB, CAROL, DAVE, NAMES, build_world

Socket = zmq.Socket[bytes]

PUBSUB_SCHEMES = ("sealed", "signed", "plaintext")
WAIT_MS = 2000


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    world = build_world(tmp_path_factory.mktemp("zmq"), ALL_CHANNELS, NAMES)
    by_name = {name: world.node(name, state_dir=False) for name in NAMES}
    yield by_name
    for node in by_name.values():
        node.close()


@contextmanager
def pub_sub(*subscriptions: bytes) -> Iterator[tuple[Socket, Socket]]:
    """An XPUB and a SUB on tcp 127.0.0.1, connected, with the subscriptions in place at
    the publisher (an XPUB receives each one), so nothing published later is lost."""
    with zmq.Context() as context, context.socket(zmq.XPUB) as pub, context.socket(zmq.SUB) as sub:
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        sub.connect(f"tcp://127.0.0.1:{port}")
        sub.rcvtimeo = pub.rcvtimeo = WAIT_MS
        for subscription in subscriptions:
            sub.subscribe(subscription)
            assert pub.recv() == b"\x01" + subscription
        yield pub, sub


def received(sub: Socket, quiet_ms: int = 200) -> list[bytes]:
    """Every frame that arrives until none has for ``quiet_ms``."""
    frames = []
    while sub.poll(quiet_ms):
        frames.append(sub.recv())
    return frames


@pytest.mark.parametrize("scheme", PUBSUB_SCHEMES)
def test_zeromq_prefix_subscription_filters_on_the_clear_topic(nodes, scheme):
    channel = f"pubsub-{scheme}"
    frames = {
        topic: nodes[ALICE].seal(channel, topic.encode(), topic=topic)
        for topic in ("t.one", "u.two", "t.one.more", "t.three")
    }
    for frame in frames.values():  # the topic, a 0x00, then the header (wire version 2)
        topic = frame[: frame.index(b"\x00")].decode()
        assert frame[len(topic) + 1] == 0x02 and frames[topic] == frame
    with pub_sub(b"t.") as (pub, sub), pub_sub(b"") as (every_pub, everything):
        for frame in frames.values():
            pub.send(frame)
            every_pub.send(frame)
        got = [nodes[CAROL].open(channel, frame) for frame in received(sub)]
        assert [(m.topic, m.payload, m.sender) for m in got] == [
            ("t.one", b"t.one", ALICE),
            ("t.one.more", b"t.one.more", ALICE),
            ("t.three", b"t.three", ALICE),
        ]
        # The u. frame was filtered, not lost: a subscriber of everything gets all four.
        assert received(everything) == list(frames.values())
    with pub_sub(b"t.one\x00") as (pub, sub):  # one exact topic: its terminator included
        for frame in frames.values():
            pub.send(frame)
        assert received(sub) == [frames["t.one"]]


@pytest.mark.parametrize("scheme", ("sealed", "signed"))
def test_a_topic_rewritten_on_the_way_makes_the_frame_forged(nodes, scheme):
    channel = f"pubsub-{scheme}"
    frame = nodes[ALICE].seal(channel, b"21.5", topic="t.one")
    rewritten = b"t.two" + frame[len(b"t.one") :]  # what a device could do to route it
    with pub_sub(b"t.") as (pub, sub):
        pub.send(rewritten)
        (delivered,) = received(sub)
    with pytest.raises(Rejected) as caught:
        nodes[CAROL].open(channel, delivered)
    assert caught.value.reason == "forged"


def test_frames_of_other_patterns_have_no_topic(nodes):
    """They start with the wire version byte: over PUB/SUB they need a subscription to b''."""
    for channel in nodes[ALICE].policy.channels:
        if channel.startswith("pubsub-") or not nodes[ALICE].codec(channel).sends_forward:
            continue
        assert nodes[ALICE].seal(channel, b"x")[0] == 0x02, channel
    frame = nodes[ALICE].seal("pipeline-sealed", b"job")
    with pub_sub(b"t.") as (pub, sub), pub_sub(b"") as (every_pub, everything):
        pub.send(frame)
        every_pub.send(frame)
        assert received(sub) == []
        (delivered,) = received(everything)
    assert nodes[DAVE].open("pipeline-sealed", delivered).payload == b"job"


def test_zeromq_req_rep_carries_requests_and_bound_replies(nodes):
    channel = "reqrep-single"  # alice asks carol
    replies: list[bytes] = []

    def serve(rep: Socket) -> None:
        for _ in range(2):
            request = nodes[CAROL].open(channel, rep.recv())
            assert request.sender == ALICE and not request.is_reply
            reply = nodes[CAROL].reply(request, b"done: " + request.payload)
            replies.append(reply)
            rep.send(reply)

    with zmq.Context() as context, context.socket(zmq.REP) as rep, context.socket(zmq.REQ) as req:
        port = rep.bind_to_random_port("tcp://127.0.0.1")
        req.connect(f"tcp://127.0.0.1:{port}")
        req.rcvtimeo = rep.rcvtimeo = WAIT_MS
        server = threading.Thread(target=serve, args=(rep,))
        server.start()
        answers = []
        for number in (1, 2):
            req.send(nodes[ALICE].seal(channel, b"%d" % number))
            answers.append(nodes[ALICE].open(channel, req.recv()))
        server.join()
    assert [(m.sender, m.payload, m.is_reply) for m in answers] == [
        (CAROL, b"done: 1", True),
        (CAROL, b"done: 2", True),
    ]
    # A reply delivered again is a replay; another client cannot read it.
    for node, reason in ((nodes[ALICE], "replay"), (nodes[BOB], "no-key")):
        with pytest.raises(Rejected) as caught:
            node.open(channel, replies[0])
        assert caught.value.reason == reason
