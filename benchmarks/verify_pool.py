"""A receiver's throughput with ``verify_threads`` (Ed25519 verification on N threads).

    python -m benchmarks.verify_pool [--quick]

Frames of an ``origin: signed`` channel (pubsub, sealed; 1 KiB) are sealed in advance
and sent by a raw Pub0 in another process into the receiver's buffers (which hold them
all) before the clock starts, so what is measured is the receiver's own work: messages
per second received and opened with 0 (in the socket's thread), 1, 2 and 3 verify
threads, medians of 5 runs each, the variants alternating.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pynng

QUICK = "--quick" in sys.argv
COUNT = 300 if QUICK else 3000
ROUNDS = 2 if QUICK else 5
THREADS = (0, 1, 2, 3)


# (Not a pipeline: NNG's Pull0 takes ~150 µs per message even from a full buffer, which
# would be all this measures.)
def _send(url: str, frames: list[bytes], ready: Any) -> None:
    with pynng.Pub0(dial=url, send_buffer_size=len(frames) + 16) as pub:
        ready.wait()
        for frame in frames:
            pub.send(frame)
        time.sleep(5)  # the receiver takes what is queued before the socket goes


def _one_run(node: Any, root: str, frames: list[bytes], threads: int, number: int) -> float:
    url = f"ipc://{root}/pool-{number}"
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Event()
    sender = spawn.Process(target=_send, args=(url, frames, ready), daemon=True)
    sender.start()
    with node.attach(
        pynng.Sub0(listen=url, recv_timeout=20_000),
        "pubsub-sealed",
        verify_threads=threads,
        buffers=len(frames) + 16,  # every frame waits in NNG before the clock starts
    ) as sub:
        sub.subscribe("t.")
        while not sub.pipes and sender.exitcode is None:  # the publisher dials in
            time.sleep(0.01)
        ready.set()
        sub.recv()
        time.sleep(1 if QUICK else 3)
        start = time.perf_counter()
        for _ in range(len(frames) - 1):
            sub.recv()
        seconds = time.perf_counter() - start
    sender.join(10)
    return (len(frames) - 1) / seconds


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import logging

    from tests.support import ALL_CHANNELS, NAMES, build_world

    logging.getLogger("nngsec").setLevel(logging.ERROR)
    print(f"cores: {os.cpu_count()}; {COUNT} frames of 1 KiB, pubsub-sealed, origin: signed")
    with tempfile.TemporaryDirectory() as root:
        world = build_world(Path(root), ALL_CHANNELS, NAMES)
        alice = world.node("alice", state_dir=False)
        rates: dict[int, list[float]] = {t: [] for t in THREADS}
        number = 0
        for _ in range(ROUNDS):
            for threads in THREADS:
                carol = world.node("carol", state_dir=False)  # fresh replay windows
                sender = alice.sender("pubsub-sealed")
                frames = [sender.seal(os.urandom(1024), "t.x") for _ in range(COUNT)]
                number += 1
                rates[threads].append(_one_run(carol, root, frames, threads, number))
                carol.close()
        alice.close()
    base = statistics.median(rates[0])
    print(f"{'verify threads':>14} {'msgs/s':>9} {'min':>9} {'max':>9} {'speed-up':>9}")
    for threads in THREADS:
        median = statistics.median(rates[threads])
        print(
            f"{threads:>14} {median:>9.0f} {min(rates[threads]):>9.0f} "
            f"{max(rates[threads]):>9.0f} {median / base:>9.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
