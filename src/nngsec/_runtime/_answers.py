"""One answer per request and responder: the replies and survey responses a receiver
accepted (see :class:`AnswerLedger`)."""

from __future__ import annotations

from collections import OrderedDict

from ._wire import FrameRef

__all__ = ["AnswerLedger"]


class AnswerLedger:
    """Who answered which request (reqrep) or survey.

    A survey has one response from each respondent, and a server answers a request once.
    A second, different answer is a frame its sender made anew (an identical copy is a
    replay of its own window already), so only an answering identity can make one, e.g.
    to vote twice in a survey: sockets refuse it, and so does the socket-free codec
    (``Node.open``). (A client socket also takes only one reply per request, from any
    server; a socket-free client may have sent its request to several.)

    Memory is bounded: an answer is remembered for ``retention`` seconds after it was
    accepted (the channel's ``max_age`` plus the clock skew allowance, after which a second
    answer made at the same time as the first is stale anyway), and at most
    ``max_entries`` answers are, the oldest forgotten first.
    """

    MAX_ENTRIES = 65_536

    def __init__(self, retention: float, *, max_entries: int = MAX_ENTRIES) -> None:
        self.retention = retention
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[FrameRef, str], float] = OrderedDict()
        self._strict: dict[str, OrderedDict[FrameRef, float]] = {}

    def __len__(self) -> int:
        return len(self._seen) + sum(map(len, self._strict.values()))

    def admit(self, request: FrameRef, responder: str, now: float, *, strict: bool = False) -> bool:
        """Record ``responder``'s answer to ``request``; ``False`` if it answered it
        already. Call after every other check passed.

        ``strict``: for a receiver that does not know which requests are outstanding (the
        socket-free codec, ``Node.open``). Security: there an answering identity can answer
        requests that were never sent (any reference naming this identity's key id), and
        with the bound below forgetting the oldest answer first, 65,536 such answers made
        the ledger forget its answer to a real survey: it voted twice (measured: 10 s).
        So strictly, each responder has its own ``max_entries`` answers within
        ``retention``, and one more is refused rather than an answer forgotten: a
        responder flooding the ledger only refuses its own answers (memory: at most
        ``max_entries`` per answering identity of the policy). A socket checks that an
        answer is to its outstanding request before this, so it cannot be flooded."""
        if strict:
            return self._admit_strict(request, responder, now)
        seen = self._seen
        while seen and (
            len(seen) >= self.max_entries or now - next(iter(seen.values())) > self.retention
        ):
            seen.popitem(last=False)
        key = (request, responder)
        if key in seen:
            return False
        seen[key] = now
        return True

    def _admit_strict(self, request: FrameRef, responder: str, now: float) -> bool:
        mine = self._strict.setdefault(responder, OrderedDict())
        while mine and now - next(iter(mine.values())) > self.retention:
            mine.popitem(last=False)
        if request in mine or len(mine) >= self.max_entries:
            return False  # answered already, or more answers than can be remembered
        mine[request] = now
        return True
