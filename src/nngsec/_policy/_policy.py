"""A loaded, validated policy and the questions the rest of nngsec asks of it."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from .._keys._identity import PublicIdentity
from .._yaml import YamlDocument
from ._model import ROLES, ChannelBase, Pattern, PolicyModel

__all__ = ["ChannelKeyKind", "Policy", "channel_keys_path", "signature_path"]

ChannelKeyKind = Literal["group", "audience", "service"]

# Which role fields send frames first ("forward") and which receive them, per pattern.
# Replies (reqrep) and responses (survey) travel back from a receiver to a sender.
SENDER_ROLES: dict[Pattern, tuple[str, ...]] = {
    "pair": ("members",),
    "bus": ("members",),
    "pubsub": ("publishers",),
    "pipeline": ("pushers",),
    "reqrep": ("clients",),
    "survey": ("surveyors",),
}
RECEIVER_ROLES: dict[Pattern, tuple[str, ...]] = {
    "pair": ("members",),
    "bus": ("members",),
    "pubsub": ("subscribers",),
    "pipeline": ("pullers",),
    "reqrep": ("servers",),
    "survey": ("respondents",),
}


def channel_keys_path(policy_path: Path) -> Path:
    """The channel-key file beside a policy: ``factory.yaml`` -> ``factory.keys.json``."""
    return policy_path.with_name(f"{policy_path.stem}.keys.json")


def signature_path(policy_path: Path) -> Path:
    """The detached signature of a policy: ``factory.yaml`` -> ``factory.yaml.sig``."""
    return policy_path.with_name(f"{policy_path.name}.sig")


class Policy:
    """A validated policy file.

    The declared fields are on :attr:`model` and mirrored as attributes (``name``,
    ``version``, ``identities``, ``groups``, ``channels``, ``revoked``). Group names are
    expanded by :meth:`members`. ``source`` holds the exact bytes that were parsed, which is
    what a policy signature covers.
    """

    def __init__(
        self, model: PolicyModel, *, path: Path | None, source: bytes, document: YamlDocument
    ) -> None:
        self.model = model
        self.path = path
        self.source = source
        self.document = document

    # -- declared fields ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> int:
        return self.model.version

    # Read-only views: the models are frozen, but their dicts would not be.
    @property
    def identities(self) -> Mapping[str, PublicIdentity]:
        return MappingProxyType(self.model.identities)

    @property
    def groups(self) -> Mapping[str, tuple[str, ...]]:
        return MappingProxyType(self.model.groups)

    @property
    def channels(self) -> Mapping[str, ChannelBase]:
        return MappingProxyType(self.model.channels)

    @property
    def revoked(self) -> frozenset[str]:
        return frozenset(self.model.revoked)

    @property
    def keys_path(self) -> Path | None:
        return channel_keys_path(self.path) if self.path else None

    # -- derived ------------------------------------------------------------------------
    @cached_property
    def by_key_id(self) -> Mapping[bytes, str]:
        """Identity name by 8-byte key id (the sender field of every frame)."""
        return {key.key_id: name for name, key in self.identities.items()}

    def expand(self, names: tuple[str, ...] | list[str]) -> frozenset[str]:
        """Identity names behind a list of identity and group names."""
        result: set[str] = set()
        stack = list(names)
        seen: set[str] = set()
        while stack:
            name = stack.pop()
            if name in self.groups:
                if name not in seen:
                    seen.add(name)
                    stack.extend(self.groups[name])
            else:
                result.add(name)
        return frozenset(result)

    def members(self, channel: str, role_field: str) -> frozenset[str]:
        """Identities listed (directly or through groups) in a role of a channel."""
        return self.expand(self.channels[channel].role_members(role_field))

    def senders(self, channel: str) -> frozenset[str]:
        spec = self.channels[channel]
        return frozenset().union(
            *(self.members(channel, r) for r in SENDER_ROLES[spec.pattern_name])
        )

    def receivers(self, channel: str) -> frozenset[str]:
        spec = self.channels[channel]
        return frozenset().union(
            *(self.members(channel, r) for r in RECEIVER_ROLES[spec.pattern_name])
        )

    def roles_of(self, identity: str, channel: str) -> tuple[str, ...]:
        """The role fields (``publishers``, ...) of ``channel`` that list ``identity``."""
        spec = self.channels[channel]
        return tuple(
            field
            for field, _ in ROLES[spec.pattern_name]
            if identity in self.members(channel, field)
        )

    def channel_key_kind(self, channel: str) -> ChannelKeyKind | None:
        """Which per-epoch channel secret a channel needs, if any.

        Pair channels and single-server reqrep channels derive their keys from identity
        keys; ``signed`` and ``plaintext`` channels have no secret.
        """
        spec = self.channels[channel]
        pattern, scheme = spec.pattern_name, spec.resolved_scheme
        if pattern == "bus" and scheme == "secretbox":
            return "group"
        if scheme == "sealed":
            return "audience"
        if (
            pattern == "reqrep"
            and scheme == "peerbox"
            and len(self.members(channel, "servers")) > 1
        ):
            return "service"
        return None

    def key_holders(self, channel: str) -> frozenset[str]:
        """Identities entitled to the channel secret (revoked ones included; see ``is_revoked``)."""
        kind = self.channel_key_kind(channel)
        if kind is None:
            return frozenset()
        return self.receivers(channel)

    def readable_by(self, identity: str) -> tuple[str, ...]:
        """Channels whose payloads ``identity`` can read (as a receiver of any kind)."""
        readable = []
        for channel, spec in self.channels.items():
            if spec.resolved_scheme == "plaintext":
                continue
            if identity in self.receivers(channel):
                readable.append(channel)
            elif spec.pattern_name == "reqrep" and identity in self.members(channel, "clients"):
                readable.append(channel)  # its own replies
            elif spec.pattern_name == "survey" and identity in self.members(channel, "surveyors"):
                readable.append(channel)  # responses to its surveys
        return tuple(readable)

    def is_revoked(self, identity: str) -> bool:
        return identity in self.revoked

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"<Policy {self.name!r} version {self.version}{where}>"
