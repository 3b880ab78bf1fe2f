"""What every scheme implements, and what it may know about its channel."""

from __future__ import annotations

import itertools
import math
import os
import struct
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..._errors import PolicyError, Problem, Rejected
from ..._keys._channel_keys import EpochKeys, OpenedChannelKeys
from ..._keys._identity import IdentityKey, PublicIdentity
from .._wire import SESSION_SIZE, Header

__all__ = [
    "ChannelContext",
    "FastOpen",
    "SchemeCodec",
    "Sealer",
    "SendState",
    "forged",
    "no_key",
    "nonce_of",
]

Sealer = Callable[[bytes, bytes, bytes], bytes]
"""Seals one frame of a sending session: (header bytes, nonce, payload) -> the frame."""


class FastOpen(NamedTuple):
    """How a receiver opens the later frames of a session it accepted a frame of, with
    the key material it used then (see ``Receiver.open``).

    ``open(frame, start, nonce_at)``: the payload, or ``None`` when the frame does not
    authenticate (``forged``); ``body_prefix``: bytes the body must start with for
    ``open`` to apply (a sealed session's ephemeral key and wrapped content key), anything
    else goes the general way; ``overhead``: the body's bytes that are not payload;
    ``until``: the last moment the key material may be used (an epoch's retirement)."""

    open: Callable[[bytes, int, int], bytes | None]
    body_prefix: bytes
    overhead: int
    until: float


def _earliest(*moments: float | None) -> float:
    return min((m for m in moments if m is not None), default=math.inf)


NO_DEPLOYMENT = bytes(16)  # what a policy without ``deployment:`` binds


def nonce_of(header: Header) -> bytes:
    """``session || seq`` (24 bytes): unique per key (see the spec's nonce section)."""
    return header.session + struct.pack(">Q", header.seq)


def forged(detail: str) -> Rejected:
    return Rejected(Rejected.FORGED, detail)


def no_key(detail: str) -> Rejected:
    return Rejected(Rejected.NO_KEY, detail)


@dataclass
class ChannelContext:
    """One node's view of one channel: who it is, who the others are, which keys it holds."""

    policy_name: str
    channel: str
    deployment: bytes  # 16 bytes; NO_DEPLOYMENT when the policy has no deployment id
    key: IdentityKey
    identities: Mapping[str, PublicIdentity]
    keys: OpenedChannelKeys | None
    random: Callable[[int], bytes] = os.urandom
    servers: frozenset[str] = frozenset()
    origin: str = "signed"
    peer: str | None = None  # the other member of a pair channel
    identity: str = ""  # this node's identity name
    receivers: frozenset[str] = frozenset()  # the channel's receiving identities
    clock: Callable[[], float] = time.time  # which epoch is active, and which expired

    @property
    def binding(self) -> bytes:
        """``deployment || policy || 0x00 || channel || 0x00``: what every derived key and
        every frame signature is bound to. The deployment id is random per deployment, so
        two deployments that share a policy name, a channel name and an identity still
        derive different keys and refuse each other's signatures."""
        return (
            self.deployment + self.policy_name.encode() + b"\x00" + self.channel.encode() + b"\x00"
        )

    def epoch_for_sending(self) -> EpochKeys:
        """The current channel-key epoch, or a :class:`PolicyError` explaining its absence."""
        if self.keys is None:
            raise PolicyError(
                Problem(
                    f"channel {self.channel!r} has no channel keys for this node yet",
                    field=f"channels.{self.channel}",
                    hint="run `nngsec rotate POLICY` and distribute the channel-key file",
                )
            )
        now = self.clock()
        keys = self.keys.sending(now)
        if keys.expires is not None and now > keys.expires:
            raise PolicyError(
                Problem(
                    f"key epoch {keys.epoch} of channel {self.channel!r} expired (its lifetime "
                    "from nngsec rotate --lifetime ended)",
                    field=f"channels.{self.channel}",
                    hint="run `nngsec rotate POLICY` and distribute the channel-key file",
                )
            )
        return keys

    def sending_until(self, now: float) -> float:
        """Until when :meth:`epoch_for_sending` keeps giving what it gives at ``now``: the
        first activation of an epoch still to come, or the sending epoch's expiry (a
        sender's fast path re-decides then)."""
        if self.keys is None:
            return math.inf
        sending = self.keys.sending(now)
        coming = [e.activate_at for e in self.keys.epochs if (e.activate_at or -math.inf) > now]
        return _earliest(sending.expires, *coming)

    def usable_until(self, epoch: int) -> float:
        """The last moment frames of ``epoch`` are accepted (its retirement or expiry)."""
        keys = self.keys.get(epoch, None) if self.keys is not None else None
        return _earliest(keys.retire_at, keys.expires) if keys is not None else -math.inf

    def epoch_stamped(self, epoch: int) -> EpochKeys:
        """The keys of the epoch a frame being sealed was stamped with.

        The header's epoch is chosen first (:meth:`SchemeCodec.send_epoch`) and the body
        sealed after; new keys loaded in between must not make the body use another
        epoch's key than the header names (every receiver would reject the frame). The
        previous epoch is still held then, so this finds it.
        """
        keys = self.keys.get(epoch, None) if self.keys is not None else None
        if keys is None:
            raise PolicyError(
                Problem(
                    f"channel {self.channel!r} no longer has key epoch {epoch}",
                    field=f"channels.{self.channel}",
                    hint="send again: the next frame uses the current epoch",
                )
            )
        return keys

    def epoch_for_receiving(self, epoch: int, now: float | None) -> EpochKeys:
        """The keys of ``epoch`` if this node holds its secret, else ``Rejected('no-key')``."""
        keys = self.keys.get(epoch, now) if self.keys is not None else None
        if keys is None:
            raise no_key(f"epoch {epoch} unknown or past its grace period")
        if keys.secret is None:
            raise no_key(f"not a holder of epoch {epoch}")
        return keys


_LIVE_SESSIONS: weakref.WeakSet[SendState] = weakref.WeakSet()


_SEQ_LIMIT = 1 << 64


@dataclass(eq=False)  # compared (and hashed, in the WeakSet) by identity
class SendState:
    """One sending session: its random id, its counter, and per-scheme cached material.

    Sequence numbers come from an ``itertools.count``: its ``next`` is one step under the
    GIL, so threads sending on one session never get the same number and need no lock.

    A session belongs to one process. A forked child that went on with its parent's
    session would seal under the parent's (key, nonce) pairs, and on a sealed channel under
    its content key too: so the child restarts every session (a new random id, seq 0, an
    empty cache) in an at-fork handler, and :meth:`take` checks the process id as well,
    for forks made by C code, which do not run Python's at-fork handlers. (A sender's fast
    path checks the process id and the session id too: ``Sender.seal``.)
    """

    session: bytes
    counter: itertools.count[int] = field(default_factory=itertools.count, repr=False)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)  # holds content keys
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    pid: int = field(default_factory=os.getpid, repr=False)

    def __post_init__(self) -> None:
        _LIVE_SESSIONS.add(self)

    def take(self) -> tuple[bytes, int]:
        """The session id and the next sequence number of a frame about to be sealed."""
        if self.pid != os.getpid():
            with self.lock:
                if self.pid != os.getpid():
                    self.restart()
        seq = next(self.counter)
        if seq >= _SEQ_LIMIT:
            raise OverflowError("sequence numbers of this session are exhausted")
        return self.session, seq

    def restart(self) -> None:
        """Continue as a new session of this process. Always from the operating system's
        generator: an injected (deterministic) one would give parent and child one id.
        (The counter first: a sender's fast path pairs the session id it read with the
        counter's next number, and must never pair the new id with an old number.)"""
        self.counter = itertools.count()
        self.cache = {}
        self.session = os.urandom(SESSION_SIZE)
        self.pid = os.getpid()


def _restart_sessions_in_child() -> None:
    for state in list(_LIVE_SESSIONS):
        # Only the forking thread exists in the child: a lock another thread held at the
        # fork would stay locked forever.
        state.lock = threading.Lock()
        state.restart()


os.register_at_fork(after_in_child=_restart_sessions_in_child)


class SchemeCodec(ABC):
    """Seal and open the body of one frame kind on one channel.

    The channel codec does parsing and every cheap check; a scheme only says which epoch
    it sends under, whether the receiver holds the key (``open_key``: ``no-key``), and
    does the cryptography (``open``: ``forged``).
    """

    kind: int
    overhead: int  # body bytes that are not payload

    def __init__(self, ctx: ChannelContext, kind: int) -> None:
        self.ctx = ctx
        self.kind = kind
        self._prefixes: dict[bytes, bytes] = {}

    def signature_prefix(self, label: bytes) -> bytes:
        """``label || 0x00 || binding``: what a frame signature covers before the frame's
        own bytes. The binding (deployment, policy, channel) keeps a signature made in one
        deployment from being accepted in another that happens to share an identity and a
        channel name. Computed once per label."""
        prefix = self._prefixes.get(label)
        if prefix is None:
            prefix = self._prefixes[label] = label + b"\x00" + self.ctx.binding
        return prefix

    def overhead_for(self, header: Header) -> int:
        """Body bytes that are not payload in a frame with this header (the same for every
        frame, except where the body grows with the audience of the frame's epoch)."""
        return self.overhead

    def send_epoch(self, peer: str | None, reply_epoch: int | None) -> int:
        """Epoch to stamp on a frame sent to ``peer`` (replies reuse the request's)."""
        return 0

    def sealer(self, state: SendState, epoch: int, peer: str | None) -> Sealer | None:
        """The fast way to seal the frames of ``state``'s session under ``epoch`` to
        ``peer`` (see ``Sender.seal``): the same bytes :meth:`seal` gives, with what can be
        decided once decided once; ``None`` where a frame must take :meth:`seal`."""
        return None

    def fast_open(
        self, key: Any, header: Header, frame: bytes, start: int, sender: str
    ) -> FastOpen | None:
        """After :meth:`open` accepted ``frame`` with ``key``: how the later frames of its
        session and epoch open (``None``: always by :meth:`open`)."""
        return None

    @abstractmethod
    def seal(
        self, state: SendState, header: Header, hdr: bytes, payload: bytes, peer: str | None
    ) -> bytes:
        """The body of a frame whose header bytes are ``hdr``."""

    @abstractmethod
    def open_key(self, header: Header, sender: str, now: float) -> Any:
        """The key material to open this frame, or ``Rejected('no-key')``."""

    @abstractmethod
    def open(self, key: Any, header: Header, frame: bytes, start: int, sender: str) -> bytes:
        """The payload, or ``Rejected('forged')``; never returns unauthenticated bytes.
        ``frame`` is read through a memoryview: slices of it are not copied."""
