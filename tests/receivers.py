"""Every receiving role of every pattern, each wired to an honest secured peer that can make
it receive: for promises that must hold on all of them (asynchronous waits, timeouts,
close, cancellation).

``wire(kind, nodes, url)`` builds one, on the channels of ``tests.support.ALL_CHANNELS``
(use the ``codec_world`` nodes). A client or surveyor has a request or survey outstanding
when it is returned (its peer received it), so ``trigger`` answers that; a context kind
receives on a context of its socket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pynng

from nngsec import Node, SecureContext, SecureSocket
from tests.net import connected

SURVEY_MS = 20_000  # a survey outlasts any test that waits for its responses
TIMEOUT_MS = 5_000  # the peer's blocking calls, so that a broken test fails

RECEIVERS = (
    "pair",
    "bus",
    "sub",
    "pull",
    "req",
    "rep",
    "surveyor",
    "respondent",
    "req-context",
    "rep-context",
    "surveyor-context",
    "respondent-context",
)


@dataclass
class Wired:
    """A receiver, the socket it belongs to, and its honest peer."""

    kind: str
    receiver: SecureSocket | SecureContext
    socket: SecureSocket  # the receiver's own socket (the receiver itself, or its context's)
    peer: SecureSocket
    trigger: Callable[[bytes], None]  # the peer makes the receiver get one message
    closing: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for thing in reversed(self.closing):
            thing.close()


def wire(kind: str, nodes: dict[str, Node], url: str, **options: Any) -> Wired:
    """``kind`` from :data:`RECEIVERS`; ``options`` go to the receiver's pynng socket."""
    base, _, context = kind.partition("-")
    receiving = {"recv_timeout": TIMEOUT_MS, **options}
    closing: list[Any] = []

    def attach(identity: str, sock: pynng.Socket, channel: str) -> SecureSocket:
        secured = nodes[identity].attach(sock, channel)
        closing.append(secured)
        return secured

    if base == "pair":
        socket = attach("bob", pynng.Pair1(listen=url, **receiving), "pair-secretbox")
        peer = attach("alice", pynng.Pair1(dial=url, recv_timeout=TIMEOUT_MS), "pair-secretbox")
    elif base == "bus":
        socket = attach("bob", pynng.Bus0(listen=url, **receiving), "bus-secretbox")
        peer = attach("alice", pynng.Bus0(dial=url, recv_timeout=TIMEOUT_MS), "bus-secretbox")
    elif base == "sub":
        socket = attach("carol", pynng.Sub0(listen=url, **receiving), "pubsub-sealed")
        socket.subscribe("t.")
        peer = attach("alice", pynng.Pub0(dial=url), "pubsub-sealed")
    elif base == "pull":
        socket = attach("carol", pynng.Pull0(listen=url, **receiving), "pipeline-sealed")
        peer = attach("alice", pynng.Push0(dial=url), "pipeline-sealed")
    elif base in ("req", "rep"):
        client = pynng.Req0(listen=url, **(receiving if base == "req" else {}))
        server = pynng.Rep0(dial=url, **(receiving if base == "rep" else {}))
        if base == "req":
            socket = attach("alice", client, "reqrep-peerbox")
            peer = attach("carol", server, "reqrep-peerbox")
        else:
            peer = attach("alice", client, "reqrep-peerbox")
            socket = attach("carol", server, "reqrep-peerbox")
        peer.recv_timeout = TIMEOUT_MS
    elif base in ("surveyor", "respondent"):
        surveying = {"survey_time": SURVEY_MS, **(receiving if base == "surveyor" else {})}
        asking = pynng.Surveyor0(listen=url, **surveying)
        answering = pynng.Respondent0(dial=url, **(receiving if base == "respondent" else {}))
        if base == "surveyor":
            socket = attach("alice", asking, "survey-sealed")
            peer = attach("carol", answering, "survey-sealed")
        else:
            peer = attach("alice", asking, "survey-sealed")
            socket = attach("carol", answering, "survey-sealed")
        peer.recv_timeout = TIMEOUT_MS
    else:
        raise ValueError(kind)
    connected(socket, peer)

    receiver: SecureSocket | SecureContext = socket
    if context:
        receiver = socket.new_context()
        closing.append(receiver)  # closed before the sockets
    wired = Wired(kind, receiver, socket, peer, lambda payload: None, closing)
    if base in ("req", "surveyor"):
        receiver.send(b"question")  # outstanding: the trigger answers it
        peer.recv()
        wired.trigger = peer.send
    elif base == "sub":
        wired.trigger = lambda payload: peer.send(payload, topic="t.x")
    else:
        wired.trigger = peer.send
    return wired
