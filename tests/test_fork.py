"""A process that seals and then forks must not continue its sending sessions in both
parent and child: the same (key, nonce) twice lets an eavesdropper XOR two frames and
forge (issue 9, finding 4). Real forks, on every AEAD scheme.

``os.fork()`` runs Python's at-fork handlers; a fork made by C code (here libc's
``fork()`` through ctypes) does not, which is what the PID check in
``SendState.take`` is for.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

import pytest

from nngsec import Node
from nngsec._runtime._wire import Header, parse_frame

# channel -> (sender, receiver): every AEAD scheme, forward frames
FORWARD = {
    "pair-secretbox": ("alice", "bob"),
    "bus-secretbox": ("alice", "bob"),
    "bus-group": ("alice", "bob"),
    "pubsub-sealed": ("alice", "carol"),
    "pipeline-sealed": ("alice", "carol"),
    "survey-sealed": ("alice", "carol"),
    "reqrep-single": ("alice", "carol"),
    "reqrep-peerbox": ("alice", "carol"),
}
# channel -> (asker, answerer): replies (peerbox under the request's key)
REPLIES = {"reqrep-single": ("alice", "carol"), "reqrep-peerbox": ("alice", "dave")}
REPLIES["survey-sealed"] = ("alice", "carol")  # survey responses are peerbox too

Seal = Callable[[bytes], bytes]


def _libc_fork() -> int:
    """fork(2) without Python's at-fork handlers (as a C extension forking would).

    Through ``PyDLL``, which keeps the GIL during the call, as C code called from Python
    holds it: with ``CDLL`` the GIL is released around fork(2), and if another Python
    thread (a node's checkpoint thread) takes it at that moment, the child starts with a
    GIL owned by a thread it does not have, and hangs."""
    fork = ctypes.PyDLL(None, use_errno=True).fork
    fork.restype = ctypes.c_int
    return int(fork())


def _in_parent_and_child(seal: Seal, fork: Callable[[], int]) -> tuple[bytes, bytes]:
    """Fork; parent and child each seal one frame; returns (parent's, child's)."""
    read_end, write_end = os.pipe()
    pid = fork()
    if pid == 0:  # the child: seal, hand the frame over, leave without running pytest's exit
        status = 1
        try:
            os.close(read_end)
            frame = seal(b"from the child")
            os.write(write_end, len(frame).to_bytes(4, "big") + frame)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    parent_frame = seal(b"from the parent")
    data = b""
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child could not seal"
    size = int.from_bytes(data[:4], "big")
    child_frame = data[4 : 4 + size]
    assert len(child_frame) == size
    return parent_frame, child_frame


def _header(node: Node, channel: str, frame: bytes) -> Header:
    return parse_frame(frame, has_topic=node.policy.channels[channel].pattern_name == "pubsub")[0]


def _topic(node: Node, channel: str) -> str | None:
    return "t.x" if node.policy.channels[channel].pattern_name == "pubsub" else None


def _assert_fresh_nonces(node: Node, channel: str, before: bytes, frames: tuple[bytes, ...]):
    """Every frame, the one sealed before the fork included, under its own nonce.

    One key serves parent and child on pair, bus and peerbox channels, so the nonce
    (session || seq) must differ; on sealed channels the content key is per session, and a
    new session draws a new one too.
    """
    headers = [_header(node, channel, f) for f in (before, *frames)]
    nonces = {(h.session, h.seq) for h in headers}
    assert len(nonces) == len(headers), "a (key, nonce) pair was used twice"
    parent, child = headers[1], headers[2]
    assert parent.session != child.session, "the child continued the parent's session"
    assert child.seq == 0  # a new session starts over


@pytest.fixture(params=["os.fork", "libc fork"])
def fork(request: pytest.FixtureRequest) -> Callable[[], int]:
    return os.fork if request.param == "os.fork" else _libc_fork


@pytest.mark.parametrize("channel", sorted(FORWARD))
def test_a_forked_child_seals_under_a_new_session(codec_world, channel, fork):
    sender, receiver = FORWARD[channel]
    world, clock = codec_world.world, codec_world.clock
    node = world.node(sender, clock=clock)
    topic = _topic(node, channel)
    before = node.seal(channel, b"before the fork", topic=topic)  # session and cache in use
    parent, child = _in_parent_and_child(lambda p: node.seal(channel, p, topic=topic), fork)
    _assert_fresh_nonces(node, channel, before, (parent, child))
    reader = world.node(receiver, clock=clock)
    assert reader.open(channel, before).payload == b"before the fork"
    assert reader.open(channel, parent).payload == b"from the parent"
    assert reader.open(channel, child).payload == b"from the child"


@pytest.mark.parametrize("channel", sorted(REPLIES))
def test_a_forked_server_replies_under_a_new_session(codec_world, channel, fork):
    asker, answerer = REPLIES[channel]
    world, clock = codec_world.world, codec_world.clock
    client = world.node(asker, clock=clock)
    server = world.node(answerer, clock=clock)
    requests = [server.open(channel, client.seal(channel, b"q%d" % i)) for i in range(3)]
    before = server.reply(requests[0], b"before the fork")
    # Parent and child each answer a request of their own (a second answer to one request
    # is refused as a replay: tests/test_sockets_hostile.py), each under its own nonce.
    answers = {b"from the parent": requests[1], b"from the child": requests[2]}
    parent, child = _in_parent_and_child(lambda p: server.reply(answers[p], p), fork)
    _assert_fresh_nonces(server, channel, before, (parent, child))
    payloads = [client.open(channel, frame).payload for frame in (before, parent, child)]
    assert payloads == [b"before the fork", b"from the parent", b"from the child"]
