"""asyncio receive paths: pynng's ``arecv`` against waiting on ``recv_fd`` and receiving
without blocking (what SecureSocket.arecv does), and the secured socket itself.

    python -m benchmarks.async_recv [--quick]

A thread pushes messages as fast as the receiver takes them (Push0 to Pull0 over
inproc), so the receiving side is the bottleneck ("streaming"); or it has pushed them all
before the receiver starts ("queued": the receive path's own cost, with no waiting). The
figure is the median over 5 rounds of microseconds per received message.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pynng

COUNT = 100 if "--quick" in sys.argv else 2000
ROUNDS = 5


async def wait_readable(fd: int) -> None:
    """The bare minimum: one reader on the descriptor for one wait."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def fd_recv(sock: pynng.Socket) -> bytes:
    while True:
        try:
            data: bytes = sock.recv(block=False)
            return data
        except pynng.TryAgain:
            await wait_readable(sock.recv_fd)


def _produce(push: object) -> None:
    for _ in range(COUNT):
        push.send(b"x" * 64)  # type: ignore[attr-defined]


async def _drain(receive: Callable[[], Awaitable[object]]) -> None:
    for _ in range(COUNT):
        await receive()


def measure(
    make: Callable[[], tuple[object, object, Callable[[], Awaitable[object]]]],
    *,
    queued: bool = False,
) -> float:
    samples = []
    for _ in range(ROUNDS):
        push, pull, receive = make()
        producer = threading.Thread(target=_produce, args=(push,))
        try:
            producer.start()
            if queued:
                producer.join()
                time.sleep(0.05)  # the last messages cross the inproc pipe
            start = time.perf_counter()
            asyncio.run(_drain(receive))
            samples.append((time.perf_counter() - start) / COUNT * 1e6)
            producer.join()
        finally:
            push.close()  # type: ignore[attr-defined]
            pull.close()  # type: ignore[attr-defined]
    return statistics.median(samples)


def sync_reference(
    plain: Callable[[], tuple[pynng.Pull0, pynng.Push0]], *, queued: bool = False
) -> float:
    samples = []
    for _ in range(ROUNDS):
        pull, push = plain()
        producer = threading.Thread(target=_produce, args=(push,))
        producer.start()
        if queued:
            producer.join()
            time.sleep(0.05)
        start = time.perf_counter()
        for _ in range(COUNT):
            pull.recv()
        samples.append((time.perf_counter() - start) / COUNT * 1e6)
        producer.join()
        push.close()
        pull.close()
    return statistics.median(samples)


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support import build_world

    logging.getLogger("nngsec").setLevel(logging.ERROR)
    counter = iter(range(1000))

    def plain() -> tuple[pynng.Pull0, pynng.Push0]:
        url = f"inproc://async-bench-{next(counter)}"
        pull = pynng.Pull0(listen=url, recv_buffer_size=COUNT + 10)
        push = pynng.Push0(dial=url, send_buffer_size=COUNT + 10)
        while not push.pipes:
            time.sleep(0.001)
        return pull, push

    def pynng_arecv() -> tuple[object, object, Callable[[], Awaitable[object]]]:
        pull, push = plain()
        return push, pull, pull.arecv

    def fd_path() -> tuple[object, object, Callable[[], Awaitable[object]]]:
        pull, push = plain()
        return push, pull, lambda: fd_recv(pull)

    with tempfile.TemporaryDirectory() as root:
        world = build_world(
            Path(root),
            "channels:\n  jobs:\n"
            "    {pattern: pipeline, pushers: [a], pullers: [b], scheme: plaintext}\n",
            ["a", "b"],
        )
        a, b = world.node("a"), world.node("b")

        def secured() -> tuple[object, object, Callable[[], Awaitable[object]]]:
            pull, push = plain()
            secure_pull = b.attach(pull, "jobs", buffers=None)
            secure_push = a.attach(push, "jobs", buffers=None)
            return secure_push, secure_pull, secure_pull.arecv

        paths: list[tuple[str, Callable[..., float]]] = [
            (
                "(reference) blocking Socket.recv, no event loop",
                lambda **q: sync_reference(plain, **q),
            ),
            ("pynng Socket.arecv", lambda **q: measure(pynng_arecv, **q)),
            ("recv_fd + recv(block=False) (SecureSocket path)", lambda **q: measure(fd_path, **q)),
            ("SecureSocket.arecv, plaintext channel", lambda **q: measure(secured, **q)),
        ]
        print(f"{'path (µs/message)':48} {'streaming':>10} {'queued':>10}")
        for name, run in paths:
            print(f"{name:48} {run():>10.1f} {run(queued=True):>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
