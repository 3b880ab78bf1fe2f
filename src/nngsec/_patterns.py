"""The six messaging patterns: one frozen record each, and the only place their facts live.

Every other module (policy model and checks, codec, sockets, relay, checker, explain) reads
these records instead of keeping a table of its own, so adding a pattern means adding a
record here (and, if it needs one, a scheme). Nothing here imports pynng or holds a key:
socket classes and relay openers are named, and resolved by the modules that open sockets.

A pattern has one or two *roles*. The first role is the *initiator*: it sends the frames
that start an exchange ("forward" frames: a publication, a job, a request, a survey). The
last role is the *receiver* of those frames. On patterns with replies (reqrep, survey) the
receiver answers and the initiator reads the answers. Symmetric patterns (pair, bus) have
one role that does both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

__all__ = [
    "BY_PROTOCOL",
    "ORIGIN_MEANINGS",
    "PATTERNS",
    "PATTERN_NAMES",
    "RELAY_PATTERN_NAMES",
    "ROLE_NAMES",
    "SCHEME_NAMES",
    "ChannelKeyKind",
    "Origin",
    "Pattern",
    "PatternSpec",
    "Replies",
    "RoleName",
    "RoleSpec",
    "Scheme",
    "pattern_of",
]

Pattern = Literal["pair", "bus", "pubsub", "pipeline", "reqrep", "survey"]
Scheme = Literal["secretbox", "sealed", "peerbox", "signed", "plaintext"]
RoleName = Literal[
    "member",
    "publisher",
    "subscriber",
    "pusher",
    "puller",
    "client",
    "server",
    "surveyor",
    "respondent",
]
Origin = Literal["signed", "group", "mac"]
Replies = Literal["none", "one", "each"]
"""Answers to a forward frame: none; exactly one (a request's reply); one from each
receiver that answers (a survey's responses)."""
ChannelKeyKind = Literal["group", "audience", "service"]
"""Per-epoch channel secrets: a bus's symmetric group key, a sealed channel's audience key
pair (receivers hold the secret half), a multi-server service's shared key pair."""

SCHEME_NAMES: tuple[Scheme, ...] = get_args(Scheme)

ORIGIN_MEANINGS: Mapping[Origin, str] = MappingProxyType(
    {
        "signed": "each frame carries its sender's Ed25519 signature: any receiver (and any "
        "third party) can verify it, and no receiver can forge it",
        "group": "no signature: any member holding the group key can pose as any other "
        "(reported by the checker)",
        "mac": "one 16-byte MAC per receiving identity, keyed by the sender's and that "
        "receiver's X25519 keys: fast, for small fixed audiences; only the receivers can "
        "check it, and it proves nothing to a third party",
    }
)
"""What each ``origin:`` value means (the policy model's field descriptions)."""


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """One role of a pattern: its policy field, its name in topologies, what it does."""

    field: str  # the policy field listing its identities: "publishers"
    name: RoleName  # the role of a socket in a topology: "publisher"
    sends: bool  # sends forward frames (publications, jobs, requests, surveys, bus frames)
    receives: bool  # receives forward frames
    answers: bool  # sends replies to what it received (servers, respondents)
    asks: bool  # receives replies to what it sent (clients, surveyors)
    sockets: tuple[tuple[int, str], ...]  # pynng (protocol id, class name), e.g. (32, "Pub0")

    @property
    def sends_any(self) -> bool:
        """Whether a socket in this role ever sends (forward frames or replies)."""
        return self.sends or self.answers

    @property
    def receives_any(self) -> bool:
        """Whether a socket in this role ever receives (forward frames or replies)."""
        return self.receives or self.asks


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """Everything nngsec knows about one messaging pattern."""

    name: Pattern
    roles: tuple[RoleSpec, ...]  # the initiator first; one role when symmetric
    default_scheme: Scheme  # what `scheme: auto` means
    schemes: tuple[Scheme, ...]  # the schemes a channel of this pattern may name
    has_topic: bool  # frames start with the clear topic || 0x00 (binding for pubsub)
    replies: Replies  # whether receivers answer: not at all, once per request, or each once
    resent: bool  # NNG re-sends an unanswered forward frame (Req0's resend_time, reconnects)
    # `origin:` values a channel may name (first: the default); they apply to the pattern's
    # default scheme (bus: secretbox; pubsub, pipeline, survey: sealed)
    origins: tuple[Origin, ...]
    members: int | None  # exact number of identities a channel must have (pair: 2)
    no_relay: str | None  # why no key-less relay can sit in between, if it cannot
    # Which per-epoch secret a scheme needs on this pattern, and from how many receivers on.
    # (reqrep: one server's own key serves; several servers share a service key.)
    channel_keys: Mapping[Scheme, tuple[ChannelKeyKind, int]]
    # A forward frame reaches one receiver of several (NNG's Push0 and Req0 pick one), so
    # each receiver's replay windows see only its share of a sender's frames.
    load_balanced: bool = False

    @property
    def initiator(self) -> RoleSpec:
        return self.roles[0]

    @property
    def receiver(self) -> RoleSpec:
        return self.roles[-1]

    @property
    def has_replies(self) -> bool:
        """Receivers answer, and the initiator reads the answers."""
        return self.replies != "none"

    @property
    def relayable(self) -> bool:
        return self.no_relay is None

    @property
    def symmetric(self) -> bool:
        """One role that sends and receives (pair, bus): every member is both ends."""
        return len(self.roles) == 1

    @property
    def role_fields(self) -> tuple[str, ...]:
        return tuple(role.field for role in self.roles)

    @property
    def socket_names(self) -> str:
        """The pynng classes for this pattern, for messages: ``Pub0 or Sub0``."""
        return " or ".join(name for role in self.roles for _, name in role.sockets)

    def role(self, name: str) -> RoleSpec | None:
        """The role called ``name`` (topology form, ``publisher``), if the pattern has it."""
        return next((role for role in self.roles if role.name == name), None)

    def complement(self, role: RoleSpec) -> RoleSpec:
        """The role at the other end of a link from ``role`` (itself when symmetric)."""
        return self.receiver if role is self.initiator else self.initiator

    def channel_key_kind(self, scheme: Scheme, receivers: int) -> ChannelKeyKind | None:
        """The channel secret a channel of this pattern needs under ``scheme`` with
        ``receivers`` receiving identities, or ``None`` when identity keys suffice."""
        rule = self.channel_keys.get(scheme)
        if rule is None or receivers < rule[1]:
            return None
        return rule[0]

    def relay_sockets(self) -> tuple[str, str | None]:
        """The raw sockets of a key-less relay, as pynng class names: (front, back).

        The front faces the initiators, so it plays the receiver's part (a pubsub relay's
        front is a raw Sub0); the back faces the receivers as an initiator would (raw Pub0).
        A symmetric pattern's relay is one socket on both URLs, run as a reflector (back is
        ``None``).
        """
        front = self.receiver.sockets[0][1]
        return (front, None) if self.symmetric else (front, self.initiator.sockets[0][1])


def _role(
    field: str,
    name: RoleName,
    sockets: tuple[tuple[int, str], ...],
    *,
    sends: bool = False,
    receives: bool = False,
    answers: bool = False,
    asks: bool = False,
) -> RoleSpec:
    return RoleSpec(field, name, sends, receives, answers, asks, sockets)


_CLEAR: tuple[Scheme, ...] = ("signed", "plaintext")
_AUDIENCE: Mapping[Scheme, tuple[ChannelKeyKind, int]] = {"sealed": ("audience", 1)}
# Sealed channels (the forward frames of pubsub, pipeline and survey): signed by default,
# or one MAC per receiver. The origin applies to the pattern's default scheme only.
_SEALED_ORIGINS: tuple[Origin, ...] = ("signed", "mac")

PATTERNS: Mapping[Pattern, PatternSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            PatternSpec(
                name="pair",
                roles=(
                    _role(
                        "members",
                        "member",
                        ((16, "Pair0"), (17, "Pair1")),
                        sends=True,
                        receives=True,
                    ),
                ),
                default_scheme="secretbox",
                schemes=("secretbox", *_CLEAR),
                has_topic=False,
                replies="none",
                resent=False,
                origins=(),
                members=2,
                no_relay="an NNG pair connects exactly two sockets; connect the members directly",
                channel_keys={},  # the key comes from the two members' X25519 keys
            ),
            PatternSpec(
                name="bus",
                roles=(_role("members", "member", ((112, "Bus0"),), sends=True, receives=True),),
                default_scheme="secretbox",
                schemes=("secretbox", *_CLEAR),
                has_topic=False,
                replies="none",
                resent=False,
                origins=("signed", "group"),
                members=None,
                no_relay=None,
                channel_keys={"secretbox": ("group", 1)},
            ),
            PatternSpec(
                name="pubsub",
                roles=(
                    _role("publishers", "publisher", ((32, "Pub0"),), sends=True),
                    _role("subscribers", "subscriber", ((33, "Sub0"),), receives=True),
                ),
                default_scheme="sealed",
                schemes=("sealed", *_CLEAR),
                has_topic=True,
                replies="none",
                resent=False,
                origins=_SEALED_ORIGINS,
                members=None,
                no_relay=None,
                channel_keys=_AUDIENCE,
            ),
            PatternSpec(
                name="pipeline",
                roles=(
                    _role("pushers", "pusher", ((80, "Push0"),), sends=True),
                    _role("pullers", "puller", ((81, "Pull0"),), receives=True),
                ),
                default_scheme="sealed",
                schemes=("sealed", *_CLEAR),
                has_topic=False,
                replies="none",
                resent=False,
                origins=_SEALED_ORIGINS,
                members=None,
                no_relay=None,
                channel_keys=_AUDIENCE,
                load_balanced=True,
            ),
            PatternSpec(
                name="reqrep",
                roles=(
                    _role("clients", "client", ((48, "Req0"),), sends=True, asks=True),
                    _role("servers", "server", ((49, "Rep0"),), receives=True, answers=True),
                ),
                default_scheme="peerbox",
                schemes=("peerbox", *_CLEAR),
                has_topic=False,
                replies="one",
                resent=True,
                origins=(),
                members=None,
                no_relay=None,
                channel_keys={"peerbox": ("service", 2)},
                load_balanced=True,
            ),
            PatternSpec(
                name="survey",
                roles=(
                    _role("surveyors", "surveyor", ((98, "Surveyor0"),), sends=True, asks=True),
                    _role(
                        "respondents",
                        "respondent",
                        ((99, "Respondent0"),),
                        receives=True,
                        answers=True,
                    ),
                ),
                # The survey travels sealed to the respondents; each response is a peerbox
                # frame to the surveyor that asked.
                default_scheme="sealed",
                schemes=("sealed", *_CLEAR),
                has_topic=False,
                replies="each",
                resent=False,
                origins=_SEALED_ORIGINS,
                members=None,
                no_relay=None,
                channel_keys=_AUDIENCE,
            ),
        )
    }
)

PATTERN_NAMES: tuple[Pattern, ...] = tuple(PATTERNS)
RELAY_PATTERN_NAMES: tuple[Pattern, ...] = tuple(p.name for p in PATTERNS.values() if p.relayable)
ROLE_NAMES: tuple[RoleName, ...] = tuple(
    dict.fromkeys(role.name for spec in PATTERNS.values() for role in spec.roles)
)
BY_PROTOCOL: Mapping[int, tuple[PatternSpec, RoleSpec]] = MappingProxyType(
    {
        protocol: (spec, role)
        for spec in PATTERNS.values()
        for role in spec.roles
        for protocol, _ in role.sockets
    }
)
"""The pattern and role of a pynng socket, by its ``protocol`` number."""

# The literal types above are for the type checker; the records are the facts. Refuse to
# start if the two ever disagree (an explicit check: it must hold under ``python -O``).
if get_args(Pattern) != PATTERN_NAMES or set(ROLE_NAMES) != set(get_args(RoleName)):
    raise RuntimeError("nngsec._patterns: the Pattern/RoleName literals and PATTERNS disagree")


_BY_NAME: dict[str, PatternSpec] = {spec.name: spec for spec in PATTERNS.values()}


def pattern_of(name: object) -> PatternSpec | None:
    """The record of pattern ``name``, or ``None`` for anything that names no pattern."""
    return _BY_NAME.get(name) if isinstance(name, str) else None
