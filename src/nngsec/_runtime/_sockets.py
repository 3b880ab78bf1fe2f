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
  if it is still being processed, the duplicate is dropped and the pending reply answers
  it. A client accepts only the reply bound to its outstanding request.
- survey: the surveyor collects authenticated responses to its current survey until
  the survey time ends (``survey()``), a respondent's ``send`` answers the last survey.
- ``new_context()`` (reqrep, survey) gives contexts for concurrent requests.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import pynng

from .._errors import PolicyError, Problem, Rejected, UsageError
from .._patterns import BY_PROTOCOL, RoleSpec
from .._policy._policy import Policy
from ._async_io import wait_readable
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
from ._wire import FrameRef, parse_frame

__all__ = [
    "DEFAULT_BUFFER",
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


@dataclass
class SocketStats:
    """What a socket did: frames sent and delivered, and frames rejected by reason."""

    sent: int = 0
    received: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    filtered: int = 0  # frames of topics this subscriber did not subscribe to
    duplicates: int = 0  # re-sent requests absorbed: answered from cache, or still in progress


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


class _Endpoint:
    """Send and receive logic common to a socket and its contexts."""

    _io: Any  # the pynng Socket or Context
    _shared: _Shared

    def __init__(self) -> None:
        self._request: Received | None = None  # server/respondent: what send() answers
        self._request_entry: RequestEntry | None = None  # its reply-cache entry
        self._outstanding: FrameRef | None = None  # client/surveyor: what a reply must answer
        self._responders: set[str] = set()  # surveyor: who answered the current survey

    # -- sending ------------------------------------------------------------------------
    def _frame(self, payload: bytes, topic: Topic | None) -> bytes:
        shared = self._shared
        sender = shared.sender
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
            self._responders = set()
        return frame

    def send(self, payload: bytes, topic: Topic | None = None) -> None:
        """Seal ``payload`` (with ``topic`` on pubsub) and send it."""
        self._io.send(self._frame(payload, topic))
        self._shared.stats.sent += 1

    async def asend(self, payload: bytes, topic: Topic | None = None) -> None:
        """The asynchronous :meth:`send` (asyncio or trio)."""
        await self._io.asend(self._frame(payload, topic))
        self._shared.stats.sent += 1

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
        receiver = self._receiver()
        if (
            shared.pattern.has_topic
            and shared.role.receives
            and not any(map(frame.startswith, shared.subscriptions))
        ):
            # A pubsub frame starts with its clear topic (binding), so this is NNG's own
            # prefix rule, applied again here before any cryptography. If the frame is
            # accepted below, these very bytes were authenticated.
            shared.stats.filtered += 1
            return None
        # A server may receive the same request again (nng re-sends it); a respondent
        # answers each survey once and is never asked again with the same frame.
        key = None
        if shared.role.answers and shared.pattern.resent:
            key = request_key(frame, shared.channel_length)
            if self._answer_duplicate(key, frame):
                return None
        try:
            if shared.role.asks and self._outstanding is None:
                raise Rejected(Rejected.REPLAY, "a reply, but no request is outstanding")
            message = receiver.open(frame, reply_to=self._outstanding)
            self._check_context(message)
        except Rejected as rejected:
            shared.stats.rejected[rejected.reason] += 1
            shared.log.note(rejected.reason, frame)
            if shared.on_reject == "raise":
                raise
            return None
        if shared.role.answers:
            self._request = message
            self._request_entry = shared.replies.started(key, frame) if key is not None else None
        shared.stats.received += 1
        return message

    def _check_context(self, message: Received) -> None:
        """One reply per request; one response per respondent and survey. (That the reply
        answers the outstanding request was checked by the codec, before decryption.)"""
        shared = self._shared
        if not shared.role.asks:
            return
        if shared.pattern.replies == "one":
            self._outstanding = None
        else:  # one answer from each
            if message.sender in self._responders:
                raise Rejected(Rejected.REPLAY, f"a second response from {message.sender}")
            self._responders.add(message.sender)

    def _answer_duplicate(self, key: bytes, frame: bytes) -> bool:
        """A re-sent request: answer it from the reply cache, or drop it while the first copy
        is being processed (its reply reaches the client: same requester, same request id)."""
        known, reply = self._shared.replies.lookup(key, frame)
        if not known:
            return False
        if reply is not None:
            self._io.send(reply)
        self._shared.stats.duplicates += 1
        return True

    def recv(self) -> Received:
        """The next accepted message (rejected frames are dropped and counted)."""
        self._receiver()
        while True:
            message = self._accept(self._io.recv())
            if message is not None:
                return message

    async def arecv(self) -> Received:
        """The asynchronous :meth:`recv` (asyncio or trio)."""
        self._receiver()
        while True:
            message = self._accept(await self._raw_arecv())
            if message is not None:
                return message

    async def _raw_arecv(self) -> bytes:
        data: bytes = await self._io.arecv()
        return data

    def __iter__(self) -> Iterator[Received]:
        with contextlib.suppress(pynng.Closed):
            while True:
                yield self.recv()

    def __aiter__(self) -> AsyncIterator[Received]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Received]:
        with contextlib.suppress(pynng.Closed):
            while True:
                yield await self.arecv()

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
        self._shared = socket._shared
        self._io = socket._socket.new_context()

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
        _tune(socket, role, codec.max_frame_size, buffers)

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
    async def _raw_arecv(self) -> bytes:
        # pynng's arecv costs an aio round trip per message (~15x recv). Waiting for the
        # socket's notification descriptor and then receiving without blocking is far faster.
        if self._recv_fd is None:
            self._recv_fd = self._socket.recv_fd
        while True:
            try:
                data: bytes = self._socket.recv(block=False)
                return data
            except pynng.TryAgain:
                await wait_readable(self._recv_fd)

    async def asend(self, payload: bytes, topic: Topic | None = None) -> None:
        frame = self._frame(payload, topic)
        while True:
            try:
                self._socket.send(frame, block=False)
                break
            except pynng.TryAgain:
                if self._send_fd is None:
                    self._send_fd = self._socket.send_fd
                await wait_readable(self._send_fd)
        self._shared.stats.sent += 1

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

    def close(self) -> None:
        self._socket.close()
        if self._shared.receiver is not None:
            self._shared.receiver.close()  # the final replay state; the slot is given back

    def __repr__(self) -> str:
        shared = self._shared
        return (
            f"<SecureSocket {type(self._socket).__name__} channel={shared.channel!r} "
            f"role={shared.role.name} identity={shared.identity!r}>"
        )


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
