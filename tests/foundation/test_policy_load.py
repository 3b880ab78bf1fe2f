"""Loading policies: the format version, positions of problems, all problems at once."""

from __future__ import annotations

import pytest

from nngsec import PolicyError
from nngsec._policy._load import parse_policy
from tests.support import K2


def problems_of(text: str) -> list[tuple[int | None, int | None, str, str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    return [(p.line, p.column, p.field, p.message, p.hint) for p in caught.value.problems]


@pytest.mark.parametrize("written", ["1.0", "true", "'1'", "2", "0", "-1", "[1]", "~"])
def test_only_the_integer_1_is_format_version_1(written):
    [(line, column, field, message, hint)] = problems_of(f"nngsec: {written}\nname: x\n")
    assert (line, column, field) == (1, 9, "nngsec")
    assert message.startswith("unsupported policy format version")
    assert "nngsec: 1" in hint


K1 = (
    "nngsec-id-v1:4-MzAzl7_f67o0wbg15I396FhlEiYIpurfATwFxZZpGnwDDF9CcW9knd8BOzKRqp4p8X_uevuVDJ"
    "-LK_oLR6ayB-nB0"
)


def test_an_empty_value_is_reported_at_its_key():
    text = f"nngsec: 1\nname: x\nidentities:\n  sensor: {K1}\n  dashboard:\nchannels:\n  c:\n"
    found = problems_of(text)
    assert [(line, column, field) for line, column, field, _, _ in found] == [
        (5, 3, "identities.dashboard"),
        (7, 3, "channels.c"),
    ]


def test_a_missing_pattern_is_reported_at_the_channel_key():
    text = (
        f"nngsec: 1\nname: x\nidentities:\n  sensor: {K1}\nchannels:\n  c:\n    members: [sensor]\n"
    )
    [(line, column, field, message, _)] = problems_of(text)
    assert (line, column, field) == (6, 3, "channels.c.pattern")
    assert message == "missing required field 'pattern'"


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("version: 0", "version", "got 0, expected a whole number of at least 1"),
        ("version: -4", "version", "got -4, expected a whole number of at least 1"),
    ],
)
def test_bounds_say_what_was_found_and_what_was_expected(line, field, message):
    [(got_line, column, got_field, got_message, _)] = problems_of(f"nngsec: 1\nname: x\n{line}\n")
    assert (got_line, column, got_field, got_message) == (3, 10, field, message)


def test_a_malformed_group_is_reported_once_not_also_as_an_unknown_name():
    text = (
        f"nngsec: 1\nname: x\nidentities:\n  sensor: {K1}\ngroups:\n  readers: sensor\n"
        "channels:\n  c:\n    pattern: bus\n    members: [readers]\n"
    )
    [(line, column, field, message, _)] = problems_of(text)
    assert (line, column, field) == (6, 12, "groups.readers")
    assert message == "got 'sensor', expected a list"


def test_a_name_that_is_identity_and_group_is_not_also_a_cycle():
    text = f"nngsec: 1\nname: x\nidentities:\n  sensor: {K1}\ngroups:\n  sensor: [sensor]\n"
    [(line, column, field, message, _)] = problems_of(text)
    assert (line, column, field) == (6, 3, "groups.sensor")
    assert message == "'sensor' is both an identity and a group"


@pytest.mark.parametrize(
    ("channel_line", "hint"),
    [
        ("    scheme: aes", "write one of those"),
        ("    scheme: seald", "did you mean 'sealed'?"),
        ("    max_age: 30", "like 30s, 5m or 1h"),
        ("    max_message_size: 1Mib", "like 512KiB or 1MiB"),
        ("    replay_window: 1", "use a value in that range"),
        ("    replay_window: many", "write a whole number, like 3"),
        ("    description: [a]", "write text"),
        ('    topics: ["a\\0"]', "remove the NUL character"),
    ],
)
def test_every_problem_has_a_hint(channel_line, hint):
    text = (
        f"nngsec: 1\nname: x\nidentities:\n  sensor: {K1}\nchannels:\n  c:\n"
        "    pattern: pubsub\n    publishers: [sensor]\n    subscribers: [sensor]\n"
        f"{channel_line}\n"
    )
    [(line, _, _, _, got_hint)] = problems_of(text)
    assert line == 10
    assert hint in got_hint


def test_sections_with_nothing_under_them_are_empty():
    text = "nngsec: 1\nname: x\nidentities:\ngroups:\nchannels:\nrevoked:   # nobody yet\n"
    policy = parse_policy(text, "p.yaml")
    assert policy.revoked == frozenset()
    assert dict(policy.identities) == {}
    assert dict(policy.groups) == {}
    assert dict(policy.channels) == {}


@pytest.mark.parametrize(
    ("groups", "cycle"),
    [
        ("  g: [g]\n", "g -> g"),
        ("  g: [h]\n  h: [g]\n", "g -> h -> g"),
        ("  top: [g, sensor]\n  g: [h]\n  h: [i]\n  i: [g]\n", "g -> h -> i -> g"),
    ],
)
def test_group_cycles_are_refused(groups, cycle):
    text = f"nngsec: 1\nname: x\nidentities:\n  sensor: {K1}\ngroups:\n{groups}"
    found = problems_of(text)
    [(line, column, field, message, hint)] = [p for p in found if "cycle" in p[3]]
    assert message == f"groups contain each other in a cycle: {cycle}"
    first = cycle.split(" ")[0]
    assert field == f"groups.{first}"
    assert line is not None
    assert text.splitlines()[line - 1].startswith(f"  {first}: ")
    assert column == 3
    assert hint


def test_nested_groups_expand_to_identities():
    text = (
        f"nngsec: 1\nname: x\nidentities:\n  sensor: {K1}\n  other: {K2}\n"
        "groups:\n  inner: [sensor]\n  outer: [inner, other]\n"
        "channels:\n  c:\n    pattern: pair\n    members: [outer]\n"
    )
    policy = parse_policy(text, "p.yaml")
    assert policy.members("c", "members") == {"sensor", "other"}
