"""``verify_threads``: a receiving socket opens frames on a few threads and delivers them
in the order they came, with the same outcome for every frame as one thread gives."""

from __future__ import annotations

import threading
from typing import Any

import pynng
import pytest

from nngsec import UsageError
from tests.net import address, connected, wait_for

TIMEOUT = 5000


def _pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("nngsec-verify")]


@pytest.mark.parametrize(
    ("channel", "sending", "receiving", "topic"),
    [
        ("pubsub-sealed", pynng.Pub0, pynng.Sub0, "t.x"),
        ("pipeline-signed", pynng.Push0, pynng.Pull0, None),
        ("bus-secretbox", pynng.Bus0, pynng.Bus0, None),
    ],
)
def test_frames_are_delivered_in_order_and_junk_is_counted(
    codec_world, tmp_path, channel, sending, receiving, topic
):
    """Two senders interleaved, with copies (replays), damaged frames and junk among
    them: each sender's messages arrive in the order sent, every bad frame is counted by
    reason as on one thread, and the threads end with the socket."""
    nodes = codec_world.nodes
    url = address("ipc", tmp_path)
    receiver_name = "bob" if channel.startswith("bus") else "carol"
    senders = ("alice", "carol") if channel.startswith("bus") else ("alice", "bob")
    with (
        nodes[receiver_name].attach(
            receiving(listen=url, recv_timeout=TIMEOUT), channel, verify_threads=2
        ) as socket,
        sending(dial=url, send_buffer_size=256) as raw,  # (Pub0 drops beyond its buffer)
    ):
        if topic is not None:
            socket.subscribe("t.")
        connected(socket, raw)
        if topic is not None:  # a subscription takes a moment to reach the publisher
            probe = nodes["alice"].seal(channel, b"probe", topic=topic)
            raw.send(probe)
            assert socket.recv().payload == b"probe"
        expected: dict[str, list[bytes]] = {name: [] for name in senders}
        frames = []
        for index in range(60):  # with what goes wrong, within the 128 NNG buffers
            name = senders[index % 2]
            payload = b"%s %d" % (name.encode(), index)
            frame = nodes[name].seal(channel, payload, topic=topic)
            frames.append(frame)
            expected[name].append(payload)
            if index % 10 == 3:
                frames.append(frame)  # a copy: replay
            if index % 10 == 6:  # forged: a damaged frame whose original is not sent
                damaged = bytearray(nodes[name].seal(channel, payload, topic=topic))
                damaged[-1] ^= 1
                frames.append(bytes(damaged))
            if index % 10 == 8:
                frames.append(b"\x00junk" if topic is None else b"t.junk\x00")  # malformed
        for frame in frames:
            raw.send(frame)
        got: dict[str, list[bytes]] = {name: [] for name in senders}
        for _ in range(60):
            message = socket.recv()
            got[message.sender].append(message.payload)
        assert got == expected
        rejected = socket.stats.rejected
        wait_for(lambda: sum(rejected.values()) == 18, "every bad frame counted")
        assert rejected == {"replay": 6, "forged": 6, "malformed": 6}
        assert _pool_threads()
    assert not _pool_threads()


def test_iteration_and_arecv_take_what_the_pool_took_ahead(codec_world, tmp_path):
    import asyncio

    nodes = codec_world.nodes
    url = address("ipc", tmp_path)
    with (
        nodes["carol"].attach(
            pynng.Pull0(listen=url, recv_timeout=TIMEOUT), "pipeline-sealed", verify_threads=3
        ) as socket,
        pynng.Push0(dial=url) as raw,
    ):
        connected(socket, raw)
        for index in range(20):
            raw.send(nodes["alice"].seal("pipeline-sealed", b"%d" % index))
        pool: Any = socket._verifying
        it = iter(socket)
        first = [next(it).payload]
        while not len(pool) and len(first) < 19:  # until frames wait in the pool
            first.append(next(it).payload)
        # (Usually frames now wait in the pool; on a loaded machine the pool may not have
        # run ahead, and then what follows checks the order of the plain path: both ways,
        # nothing may be lost or reordered when iteration hands over to arecv.)

        async def rest() -> list[bytes]:
            return [(await socket.arecv()).payload for _ in range(20 - len(first))]

        assert first + asyncio.run(rest()) == [b"%d" % i for i in range(20)]


@pytest.mark.parametrize("threads", [-1, 17, 1.5, True])
def test_verify_threads_out_of_range_is_a_usage_error(codec_world, threads: Any):
    with pynng.Sub0() as sock, pytest.raises(UsageError, match="verify_threads"):
        codec_world.nodes["carol"].attach(sock, "pubsub-sealed", verify_threads=threads)
    assert not _pool_threads()


@pytest.mark.parametrize(
    ("name", "protocol", "channel"),
    [
        ("carol", pynng.Rep0, "reqrep-peerbox"),
        ("alice", pynng.Req0, "reqrep-peerbox"),
        ("alice", pynng.Pub0, "pubsub-sealed"),
    ],
)
def test_verify_threads_is_for_sockets_that_only_take_messages_in(
    codec_world, name, protocol, channel
):
    with protocol() as sock, pytest.raises(UsageError, match="only take messages in"):
        codec_world.nodes[name].attach(sock, channel, verify_threads=2)
