"""Valid policies: one per pattern, ``scheme: auto``, immutability, and what ``Policy`` answers."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest

from nngsec import Policy, PolicyError, PublicIdentity, load_policy
from nngsec._policy._load import parse_policy
from nngsec._policy._model import CHANNEL_MODELS, PolicyModel
from tests.support import K1, K2

EXAMPLE = Path(__file__).parents[2] / "policies" / "factory.yaml"
K3 = (
    "nngsec-id-v1:Z6EMcMVfRJwdDoba0YWsPozihhtQBLEvVvMJ8EvEZ2s3egKev333XTBcQJstC1JMXYKfcOLjPC472g"
    "vuAR49Hb3J4IU"
)
HEAD = f"nngsec: 1\nname: demo\nidentities:\n  a: {K1}\n  b: {K2}\n  c: {K3}\n"

PER_PATTERN = {
    "pair": ("members: [a, b]", "secretbox", None),
    "bus": ("members: [a, b, c]", "secretbox", "group"),
    "pubsub": ("publishers: [a]\n    subscribers: [b, c]", "sealed", "audience"),
    "pipeline": ("pushers: [a, b]\n    pullers: [c]", "sealed", "audience"),
    "reqrep": ("clients: [a, b]\n    servers: [c]", "peerbox", None),
    "survey": ("surveyors: [a]\n    respondents: [b, c]", "sealed", "audience"),
}


def one_channel(pattern: str, roles: str, extra: str = "") -> Policy:
    text = HEAD + f"channels:\n  ch:\n    pattern: {pattern}\n    {roles}\n{extra}"
    return parse_policy(text, "p.yaml")


@pytest.mark.parametrize("pattern", sorted(PER_PATTERN))
def test_a_valid_policy_per_pattern(pattern):
    roles, scheme, kind = PER_PATTERN[pattern]
    policy = one_channel(pattern, roles)
    channel = policy.channels["ch"]
    assert channel.pattern_name == pattern
    assert channel.resolved_scheme == scheme  # scheme: auto, by pattern
    assert channel.scheme == scheme
    assert policy.channel_key_kind("ch") == kind
    assert channel.max_age == 30.0
    assert channel.replay_window == 4096
    assert channel.max_message_size == 1 << 20


@pytest.mark.parametrize("pattern", sorted(PER_PATTERN))
def test_scheme_auto_written_out_resolves_the_same(pattern):
    roles, scheme, _ = PER_PATTERN[pattern]
    assert one_channel(pattern, roles, "    scheme: auto\n").channels["ch"].scheme == scheme


@pytest.mark.parametrize(
    ("pattern", "scheme"),
    [
        (pattern, scheme)
        for pattern, schemes in {
            "pair": ["secretbox", "signed", "plaintext"],
            "bus": ["secretbox", "signed", "plaintext"],
            "pubsub": ["sealed", "signed", "plaintext"],
            "pipeline": ["sealed", "signed", "plaintext"],
            "reqrep": ["peerbox", "signed", "plaintext"],
            "survey": ["sealed", "signed", "plaintext"],
        }.items()
        for scheme in schemes
    ],
)
def test_schemes_that_fit_the_pattern(pattern, scheme):
    roles = PER_PATTERN[pattern][0]
    policy = one_channel(pattern, roles, f"    scheme: {scheme}\n")
    assert policy.channels["ch"].resolved_scheme == scheme
    if scheme in ("signed", "plaintext"):
        assert policy.channel_key_kind("ch") is None


@pytest.mark.parametrize(
    ("pattern", "scheme"),
    [
        ("pair", "sealed"),
        ("pair", "peerbox"),
        ("bus", "sealed"),
        ("bus", "peerbox"),
        ("pubsub", "secretbox"),
        ("pubsub", "peerbox"),
        ("pipeline", "secretbox"),
        ("pipeline", "peerbox"),
        ("reqrep", "secretbox"),
        ("reqrep", "sealed"),
        ("survey", "secretbox"),
        ("survey", "peerbox"),
    ],
)
def test_schemes_that_do_not_fit_the_pattern(pattern, scheme):
    roles = PER_PATTERN[pattern][0]
    with pytest.raises(PolicyError) as caught:
        one_channel(pattern, roles, f"    scheme: {scheme}\n")
    [problem] = caught.value.problems
    assert problem.field == "channels.ch.scheme"
    assert (problem.line, problem.column) == (11 + roles.count("\n"), 13)
    assert f"scheme {scheme!r} does not fit pattern {pattern!r}" in problem.message


def test_reqrep_with_several_servers_needs_a_service_key():
    policy = one_channel("reqrep", "clients: [a]\n    servers: [b, c]")
    assert policy.channel_key_kind("ch") == "service"
    assert policy.key_holders("ch") == {"b", "c"}


def test_settings_are_parsed():
    policy = one_channel(
        "pubsub",
        "publishers: [a]\n    subscribers: [b]",
        "    max_age: 1.5m\n    replay_window: 64\n    max_message_size: 512KiB\n"
        '    topics: ["temp.", "hum."]\n    description: readings\n',
    )
    channel = policy.channels["ch"]
    assert isinstance(channel, CHANNEL_MODELS["pubsub"])
    assert channel.max_age == 90.0
    assert channel.replay_window == 64
    assert channel.max_message_size == 512 * 1024
    assert channel.topic_prefixes == ("temp.", "hum.")
    assert channel.description == "readings"


def test_bus_origin_defaults_to_signed():
    default = one_channel("bus", "members: [a, b]").channels["ch"]
    assert isinstance(default, CHANNEL_MODELS["bus"])
    assert default.origin_mode == "signed"
    group = one_channel("bus", "members: [a, b]", "    origin: group\n").channels["ch"]
    assert isinstance(group, CHANNEL_MODELS["bus"])
    assert group.origin_mode == "group"


def test_the_example_policy_loads():
    policy = load_policy(EXAMPLE)
    assert policy.name == "factory"
    assert policy.version == 1
    assert policy.path == EXAMPLE
    assert policy.source == EXAMPLE.read_bytes()
    assert policy.keys_path == EXAMPLE.with_name("factory.keys.json")
    assert {c: s.pattern_name for c, s in policy.channels.items()} == {
        "telemetry": "pubsub",
        "jobs": "pipeline",
        "control": "reqrep",
        "cells": "bus",
        "health": "survey",
        "sync": "pair",
    }
    assert policy.revoked == frozenset()


def test_policy_answers_questions_about_roles():
    text = HEAD + (
        "groups:\n  inner: [a]\n  outer: [inner, b]\n"
        "channels:\n"
        "  t:\n    pattern: pubsub\n    publishers: [outer]\n    subscribers: [c]\n"
        "  r:\n    pattern: reqrep\n    clients: [a]\n    servers: [b]\n"
        "  s:\n    pattern: survey\n    surveyors: [c]\n    respondents: [outer]\n"
        "  p:\n    pattern: pubsub\n    publishers: [a]\n    subscribers: [b]\n"
        "    scheme: plaintext\n"
    )
    policy = parse_policy(text, "p.yaml")
    assert policy.expand(["outer"]) == {"a", "b"}
    assert policy.members("t", "publishers") == {"a", "b"}
    assert policy.senders("t") == {"a", "b"}
    assert policy.receivers("t") == {"c"}
    assert policy.roles_of("a", "t") == ("publishers",)
    assert policy.roles_of("c", "s") == ("surveyors",)
    assert policy.roles_of("c", "r") == ()
    assert policy.key_holders("t") == {"c"}
    assert policy.key_holders("r") == frozenset()  # single server: keys from identities
    # What an identity can read: receivers, reqrep clients (replies), surveyors (answers);
    # never a plaintext channel.
    assert policy.readable_by("a") == ("r", "s")
    assert policy.readable_by("c") == ("t", "s")
    assert policy.readable_by("b") == ("r", "s")
    key_a = policy.identities["a"]
    assert isinstance(key_a, PublicIdentity)
    assert policy.by_key_id[key_a.key_id] == "a"


def test_a_revoked_name_may_stay_listed_in_roles():
    policy = parse_policy(
        HEAD + "channels:\n  ch:\n    pattern: bus\n    members: [a, b]\nrevoked: [b]\n", "p.yaml"
    )
    assert policy.is_revoked("b")
    assert not policy.is_revoked("a")
    assert policy.members("ch", "members") == {"a", "b"}
    assert policy.key_holders("ch") == {"a", "b"}  # rotate leaves the revoked ones out


@pytest.mark.parametrize("name", ["a", "0", "sensor-1", "a.b_c-d", "x" * 64, "no", "true1"])
def test_names_that_follow_the_rule(name):
    policy = parse_policy(f"nngsec: 1\nname: '{name}'\nidentities:\n  '{name}': {K1}\n", "p.yaml")
    assert list(policy.identities) == [name]


@pytest.mark.parametrize("name", ["A", "-a", ".a", "_a", "a b", "a/b", "é", "x" * 65, "a:b"])
def test_names_that_break_the_rule(name):
    with pytest.raises(PolicyError) as caught:
        parse_policy(f"nngsec: 1\nname: '{name}'\n", "p.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.column, problem.field) == (2, 7, "name")
    # A name that breaks the rule is echoed only in part (at most 12 characters of it).
    shown = repr(name) if len(name) <= 12 else f"{name[:10]!r}... ({len(name)} characters)"
    assert problem.message.startswith(f"invalid name {shown}")


def test_models_are_immutable():
    policy = load_policy(EXAMPLE)
    with pytest.raises(pydantic.ValidationError):
        policy.model.name = "other"
    with pytest.raises(pydantic.ValidationError):
        policy.channels["telemetry"].max_age = 1.0
    with pytest.raises(TypeError):
        policy.identities["intruder"] = policy.identities["dashboard"]  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.channels["x"] = policy.channels["telemetry"]  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.groups["x"] = ("dashboard",)  # type: ignore[index]
    assert isinstance(policy.model.revoked, tuple)
    assert isinstance(policy.groups["sensors"], tuple)


@pytest.mark.parametrize(
    "data",
    [
        {"nngsec": 1, "name": "x", "extra": 1},
        {"nngsec": 1, "name": "x", "channels": {"c": {"pattern": "bus", "members": [], "x": 1}}},
    ],
)
def test_models_forbid_unknown_fields(data):
    with pytest.raises(pydantic.ValidationError) as caught:
        PolicyModel.model_validate(data)
    assert [e["type"] for e in caught.value.errors()] == ["extra_forbidden"]


@pytest.mark.parametrize("key", ["a\nb", "bad\tkey", "\u2028x", "x\n" + "y" * 40])
def test_a_key_with_a_control_character_cannot_split_a_message(key, cli, tmp_path):
    """A mapping key is quoted (``repr``) in a field path when it holds a character that
    is not printable, so that the error stays on one line; the CLI prints one line too."""
    text = f"nngsec: 1\nname: p\nidentities:\n  {json.dumps(key)}: {K1}\n"  # YAML escapes
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    [problem] = caught.value.problems
    shown = repr(key) if len(key) <= 12 else f"{key[:10]!r}..."  # quoted, and cut when long
    assert problem.field == f"identities.{shown}", problem.field
    (tmp_path / "p.yaml").write_text(text)
    result = cli("check", "p.yaml")
    assert result.code != 0
    for line in result.err.splitlines() + result.out.splitlines():
        assert line.isprintable(), line
