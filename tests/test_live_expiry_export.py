"""Expiry (policies, identities, key epochs; the checker's expired and expiring-soon) and
``nngsec export`` (one node's bundle, and nothing of anyone else's)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from nngsec import Node, PolicyError, Rejected, load_policy
from nngsec._formats._units import format_utc
from nngsec._policy._admin import rotate
from tests.support import NOW, FakeClock

BODY = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor]
    subscribers: [dashboard]
"""
DAY = 86400.0


def _with_expiry(world, *, policy: float | None = None, sensor: float | None = None) -> None:
    text = world.policy_path.read_text()
    if policy is not None:
        text = text.replace("name: factory\n", f"name: factory\nexpires: {format_utc(policy)}\n")
    if sensor is not None:
        key = str(world.keystore.identity("sensor").public.to_text())
        text = text.replace(
            f"  sensor: {key}", f"  sensor: {{key: {key}, expires: {format_utc(sensor)}}}"
        )
    world.policy_path.write_text(text)


def test_a_node_refuses_to_start_on_an_expired_policy(world_factory):
    world = world_factory(BODY, ("sensor", "dashboard"))
    _with_expiry(world, policy=NOW - 1)
    with pytest.raises(PolicyError, match="expired at"):
        world.node("dashboard", clock=FakeClock())
    assert world.node("dashboard", clock=FakeClock(NOW - 10)).policy.expires_at == NOW - 1


def test_frames_from_an_expired_identity_are_refused_as_revoked(world_factory):
    world = world_factory(BODY, ("sensor", "dashboard"))
    _with_expiry(world, sensor=NOW + 60)
    clock = FakeClock()
    sensor, dashboard = world.node("sensor", clock=clock), world.node("dashboard", clock=clock)
    frame = sensor.seal("telemetry", b"in time", topic="t")
    assert dashboard.open("telemetry", frame).payload == b"in time"
    late = sensor.seal("telemetry", b"late", topic="t")
    clock.advance(61)
    with pytest.raises(Rejected) as caught:
        dashboard.open("telemetry", late)
    assert caught.value.reason == "revoked"
    with pytest.raises(PolicyError, match="expired at"):
        sensor.seal("telemetry", b"after", topic="t")
    with pytest.raises(PolicyError, match="expired at"):
        world.node("sensor", clock=clock)


def test_an_epoch_with_a_lifetime_stops_being_used(world_factory):
    world = world_factory(BODY, ("sensor", "dashboard"), with_keys=False)
    rotate(world.policy_path, now=NOW, lifetime=20)
    clock = FakeClock()
    sensor, dashboard = world.node("sensor", clock=clock), world.node("dashboard", clock=clock)
    frame = sensor.seal("telemetry", b"x", topic="t")
    clock.advance(21)  # within max_age (30s): the epoch, not the frame, is too old
    with pytest.raises(Rejected) as caught:
        dashboard.open("telemetry", frame)
    assert caught.value.reason == "no-key"
    with pytest.raises(PolicyError, match="expired"):
        sensor.seal("telemetry", b"y", topic="t")


def test_the_checker_reports_expired_and_expiring_soon(world_factory, cli):
    world = world_factory(BODY, ("sensor", "dashboard"))
    import time

    _with_expiry(world, policy=time.time() + 3 * DAY, sensor=time.time() - DAY)
    run = cli("check", world.policy_path, "--format", "json")
    assert run.code == 1, run.err
    found = {(f["rule"], f["severity"]) for f in json.loads(run.out)["findings"]}
    assert ("expired", "error") in found
    assert ("expiring-soon", "warning") in found
    quiet = cli("check", world.policy_path, "--format", "json", "--expiry-warning", "1d")
    assert "expiring-soon" not in {f["rule"] for f in json.loads(quiet.out)["findings"]}


def test_identity_entries_keep_their_expiry_in_the_model(world_factory):
    world = world_factory(BODY, ("sensor", "dashboard"))
    _with_expiry(world, sensor=NOW + 5)
    policy = load_policy(world.policy_path)
    assert policy.expiry_of("sensor") == NOW + 5
    assert policy.expiry_of("dashboard") is None
    assert policy.identities["sensor"] == world.keystore.identity("sensor").public


def test_export_writes_what_one_node_needs_and_nothing_of_anyone_else(world_factory, cli):
    names = ("sensor", "dashboard", "archiver")
    world = world_factory(BODY.replace("[dashboard]", "[dashboard, archiver]"), names)
    from tests.live_support import signed_world

    signed = signed_world(world)
    out = world.root / "bundle"
    run = cli(
        "export",
        world.policy_path,
        "dashboard",
        "--out",
        out,
        "--keystore",
        world.keystore.directory,
    )
    assert run.code == 0, run.err
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == {
        "node.json",
        "keys/dashboard.key",
        "keys/dashboard.pub",
        "keys/trusted/admin.pub",
        "policy.yaml",
        "policy.yaml.sig",
        "policy.keys.json",
    }
    assert stat.S_IMODE(os.stat(out / "keys" / "dashboard.key").st_mode) == 0o600
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for other in ("sensor", "archiver"):
        secret = world.keystore.identity(other)
        assert secret.to_text().encode() not in everything
        assert (world.keystore.directory / f"{other}.key").read_bytes() not in everything
    assert signed.admin_key.read_bytes() not in everything
    config = json.loads((out / "node.json").read_text())
    with Node(
        out / config["source"], identity=config["identity"], keystore=out / config["keystore"]
    ) as node:
        assert node.policy.version == 1  # the bundle runs, signature verified
    again = cli(
        "export",
        world.policy_path,
        "dashboard",
        "--out",
        out,
        "--keystore",
        world.keystore.directory,
    )
    assert again.code == 2 and "not empty" in again.err
    store = cli(
        "export", world.policy_path, "archiver", "--out", world.root / "b2",
        "--keystore", world.keystore.directory, "--store", "etcd://127.0.0.1:2379/factory",
    )  # fmt: skip
    assert store.code == 0, store.err
    assert json.loads((world.root / "b2" / "node.json").read_text())["source"].startswith("etcd")
    assert not (world.root / "b2" / "policy.yaml").exists()
    refused = cli("export", world.policy_path, "nobody", "--out", world.root / "b3")
    assert refused.code == 2 and "no identity 'nobody'" in refused.err
