"""A loaded, validated policy and the questions the rest of nngsec asks of it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

from .._errors import PolicyError
from .._formats._deployment import decode_deployment_id
from .._formats._units import format_utc, parse_utc
from .._formats._yaml import YamlDocument
from .._keys._identity import PublicIdentity
from .._patterns import ChannelKeyKind, PatternSpec
from ._checks import expand_groups
from ._model import ChannelBase, PolicyModel

__all__ = ["Policy", "channel_keys_path", "signature_path"]


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
        self._members: dict[tuple[str, str], frozenset[str]] = {}

    # -- declared fields ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> int:
        return self.model.version

    @property
    def deployment(self) -> bytes | None:
        """The 16 bytes of ``deployment:``, or ``None`` when the policy has none."""
        text = self.model.deployment
        return decode_deployment_id(text) if text is not None else None

    # Read-only views: the models are frozen, but their dicts would not be.
    @cached_property
    def identities(self) -> Mapping[str, PublicIdentity]:
        return MappingProxyType({n: e.key for n, e in self.model.identities.items()})

    # -- expiry ---------------------------------------------------------------------------
    @cached_property
    def expires_at(self) -> float | None:
        """When the whole policy stops being valid (seconds since the epoch), if ever."""
        return parse_utc(self.model.expires) if self.model.expires else None

    @cached_property
    def _expiries(self) -> Mapping[str, float]:
        found: dict[str, float] = {}
        for name, entry in self.model.identities.items():
            moments = [parse_utc(entry.expires)] if entry.expires else []
            if self.expires_at is not None:
                moments.append(self.expires_at)
            if moments:
                found[name] = min(moments)
        return found

    def expiry_of(self, identity: str) -> float | None:
        """When ``identity`` stops being valid: its own ``expires:`` or the policy's,
        whichever comes first (``None``: never)."""
        return self._expiries.get(identity)

    def expiry_text(self, identity: str) -> str:
        moment = self.expiry_of(identity)
        return format_utc(moment) if moment is not None else "never"

    @property
    def groups(self) -> Mapping[str, tuple[str, ...]]:
        return MappingProxyType(self.model.groups)

    @property
    def channels(self) -> Mapping[str, ChannelBase]:
        return MappingProxyType(self.model.channels)

    @cached_property
    def revoked(self) -> frozenset[str]:
        return frozenset(self.model.revoked)

    @property
    def keys_path(self) -> Path | None:
        return channel_keys_path(self.path) if self.path else None

    # -- derived (the policy is immutable, so every answer is computed once) -----------
    @cached_property
    def by_key_id(self) -> Mapping[bytes, str]:
        """Identity name by 8-byte key id (the sender field of every frame)."""
        return {key.key_id: name for name, key in self.identities.items()}

    def expand(self, names: Iterable[str]) -> frozenset[str]:
        """Identity names behind a list of identity and group names."""
        return expand_groups(names, self.groups)

    def pattern(self, channel: str) -> PatternSpec | None:
        """The pattern of ``channel``, or ``None`` when the policy has no such channel."""
        spec = self.channels.get(channel)
        return spec.pattern_spec if spec is not None else None

    def members(self, channel: str, role_field: str) -> frozenset[str]:
        """Identities listed (directly or through groups) in a role of a channel.

        Only defined identities: a policy that loaded names no other, and a policy loaded
        for the checker (which reports unknown names as findings) leaves them out here.
        """
        key = (channel, role_field)
        found = self._members.get(key)
        if found is None:
            names = self.expand(self.channels[channel].role_members(role_field))
            found = self._members[key] = frozenset(n for n in names if n in self.identities)
        return found

    def _union(self, channel: str, sends: bool) -> frozenset[str]:
        pattern = self.channels[channel].pattern_spec
        roles = [r for r in pattern.roles if (r.sends if sends else r.receives)]
        return frozenset().union(*(self.members(channel, r.field) for r in roles))

    def senders(self, channel: str) -> frozenset[str]:
        """Identities that may send the channel's forward frames (not replies)."""
        return self._union(channel, sends=True)

    def receivers(self, channel: str) -> frozenset[str]:
        """Identities that receive the channel's forward frames (and send its replies)."""
        return self._union(channel, sends=False)

    def roles_of(self, identity: str, channel: str) -> tuple[str, ...]:
        """The role fields (``publishers``, ...) of ``channel`` that list ``identity``."""
        return tuple(
            role.field
            for role in self.channels[channel].pattern_spec.roles
            if identity in self.members(channel, role.field)
        )

    def active(self, names: Iterable[str]) -> frozenset[str]:
        """Those of ``names`` that are not revoked."""
        return frozenset(n for n in names if n not in self.revoked)

    def channel_key_kind(self, channel: str) -> ChannelKeyKind | None:
        """Which per-epoch channel secret a channel needs, if any (see the pattern records).

        Pair channels and single-server reqrep channels derive their keys from identity
        keys; ``signed`` and ``plaintext`` channels have no secret.
        """
        spec = self.channels[channel]
        return spec.pattern_spec.channel_key_kind(
            spec.resolved_scheme, len(self.receivers(channel))
        )

    def key_holders(self, channel: str) -> frozenset[str]:
        """Identities entitled to the channel secret (revoked ones included; see ``is_revoked``)."""
        if self.channel_key_kind(channel) is None:
            return frozenset()
        return self.receivers(channel)

    @cached_property
    def _readable(self) -> Mapping[str, tuple[str, ...]]:
        readable: dict[str, list[str]] = {}
        for channel, spec in self.channels.items():
            if spec.resolved_scheme == "plaintext":
                continue
            readers = set(self.receivers(channel))
            if spec.pattern_spec.has_replies:  # the replies to what they asked
                readers |= self.members(channel, spec.pattern_spec.initiator.field)
            for name in readers:
                readable.setdefault(name, []).append(channel)
        return {name: tuple(channels) for name, channels in readable.items()}

    def readable_by(self, identity: str) -> tuple[str, ...]:
        """Channels whose payloads ``identity`` can read (as a receiver of any kind)."""
        return self._readable.get(identity, ())

    def require_identity(self, identity: str) -> None:
        """Raise :class:`PolicyError`, placed at ``identities:``, unless ``identity`` is one."""
        if identity not in self.identities:
            raise PolicyError(
                self.document.problem(
                    ("identities",),
                    f"no identity {identity!r} in the policy",
                    f"identities are: {', '.join(self.identities) or 'none'}",
                    key=True,
                )
            )

    def is_revoked(self, identity: str) -> bool:
        return identity in self.revoked

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"<Policy {self.name!r} version {self.version}{where}>"
