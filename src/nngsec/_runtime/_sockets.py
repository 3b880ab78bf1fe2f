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
import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import pynng

from .._errors import PolicyError, Problem, Rejected
from .._policy._model import ROLES
from ._async_io import wait_readable
from ._codec import Accept, Received, Receiver, Sender, Topic, topic_bytes
from ._reply_cache import ReplyCache
from ._wire import FrameRef

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["OnReject", "SecureContext", "SecureSocket", "SocketStats", "attach"]

logger = logging.getLogger("nngsec")
OnReject = Literal["drop", "raise"]

# Protocol number -> (pattern, role). From nng's protocol ids (DESIGN.md section 9).
PROTOCOLS: dict[int, tuple[str, str]] = {
    16: ("pair", "member"),
    17: ("pair", "member"),
    112: ("bus", "member"),
    32: ("pubsub", "publisher"),
    33: ("pubsub", "subscriber"),
    80: ("pipeline", "pusher"),
    81: ("pipeline", "puller"),
    48: ("reqrep", "client"),
    49: ("reqrep", "server"),
    98: ("survey", "surveyor"),
    99: ("survey", "respondent"),
}
SOCKETS_FOR: dict[str, str] = {
    "pair": "Pair0 or Pair1",
    "bus": "Bus0",
    "pubsub": "Pub0 or Sub0",
    "pipeline": "Push0 or Pull0",
    "reqrep": "Req0 or Rep0",
    "survey": "Surveyor0 or Respondent0",
}
SENDING_ROLES = {"member", "publisher", "pusher", "client", "surveyor", "server", "respondent"}
RECEIVING_ROLES = {"member", "subscriber", "puller", "client", "surveyor", "server", "respondent"}
REPLYING_ROLES = {"server", "respondent"}
ASKING_ROLES = {"client", "surveyor"}

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
    """One warning per reason per interval, with the count since the last one."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.last: dict[str, float] = {}
        self.pending: Counter[str] = Counter()
        self.lock = threading.Lock()

    def note(self, reason: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.pending[reason] += 1
            if now - self.last.get(reason, -LOG_INTERVAL) < LOG_INTERVAL:
                return
            count = self.pending.pop(reason)
            self.last[reason] = now
        logger.warning(
            "channel %s: rejected %d frame(s) as %s%s",
            self.channel,
            count,
            reason,
            "" if count == 1 else f" in the last {LOG_INTERVAL:.0f}s",
        )


class _Shared:
    """State shared by a socket and its contexts."""

    def __init__(self, node: Node, channel: str, role: str, on_reject: OnReject) -> None:
        self.node = node
        self.channel = channel
        self.role = role
        self.on_reject = on_reject
        self.codec = node.codec(channel)
        self.receiver: Receiver | None = None
        if role in RECEIVING_ROLES:
            accept: Accept = "reply" if role in ASKING_ROLES else "forward"
            self.receiver = self.codec.receiver("any" if role == "member" else accept)
        self.stats = SocketStats()
        self.log = _RejectLog(channel)
        self.subscriptions: set[bytes] = set()
        # One sending session for the socket and all its contexts: a session per context
        # would spend random session ids at seq 0 under keys that never rotate (pair,
        # single-server reqrep, survey responses), which is what makes nonces collide.
        self.sender: Sender | None = self.codec.sender() if role in SENDING_ROLES else None
        self.replies = ReplyCache()


def _digest(frame: bytes) -> bytes:
    return hashlib.blake2b(frame, digest_size=16).digest()


class _Endpoint:
    """Send and receive logic common to a socket and its contexts."""

    _io: Any  # the pynng Socket or Context
    _shared: _Shared

    def __init__(self) -> None:
        self._request: Received | None = None  # server/respondent: what send() answers
        self._request_digest: bytes | None = None
        self._outstanding: FrameRef | None = None  # client/surveyor: what a reply must answer
        self._responders: set[str] = set()  # surveyor: who answered the current survey

    # -- sending ------------------------------------------------------------------------
    def _frame(self, payload: bytes, topic: Topic | None) -> bytes:
        shared = self._shared
        sender = shared.sender
        if sender is None:
            raise shared.codec._role_error(f"send (this is a {shared.role} socket)")
        if shared.role in REPLYING_ROLES:
            if topic is not None:
                raise ValueError("replies have no topic")
            if self._request is None:
                raise PolicyError(
                    Problem(
                        f"nothing to answer: a {shared.role} socket replies to the request it "
                        "received last",
                        hint="call recv() first",
                    )
                )
            frame = sender.reply(self._request, payload)
            if self._request_digest is not None:
                shared.replies.answered(self._request_digest, frame)
            self._request = None
            return frame
        frame, ref = sender.seal_ref(payload, topic)
        if shared.role in ASKING_ROLES:
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
        receiver = self._shared.receiver
        if receiver is None:
            raise self._shared.codec._role_error(f"receive (this is a {self._shared.role} socket)")
        return receiver

    def _accept(self, frame: bytes) -> Received | None:
        """The message, or ``None`` when the frame was dropped (counted and logged)."""
        shared = self._shared
        receiver = self._receiver()
        if shared.role == "subscriber" and not any(map(frame.startswith, shared.subscriptions)):
            # A pubsub frame starts with its clear topic (binding), so this is NNG's own
            # prefix rule, applied again here before any cryptography. If the frame is
            # accepted below, these very bytes were authenticated.
            shared.stats.filtered += 1
            return None
        digest = _digest(frame) if shared.role == "server" else None
        if digest is not None and self._answer_duplicate(digest):
            return None
        try:
            if shared.role in ASKING_ROLES and self._outstanding is None:
                raise Rejected(Rejected.REPLAY, "a reply, but no request is outstanding")
            message = receiver.open(frame, reply_to=self._outstanding)
            self._check_context(message)
        except Rejected as rejected:
            shared.stats.rejected[rejected.reason] += 1
            shared.log.note(rejected.reason)
            if shared.on_reject == "raise":
                raise
            return None
        if shared.role in REPLYING_ROLES:
            self._request = message
            self._request_digest = digest
            if digest is not None:
                shared.replies.started(digest)
        shared.stats.received += 1
        return message

    def _check_context(self, message: Received) -> None:
        """One reply per request; one response per respondent and survey. (That the reply
        answers the outstanding request was checked by the codec, before decryption.)"""
        role = self._shared.role
        if role == "client":
            self._outstanding = None
        elif role == "surveyor":
            if message.sender in self._responders:
                raise Rejected(Rejected.REPLAY, f"a second response from {message.sender}")
            self._responders.add(message.sender)

    def _answer_duplicate(self, digest: bytes) -> bool:
        """A re-sent request: answer it from the reply cache, or drop it while the first copy
        is being processed (its reply reaches the client: same requester, same request id)."""
        known, reply = self._shared.replies.lookup(digest)
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
        return self._shared.role


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
    """A pynng socket attached to a channel of a policy (see :meth:`nngsec.Node.attach`)."""

    def __init__(
        self,
        node: Node,
        socket: pynng.Socket,
        channel: str,
        *,
        on_reject: OnReject = "drop",
        buffers: int | None = DEFAULT_BUFFER,
    ) -> None:
        super().__init__()
        pattern, role = _check_socket(node, socket, channel)
        if on_reject not in ("drop", "raise"):
            raise ValueError("on_reject is 'drop' or 'raise'")
        del pattern
        self._socket = socket
        self._io = socket
        self._shared = _Shared(node, channel, role, on_reject)
        self._recv_fd: int | None = None
        self._send_fd: int | None = None
        _tune(socket, role, self._shared.codec.max_frame_size, buffers)

    # -- pubsub -------------------------------------------------------------------------
    def subscribe(self, topic: Topic) -> None:
        """Receive frames whose clear topic starts with ``topic`` (NNG's own filter)."""
        self._require("subscriber", "subscribe")
        raw = topic_bytes(topic)
        self._socket.subscribe(raw)
        self._shared.subscriptions.add(raw)

    def unsubscribe(self, topic: Topic) -> None:
        self._require("subscriber", "unsubscribe")
        raw = topic_bytes(topic)
        self._socket.unsubscribe(raw)
        self._shared.subscriptions.discard(raw)

    def _require(self, role: str, what: str) -> None:
        if self._shared.role != role:
            raise PolicyError(
                Problem(f"only a {role} socket can {what}; this is a {self._shared.role} socket")
            )

    # -- contexts -------------------------------------------------------------------------
    def new_context(self) -> SecureContext:
        """A context for concurrent requests (reqrep and survey sockets)."""
        pattern = self._shared.codec.pattern
        if pattern not in ("reqrep", "survey"):
            raise PolicyError(
                Problem(f"contexts exist for reqrep and survey sockets, not {pattern} ones")
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

    def __repr__(self) -> str:
        shared = self._shared
        return (
            f"<SecureSocket {type(self._socket).__name__} channel={shared.channel!r} "
            f"role={shared.role} identity={shared.node.identity!r}>"
        )


def _check_socket(node: Node, socket: Any, channel: str) -> tuple[str, str]:
    """(pattern, role) of ``socket``, or a PolicyError saying why it cannot be attached."""
    if not isinstance(socket, pynng.Socket):
        raise TypeError(f"attach() takes a pynng socket, got {type(socket).__name__}")
    name = type(socket).__name__
    where = str(node.policy.path) if node.policy.path else None
    spec = node.policy.channels.get(node.channel(channel))
    assert spec is not None
    if socket.raw:
        raise PolicyError(
            Problem(
                f"socket {name} is raw; raw sockets bypass the protocol and cannot be secured",
                where,
                field=f"channels.{channel}",
                hint="use nngsec.relay for devices; attach cooked sockets",
            )
        )
    pattern, role = PROTOCOLS.get(socket.protocol, ("?", "?"))
    if pattern != spec.pattern_name:
        raise PolicyError(
            Problem(
                f"socket {name} ({pattern}) does not fit channel {channel!r}, whose pattern is "
                f"{spec.pattern_name}",
                where,
                field=f"channels.{channel}.pattern",
                hint=f"use {SOCKETS_FOR[spec.pattern_name]} for this channel",
            )
        )
    role_field = next(f for f, singular in ROLES[spec.pattern_name] if singular == role)
    if node.identity not in node.policy.members(channel, role_field):
        raise PolicyError(
            Problem(
                f"socket {name} acts as {role} on channel {channel!r}, but identity "
                f"{node.identity!r} is not listed in its {role_field}",
                where,
                field=f"channels.{channel}.{role_field}",
                hint=f"add {node.identity!r} to {role_field} in the policy, or use another socket",
            )
        )
    return pattern, role


def _tune(socket: Any, role: str, max_frame: int, buffers: int | None) -> None:
    """Buffers and the receive size limit. nng drops larger messages before we see them,
    which caps what a peer can make us allocate; pynng's setter fails silently, so the
    value is read back."""
    if buffers is not None:
        if role in RECEIVING_ROLES and socket.recv_buffer_size < buffers:
            socket.recv_buffer_size = buffers
        if role in SENDING_ROLES and socket.send_buffer_size < buffers:
            socket.send_buffer_size = buffers
    if role in RECEIVING_ROLES:
        socket.recv_max_size = max_frame
        if socket.recv_max_size != max_frame:
            raise PolicyError(
                Problem(
                    f"could not set the socket's recv_max_size to {max_frame} "
                    f"(it reads {socket.recv_max_size})",
                    hint="attach the socket before dialing or listening",
                )
            )


def attach(
    node: Node,
    socket: pynng.Socket,
    channel: str,
    *,
    on_reject: OnReject = "drop",
    buffers: int | None = DEFAULT_BUFFER,
) -> SecureSocket:
    return SecureSocket(node, socket, channel, on_reject=on_reject, buffers=buffers)
