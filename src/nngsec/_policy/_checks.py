"""Cross-checks of a policy that a per-field model cannot express.

They run on the raw document (not the validated model) so that they still report their
findings when some other field failed validation: a user fixing a policy sees every
problem at once. Each check skips values whose shape is wrong (the model reports those)
so nothing is reported twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .._errors import Problem
from .._formats._diagnostics import short
from .._formats._names import is_name
from .._formats._yaml import Loc, YamlDocument
from .._keys._identity import PublicIdentity
from .._patterns import SCHEME_NAMES, pattern_of
from ._model import origin_schemes

__all__ = [
    "cross_check",
    "duplicate_key_problems",
    "duplicate_keys",
    "expand_groups",
    "find_group_cycle",
    "unknown_names",
]


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def expand_groups(names: Iterable[str], groups: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """The names behind ``names`` once every group in it is replaced by its members,
    recursively. A group met again (a cycle, reported elsewhere) is not expanded twice."""
    result: set[str] = set()
    stack = list(names)
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in groups:
            if name not in seen:
                seen.add(name)
                stack.extend(groups[name])
        else:
            result.add(name)
    return frozenset(result)


def unknown_names(data: Any) -> Iterator[tuple[Loc, str, str]]:
    """(loc, name, where) for every well-formed name in groups, channel roles and
    ``revoked`` that no identity or group defines.

    Works on the raw document so that it also runs when the policy as a whole does not
    load; values of the wrong shape are skipped (the model reports them). A group listed
    under ``revoked`` is another problem (reported by :func:`cross_check`), not an unknown.
    """
    if not isinstance(data, dict):
        return
    groups = _mapping(data, "groups")
    known = set(_mapping(data, "identities")) | set(groups)

    def scan(loc: Loc, names: object, where: str) -> Iterator[tuple[Loc, str, str]]:
        if isinstance(names, list):
            for index, name in enumerate(names):
                if is_name(name) and name not in known:
                    yield (*loc, index), name, where

    for group, members in groups.items():
        yield from scan(("groups", group), members, f"group {group!r}")
    for channel, spec in _mapping(data, "channels").items():
        pattern = pattern_of(spec.get("pattern")) if isinstance(spec, dict) else None
        if pattern is None:
            continue  # the model reports a missing or malformed pattern
        for role in pattern.roles:
            yield from scan(
                ("channels", channel, role.field),
                spec.get(role.field),
                f"{role.field} of channel {channel!r}",
            )
    yield from scan(("revoked",), data.get("revoked"), "revoked")


def duplicate_keys(identities: Mapping[str, PublicIdentity]) -> Iterator[tuple[str, str, str]]:
    """(name, first name, what they share) for every identity whose key id, Ed25519 key or
    X25519 key an earlier identity already has.

    The decoded keys are compared, not their text: one key under two names would make
    frames from one look like frames from the other, and would keep the key running (and
    receiving rotated epochs) under the second name after the first is revoked.
    """
    seen: dict[tuple[str, bytes], str] = {}
    for name, key in identities.items():
        parts = {"key id": key.key_id, "Ed25519": key.sign_key, "X25519": key.box_key}
        shared = [what for what, value in parts.items() if (what, value) in seen]
        if shared:
            first = seen[(shared[0], parts[shared[0]])]
            if len(shared) == len(parts):
                what = "the same public key"
            elif "key id" in shared:
                what = "the same key id"
            else:
                what = f"the same {shared[0]} key"
            yield name, first, what
        for what, value in parts.items():
            seen.setdefault((what, value), name)


def duplicate_key_problems(
    doc: YamlDocument, identities: Mapping[str, PublicIdentity]
) -> Iterator[Problem]:
    """Each identity that shares a key with another, placed at its key."""
    for name, first, what in duplicate_keys(identities):
        yield doc.problem(
            ("identities", name),
            f"identity {name!r} has {what} as {first!r}",
            "give every identity its own key (nngsec keygen NAME): a key under two names "
            "keeps running under one after the other is revoked",
        )


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


def cross_check(doc: YamlDocument) -> Iterator[Problem]:
    """Every cross-reference problem in the policy document."""
    data: dict[str, Any] = doc.data
    identities = _mapping(data, "identities")
    raw_groups = _mapping(data, "groups")
    groups = {
        name: [m for m in members if is_name(m)]
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

    for loc, name, where in unknown_names(data):
        if where == "revoked":
            yield doc.problem(
                loc,
                f"unknown identity {name!r} in revoked",
                "keep the revoked identity under identities: so its key stays known",
            )
        else:
            yield doc.problem(loc, f"unknown name {name!r} in {where}", hint_names)
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
            yield from _check_channel(doc, channel, spec, known, groups)

    revoked = data.get("revoked")
    if isinstance(revoked, list):
        seen: set[str] = set()
        for index, name in enumerate(revoked):
            if not is_name(name):
                continue
            if name in raw_groups:
                yield doc.problem(
                    ("revoked", index),
                    f"{name!r} is a group; only identities can be revoked",
                    "list each identity of the group under revoked:",
                )
            elif name in seen and name in identities:
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
) -> Iterator[Problem]:
    pattern = pattern_of(spec.get("pattern"))
    if pattern is None:
        return  # the model reports the missing or unknown pattern
    loc = ("channels", channel)
    for role in pattern.roles:
        names = spec.get(role.field)
        if not isinstance(names, list):
            continue  # unknown names in it are reported by cross_check, shapes by the model
        if not all(is_name(n) and n in known for n in names):
            continue
        resolved = expand_groups(names, groups)
        if pattern.members is not None and len(resolved) != pattern.members:
            yield doc.problem(
                (*loc, role.field),
                f"a {pattern.name} channel has exactly {pattern.members} {role.field}, "
                f"got {len(resolved)}" + (f" ({', '.join(sorted(resolved))})" if resolved else ""),
                "use pattern: bus for more than two peers",
            )
        elif not resolved:
            yield doc.problem(
                (*loc, role.field),
                f"{role.field} of channel {channel!r} names no identity",
                f"a {pattern.name} channel needs at least one identity in each role",
            )

    scheme = spec.get("scheme", "auto")
    if scheme in SCHEME_NAMES and scheme not in pattern.schemes:
        yield doc.problem(
            (*loc, "scheme"),
            f"scheme {scheme!r} does not fit pattern {pattern.name!r}, "
            f"expected one of {', '.join(pattern.schemes)}",
            f"use scheme: auto ({pattern.default_scheme}) unless you need another",
        )
    origin = spec.get("origin")
    if origin in pattern.origins[1:] and scheme not in origin_schemes(pattern):
        yield doc.problem(
            (*loc, "origin"),
            f"origin: {origin} applies to scheme {pattern.default_scheme} only, "
            f"got scheme {short(scheme)}",
            "remove origin:",
        )
