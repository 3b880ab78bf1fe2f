"""``nngsec bench``: secured against plain pynng, same run, same sockets, same buffers.

For each pattern (pair, pubsub, pipeline, reqrep), payload size and mode (two threads of
one process, or two processes started with ``spawn``), the same code runs once with plain
pynng sockets and once with the sockets attached to a policy, and the table reports the
ratio secured/plain of the medians over repeats.

How it measures:

- **Throughput** (messages/s, MB/s of payload): the sender streams messages; the receiver
  acknowledges every ``ACK_EVERY`` messages on a plain side channel and the sender keeps at
  most ``WINDOW`` unacknowledged. Without this credit, pub/sub (which has no backpressure)
  would silently drop what a slower receiver cannot take, and we would measure the sender.
  Reqrep runs one request at a time, so its throughput is 1 / round trip.
- **Latency** (µs, p50/p99): one message at a time, each acknowledged (reqrep: request and
  reply), measured by the sender as the round trip.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import queue
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pynng

from .._errors import NngsecError, Problem
from . import _logs

__all__ = ["BenchResult", "run_bench"]

PATTERNS = ("pair", "pubsub", "pipeline", "reqrep")
CHANNEL = {
    "pair": "bench-pair",
    "pubsub": "bench-pubsub",
    "pipeline": "bench-pipeline",
    "reqrep": "bench-reqrep",
}
WINDOW = 100
ACK_EVERY = 50
BUFFERS = 128  # both variants get the same buffers
TOPIC = "bench.x"
POLICY = """
channels:
  bench-pair: {pattern: pair, members: [sender, receiver], max_message_size: 1MiB}
  bench-pubsub:
    {pattern: pubsub, publishers: [sender], subscribers: [receiver], max_message_size: 1MiB}
  bench-pipeline:
    {pattern: pipeline, pushers: [sender], pullers: [receiver], max_message_size: 1MiB}
  bench-reqrep: {pattern: reqrep, clients: [sender], servers: [receiver], max_message_size: 1MiB}
"""


@dataclass
class Measure:
    """One run: seconds for ``count`` messages, and round trips in seconds."""

    count: int
    seconds: float
    round_trips: list[float]


@dataclass
class BenchResult:
    pattern: str
    size: int
    mode: str
    transport: str
    plain: dict[str, float] = field(default_factory=dict)
    secured: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Secured throughput as a fraction of plain throughput."""
        return self.secured["msgs_per_s"] / self.plain["msgs_per_s"]


def make_world(root: Path) -> tuple[str, str]:
    """A policy with a sender and a receiver on one channel per pattern, keys and all."""
    from .._keys._keystore import Keystore
    from .._policy._admin import rotate

    keystore = Keystore(root / "keys")
    lines = ["nngsec: 1", "name: bench", "identities:"]
    for name in ("sender", "receiver"):
        key, _, _ = keystore.generate(name)
        lines.append(f"  {name}: {key.public.to_text()}")
    policy = root / "bench.yaml"
    policy.write_text("\n".join(lines) + POLICY)
    rotate(policy)
    return str(policy), str(keystore.directory)


# -- the two ends (module level: they run in spawned processes too) -------------------
@contextlib.contextmanager
def _socket(pattern: str, side: str, url: str, world: tuple[str, str] | None) -> Iterator[Any]:
    """One end, open for the ``with`` block; a secured end's node closes after its socket,
    so its replay-state checkpoints stop before the bench's directory goes away."""
    kinds = {
        "pair": (pynng.Pair0, pynng.Pair0),
        "pubsub": (pynng.Pub0, pynng.Sub0),
        "pipeline": (pynng.Push0, pynng.Pull0),
        "reqrep": (pynng.Req0, pynng.Rep0),
    }
    sending = side == "sender"
    cls = kinds[pattern][0 if sending else 1]
    sock = cls(recv_timeout=30_000, send_timeout=30_000)
    node = None
    if world is None:
        if sock.protocol not in (32, 80):  # Pub0/Push0 cannot receive
            sock.recv_buffer_size = BUFFERS
            sock.recv_max_size = 0
        if sock.protocol not in (33, 81):  # Sub0/Pull0 cannot send
            sock.send_buffer_size = BUFFERS
        if pattern == "pubsub" and not sending:
            sock.subscribe(b"bench.")
        endpoint = sock
    else:
        from .._runtime._node import Node

        with _logs.quieted():  # the bench's policy is unsigned on purpose: no warning
            node = Node(world[0], identity="sender" if sending else "receiver", keystore=world[1])
        endpoint = node.attach(sock, CHANNEL[pattern], buffers=BUFFERS)
        if pattern == "pubsub" and not sending:
            endpoint.subscribe("bench.")
    try:
        if sending:
            sock.dial(url, block=False)
        else:
            sock.listen(url)
        with endpoint:
            yield endpoint
    finally:
        sock.close()
        if node is not None:
            node.close()


def _send(endpoint: Any, pattern: str, payload: bytes, secured: bool) -> None:
    if pattern == "pubsub" and secured:
        endpoint.send(payload, topic=TOPIC)
    elif pattern == "pubsub":
        endpoint.send(TOPIC.encode() + b"\x00" + payload)  # same clear topic as secured
    else:
        endpoint.send(payload)


def _payload(received: Any) -> bytes:
    return received.payload if hasattr(received, "payload") else bytes(received)


def receiver_side(
    pattern: str, url: str, ack_url: str, world: tuple[str, str] | None, plan: tuple[int, int]
) -> None:
    """Receive ``plan`` = (streamed, latency) messages, acknowledging as the sender expects."""
    streamed, latency = plan
    with _socket(pattern, "receiver", url, world) as sock, pynng.Pair0(listen=ack_url) as ack:
        if pattern == "reqrep":
            for _ in range(1 + streamed + latency):  # one warm-up request first
                request = _payload(sock.recv())
                sock.send(request)
            ack.recv()  # hold the socket open until the sender is done
            return
        # warm-up: acknowledge the first message that makes it through
        sock.recv()
        ack.send(b"ready")
        count = 0
        while count < streamed:
            sock.recv()
            count += 1
            if count % ACK_EVERY == 0 or count == streamed:
                ack.send(struct.pack(">Q", count))
        for _ in range(latency):
            sock.recv()
            ack.send(b"k")
        ack.recv()


def sender_side(
    pattern: str,
    url: str,
    ack_url: str,
    world: tuple[str, str] | None,
    plan: tuple[int, int],
    size: int,
) -> Measure:
    streamed, latency = plan
    secured = world is not None
    payload = bytes(size)
    with _socket(pattern, "sender", url, world) as sock, pynng.Pair0(recv_timeout=30_000) as ack:
        ack.dial(ack_url, block=False)
        if pattern == "reqrep":
            sock.send(payload)  # warm-up: the connection is up once this is answered
            sock.recv()
            trips = []
            start = time.perf_counter()
            for _ in range(streamed):
                sock.send(payload)
                sock.recv()
            seconds = time.perf_counter() - start
            for _ in range(latency):
                began = time.perf_counter()
                sock.send(payload)
                sock.recv()
                trips.append(time.perf_counter() - began)
            ack.send(b"done")
            return Measure(streamed, seconds, trips)
        # warm-up: pub/sub and pipes need a moment; resend until the receiver has one
        ack.recv_timeout = 20
        deadline = time.monotonic() + 20
        while True:
            _send(sock, pattern, payload, secured)
            try:
                ack.recv()
                break
            except pynng.Timeout:
                if time.monotonic() > deadline:
                    raise
        ack.recv_timeout = 30_000
        acked = 0
        start = time.perf_counter()
        for sent in range(1, streamed + 1):
            _send(sock, pattern, payload, secured)
            while sent - acked >= WINDOW:
                (acked,) = struct.unpack(">Q", ack.recv())
        while acked < streamed:
            (acked,) = struct.unpack(">Q", ack.recv())
        seconds = time.perf_counter() - start
        trips = []
        for _ in range(latency):
            began = time.perf_counter()
            _send(sock, pattern, payload, secured)
            ack.recv()
            trips.append(time.perf_counter() - began)
        ack.send(b"done")
        return Measure(streamed, seconds, trips)


def _sender_process(args: tuple[Any, ...], results: Any) -> None:
    results.put(asdict(sender_side(*args)))


def run_once(
    pattern: str,
    size: int,
    mode: str,
    url: str,
    ack_url: str,
    world: tuple[str, str] | None,
    plan: tuple[int, int],
) -> Measure:
    if mode == "threads":
        receiver = threading.Thread(target=receiver_side, args=(pattern, url, ack_url, world, plan))
        receiver.start()
        try:
            return sender_side(pattern, url, ack_url, world, plan, size)
        finally:
            receiver.join(60)
    spawn = multiprocessing.get_context("spawn")  # nng is not fork-safe
    results = spawn.Queue()
    receiver_process = spawn.Process(
        target=receiver_side, args=(pattern, url, ack_url, world, plan)
    )
    sender_process = spawn.Process(
        target=_sender_process, args=((pattern, url, ack_url, world, plan, size), results)
    )
    receiver_process.start()
    sender_process.start()
    try:
        data = results.get(timeout=120)
    except queue.Empty:
        raise NngsecError(
            Problem(
                f"the {pattern} {size}-byte run between two processes did not finish in 120 s",
                hint="rerun with --modes threads to see whether it is the processes",
            )
        ) from None
    finally:
        sender_process.join(60)
        receiver_process.join(60)
    return Measure(**data)


def _summary(measures: list[Measure], size: int) -> dict[str, float]:
    rates = [m.count / m.seconds for m in measures]
    trips = sorted(t for m in measures for t in m.round_trips)
    rate = statistics.median(rates)
    return {
        "msgs_per_s": rate,
        "mb_per_s": rate * size / 1e6,
        "p50_us": trips[len(trips) // 2] * 1e6 if trips else float("nan"),
        "p99_us": trips[min(len(trips) - 1, int(len(trips) * 0.99))] * 1e6
        if trips
        else float("nan"),
    }


def plan_for(size: int, quick: bool) -> tuple[int, int]:
    streamed = 4000 if size <= 1024 else 400
    latency = 300 if size <= 1024 else 100
    if quick:
        return streamed // 10, latency // 5
    return streamed, latency


def run_bench(
    *,
    patterns: tuple[str, ...] = PATTERNS,
    sizes: tuple[int, ...] = (64, 1024, 65536),
    modes: tuple[str, ...] = ("threads", "processes"),
    repeats: int = 3,
    transport: str = "ipc",
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[BenchResult]:
    results = []
    with tempfile.TemporaryDirectory(prefix="nngsec-bench-") as root:
        world = make_world(Path(root))
        counter = iter(range(1_000_000))

        def urls() -> tuple[str, str]:
            number = next(counter)
            if transport == "tcp":
                from socket import socket

                ports = []
                for _ in range(2):
                    with socket() as probe:
                        probe.bind(("127.0.0.1", 0))
                        ports.append(probe.getsockname()[1])
                return f"tcp://127.0.0.1:{ports[0]}", f"ipc://{root}/ack-{number}"
            if transport == "inproc":
                return f"inproc://bench-{number}", f"inproc://ack-{number}"
            return f"ipc://{root}/data-{number}", f"ipc://{root}/ack-{number}"

        for mode in modes:
            for pattern in patterns:
                for size in sizes:
                    plan = plan_for(size, quick)
                    result = BenchResult(pattern, size, mode, transport)
                    measures: dict[str, list[Measure]] = {"plain": [], "secured": []}
                    for _ in range(repeats):  # alternate variants so drift affects both alike
                        for variant in ("plain", "secured"):
                            data, ack = urls()
                            measures[variant].append(
                                run_once(
                                    pattern,
                                    size,
                                    mode,
                                    data,
                                    ack,
                                    world if variant == "secured" else None,
                                    plan,
                                )
                            )
                    result.plain = _summary(measures["plain"], size)
                    result.secured = _summary(measures["secured"], size)
                    results.append(result)
                    if progress:
                        progress(format_row(result))
    return results


HEADER = (
    f"{'pattern':9} {'size':>6} {'mode':9} {'plain msg/s':>12} {'secured msg/s':>14} "
    f"{'ratio':>6} {'plain MB/s':>11} {'sec. MB/s':>10} {'plain p50/p99 µs':>17} "
    f"{'secured p50/p99 µs':>19}"
)


def format_row(result: BenchResult) -> str:
    plain, secured = result.plain, result.secured
    return (
        f"{result.pattern:9} {result.size:>6} {result.mode:9} {plain['msgs_per_s']:>12,.0f} "
        f"{secured['msgs_per_s']:>14,.0f} {result.ratio:>6.2f} {plain['mb_per_s']:>11.1f} "
        f"{secured['mb_per_s']:>10.1f} {plain['p50_us']:>8.0f}/{plain['p99_us']:<8.0f} "
        f"{secured['p50_us']:>9.0f}/{secured['p99_us']:<9.0f}"
    )


def to_json(results: list[BenchResult]) -> str:
    return json.dumps([{**asdict(r), "ratio": r.ratio} for r in results], indent=2)


def main_table(results: list[BenchResult]) -> str:
    return "\n".join([HEADER, *(format_row(r) for r in results)])


if __name__ == "__main__":  # pragma: no cover
    print(main_table(run_bench(quick="--quick" in sys.argv)))
