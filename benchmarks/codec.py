"""Per-message cost of seal and open, per scheme, next to the libsodium calls they make.

    python -m benchmarks.codec

Medians of repeated timed loops (time.perf_counter), single thread, on this machine.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_scalarmult,
    crypto_sign,
    crypto_sign_open,
    crypto_sign_seed_keypair,
)

SIZES = (64, 1024)
ROUNDS = 7
QUICK = "--quick" in sys.argv  # a smoke run (the test suite uses it)


def per_call(function: Callable[[], object], count: int) -> float:
    """Median over ROUNDS of the mean time of one call, in microseconds."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(count):
            function()
        samples.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(samples)


def primitives(size: int) -> dict[str, float]:
    # ad: as long as a wire-format-2 header of the pubsub case (topic "t.x" and its NUL,
    # the 4-byte prefix, the channel name, and the 44 fixed bytes)
    ad = os.urandom(len("t.x") + 1 + 4 + len("pubsub-sealed") + 44)
    message, key, nonce = os.urandom(size), os.urandom(32), os.urandom(24)
    public, secret = crypto_sign_seed_keypair(os.urandom(32))
    signature = crypto_sign(message, secret)[:64]
    ciphertext = crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key)
    point = crypto_sign_seed_keypair(os.urandom(32))[0]
    del point
    x_secret, x_public = os.urandom(32), bytes.fromhex("09" + "00" * 31)
    return {
        "aead_encrypt": per_call(
            lambda: crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key), 3000
        ),
        "aead_decrypt": per_call(
            lambda: crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key), 3000
        ),
        "ed25519_sign": per_call(lambda: crypto_sign(message, secret), 1000),
        "ed25519_verify": per_call(lambda: crypto_sign_open(signature + message, public), 500),
        "x25519": per_call(lambda: crypto_scalarmult(x_secret, x_public), 500),
    }


CASES = [
    # (label, channel, sender, receiver, libsodium calls on seal / open)
    ("plaintext", "pipeline-plaintext", "alice", "carol", "-", "-"),
    ("signed", "pubsub-signed", "alice", "carol", "sign", "verify"),
    ("secretbox pair", "pair-secretbox", "alice", "bob", "aead", "aead"),
    ("secretbox bus (origin group)", "bus-group", "alice", "bob", "aead", "aead"),
    ("secretbox bus (origin signed)", "bus-secretbox", "alice", "bob", "aead+sign", "verify+aead"),
    ("sealed (cached content key)", "pubsub-sealed", "alice", "carol", "aead+sign", "verify+aead"),
    ("peerbox request", "reqrep-peerbox", "alice", "carol", "aead", "aead"),
]


def _open_next(opener: Any, frames: Iterator[bytes]) -> object:
    return opener.open(next(frames))


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import logging

    from tests.support import ALL_CHANNELS, NAMES, build_world

    logging.getLogger("nngsec").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as root:
        world = build_world(Path(root), ALL_CHANNELS, NAMES)
        nodes = {name: world.node(name) for name in NAMES}
        try:
            _measure(nodes)
        finally:  # stop the replay checkpoints before the directory goes away
            for node in nodes.values():
                node.close()
    return 0


def _measure(nodes: dict[str, Any]) -> None:
    print("libsodium calls (µs per call, median of 7):")
    for size in SIZES:
        cost = primitives(size)
        print(f"  {size:>5} B  " + "  ".join(f"{k} {v:6.1f}" for k, v in cost.items()))
    print()
    print(f"{'scheme':32} {'size':>6} {'seal µs':>9} {'open µs':>9}   libsodium seal / open")
    for label, channel, sender, receiver, seal_calls, open_calls in CASES:
        topic = "t.x" if channel.startswith("pubsub") else None
        for size in SIZES:
            payload = os.urandom(size)
            count = 20 if QUICK else 1500
            seal = per_call(partial(nodes[sender].seal, channel, payload, topic=topic), count)
            opener = nodes[receiver].receiver(channel)  # before sealing: see its floor
            frames = iter(
                [nodes[sender].seal(channel, payload, topic=topic) for _ in range(count * ROUNDS)]
            )
            open_ = per_call(partial(_open_next, opener, frames), count)
            print(f"{label:32} {size:>6} {seal:>9.1f} {open_:>9.1f}   {seal_calls} / {open_calls}")


if __name__ == "__main__":
    raise SystemExit(main())
