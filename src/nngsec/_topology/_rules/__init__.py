"""Every checker rule, registered in :data:`RULES` by importing its module.

Rules are grouped by what they need: the policy (always run), a topology, a keystore.
"""

from . import (  # noqa: F401 - they register
    _expiry_rules,
    _keystore_rules,
    _policy_rules,
    _wiring_rules,
)
from ._base import DEFAULT_MAC_AUDIENCE, DEFAULT_WIDE_SECRET, RULES, Context, Rule, Scope, rule

__all__ = [
    "DEFAULT_MAC_AUDIENCE",
    "DEFAULT_WIDE_SECRET",
    "RULES",
    "Context",
    "Rule",
    "Scope",
    "ordered_rules",
    "rule",
]

_SCOPE_ORDER = {"policy": 0, "topology": 1, "keystore": 2}


def ordered_rules() -> list[Rule]:
    """Rules in documentation order: by scope, errors first, then by id."""
    return sorted(
        RULES.values(),
        key=lambda r: (_SCOPE_ORDER[r.scope], r.severity != "error", r.id),
    )
