"""A process that seals and then forks must not continue its sending sessions in both
parent and child: the same (key, nonce) twice lets an eavesdropper XOR two frames and
forge (issue 9, finding 4). Real forks, on every AEAD scheme.

``os.fork()`` runs Python's at-fork handlers; a fork made by C code (here libc's
``fork()`` through ctypes) does not, which is what the PID check in
``SendState.take`` is for.

The forks are made in a fresh interpreter with a single thread (``tests/fork_worker.py``,
one process for every case of the module), never in the test process: a child forked
without ``PyOS_AfterFork_Child()`` inherits the GIL's state as the parent's other threads
left it (pytest-xdist's I/O thread, a node's checkpoint thread waiting for the GIL), and
can hang forever the first time it releases the GIL. The forked frames come back to this
process, whose receivers and clients (on the worker's fixed clock) check and open them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nngsec import Node
from nngsec._runtime._wire import Header, parse_frame
from tests.support import ALL_CHANNELS, NAMES, FakeClock, build_world

ROOT = Path(__file__).resolve().parent.parent
# A forked child seals one frame in milliseconds; one that has not finished in this time
# hung. The worker's whole budget stays under pytest's timeout (120 s) for the set-up.
CHILD_DEADLINE = 10.0
WORKER_TIMEOUT = 90.0

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
FORKS = ("os.fork", "libc fork")

SEALS, ANSWERS = "seals", "answers"  # the two kinds of case: a sender's, a server's


@dataclass
class Forked:
    """The frames of every case, made in the fork worker, and the nodes that read them."""

    frames: dict[str, tuple[bytes, bytes, bytes]]
    errors: dict[str, str]
    readers: dict[str, Node]  # case id -> the receiver (or the client) of its frames

    def of(self, kind: str, fork: str, channel: str) -> tuple[Node, tuple[bytes, bytes, bytes]]:
        case = _case_id(kind, fork, channel)
        if case in self.errors:
            pytest.fail(f"{case}: {self.errors[case]}", pytrace=False)
        return self.readers[case], self.frames[case]


def _case_id(kind: str, fork: str, channel: str) -> str:
    return f"{kind} {fork} {channel}"


def _topic(node: Node, channel: str) -> str | None:
    return "t.x" if node.policy.channels[channel].pattern_name == "pubsub" else None


def _run_worker(job: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The worker's result lines, and why it did not finish (``None`` when it did). In a
    session of its own: a worker killed at the timeout takes any forked child with it."""
    failure: str | None = None
    with subprocess.Popen(
        [sys.executable, "-m", "tests.fork_worker"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as worker:
        try:
            out, err = worker.communicate(json.dumps(job).encode(), timeout=WORKER_TIMEOUT)
            if worker.returncode != 0:
                failure = f"the fork worker failed (exit {worker.returncode}):\n{err.decode()}"
        except subprocess.TimeoutExpired as expired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            out = expired.stdout if isinstance(expired.stdout, bytes) else b""
            failure = f"the fork worker did not finish within {WORKER_TIMEOUT:g} s (killed)"
    lines = out.decode(errors="replace").splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")], failure


@pytest.fixture(scope="module")
def forked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forked]:
    """Every case of the module in one fork worker (a fresh interpreter costs ~0.5 s)."""
    world = build_world(tmp_path_factory.mktemp("fork"), ALL_CHANNELS, NAMES)
    clock = FakeClock()
    nodes: dict[tuple[str, str], Node] = {}  # as in the worker: per kind of fork, identity

    def node(fork: str, identity: str) -> Node:
        if (fork, identity) not in nodes:
            nodes[fork, identity] = world.node(identity, clock=clock, state_dir=False)
        return nodes[fork, identity]

    readers: dict[str, Node] = {}
    cases: list[dict[str, Any]] = []
    for fork in FORKS:
        for channel, (sender, receiver) in sorted(FORWARD.items()):
            case = _case_id(SEALS, fork, channel)
            readers[case] = node(fork, receiver)
            topic = _topic(readers[case], channel)
            cases.append(
                {"id": case, "fork": fork, "channel": channel, "identity": sender, "topic": topic}
            )
        for channel, (asker, answerer) in sorted(REPLIES.items()):
            case = _case_id(ANSWERS, fork, channel)
            client = readers[case] = node(fork, asker)
            requests = [client.seal(channel, b"q%d" % i).hex() for i in range(3)]
            cases.append(
                {
                    "id": case,
                    "fork": fork,
                    "channel": channel,
                    "identity": answerer,
                    "requests": requests,
                }
            )
    job = {
        "policy": str(world.policy_path),
        "keystore": str(world.keystore.directory),
        "now": clock.now,
        "child_deadline": CHILD_DEADLINE,
        "cases": cases,
    }
    results, failure = _run_worker(job)
    frames: dict[str, tuple[bytes, bytes, bytes]] = {}
    errors: dict[str, str] = {}
    for result in results:
        if "error" in result:
            errors[result["id"]] = result["error"]
        else:
            before, parent, child = (bytes.fromhex(frame) for frame in result["frames"])
            frames[result["id"]] = (before, parent, child)
    unfinished = [case["id"] for case in cases if case["id"] not in {*frames, *errors}]
    for position, case_id in enumerate(unfinished):
        running = "was running" if position == 0 else "never ran"
        errors[case_id] = f"{failure or 'no result from the fork worker'}; this case {running}"
    yield Forked(frames, errors, readers)
    for made in nodes.values():
        made.close()


@pytest.fixture(params=FORKS)
def fork(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _header(node: Node, channel: str, frame: bytes) -> Header:
    return parse_frame(frame, has_topic=node.policy.channels[channel].pattern_name == "pubsub")[0]


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


@pytest.mark.parametrize("channel", sorted(FORWARD))
def test_a_forked_child_seals_under_a_new_session(forked, channel, fork):
    reader, (before, parent, child) = forked.of(SEALS, fork, channel)
    _assert_fresh_nonces(reader, channel, before, (parent, child))
    assert reader.open(channel, before).payload == b"before the fork"
    assert reader.open(channel, parent).payload == b"from the parent"
    assert reader.open(channel, child).payload == b"from the child"


@pytest.mark.parametrize("channel", sorted(REPLIES))
def test_a_forked_server_replies_under_a_new_session(forked, channel, fork):
    client, (before, parent, child) = forked.of(ANSWERS, fork, channel)
    _assert_fresh_nonces(client, channel, before, (parent, child))
    payloads = [client.open(channel, frame).payload for frame in (before, parent, child)]
    assert payloads == [b"before the fork", b"from the parent", b"from the child"]
