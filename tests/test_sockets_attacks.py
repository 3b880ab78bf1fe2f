"""Attacks injected into live secured sockets; nng's request re-send; separate processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time

import pynng
import pytest

from nngsec import Node, load_policy
from nngsec._runtime._codec import ChannelCodec
from tests import procs
from tests.net import address, connected, wait_for
from tests.support import FakeClock

TIMEOUT = 5000
BODY = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor, rogue]
    subscribers: [dashboard]
    topics: ["temp."]
  other:
    pattern: pubsub
    publishers: [sensor]
    subscribers: [dashboard]
revoked: [rogue]
"""


def codec_for(world, identity, channel):
    """A sending codec for ``identity`` even if the policy revoked it (what a revoked
    node that kept running would still produce)."""
    policy = load_policy(world.policy_path)
    key = world.keystore.identity(identity)
    from nngsec._keys._channel_keys import ChannelKeyFile

    keys_file = ChannelKeyFile.load(world.root / "policy.keys.json")
    assert keys_file is not None
    keys = keys_file.open_channel(channel, identity, key)
    return ChannelCodec(
        policy, channel, identity=identity, identity_key=key, channel_keys=keys, clock=time.time,
        random=os.urandom, clock_skew=2.0,
    )  # fmt: skip


def with_seq(frame: bytes, seq: int) -> bytes:
    """``frame`` (a telemetry frame with topic temp.a) with its sequence number replaced."""
    at = len(b"temp.a\x00") + 4 + len("telemetry") + 8 + 4 + 8
    return frame[:at] + seq.to_bytes(8, "big") + frame[at + 8 :]


def test_attacks_are_dropped_and_counted_while_honest_traffic_continues(world_factory, tmp_path):
    world = world_factory(BODY, ["sensor", "rogue", "dashboard"])
    stranger_world = world_factory(BODY, ["sensor", "rogue", "dashboard"])  # other keys
    sensor, dashboard = world.node("sensor"), world.node("dashboard")
    honest_url, attack_url = address("tcp", tmp_path), address("ipc", tmp_path)
    with (
        sensor.attach(pynng.Pub0(listen=honest_url), "telemetry") as pub,
        pynng.Sub0(dial=honest_url, topics=b"", recv_timeout=TIMEOUT) as tap,
        pynng.Pub0(listen=attack_url) as attacker,
        dashboard.attach(pynng.Sub0(recv_timeout=TIMEOUT), "telemetry") as sub,
    ):
        sub.subscribe("temp.")
        sub.dial(honest_url)
        sub.dial(attack_url)
        connected(pub, count=2)
        connected(attacker)

        pub.send(b"reading 0", topic="temp.a")
        captured = tap.recv()  # what an eavesdropper on the wire saw
        # A copy of an accepted frame is a replay whatever else changed in it (the replay
        # check is cheaper than the signature and comes first). A forgery must therefore
        # carry an unseen sequence number, and then fails authentication.
        fresh = with_seq(captured, 10_000)
        flipped = bytearray(fresh)
        flipped[-30] ^= 0x01
        attacks = {
            "replay": captured,
            "forged": bytes(flipped),
            "forged-seq": fresh,
            "forged-topic": b"temp.b" + with_seq(captured, 20_000)[len(b"temp.a") :],
            "revoked": codec_for(world, "rogue", "telemetry").sender().seal(b"evil", "temp.a"),
            "unknown-sender": stranger_world.node("sensor").seal("telemetry", b"x", topic="temp.a"),
            "wrong-channel": sensor.seal("other", b"x", topic="temp.a"),
        }
        assert sub.recv().payload == b"reading 0"
        for index, frame in enumerate(attacks.values(), start=1):
            attacker.send(frame)
            pub.send(b"reading %d" % index, topic="temp.a")
        honest = [sub.recv().payload for _ in attacks]
        assert honest == [b"reading %d" % i for i in range(1, len(attacks) + 1)]

        expected = {"replay": 1, "forged": 3, "revoked": 1, "unknown-sender": 1, "wrong-channel": 1}

        def counted():
            if sum(sub.stats.rejected.values()) < sum(expected.values()):
                sub._io.recv_timeout = 50
                with contextlib.suppress(pynng.Timeout):
                    sub.recv()
            return dict(sub.stats.rejected) == expected

        wait_for(counted, what="all attacks counted")
        assert sub.stats.received == len(attacks) + 1


def test_rejections_are_logged_once_per_reason(world_factory, tmp_path, caplog):
    world = world_factory(BODY, ["sensor", "rogue", "dashboard"])
    url = address("inproc", tmp_path)
    with (
        pynng.Pub0(listen=url) as attacker,
        world.node("dashboard").attach(pynng.Sub0(dial=url, recv_timeout=300), "telemetry") as sub,
    ):
        sub.subscribe("")
        connected(attacker, sub)
        for _ in range(5):
            attacker.send(b"temp.x\x00garbage that will not parse")
        caplog.clear()
        with pytest.raises(pynng.Timeout):
            sub.recv()
        assert sub.stats.rejected["malformed"] == 5
        warnings = [r for r in caplog.records if "malformed" in r.getMessage()]
        assert len(warnings) == 1
        assert "garbage" not in caplog.text


def test_a_resent_request_is_processed_once_and_answered(world_factory, tmp_path):
    world = world_factory(
        "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n",
        ["panel", "plc"],
    )
    url = address("tcp", tmp_path)
    with (
        world.node("plc").attach(pynng.Rep0(listen=url, recv_timeout=TIMEOUT), "control") as rep,
        world.node("panel").attach(
            pynng.Req0(dial=url, recv_timeout=TIMEOUT, resend_time=60_000, reconnect_time_min=20),
            "control",
        ) as req,
    ):
        connected(req)
        processed = []
        req.send(b"open valve 3")
        request = rep.recv()
        processed.append(request.payload)
        # The connection breaks while the server works: nng reconnects and re-sends the
        # identical request frame; the reply to the first copy is lost with the old pipe.
        old_pipe = req.pipes[0]
        old_pipe.close()
        wait_for(lambda: req.pipes and req.pipes[0] is not old_pipe, what="reconnection")
        rep.send(b"valve 3 open")
        rep._io.recv_timeout = 1500
        with pytest.raises(pynng.Timeout):  # the re-sent copy is absorbed, not delivered
            processed.append(rep.recv().payload)
        assert rep.stats.duplicates == 1
        reply = req.recv()
        assert (reply.payload, reply.sender) == (b"valve 3 open", "plc")
        assert processed == [b"open valve 3"]
        assert rep.stats.rejected == {}


@pytest.mark.subprocess  # a spawned child process
def test_sender_and_receiver_in_separate_processes(world_factory, tmp_path):
    world = world_factory(
        "channels:\n  jobs: {pattern: pipeline, pushers: [scheduler], pullers: [worker]}\n",
        ["scheduler", "worker"],
    )
    url = address("tcp", tmp_path)
    spawn = multiprocessing.get_context("spawn")  # nng is not fork-safe
    with world.node("worker").attach(pynng.Pull0(listen=url, recv_timeout=20_000), "jobs") as pull:
        done = spawn.Event()
        child = spawn.Process(
            target=procs.push_jobs,
            args=(
                str(world.policy_path),
                str(world.keystore.directory),
                "scheduler",
                url,
                50,
                done,
            ),
        )
        child.start()
        try:
            jobs = [pull.recv() for _ in range(50)]
        finally:
            done.set()
            child.join(20)
        assert child.exitcode == 0
        assert [j.payload for j in jobs] == [b"job %d" % i for i in range(50)]
        assert {j.sender for j in jobs} == {"scheduler"}


def test_stale_frames_through_a_socket(world_factory, tmp_path):
    clock = FakeClock(time.time())
    world = world_factory(BODY, ["sensor", "rogue", "dashboard"])
    url = address("inproc", tmp_path)
    late = Node(
        load_policy(world.policy_path),
        identity="sensor",
        keystore=world.keystore,
        clock=lambda: clock.now - 60,
    )
    with (
        pynng.Pub0(listen=url) as wire,
        world.node("dashboard").attach(pynng.Sub0(dial=url, recv_timeout=300), "telemetry") as sub,
    ):
        sub.subscribe("temp.")
        connected(wire, sub)
        wire.send(late.seal("telemetry", b"old news", topic="temp.a"))
        with pytest.raises(pynng.Timeout):
            sub.recv()
        assert sub.stats.rejected == {"stale": 1}


def test_a_request_resent_after_max_age_is_answered_from_the_cache(world_factory, tmp_path):
    """nng re-sends after resend_time (60 s by default), longer than the default max_age:
    the identical frame must get the same answer, not be refused as stale nor processed."""
    world = world_factory(
        "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n",
        ["panel", "plc"],
    )
    clock = FakeClock(time.time())
    url = address("ipc", tmp_path)
    plc = world.node("plc", clock=clock)
    request = world.node("panel").seal("control", b"open valve 3")
    with (
        plc.attach(pynng.Rep0(listen=url, recv_timeout=TIMEOUT), "control") as rep,
        pynng.Req0(dial=url, recv_timeout=TIMEOUT) as wire,  # replays exactly what nng would
    ):
        connected(wire)
        wire.send(request)
        assert rep.recv().payload == b"open valve 3"
        rep.send(b"valve 3 open")
        first_reply = wire.recv()
        clock.advance(61)
        wire.send(request)
        rep._io.recv_timeout = 500
        with pytest.raises(pynng.Timeout):
            rep.recv()  # absorbed: not delivered to the application again
        assert wire.recv() == first_reply
        assert rep.stats.duplicates == 1 and rep.stats.rejected == {}


def test_a_respondent_answers_a_survey_once(world_factory, tmp_path):
    """nng's respondent sends one response per survey, but a raw socket or a relay need
    not: the surveyor keeps the first authenticated response of each respondent."""
    world = world_factory(
        "channels:\n  health: {pattern: survey, surveyors: [hq], respondents: [site]}\n",
        ["hq", "site"],
    )
    url = address("inproc", tmp_path)
    site = world.node("site")
    with (
        world.node("hq").attach(pynng.Surveyor0(listen=url, survey_time=500), "health") as surveyor,
        pynng.Respondent0(dial=url, recv_timeout=TIMEOUT) as wire,
    ):
        connected(surveyor)
        surveyor.send(b"status?")
        survey = site.open("health", wire.recv())
        first, second = site.reply(survey, b"ok"), site.reply(survey, b"ok, again")
        # What a raw respondent would deliver: both frames, straight into the surveyor.
        assert surveyor._accept(first).payload == b"ok"
        assert surveyor._accept(second) is None
        assert surveyor.stats.rejected == {"replay": 1}


def test_contexts_share_their_sockets_sending_session(world_factory, tmp_path):
    world = world_factory(
        "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n",
        ["panel", "plc"],
    )
    url = address("inproc", tmp_path)
    with (
        world.node("plc").attach(pynng.Rep0(listen=url, recv_timeout=TIMEOUT), "control") as rep,
        world.node("panel").attach(pynng.Req0(dial=url, recv_timeout=TIMEOUT), "control") as req,
    ):
        connected(req)
        sessions = []
        for _ in range(3):
            with req.new_context() as context:
                context.send(b"x")
                message = rep.recv()
                sessions.append(message.ref.session)
                rep.send(b"y")
                assert context.recv().payload == b"y"
        assert len(set(sessions)) == 1


def test_a_client_accepts_one_reply_per_request(world_factory):
    """What a relay could deliver (nng's own Req0 would drop it): a reply while nothing is
    outstanding, and a second genuine reply to the same request, are both refused."""
    world = world_factory(
        "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n",
        ["panel", "plc"],
    )
    plc = world.node("plc")
    with world.node("panel").attach(pynng.Req0(), "control") as req:
        request = req._frame(b"open valve 3", None)  # what send() would put on the wire
        received = plc.open("control", request)
        first, second = plc.reply(received, b"open"), plc.reply(received, b"open again")
        assert req._accept(first).payload == b"open"
        assert req._accept(second) is None  # answered already
        assert req.stats.rejected == {"replay": 1}
        req._frame(b"close valve 3", None)  # a new request: the old reply does not answer it
        assert req._accept(second) is None
        assert req.stats.rejected == {"replay": 2}
