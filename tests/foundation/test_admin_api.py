"""``nngsec._policy._admin``: rotate, revoke and sign through the Python API.

Time is passed explicitly (``now=``); nothing here patches the clock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nngsec import PolicyError, load_policy
from nngsec._policy._admin import revoke, rotate, sign
from tests.support import FIRST_EPOCH, NOW, at, recorded_as

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


# -- rotate -----------------------------------------------------------------------------

KINDS = {
    "telemetry": "audience",
    "jobs": "audience",
    "control": "service",
    "cells": "group",
    "health": "audience",
}
HOLDERS = {
    "telemetry": ["archiver", "dashboard"],
    "jobs": ["worker"],
    "control": ["controller-a", "controller-b"],
    "cells": ["sensor-1", "sensor-2", "worker"],
    "health": ["sensor-1", "sensor-2", "worker"],
}


def test_rotate_creates_keys_for_exactly_the_channels_that_need_them(factory):
    result = rotate(factory.policy_path, now=NOW)
    assert result.rotated == dict.fromkeys(KINDS, FIRST_EPOCH)
    assert {c: list(n) for c, n in result.sealed_to.items()} == HOLDERS
    assert not result.signature_stale
    data = keys_of(factory.policy_path)
    assert data["nngsec-channel-keys"] == 2
    assert data["policy"] == "factory"
    # The policy had no deployment id: rotate wrote one into it, and the keys bind it.
    assert result.deployment_added is not None
    assert data["deployment"] == result.deployment_added
    assert load_policy(factory.policy_path).model.deployment == result.deployment_added
    assert {c: spec["kind"] for c, spec in data["channels"].items()} == KINDS
    for channel, spec in data["channels"].items():
        [epoch] = spec["epochs"]
        assert epoch["epoch"] == FIRST_EPOCH  # epochs start at the time, so never repeat
        assert epoch["created"] == "2027-01-15T08:00:00Z"
        assert epoch["retire_at"] is None
        assert sorted(epoch["sealed"]) == HOLDERS[channel]
        assert (epoch["public"] is None) == (spec["kind"] == "group")
    assert factory.policy_path.with_name("policy.keys.json").stat().st_mode & 0o777 == 0o644


def test_rotate_with_no_channel_needing_keys_writes_nothing(world_factory):
    world = world_factory(
        "channels:\n  sync:\n    pattern: pair\n    members: [a, b]\n", ["a", "b"], with_keys=False
    )
    result = rotate(world.policy_path, now=NOW)
    assert result.rotated == {}
    assert not result.keys_path.exists()


def test_each_rotation_keeps_one_previous_epoch_until_the_grace_ends(factory):
    rotate(factory.policy_path, now=NOW)
    first = keys_of(factory.policy_path)["channels"]["telemetry"]["epochs"][0]
    rotate(factory.policy_path, ["telemetry"], now=NOW + 60, grace=600)
    epochs = keys_of(factory.policy_path)["channels"]["telemetry"]["epochs"]
    assert [e["epoch"] for e in epochs] == [FIRST_EPOCH + 60, FIRST_EPOCH]
    assert epochs[0]["retire_at"] is None
    assert epochs[1] == {**first, "retire_at": "2027-01-15T08:11:00Z"}
    assert epochs[0]["public"] != first["public"]
    rotate(factory.policy_path, ["telemetry"], now=NOW + 120, grace=600)
    epochs = keys_of(factory.policy_path)["channels"]["telemetry"]["epochs"]
    assert [(e["epoch"], e["retire_at"]) for e in epochs] == [
        (FIRST_EPOCH + 120, None),
        (FIRST_EPOCH + 60, "2027-01-15T08:12:00Z"),
    ]


def test_rotating_named_channels_leaves_the_others_byte_for_byte(factory):
    rotate(factory.policy_path, now=NOW)
    before = keys_of(factory.policy_path)["channels"]
    result = rotate(factory.policy_path, ["cells", "control"], now=NOW + 1)
    assert result.rotated == {"cells": FIRST_EPOCH + 1, "control": FIRST_EPOCH + 1}
    after = keys_of(factory.policy_path)["channels"]
    for channel in ("telemetry", "jobs", "health"):
        assert after[channel] == before[channel]
    assert list(after) == list(before)


def test_rotate_drops_a_channel_that_no_longer_needs_keys(factory):
    rotate(factory.policy_path, now=NOW)
    text = factory.policy_path.read_text().replace(
        "    subscribers: [dashboard, archiver]\n",
        "    subscribers: [dashboard, archiver]\n    scheme: signed\n",
    )
    factory.policy_path.write_text(text)
    result = rotate(factory.policy_path, now=NOW + 1)
    assert "telemetry" not in result.rotated
    assert "telemetry" not in keys_of(factory.policy_path)["channels"]


def test_rotate_refuses_the_keys_of_another_policy(factory):
    rotate(factory.policy_path, now=NOW)
    keys_path = factory.policy_path.with_name("policy.keys.json")
    data = keys_of(factory.policy_path)
    data["policy"] = "other"
    keys_path.write_text(json.dumps(data))
    before = keys_path.read_bytes()
    with pytest.raises(PolicyError) as caught:
        rotate(factory.policy_path, now=NOW + 1)
    assert "belongs to policy 'other', not 'factory'" in caught.value.problems[0].message
    assert keys_path.read_bytes() == before


def test_rotate_uses_the_injected_time_and_randomness(world_factory):
    body = "channels:\n  cells:\n    pattern: bus\n    members: [a, b]\n"
    world = world_factory(body, ["a", "b"], with_keys=False)
    counter = iter(range(10_000))

    def fixed_random(n: int) -> bytes:
        return bytes([next(counter) % 256]) * n

    rotate(world.policy_path, now=NOW, random=fixed_random)
    assert keys_of(world.policy_path)["channels"]["cells"]["epochs"][0]["created"] == (
        "2027-01-15T08:00:00Z"
    )
    # The deployment id, then the secret, then each entry's ephemeral key come from the
    # injected randomness.
    assert world.node("a").policy.deployment == bytes([0]) * 16
    node = world.node("a")
    assert node.channel_keys["cells"].current.secret == bytes([1]) * 32


def test_rotate_never_seals_to_a_revoked_identity_still_listed_in_roles(factory):
    text = factory.policy_path.read_text() + "revoked: [archiver, worker]\n"
    factory.policy_path.write_text(text)
    result = rotate(factory.policy_path, now=NOW)
    assert result.sealed_to["telemetry"] == ("dashboard",)
    assert result.sealed_to["jobs"] == ()
    assert result.sealed_to["cells"] == ("sensor-1", "sensor-2")
    sealed = {
        channel: set(spec["epochs"][0]["sealed"])
        for channel, spec in keys_of(factory.policy_path)["channels"].items()
    }
    assert all({"archiver", "worker"}.isdisjoint(names) for names in sealed.values())


def test_rotate_notes_that_the_signature_is_stale(factory, tmp_path):
    from nngsec import Keystore
    from nngsec._policy._admin import sign

    admin = Keystore(tmp_path / "admin")
    admin.generate("admin")
    rotate(factory.policy_path, now=NOW)
    sign(factory.policy_path, admin.key_path("admin"))
    assert rotate(factory.policy_path, ["jobs"], now=NOW + 1).signature_stale


# -- what each node opens ---------------------------------------------------------------


def test_each_node_opens_only_its_own_entries(factory):
    rotate(factory.policy_path, now=NOW)
    dashboard = factory.node("dashboard").channel_keys
    archiver = factory.node("archiver").channel_keys
    sensor = factory.node("sensor-1").channel_keys
    # Receivers hold the audience secret; its public half is the one in the file.
    assert dashboard["telemetry"].current.secret == archiver["telemetry"].current.secret
    assert dashboard["telemetry"].current.secret is not None
    # A publisher only learns the public key to encrypt to.
    assert sensor["telemetry"].current.secret is None
    assert sensor["telemetry"].current.public == dashboard["telemetry"].current.public
    # A node has entries only for channels it has a role on that use channel keys.
    assert set(dashboard) == {"telemetry", "jobs", "control", "health"}
    assert set(sensor) == {"telemetry", "cells", "health"}
    assert dashboard["jobs"].current.secret is None  # a pusher
    assert dashboard["control"].current.secret is None  # a client of a multi-server service
    assert factory.node("controller-a").channel_keys["control"].current.secret is not None
    assert sensor["cells"].current.public is None  # a group key has no public half
    assert sensor["cells"].current.secret is not None


def test_a_node_knows_the_previous_epoch_until_it_retires(factory):
    rotate(factory.policy_path, now=NOW)
    old = factory.node("dashboard").channel_keys["telemetry"].current
    rotate(factory.policy_path, ["telemetry"], now=NOW + 10, grace=300)
    keys = factory.node("dashboard").channel_keys["telemetry"]
    assert [e.epoch for e in keys.epochs] == [FIRST_EPOCH + 10, FIRST_EPOCH]
    assert keys.current.epoch == FIRST_EPOCH + 10
    assert keys.current.secret != old.secret
    previous = keys.get(FIRST_EPOCH, NOW + 10 + 300)
    assert previous is not None
    assert previous.secret == old.secret
    assert previous.retire_at == NOW + 310
    assert keys.get(FIRST_EPOCH, NOW + 311) is None
    assert keys.get(FIRST_EPOCH + 10, NOW + 10**6) is keys.current
    assert keys.get(3, NOW) is None


def _tamper(policy_path: Path, change) -> None:
    keys_path = policy_path.with_name("policy.keys.json")
    data = json.loads(keys_path.read_text())
    change(data["channels"])
    keys_path.write_text(json.dumps(data, indent=2))


def _entry(channels: dict[str, Any], channel: str, name: str) -> str:
    sealed: dict[str, str] = channels[channel]["epochs"][0]["sealed"]
    return sealed[name]


@pytest.mark.parametrize(
    ("identity", "change"),
    [
        # another identity's entry copied over this one's: it does not open
        (
            "archiver",
            lambda c: c["telemetry"]["epochs"][0]["sealed"].update(
                archiver=_entry(c, "telemetry", "dashboard")
            ),
        ),
        # this identity's entry of one channel moved to another: bound to its channel
        (
            "worker",
            lambda c: c["health"]["epochs"][0]["sealed"].update(worker=_entry(c, "jobs", "worker")),
        ),
        # the epoch number changed: bound to its epoch
        ("worker", lambda c: c["jobs"]["epochs"][0].update(epoch=7)),
        # the kind changed: bound to its kind
        ("worker", lambda c: c["jobs"].update(kind="service")),
        # a public key that is not the sealed secret's
        (
            "dashboard",
            lambda c: c["telemetry"]["epochs"][0].update(public=c["jobs"]["epochs"][0]["public"]),
        ),
        # a sealed entry that is not base64
        ("worker", lambda c: c["jobs"]["epochs"][0]["sealed"].update(worker="!!")),
    ],
)
def test_a_node_refuses_altered_channel_keys(factory, identity, change):
    rotate(factory.policy_path, now=NOW)
    _tamper(factory.policy_path, change)
    with pytest.raises(PolicyError) as caught:
        factory.node(identity)
    [problem] = caught.value.problems
    assert problem.path == str(factory.policy_path.with_name("policy.keys.json"))
    assert problem.field.startswith("channels.")
    assert problem.hint


def test_a_sender_without_a_public_key_to_encrypt_to_is_refused(factory):
    rotate(factory.policy_path, now=NOW)
    _tamper(factory.policy_path, lambda c: c["telemetry"]["epochs"][0].update(public=None))
    with pytest.raises(PolicyError) as caught:
        factory.node("sensor-1")
    assert "missing or invalid public key" in caught.value.problems[0].message


# -- revoke -----------------------------------------------------------------------------


def test_revoke_lists_raises_the_version_and_rotates_what_it_could_read(factory):
    rotate(factory.policy_path, now=NOW)
    before = factory.policy_path.read_text()
    result = revoke(factory.policy_path, "worker", now=NOW + 5, grace=60)
    # jobs (puller), cells (member), health (respondent) are rotated; ping (server of a
    # single-server reqrep) cannot be cut off by rotation and is reported.
    assert result.identity == "worker"
    assert result.version == 2
    assert result.rotation.rotated == dict.fromkeys(("jobs", "cells", "health"), FIRST_EPOCH + 5)
    assert result.rotation.sealed_to == {
        "jobs": (),
        "cells": ("sensor-1", "sensor-2"),
        "health": ("sensor-1", "sensor-2"),
    }
    assert result.not_rotatable == ("ping",)
    policy = load_policy(factory.policy_path)
    assert policy.revoked == frozenset({"worker"})
    assert policy.version == 2
    # Only version: and revoked: were added; the rest is as written.
    after = factory.policy_path.read_text()
    assert after == before.replace("name: factory\n", "name: factory\nversion: 2\n") + (
        "revoked: [worker]\n"
    )
    channels = keys_of(factory.policy_path)["channels"]
    for channel in ("jobs", "cells", "health"):
        current, previous = channels[channel]["epochs"]
        assert "worker" not in current["sealed"]
        assert "worker" in previous["sealed"]  # readable until the grace period ends
        assert previous["retire_at"] == "2027-01-15T08:01:05Z"
    assert channels["telemetry"]["epochs"][0]["epoch"] == FIRST_EPOCH  # worker could not read it


def test_rotate_after_revoke_leaves_the_revoked_identity_without_any_entry(factory):
    rotate(factory.policy_path, now=NOW)
    revoke(factory.policy_path, "dashboard", now=NOW + 1)
    rotate(factory.policy_path, now=NOW + 2)
    for channel, spec in keys_of(factory.policy_path)["channels"].items():
        for epoch in spec["epochs"]:
            assert "dashboard" not in epoch["sealed"], (channel, epoch["epoch"])
    assert (
        "archiver" in keys_of(factory.policy_path)["channels"]["telemetry"]["epochs"][0]["sealed"]
    )


def test_revoke_of_a_sender_only_rotates_nothing(world_factory):
    body = (
        "channels:\n  telemetry:\n    pattern: pubsub\n    publishers: [s]\n    subscribers: [d]\n"
    )
    world = world_factory(body, ["s", "d"], with_keys=False)
    rotate(world.policy_path, now=NOW)
    keys_before = world.policy_path.with_name("policy.keys.json").read_bytes()
    result = revoke(world.policy_path, "s", now=NOW)
    assert result.rotation.rotated == {}
    assert result.not_rotatable == ()
    assert world.policy_path.with_name("policy.keys.json").read_bytes() == keys_before


def test_a_revoked_identity_cannot_run_a_node(factory):
    rotate(factory.policy_path, now=NOW)
    revoke(factory.policy_path, "archiver", now=NOW)
    with pytest.raises(PolicyError) as caught:
        factory.node("archiver")
    assert caught.value.problems[0].message == "identity 'archiver' is revoked in policy 'factory'"
    assert factory.node("dashboard").channel_keys["telemetry"].current.epoch == FIRST_EPOCH + 1


# -- sign -------------------------------------------------------------------------------


@pytest.fixture
def admin_key(tmp_path) -> Path:
    from nngsec import Keystore

    keystore = Keystore(tmp_path / "admin")
    keystore.generate("admin")
    return keystore.key_path("admin")


def test_sign_refuses_the_channel_keys_of_another_policy(factory, admin_key):
    rotate(factory.policy_path, now=NOW)
    keys_path = factory.policy_path.with_name("policy.keys.json")
    data = keys_of(factory.policy_path)
    data["policy"] = "other"
    keys_path.write_text(json.dumps(data))
    with pytest.raises(PolicyError) as caught:
        sign(factory.policy_path, admin_key)
    assert caught.value.path == str(keys_path)
    assert "belongs to policy 'other', not 'factory'" in caught.value.problems[0].message
    assert not factory.policy_path.with_name("policy.yaml.sig").exists()


def test_sign_refuses_a_policy_that_does_not_load(factory, admin_key):
    factory.policy_path.write_text(factory.policy_path.read_text() + "chanels: {}\n")
    with pytest.raises(PolicyError) as caught:
        sign(factory.policy_path, admin_key)
    assert caught.value.field == "chanels"
    assert not factory.policy_path.with_name("policy.yaml.sig").exists()


def test_sign_returns_the_signature_and_the_signer(factory, admin_key):
    from nngsec import Keystore
    from nngsec._policy._signing import verify_signature

    rotate(factory.policy_path, now=NOW)
    result = sign(factory.policy_path, admin_key)
    target = factory.policy_path.with_name("policy.yaml.sig")
    assert result.signature_path == target
    assert result.keys_path == factory.policy_path.with_name("policy.keys.json")
    assert (result.version, result.bumped_from) == (1, None)
    admin = Keystore(admin_key.parent).identity("admin")
    assert result.key_id == admin.key_id.hex()
    signer = verify_signature(
        target,
        version=1,
        policy_bytes=factory.policy_path.read_bytes(),
        keys_bytes=factory.policy_path.with_name("policy.keys.json").read_bytes(),
        trusted={"root": admin.public},
    )
    assert signer == "root"


@pytest.mark.parametrize("grace", [-1.0, float("inf"), 366 * 86400.0])
def test_rotate_refuses_an_impossible_grace_before_touching_anything(factory, grace):
    with pytest.raises(ValueError, match="grace must be from 0"):
        rotate(factory.policy_path, now=NOW, grace=grace)
    assert not factory.policy_path.with_name("policy.keys.json").exists()


def test_keygen_trust_sign_rotate_revoke_round_trip_through_the_api(tmp_path):
    from nngsec import Keystore, Node

    node_keys = Keystore(tmp_path / "keys")
    entries = [
        f"  {name}: {node_keys.generate(name)[0].public.to_text()}"
        for name in ("sensor", "dashboard", "archiver")
    ]
    admin = Keystore(tmp_path / "admin")
    _, admin_key, admin_pub = admin.generate("admin")
    policy_path = tmp_path / "plant.yaml"
    policy_path.write_text(
        "nngsec: 1\nname: plant\nidentities:\n"
        + "\n".join(entries)
        + "\nchannels:\n  telemetry:\n    pattern: pubsub\n    publishers: [sensor]\n"
        "    subscribers: [dashboard, archiver]\n"
    )
    assert node_keys.trust(admin_pub)[2]
    assert rotate(policy_path, now=NOW).rotated == {"telemetry": FIRST_EPOCH}
    sign(policy_path, admin_key)

    def node(identity: str) -> Node:
        return Node(load_policy(policy_path), identity=identity, keystore=node_keys)

    secret = node("dashboard").channel_keys["telemetry"].current.secret
    assert secret == node("archiver").channel_keys["telemetry"].current.secret
    result = revoke(policy_path, "archiver", now=NOW + 1)
    assert result.rotation.sealed_to == {"telemetry": ("dashboard",)}
    with pytest.raises(PolicyError, match="modified after signing"):
        node("dashboard")
    sign(policy_path, admin_key)
    current = node("dashboard").channel_keys["telemetry"]
    assert current.current.epoch == FIRST_EPOCH + 1
    assert current.current.secret != secret
    with pytest.raises(PolicyError, match="is revoked"):
        node("archiver")
    assert node_keys.accepted_versions(verified=True) == {recorded_as(policy_path): 2}
    assert node_keys.accepted_versions() == {}  # nothing was used unverified


def test_rotate_refuses_to_write_a_channel_key_file_nodes_would_refuse(factory, monkeypatch):
    """Every node refuses a channel-key file over the limit unread: rotate says so and
    writes neither file (not even the deployment id it would have added to the policy)."""
    from nngsec._formats import _limits
    from nngsec._keys import _channel_keys

    policy_before = factory.policy_path.read_bytes()
    small = _limits.SizeLimit("channel-key", 2048, "(the test's limit)")
    monkeypatch.setattr(_channel_keys, "CHANNEL_KEYS_LIMIT", small)
    with pytest.raises(PolicyError) as caught:
        rotate(factory.policy_path, now=NOW)
    [problem] = caught.value.problems
    assert "over the 2KiB every node refuses unread: not written" in problem.message
    assert problem.path == str(factory.policy_path.with_name("policy.keys.json"))
    assert "split the largest channels" in problem.hint
    assert not factory.policy_path.with_name("policy.keys.json").exists()
    assert factory.policy_path.read_bytes() == policy_before
