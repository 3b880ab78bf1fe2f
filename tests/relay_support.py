"""Helpers for tests through key-less relays: plain pynng sockets, polling, scenarios.

Every scenario runs real pynng sockets (Pub0/Sub0, Push0/Pull0, Req0/Rep0,
Surveyor0/Respondent0, Bus0) on both sides of a relay, seals with ``Node.seal`` and opens
with ``Node.open``, checks what arrived, and returns the frames it sent so that a test
can compare them with what the relay forwarded.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pynng

from nngsec import Node, Relay
from nngsec._runtime._wire import parse_frame
from tests.net import TIMEOUT, wait_for

TIMEOUT_MS = int(TIMEOUT * 1000)

BODY = """\
channels:
  telemetry:
    pattern: pubsub
    publishers: [alice, bob]
    subscribers: [carol, dave]
    topics: ["temp.", "hum."]
  telemetry-signed:
    pattern: pubsub
    publishers: [alice, bob]
    subscribers: [carol, dave]
    scheme: signed
  jobs:
    pattern: pipeline
    pushers: [alice, bob]
    pullers: [carol, dave]
  rpc:
    pattern: reqrep
    clients: [alice, bob]
    servers: [carol, dave]
  poll:
    pattern: survey
    surveyors: [alice, bob]
    respondents: [carol, dave]
  chat:
    pattern: bus
    members: [alice, bob, carol]
"""
NAMES = ("alice", "bob", "carol", "dave")

_counter = itertools.count()


def secret() -> bytes:
    """A payload nobody could mistake: a marker, a serial number and 32 random bytes."""
    return b"SECRET-%d-" % next(_counter) + os.urandom(32)


def leaks(payload: bytes, body: bytes, window: int = 8) -> bool:
    """Whether any ``window`` consecutive bytes of ``payload`` appear in ``body``."""
    return any(payload[i : i + window] in body for i in range(len(payload) - window + 1))


def ref_of(frame: bytes, *, has_topic: bool = False) -> Any:
    """The FrameRef a reply to ``frame`` must carry (read from the clear header)."""
    header, _ = parse_frame(frame, has_topic=has_topic)
    return header.ref


def publish_until_received(pub: Any, sub: Any, frame: bytes, what: str) -> bytes:
    """Publish ``frame`` on ``pub`` until ``sub`` (with a short ``recv_timeout``) receives
    one: every connection on the path is then up, with no assumption on timing."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        pub.send(frame)
        try:
            got: bytes = sub.recv()
            return got
        except pynng.Timeout:
            assert time.monotonic() < deadline, f"nothing came through {what}"


class Link:
    """A plain pynng socket that dials ``url``; ``up`` counts its live pipes, ``connects``
    every connection it made so far.

    Counted after NNG's ADD_POST event (the pipe is in the protocol's list, so a send
    goes to it), which pynng's ``pipes`` (filled at ADD_PRE) does not guarantee.
    """

    def __init__(self, factory: Any, url: str, **options: Any) -> None:
        options.setdefault("recv_timeout", TIMEOUT_MS)
        options.setdefault("send_timeout", TIMEOUT_MS)
        self.sock = factory(**options)
        self.up = 0
        self.connects = 0
        self._lock = threading.Lock()
        self.sock.add_post_pipe_connect_cb(self._added)
        self.sock.add_post_pipe_remove_cb(self._removed)
        self.sock.dial(url, block=False)

    def _added(self, pipe: Any) -> None:
        with self._lock:
            self.up += 1
            self.connects += 1

    def _removed(self, pipe: Any) -> None:
        with self._lock:
            self.up -= 1

    def close(self) -> None:
        self.sock.close()


@dataclass
class Sockets:
    """Opens links and closes all of them at the end of a test."""

    links: list[Link] = field(default_factory=list)

    def dial(self, factory: Any, url: str, **options: Any) -> Link:
        link = Link(factory, url, **options)
        self.links.append(link)
        return link

    def close(self) -> None:
        for link in self.links:
            link.close()


def connected(relay: Relay, links: Iterable[Link], *, front: int, back: int) -> None:
    """Wait until every link and the relay have all their connections."""
    links = list(links)
    wait_for(
        lambda: relay.peers == (front, back) and all(link.up == 1 for link in links),
        f"{front} front and {back} back connections (relay has {relay.peers}, "
        f"links have {[link.up for link in links]})",
    )


@dataclass
class Traffic:
    """What the endpoints sent: frames towards the back, frames back to the front."""

    to_back: list[bytes] = field(default_factory=list)
    to_front: list[bytes] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)


class Responder:
    """Answers every request (reqrep) or survey on ``link`` in a thread until stopped."""

    def __init__(self, link: Link, node: Node, channel: str, traffic: Traffic) -> None:
        self.link, self.node, self.channel, self.traffic = link, node, channel, traffic
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self.link.sock.recv_timeout = 50  # to notice stop() soon
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.link.sock.recv()
            except pynng.Timeout:
                continue
            except pynng.Closed:
                return
            try:
                request = self.node.open(self.channel, frame)
                answer = b"ANSWER:" + request.payload
                self.traffic.payloads.append(answer)
                reply = self.node.reply(request, answer)
                self.traffic.to_front.append(reply)
                self.link.sock.send(reply)
            except BaseException as error:  # surfaced by stop() in the test's thread
                self.errors.append(error)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "responder did not stop"
        if self.errors:
            raise self.errors[0]


# -- one scenario per pattern ---------------------------------------------------------------


def pubsub(relay: Relay, nodes: dict[str, Node], sockets: Sockets, channel: str) -> Traffic:
    """alice publishes temp.* and hum.*; carol subscribes to temp., dave to hum."""
    traffic = Traffic()
    pub = sockets.dial(pynng.Pub0, relay.front_url)
    subs = {
        "temp.": sockets.dial(pynng.Sub0, relay.back_url, topics=b"temp."),
        "hum.": sockets.dial(pynng.Sub0, relay.back_url, topics=b"hum."),
    }
    readers = {"temp.": nodes["carol"], "hum.": nodes["dave"]}
    connected(relay, [pub, *subs.values()], front=1, back=2)
    sent: dict[str, list[bytes]] = {"temp.": [], "hum.": []}
    for index in range(6):
        for prefix in ("temp.", "hum."):
            topic = f"{prefix}line{index % 2}" if index < 5 else f"{prefix}end"
            payload = secret()
            frame = nodes["alice"].seal(channel, payload, topic=topic)
            traffic.payloads.append(payload)
            traffic.to_back.append(frame)
            sent[prefix].append(frame)
            pub.sock.send(frame)
    for prefix, sub in subs.items():
        # Pub/sub keeps order along one path, so a frame that passed a subscriber's filter
        # wrongly would arrive before that subscriber's own last frame.
        received = [sub.sock.recv() for _ in sent[prefix]]
        assert received == sent[prefix]  # byte for byte, nothing of the other topic
        for frame in received:
            message = readers[prefix].open(channel, frame)
            assert message.sender == "alice"
            assert message.topic is not None and message.topic.startswith(prefix)
            assert message.payload in traffic.payloads
        try:
            extra = sub.sock.recv(block=False)
        except pynng.TryAgain:
            extra = None
        assert extra is None, f"subscriber to {prefix} got an unexpected frame"
    return traffic


def pipeline(relay: Relay, nodes: dict[str, Node], sockets: Sockets, channel: str) -> Traffic:
    """alice and bob push jobs; carol and dave pull them; every job arrives exactly once."""
    traffic = Traffic()
    pushers = {name: sockets.dial(pynng.Push0, relay.front_url) for name in ("alice", "bob")}
    pullers = {name: sockets.dial(pynng.Pull0, relay.back_url) for name in ("carol", "dave")}
    connected(relay, [*pushers.values(), *pullers.values()], front=2, back=2)
    origin: dict[bytes, tuple[str, bytes]] = {}
    for _ in range(6):
        for name, pusher in pushers.items():
            payload = secret()
            frame = nodes[name].seal(channel, payload)
            origin[frame] = (name, payload)
            traffic.payloads.append(payload)
            traffic.to_back.append(frame)
            pusher.sock.send(frame)
    got: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < len(origin):
        assert time.monotonic() < deadline, f"only {len(got)} of {len(origin)} jobs arrived"
        idle = True
        for name, puller in pullers.items():
            try:
                frame = puller.sock.recv(block=False)
            except pynng.TryAgain:
                continue
            idle = False
            got.append(frame)
            message = nodes[name].open(channel, frame)
            assert (message.sender, message.payload) == origin[frame]
        if idle:
            time.sleep(0.002)
    assert sorted(got) == sorted(origin)  # each job once, byte for byte
    return traffic


def reqrep(relay: Relay, nodes: dict[str, Node], sockets: Sockets, channel: str) -> Traffic:
    """Two clients with two contexts each keep requests outstanding at the same time;
    each reply must come back to the context that asked, and open with that client's key."""
    traffic = Traffic()
    clients = {name: sockets.dial(pynng.Req0, relay.front_url) for name in ("alice", "bob")}
    servers = {name: sockets.dial(pynng.Rep0, relay.back_url) for name in ("carol", "dave")}
    connected(relay, [*clients.values(), *servers.values()], front=2, back=2)
    responders = [Responder(link, nodes[name], channel, traffic) for name, link in servers.items()]
    try:
        contexts = [
            (name, link.sock.new_context()) for name, link in clients.items() for _ in range(2)
        ]
        for _ in range(3):
            asked = []
            for name, context in contexts:
                payload = secret()
                frame = nodes[name].seal(channel, payload)
                traffic.payloads.append(payload)
                traffic.to_back.append(frame)
                context.send(frame)
                asked.append((name, context, payload, ref_of(frame)))
            for name, context, payload, ref in asked:  # all four are outstanding now
                reply = nodes[name].open(channel, context.recv())
                assert reply.reply_to == ref
                assert reply.payload == b"ANSWER:" + payload
                assert reply.sender in ("carol", "dave")
        for _, context in contexts:
            context.close()
    finally:
        for responder in responders:
            responder.stop()
    return traffic


def survey(relay: Relay, nodes: dict[str, Node], sockets: Sockets, channel: str) -> Traffic:
    """alice surveys; both respondents' answers come back to her and open with her key."""
    traffic = Traffic()
    surveyor = sockets.dial(pynng.Surveyor0, relay.front_url, survey_time=TIMEOUT_MS)
    answering = {
        name: sockets.dial(pynng.Respondent0, relay.back_url) for name in ("carol", "dave")
    }
    connected(relay, [surveyor, *answering.values()], front=1, back=2)
    responders = [
        Responder(link, nodes[name], channel, traffic) for name, link in answering.items()
    ]
    try:
        for _ in range(2):
            payload = secret()
            frame = nodes["alice"].seal(channel, payload)
            traffic.payloads.append(payload)
            traffic.to_back.append(frame)
            surveyor.sock.send(frame)
            answers = [nodes["alice"].open(channel, surveyor.sock.recv()) for _ in answering]
            assert sorted(answer.sender for answer in answers) == ["carol", "dave"]
            for answer in answers:
                assert answer.reply_to == ref_of(frame)
                assert answer.payload == b"ANSWER:" + payload
    finally:
        for responder in responders:
            responder.stop()
    return traffic


def bus(relay: Relay, nodes: dict[str, Node], sockets: Sockets, channel: str) -> Traffic:
    """alice on the front, bob and carol on the back: each hears the others, never itself."""
    traffic = Traffic()
    members = {
        "alice": sockets.dial(pynng.Bus0, relay.front_url),
        "bob": sockets.dial(pynng.Bus0, relay.back_url),
        "carol": sockets.dial(pynng.Bus0, relay.back_url),
    }
    connected(relay, members.values(), front=1, back=2)
    for speaker in ("alice", "bob", "carol"):
        payload = secret()
        frame = nodes[speaker].seal(channel, payload)
        traffic.payloads.append(payload)
        traffic.to_back.append(frame)
        members[speaker].sock.send(frame)
        for listener, link in members.items():
            if listener == speaker:
                continue
            # Everything a member sent earlier reached the relay before this frame, so an
            # echo of the member's own frame would be read here instead.
            received = link.sock.recv()
            assert received == frame
            message = nodes[listener].open(channel, received)
            assert (message.sender, message.payload) == (speaker, payload)
    for name, link in members.items():
        try:
            extra = link.sock.recv(block=False)
        except pynng.TryAgain:
            extra = None
        assert extra is None, f"{name} heard an extra frame (its own echo?)"
    return traffic


SCENARIOS: dict[str, tuple[Callable[..., Traffic], str]] = {
    "pubsub": (pubsub, "telemetry"),
    "pipeline": (pipeline, "jobs"),
    "reqrep": (reqrep, "rpc"),
    "survey": (survey, "poll"),
    "bus": (bus, "chat"),
}
