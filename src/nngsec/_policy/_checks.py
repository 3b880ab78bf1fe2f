"""Cross-checks of a policy that a per-field model cannot express.

They run on the raw document (not the validated model) so that they still report their
findings when some other field failed validation: a user fixing a policy sees every
problem at once. Each check skips values whose shape is wrong (the model reports those)
so nothing is reported twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .._errors import Problem
from .._names import NAME_MAX, NAME_PATTERN
from .._yaml import YamlDocument
from ._model import DEFAULT_SCHEME, PATTERNS, ROLES, Pattern

__all__ = ["ALLOWED_SCHEMES", "cross_check", "find_group_cycle"]

ALLOWED_SCHEMES: dict[Pattern, tuple[str, ...]] = {
    "pair": ("secretbox", "signed", "plaintext"),
    "bus": ("secretbox", "signed", "plaintext"),
    "pubsub": ("sealed", "signed", "plaintext"),
    "pipeline": ("sealed", "signed", "plaintext"),
    "reqrep": ("peerbox", "signed", "plaintext"),
    "survey": ("sealed", "signed", "plaintext"),
}

_NAME = re.compile(NAME_PATTERN)


def _is_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= NAME_MAX and _NAME.match(value) is not None


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def find_group_cycle(groups: dict[str, list[str]]) -> list[str] | None:
    """A cycle of group names (first repeated at the end), or ``None``."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(group: str) -> list[str] | None:
        state[group] = 1
        path.append(group)
        for member in groups.get(group, []):
            if member not in groups:
                continue
            if state.get(member) == 1:
                return [*path[path.index(member) :], member]
            if member not in state:
                found = visit(member)
                if found:
                    return found
        path.pop()
        state[group] = 2
        return None

    for group in groups:
        if group not in state:
            found = visit(group)
            if found:
                return found
    return None


def _expand(names: list[str], groups: dict[str, list[str]], seen: frozenset[str]) -> set[str]:
    result: set[str] = set()
    for name in names:
        if name in groups:
            if name not in seen:
                result |= _expand(groups[name], groups, seen | {name})
        else:
            result.add(name)
    return result


def cross_check(doc: YamlDocument) -> Iterator[Problem]:
    """Every cross-reference problem in the policy document."""
    data: dict[str, Any] = doc.data
    identities = _mapping(data, "identities")
    raw_groups = _mapping(data, "groups")
    groups = {
        name: [m for m in members if _is_name(m)]
        for name, members in raw_groups.items()
        if isinstance(members, list)
    }
    # A group whose value is malformed is still a defined name (the model reports its value).
    known = set(identities) | set(raw_groups)
    hint_names = "define it under identities: (from `nngsec keygen NAME`) or groups:"

    for name in sorted(set(identities) & set(groups)):
        yield doc.problem(
            ("groups", name),
            f"{name!r} is both an identity and a group",
            "rename the group; a name must mean one thing",
            key=True,
        )

    # Two identities with one key would make frames from one look like frames from both.
    seen_keys: dict[str, str] = {}
    for name, key in identities.items():
        if isinstance(key, str) and key.strip() in seen_keys:
            yield doc.problem(
                ("identities", name),
                f"identity {name!r} has the same public key as {seen_keys[key.strip()]!r}",
                "give every identity its own key (nngsec keygen NAME)",
            )
        elif isinstance(key, str):
            seen_keys[key.strip()] = name

    for group in groups:
        for index, member in enumerate(raw_groups[group]):
            if _is_name(member) and member not in known:
                yield doc.problem(
                    ("groups", group, index),
                    f"unknown name {member!r} in group {group!r}",
                    hint_names,
                )
    # A name that is also an identity is reported above as ambiguous, not also as a cycle.
    cycle = find_group_cycle(
        {
            g: [m for m in ms if m not in identities]
            for g, ms in groups.items()
            if g not in identities
        }
    )
    if cycle:
        yield doc.problem(
            ("groups", cycle[0]),
            f"groups contain each other in a cycle: {' -> '.join(cycle)}",
            "a group may include other groups, but not itself through them",
            key=True,
        )

    for channel, spec in _mapping(data, "channels").items():
        if isinstance(spec, dict):
            yield from _check_channel(doc, channel, spec, known, groups, hint_names)

    revoked = data.get("revoked")
    if isinstance(revoked, list):
        seen: set[str] = set()
        for index, name in enumerate(revoked):
            if not _is_name(name):
                continue
            if name in groups:
                yield doc.problem(
                    ("revoked", index),
                    f"{name!r} is a group; only identities can be revoked",
                    "list each identity of the group under revoked:",
                )
            elif name not in identities:
                yield doc.problem(
                    ("revoked", index),
                    f"unknown identity {name!r} in revoked",
                    "keep the revoked identity under identities: so its key stays known",
                )
            elif name in seen:
                yield doc.problem(
                    ("revoked", index),
                    f"{name!r} is listed twice in revoked",
                    "remove the repeated entry",
                )
            seen.add(name)


def _check_channel(
    doc: YamlDocument,
    channel: str,
    spec: dict[str, Any],
    known: set[str],
    groups: dict[str, list[str]],
    hint_names: str,
) -> Iterator[Problem]:
    pattern = spec.get("pattern")
    if pattern not in PATTERNS:
        return  # the model reports the missing or unknown pattern
    loc = ("channels", channel)
    for role, _singular in ROLES[pattern]:
        names = spec.get(role)
        if not isinstance(names, list):
            continue
        for index, name in enumerate(names):
            if _is_name(name) and name not in known:
                yield doc.problem(
                    (*loc, role, index),
                    f"unknown name {name!r} in {role} of channel {channel!r}",
                    hint_names,
                )
        resolved = _expand([n for n in names if _is_name(n) and n in known], groups, frozenset())
        if pattern == "pair":
            if len(resolved) != 2 and all(_is_name(n) and n in known for n in names):
                yield doc.problem(
                    (*loc, role),
                    f"a pair channel has exactly 2 members, got {len(resolved)}"
                    + (f" ({', '.join(sorted(resolved))})" if resolved else ""),
                    "use pattern: bus for more than two peers",
                )
        elif not resolved and all(_is_name(n) and n in known for n in names):
            yield doc.problem(
                (*loc, role),
                f"{role} of channel {channel!r} names no identity",
                f"a {pattern} channel needs at least one identity in each role",
            )

    scheme = spec.get("scheme", "auto")
    allowed = ALLOWED_SCHEMES[pattern]
    known_scheme = scheme in ("secretbox", "sealed", "peerbox", "signed", "plaintext")
    if known_scheme and scheme not in allowed:
        yield doc.problem(
            (*loc, "scheme"),
            f"scheme {scheme!r} does not fit pattern {pattern!r}, "
            f"expected one of {', '.join(allowed)}",
            f"use scheme: auto ({DEFAULT_SCHEME[pattern]}) unless you need another",
        )
    if pattern == "bus" and spec.get("origin") == "group" and scheme not in ("auto", "secretbox"):
        yield doc.problem(
            (*loc, "origin"),
            f"origin: group applies to scheme secretbox only, got scheme {scheme!r}",
            "remove origin:",
        )
