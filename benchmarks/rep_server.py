"""A secured Rep server's own work per request, reply cache included.

    python -m benchmarks.rep_server [--quick]

What a Rep0 server does for each request, without the network: take the frame in (the
reply cache's look-up, every check, opening it, noting it in the cache) and seal the
reply (which the cache keeps). Medians of timed loops over fresh requests, 1 KiB and
64 KiB, single thread; and the reply cache's part alone, on a full cache (each request
also drops the oldest entry, as on a busy server).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pynng

ROUNDS = 7
QUICK = "--quick" in sys.argv
POLICY = "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n"


def _per_request(rep: Any, frames: list[bytes], reply: bytes) -> float:
    start = time.perf_counter()
    for frame in frames:
        rep._accept(frame)
        rep._frame(reply, None)
    return (time.perf_counter() - start) / len(frames) * 1e6


def _cache_only(rep: Any, frames: list[bytes], reply: bytes) -> float:
    """The reply cache's calls for one request, as this version of nngsec makes them."""
    from nngsec._runtime import _reply_cache, _sockets

    cache = _reply_cache.ReplyCache()
    # Enough earlier requests to fill it (by count, or by bytes for large messages).
    size = len(frames[0])
    fill = [os.urandom(size) for _ in range(min(cache.MAX_ENTRIES, cache.MAX_BYTES // size + 8))]
    if hasattr(_reply_cache, "request_key"):  # keyed by reference and tag, one lock
        length = rep._shared.channel_length
        for old in fill:  # a full cache: each request now also drops the oldest entry
            entry, _ = cache.claim(_reply_cache.request_key(old, length), old)
            if entry is not None:
                cache.answered(entry, reply)
        start = time.perf_counter()
        for frame in frames:
            entry, _ = cache.claim(_reply_cache.request_key(frame, length), frame)
            if entry is not None:
                cache.answered(entry, reply)
    else:  # before: a digest of the whole frame, and two or three locked operations
        previous: Any = cache
        digest_of = getattr(_sockets, "_digest")  # noqa: B009 - absent in this version
        claims = hasattr(previous, "claim")  # claimed on arrival (sec-sockets)
        for old in fill:
            previous.claim(digest_of(old)) if claims else previous.started(digest_of(old))
            previous.answered(digest_of(old), reply)
        start = time.perf_counter()
        for frame in frames:
            digest = digest_of(frame)
            if claims:
                previous.claim(digest)
            else:
                previous.lookup(digest)
                previous.started(digest)
            previous.answered(digest, reply)
    return (time.perf_counter() - start) / len(frames) * 1e6


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import logging

    from tests.support import build_world

    logging.getLogger("nngsec").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as root:
        world = build_world(Path(root), POLICY, ["panel", "plc"])
        panel, plc = world.node("panel"), world.node("plc")
        try:
            _measure(panel, plc)
        finally:  # stop the replay checkpoints before the directory goes away
            panel.close()
            plc.close()
    return 0


def _measure(panel: Any, plc: Any) -> None:
    print(f"{'size':>6} {'server µs/request':>18} {'reply cache µs':>15}")
    for size in (1024, 65536):
        count = 5 if QUICK else (2000 if size <= 1024 else 300)
        payload = os.urandom(size)
        with plc.attach(pynng.Rep0(), "control") as rep:
            rep._accept(panel.seal("control", payload))  # derives and caches the peer key
            rep._frame(payload, None)
            whole, cache = [], []
            for _ in range(ROUNDS):
                frames = [panel.seal("control", payload) for _ in range(count)]
                whole.append(_per_request(rep, frames, payload))
                frames = [panel.seal("control", payload) for _ in range(count)]
                cache.append(_cache_only(rep, frames, payload))
        print(f"{size:>6} {statistics.median(whole):>18.1f} {statistics.median(cache):>15.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
