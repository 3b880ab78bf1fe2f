"""Per-message cost of seal and open, per scheme, next to the libsodium calls they make.

    python -m benchmarks.codec [--quick]

Three tables, single thread, on this machine (medians of repeated timed loops,
``time.perf_counter``; minor page faults from ``resource.getrusage``):

1. the libsodium calls of the per-frame path, three ways: through PyNaCl's public bindings,
   through nngsec's ``_crypto`` module (the route it chose at import), and the floor: the
   C function called through cffi with every buffer prepared in advance;
2. seal and open per scheme and payload size, in µs and in minor page faults per call
   (a fault means a fresh page: large temporaries being allocated and freed);
3. minor page faults per seal and open at 64 KiB, each scheme in a fresh process, in a
   thread of its own (as socket loops and the bench's ends run: glibc gives threads their
   own heaps, which it shrinks and regrows more eagerly than the main one). What a fault
   count shows depends on the allocator's history: a process whose heap already grew and
   fragmented re-uses it and shows fewer.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nacl import bindings as public

SIZES = (64, 1024, 65536)
PRIMITIVE_SIZES = (1024, 65536)
ROUNDS = 7
QUICK = "--quick" in sys.argv  # a smoke run (the test suite uses it)
FRAME_LABEL = b"nngsec/v2/sealed\x00" + bytes(48)  # a label and a binding's size


def _count(size: int, base: int) -> int:
    """Iterations per round: fewer for large payloads, a handful in a smoke run."""
    if QUICK:
        return 5
    return max(50, base if size <= 1024 else base // 8)


def per_call(function: Callable[[], object], count: int) -> float:
    """Median over ROUNDS of the mean time of one call, in microseconds."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(count):
            function()
        samples.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(samples)


def _floor_calls(size: int) -> dict[str, Callable[[], object]]:
    """The C functions through cffi with prepared buffers: no Python work but the call."""
    from nacl._sodium import ffi, lib

    message, ad = os.urandom(size), os.urandom(100)
    key, nonce = os.urandom(32), os.urandom(24)
    ciphertext = bytes(public.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key))
    out = ffi.new("unsigned char[]", size + 16)
    sign_pk, sign_sk = public.crypto_sign_seed_keypair(os.urandom(32))
    # A frame signature signs its label and a BLAKE2b-512 digest of the frame: the floor
    # hashes the message and checks a signature prepared over label || digest.
    signed = public.crypto_sign(FRAME_LABEL + hashlib.blake2b(message).digest(), sign_sk)
    opened = ffi.new("unsigned char[]", len(signed))
    length = ffi.new("unsigned long long *")
    scalar, point, shared = os.urandom(32), public.crypto_scalarmult_base(os.urandom(32)), out

    def encrypt() -> object:
        return lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
            out, ffi.NULL, message, size, ad, len(ad), ffi.NULL, nonce, key
        )

    def decrypt() -> object:
        return lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
            out, ffi.NULL, ffi.NULL, ciphertext, len(ciphertext), ad, len(ad), nonce, key
        )

    def verify() -> object:  # PyNaCl's lib has no detached form: crypto_sign_open, prepared
        hashlib.blake2b(message).digest()
        return lib.crypto_sign_open(opened, length, signed, len(signed), sign_pk)

    def x25519() -> object:
        return lib.crypto_scalarmult(shared, scalar, point)

    return {"aead_encrypt": encrypt, "aead_decrypt": decrypt, "frame_verify": verify,
            "x25519": x25519}  # fmt: skip


def primitives(size: int) -> dict[str, tuple[float, float, float]]:
    """Per call (µs): PyNaCl's public bindings, nngsec's _crypto, the floor."""
    from nngsec._runtime._schemes import _crypto

    message, ad = os.urandom(size), os.urandom(100)
    key, nonce = os.urandom(32), os.urandom(24)
    ciphertext = bytes(public.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key))
    sign_pk, sign_sk = public.crypto_sign_seed_keypair(os.urandom(32))
    signature = bytes(
        public.crypto_sign(FRAME_LABEL + hashlib.blake2b(message).digest(), sign_sk)[:64]
    )
    scalar, point = os.urandom(32), public.crypto_scalarmult_base(os.urandom(32))

    def pynacl_verify() -> object:  # the same construction through the public bindings
        digest = hashlib.blake2b(message).digest()
        return public.crypto_sign_open(signature + FRAME_LABEL + digest, sign_pk)

    def ours_verify() -> object:
        return _crypto.verify_frame(sign_pk, signature, FRAME_LABEL, message)

    if not hasattr(_crypto, "verify_frame"):  # nngsec before prehashing: Ed25519 of the frame
        pure = bytes(public.crypto_sign(FRAME_LABEL + message, sign_sk)[:64])

        def ours_verify() -> object:
            return getattr(_crypto, "verify")(sign_pk, pure, FRAME_LABEL, message)  # noqa: B009

    calls: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "aead_encrypt": (
            lambda: public.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key),
            lambda: _crypto.aead_seal(key, nonce, message, ad),
        ),
        "aead_decrypt": (
            lambda: public.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key),
            lambda: _crypto.aead_open(key, nonce, ciphertext, ad),
        ),
        "frame_verify": (pynacl_verify, ours_verify),
        "x25519": (
            lambda: public.crypto_scalarmult(scalar, point),
            lambda: _crypto.x25519(scalar, point),
        ),
    }
    floor = _floor_calls(size)
    out = {}
    for name, (pynacl, ours) in calls.items():
        base = 300 if name in ("frame_verify", "x25519") else 3000
        count = _count(size, base)
        out[name] = (per_call(pynacl, count), per_call(ours, count), per_call(floor[name], count))
    return out


CASES = [
    # (label, channel, sender, receiver, libsodium calls on seal / open)
    ("plaintext", "pipeline-plaintext", "alice", "carol", "-", "-"),
    ("signed", "pubsub-signed", "alice", "carol", "sign", "verify"),
    ("secretbox pair", "pair-secretbox", "alice", "bob", "aead", "aead"),
    ("secretbox bus (origin group)", "bus-group", "alice", "bob", "aead", "aead"),
    ("secretbox bus (origin signed)", "bus-secretbox", "alice", "bob", "aead+sign", "aead+verify"),
    ("sealed (cached content key)", "pubsub-sealed", "alice", "carol", "aead+sign", "verify+aead"),
    ("sealed, origin mac (2 receivers)", "pubsub-mac", "alice", "carol", "aead+2 mac", "mac+aead"),
    ("peerbox request", "reqrep-peerbox", "alice", "carol", "aead", "aead"),
]


def _seal_and_open(nodes: dict[str, Any], case: tuple[str, ...], size: int) -> tuple[float, float]:
    _, channel, sender, receiver, _, _ = case
    topic = "t.x" if channel.startswith("pubsub") else None
    payload = os.urandom(size)
    count = _count(size, 1500)
    seal = nodes[sender].sender(channel).seal
    seal_us = per_call(lambda: seal(payload, topic), count)
    opener = nodes[receiver].receiver(channel)  # before sealing: see its floor
    samples = []
    for _ in range(ROUNDS):
        frames = [seal(payload, topic) for _ in range(count)]
        start = time.perf_counter()
        for frame in frames:
            opener.open(frame)
        samples.append((time.perf_counter() - start) / count * 1e6)
    return seal_us, statistics.median(samples)


FAULT_SIZE = 65536


def _faults(root: str, case: tuple[str, ...], results: Any) -> None:
    """In a fresh process, in a new thread: minor page faults per seal and per open of
    FAULT_SIZE bytes."""
    import threading

    found: list[float] = []
    worker = threading.Thread(target=_faults_in_this_thread, args=(root, case, found))
    worker.start()
    worker.join()
    results.put(tuple(found))


def _faults_in_this_thread(root: str, case: tuple[str, ...], found: list[float]) -> None:
    import logging

    from nngsec import Keystore, Node

    logging.getLogger("nngsec").setLevel(logging.ERROR)
    _, channel, sender, receiver, _, _ = case
    policy, keys = f"{root}/policy.yaml", Keystore(f"{root}/keys")
    with (
        Node(policy, identity=sender, keystore=keys, state_dir=False) as sending,
        Node(policy, identity=receiver, keystore=keys, state_dir=False) as receiving,
    ):
        _count_faults(sending.sender(channel).seal, receiving.receiver(channel), channel, found)


def _count_faults(
    seal: Callable[..., bytes], opener: Any, channel: str, found: list[float]
) -> None:
    topic = "t.x" if channel.startswith("pubsub") else None
    payload, count = os.urandom(FAULT_SIZE), 10 if QUICK else 200

    def minor() -> int:
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt

    # Sealing first, on a heap that holds nothing else (as a sender's does), then opening
    # frames made in advance.
    for _ in range(20):
        seal(payload, topic)
    before = minor()
    for _ in range(count):
        seal(payload, topic)
    found.append((minor() - before) / count)
    frames = [seal(payload, topic) for _ in range(count + 20)]
    for frame in frames[:20]:
        opener.open(frame)
    del frames[:20]
    before = minor()
    for frame in frames:
        opener.open(frame)
    found.append((minor() - before) / count)


def faults_in_fresh_process(root: str, case: tuple[str, ...]) -> tuple[float, float]:
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    child = spawn.Process(target=_faults, args=(root, case, results))
    child.start()
    try:
        found: tuple[float, float] = results.get(timeout=300)
    finally:
        child.join(60)
    return found


def _measure(nodes: dict[str, Any], root: str, channels: str) -> None:
    print(f"{'scheme':34} {'size':>6} {'seal µs':>9} {'open µs':>9}   libsodium seal / open")
    cases = [case for case in CASES if f"  {case[1]}:" in channels]
    for case in cases:  # (a channel this version of the test support has)
        for size in SIZES:
            seal_us, open_us = _seal_and_open(nodes, case, size)
            print(f"{case[0]:34} {size:>6} {seal_us:>9.1f} {open_us:>9.1f}   {case[4]} / {case[5]}")
    print()
    print(f"minor page faults per call at {FAULT_SIZE} B (each scheme in a fresh process):")
    print(f"{'scheme':34} {'seal':>6} {'open':>6}")
    for case in cases:
        if QUICK and case[1] != "pubsub-sealed":
            continue  # one child process in a smoke run
        sealing, opening = faults_in_fresh_process(root, case)
        print(f"{case[0]:34} {sealing:>6.1f} {opening:>6.1f}")


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import logging

    from tests.support import ALL_CHANNELS, NAMES, build_world

    from nngsec._runtime._schemes import _crypto

    logging.getLogger("nngsec").setLevel(logging.ERROR)
    route = _crypto.route() if hasattr(_crypto, "route") else "pynacl (the only one)"
    print(f"_crypto route: {route}")
    print()
    print("libsodium calls, µs per call (median of 7): PyNaCl public / nngsec _crypto / floor")
    for size in PRIMITIVE_SIZES:
        for name, (pynacl, ours, floor) in primitives(size).items():
            print(f"  {size:>6} B  {name:15} {pynacl:8.2f} {ours:8.2f} {floor:8.2f}")
    print()
    with tempfile.TemporaryDirectory() as root:
        world = build_world(Path(root), ALL_CHANNELS, NAMES)
        nodes = {name: world.node(name) for name in NAMES}
        try:
            _measure(nodes, root, ALL_CHANNELS)
        finally:  # stop the replay checkpoints before the directory goes away
            for node in nodes.values():
                node.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
