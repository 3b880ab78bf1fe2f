"""The topology file as pydantic models (shape only; cross-references are rules).

A topology says which node runs which identity, which sockets it opens on which channel in
which role, where they listen or dial, and which key-less relays sit in between::

    nngsec: 1
    policy: factory.yaml            # relative to this file
    nodes:
      sensor-1:
        identity: sensor-1          # default: the node's name (a relay-only node needs none)
        host: edge-a                # default: the node's name; used to match addresses
        sockets:
          - {channel: telemetry, role: publisher, dial: "tcp://hub:5555", topics: [temp.]}
      hub:
        relays:
          - pattern: pubsub
            channel: telemetry
            front: {listen: "tcp://*:5555"}     # faces publishers, pushers, clients, surveyors
            back: {listen: "tcp://*:5556"}      # faces the receiving side

Like policies, every model forbids unknown fields and is immutable. Addresses are parsed
here so that a malformed one is an input error with its position, not a finding.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictStr,
    WithJsonSchema,
    model_validator,
)

from .._formats._diagnostics import FieldValueError
from .._formats._echo import echo
from .._formats._model import StrictModel
from .._patterns import RELAY_PATTERN_NAMES, ROLE_NAMES, Pattern, RoleName, pattern_of
from .._policy._model import Name, Topic
from ._addresses import TRANSPORT_NAMES, parse_address

__all__ = [
    "NodeModel",
    "RelayModel",
    "RelaySide",
    "Role",
    "SocketModel",
    "TopologyModel",
]

if TYPE_CHECKING:
    Role = RoleName
    RelayPatternName = Pattern
else:  # the choices come from the pattern records
    Role = Literal[ROLE_NAMES]
    RelayPatternName = Literal[RELAY_PATTERN_NAMES]

_HOST = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.:-]{0,252})$")


def _any_case(word: str) -> str:
    """A regex for ``word`` in any case, without flags (JSON Schema has none): ``[Tt][Cc]``."""
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in word)


_URL_SCHEMA: dict[str, Any] = {
    "type": "string",
    # The transport only; the loader checks the rest (host, port, path) with its messages.
    "pattern": f"^(?:{'|'.join(_any_case(name) for name in TRANSPORT_NAMES)})://.+$",
    "description": "an NNG address: tcp://HOST:PORT, tls+tcp://HOST:PORT, ws://HOST:PORT/PATH, "
    "ipc:///PATH or inproc://NAME (HOST * for every interface, when listening)",
    "examples": ["tcp://hub:5555", "tcp://*:5555", "ipc:///run/app/sync.sock"],
}
_URLS_SCHEMA: dict[str, Any] = {
    "anyOf": [_URL_SCHEMA, {"type": "array", "items": _URL_SCHEMA}],
    "description": "an address, or a list of addresses",
}


def _listen_url(value: str) -> str:
    parse_address(value, listen=True)
    return value


def _dial_url(value: str) -> str:
    parse_address(value, listen=False)
    return value


def _one_or_many(value: object) -> object:
    # `dial: tcp://a:1` and `dial: [tcp://a:1, tcp://b:1]` both mean a tuple of addresses.
    return (value,) if isinstance(value, str) else value


def _host(value: str) -> str:
    if not _HOST.match(value):
        raise ValueError(f"invalid host {echo(value)}, expected a host name or IP address")
    return value.lower()


ListenUrl = Annotated[StrictStr, AfterValidator(_listen_url), WithJsonSchema(_URL_SCHEMA)]
DialUrl = Annotated[StrictStr, AfterValidator(_dial_url), WithJsonSchema(_URL_SCHEMA)]
ListenUrls = Annotated[
    tuple[ListenUrl, ...], BeforeValidator(_one_or_many), WithJsonSchema(_URLS_SCHEMA)
]
DialUrls = Annotated[
    tuple[DialUrl, ...], BeforeValidator(_one_or_many), WithJsonSchema(_URLS_SCHEMA)
]
Host = Annotated[StrictStr, AfterValidator(_host)]


class SocketModel(StrictModel):
    """One secured socket of a node: a channel, a role, and where it listens or dials."""

    channel: Name = Field(description="a channel of the policy")
    role: Role = Field(description="the socket's role on the channel (one of its pattern's)")
    listen: ListenUrls = Field(default=(), description="address(es) this socket listens on")
    dial: DialUrls = Field(default=(), description="address(es) this socket dials")
    topics: tuple[Topic, ...] | None = Field(
        default=None, description="pubsub: topics published, or prefixes subscribed to"
    )
    description: StrictStr | None = Field(default=None, description="what the socket is for")

    @model_validator(mode="after")
    def _has_an_address(self) -> SocketModel:
        if not self.listen and not self.dial:
            raise ValueError("a socket needs listen: or dial: (an address such as tcp://host:5555)")
        return self


class RelaySide(StrictModel):
    """One side of a relay: it either listens or dials, at one address."""

    listen: ListenUrl | None = Field(default=None, description="the address this side listens on")
    dial: DialUrl | None = Field(default=None, description="the address this side dials")

    @model_validator(mode="after")
    def _exactly_one(self) -> RelaySide:
        if (self.listen is None) == (self.dial is None):
            raise ValueError(
                "a relay side has exactly one of listen: or dial:, e.g. {listen: tcp://*:5555}"
            )
        return self

    @property
    def mode(self) -> Literal["listen", "dial"]:
        return "listen" if self.listen is not None else "dial"

    @property
    def url(self) -> str:
        if self.listen is not None:
            return self.listen
        if self.dial is not None:
            return self.dial
        raise ValueError("a relay side has listen: or dial:")  # the validator ensures it


def _relay_pattern(value: object) -> object:
    spec = pattern_of(value)
    if spec is not None and spec.no_relay is not None:
        reason, _, hint = spec.no_relay.partition("; ")
        raise FieldValueError(f"{spec.name} has no relay: {reason}", hint)
    return value


RelayPattern = Annotated[RelayPatternName, BeforeValidator(_relay_pattern)]


class RelayModel(StrictModel):
    """A key-less device forwarding one channel's frames untouched (``nngsec relay``).

    ``front`` faces the initiating side (publishers, pushers, clients, surveyors), ``back``
    the receiving side. For bus both sides face members (the relay reflects between all).
    """

    pattern: RelayPattern = Field(description="the messaging pattern of the channel")
    channel: Name = Field(description="the channel whose frames it forwards")
    front: RelaySide = Field(
        description="faces the initiating side: publishers, pushers, clients, surveyors"
    )
    back: RelaySide = Field(description="faces the receiving side")
    description: StrictStr | None = Field(default=None, description="what the relay is for")


class NodeModel(StrictModel):
    """A process: the identity it runs, its host, its sockets and relays."""

    identity: Name | None = Field(
        default=None,
        description="identity whose keys this node holds; default: the node's name when it "
        "has sockets, none for a node with only relays",
    )
    host: Host | None = Field(
        default=None, description="host the node runs on; default: the node's name"
    )
    description: StrictStr | None = Field(default=None, description="what the node does")
    sockets: tuple[SocketModel, ...] = Field(default=(), description="its secured sockets")
    relays: tuple[RelayModel, ...] = Field(default=(), description="its key-less relays")


class TopologyModel(StrictModel):
    """The fields of a topology file (format version 1)."""

    nngsec: Literal[1] = Field(description="topology format version")
    policy: StrictStr | None = Field(
        default=None, description="the policy file, relative to this topology file"
    )
    description: StrictStr | None = Field(default=None, description="what the deployment is")
    nodes: dict[Name, NodeModel] = Field(
        default_factory=dict, description="name: a process, with its identity and sockets"
    )
