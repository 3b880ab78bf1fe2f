"""Sealing and opening frames of one channel, for one identity.

:class:`ChannelCodec` holds what a node knows about a channel (roles, limits, schemes);
:class:`Sender` is one sending session (what a socket sends with); :class:`Receiver` has
the replay windows of one receiving socket and performs the receive checks in the order
the spec prescribes (``docs/spec/wire-format.md``, "Receiving: checks in order"): parse
and bounds, channel and kind, sender and role, time, replay, key, signature, decryption.
Only a frame that passed everything updates the replay window.

A :class:`ChannelSlot` holds the codec a channel uses *now*. Senders and receivers read it
once per frame, so a node that switches to a new policy (``Node(watch=True)``) replaces one
reference and every frame is sealed or opened under one policy, the old or the new; the
sending session (its id and sequence numbers, so no nonce is ever reused) and the replay
windows belong to the sender and receiver, and survive the switch.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections.abc import Callable
from typing import Literal, NamedTuple

from .._errors import PolicyError, Problem, Rejected, UsageError
from .._keys._channel_keys import OpenedChannelKeys
from .._keys._identity import IdentityKey
from .._patterns import PatternSpec, Scheme
from .._policy._model import ChannelBase
from .._policy._policy import Policy
from ._answers import AnswerLedger
from ._replay import ReplayGuard
from ._replay_state import ReplaySlot, ReplayState
from ._schemes._base import NO_DEPLOYMENT, ChannelContext, SchemeCodec, Sealer, SendState
from ._schemes._peerbox import Reply, Request, SurveyResponse
from ._schemes._plaintext import Plaintext
from ._schemes._sealed import Sealed
from ._schemes._secretbox import BusBox, PairBox
from ._schemes._signed import Signed
from ._wire import (
    KEY_ID_SIZE,
    MAX_HEADER,
    MAX_TOPIC,
    REPLY_TO,
    SEQ_TIME,
    SESSION_SIZE,
    FrameKind,
    FrameRef,
    Header,
    encode_header,
    header_head,
    parse_frame,
)

__all__ = ["Accept", "ChannelCodec", "ChannelSlot", "Received", "Receiver", "Sender", "Topic"]

Topic = str | bytes
Accept = Literal["forward", "reply", "any"]
# The first size check, before parsing: a frame longer than max_message_size + _SLACK
# cannot be valid. MAX_HEADER (400 bytes: topic 255 + 1, prefix 4, channel 64, fixed 44,
# reply_to 32) plus a round 256 that covers every scheme's overhead (the largest, sealed,
# is 160): 656 bytes, as the spec states; more on an origin: mac channel with over ten
# receivers (96 + 16 per receiver). The exact payload check comes after parsing.
_SLACK = MAX_HEADER + 256


class Received(NamedTuple):
    """An accepted message.

    ``sender`` is the authenticated identity (a claim only on ``plaintext`` channels,
    where ``authenticated`` is false). ``topic`` is the clear pubsub topic (UTF-8; bytes
    that are not UTF-8 are kept losslessly as surrogate escapes). ``sent_at`` is the
    sender's clock, seconds since the epoch. ``ref`` names this frame and ``reply_to``
    the request a reply answers. Immutable. (A named tuple: one is made per message, and
    a tuple is made in one step, where a frozen dataclass sets each field in turn.)
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
        replay_state: ReplayState | None = None,
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
        self.max_age = self.spec.max_age
        self.not_before = not_before
        self.replay_state = replay_state  # None: replay windows in memory only
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
            clock=clock,
        )
        self.forward, self.reply = self._schemes(self.ctx)
        # The first size check, before parsing (origin: mac bodies grow with the audience).
        self.frame_limit = self.max_size + max(_SLACK, self.max_frame_size - self.max_size)
        self.own_expiry = policy.expiry_of(identity)
        self._tables: dict[Accept, dict[int, tuple[SchemeCodec, bool]]] = {}

    def receive_table(self, accept: Accept) -> dict[int, tuple[SchemeCodec, bool]]:
        """Every kind the channel uses, and whether a receiver accepting ``accept`` may open
        it. A genuine frame of the channel that this identity is not a recipient of (a
        pusher reading another pusher's job) passes the cheap checks and is refused as
        no-key; a kind the channel never uses (plaintext on a sealed channel) as forged."""
        table = self._tables.get(accept)
        if table is None:
            table = {}
            if self.forward is not None:
                table[self.forward.kind] = (
                    self.forward,
                    accept in ("forward", "any") and self.identity in self.receivers,
                )
            if self.reply is not None:
                table[self.reply.kind] = (
                    self.reply,
                    accept in ("reply", "any") and self.identity in self.senders,
                )
            self._tables[accept] = table
        return table

    def check_own_expiry(self) -> None:
        """Refuse to send once this identity (or the policy) is past its ``expires:``."""
        if self.own_expiry is not None and self.clock() > self.own_expiry:
            raise PolicyError(
                Problem(
                    f"identity {self.identity!r} (or policy {self.policy.name!r}) expired at "
                    f"{self.policy.expiry_text(self.identity)}",
                    str(self.policy.path) if self.policy.path else None,
                    field="expires",
                    hint="distribute a policy with a later expires: (and sign it)",
                )
            )

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
        return ChannelSlot(self).sender()

    def receiver(self, accept: Accept = "any") -> Receiver:
        """A receiver with its own replay windows (and, with a replay state, its own slot)."""
        return ChannelSlot(self).receiver(accept)


class ChannelSlot:
    """The codec of one channel in force now, shared by every sender and receiver of it.

    The node replaces :attr:`codec` when it switches policy (one reference assignment, so
    readers see the old codec or the new, never a mix). ``None`` means the policy in force
    no longer gives this identity the channel (removed, or its pattern changed): senders
    refuse with :attr:`why`, receivers drop frames as ``unauthorized``.
    """

    __slots__ = ("channel", "codec", "identity", "pattern", "why")

    def __init__(self, codec: ChannelCodec) -> None:
        # Fixed for the slot's life: its sockets were made for this pattern.
        self.channel = codec.channel
        self.identity = codec.identity
        self.pattern = codec.pattern
        self.why = ""
        self.codec: ChannelCodec | None = codec

    def replace(self, codec: ChannelCodec | None, why: str = "") -> None:
        self.why = why
        self.codec = codec

    def current(self) -> ChannelCodec:
        codec = self.codec
        if codec is None:
            raise PolicyError(Problem(self.why, hint="attach a socket to a channel of the policy"))
        return codec

    def sender(self) -> Sender:
        codec = self.current()
        return Sender(self, SendState(codec.random(SESSION_SIZE)))

    def receiver(self, accept: Accept = "any", role: str | None = None) -> Receiver:
        return Receiver(self, accept, role)


_SEQ_LIMIT = 1 << 64
_PLANS = 64  # topics, and peers of replies, a sender keeps a plan for
_getpid = os.getpid
_SEQ_TIME_PACK = SEQ_TIME.pack


class _Plan:
    """What the frames a sending session seals under one policy, epoch and topic (or to
    one peer) have in common: the header up to the sequence number, and the scheme's way
    to seal (:meth:`SchemeCodec.sealer`), valid until ``until``."""

    __slots__ = (
        "clock",
        "codec",
        "epoch",
        "head",
        "key_id",
        "max_size",
        "seal",
        "session",
        "until",
    )

    def __init__(
        self, codec: ChannelCodec, header: Header, head: bytes, seal: Sealer, until: float
    ) -> None:
        self.codec = codec
        self.key_id = header.key_id
        self.session = header.session
        self.epoch = header.epoch
        self.head = head
        self.seal = seal
        self.until = until
        self.max_size = codec.max_size
        self.clock = codec.clock


class Sender:
    """One sending session of a channel: random session id, sequence counter, and the
    per-session material of the scheme (e.g. a sealed frame's wrapped content key).
    The session outlives policy switches: its sequence numbers only grow.

    The fast path: the first frame of each topic (or, for replies, peer) takes the
    general way, which checks everything and builds a plan (:class:`_Plan`): the header
    bytes up to the sequence number, and the scheme's key material. A later frame uses the
    plan while the policy in force, the session (a forked child restarts it) and the
    process are the plan's, the payload is plain ``bytes`` within ``max_message_size``,
    and the clock is before the plan's ``until`` (the identity's expiry, the next change
    of sending epoch); it then costs one counter step, one ``pack`` and the scheme's
    cryptography, and makes no other object. Anything else takes the general way.
    """

    def __init__(self, slot: ChannelSlot, state: SendState) -> None:
        self.slot = slot
        self.state = state
        self.fast = True  # False: every frame takes the general way (the tests compare)
        self._plans: dict[object, _Plan] = {}

    @property
    def codec(self) -> ChannelCodec:
        """The codec in force (``PolicyError`` if the channel is gone for this identity)."""
        return self.slot.current()

    @staticmethod
    def _check_payload(codec: ChannelCodec, payload: bytes) -> bytes:
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
        payload = bytes(payload)
        if len(payload) > codec.max_size:
            raise UsageError(
                Problem(
                    f"payload of {len(payload)} bytes exceeds max_message_size "
                    f"({codec.max_size}) of channel {codec.channel!r}",
                    field=f"channels.{codec.channel}.max_message_size",
                    hint="send less, or raise max_message_size in the policy",
                )
            )
        codec.check_own_expiry()
        return payload

    @staticmethod
    def _topic(codec: ChannelCodec, topic: Topic | None) -> bytes | None:
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

    # -- the fast path --------------------------------------------------------------------
    def _fast(
        self, plan: _Plan | None, payload: bytes, extra: bytes = b""
    ) -> tuple[bytes, int] | None:
        """The frame and its sequence number by ``plan``, or ``None`` when the frame must
        take the general way. ``extra``: header bytes after the time (a reply's reply_to)."""
        if plan is None or type(payload) is not bytes or len(payload) > plan.max_size:
            return None
        state = self.state
        now = plan.clock()
        if not (
            now < plan.until
            and plan.codec is self.slot.codec
            and plan.session is state.session
            and state.pid == _getpid()
        ):
            return None
        seq = next(state.counter)
        if seq >= _SEQ_LIMIT:
            raise OverflowError("sequence numbers of this session are exhausted")
        tail = SEQ_TIME.pack(seq, int(now * 1000))
        return plan.seal(plan.head + tail + extra, plan.session + tail[:8], payload), seq

    def _plan(
        self,
        key: object,
        codec: ChannelCodec,
        scheme: SchemeCodec,
        header: Header,
        peer: str | None,
    ) -> None:
        """After the general way sealed ``header``'s frame: a plan for the next ones."""
        if not self.fast:
            return
        plans = self._plans
        known = plans.get(key)
        now = codec.clock()
        if (
            known is not None
            and known.codec is codec
            and known.session is header.session
            and known.epoch == header.epoch
            and now < known.until
        ):
            return  # still good: the frame took the general way for a reason of its own
        seal = scheme.sealer(self.state, header.epoch, peer)
        if seal is None:
            return
        until = min(codec.ctx.sending_until(now), _after(codec.own_expiry))
        head = header_head(
            header.kind, header.channel, header.key_id, header.epoch, header.session, header.topic
        )
        if len(plans) >= _PLANS:
            plans.clear()
        plans[key] = _Plan(codec, header, head, seal, until)

    # -- the general way ------------------------------------------------------------------
    def _frame(
        self,
        codec: ChannelCodec,
        scheme: SchemeCodec,
        payload: bytes,
        topic: bytes | None,
        peer: str | None,
        reply_to: FrameRef | None,
        reply_epoch: int | None,
    ) -> tuple[bytes, Header]:
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
        return hdr + scheme.seal(self.state, header, hdr, payload, peer), header

    def seal(self, payload: bytes, topic: Topic | None = None) -> bytes:
        """A frame carrying ``payload`` from this identity to the channel's receivers."""
        if topic is None or type(topic) is str:  # _fast, inline: this is the hot path
            plan = self._plans.get(topic)
            if plan is not None and type(payload) is bytes and len(payload) <= plan.max_size:
                state = self.state
                now = plan.clock()
                if (
                    now < plan.until
                    and plan.codec is self.slot.codec
                    and plan.session is state.session
                    and state.pid == _getpid()
                ):
                    seq = next(state.counter)
                    if seq < _SEQ_LIMIT:  # (else the general way says why)
                        tail = _SEQ_TIME_PACK(seq, int(now * 1000))
                        return plan.seal(plan.head + tail, plan.session + tail[:8], payload)
        return self.seal_ref(payload, topic)[0]

    def seal_ref(self, payload: bytes, topic: Topic | None = None) -> tuple[bytes, FrameRef]:
        """The frame, and the reference a reply to it will carry in ``reply_to``."""
        plannable = topic is None or type(topic) is str
        if plannable:
            plan = self._plans.get(topic)
            fast = self._fast(plan, payload)
            if fast is not None and plan is not None:
                return fast[0], FrameRef(plan.key_id, plan.session, fast[1])
        codec = self.codec  # once: the whole frame under one policy
        if not codec.sends_forward or codec.forward is None:
            raise codec.role_error("send")
        payload = self._check_payload(codec, payload)
        frame, header = self._frame(
            codec, codec.forward, payload, self._topic(codec, topic), None, None, None
        )
        if plannable:
            self._plan(topic, codec, codec.forward, header, None)
        return frame, header.ref

    def reply(self, request: Received, payload: bytes) -> bytes:
        """A reply (reqrep) or response (survey) to ``request``, bound to it."""
        key = (request.sender, request.epoch)
        plan = self._plans.get(key)
        ref = request.ref
        if (
            plan is not None
            and request.channel == plan.codec.channel
            and request.reply_to is None
            and len(ref.key_id) == KEY_ID_SIZE
            and len(ref.session) == SESSION_SIZE
        ):
            fast = self._fast(plan, payload, REPLY_TO.pack(*ref))
            if fast is not None:
                return fast[0]
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
        payload = self._check_payload(codec, payload)
        frame, header = self._frame(
            codec, codec.reply, payload, None, request.sender, request.ref, request.epoch
        )
        self._plan(key, codec, codec.reply, header, request.sender)
        return frame


def _after(moment: float | None) -> float:
    """A moment the fast path stops before (``None``: never)."""
    return math.inf if moment is None else moment


_tuple_new = tuple.__new__  # a named tuple made in one step, without its __new__'s call
_SEQ_TIME_FROM = SEQ_TIME.unpack_from
_KNOWN = 1024  # sessions a receiver remembers for its fast path (then it starts over)


class _Known(NamedTuple):
    """A session a receiver accepted a frame of, and what its later frames need: the
    policy (codec) and key material it was accepted under, its replay window, and the
    parts of the message that are the same for each frame of it. (``_open_known`` reads
    the fields by position, in one unpacking: keep its order in step with this one.)"""

    codec: ChannelCodec
    sender: str
    channel: str
    key: tuple[bytes, bytes]  # key id, session (the replay guard's key)
    key_id: bytes
    session: bytes
    own_key_id: bytes  # what a reply's reply_to names
    window: object
    epoch: int
    topic: str | None
    open: Callable[[bytes, int, int], bytes | None]
    body_prefix: bytes
    overhead: int
    until: float  # the sender's expiry, or the key's retirement, whichever comes first
    reply: bool
    plain: bool  # not a reply, and no journal: the window slides with nothing else to do
    header_rest: int  # header bytes after the looked-up ones: seq, time, reply_to
    max_payload: int
    max_age: float
    skew: float
    authenticated: bool


class Receiver:
    """Opens frames for one receiving socket; owns that socket's replay windows (which
    survive policy switches: a switch that reset them would reopen replays).

    With the codec's replay state (a Node's default), the windows start from what earlier
    receivers of this identity and channel accepted, are checkpointed to the receiver's
    state slot, and frames to an answering role are written through before they are
    returned (see ``_replay_state``). :meth:`close` writes the final state and gives the
    slot back; so does the checkpoint thread for a receiver that was garbage collected, and
    the exit of the interpreter for one still open.
    """

    def __init__(self, slot: ChannelSlot, accept: Accept, role: str | None = None) -> None:
        self.slot = slot
        self.accept: Accept = accept
        # The role field a socket receives as: a policy switch that takes it away makes the
        # socket drop frames as unauthorized (rather than no-key, as if it were a stranger).
        self.role = role
        codec = slot.current()
        # A node created with not_before refuses every frame stamped earlier (at the price
        # of also refusing honest frames queued before it). Millisecond precision, as on
        # the wire.
        floor = float("-inf")
        if codec.not_before is not None:
            floor = math.floor(codec.not_before * 1000) / 1000
        self.guard = ReplayGuard(codec.spec.replay_window, codec.spec.max_age, floor=floor)
        # The fast path: sessions this receiver accepted a frame of, by the bytes their
        # frames start with up to the sequence number (see :meth:`open`).
        self.fast = True  # False: every frame takes the general way (the tests compare)
        self._known: dict[bytes, _Known] = {}
        self._topics = slot.pattern.has_topic
        # version, kind, flags, channel length, channel, key id, epoch, session
        self._head_size = 4 + len(slot.channel) + KEY_ID_SIZE + 4 + SESSION_SIZE
        # One answer per request from each server or respondent (as sockets keep).
        self.answers = AnswerLedger(codec.spec.max_age + codec.clock_skew)
        self._lock = threading.Lock()
        # A request or survey is written through: executed at most once across crashes.
        self._writes_through = slot.pattern.receiver.answers
        self.replay_slot: ReplaySlot | None = None
        if codec.replay_state is not None:
            self.replay_slot = codec.replay_state.open_slot(
                codec.identity,
                codec.identity_key.key_id,
                codec.channel,
                self.guard,
                self._lock,
                now=codec.clock(),
                clock_skew=codec.clock_skew,
            )
        if self.replay_slot is not None:
            # Collected without close(): the slot is handed to the checkpoint thread, which
            # writes it and gives it back (no file work inside the garbage collector).
            weakref.finalize(self, self.replay_slot.abandon)

    @property
    def codec(self) -> ChannelCodec:
        return self.slot.current()

    @property
    def schemes(self) -> dict[int, tuple[SchemeCodec, bool]]:
        """The frame kinds the codec in force opens for this receiver (see
        :meth:`ChannelCodec.receive_table`)."""
        return self.codec.receive_table(self.accept)

    def open(self, frame: bytes, *, reply_to: FrameRef | None = None) -> Received:
        """The message in ``frame``, or :class:`Rejected` with the first failed check.

        ``reply_to``: the request this receiver is waiting for; a reply to anything else is
        refused (``replay``) before any cryptography.

        The fast path: a frame that starts with the bytes of a session this receiver
        accepted a frame of (:class:`_Known`, found with one slice and one dictionary
        look-up) and is *usual* — the same policy in force, sizes within bounds, the
        sender's authority and the session's key still valid, fresh, above everything the
        session's replay window accepted, a reply to the request waited for — is opened
        with the session's key material, and the window slides in place. Every check of
        the general way is made, on fewer bytes: what the look-up matched was checked when
        the session's first frame was. Anything unusual takes the general way, which gives
        each rejection its exact reason. Only failed cryptography is refused on the fast
        path (``forged``), as the general way would refuse it once every check before it
        passed.
        """
        if type(frame) is bytes:
            codec = self.slot.codec
            if codec is not None and len(frame) <= codec.frame_limit:
                at = self._head_size
                if self._topics:
                    at += frame.find(b"\x00", 0, MAX_TOPIC + 1) + 1
                known = self._known.get(frame[:at])
                if known is not None and known.codec is codec:
                    message = self._open_known(known, codec, frame, at, reply_to)
                    if message is not None:
                        return message
        return self._open_general(frame, reply_to)

    def _open_known(
        self,
        known: _Known,
        codec: ChannelCodec,
        frame: bytes,
        at: int,
        reply_to: FrameRef | None,
    ) -> Received | None:
        """A usual frame of a known session: the message (or ``Rejected('forged')``);
        ``None`` for anything unusual, which then takes the general way."""
        # One step for every field (the hot path reads most of them once).
        (_, sender, channel, key, key_id, session, own_key_id, window, epoch, topic, open_,
         body_prefix, overhead, until, reply, plain, header_rest, max_payload, max_age, skew,
         authenticated) = known  # fmt: skip
        start = at + header_rest
        payload_size = len(frame) - start - overhead
        if payload_size < 0 or payload_size > max_payload:
            return None
        seq, time_ms = _SEQ_TIME_FROM(frame, at)
        if reply and (
            reply_to is None
            or reply_to.key_id != own_key_id
            or frame[at + SEQ_TIME.size : start] != REPLY_TO.pack(*reply_to)
        ):
            return None
        now = codec.clock()
        sent_at = time_ms / 1000
        if now > until or now - sent_at > max_age or sent_at - now > skew:
            return None
        guard = self.guard
        if not guard.current(window, key, seq, sent_at):
            return None
        if body_prefix and not frame.startswith(body_prefix, start):
            return None
        payload = open_(frame, start, at - SESSION_SIZE)  # the nonce: session || seq
        if payload is None:
            raise Rejected(Rejected.FORGED, f"{sender} seq {seq} does not authenticate")
        with self._lock:  # as the general way: another thread may have accepted it since
            if plain:  # no answer to admit, no journal to write first
                if guard.current(window, key, seq, sent_at):
                    guard.advance(window, seq, sent_at, now)
                else:
                    self._record_late(known, seq, sent_at, now)
            else:
                self._record_answer(known, seq, sent_at, now, reply_to)
        return _tuple_new(
            Received,
            (
                payload,
                sender,
                channel,
                topic,
                sent_at,
                _tuple_new(FrameRef, (key_id, session, seq)),
                epoch,
                reply_to,
                authenticated,
            ),
        )

    def _record_late(self, known: _Known, seq: int, sent_at: float, now: float) -> None:
        """Under the lock: a frame that is no longer above its window (another thread
        accepted frames meanwhile): the general check and record."""
        verdict = self.guard.check(known.key_id, known.session, seq, sent_at)
        if verdict is not None:
            raise Rejected(verdict, f"{known.sender} seq {seq}")
        self.guard.record(known.key_id, known.session, seq, sent_at, now)

    def _record_answer(
        self, known: _Known, seq: int, sent_at: float, now: float, reply_to: FrameRef | None
    ) -> None:
        """Under the lock, as the general way: the replay check again, one answer per
        request and responder, a request's journal entry, then the record."""
        guard, window = self.guard, known.window
        in_order = guard.current(window, known.key, seq, sent_at)
        if not in_order:
            verdict = guard.check(known.key_id, known.session, seq, sent_at)
            if verdict is not None:
                raise Rejected(verdict, f"{known.sender} seq {seq}")
        if known.reply:
            if not self.answers.admit(reply_to, known.sender, now):  # type: ignore[arg-type]
                raise Rejected(
                    Rejected.REPLAY, f"a second answer from {known.sender} to one request"
                )
        elif self.replay_slot is not None:
            self.replay_slot.write_through(known.key_id, known.session, seq, sent_at)
        if in_order:
            guard.advance(window, seq, sent_at, now)
        else:
            guard.record(known.key_id, known.session, seq, sent_at, now)

    def _learn(
        self,
        codec: ChannelCodec,
        scheme: SchemeCodec,
        key_material: object,
        header: Header,
        frame: bytes,
        start: int,
        sender: str,
        now: float,
    ) -> None:
        """After the general way accepted ``frame``: remember its session for the fast
        path, unless it is remembered already as it is now."""
        if not self.fast or type(frame) is not bytes:
            return
        reply = header.reply_to is not None
        rest = SEQ_TIME.size + (REPLY_TO.size if reply else 0)
        head = frame[: start - rest]
        window = self.guard.window(header.key_id, header.session)
        known = self._known.get(head)
        if window is None or (
            known is not None
            and known.codec is codec
            and known.window is window
            and now <= known.until
        ):
            return
        fast = scheme.fast_open(key_material, header, frame, start, sender)
        if fast is None:
            return
        if len(self._known) >= _KNOWN:
            self._known.clear()
        self._known[head] = _Known(
            codec=codec,
            sender=sender,
            channel=codec.channel,
            key=(header.key_id, header.session),
            key_id=header.key_id,
            session=header.session,
            own_key_id=codec.identity_key.key_id,
            window=window,
            epoch=header.epoch,
            topic=header.topic.decode("utf-8", "surrogateescape")
            if header.topic is not None
            else None,
            open=fast.open,
            body_prefix=fast.body_prefix,
            overhead=fast.overhead,
            until=min(fast.until, _after(codec.policy.expiry_of(sender))),
            reply=reply,
            plain=not reply and not (self.replay_slot is not None and self._writes_through),
            header_rest=rest,
            max_payload=codec.max_size,
            max_age=codec.max_age,
            skew=codec.clock_skew,
            authenticated=codec.scheme != "plaintext",
        )

    def _open_general(self, frame: bytes, reply_to: FrameRef | None) -> Received:
        """The general way: every check of the spec in order, each with its reason."""
        codec = self.slot.codec  # once: the whole frame under one policy
        if codec is None:
            raise Rejected(Rejected.UNAUTHORIZED, self.slot.why)
        if self.role is not None and codec.identity not in codec.policy.members(
            codec.channel, self.role
        ):
            raise Rejected(Rejected.UNAUTHORIZED, f"{codec.identity} no longer holds {self.role}")
        if len(frame) > codec.frame_limit:
            raise Rejected(Rejected.TOO_LARGE, f"{len(frame)}-byte frame")
        frame = bytes(frame)
        header, start = parse_frame(frame, has_topic=codec.pattern.has_topic)
        if header.channel != codec.channel:
            raise Rejected(Rejected.WRONG_CHANNEL, f"frame for channel {header.channel!r}")
        entry = codec.receive_table(self.accept).get(header.kind)
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
        now = codec.clock()
        expiry = codec.policy.expiry_of(sender)
        if expiry is not None and now > expiry:
            # An identity's authority ends with its expires: (or the policy's): as revoked.
            raise Rejected(Rejected.REVOKED, f"{sender} expired")
        allowed = codec.receivers if header.is_reply else codec.senders
        if sender not in allowed:
            raise Rejected(Rejected.UNAUTHORIZED, f"{sender} holds no sending role for this frame")
        if codec.pattern.symmetric and sender == codec.identity:
            # nng never delivers a pair or bus peer's own message back to it: such a frame
            # was reflected by someone on the wire. (A pubsub node may subscribe to what it
            # publishes, so this is not refused there.)
            raise Rejected(
                Rejected.UNAUTHORIZED,
                f"a {codec.pattern.name} frame from this node's own identity {sender!r}: "
                "reflected back, or sent by another node running the same identity",
            )
        topic = header.topic
        if (
            topic is not None
            and codec.topics is not None
            and not any(topic.startswith(p) for p in codec.topics)
        ):
            raise Rejected(Rejected.UNAUTHORIZED, "topic outside the channel's topics")

        sent_at = header.time_ms / 1000
        if now - sent_at > codec.spec.max_age:
            raise Rejected(
                Rejected.STALE,
                f"too old: sent {now - sent_at:.3f}s ago, over the channel's max_age of "
                f"{codec.spec.max_age:g}s",
            )
        if sent_at - now > codec.clock_skew:
            # Same reason (binding), but the opposite cure: the sender's clock, not the
            # network, is at fault, and an operator must be told which way to look.
            raise Rejected(
                Rejected.STALE,
                f"from the future: stamped {sent_at - now:.3f}s ahead of this receiver's "
                f"clock, over the {codec.clock_skew:g}s clock skew allowed (the sender's "
                "clock is ahead)",
            )
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
            # strict without reply_to (Node.open): see AnswerLedger.admit (a flood of answers
            # to requests never sent must not make the ledger forget a real one).
            if header.reply_to is not None and not self.answers.admit(
                header.reply_to, sender, now, strict=reply_to is None
            ):
                raise Rejected(
                    Rejected.REPLAY,
                    f"a second answer from {sender} to one request (or more answers from it "
                    "than max_age allows to remember)",
                )
            if self.replay_slot is not None and self._writes_through and not header.is_reply:
                self.replay_slot.write_through(header.key_id, header.session, header.seq, sent_at)
            self.guard.record(header.key_id, header.session, header.seq, sent_at, now)
        self._learn(codec, scheme, key, header, frame, start, sender, now)
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

    def close(self) -> None:
        """Write the final replay state and give the state slot back (idempotent)."""
        if self.replay_slot is not None:
            self.replay_slot.close()
