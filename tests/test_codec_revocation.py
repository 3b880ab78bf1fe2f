"""Revocation and key epochs, through the real admin operations on real files."""

from __future__ import annotations

import pytest

from nngsec import PolicyError, Rejected
from nngsec._admin import revoke, rotate
from tests.support import FakeClock

BODY = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor-1, sensor-2]
    subscribers: [dashboard, archiver]
"""
NAMES = ["sensor-1", "sensor-2", "dashboard", "archiver"]


@pytest.fixture
def setup(world_factory):
    clock = FakeClock()
    world = world_factory(BODY, NAMES, with_keys=False)
    rotate(world.policy_path, now=clock.now)
    return world, clock


def reason(node, frame):
    with pytest.raises(Rejected) as caught:
        node.open("telemetry", frame)
    return caught.value.reason


def test_a_revoked_sender_is_rejected(setup):
    world, clock = setup
    old_sensor = world.node("sensor-2", clock=clock)
    frame = old_sensor.seal("telemetry", b"before revocation", topic="t")
    revoke(world.policy_path, "sensor-2", now=clock.now)
    dashboard = world.node("dashboard", clock=clock)
    assert reason(dashboard, frame) == "revoked"
    with pytest.raises(PolicyError, match="revoked"):
        world.node("sensor-2", clock=clock)


def test_a_revoked_receiver_cannot_read_new_frames(setup):
    world, clock = setup
    archiver_before = world.node("archiver", clock=clock)
    result = revoke(world.policy_path, "archiver", now=clock.now)
    assert result.rotation.rotated == {"telemetry": 2}
    assert "archiver" not in result.rotation.sealed_to["telemetry"]
    sensor = world.node("sensor-1", clock=clock)
    frame = sensor.seal("telemetry", b"after revocation", topic="t")
    assert reason(archiver_before, frame) == "no-key"  # holds epoch 1 only
    assert world.node("dashboard", clock=clock).open("telemetry", frame).payload == (
        b"after revocation"
    )


def test_previous_epoch_opens_during_grace_only(setup):
    world, clock = setup
    sensor_before = world.node("sensor-1", clock=clock)
    old_frame = sensor_before.seal("telemetry", b"epoch 1", topic="t")
    rotate(world.policy_path, ["telemetry"], now=clock.now, grace=120)
    dashboard = world.node("dashboard", clock=clock)
    assert dashboard.open("telemetry", old_frame).epoch == 1
    late_frame = sensor_before.seal("telemetry", b"epoch 1 again", topic="t")
    clock.advance(121)
    assert reason(dashboard, late_frame) in ("no-key", "stale")
    fresh = sensor_before.seal("telemetry", b"epoch 1 after grace", topic="t")
    assert reason(dashboard, fresh) == "no-key"
    new_frame = world.node("sensor-1", clock=clock).seal("telemetry", b"epoch 2", topic="t")
    assert dashboard.open("telemetry", new_frame).epoch == 2


def test_rotation_after_adding_a_subscriber(world_factory):
    clock = FakeClock()
    world = world_factory(BODY, [*NAMES, "auditor"], with_keys=False)
    rotate(world.policy_path, now=clock.now)
    text = world.policy_path.read_text().replace(
        "subscribers: [dashboard, archiver]", "subscribers: [dashboard, archiver, auditor]"
    )
    world.policy_path.write_text(text)
    auditor = world.node("auditor", clock=clock)
    frame = world.node("sensor-1", clock=clock).seal("telemetry", b"x", topic="t")
    assert reason(auditor, frame) == "no-key"  # no entry until the next rotation
    rotate(world.policy_path, now=clock.now)
    frame = world.node("sensor-1", clock=clock).seal("telemetry", b"x", topic="t")
    assert world.node("auditor", clock=clock).open("telemetry", frame).payload == b"x"
