"""The reply cache of a server: a request is claimed when it arrives (so a copy received
meanwhile on another context is recognised, even before the first copy passed its
checks), copies of a request in progress wait for its reply, and nothing waits for ever."""

from __future__ import annotations

from nngsec._runtime._reply_cache import ReplyCache


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
    assert cache.claim(b"request") == (False, None)  # new: goes on to be checked
    assert cache.claim(b"request") == (True, None)  # a copy meanwhile: in progress
    cache.release(b"request")  # the first copy failed its checks
    assert cache.claim(b"request") == (False, None)


def test_parked_copies_get_the_reply_once_it_exists():
    cache = ReplyCache()
    cache.claim(b"request")
    copies = [Waiting(), Waiting()]
    assert all(cache.park(b"request", copy) for copy in copies)
    cache.answered(b"request", b"reply")
    assert [(c.sent, c.closed) for c in copies] == [([b"reply"], True)] * 2
    assert cache.claim(b"request") == (True, b"reply")  # later copies: from the cache


def test_nothing_waits_for_a_request_that_was_rejected_or_for_a_closed_socket():
    cache = ReplyCache()
    assert not cache.park(b"unknown", Waiting())  # not in progress: nothing to wait for
    cache.claim(b"rejected")
    cache.claim(b"open")
    rejected, pending = Waiting(), Waiting()
    cache.park(b"rejected", rejected)
    cache.park(b"open", pending)
    cache.release(b"rejected")
    assert (rejected.sent, rejected.closed) == ([], True)
    cache.close_parked()
    assert (pending.sent, pending.closed) == ([], True)


def test_at_most_max_parked_copies_wait():
    cache = ReplyCache()
    cache.claim(b"request")
    kept = [cache.park(b"request", Waiting()) for _ in range(ReplyCache.MAX_PARKED + 3)]
    assert kept.count(True) == ReplyCache.MAX_PARKED
