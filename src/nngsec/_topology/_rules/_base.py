"""The rule registry and what every rule is given.

A rule is one small function ``(Context) -> Iterable[Issue]`` registered with
:func:`rule`: a stable kebab-case id, a default severity and a scope. Its docstring is its
documentation (``docs/rules.md`` is generated from it): the first line says what it finds,
then why it matters, an example and how to fix it.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..._formats._yaml import Loc
from ..._keys._channel_keys import ChannelKeyFile
from ..._keys._identity import PublicIdentity
from ..._keys._keystore import Keystore
from ..._policy._policy import Policy
from .._findings import Issue, Place, Severity, place
from .._links import Graph
from .._load import Topology

__all__ = [
    "DEFAULT_EXPIRY_WARNING",
    "DEFAULT_MAC_AUDIENCE",
    "DEFAULT_WIDE_SECRET",
    "RULES",
    "Context",
    "Rule",
    "Scope",
    "rule",
]

Scope = Literal["policy", "topology", "keystore"]
"""When a rule runs: always, when a topology is given, when ``--keystore`` is given."""

DEFAULT_WIDE_SECRET = 16
DEFAULT_MAC_AUDIENCE = 16
DEFAULT_EXPIRY_WARNING = 14 * 86400.0  # expiring-soon: two weeks ahead


@dataclass
class Context:
    """Everything a rule may look at. Nothing in it is modified by rules."""

    policy: Policy
    topologies: tuple[Topology, ...]
    graph: Graph
    keys: ChannelKeyFile | None
    keystore: Keystore | None = None
    trusted: Mapping[str, PublicIdentity] = field(default_factory=dict)
    wide_secret_threshold: int = DEFAULT_WIDE_SECRET
    mac_audience_threshold: int = DEFAULT_MAC_AUDIENCE
    now: float = field(default_factory=time.time)
    expiry_warning: float = DEFAULT_EXPIRY_WARNING  # seconds ahead expiring-soon looks

    def at_policy(self, loc: Loc, *, key: bool = False) -> Place:
        return place(self.policy.document, loc, key=key)

    @staticmethod
    def at(topology: Topology, loc: Loc, *, key: bool = False) -> Place:
        return place(topology.document, loc, key=key)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    scope: Scope
    check: Callable[[Context], Iterable[Issue]]

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.check) or ""

    @property
    def summary(self) -> str:
        return self.doc.split("\n\n", 1)[0].replace("\n", " ")


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str, severity: Severity, *, scope: Scope
) -> Callable[[Callable[[Context], Iterable[Issue]]], Callable[[Context], Iterable[Issue]]]:
    """Register a rule function under a stable id."""

    def register(
        function: Callable[[Context], Iterable[Issue]],
    ) -> Callable[[Context], Iterable[Issue]]:
        if rule_id in RULES:
            raise RuntimeError(f"duplicate rule id {rule_id}")
        if not function.__doc__:
            raise RuntimeError(f"rule {rule_id} needs a docstring: it is its documentation")
        RULES[rule_id] = Rule(rule_id, severity, scope, function)
        return function

    return register
