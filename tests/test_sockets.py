"""Secured pynng sockets, end to end over inproc, ipc and tcp (127.0.0.1)."""

from __future__ import annotations

import asyncio
import threading

import pynng
import pytest

from nngsec import PolicyError, Rejected, UsageError
from tests.net import TRANSPORTS, address, connected

TIMEOUT = 5000  # ms, so a broken test fails instead of hanging


@pytest.fixture
def nodes(codec_world):
    return codec_world.nodes


@pytest.fixture(params=TRANSPORTS)
def url(request, tmp_path):
    return lambda: address(request.param, tmp_path)


@pytest.mark.parametrize("pair", [pynng.Pair0, pynng.Pair1])
def test_pair(nodes, url, pair):
    where = url()
    with (
        nodes["alice"].attach(pair(listen=where, recv_timeout=TIMEOUT), "pair-secretbox") as a,
        nodes["bob"].attach(pair(dial=where, recv_timeout=TIMEOUT), "pair-secretbox") as b,
    ):
        connected(a, b)
        a.send(b"ping")
        assert b.recv().payload == b"ping"
        b.send(b"pong")
        message = a.recv()
        assert (message.payload, message.sender) == (b"pong", "bob")
        assert (a.stats.sent, a.stats.received) == (1, 1)


def test_bus(nodes, url):
    names = ("alice", "bob", "carol")
    where = {name: url() for name in names}
    sockets = {
        name: nodes[name].attach(
            pynng.Bus0(listen=where[name], recv_timeout=TIMEOUT), "bus-secretbox"
        )
        for name in names
    }
    try:
        sockets["alice"].dial(where["bob"])
        sockets["alice"].dial(where["carol"])
        sockets["bob"].dial(where["carol"])
        connected(*sockets.values(), count=2)
        sockets["bob"].send(b"from bob")
        for name in ("alice", "carol"):
            message = sockets[name].recv()
            assert (message.payload, message.sender) == (b"from bob", "bob")
    finally:
        for sock in sockets.values():
            sock.close()


def test_pubsub_filters_on_the_clear_topic(nodes, url):
    where = url()
    with (
        nodes["alice"].attach(pynng.Pub0(listen=where), "pubsub-sealed") as pub,
        nodes["carol"].attach(pynng.Sub0(dial=where, recv_timeout=TIMEOUT), "pubsub-sealed") as sub,
    ):
        sub.subscribe("t.line1")
        connected(pub, sub)
        pub.send(b"other line", topic="t.line2")
        pub.send(b"21.5", topic="t.line1")
        message = sub.recv()
        assert (message.payload, message.topic, message.sender) == (b"21.5", "t.line1", "alice")
        with pytest.raises(UsageError, match="not allowed"):
            pub.send(b"x", topic="z.elsewhere")


def test_pipeline_fan_out_and_fan_in(nodes, url):
    where = url()
    with (
        nodes["carol"].attach(
            pynng.Pull0(listen=where, recv_timeout=TIMEOUT), "pipeline-sealed"
        ) as pull,
        nodes["alice"].attach(pynng.Push0(dial=where), "pipeline-sealed") as push_a,
        nodes["bob"].attach(pynng.Push0(dial=where), "pipeline-sealed") as push_b,
    ):
        connected(push_a, push_b)
        for index in range(5):
            push_a.send(b"a%d" % index)
            push_b.send(b"b%d" % index)
        got = sorted((m.sender, m.payload) for m in (pull.recv() for _ in range(10)))
        assert got == sorted(
            [("alice", b"a%d" % i) for i in range(5)] + [("bob", b"b%d" % i) for i in range(5)]
        )


def test_reqrep_with_two_servers(nodes, url):
    where = url()
    with (
        nodes["alice"].attach(
            pynng.Req0(listen=where, recv_timeout=TIMEOUT), "reqrep-peerbox"
        ) as req,
        nodes["carol"].attach(
            pynng.Rep0(dial=where, recv_timeout=TIMEOUT), "reqrep-peerbox"
        ) as rep_c,
        nodes["dave"].attach(
            pynng.Rep0(dial=where, recv_timeout=TIMEOUT), "reqrep-peerbox"
        ) as rep_d,
    ):
        connected(req, count=2)
        served = []

        def serve(rep):
            for message in rep:  # ends when the socket closes
                served.append(message.payload)
                rep.send(message.payload.upper())

        threads = [threading.Thread(target=serve, args=(rep,)) for rep in (rep_c, rep_d)]
        for thread in threads:
            thread.start()
        for index in range(6):
            req.send(b"req %d" % index)
            reply = req.recv()
            assert reply.payload == b"REQ %d" % index
            assert reply.sender in ("carol", "dave")
        assert len(served) == 6
        rep_c.close()
        rep_d.close()
        for thread in threads:
            thread.join(TIMEOUT / 1000)


def test_survey_collects_authenticated_responses(nodes, url):
    where = url()
    with (
        nodes["alice"].attach(
            pynng.Surveyor0(listen=where, survey_time=800), "survey-sealed"
        ) as surveyor,
        nodes["carol"].attach(
            pynng.Respondent0(dial=where, recv_timeout=TIMEOUT), "survey-sealed"
        ) as r1,
        nodes["dave"].attach(
            pynng.Respondent0(dial=where, recv_timeout=TIMEOUT), "survey-sealed"
        ) as r2,
    ):
        connected(surveyor, count=2)

        def answer(respondent, name):
            question = respondent.recv()
            assert question.sender == "alice"
            respondent.send(b"healthy: " + name.encode())

        threads = [
            threading.Thread(target=answer, args=(r, n)) for r, n in ((r1, "carol"), (r2, "dave"))
        ]
        for thread in threads:
            thread.start()
        responses = surveyor.survey(b"status?")
        for thread in threads:
            thread.join()
        assert sorted((r.sender, r.payload) for r in responses) == [
            ("carol", b"healthy: carol"),
            ("dave", b"healthy: dave"),
        ]


@pytest.mark.parametrize(
    ("socket_type", "channel", "identity", "message"),
    [
        (pynng.Sub0, "pubsub-sealed", "alice", "not listed in its subscribers"),
        (pynng.Req0, "pubsub-sealed", "alice", "does not fit channel"),
        (pynng.Pair0, "bus-secretbox", "alice", "use Bus0"),
        (pynng.Rep0, "reqrep-peerbox", "alice", "not listed in its servers"),
        (pynng.Pub0, "pair-secretbox", "carol", "does not fit channel"),
        (pynng.Pair0, "pair-secretbox", "carol", "not listed in its members"),
    ],
)
def test_attach_refuses_what_does_not_fit(nodes, socket_type, channel, identity, message):
    with socket_type() as sock, pytest.raises(PolicyError, match=message) as caught:
        nodes[identity].attach(sock, channel)
    assert channel in str(caught.value)


def test_attach_refuses_raw_sockets_and_unknown_channels(nodes):
    with pynng.Pub0(opener=pynng.lib.nng_pub0_open_raw) as raw:
        assert raw.raw
        with pytest.raises(PolicyError, match="raw"):
            nodes["alice"].attach(raw, "pubsub-sealed")
    with pynng.Pub0() as sock, pytest.raises(PolicyError, match="no channel"):
        nodes["alice"].attach(sock, "nonexistent")


def test_socket_options_follow_the_policy(nodes):
    with nodes["carol"].attach(pynng.Sub0(), "pubsub-sealed") as sub:
        codec = nodes["carol"].codec("pubsub-sealed")
        assert sub._io.recv_max_size == codec.max_frame_size
        assert codec.max_frame_size > codec.max_size
    with nodes["alice"].attach(pynng.Push0(), "pipeline-sealed") as push:
        assert push._io.send_buffer_size >= 128
    with nodes["alice"].attach(pynng.Push0(), "pipeline-sealed", buffers=None) as push:
        assert push._io.send_buffer_size == 0


def test_wrapper_exposes_no_unsecured_send(nodes):
    with nodes["alice"].attach(pynng.Pub0(), "pubsub-sealed") as pub:
        public = {name for name in dir(pub) if not name.startswith("_")}
        assert public <= {
            "send", "asend", "recv", "arecv", "survey", "asurvey", "subscribe", "unsubscribe",
            "new_context", "dial", "listen", "pipes", "close", "stats", "channel", "role",
            "recv_timeout",
        }  # fmt: skip
        with pytest.raises(UsageError):
            pub.recv()


def test_contexts_serve_concurrent_requests(nodes, url):
    where = url()

    async def scenario():
        with (
            nodes["carol"].attach(pynng.Rep0(listen=where), "reqrep-single") as rep,
            nodes["alice"].attach(pynng.Req0(dial=where), "reqrep-single") as req,
        ):
            connected(req)

            async def serve(context):
                message = await context.arecv()
                await asyncio.sleep(0.01 * (3 - int(message.payload)))  # finish out of order
                await context.asend(b"done " + message.payload)

            async def ask(number):
                with req.new_context() as context:
                    await context.asend(str(number).encode())
                    return (await context.arecv()).payload

            servers = [rep.new_context() for _ in range(3)]
            serving = [asyncio.create_task(serve(c)) for c in servers]
            answers = await asyncio.wait_for(asyncio.gather(*(ask(n) for n in range(3))), 10)
            await asyncio.gather(*serving)
            for context in servers:
                context.close()
            return answers

    assert asyncio.run(scenario()) == [b"done 0", b"done 1", b"done 2"]


def test_asyncio_round_trip_and_async_iteration(nodes, url):
    where = url()

    async def scenario():
        with (
            nodes["alice"].attach(pynng.Push0(listen=where), "pipeline-sealed") as push,
            nodes["carol"].attach(pynng.Pull0(dial=where), "pipeline-sealed") as pull,
        ):
            connected(push, pull)
            for index in range(20):
                await push.asend(b"%d" % index)
            got = []
            async for message in pull:
                got.append(int(message.payload))
                if len(got) == 20:
                    break
            return got

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == list(range(20))


def test_trio_round_trip(nodes, url):
    trio = pytest.importorskip("trio")
    where = url()

    async def scenario():
        with (
            nodes["carol"].attach(pynng.Rep0(listen=where), "reqrep-peerbox") as rep,
            nodes["alice"].attach(pynng.Req0(dial=where), "reqrep-peerbox") as req,
        ):
            connected(req)
            async with trio.open_nursery() as nursery:

                async def serve():
                    message = await rep.arecv()
                    await rep.asend(b"trio: " + message.payload)

                nursery.start_soon(serve)
                await req.asend(b"hello")
                with trio.fail_after(10):
                    return (await req.arecv()).payload

    assert trio.run(scenario) == b"trio: hello"


def test_on_reject_raise(nodes, url):
    where = url()
    with (
        pynng.Pub0(listen=where) as attacker,
        nodes["carol"].attach(
            pynng.Sub0(dial=where, recv_timeout=TIMEOUT), "pubsub-sealed", on_reject="raise"
        ) as sub,
    ):
        sub.subscribe("")
        connected(attacker, sub)
        attacker.send(b"t.x\x00" + b"garbage")
        with pytest.raises(Rejected) as caught:
            sub.recv()
        assert caught.value.reason == "malformed"
        assert sub.stats.rejected["malformed"] == 1


def test_a_subscriber_drops_unsubscribed_topics_even_if_nng_delivers_them(nodes, url):
    """Defence in depth: NNG filters at the subscriber socket, but whoever subscribed the
    raw socket to more (or a future change) must not widen what the application gets."""
    where = url()
    with (
        nodes["alice"].attach(pynng.Pub0(listen=where), "pubsub-signed") as pub,
        nodes["carol"].attach(pynng.Sub0(dial=where, recv_timeout=TIMEOUT), "pubsub-signed") as sub,
    ):
        sub.subscribe("t.line1")
        sub._io.subscribe(b"")  # the underlying socket now lets everything through
        connected(pub, sub)
        pub.send(b"not for us", topic="t.line2")
        pub.send(b"for us", topic="t.line1")
        assert sub.recv().payload == b"for us"
        assert sub.stats.filtered == 1 and sub.stats.rejected == {}
