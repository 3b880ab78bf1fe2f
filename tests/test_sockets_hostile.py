"""Hostile frames on secured sockets: whatever a peer sends, a receiver only counts it.

A plain pynng socket of the complementary protocol (what ``nngcat`` is) sends empty
messages and junk into every receiving role, socket and context, read with ``recv``,
``arecv`` under asyncio and under trio; a fuzzer sends arbitrary bytes. A client whose
reply is rejected asks again (NNG's reply slot is spent) and still gets the honest reply,
executed once; the socket-free codec refuses a second answer as sockets do.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pynng
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynng import ffi, lib

from nngsec import Rejected, UsageError
from nngsec._runtime._answers import AnswerLedger
from nngsec._runtime._sockets import MAX_REJECTED_REPLIES
from nngsec._runtime._wire import FrameRef
from tests.aio import LIBRARIES, AsyncLibrary
from tests.net import TIMEOUT, address, connected, wait_for
from tests.receivers import RECEIVERS, SURVEY_MS, TIMEOUT_MS
from tests.support import FakeClock, examples

_garbage = random.Random(9)
JUNK = (
    b"",  # nngcat --data "": pynng's Socket.recv raised RuntimeError on it
    b"\x00",
    bytes([0xEE]) + _garbage.randbytes(63),
    b"\xff" * 300,
    b"\x01\x05\x00\x05hello",  # a header cut short
)
MODES: tuple[str | AsyncLibrary, ...] = ("sync", *LIBRARIES)
# Where empty messages travel. (NNG's inproc transport, as pynng 0.9 ships it, stalls a
# pipe after a 0-byte message: nothing sent after it arrives. Only code in the receiver's
# own process can use inproc.)
WIRE = "ipc"


@pytest.fixture
def nodes(codec_world):
    return codec_world.nodes


def receive(receiver: Any, mode: str | AsyncLibrary) -> Any:
    if isinstance(mode, AsyncLibrary):
        return mode.run(receiver.arecv)
    return receiver.recv()


def raw_reply(sock: pynng.Socket, request: pynng.Message, body: bytes) -> None:
    """Answer ``request`` (received on a raw-mode socket) with ``body``: its NNG header
    (request id, pipe backtrace) kept, as many times as one likes."""
    holder = ffi.new("nng_msg **")
    assert lib.nng_msg_dup(holder, request._nng_msg) == 0
    message = holder[0]
    lib.nng_msg_clear(message)  # the body only
    assert lib.nng_msg_append(message, body, len(body)) == 0
    if lib.nng_sendmsg(sock.socket, message, 0) != 0:
        lib.nng_msg_free(message)


@dataclass
class Hostile:
    """A secured receiver, and plain peers that can send it anything."""

    receiver: Any
    socket: Any
    raw: pynng.Socket | None = None  # sends forward frames (not for clients and surveyors)
    honest: Callable[[bytes], bytes] = lambda payload: payload  # a genuine frame to send raw
    threads: list[threading.Thread] = field(default_factory=list)
    attack: Callable[[tuple[bytes, ...]], None] = lambda junk: None  # junk, then b"honest"


@contextlib.contextmanager
def hostile(kind: str, nodes: Any, url: str) -> Iterator[Hostile]:
    """``kind`` from RECEIVERS, facing plain pynng peers instead of secured ones."""
    base, _, context = kind.partition("-")
    alice, carol = nodes["alice"], nodes["carol"]
    with contextlib.ExitStack() as stack:

        def opened(sock: Any) -> Any:
            return stack.enter_context(sock)

        def seal(channel: str, topic: str | None = None) -> Callable[[bytes], bytes]:
            return lambda payload: alice.seal(channel, payload, topic=topic)

        if base in ("req", "surveyor"):
            channel = "reqrep-peerbox" if base == "req" else "survey-sealed"
            protocol = pynng.Req0 if base == "req" else pynng.Surveyor0
            options = {} if base == "req" else {"survey_time": SURVEY_MS}
            socket = opened(
                alice.attach(protocol(listen=url, recv_timeout=TIMEOUT_MS, **options), channel)
            )
            receiver = opened(socket.new_context()) if context else socket
            found = Hostile(receiver, socket)

            def attack(junk: tuple[bytes, ...]) -> None:
                if base == "req":  # one cooked Rep0: junk for each copy of the request
                    server = opened(pynng.Rep0(dial=url, recv_timeout=TIMEOUT_MS))
                    connected(socket, server)

                    def serve() -> None:
                        for body in junk:
                            server.recv()
                            server.send(body)
                        copy = server.recv()
                        server.send(carol.reply(carol.open(channel, copy), b"honest"))

                    answering = [serve]
                else:  # a cooked Respondent0 answers once: one per junk, then an honest one
                    peers = [
                        opened(pynng.Respondent0(dial=url, recv_timeout=TIMEOUT_MS))
                        for _ in range(len(junk) + 1)
                    ]
                    connected(*peers)
                    connected(socket, count=len(peers))

                    def junk_from(peer: pynng.Socket, body: bytes) -> Callable[[], None]:
                        def answer() -> None:
                            peer.recv()
                            peer.send(body)

                        return answer

                    def honest() -> None:
                        question = carol.open(channel, peers[-1].recv())
                        # after the junk (each from its own pipe, in no particular order)
                        wait_for(
                            lambda: sum(socket.stats.rejected.values()) == len(junk),
                            what="the junk responses counted",
                        )
                        peers[-1].send(carol.reply(question, b"honest"))

                    answering = [junk_from(p, b) for p, b in zip(peers, junk, strict=False)]
                    answering.append(honest)
                for function in answering:
                    thread = threading.Thread(target=function, daemon=True)
                    thread.start()
                    found.threads.append(thread)
                receiver.send(b"question")

            found.attack = attack
            yield found
            for thread in found.threads:
                thread.join(TIMEOUT)
            return

        if base == "pair":
            socket = opened(nodes["bob"].attach(pynng.Pair1(listen=url), "pair-secretbox"))
            raw, honest = opened(pynng.Pair1(dial=url)), seal("pair-secretbox")
        elif base == "bus":
            socket = opened(nodes["bob"].attach(pynng.Bus0(listen=url), "bus-secretbox"))
            raw, honest = opened(pynng.Bus0(dial=url)), seal("bus-secretbox")
        elif base == "sub":
            socket = opened(carol.attach(pynng.Sub0(listen=url), "pubsub-sealed"))
            socket.subscribe("")  # NNG lets everything through, the empty message too
            raw, honest = opened(pynng.Pub0(dial=url)), seal("pubsub-sealed", "t.x")
        elif base == "pull":
            socket = opened(carol.attach(pynng.Pull0(listen=url), "pipeline-sealed"))
            raw, honest = opened(pynng.Push0(dial=url)), seal("pipeline-sealed")
        elif base == "rep":
            socket = opened(carol.attach(pynng.Rep0(listen=url), "reqrep-peerbox"))
            raw, honest = opened(pynng.Req0(dial=url)), seal("reqrep-peerbox")
        elif base == "respondent":
            socket = opened(carol.attach(pynng.Respondent0(listen=url), "survey-sealed"))
            raw = opened(pynng.Surveyor0(dial=url, survey_time=SURVEY_MS))
            honest = seal("survey-sealed")
        else:
            raise ValueError(kind)
        socket.recv_timeout = TIMEOUT_MS
        connected(socket, raw)
        receiver = opened(socket.new_context()) if context else socket
        found = Hostile(receiver, socket, raw, honest)

        def send_all(junk: tuple[bytes, ...]) -> None:
            for body in junk:
                raw.send(body)
            raw.send(honest(b"honest"))

        found.attack = send_all
        yield found


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("kind", RECEIVERS)
def test_empty_and_junk_frames_are_counted_and_never_escape(nodes, tmp_path, kind, mode):
    with hostile(kind, nodes, address(WIRE, tmp_path)) as attacked:
        attacked.attack(JUNK)
        message = receive(attacked.receiver, mode)
        answered = kind.startswith(("req", "surveyor"))  # by the codec of carol's identity
        assert (message.payload, message.sender) == (b"honest", "carol" if answered else "alice")
        stats = attacked.socket.stats
        assert sum(stats.rejected.values()) == len(JUNK), stats.rejected
        assert stats.rejected["malformed"] >= 2  # the empty message and b"\x00" at least
        if kind.startswith("req"):
            assert stats.resent == len(JUNK)  # each junk reply used NNG's reply slot


@pytest.mark.parametrize("kind", ["pair", "bus", "sub", "pull", "rep", "respondent"])
def test_arbitrary_bytes_from_a_raw_peer_are_only_counted(nodes, tmp_path, kind):
    with hostile(kind, nodes, address(WIRE, tmp_path)) as attacked:
        raw, stats = attacked.raw, attacked.socket.stats
        assert raw is not None
        template = attacked.honest(b"template")  # delivered once: an exact copy is a replay
        raw.send(template)
        assert attacked.receiver.recv().payload == b"template"
        counter = iter(range(1_000_000))

        def counted() -> int:
            # (a server absorbs an exact copy of the template, a request it has received
            # and not yet answered, as a duplicate: that is dropped and counted too)
            total: int = sum(stats.rejected.values()) + stats.filtered + stats.duplicates
            return total

        @settings(max_examples=examples(100), deadline=None)
        @given(
            junk=st.one_of(
                st.binary(max_size=600),
                # a genuine header (or more) with anything after it: the checks behind
                # parsing (channel, sender, time, replay, keys, signature) see these
                st.builds(
                    lambda cut, tail: template[:cut] + tail,
                    st.integers(0, len(template)),
                    st.binary(max_size=64),
                ),
            )
        )
        def only_counted(junk: bytes) -> None:
            check(junk)

        def check(junk: bytes) -> None:
            before = counted()
            payload = b"honest %d" % next(counter)
            raw.send(junk)
            raw.send(attacked.honest(payload))
            assert attacked.receiver.recv().payload == payload
            assert counted() == before + 1

        check(template)  # the exact copy, which hypothesis finds only now and then
        only_counted()


@pytest.mark.parametrize("bad", ["empty", "garbage", "stale"])
@pytest.mark.parametrize("context", [False, True], ids=["socket", "context"])
def test_a_junk_reply_from_a_malicious_server_costs_a_resend_not_the_reply(
    world_factory, tmp_path, bad, context
):
    """A plain Rep0 next to the honest server answers every request with junk (or with a
    genuine but stale reply, to another request): the client asks again until the honest
    server answers, which executes the request once."""
    world = world_factory(
        "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n",
        ["panel", "plc"],
    )
    panel, plc = world.node("panel"), world.node("plc")
    stale = plc.reply(plc.open("control", panel.seal("control", b"old")), b"old answer")
    junk = {"empty": b"", "garbage": b"\x01" * 90, "stale": stale}[bad]
    url = address(WIRE, tmp_path)
    executed: list[bytes] = []
    with (
        panel.attach(pynng.Req0(listen=url, recv_timeout=TIMEOUT_MS), "control") as req,
        pynng.Rep0(dial=url, recv_timeout=200) as evil,
    ):
        connected(req, evil)  # the malicious server comes first in NNG's round robin
        with plc.attach(pynng.Rep0(dial=url, recv_timeout=TIMEOUT_MS), "control") as rep:
            connected(req, count=2)
            stop = threading.Event()

            def answer_junk() -> None:
                while not stop.is_set():
                    with contextlib.suppress(pynng.Timeout):
                        evil.recv()
                        evil.send(junk)

            def serve() -> None:
                request = rep.recv()
                executed.append(request.payload)
                rep.send(b"done: " + request.payload)

            threads = [threading.Thread(target=answer_junk), threading.Thread(target=serve)]
            for thread in threads:
                thread.start()
            try:
                asking = req.new_context() if context else req
                asking.send(b"open valve 3")
                reply = asking.recv()
                if context:
                    asking.close()
            finally:
                stop.set()
                for thread in threads:
                    thread.join(TIMEOUT)
        assert (reply.payload, reply.sender) == (b"done: open valve 3", "plc")
        assert executed == [b"open valve 3"]
        assert req.stats.resent >= 1
        assert sum(req.stats.rejected.values()) == req.stats.resent
        assert set(req.stats.rejected) == {"replay" if bad == "stale" else "malformed"}


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_a_client_gives_up_when_every_reply_is_junk(world_factory, tmp_path, mode):
    world = world_factory(
        "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n",
        ["panel", "plc"],
    )
    url = address("inproc", tmp_path)
    copies: list[bytes] = []
    with (
        world.node("panel").attach(
            pynng.Req0(listen=url, recv_timeout=TIMEOUT_MS), "control"
        ) as req,
        pynng.Rep0(dial=url, recv_timeout=200) as evil,
    ):
        connected(req, evil)
        stop = threading.Event()

        def flood() -> None:
            while not stop.is_set():
                with contextlib.suppress(pynng.Timeout):
                    copies.append(evil.recv())
                    evil.send(b"junk")

        thread = threading.Thread(target=flood)
        thread.start()
        try:
            req.send(b"open valve 3")
            with pytest.raises(Rejected) as caught:
                receive(req, mode)
            assert caught.value.reason == "malformed"
            assert "gave up" in caught.value.detail
            with pytest.raises(UsageError, match="nothing to receive"):
                receive(req, mode)  # never pynng.BadState
        finally:
            stop.set()
            thread.join(TIMEOUT)
    assert len(copies) == MAX_REJECTED_REPLIES + 1
    assert len(set(copies)) == 1  # the identical frame each time
    assert req.stats.resent == MAX_REJECTED_REPLIES


def test_on_reject_raise_then_recv_again_gets_the_honest_reply(world_factory, tmp_path):
    world = world_factory(
        "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n",
        ["panel", "plc"],
    )
    plc = world.node("plc")
    url = address(WIRE, tmp_path)
    with (
        world.node("panel").attach(
            pynng.Req0(listen=url, recv_timeout=TIMEOUT_MS), "control", on_reject="raise"
        ) as req,
        pynng.Rep0(dial=url, recv_timeout=TIMEOUT_MS) as server,
    ):
        connected(req, server)
        req.send(b"status?")
        server.recv()
        server.send(b"")
        with pytest.raises(Rejected) as caught:
            req.recv()
        assert caught.value.reason == "malformed"

        def answer() -> None:
            copy = server.recv()  # the request, sent again by the next recv()
            server.send(plc.reply(plc.open("control", copy), b"all good"))

        thread = threading.Thread(target=answer)
        thread.start()
        assert req.recv().payload == b"all good"
        thread.join(TIMEOUT)


class InjectingRelay:
    """A raw Rep0/Req0 relay that answers the first request itself with junk, at once,
    and forwards everything (what a malicious ``nng_device`` in front of servers can do)."""

    def __init__(self, front: str, back: str) -> None:
        self.front = pynng.Rep0(listen=front, recv_timeout=100, opener=lib.nng_rep0_open_raw)
        self.back = pynng.Req0(listen=back, recv_timeout=100, opener=lib.nng_req0_open_raw)
        self.injected = 0
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._forward, args=(self.front, self.back, True)),
            threading.Thread(target=self._forward, args=(self.back, self.front, False)),
        ]
        for thread in self.threads:
            thread.start()

    def _forward(self, source: pynng.Socket, target: pynng.Socket, requests: bool) -> None:
        while not self.stop.is_set():
            try:
                message = source.recv_msg()
            except pynng.Timeout:
                continue
            if requests and not self.injected:
                self.injected += 1
                raw_reply(source, message, b"\x01\x02\x00junk")
            target.send_msg(message)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(TIMEOUT)
        self.front.close()
        self.back.close()


@pytest.mark.parametrize("server", ["socket", "contexts"])
def test_a_junk_reply_injected_ahead_of_the_honest_one(world_factory, tmp_path, server):
    """The relay answers with junk while the server is still working on the request: the
    client asks again, and the copy reaches the server before its reply exists. A socket
    server reads the copy only after it answered (the cache answers it); a server with
    contexts reads it on another context, which waits for the first one's reply."""
    world = world_factory(
        "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n",
        ["panel", "plc"],
    )
    front, back = address("inproc", tmp_path), address("inproc", tmp_path)
    relay = InjectingRelay(front, back)
    executed: list[bytes] = []
    try:
        with (
            world.node("plc").attach(pynng.Rep0(dial=back, recv_timeout=200), "control") as rep,
            world.node("panel").attach(
                pynng.Req0(dial=front, recv_timeout=TIMEOUT_MS), "control"
            ) as req,
        ):
            connected(req, rep)
            workers = [rep.new_context() for _ in range(2)] if server == "contexts" else [rep]
            stop = threading.Event()

            def work(endpoint: Any) -> None:
                while not stop.is_set():
                    try:
                        request = endpoint.recv()
                    except (pynng.Timeout, pynng.Closed):
                        continue
                    executed.append(request.payload)
                    time.sleep(0.3)  # still working when the copy arrives
                    endpoint.send(b"done: " + request.payload)

            threads = [threading.Thread(target=work, args=(w,)) for w in workers]
            for thread in threads:
                thread.start()
            try:
                req.send(b"open valve 3")
                reply = req.recv()
            finally:
                stop.set()
                for thread in threads:
                    thread.join(TIMEOUT)
                for worker in workers:
                    if worker is not rep:
                        worker.close()
            assert (reply.payload, reply.sender) == (b"done: open valve 3", "plc")
            assert executed == [b"open valve 3"]
            assert (relay.injected, req.stats.resent, dict(req.stats.rejected)) == (
                1,
                1,
                {"malformed": 1},
            )
            wait_for(lambda: rep.stats.duplicates == 1, what="the copy absorbed by the server")
    finally:
        relay.close()


def test_node_open_takes_one_response_per_respondent_and_survey(world_factory):
    world = world_factory(
        "channels:\n  health: {pattern: survey, surveyors: [hq], respondents: [site, depot]}\n",
        ["hq", "site", "depot"],
    )
    hq, site, depot = world.node("hq"), world.node("site"), world.node("depot")
    survey = hq.seal("health", b"status?")
    at_site, at_depot = site.open("health", survey), depot.open("health", survey)
    first, second = site.reply(at_site, b"ok"), site.reply(at_site, b"ok, really")
    assert hq.open("health", first).payload == b"ok"
    with pytest.raises(Rejected) as caught:
        hq.open("health", second)  # a second vote of one respondent
    assert caught.value.reason == "replay"
    assert hq.open("health", depot.reply(at_depot, b"fine")).sender == "depot"
    later = site.open("health", hq.seal("health", b"and now?"))
    assert hq.open("health", site.reply(later, b"still ok")).payload == b"still ok"


def test_node_open_takes_one_reply_per_server_and_request(world_factory):
    world = world_factory(
        "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n",
        ["panel", "plc"],
    )
    panel, plc = world.node("panel"), world.node("plc")
    request = plc.open("control", panel.seal("control", b"open valve 3"))
    assert panel.open("control", plc.reply(request, b"open")).payload == b"open"
    with pytest.raises(Rejected) as caught:
        panel.open("control", plc.reply(request, b"open, again"))
    assert caught.value.reason == "replay"


def test_the_answer_ledger_forgets_after_max_age_and_stays_bounded():
    clock = FakeClock()
    ledger = AnswerLedger(retention=32.0, max_entries=100)
    survey = FrameRef(b"k" * 8, b"s" * 8, 1)
    assert ledger.admit(survey, "site", clock())
    clock.advance(32.0)
    assert not ledger.admit(survey, "site", clock())  # still within retention
    clock.advance(0.5)
    assert ledger.admit(survey, "site", clock())  # forgotten: a second answer is stale by now
    for seq in range(1_000):
        ledger.admit(FrameRef(b"k" * 8, b"s" * 8, seq + 10), "site", clock())
    assert len(ledger) == 100
