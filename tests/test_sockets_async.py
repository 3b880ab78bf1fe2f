"""Asynchronous secured sockets on every pattern and receiving role, under asyncio and trio:
nothing hangs (surveys end, replies go out, close wakes waiters, timeouts apply) and a
cancelled call loses nothing. Every scenario runs under a time limit, so a regression
fails instead of hanging."""

from __future__ import annotations

import threading
import time

import pynng
import pytest

from nngsec import UsageError
from tests.aio import AsyncLibrary
from tests.net import address, connected
from tests.receivers import RECEIVERS, TIMEOUT_MS, wire

ANSWERING = ("rep", "respondent", "rep-context", "respondent-context")
CONTEXTS = tuple(kind for kind in RECEIVERS if kind.endswith("-context"))


@pytest.fixture
def nodes(codec_world):
    return codec_world.nodes


@pytest.fixture
def url(tmp_path):
    return lambda transport="inproc": address(transport, tmp_path)


@pytest.mark.parametrize("kind", RECEIVERS)
def test_arecv_waits_for_and_gets_the_message(aio: AsyncLibrary, nodes, url, kind):
    wired = wire(kind, nodes, url())

    async def main():
        async with aio.tasks() as tasks:

            async def later():
                await aio.sleep(0.05)  # the receiver is waiting by then
                wired.trigger(b"hello")

            tasks.start_soon(later)
            return await wired.receiver.arecv()

    try:
        message = aio.run(main)
        assert message.payload == b"hello"
    finally:
        wired.close()


@pytest.mark.parametrize("kind", RECEIVERS)
def test_arecv_honours_recv_timeout(aio: AsyncLibrary, nodes, url, kind):
    wired = wire(kind, nodes, url(), recv_timeout=200)

    async def main():
        started = time.monotonic()
        with pytest.raises(pynng.Timeout):
            await wired.receiver.arecv()
        return time.monotonic() - started

    try:
        assert 0.15 <= aio.run(main) < 3
    finally:
        wired.close()


@pytest.mark.parametrize(
    ("kind", "closing"),
    [(kind, "socket") for kind in RECEIVERS] + [(kind, "context") for kind in CONTEXTS],
)
def test_close_wakes_a_task_waiting_in_arecv(aio: AsyncLibrary, nodes, url, kind, closing):
    wired = wire(kind, nodes, url())
    target = wired.socket if closing == "socket" else wired.receiver

    async def main():
        async with aio.tasks() as tasks:

            async def close_later():
                await aio.sleep(0.1)
                target.close()

            tasks.start_soon(close_later)
            started = time.monotonic()
            with pytest.raises(pynng.Closed):
                await wired.receiver.arecv()
            return time.monotonic() - started

    try:
        assert aio.run(main) < 2
    finally:
        wired.close()


@pytest.mark.parametrize("kind", ["pull", "sub", "req-context"])
def test_close_from_another_thread_ends_async_iteration(aio: AsyncLibrary, nodes, url, kind):
    wired = wire(kind, nodes, url())

    async def main():
        closer = threading.Timer(0.1, wired.socket.close)
        closer.start()
        try:
            async for _ in wired.receiver:
                raise AssertionError("nothing was sent")
        finally:
            closer.join()

    try:
        aio.run(main, limit=5)
    finally:
        wired.close()


@pytest.mark.parametrize("kind", RECEIVERS)
def test_a_cancelled_arecv_loses_nothing(aio: AsyncLibrary, nodes, url, kind):
    """A Req0 context abandons its request when its receive is cancelled, and Surveyor0 its
    survey; a socket must not take anything from NNG that a cancellation could lose."""
    wired = wire(kind, nodes, url())

    async def main():
        assert await aio.cancelled_after(0.05, wired.receiver.arecv())
        wired.trigger(b"after the cancellation")
        return await wired.receiver.arecv()

    try:
        assert aio.run(main).payload == b"after the cancellation"
    finally:
        wired.close()


@pytest.mark.parametrize("kind", ANSWERING)
def test_a_cancelled_reply_is_still_delivered_and_the_socket_goes_on(
    aio: AsyncLibrary, nodes, url, kind
):
    """Respondent0's non-blocking send never succeeds; NNG takes a request's backtrace
    when a reply is handed to it, so a reply must go out once asend was called."""
    wired = wire(kind, nodes, url())

    async def main():
        for round_ in (b"1", b"2"):
            wired.trigger(b"question " + round_)
            question = await wired.receiver.arecv()
            assert question.payload == b"question " + round_
            await aio.cancelled_once_waiting(wired.receiver.asend(b"answer " + round_))
            assert (await wired.peer.arecv()).payload == b"answer " + round_

    try:
        aio.run(main)
    finally:
        wired.close()


@pytest.mark.parametrize("context", [False, True], ids=["socket", "context"])
def test_asurvey_returns_when_the_survey_ends(aio: AsyncLibrary, nodes, url, context):
    where = url()
    with (
        nodes["alice"].attach(
            pynng.Surveyor0(listen=where, survey_time=300), "survey-sealed"
        ) as surveyor,
        nodes["carol"].attach(pynng.Respondent0(dial=where), "survey-sealed") as answering,
        nodes["dave"].attach(pynng.Respondent0(dial=where), "survey-sealed") as silent,
    ):
        connected(surveyor, count=2)
        connected(answering, silent)
        asking = surveyor.new_context() if context else surveyor

        async def main():
            async with aio.tasks() as tasks:

                async def answer():
                    question = await answering.arecv()
                    await answering.asend(b"carol: " + question.payload)

                tasks.start_soon(answer)
                started = time.monotonic()
                responses = await asking.asurvey(b"status?")
                took = time.monotonic() - started
            # Over: nothing more to receive (NNG's BadState is not what the docs promise).
            with pytest.raises(pynng.Timeout):
                await asking.arecv()
            return responses, took

        try:
            responses, took = aio.run(main)
            assert [(r.sender, r.payload) for r in responses] == [("carol", b"carol: status?")]
            assert 0.2 <= took < 3
        finally:
            if context:
                asking.close()


def test_sync_survey_then_recv_is_a_timeout_not_bad_state(nodes, url):
    where = url()
    with (
        nodes["alice"].attach(
            pynng.Surveyor0(listen=where, survey_time=200), "survey-sealed"
        ) as surveyor,
        nodes["carol"].attach(pynng.Respondent0(dial=where), "survey-sealed") as respondent,
    ):
        connected(surveyor, respondent)
        assert surveyor.survey(b"anyone?") == []
        with pytest.raises(pynng.Timeout):
            surveyor.recv()


def test_two_tasks_can_wait_on_one_socket(aio: AsyncLibrary, nodes, url):
    """asyncio keeps one reader per descriptor and trio lets one task wait on it: the
    waiters of one socket share the registration."""
    where = url()
    with (
        nodes["carol"].attach(pynng.Pull0(listen=where), "pipeline-sealed") as pull,
        nodes["alice"].attach(pynng.Push0(dial=where), "pipeline-sealed") as push,
    ):
        connected(pull, push)
        got: list[bytes] = []

        async def main():
            async with aio.tasks() as tasks:

                async def take():
                    got.append((await pull.arecv()).payload)

                tasks.start_soon(take)
                tasks.start_soon(take)
                await aio.sleep(0.1)
                push.send(b"one")
                await aio.sleep(0.05)
                push.send(b"two")

        aio.run(main, limit=5)
        assert sorted(got) == [b"one", b"two"]


def test_asend_honours_send_timeout(aio: AsyncLibrary, nodes):
    with nodes["alice"].attach(
        pynng.Push0(send_timeout=200), "pipeline-sealed", buffers=None
    ) as push:

        async def main():
            started = time.monotonic()
            with pytest.raises(pynng.Timeout):
                await push.asend(b"nobody pulls")  # no peer: NNG cannot take it
            return time.monotonic() - started

        assert 0.15 <= aio.run(main) < 3


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_async_request_and_reply_over_real_transports(aio: AsyncLibrary, nodes, url, transport):
    where = url(transport)
    with (
        nodes["carol"].attach(pynng.Rep0(listen=where), "reqrep-peerbox") as rep,
        nodes["alice"].attach(
            pynng.Req0(dial=where, recv_timeout=TIMEOUT_MS), "reqrep-peerbox"
        ) as req,
    ):
        connected(req)

        async def main():
            async with aio.tasks() as tasks:

                async def serve():
                    async for request in rep:
                        await rep.asend(request.payload.upper())
                        if request.payload == b"last":
                            return

                tasks.start_soon(serve)
                answers = []
                for word in (b"first", b"last"):
                    await req.asend(word)
                    answers.append((await req.arecv()).payload)
                return answers

        assert aio.run(main) == [b"FIRST", b"LAST"]


def test_a_new_request_supersedes_a_cancelled_receive_on_a_context(aio: AsyncLibrary, nodes, url):
    """NNG cancels a context's pending receive when the context sends a new request; that
    outcome belongs to the old request and must not reach the new one."""
    wired = wire("req-context", nodes, url())

    async def main():
        assert await aio.cancelled_after(0.05, wired.receiver.arecv())  # still pending in NNG
        wired.peer.send(b"answer to the question")  # the old request: NNG drops this reply
        await wired.receiver.asend(b"second question")
        assert (await wired.peer.arecv()).payload == b"second question"
        await wired.peer.asend(b"second answer")
        return await wired.receiver.arecv()

    try:
        assert aio.run(main).payload == b"second answer"
    finally:
        wired.close()


def test_a_context_gets_its_reply_in_a_later_event_loop(nodes, url):
    """A receive cancelled in one asyncio.run is cancelled in NNG when that loop ends (the
    request with it); in the next loop the client asks again and the server's reply cache
    answers, without serving the request twice."""
    wired = wire("req-context", nodes, url())
    aio = AsyncLibrary("asyncio")
    try:
        assert aio.run(lambda: aio.cancelled_after(0.05, wired.receiver.arecv()))
        wired.peer.send(b"answer")  # the first copy's reply: its request is gone in NNG
        served = wired.peer.stats.received

        async def absorb():
            with pytest.raises(pynng.Timeout):  # the copy is answered, not delivered
                await wired.peer.arecv()

        async def main():
            wired.peer.recv_timeout = 500
            async with aio.tasks() as tasks:
                tasks.start_soon(absorb)
                return await wired.receiver.arecv()

        assert aio.run(main).payload == b"answer"
        assert wired.socket.stats.resent == 1
        assert (wired.peer.stats.received, wired.peer.stats.duplicates) == (served, 1)
    finally:
        wired.close()


def test_recv_on_a_context_whose_arecv_is_still_pending_is_a_usage_error(nodes, url):
    wired = wire("rep-context", nodes, url())
    aio = AsyncLibrary("trio")

    async def main():
        assert await aio.cancelled_after(0.05, wired.receiver.arecv())
        with pytest.raises(UsageError, match="still pending"):
            wired.receiver.recv()
        wired.trigger(b"now")
        return await wired.receiver.arecv()

    try:
        assert aio.run(main).payload == b"now"
    finally:
        wired.close()
