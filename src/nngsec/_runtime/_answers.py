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

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, request: FrameRef, responder: str, now: float) -> bool:
        """Record ``responder``'s answer to ``request``; ``False`` if it answered it
        already. Call after every other check passed."""
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
