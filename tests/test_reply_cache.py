"""A Rep server's reply cache (``_runtime/_reply_cache.py``): found by the request's
reference and tag, matching only a byte-identical copy of a request, at one lock
operation per request and with no hash of the frame. A request is claimed when it arrives
(so a copy received meanwhile on another context is recognised, even before the first
copy passed its checks), copies of a request in progress wait for its reply, and nothing
waits for ever."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import pynng
import pytest

from nngsec._runtime._reply_cache import ReplyCache, RequestEntry, request_key
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
def _found(cache: ReplyCache, key: bytes, frame: bytes) -> tuple[bool, bytes | None]:
    """(a copy of a request held?, its reply): what a copy arriving now would get. Not a
    lookup (the cache has none): a frame not held is claimed, as on arrival, and released."""
    entry, copy = cache.claim(key, frame)
    if entry is None:
        return False, None
    if not copy:
        cache.release(entry)
        return False, None
    return True, entry.reply


def _started(cache: ReplyCache, key: bytes, frame: bytes) -> RequestEntry:
    entry, copy = cache.claim(key, frame)
    assert entry is not None and not copy
    return entry


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
        entry = _started(cache, key, bytes(1000) + key)
        cache.answered(entry, bytes(500))
        assert cache._bytes == _held(cache) <= 10_000 + 500  # a reply counted at the next start
    assert len(cache._entries) < 10
    newest = b"k39"
    assert _found(cache, newest, bytes(1000) + newest) == (True, bytes(500))
    assert _found(cache, b"k0", bytes(1000) + b"k0") == (False, None)  # evicted


def test_a_reply_to_a_forgotten_request_is_never_counted(monkeypatch):
    monkeypatch.setattr(ReplyCache, "MAX_ENTRIES", 1)
    cache = ReplyCache()
    first = _started(cache, b"a", b"request a")
    _started(cache, b"b", b"request b")  # evicts a, still unanswered
    cache.answered(first, b"late reply")  # the server answers it anyway
    _started(cache, b"c", b"request c")
    assert cache._bytes == _held(cache) == len(b"request c")


def test_entries_expire(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache = ReplyCache()
    entry = _started(cache, b"k", b"request")
    assert _found(cache, b"k", b"request") == (True, None)  # in progress: dropped
    cache.answered(entry, b"reply")
    assert _found(cache, b"k", b"request") == (True, b"reply")
    now[0] += ReplyCache.RETENTION + 1
    assert _found(cache, b"k", b"request") == (False, None)
    _started(cache, b"other", b"request 2")
    assert list(cache._entries) == [b"other"]
    assert cache._bytes == _held(cache)


# -- claimed on arrival, parked copies (sec-sockets) ------------------------------------
class Waiting:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def send(self, reply: bytes) -> None:
        self.sent.append(reply)

    def close(self) -> None:
        self.closed = True


def test_the_first_copy_claims_the_request_before_it_is_checked():
    cache = ReplyCache()
    first, copy = cache.claim(b"key", b"request")  # new: goes on to be checked
    assert first is not None and not copy
    again, copy = cache.claim(b"key", b"request")  # a copy meanwhile: in progress
    assert again is first and copy and first.reply is None
    cache.release(first)  # the first copy failed its checks
    new, copy = cache.claim(b"key", b"request")
    assert new is not None and new is not first and not copy


def test_other_bytes_under_a_claimed_key_claim_nothing_and_block_nothing():
    """Someone who copied a request's reference and tag onto other bytes, ahead of the
    request: the changed frame claims the key; the true request, arriving next, is not a
    copy of it and goes on to be checked, and once accepted takes the entry's place."""
    cache = ReplyCache()
    changed = _started(cache, b"key", b"changed request")
    assert cache.claim(b"key", b"true request") == (None, False)  # not a copy: checked
    adopted = cache.adopt(b"key", b"true request")  # it passed every check
    cache.release(changed)  # the changed one failed its checks: it removes nothing else
    cache.answered(adopted, b"reply")
    assert _found(cache, b"key", b"true request") == (True, b"reply")
    assert _found(cache, b"key", b"changed request") == (False, None)


def test_parked_copies_get_the_reply_once_it_exists():
    cache = ReplyCache()
    entry = _started(cache, b"key", b"request")
    copies = [Waiting(), Waiting()]
    assert all(cache.park(entry, copy) for copy in copies)
    cache.answered(entry, b"reply")
    assert [(c.sent, c.closed) for c in copies] == [([b"reply"], True)] * 2
    assert _found(cache, b"key", b"request") == (True, b"reply")  # later copies: cached


def test_a_copy_parked_as_the_reply_is_stored_is_answered_once():
    """answered() stores the reply without the lock: a copy parking at that moment is
    answered by park() itself (it sees the reply) or by answered() (it sees the copy)."""
    cache = ReplyCache()
    entry = _started(cache, b"key", b"request")
    entry.reply = b"reply"  # answered() has stored the reply, not yet looked for copies
    late = Waiting()
    assert cache.park(entry, late)
    assert (late.sent, late.closed, entry.parked) == ([b"reply"], True, [])
    cache.answered(entry, b"reply")
    assert late.sent == [b"reply"]  # not twice


def test_nothing_waits_for_a_request_that_was_rejected_or_for_a_closed_socket():
    cache = ReplyCache()
    gone = _started(cache, b"gone", b"request")
    cache.release(gone)
    assert not cache.park(gone, Waiting())  # not in progress: nothing to wait for
    rejected_entry = _started(cache, b"rejected", b"request 1")
    open_entry = _started(cache, b"open", b"request 2")
    rejected, pending = Waiting(), Waiting()
    cache.park(rejected_entry, rejected)
    cache.park(open_entry, pending)
    cache.release(rejected_entry)
    assert (rejected.sent, rejected.closed) == ([], True)
    cache.close_parked()
    assert (pending.sent, pending.closed) == ([], True)


def test_at_most_max_parked_copies_wait():
    cache = ReplyCache()
    entry = _started(cache, b"key", b"request")
    kept = [cache.park(entry, Waiting()) for _ in range(ReplyCache.MAX_PARKED + 3)]
    assert kept.count(True) == ReplyCache.MAX_PARKED
