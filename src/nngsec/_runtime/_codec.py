"""Sealing and opening frames of one channel, for one identity.

:class:`ChannelCodec` holds what a node knows about a channel (roles, limits, schemes);
:class:`Sender` is one sending session (what a socket sends with); :class:`Receiver` has
the replay windows of one receiving socket and performs the receive checks in the order
the spec prescribes (``docs/spec/wire-format.md``, "Receiving: checks in order"): parse
and bounds, channel and kind, sender and role, time, replay, key, signature, decryption.
Only a frame that passed everything updates the replay window.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .._errors import PolicyError, Problem, Rejected, UsageError
from .._keys._channel_keys import OpenedChannelKeys
from .._keys._identity import IdentityKey
from .._patterns import PatternSpec, Scheme
from .._policy._model import ChannelBase
from .._policy._policy import Policy
from ._replay import ReplayGuard
from ._schemes._base import NO_DEPLOYMENT, ChannelContext, SchemeCodec, SendState
from ._schemes._peerbox import Reply, Request, SurveyResponse
from ._schemes._plaintext import Plaintext
from ._schemes._sealed import Sealed
from ._schemes._secretbox import BusBox, PairBox
from ._schemes._signed import Signed
from ._wire import (
    MAX_HEADER,
    MAX_TOPIC,
    SESSION_SIZE,
    FrameKind,
    FrameRef,
    Header,
    encode_header,
    parse_frame,
)

__all__ = ["Accept", "ChannelCodec", "Received", "Receiver", "Sender", "Topic"]

Topic = str | bytes
Accept = Literal["forward", "reply", "any"]
# The first size check, before parsing: a frame longer than max_message_size + _SLACK
# cannot be valid. MAX_HEADER (400 bytes: topic 255 + 1, prefix 4, channel 64, fixed 44,
# reply_to 32) plus a round 256 that covers every scheme's overhead (the largest, sealed,
# is 160): 656 bytes, as the spec states; more on an origin: mac channel with over ten
# receivers (96 + 16 per receiver). The exact payload check comes after parsing.
_SLACK = MAX_HEADER + 256


@dataclass(frozen=True, slots=True)
class Received:
    """An accepted message.

    ``sender`` is the authenticated identity (a claim only on ``plaintext`` channels,
    where ``authenticated`` is false). ``topic`` is the clear pubsub topic (UTF-8; bytes
    that are not UTF-8 are kept losslessly as surrogate escapes). ``sent_at`` is the
    sender's clock, seconds since the epoch. ``ref`` names this frame and ``reply_to``
    the request a reply answers.
    """

    payload: bytes
    sender: str
    channel: str
    topic: str | None
    sent_at: float
    ref: FrameRef
    epoch: int
    reply_to: FrameRef | None = None
    authenticated: bool = True

    @property
    def is_reply(self) -> bool:
        return self.reply_to is not None

    def __repr__(self) -> str:  # payloads stay out of logs and tracebacks
        return (
            f"Received(sender={self.sender!r}, channel={self.channel!r}, topic={self.topic!r}, "
            f"{len(self.payload)} bytes)"
        )


def topic_bytes(topic: Topic | None) -> bytes:
    if topic is None:
        return b""
    raw = topic.encode("utf-8", "surrogateescape") if isinstance(topic, str) else bytes(topic)
    if b"\x00" in raw or len(raw) > MAX_TOPIC:
        raise UsageError(
            Problem(
                f"a topic is at most {MAX_TOPIC} bytes and cannot contain NUL "
                f"(got {len(raw)} bytes)",
                hint="use a shorter topic without NUL characters",
            )
        )
    return raw


class ChannelCodec:
    """One identity's codec for one channel: the channel's spec, who may send and receive,
    and the schemes its frames use."""

    def __init__(
        self,
        policy: Policy,
        channel: str,
        *,
        identity: str,
        identity_key: IdentityKey,
        channel_keys: OpenedChannelKeys | None,
        clock: Callable[[], float],
        random: Callable[[int], bytes],
        clock_skew: float,
        not_before: float | None = None,
    ) -> None:
        self.policy = policy
        self.channel = channel
        self.spec: ChannelBase = policy.channels[channel]
        self.pattern: PatternSpec = self.spec.pattern_spec
        self.scheme: Scheme = self.spec.resolved_scheme
        self.identity = identity
        self.identity_key = identity_key
        self.clock = clock
        self.random = random
        self.clock_skew = clock_skew
        self.not_before = not_before
        # Answers the receive path asks for every frame, computed once.
        prefixes = self.spec.topic_prefixes
        self.topics: tuple[bytes, ...] | None = (
            tuple(t.encode() for t in prefixes) if prefixes is not None else None
        )
        self.senders = policy.senders(channel)
        self.receivers = policy.receivers(channel)
        others = sorted(self.receivers - {identity})
        self.ctx = ChannelContext(
            policy_name=policy.name,
            channel=channel,
            deployment=policy.deployment or NO_DEPLOYMENT,
            key=identity_key,
            identities=policy.identities,
            keys=channel_keys,
            random=random,
            # The service a peerbox client talks to: the channel's servers.
            servers=self.receivers if self.scheme == "peerbox" else frozenset(),
            origin=self.spec.origin_mode or "signed",
            # The other member of a pair (a codec of anyone else has no pair key).
            peer=others[0] if self.pattern.members == 2 and len(others) == 1 else None,
            identity=identity,
            receivers=self.receivers,
        )
        self.forward, self.reply = self._schemes(self.ctx)
        # The first size check, before parsing (origin: mac bodies grow with the audience).
        self.frame_limit = self.max_size + max(_SLACK, self.max_frame_size - self.max_size)

    def set_keys(self, channel_keys: OpenedChannelKeys | None) -> None:
        """Use new channel-key epochs (see :meth:`Node.reload_keys`). Schemes read the
        epochs from the shared context on every frame, and their caches are keyed by epoch."""
        self.ctx.keys = channel_keys

    def _schemes(self, ctx: ChannelContext) -> tuple[SchemeCodec | None, SchemeCodec | None]:
        """The scheme of forward frames, and of replies on patterns that have them."""
        forward: SchemeCodec | None
        reply: SchemeCodec | None = None
        replies = self.pattern.has_replies
        scheme = self.scheme
        if scheme == "plaintext":
            forward = Plaintext(ctx, FrameKind.PLAINTEXT)
            reply = Plaintext(ctx, FrameKind.PLAINTEXT | FrameKind.REPLY) if replies else None
        elif scheme == "signed":
            forward = Signed(ctx, FrameKind.SIGNED)
            reply = Signed(ctx, FrameKind.SIGNED | FrameKind.REPLY) if replies else None
        elif scheme == "secretbox" and self.policy.channel_key_kind(self.channel) is None:
            # No group key: a pair, whose key only its two members can derive from their
            # identity keys. Anyone else gets no codec at all.
            forward = PairBox(ctx) if ctx.peer is not None else None
        elif scheme == "secretbox":
            forward = BusBox(ctx)
        elif scheme == "sealed":
            forward = Sealed(ctx, FrameKind.SEALED)
            if replies:  # survey responses go back to the surveyor that asked
                reply = SurveyResponse(ctx, FrameKind.PEERBOX | FrameKind.REPLY)
        else:  # peerbox
            forward = Request(ctx, FrameKind.PEERBOX)
            reply = Reply(ctx, FrameKind.PEERBOX | FrameKind.REPLY)
        return forward, reply

    # -- roles --------------------------------------------------------------------------
    @property
    def sends_forward(self) -> bool:
        return self.identity in self.senders and self.forward is not None

    @property
    def sends_replies(self) -> bool:
        return self.pattern.has_replies and self.identity in self.receivers

    @property
    def max_size(self) -> int:
        """The largest payload of the channel (``max_message_size``)."""
        return self.spec.max_message_size

    def role_error(self, what: str) -> PolicyError:
        """The policy does not let this identity do ``what`` on the channel."""
        roles = ", ".join(self.policy.roles_of(self.identity, self.channel)) or "none"
        return PolicyError(
            Problem(
                f"identity {self.identity!r} may not {what} on channel {self.channel!r} "
                f"(its roles there: {roles})",
                str(self.policy.path) if self.policy.path else None,
                field=f"channels.{self.channel}",
                hint="list the identity in the channel's sending role in the policy",
            )
        )

    @property
    def max_frame_size(self) -> int:
        """The largest frame a valid message of this channel can take on the wire."""
        overheads = [s.overhead for s in (self.forward, self.reply) if s is not None]
        return self.max_size + MAX_HEADER + max(overheads, default=0)

    def sender(self) -> Sender:
        return Sender(self, SendState(self.random(SESSION_SIZE)))

    def receiver(self, accept: Accept = "any") -> Receiver:
        """A receiver with its own replay windows."""
        return Receiver(self, accept)


class Sender:
    """One sending session of a channel: random session id, sequence counter, and the
    per-session material of the scheme (e.g. a sealed frame's wrapped content key)."""

    def __init__(self, codec: ChannelCodec, state: SendState) -> None:
        self.codec = codec
        self.state = state

    def _check_payload(self, payload: bytes) -> bytes:
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
        payload = bytes(payload)
        if len(payload) > self.codec.max_size:
            raise UsageError(
                Problem(
                    f"payload of {len(payload)} bytes exceeds max_message_size "
                    f"({self.codec.max_size}) of channel {self.codec.channel!r}",
                    field=f"channels.{self.codec.channel}.max_message_size",
                    hint="send less, or raise max_message_size in the policy",
                )
            )
        return payload

    def _topic(self, topic: Topic | None) -> bytes | None:
        codec = self.codec
        if not codec.pattern.has_topic:
            if topic is not None:
                raise UsageError(
                    Problem(
                        f"channel {codec.channel!r} is {codec.pattern.name}; it has no topics",
                        hint="leave topic out",
                    )
                )
            return None
        raw = topic_bytes(topic)
        if codec.topics is not None and not any(raw.startswith(p) for p in codec.topics):
            allowed = ", ".join(repr(t.decode()) for t in codec.topics)
            raise UsageError(
                Problem(
                    f"topic {raw.decode('utf-8', 'replace')!r} is not allowed on channel "
                    f"{codec.channel!r} (allowed prefixes: {allowed})",
                    field=f"channels.{codec.channel}.topics",
                    hint="publish under an allowed prefix, or add one to topics: in the policy",
                )
            )
        return raw

    def _frame(
        self,
        scheme: SchemeCodec,
        payload: bytes,
        topic: bytes | None,
        peer: str | None,
        reply_to: FrameRef | None,
        reply_epoch: int | None,
    ) -> tuple[bytes, FrameRef]:
        codec = self.codec
        epoch = scheme.send_epoch(peer, reply_epoch)
        session, seq = self.state.take()  # one call: a forked child restarts the session
        header = Header(
            kind=scheme.kind,
            channel=codec.channel,
            key_id=codec.identity_key.key_id,
            epoch=epoch,
            session=session,
            seq=seq,
            time_ms=int(codec.clock() * 1000),
            topic=topic,
            reply_to=reply_to,
        )
        hdr = encode_header(header)
        return hdr + scheme.seal(self.state, header, hdr, payload, peer), header.ref

    def seal(self, payload: bytes, topic: Topic | None = None) -> bytes:
        """A frame carrying ``payload`` from this identity to the channel's receivers."""
        return self.seal_ref(payload, topic)[0]

    def seal_ref(self, payload: bytes, topic: Topic | None = None) -> tuple[bytes, FrameRef]:
        """The frame, and the reference a reply to it will carry in ``reply_to``."""
        codec = self.codec
        if not codec.sends_forward or codec.forward is None:
            raise codec.role_error("send")
        payload = self._check_payload(payload)
        return self._frame(codec.forward, payload, self._topic(topic), None, None, None)

    def reply(self, request: Received, payload: bytes) -> bytes:
        """A reply (reqrep) or response (survey) to ``request``, bound to it."""
        codec = self.codec
        if codec.reply is None or not codec.sends_replies:
            raise codec.role_error("reply")
        if request.channel != codec.channel or request.is_reply:
            raise UsageError(
                Problem(
                    f"can only reply to a request or survey received on channel {codec.channel!r}",
                    hint="pass the Received message of the request being answered",
                )
            )
        payload = self._check_payload(payload)
        frame, _ = self._frame(
            codec.reply, payload, None, request.sender, request.ref, request.epoch
        )
        return frame


class Receiver:
    """Opens frames for one receiving socket; owns that socket's replay windows."""

    def __init__(self, codec: ChannelCodec, accept: Accept) -> None:
        self.codec = codec
        # Windows live in memory: after a restart, frames the previous run accepted within
        # max_age would pass again. A node created with not_before refuses every frame
        # stamped earlier (at the price of also refusing honest frames queued before it:
        # a request or a job waiting for its server or worker to start). Millisecond
        # precision, as on the wire.
        floor = float("-inf")
        if codec.not_before is not None:
            floor = math.floor(codec.not_before * 1000) / 1000
        self.guard = ReplayGuard(codec.spec.replay_window, codec.spec.max_age, floor=floor)
        self._lock = threading.Lock()
        # Every kind the channel uses, and whether this receiver may open it. A genuine
        # frame of the channel that this identity is not a recipient of (a pusher reading
        # another pusher's job) passes the cheap checks and is refused as no-key; a kind
        # the channel never uses (plaintext on a sealed channel) is refused as forged.
        self.schemes: dict[int, tuple[SchemeCodec, bool]] = {}
        if codec.forward is not None:
            self.schemes[codec.forward.kind] = (
                codec.forward,
                accept in ("forward", "any") and codec.identity in codec.receivers,
            )
        if codec.reply is not None:
            self.schemes[codec.reply.kind] = (
                codec.reply,
                accept in ("reply", "any") and codec.identity in codec.senders,
            )

    def open(self, frame: bytes, *, reply_to: FrameRef | None = None) -> Received:
        """The message in ``frame``, or :class:`Rejected` with the first failed check.

        ``reply_to``: the request this receiver is waiting for; a reply to anything else is
        refused (``replay``) before any cryptography.
        """
        codec = self.codec
        if len(frame) > codec.frame_limit:
            raise Rejected(Rejected.TOO_LARGE, f"{len(frame)}-byte frame")
        frame = bytes(frame)
        header, start = parse_frame(frame, has_topic=codec.pattern.has_topic)
        if header.channel != codec.channel:
            raise Rejected(Rejected.WRONG_CHANNEL, f"frame for channel {header.channel!r}")
        entry = self.schemes.get(header.kind)
        if entry is None:
            raise Rejected(Rejected.FORGED, f"frame kind 0x{header.kind:02x} not used here")
        scheme, recipient = entry
        body = len(frame) - start
        overhead = scheme.overhead_for(header)
        if body < overhead:
            raise Rejected(Rejected.MALFORMED, "body shorter than the scheme's overhead")
        if body - overhead > codec.max_size:
            raise Rejected(Rejected.TOO_LARGE, f"{body - overhead}-byte payload")

        sender = codec.policy.by_key_id.get(header.key_id)
        if sender is None:
            raise Rejected(Rejected.UNKNOWN_SENDER, f"key id {header.key_id.hex()}")
        if sender in codec.policy.revoked:
            raise Rejected(Rejected.REVOKED, sender)
        allowed = codec.receivers if header.is_reply else codec.senders
        if sender not in allowed:
            raise Rejected(Rejected.UNAUTHORIZED, f"{sender} holds no sending role for this frame")
        if codec.pattern.symmetric and sender == codec.identity:
            # nng never delivers a pair or bus peer's own message back to it: such a frame
            # was reflected by someone on the wire. (A pubsub node may subscribe to what it
            # publishes, so this is not refused there.)
            raise Rejected(
                Rejected.UNAUTHORIZED, f"a {codec.pattern.name} frame from this node itself"
            )
        topic = header.topic
        if (
            topic is not None
            and codec.topics is not None
            and not any(topic.startswith(p) for p in codec.topics)
        ):
            raise Rejected(Rejected.UNAUTHORIZED, "topic outside the channel's topics")

        now = codec.clock()
        sent_at = header.time_ms / 1000
        if now - sent_at > codec.spec.max_age:
            raise Rejected(Rejected.STALE, f"sent {now - sent_at:.3f}s ago")
        if sent_at - now > codec.clock_skew:
            raise Rejected(Rejected.STALE, f"stamped {sent_at - now:.3f}s in the future")
        verdict = self.guard.check(header.key_id, header.session, header.seq, sent_at)
        if verdict is not None:
            raise Rejected(verdict, f"{sender} seq {header.seq}")

        if not recipient:
            raise Rejected(Rejected.NO_KEY, f"{codec.identity} is not a recipient of this frame")
        if header.reply_to is not None:
            if header.reply_to.key_id != codec.identity_key.key_id:
                raise Rejected(Rejected.NO_KEY, "a reply to another identity")
            if reply_to is not None and header.reply_to != reply_to:
                raise Rejected(Rejected.REPLAY, "a reply to another request")
        key = scheme.open_key(header, sender, now)
        payload = scheme.open(key, header, frame, start, sender)

        with self._lock:  # check again: another thread may have accepted it (or swept) since
            verdict = self.guard.check(header.key_id, header.session, header.seq, sent_at)
            if verdict is not None:
                raise Rejected(verdict, f"{sender} seq {header.seq}")
            self.guard.record(header.key_id, header.session, header.seq, sent_at, now)
        return Received(
            payload=payload,
            sender=sender,
            channel=codec.channel,
            topic=topic.decode("utf-8", "surrogateescape") if topic is not None else None,
            sent_at=sent_at,
            ref=header.ref,
            epoch=header.epoch,
            reply_to=header.reply_to,
            authenticated=codec.scheme != "plaintext",
        )
