"""``nngsec._admin``: rotate, revoke and sign through the Python API.

Time is passed explicitly (``now=``); nothing here patches the clock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nngsec import PolicyError, load_policy
from nngsec._admin import revoke, rotate

from .helpers import at

NOW = 1_800_000_000.0

FACTORY = """
groups:
  sensors: [sensor-1, sensor-2]
  controllers: [controller-a, controller-b]
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensors]
    subscribers: [dashboard, archiver]
  jobs:
    pattern: pipeline
    pushers: [dashboard]
    pullers: [worker]
  control:
    pattern: reqrep
    clients: [dashboard]
    servers: [controllers]
  ping:
    pattern: reqrep
    clients: [dashboard]
    servers: [worker]
  cells:
    pattern: bus
    members: [sensors, worker]
  health:
    pattern: survey
    surveyors: [dashboard]
    respondents: [sensors, worker]
  sync:
    pattern: pair
    members: [dashboard, archiver]
  audit:
    pattern: pubsub
    publishers: [worker]
    subscribers: [archiver]
    scheme: signed
  debug:
    pattern: bus
    members: [worker, dashboard]
    scheme: plaintext
"""
NAMES = [
    "sensor-1",
    "sensor-2",
    "dashboard",
    "archiver",
    "worker",
    "controller-a",
    "controller-b",
]


def keys_of(policy_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(policy_path.with_name("policy.keys.json").read_text())
    return data


@pytest.fixture
def factory(world_factory):
    return world_factory(FACTORY, NAMES, with_keys=False)


def test_rotate_names_an_unknown_channel_at_the_channels_key(factory):
    with pytest.raises(PolicyError) as caught:
        rotate(factory.policy_path, ["telemetri"], now=NOW)
    [problem] = caught.value.problems
    assert at(factory.policy_path.read_text(), problem) == "channels:"
    assert (problem.column, problem.field) == (1, "channels")
    assert problem.message == "no channel 'telemetri' in the policy"
    assert "telemetry" in problem.hint


@pytest.mark.parametrize("channel", ["sync", "ping", "audit", "debug"])
def test_rotate_refuses_a_channel_that_needs_no_keys_at_its_key(factory, channel):
    with pytest.raises(PolicyError) as caught:
        rotate(factory.policy_path, [channel], now=NOW)
    [problem] = caught.value.problems
    assert at(factory.policy_path.read_text(), problem) == f"{channel}:"
    assert (problem.column, problem.field) == (3, f"channels.{channel}")
    assert "needs no channel keys" in problem.message
    assert not factory.policy_path.with_name("policy.keys.json").exists()


def test_revoke_names_an_unknown_identity_at_the_identities_key(factory):
    before = factory.policy_path.read_bytes()
    with pytest.raises(PolicyError) as caught:
        revoke(factory.policy_path, "intruder", now=NOW)
    [problem] = caught.value.problems
    assert at(before.decode(), problem) == "identities:"
    assert (problem.column, problem.field) == (1, "identities")
    assert problem.message == "no identity 'intruder' in the policy"
    assert factory.policy_path.read_bytes() == before


def test_revoking_twice_points_at_the_first_revocation(factory):
    revoke(factory.policy_path, "worker", now=NOW)
    revoke(factory.policy_path, "archiver", now=NOW)
    before = factory.policy_path.read_bytes()
    with pytest.raises(PolicyError) as caught:
        revoke(factory.policy_path, "worker", now=NOW)
    [problem] = caught.value.problems
    assert (problem.field, problem.message) == ("revoked[0]", "'worker' is already revoked")
    assert at(before.decode(), problem).startswith("worker")
    assert factory.policy_path.read_bytes() == before
    assert load_policy(factory.policy_path).version == 3
