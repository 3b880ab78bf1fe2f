"""Replay protection for fleets: many sending sessions under one identity (issue 9, finding 1).

A receiver keeps 256 windows per sender. Before tombstones, a 257th session evicted the
oldest window, and when the evicted session sent again it got a fresh window that knew
nothing: every frame of it recorded earlier was accepted again (the red team replayed 256
of 300 recorded jobs from 300 push sockets sharing one identity).
"""

from __future__ import annotations

import pynng

from nngsec import Rejected
from tests.net import address, wait_for
from tests.support import FakeClock

PIPELINE = """
channels:
  jobs:
    pattern: pipeline
    pushers: [scheduler]
    pullers: [worker]
"""


def test_a_fleet_of_a_thousand_sessions_under_one_identity_keeps_full_replay_protection(
    world_factory,
):
    world = world_factory(PIPELINE, ["scheduler", "worker"])
    clock = FakeClock()
    scheduler = world.node("scheduler", clock=clock)
    worker = world.node("worker", clock=clock)
    receiver = worker.receiver("jobs")
    fleet = [scheduler.sender("jobs") for _ in range(1000)]  # 1,000 sockets' sessions
    recorded = []
    for round_ in range(2):  # every session sends again after being evicted
        for number, sender in enumerate(fleet):
            clock.advance(0.001)
            frame = sender.seal(b"job %d.%d" % (round_, number))
            recorded.append(frame)
            assert receiver.open(frame).payload == b"job %d.%d" % (round_, number)
    assert len(receiver.guard) == 256  # windows: the bound; the rest are tombstones
    assert receiver.guard.tombstones == 1000 - 256

    outcomes = {"accepted": 0}
    for frame in recorded:  # the attacker replays every frame it recorded
        try:
            receiver.open(frame)
            outcomes["accepted"] += 1
        except Rejected as rejected:
            outcomes[rejected.reason] = outcomes.get(rejected.reason, 0) + 1
    assert outcomes == {"accepted": 0, "replay": 2000}

    for number, sender in enumerate(fleet):  # and the fleet's new jobs still pass
        clock.advance(0.001)
        assert receiver.open(sender.seal(b"new %d" % number)).payload == b"new %d" % number
    receiver.close()


def test_three_hundred_push_sockets_of_one_identity_into_one_puller(world_factory, tmp_path):
    """The red team's set-up over real sockets: an attacker on the wire (a tap between the
    pushers and the puller) records every job and replays them all."""
    world = world_factory(PIPELINE, ["scheduler", "worker"])
    scheduler, worker = world.node("scheduler"), world.node("worker")
    tap_url, pull_url = address("inproc", tmp_path), address("inproc", tmp_path)
    count = 300
    with (
        pynng.Pull0(listen=tap_url, recv_timeout=5000, recv_buffer_size=1024) as tap,
        pynng.Push0(dial=pull_url, block_on_dial=False, send_buffer_size=1024) as wire,
        worker.attach(pynng.Pull0(listen=pull_url, recv_timeout=5000), "jobs") as pull,
    ):
        pushers = [scheduler.attach(pynng.Push0(dial=tap_url), "jobs") for _ in range(count)]
        try:
            wait_for(lambda: len(tap.pipes) == count and wire.pipes, what="connections")
            recorded = []

            def round_(label: bytes) -> list[bytes]:
                for number, push in enumerate(pushers):
                    push.send(b"%s %d" % (label, number))
                for _ in range(count):  # the attacker records and forwards
                    frame = tap.recv()
                    recorded.append(frame)
                    wire.send(frame)
                return sorted(pull.recv().payload for _ in range(count))

            expected = [b"job %d" % n for n in range(count)]
            assert round_(b"job") == sorted(expected)
            assert round_(b"again") == sorted(b"again %d" % n for n in range(count))
            for frame in recorded:  # replay every recorded job
                wire.send(frame)
            # Honest jobs after the replays (one pipe: they arrive after all of them).
            assert round_(b"new") == sorted(b"new %d" % n for n in range(count))
            assert pull.stats.received == 3 * count  # not one replay among them
            assert pull.stats.rejected == {"replay": 2 * count}
        finally:
            for push in pushers:
                push.close()
