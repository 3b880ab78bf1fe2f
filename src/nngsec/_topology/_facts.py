"""The questions rules ask of a policy, answered once each.

:class:`Policy` expands groups on every call, which is fine for a node but quadratic for a
checker asking per socket of a 10,000-node topology. :class:`PolicyFacts` caches answers.
It also tolerates names that no identity or group defines (``check`` reports them as
``unknown-identity`` findings instead of refusing the policy), and leaves them out of
every answer about who holds keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .._policy._model import ROLES, Pattern
from .._policy._policy import RECEIVER_ROLES, SENDER_ROLES, ChannelKeyKind, Policy
from .._yaml import Loc

__all__ = ["PolicyFacts", "unknown_names"]


def unknown_names(data: Any) -> Iterator[tuple[Loc, str, str]]:
    """(loc, name, where) for every name in groups, channel roles and ``revoked`` that no
    identity or group defines. Works on the raw document so it also runs when the policy
    as a whole does not load; values of the wrong shape are skipped (the model reports them).
    """
    if not isinstance(data, dict):
        return
    identities = data.get("identities")
    groups = data.get("groups")
    identities = identities if isinstance(identities, dict) else {}
    groups = groups if isinstance(groups, dict) else {}
    known = set(identities) | set(groups)

    def scan(loc: Loc, names: object, where: str) -> Iterator[tuple[Loc, str, str]]:
        if isinstance(names, list):
            for index, name in enumerate(names):
                if isinstance(name, str) and name not in known:
                    yield (*loc, index), name, where

    for group, members in groups.items():
        yield from scan(("groups", group), members, f"group {group!r}")
    channels = data.get("channels")
    for channel, spec in (channels if isinstance(channels, dict) else {}).items():
        pattern = spec.get("pattern") if isinstance(spec, dict) else None
        if not isinstance(pattern, str) or pattern not in ROLES:
            continue  # the model reports a missing or malformed pattern
        for role, _ in ROLES[pattern]:
            yield from scan(
                ("channels", channel, role), spec.get(role), f"{role} of channel {channel!r}"
            )
    for loc, name, where in scan(("revoked",), data.get("revoked"), "revoked"):
        if name not in groups:  # a revoked group is another problem, reported by the loader
            yield loc, name, where


class PolicyFacts:
    """Cached, group-expanded answers about one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._members: dict[tuple[str, str], frozenset[str]] = {}
        self._readable: dict[str, frozenset[str]] | None = None

    def pattern(self, channel: str) -> Pattern | None:
        spec = self.policy.channels.get(channel)
        return spec.pattern_name if spec is not None else None

    def role_field(self, channel: str, role: str) -> str | None:
        """The policy field (``publishers``) of a topology role (``publisher``)."""
        pattern = self.pattern(channel)
        if pattern is None:
            return None
        return next((f for f, singular in ROLES[pattern] if singular == role), None)

    def members(self, channel: str, field: str) -> frozenset[str]:
        """Defined identities listed, directly or through groups, in a role (revoked too)."""
        key = (channel, field)
        if key not in self._members:
            expanded = self.policy.members(channel, field)
            self._members[key] = frozenset(n for n in expanded if n in self.policy.identities)
        return self._members[key]

    def _union(self, channel: str, fields: dict[Pattern, tuple[str, ...]]) -> frozenset[str]:
        pattern = self.pattern(channel)
        assert pattern is not None
        return frozenset().union(*(self.members(channel, f) for f in fields[pattern]))

    def senders(self, channel: str) -> frozenset[str]:
        return self._union(channel, SENDER_ROLES)

    def receivers(self, channel: str) -> frozenset[str]:
        return self._union(channel, RECEIVER_ROLES)

    def active(self, names: frozenset[str]) -> frozenset[str]:
        """Those of ``names`` that are not revoked."""
        return frozenset(n for n in names if not self.policy.is_revoked(n))

    def key_kind(self, channel: str) -> ChannelKeyKind | None:
        return self.policy.channel_key_kind(channel)

    def key_holders(self, channel: str) -> frozenset[str]:
        """Defined identities entitled to the channel secret (revoked ones included)."""
        return self.receivers(channel) if self.key_kind(channel) is not None else frozenset()

    def readable(self, identity: str) -> frozenset[str]:
        """Channels whose payloads ``identity`` can read (see :meth:`Policy.readable_by`)."""
        if self._readable is None:
            readable: dict[str, set[str]] = {}
            for channel, spec in self.policy.channels.items():
                if spec.resolved_scheme == "plaintext":
                    continue
                readers = set(self.receivers(channel))
                if spec.pattern_name == "reqrep":
                    readers |= self.members(channel, "clients")  # their own replies
                elif spec.pattern_name == "survey":
                    readers |= self.members(channel, "surveyors")  # the responses
                for name in readers:
                    readable.setdefault(name, set()).add(channel)
            self._readable = {name: frozenset(c) for name, c in readable.items()}
        return self._readable.get(identity, frozenset())
