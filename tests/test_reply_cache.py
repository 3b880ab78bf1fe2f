"""A Rep server's reply cache (``_runtime/_reply_cache.py``): found by the request's
reference and tag, matching only a byte-identical copy of an accepted request, at one
lock operation per request and with no hash of the frame."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import pynng
import pytest

from nngsec._runtime._reply_cache import ReplyCache, request_key
from tests.net import address, connected

TIMEOUT = 5000
CONTROL = "channels:\n  control: {pattern: reqrep, clients: [panel], servers: [plc]}\n"


@pytest.fixture
def service(world_factory, tmp_path):
    """A secured Rep server, a raw Req0 on the wire (it sends exactly what it is given),
    and the panel's node to make requests with."""
    world = world_factory(CONTROL, ["panel", "plc"])
    url = address("ipc", tmp_path)
    with (
        world.node("plc").attach(pynng.Rep0(listen=url, recv_timeout=TIMEOUT), "control") as rep,
        pynng.Req0(dial=url, recv_timeout=TIMEOUT) as wire,
    ):
        connected(wire)
        yield rep, wire, world.node("panel")


def _exchange(rep: Any, wire: Any, request: bytes, answer: bytes = b"done") -> bytes:
    wire.send(request)
    assert rep.recv().payload.startswith(b"req")
    rep.send(answer)
    reply: bytes = wire.recv()
    return reply


def test_the_key_is_the_reference_and_the_tag():
    frame = bytes(range(4)) + b"control" + bytes(range(100, 136)) + b"time....body" + b"T" * 16
    assert request_key(frame, len("control")) == bytes(range(100, 136)) + b"T" * 16


def test_a_copy_with_the_reference_and_tag_but_other_bytes_is_not_answered(service):
    """Someone who saw a request can copy its reference and tag onto other bytes: that
    frame finds the entry but is not byte-identical, so it is checked like any other
    (refused as a replay of the request's sequence number) and gets no reply."""
    rep, wire, panel = service
    request = panel.seal("control", b"req: open valve 3")
    first = _exchange(rep, wire, request)
    changed = bytearray(request)
    changed[-20] ^= 1  # ciphertext, not the tag
    assert request_key(bytes(changed), len("control")) == request_key(request, len("control"))
    wire.send(bytes(changed))
    rep._io.recv_timeout = 300
    with pytest.raises(pynng.Timeout):
        rep.recv()
    assert rep.stats.rejected == {"replay": 1}
    assert rep.stats.duplicates == 0
    wire.recv_timeout = 300
    with pytest.raises(pynng.Timeout):
        wire.recv()
    # The byte-identical copy is still answered with the same reply.
    wire.recv_timeout = TIMEOUT
    wire.send(request)
    with pytest.raises(pynng.Timeout):
        rep.recv()
    assert wire.recv() == first
    assert rep.stats.duplicates == 1


class CountingLock:
    """A lock that counts how often it is taken."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taken = 0

    def __enter__(self) -> None:
        self.taken += 1
        self.lock.acquire()

    def __exit__(self, *_: object) -> None:
        self.lock.release()


def test_one_lock_operation_and_no_hash_per_request(service, monkeypatch):
    """Before: a BLAKE2b digest of the whole frame (85 µs at 64 KiB) and three locked
    cache operations per request."""
    rep, wire, panel = service
    _exchange(rep, wire, panel.seal("control", b"req warm-up"))  # derives the peer key
    lock = CountingLock()
    monkeypatch.setattr(rep._shared.replies, "_lock", lock)
    hashes = []
    real = hashlib.blake2b

    def counting_blake2b(*args: Any, **kwargs: Any) -> Any:
        hashes.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "blake2b", counting_blake2b)
    for index in range(10):
        assert _exchange(rep, wire, panel.seal("control", b"req %d" % index))
    assert lock.taken == 10
    assert hashes == []
    assert rep.stats.received == 11 and rep.stats.rejected == {}


# -- the cache itself -------------------------------------------------------------------
def _held(cache: ReplyCache) -> int:
    """What the cache's byte count should be: requests, and the replies it counted."""
    return sum(
        len(e.request) + (len(e.reply) if e.counted and e.reply else 0)
        for e in cache._entries.values()
    )


def test_requests_and_replies_together_stay_under_the_byte_limit(monkeypatch):
    monkeypatch.setattr(ReplyCache, "MAX_BYTES", 10_000)
    cache = ReplyCache()
    for index in range(40):
        key = b"k%d" % index
        entry = cache.started(key, bytes(1000) + key)
        cache.answered(entry, bytes(500))
        assert cache._bytes == _held(cache) <= 10_000 + 500  # a reply counted at the next start
    assert len(cache._entries) < 10
    newest = b"k39"
    assert cache.lookup(newest, bytes(1000) + newest) == (True, bytes(500))
    assert cache.lookup(b"k0", bytes(1000) + b"k0") == (False, None)  # evicted


def test_a_reply_to_a_forgotten_request_is_never_counted(monkeypatch):
    monkeypatch.setattr(ReplyCache, "MAX_ENTRIES", 1)
    cache = ReplyCache()
    first = cache.started(b"a", b"request a")
    cache.started(b"b", b"request b")  # evicts a, still unanswered
    cache.answered(first, b"late reply")  # the server answers it anyway
    cache.started(b"c", b"request c")
    assert cache._bytes == _held(cache) == len(b"request c")


def test_entries_expire(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache = ReplyCache()
    entry = cache.started(b"k", b"request")
    assert cache.lookup(b"k", b"request") == (True, None)  # in progress: dropped
    cache.answered(entry, b"reply")
    assert cache.lookup(b"k", b"request") == (True, b"reply")
    now[0] += ReplyCache.RETENTION + 1
    assert cache.lookup(b"k", b"request") == (False, None)
    cache.started(b"other", b"request 2")
    assert list(cache._entries) == [b"other"]
    assert cache._bytes == _held(cache)
