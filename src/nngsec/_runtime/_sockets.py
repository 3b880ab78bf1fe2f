"""SecureSocket: a pynng socket with a policy attached.

The wrapper holds the pynng socket by composition and exposes no unsecured send path:
everything sent is sealed, everything received is opened and checked, and rejected
frames are dropped, counted by reason and logged (or raised, with ``on_reject="raise"``).

Pattern behaviour, as in pynng:

- pubsub: ``subscribe(topic)`` uses NNG's native prefix filter on the clear topic; the
  wrapper also drops any frame whose topic it did not subscribe to (defence in depth).
- reqrep: ``send`` on a Rep socket replies to the request just received. A request that
  nng re-sends (identical frame, after ``resend_time`` or a reconnect) is never handed to
  the application twice: if it was answered already, the cached reply is sent again;
  if another context is still processing it, this context's copy waits for that reply
  (the copy may carry the client's newest request id, which is the one NNG routes a
  reply for). A client accepts only the reply bound to its outstanding request. A reply it
  rejects has still used NNG's one reply slot of the request, so the client sends the
  identical request frame again (the server answers that from its reply cache, without
  executing it twice); after ``MAX_REJECTED_REPLIES`` rejected replies to one request it
  gives up with :class:`Rejected` (whatever ``on_reject`` says).
- survey: the surveyor collects authenticated responses to its current survey until
  the survey time ends (``survey()``), a respondent's ``send`` answers the last survey.
- ``new_context()`` (reqrep, survey) gives contexts for concurrent requests.

Asynchronous use (asyncio or trio; anyio on either): ``arecv``, ``asend``, ``asurvey`` and
``async for`` honour ``recv_timeout`` and ``send_timeout`` (``pynng.Timeout``), the end of
a survey, and ``close()`` from another task or thread (``pynng.Closed`` in the waiting
task; ``async for`` ends). Cancelling one of them loses nothing: a socket waits on NNG's
notification descriptors and has taken nothing from NNG when it is cancelled; a context
(and a reply, which NNG consumes the request's backtrace for) runs its NNG operation to
completion in the background, and the next ``arecv`` on the context gets what it received.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import pynng
from pynng import ffi, lib

from .._errors import PolicyError, Problem, Rejected, UsageError
from .._patterns import BY_PROTOCOL, RoleSpec
from .._policy._policy import Policy
from ._async_io import Detached, Readiness, readable_now
from ._codec import (
    Accept,
    ChannelCodec,
    ChannelSlot,
    Received,
    Receiver,
    Sender,
    Topic,
    topic_bytes,
)
from ._reply_cache import ReplyCache, RequestEntry, request_key
from ._verify_pool import MAX_VERIFY_THREADS, VerifyPool
from ._wire import FrameRef, parse_frame

__all__ = [
    "DEFAULT_BUFFER",
    "MAX_REJECTED_REPLIES",
    "OnReject",
    "SecureContext",
    "SecureSocket",
    "SocketStats",
    "socket_role",
]

logger = logging.getLogger(__name__)  # under "nngsec", like every logger of nngsec
OnReject = Literal["drop", "raise"]

DEFAULT_BUFFER = 128  # messages; nng's default of 0 or 1 costs several times the throughput
LOG_INTERVAL = 10.0  # seconds between two warnings for the same rejection reason
MAX_REJECTED_REPLIES = 8  # per request; each costs the client one re-send of the request


@dataclass
class SocketStats:
    """What a socket did: frames sent and delivered, and frames rejected by reason."""

    sent: int = 0
    received: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    filtered: int = 0  # frames of topics this subscriber did not subscribe to
    duplicates: int = 0  # re-sent requests absorbed: answered from cache, or still in progress
    resent: int = 0  # requests sent again: NNG no longer held them (a rejected reply, a timeout)


class _RejectLog:
    """One warning per reason per interval, with the count since the last one.

    Each record carries ``extra`` fields for log processors: ``channel``, ``reason``,
    ``count``, and ``claimed_sender``: the identity (or unknown key id) that the clear
    header of the frame that triggered the record names, which nothing has verified.
    """

    def __init__(self, slot: ChannelSlot) -> None:
        self.channel = slot.channel
        self._slot = slot  # the policy in force now names the claimed sender
        self.last: dict[str, float] = {}
        self.pending: Counter[str] = Counter()
        self.lock = threading.Lock()

    def note(self, reason: str, frame: bytes) -> None:
        now = time.monotonic()
        with self.lock:
            self.pending[reason] += 1
            if now - self.last.get(reason, -LOG_INTERVAL) < LOG_INTERVAL:
                return
            count = self.pending.pop(reason)
            self.last[reason] = now
        sender = self.claimed_sender(frame)
        logger.warning(
            "channel %s: rejected %d frame(s) as %s%s%s",
            self.channel,
            count,
            reason,
            "" if count == 1 else f" in the last {LOG_INTERVAL:.0f}s",
            f" (the last one claims to be from {sender})" if sender else "",
            extra={
                "channel": self.channel,
                "reason": reason,
                "count": count,
                "claimed_sender": sender,
            },
        )

    def claimed_sender(self, frame: bytes) -> str | None:
        """Who the frame's clear header says sent it: a name of the policy, or the unknown
        key id; ``None`` when the header does not parse. Unauthenticated: a claim."""
        codec = self._slot.codec
        try:
            header, _ = parse_frame(frame, has_topic=self._slot.pattern.has_topic)
        except Rejected:
            return None
        name = codec.policy.by_key_id.get(header.key_id) if codec is not None else None
        return name if name is not None else f"key id {header.key_id.hex()}"


class _Shared:
    """State shared by a socket and its contexts.

    The socket reads its channel's codec from ``slot`` on every frame: a node switching
    policy replaces it there, and the socket keeps its receiver (replay windows) and its
    sending session across the switch.
    """

    def __init__(self, slot: ChannelSlot, role: RoleSpec, on_reject: OnReject) -> None:
        self.slot = slot
        self.channel = slot.channel
        self.pattern = slot.pattern
        self.identity = slot.identity
        self.role = role
        self.on_reject = on_reject
        self.receiver: Receiver | None = None
        if role.receives_any:
            # Forward frames, replies to what it asked, or both (pair and bus members).
            accept: Accept = "any" if role.sends and role.receives else "forward"
            self.receiver = slot.receiver("reply" if role.asks else accept, role.field)
        self.stats = SocketStats()
        self.log = _RejectLog(slot)
        self.subscriptions: set[bytes] = set()
        # One sending session for the socket and all its contexts: a session per context
        # would spend random session ids at seq 0 under keys that never rotate (pair,
        # single-server reqrep, survey responses), which is what makes nonces collide.
        self.sender: Sender | None = slot.sender() if role.sends_any else None
        self.replies = ReplyCache()
        self.channel_length = len(slot.channel)  # where a request's reference is (ASCII)
        # What every frame asks of the role, answered once.
        self.filters = slot.pattern.has_topic and role.receives  # by subscribed topic
        self.caches = role.answers and slot.pattern.resent  # re-sent requests: reply cache
        self.answers, self.asks = role.answers, role.asks
        self.plain_sender = not (role.answers or role.asks)  # no request to remember


def _take(socket: pynng.Socket, flags: int) -> bytes:
    """The next message of ``socket``, whatever its length. Not ``Socket.recv``: pynng
    0.9's fails on a 0-byte message (``RuntimeError``, and the message is lost), because
    NNG hands a 0-byte message over as a NULL pointer, which ``ffi.unpack`` refuses; here
    it is ``b""``. Two C calls, as ``Socket.recv`` makes (``nng_recv`` allocating, and
    ``nng_free``): each call into pynng's library releases and takes back the GIL, and in
    a process whose other threads want it each is a chance to lose it for a while. (Not
    ``recv_msg``: a ``Message`` object, three locks and a pipe lookup per message; nor
    ``nng_recvmsg`` with ``nng_msg_body``, ``nng_msg_len`` and ``nng_msg_free``: four
    calls.)"""
    data = ffi.new("char **")
    size = ffi.new("size_t *")
    pynng.check_err(lib.nng_recv(socket.socket, data, size, flags | lib.NNG_FLAG_ALLOC))
    length = size[0]
    if not length:
        return b""  # NNG allocated nothing (data is NULL)
    try:
        return ffi.unpack(data[0], length)  # type: ignore[no-any-return]
    finally:
        lib.nng_free(data[0], length)


class _ParkedRequest:
    """A server context holding a copy of a request that another context is processing;
    the reply cache answers it with the first copy's reply (see ``ReplyCache.park``)."""

    def __init__(self, context: pynng.Context) -> None:
        self._context = context

    def send(self, reply: bytes) -> None:
        with contextlib.suppress(pynng.NNGException):  # the client may be gone: nothing to do
            self._context.send(reply)

    def close(self) -> None:
        with contextlib.suppress(pynng.NNGException):
            self._context.close()


class _Endpoint:
    """Send and receive logic common to a socket and its contexts."""

    _io: Any  # the pynng Socket or Context
    _shared: _Shared

    def __init__(self) -> None:
        self._request: Received | None = None  # server/respondent: what send() answers
        self._request_entry: RequestEntry | None = None  # its reply-cache entry
        self._outstanding: FrameRef | None = None  # client/surveyor: what a reply must answer
        self._asked: bytes | None = None  # client: the request frame, to send again
        self._rejected_replies = 0  # client: replies to the outstanding request rejected
        # A context's receive whose task was cancelled: NNG keeps it (cancelling it would
        # abandon the request or survey), and the next arecv takes its outcome.
        self._pending: Detached[pynng.Message] | None = None

    # -- sending ------------------------------------------------------------------------
    def _frame(self, payload: bytes, topic: Topic | None) -> bytes:
        shared = self._shared
        sender = shared.sender
        if sender is not None and shared.plain_sender:
            return sender.seal(payload, topic)  # nothing to remember of the frame
        if sender is None:
            raise UsageError(
                Problem(
                    f"a {shared.role.name} socket does not send on channel {shared.channel!r}",
                    hint="send from a socket of a sending role",
                )
            )
        if shared.role.answers:
            if topic is not None:
                raise UsageError(Problem("replies have no topic", hint="leave topic out"))
            if self._request is None:
                raise UsageError(
                    Problem(
                        f"nothing to answer: a {shared.role.name} socket replies to the "
                        "request it received last",
                        hint="call recv() first",
                    )
                )
            frame = sender.reply(self._request, payload)
            if self._request_entry is not None:
                shared.replies.answered(self._request_entry, frame)
            self._request = None
            return frame
        frame, ref = sender.seal_ref(payload, topic)
        if shared.role.asks:
            self._outstanding = ref
            self._asked = frame if shared.pattern.replies == "one" else None
            self._rejected_replies = 0
            self._pending = None  # NNG cancels a receive still pending for the previous one
            self._asking()
        return frame

    def _asking(self) -> None:
        """A request or survey is about to go out (a surveyor socket notes when it ends)."""

    def send(self, payload: bytes, topic: Topic | None = None) -> None:
        """Seal ``payload`` (with ``topic`` on pubsub) and send it."""
        self._io.send(self._frame(payload, topic))
        self._shared.stats.sent += 1

    async def asend(self, payload: bytes, topic: Topic | None = None) -> None:
        """The asynchronous :meth:`send` (asyncio or trio). ``pynng.Timeout`` after the
        socket's ``send_timeout``. On a context, and for a reply, NNG has the message once
        this is called: cancelling the task does not withdraw it."""
        await self._asend_frame(self._frame(payload, topic))
        self._shared.stats.sent += 1

    async def _asend_frame(self, frame: bytes) -> None:
        # A cancelled aio send loses a reply (NNG took the request's backtrace already)
        # and a request or survey on a context: it runs to completion, detached.
        await Detached(lambda: self._io.asend(frame)).result()

    # -- receiving ----------------------------------------------------------------------
    def _receiver(self) -> Receiver:
        shared = self._shared
        if shared.receiver is None:
            raise UsageError(
                Problem(
                    f"a {shared.role.name} socket does not receive on channel {shared.channel!r}",
                    hint="receive on a socket of a receiving role",
                )
            )
        return shared.receiver

    def _accept(self, frame: bytes) -> Received | None:
        """The message, or ``None`` when the frame was dropped (counted and logged)."""
        shared = self._shared
        receiver = shared.receiver
        if receiver is None:
            receiver = self._receiver()  # raises
        if shared.filters and not any(map(frame.startswith, shared.subscriptions)):
            # A pubsub frame starts with its clear topic (binding), so this is NNG's own
            # prefix rule, applied again here before any cryptography. If the frame is
            # accepted below, these very bytes were authenticated.
            shared.stats.filtered += 1
            return None
        # A server may receive the same request again (nng re-sends it); a respondent
        # answers each survey once and is never asked again with the same frame.
        entry = None
        if shared.caches:
            # Claimed on arrival: a copy another context receives meanwhile is recognised.
            entry, copy = shared.replies.claim(request_key(frame, shared.channel_length), frame)
            if entry is not None and copy:
                self._answer_duplicate(entry)
                return None
        try:
            if shared.asks:
                if self._outstanding is None:
                    raise Rejected(Rejected.REPLAY, "a reply, but no request is outstanding")
                message = receiver.open(frame, reply_to=self._outstanding)
                self._check_context(message)
            else:
                message = receiver.open(frame)
        except Rejected as rejected:
            if entry is not None:
                shared.replies.release(entry)
            self._dropped(rejected, frame)
            return None
        except BaseException:
            # A local failure, not the frame's (the replay journal could not be written):
            # the request was neither recorded nor returned, so its re-sent copy must be
            # taken again rather than dropped as a copy of a request still in progress.
            if entry is not None:
                shared.replies.release(entry)
            raise
        if shared.answers:
            self._request = message
            if entry is None and shared.caches:
                # Its key's entry held other bytes (now proven not the request): it takes
                # that entry's place, so that its copies are answered from the cache.
                entry = shared.replies.adopt(request_key(frame, shared.channel_length), frame)
            self._request_entry = entry
        shared.stats.received += 1
        return message

    def _dropped(self, rejected: Rejected, frame: bytes) -> None:
        """A frame that failed a check: counted and logged (or raised)."""
        shared = self._shared
        shared.stats.rejected[rejected.reason] += 1
        shared.log.note(rejected.reason, frame)
        if self._asked is not None:
            self._rejected_reply(rejected)
        if shared.on_reject == "raise":
            raise rejected

    def _check_context(self, message: Received) -> None:
        """One reply per request. (That a reply answers the outstanding request was checked
        by the codec, before decryption, and that a survey has one response per respondent
        after it: its receiver keeps the answers it accepted.)"""
        if self._asked is not None:
            self._outstanding = self._asked = None

    def _rejected_reply(self, rejected: Rejected) -> None:
        """A reply to the outstanding request was rejected (the client sends the request
        again when NNG then says it holds none); past the bound, give up on the request:
        a peer answering every copy with junk must not keep the client busy for ever."""
        self._rejected_replies += 1
        if self._rejected_replies > MAX_REJECTED_REPLIES:
            self._outstanding = self._asked = None
            raise Rejected(
                rejected.reason,
                f"gave up on the request: {self._rejected_replies} replies to it were rejected",
            ) from rejected

    def _answer_duplicate(self, entry: RequestEntry) -> None:
        """A re-sent request: answer it from the reply cache, or, while the first copy is
        being checked or processed, let it wait for that reply (contexts) or drop it
        (sockets)."""
        reply = entry.reply
        if reply is not None:
            self._io.send(reply)
        else:
            self._park(entry)
        self._shared.stats.duplicates += 1

    def _park(self, entry: RequestEntry) -> None:
        """A copy of a request still being processed (a socket has no second one: it
        receives again only after it answered)."""

    def recv(self) -> Received:
        """The next accepted message (rejected frames are dropped and counted).

        ``pynng.Timeout`` after the socket's ``recv_timeout`` (also when rejected frames
        keep arriving: each is dropped, and the wait does not start over), or when a
        survey is over; ``pynng.Closed`` once the socket is closed; :class:`KeystoreError`
        when a server or respondent cannot write its replay journal (the request is not
        returned, and its re-sent copy is taken again)."""
        self._receiver()
        started = time.monotonic()
        deadline = None  # made when a frame is dropped: most calls return the first one
        while True:
            try:
                frame = self._recv_frame()
            except pynng.BadState as error:
                self._io.send(self._lost_state(error))
                continue
            message = self._accept(frame)
            if message is not None:
                return message
            if deadline is None:
                deadline = _Deadline(self._recv_timeout, started)
            deadline.check()

    def _recv_frame(self) -> bytes:
        pending = self._pending
        if pending is not None:
            if not pending.done:
                raise UsageError(
                    Problem(
                        "an asynchronous receive on this context is still pending",
                        hint="use arecv() on a context whose arecv() was cancelled",
                    )
                )
            self._pending = None
            return bytes(pending.outcome().bytes)
        # A context's messages come as pynng Messages, which hold any body (b"" included).
        return bytes(self._io.recv_msg().bytes)

    async def arecv(self) -> Received:
        """The asynchronous :meth:`recv` (asyncio or trio), with the same timeouts. A
        cancelled ``arecv`` loses nothing: the next one gets the next message."""
        self._receiver()
        deadline = _Deadline(self._recv_timeout)
        while True:
            try:
                frame = await self._arecv_frame(deadline)
            except pynng.BadState as error:
                await self._asend_frame(self._lost_state(error))
                continue
            message = self._accept(frame)
            if message is not None:
                return message
            deadline.check()

    async def _arecv_frame(self, deadline: _Deadline) -> bytes:
        """A context receives with NNG's aio (which applies ``recv_timeout`` and the end of
        a survey), detached so that a cancellation does not abandon the request or survey."""
        pending = self._pending
        if pending is None or not pending.runs_here():
            pending = self._pending = Detached(self._io.arecv_msg)
        try:
            message = await pending.result()  # cancelled: the operation stays pending
        except Exception:
            self._pending = None  # its own error (Closed, Timeout): taken
            raise
        self._pending = None
        return bytes(message.bytes)

    def _lost_state(self, error: pynng.BadState) -> bytes:
        """NNG has nothing to receive for this socket's state. A client's request is no
        longer held by NNG (a rejected reply used its reply slot, a receive timed out): the
        request frame to send again, identical, so that a server that answered it already
        answers from its reply cache. A surveyor's survey is over (as when the wait had run
        into its end: ``pynng.Timeout``). Receiving before asking is a caller's mistake."""
        role = self._shared.role
        if not role.asks:
            raise error
        if self._outstanding is None:
            raise UsageError(
                Problem(
                    f"nothing to receive: a {role.name} socket receives answers to what it sent",
                    hint="send first",
                )
            ) from None
        if self._asked is None:
            raise _timeout("the survey is over") from None
        self._shared.stats.resent += 1
        return self._asked

    def _recv_timeout(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Received]:
        with contextlib.suppress(pynng.Closed):
            while True:
                yield self.recv()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Received:
        """``async for``: the next message, until the socket closes. (An iterator rather
        than an async generator: leaving the loop early needs no ``aclosing``.)"""
        try:
            return await self.arecv()
        except pynng.Closed:
            raise StopAsyncIteration from None

    # -- survey -------------------------------------------------------------------------
    def survey(self, payload: bytes) -> list[Received]:
        """Send a survey and collect the authenticated responses until the survey ends."""
        self.send(payload)
        responses = []
        with contextlib.suppress(pynng.Timeout):
            while True:
                responses.append(self.recv())
        return responses

    async def asurvey(self, payload: bytes) -> list[Received]:
        """The asynchronous :meth:`survey`: returns when the survey ends."""
        await self.asend(payload)
        responses = []
        with contextlib.suppress(pynng.Timeout):
            while True:
                responses.append(await self.arecv())
        return responses

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- information ----------------------------------------------------------------------
    @property
    def stats(self) -> SocketStats:
        return self._shared.stats

    @property
    def channel(self) -> str:
        return self._shared.channel

    @property
    def role(self) -> str:
        """The socket's role on its channel, as a topology names it (``subscriber``)."""
        return self._shared.role.name


class SecureContext(_Endpoint):
    """A context of a secured Req0/Rep0/Surveyor0/Respondent0 socket (pynng ``Context``)."""

    def __init__(self, socket: SecureSocket) -> None:
        super().__init__()
        self._socket = socket
        self._shared = socket._shared
        self._io = socket._socket.new_context()

    def _recv_timeout(self) -> int:
        # NNG gives a context the socket's timeouts when it is created.
        return self._socket.recv_timeout

    def _park(self, entry: RequestEntry) -> None:
        # Another context is processing the first copy, and this copy may carry the client's
        # newest request id (a client re-sends after a rejected reply): its NNG context
        # waits for the reply, and this context goes on with a fresh one.
        if self._shared.replies.park(entry, _ParkedRequest(self._io)):
            self._io = self._socket._socket.new_context()

    def close(self) -> None:
        with contextlib.suppress(pynng.Closed):
            self._io.close()


class SecureSocket(_Endpoint):
    """A pynng socket attached to a channel of a policy (see :meth:`nngsec.Node.attach`).

    It needs the socket, the channel's codec (built by the node for its identity, or the
    node's slot of the channel, which follows the node's policy switches) and the role the
    socket's protocol plays (:func:`socket_role`, which the policy must grant).
    """

    def __init__(
        self,
        socket: pynng.Socket,
        codec: ChannelCodec | ChannelSlot,
        role: RoleSpec,
        *,
        on_reject: OnReject = "drop",
        buffers: int | None = DEFAULT_BUFFER,
        verify_threads: int = 0,
    ) -> None:
        super().__init__()
        slot = codec if isinstance(codec, ChannelSlot) else ChannelSlot(codec)
        codec = slot.current()
        if socket_role(codec.policy, codec.channel, codec.identity, socket) is not role:
            raise UsageError(Problem(f"socket {type(socket).__name__} is not a {role.name}"))
        if on_reject not in ("drop", "raise"):
            raise UsageError(
                Problem(f"on_reject is 'drop' or 'raise', got {on_reject!r}", field="on_reject")
            )
        self._socket = socket
        self._io = socket
        self._shared = _Shared(slot, role, on_reject)
        self._recv_fd: int | None = None
        self._send_fd: int | None = None
        self._readiness = Readiness()
        # A surveyor socket: when its survey ends (time.monotonic()), for arecv's wait.
        self._survey_ends: float | None = None
        _tune(socket, role, codec.max_frame_size, buffers)
        self._verifying = self._verify_pool(verify_threads)

    def _verify_pool(self, threads: int) -> VerifyPool | None:
        if type(threads) is not int or not 0 <= threads <= MAX_VERIFY_THREADS:
            raise UsageError(
                Problem(
                    f"verify_threads is from 0 to {MAX_VERIFY_THREADS}, got {threads!r}",
                    field="verify_threads",
                )
            )
        shared = self._shared
        if threads == 0:
            return None
        if shared.receiver is None or shared.answers or shared.asks:
            raise UsageError(
                Problem(
                    f"verify_threads is for sockets that only take messages in (subscribers, "
                    f"pullers, pair and bus members), not a {shared.role.name} socket",
                    field="verify_threads",
                    hint="leave verify_threads out",
                )
            )
        return VerifyPool(shared.receiver, threads)

    # -- receiving on the verify pool -----------------------------------------------------
    def recv(self) -> Received:
        """The next accepted message (see :meth:`_Endpoint.recv`). With ``verify_threads``
        the frames NNG holds are opened side by side, and delivered in their order."""
        pool = self._verifying
        if pool is None:
            return super().recv()
        shared = self._shared
        started = time.monotonic()
        deadline = None
        while True:
            frames = [] if len(pool) else self._wanted([self._recv_frame()])  # waits
            # and whatever else NNG holds now, once the pool is half empty: the workers
            # get runs of frames, and are woken (which is costly) once per run
            while pool.hungry and len(frames) < pool.room:
                try:
                    frames.append(_take(self._socket, lib.NNG_FLAG_NONBLOCK))
                except pynng.TryAgain:
                    break
                frames = self._wanted(frames)
            if frames:
                pool.submit(frames)
            if len(pool):
                frame, outcome = pool.next()
                if isinstance(outcome, Rejected):
                    self._dropped(outcome, frame)
                else:
                    shared.stats.received += 1
                    return outcome
            if deadline is None:
                deadline = _Deadline(self._recv_timeout, started)
            deadline.check()

    def _wanted(self, frames: list[bytes]) -> list[bytes]:
        """``frames`` without the last one if the socket did not subscribe to its topic."""
        shared = self._shared
        if shared.filters and not any(map(frames[-1].startswith, shared.subscriptions)):
            shared.stats.filtered += 1
            frames.pop()
        return frames

    async def arecv(self) -> Received:
        # The verify pool serves recv() and iteration; what it took ahead comes first.
        pool = self._verifying
        while pool is not None and len(pool):
            frame, outcome = pool.next()
            if not isinstance(outcome, Rejected):
                self._shared.stats.received += 1
                return outcome
            self._dropped(outcome, frame)
        return await super().arecv()

    # -- pubsub -------------------------------------------------------------------------
    def subscribe(self, topic: Topic) -> None:
        """Receive frames whose clear topic starts with ``topic`` (NNG's own filter)."""
        self._require_topics("subscribe")
        raw = topic_bytes(topic)
        self._socket.subscribe(raw)
        self._shared.subscriptions.add(raw)

    def unsubscribe(self, topic: Topic) -> None:
        self._require_topics("unsubscribe")
        raw = topic_bytes(topic)
        self._socket.unsubscribe(raw)
        self._shared.subscriptions.discard(raw)

    def _require_topics(self, what: str) -> None:
        shared = self._shared
        if not (shared.pattern.has_topic and shared.role.receives):
            raise UsageError(
                Problem(
                    f"only a socket receiving a channel with topics can {what}; this is a "
                    f"{shared.role.name} socket on a {shared.pattern.name} channel"
                )
            )

    # -- contexts -------------------------------------------------------------------------
    def new_context(self) -> SecureContext:
        """A context for concurrent requests (reqrep and survey sockets)."""
        pattern = self._shared.pattern
        if not pattern.has_replies:
            raise UsageError(
                Problem(f"contexts exist for patterns with replies, not for {pattern.name} sockets")
            )
        return SecureContext(self)

    # -- fast asynchronous paths --------------------------------------------------------
    @property
    def _surveys(self) -> bool:
        return self._shared.role.asks and self._shared.pattern.replies == "each"

    def _asking(self) -> None:
        if self._surveys:
            survey_time: int = self._socket.survey_time
            self._survey_ends = time.monotonic() + survey_time / 1000 if survey_time >= 0 else None

    async def _arecv_frame(self, deadline: _Deadline) -> bytes:
        # pynng's arecv costs an aio round trip per message (~15x recv). Waiting for the
        # socket's notification descriptor and then receiving without blocking is far
        # faster, and a cancelled wait has taken nothing from NNG.
        sock = self._socket
        if self._recv_fd is None:
            self._recv_fd = sock.recv_fd
        fd = self._recv_fd
        # On Surveyor0 a non-blocking receive that finds nothing ends the survey: wait
        # first, and for no longer than the survey lasts. (Before any survey, NNG's
        # BadState says there is nothing to wait for.)
        surveys = self._surveys and self._outstanding is not None
        ends = self._survey_ends if surveys else None
        while True:
            if not surveys or readable_now(fd):
                try:
                    return _take(sock, lib.NNG_FLAG_NONBLOCK)
                except pynng.TryAgain:
                    pass
            if not await self._readiness.wait(fd, deadline.at(ends)):
                raise _timeout("")

    async def _asend_frame(self, frame: bytes) -> None:
        role = self._shared.role
        if role.answers:
            # A reply: a non-blocking send finds Respondent0 never ready, and makes Rep0
            # drop the reply when its pipe is busy (NNG took the backtrace already).
            await super()._asend_frame(frame)
            return
        sock = self._socket
        deadline = _Deadline(lambda: int(sock.send_timeout))
        while True:
            try:
                sock.send(frame, block=False)
                return
            except pynng.TryAgain:
                if self._send_fd is None:
                    self._send_fd = sock.send_fd
                if not await self._readiness.wait(self._send_fd, deadline.at()):
                    raise _timeout("") from None

    # -- passthroughs and lifetime --------------------------------------------------------
    def dial(self, address: str, *, block: bool | None = None) -> None:
        self._socket.dial(address, block=block)

    def listen(self, address: str) -> None:
        self._socket.listen(address)

    @property
    def pipes(self) -> list[Any]:
        return list(self._socket.pipes)

    @property
    def recv_timeout(self) -> int:
        """The socket's receive timeout in ms (-1: none), as in pynng."""
        value: int = self._socket.recv_timeout
        return value

    @recv_timeout.setter
    def recv_timeout(self, milliseconds: int) -> None:
        self._socket.recv_timeout = milliseconds

    def _recv_frame(self) -> bytes:
        return _take(self._socket, 0)  # blocks, within recv_timeout

    def _recv_timeout(self) -> int:
        return self.recv_timeout

    def close(self) -> None:
        """Close the socket; tasks waiting in ``arecv``, ``asend`` or ``async for`` wake
        (``pynng.Closed``; iteration ends)."""
        self._readiness.close()  # before NNG closes the descriptors they wait on
        self._shared.replies.close_parked()
        self._socket.close()
        if self._verifying is not None:
            self._verifying.close()  # before the receiver's final state
        if self._shared.receiver is not None:
            self._shared.receiver.close()  # the final replay state; the slot is given back

    def __repr__(self) -> str:
        shared = self._shared
        return (
            f"<SecureSocket {type(self._socket).__name__} channel={shared.channel!r} "
            f"role={shared.role.name} identity={shared.identity!r}>"
        )


class _Deadline:
    """When a receive (or send) gives up: its socket's timeout after the call began. The
    option is read only if the call has to wait, which the fast path rarely does."""

    __slots__ = ("_at", "_known", "_start", "_timeout")

    def __init__(self, timeout: Callable[[], int], start: float | None = None) -> None:
        self._start = time.monotonic() if start is None else start
        self._timeout = timeout  # milliseconds; negative: none
        self._known = False
        self._at: float | None = None

    def at(self, also: float | None = None) -> float | None:
        """The deadline (``time.monotonic()``), or the earlier of it and ``also``."""
        if not self._known:
            milliseconds = self._timeout()
            self._at = self._start + milliseconds / 1000 if milliseconds >= 0 else None
            self._known = True
        if self._at is None or also is None:
            return also if self._at is None else self._at
        return min(self._at, also)

    def check(self) -> None:
        """``pynng.Timeout`` once the deadline has passed."""
        at = self.at()
        if at is not None and time.monotonic() >= at:
            raise _timeout("")


def _timeout(why: str) -> pynng.Timeout:
    return pynng.Timeout(f"Timed out{': ' + why if why else ''}", pynng.lib.NNG_ETIMEDOUT)


def socket_role(policy: Policy, channel: str, identity: str, socket: Any) -> RoleSpec:
    """The role ``socket`` plays on ``channel``, or a :class:`PolicyError` saying why
    ``identity`` cannot attach it there (raw socket, wrong pattern, role not granted)."""
    if not isinstance(socket, pynng.Socket):
        raise TypeError(f"attach() takes a pynng socket, got {type(socket).__name__}")
    name = type(socket).__name__
    pattern = policy.channels[channel].pattern_spec
    where = str(policy.path) if policy.path else None
    if socket.raw:
        raise PolicyError(
            Problem(
                f"socket {name} is raw; raw sockets bypass the protocol and cannot be secured",
                where,
                field=f"channels.{channel}",
                hint="use nngsec.relay for devices; attach cooked sockets",
            )
        )
    found = BY_PROTOCOL.get(socket.protocol)
    if found is None or found[0] is not pattern:
        kind = found[0].name if found is not None else "?"
        raise PolicyError(
            Problem(
                f"socket {name} ({kind}) does not fit channel {channel!r}, whose pattern is "
                f"{pattern.name}",
                where,
                field=f"channels.{channel}.pattern",
                hint=f"use {pattern.socket_names} for this channel",
            )
        )
    role = found[1]
    if identity not in policy.members(channel, role.field):
        raise PolicyError(
            Problem(
                f"socket {name} acts as {role.name} on channel {channel!r}, but identity "
                f"{identity!r} is not listed in its {role.field}",
                where,
                field=f"channels.{channel}.{role.field}",
                hint=f"add {identity!r} to {role.field} in the policy, or use another socket",
            )
        )
    return role


def _tune(socket: Any, role: RoleSpec, max_frame: int, buffers: int | None) -> None:
    """Buffers and the receive size limit. nng drops larger messages before we see them,
    which caps what a peer can make us allocate; pynng's setter fails silently, so the
    value is read back."""
    if buffers is not None:
        if role.receives_any and socket.recv_buffer_size < buffers:
            socket.recv_buffer_size = buffers
        if role.sends_any and socket.send_buffer_size < buffers:
            socket.send_buffer_size = buffers
    if role.receives_any:
        socket.recv_max_size = max_frame
        if socket.recv_max_size != max_frame:
            raise PolicyError(
                Problem(
                    f"could not set the socket's recv_max_size to {max_frame} "
                    f"(it reads {socket.recv_max_size})",
                    hint="attach the socket before dialing or listening",
                )
            )
