"""Replays after a receiver is killed and started again (issue 9, finding 2).

Real processes (spawn), real sockets, ``kill -9``. The receiver of each test receives 100
frames, is killed, and is started again on the same keystore (and so the same state
directory); meanwhile the test, which is the sender and the attacker on the wire, replays
every frame it sent. Before persisted replay state, a restarted receiver accepted all of
them again, and a Rep0 server executed 100 of 100 replayed requests a second time.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pynng
import pytest

from nngsec._runtime._replay_state import StateDamaged, decode_snapshot
from tests import procs
from tests.net import address, wait_for

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]  # two interpreters each: 4-5 s

CHANNELS = """
channels:
  rpc: {pattern: reqrep, clients: [client], servers: [server]}
  jobs: {pattern: pipeline, pushers: [client], pullers: [server]}
  news: {pattern: pubsub, publishers: [client], subscribers: [server]}
"""
COUNT = 100
INTERVAL = 0.1  # the receiver's checkpoint interval
SPAWN = multiprocessing.get_context("spawn")  # nng is not fork-safe
TIMEOUT = 20.0  # a spawned interpreter under coverage on a loaded two-core machine


class Receiver:
    """The receiving process: started, killed with SIGKILL, started again."""

    def __init__(self, world, channel: str, url: str, log: Path) -> None:
        self.args = (
            str(world.policy_path),
            str(world.keystore.directory),
            "server",
            channel,
            url,
            str(log),
            INTERVAL,
        )
        self.log = log
        self.channel = channel
        self.key_id = world.keystore.identity("server").key_id
        self.state = world.keystore.directory / "state" / "server"
        self.process: multiprocessing.process.BaseProcess | None = None
        self.leftovers: set[Path] = set()  # temporary files a kill interrupted

    def temporary_files(self) -> set[Path]:
        return set(self.state.glob(".*.tmp"))

    def checkpointed(self, highest: int) -> bool:
        """Whether a snapshot holds a session with this highest seq (the checkpoint thread
        of a process on a loaded machine may run later than its interval)."""
        for path in self.state.glob(f"{self.channel}.*.replay"):
            with contextlib.suppress(StateDamaged, FileNotFoundError):
                marks = decode_snapshot(path.read_bytes(), self.key_id, self.channel).marks
                if any(mark[2] == highest for mark in marks.values()):
                    return True
        return False

    def lines(self) -> list[bytes]:
        return self.log.read_bytes().splitlines() if self.log.exists() else []

    def delivered(self) -> Counter[bytes]:
        return Counter(line for line in self.lines() if line != b"ready")

    def start(self) -> None:
        ready = self.lines().count(b"ready")
        self.process = SPAWN.Process(target=procs.receive_forever, args=self.args, daemon=True)
        self.process.start()
        wait_for(lambda: self.lines().count(b"ready") > ready, "the receiver", TIMEOUT)
        # No temporary file outlives a crash: a restarted receiver removes its slot's.
        assert not self.leftovers & self.temporary_files()

    def kill(self) -> None:
        assert self.process is not None and self.process.pid is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(TIMEOUT)
        assert self.process.exitcode == -signal.SIGKILL
        self.leftovers = self.temporary_files()

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.kill()


@pytest.fixture
def setup(world_factory, tmp_path):
    world = world_factory(CHANNELS, ["client", "server"])
    receivers: list[Receiver] = []

    def receiver(channel: str, url: str) -> Receiver:
        made = Receiver(world, channel, url, tmp_path / f"{channel}.log")
        receivers.append(made)
        return made

    yield world, receiver
    for made in receivers:
        made.stop()


def test_a_killed_server_never_executes_a_request_twice(setup, tmp_path):
    world, receiver = setup
    url = address("tcp", tmp_path)
    server = receiver("rpc", url)
    server.start()
    client = world.node("client")
    recorded = [client.seal("rpc", b"request %d" % n) for n in range(COUNT)]
    with pynng.Req0(dial=url, recv_timeout=10_000, send_timeout=10_000) as req:
        for frame in recorded:
            req.send(frame)
            req.recv()
        server.kill()  # at once: no checkpoint after the last request
        wait_for(lambda: not req.pipes, "the old connection to close", TIMEOUT)

        # Requests sent while the server is down wait in Req0 for it to come back.
        queued = [client.seal("rpc", b"queued %d" % n) for n in range(5)]
        replies: list[bytes] = []

        def ask(frame: bytes) -> None:
            context = req.new_context()
            context.send(frame)
            replies.append(context.recv())

        askers = [threading.Thread(target=ask, args=(frame,)) for frame in queued]
        for asker in askers:
            asker.start()
        server.start()
        for asker in askers:
            asker.join(TIMEOUT)
        assert len(replies) == len(queued)

        for frame in recorded:  # the attacker replays every request it saw
            req.new_context().send(frame)
        for n in range(5):  # honest requests after the replays: executed
            req.send(client.seal("rpc", b"after %d" % n))
            req.recv()

    executed = server.delivered()
    assert [p for p, times in executed.items() if times > 1] == []
    assert sum(executed.values()) == COUNT + 5 + 5
    assert all(executed[b"queued %d" % n] == 1 for n in range(5))
    assert all(executed[b"after %d" % n] == 1 for n in range(5))


def test_a_killed_puller_accepts_no_job_again(setup, tmp_path):
    world, receiver = setup
    url = address("tcp", tmp_path)
    worker = receiver("jobs", url)
    worker.start()
    client = world.node("client")
    recorded = [client.seal("jobs", b"job %d" % n) for n in range(COUNT)]
    with pynng.Push0(dial=url, send_buffer_size=COUNT, send_timeout=10_000) as push:
        for frame in recorded:
            push.send(frame)
        wait_for(lambda: sum(worker.delivered().values()) == COUNT, "100 jobs", TIMEOUT)
        time.sleep(3 * INTERVAL)  # the promise: accepted over one interval before the crash
        wait_for(lambda: worker.checkpointed(COUNT - 1), "the checkpoint", TIMEOUT)
        worker.kill()
        wait_for(lambda: not push.pipes, "the old connection to close", TIMEOUT)
        for n in range(5):  # queued in Push0 while no worker is up
            push.send(client.seal("jobs", b"queued %d" % n))
        worker.start()
        for frame in recorded:
            push.send(frame)
        for n in range(5):  # honest jobs after the replays (one pipe: in this order)
            push.send(client.seal("jobs", b"after %d" % n))
        wait_for(lambda: worker.delivered()[b"after 4"] == 1, "the jobs after", TIMEOUT)

    accepted = worker.delivered()
    assert [p for p, times in accepted.items() if times > 1] == []
    assert sum(accepted.values()) == COUNT + 5 + 5


def test_a_killed_subscriber_accepts_no_publication_again(setup, tmp_path):
    world, receiver = setup
    url = address("tcp", tmp_path)
    client = world.node("client")
    with pynng.Pub0(listen=url, send_buffer_size=4 * COUNT) as pub:
        subscriber = receiver("news", url)
        subscriber.start()
        wait_for(lambda: len(pub.pipes) == 1, "the subscriber", TIMEOUT)
        recorded = [client.seal("news", b"news %d" % n, topic="t") for n in range(COUNT)]
        for frame in recorded:
            pub.send(frame)
        wait_for(lambda: sum(subscriber.delivered().values()) == COUNT, "100 items", TIMEOUT)
        time.sleep(3 * INTERVAL)
        wait_for(lambda: subscriber.checkpointed(COUNT - 1), "the checkpoint", TIMEOUT)
        subscriber.kill()
        wait_for(lambda: not pub.pipes, "the old connection to close", TIMEOUT)
        subscriber.start()
        wait_for(lambda: len(pub.pipes) == 1, "the subscriber again", TIMEOUT)
        for frame in recorded:
            pub.send(frame)
        # The same publisher session goes on (numbers above the marks), and a new one.
        later = world.node("client")
        for n in range(5):
            pub.send(client.seal("news", b"after %d" % n, topic="t"))
            pub.send(later.seal("news", b"new session %d" % n, topic="t"))
        wait_for(lambda: subscriber.delivered()[b"new session 4"] == 1, "the items after", TIMEOUT)

    accepted = subscriber.delivered()
    assert [p for p, times in accepted.items() if times > 1] == []
    assert sum(accepted.values()) == COUNT + 10
