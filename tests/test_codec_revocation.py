"""Revocation and key epochs, through the real admin operations on real files."""

from __future__ import annotations

import pytest

from nngsec import PolicyError, Rejected
from nngsec._policy._admin import revoke, rotate
from tests.support import FIRST_EPOCH, FakeClock

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
    assert result.rotation.rotated == {"telemetry": FIRST_EPOCH + 1}
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
    assert dashboard.open("telemetry", old_frame).epoch == FIRST_EPOCH
    late_frame = sensor_before.seal("telemetry", b"epoch 1 again", topic="t")
    clock.advance(121)
    assert reason(dashboard, late_frame) in ("no-key", "stale")
    fresh = sensor_before.seal("telemetry", b"epoch 1 after grace", topic="t")
    assert reason(dashboard, fresh) == "no-key"
    new_frame = world.node("sensor-1", clock=clock).seal("telemetry", b"epoch 2", topic="t")
    assert dashboard.open("telemetry", new_frame).epoch == FIRST_EPOCH + 1


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


def test_revocation_retires_the_epoch_the_revoked_identity_held(world_factory):
    """Where the old epoch's secret lets its holder forge (a bus with origin: group), revoke
    gives no grace: the old epoch is refused at once."""
    clock = FakeClock()
    body = "channels:\n  cells:\n    pattern: bus\n    members: [a, b, c]\n    origin: group\n"
    world = world_factory(body, ["a", "b", "c"], with_keys=False)
    rotate(world.policy_path, now=clock.now)
    old_frame = world.node("a", clock=clock).seal("cells", b"epoch 1")
    revoke(world.policy_path, "c", now=clock.now)
    clock.advance(0.001)
    with pytest.raises(Rejected) as caught:
        world.node("b", clock=clock).open("cells", old_frame)
    assert caught.value.reason == "no-key"


def test_revocation_keeps_a_short_grace_where_the_old_key_only_reads(setup):
    """On a sealed channel the old audience secret lets the revoked identity read, never
    forge: what it reads depends on when senders switch (at once: no lead), so receivers
    keep accepting honest frames still sealed under the old epoch for REVOKE_GRACE, and
    no honest frame in flight is lost (it failed as no-key with a grace of 0)."""
    from nngsec._policy._admin import REVOKE_GRACE

    world, clock = setup
    sensor_before = world.node("sensor-1", clock=clock)
    in_flight = sensor_before.seal("telemetry", b"epoch 1", topic="t")
    revoke(world.policy_path, "archiver", now=clock.now)
    clock.advance(REVOKE_GRACE / 2)
    dashboard = world.node("dashboard", clock=clock)
    assert dashboard.open("telemetry", in_flight).payload == b"epoch 1"
    clock.advance(REVOKE_GRACE)
    late = sensor_before.seal("telemetry", b"still epoch 1", topic="t")
    assert reason(dashboard, late) == "no-key"
    # senders that see the new set seal under the new epoch at once (no lead)
    assert (
        dashboard.open(
            "telemetry",
            world.node("sensor-1", clock=clock).seal("telemetry", b"epoch 2", topic="t"),
        ).epoch
        == FIRST_EPOCH + 1
    )


def test_reload_keys_moves_senders_to_the_new_epoch(setup):
    world, clock = setup
    sensor = world.node("sensor-1", clock=clock)
    archiver_before = world.node("archiver", clock=clock)
    frame = sensor.seal("telemetry", b"1", topic="t")
    assert archiver_before.open("telemetry", frame).epoch == FIRST_EPOCH
    rotate(world.policy_path, ["telemetry"], now=clock.now, grace=60)
    assert sensor.seal("telemetry", b"still 1", topic="t")  # not reloaded yet: epoch 1
    sensor.reload_keys()
    frame = sensor.seal("telemetry", b"2", topic="t")
    assert world.node("dashboard", clock=clock).open("telemetry", frame).epoch == FIRST_EPOCH + 1
    archiver_before.reload_keys()
    assert archiver_before.open("telemetry", frame).payload == b"2"


def test_an_older_channel_key_file_is_refused(setup):
    """Rotation changes only the channel-key file; it must not be rolled back either."""
    world, clock = setup
    keys_path = world.root / "policy.keys.json"
    epoch_1 = keys_path.read_bytes()
    world.node("dashboard", clock=clock)
    rotate(world.policy_path, ["telemetry"], now=clock.now)
    world.node("dashboard", clock=clock)  # the keystore has now seen epoch 2
    keys_path.write_bytes(epoch_1)
    with pytest.raises(PolicyError, match="rollback refused") as caught:
        world.node("dashboard", clock=clock)
    assert caught.value.field == "channels.telemetry"


def test_an_entitled_identity_without_a_key_entry_is_warned_about(world_factory, caplog):
    world = world_factory(BODY, [*NAMES, "auditor"], with_keys=False)
    rotate(world.policy_path)
    text = world.policy_path.read_text().replace(
        "[dashboard, archiver]", "[dashboard, archiver, auditor]"
    )
    world.policy_path.write_text(text)
    caplog.clear()
    world.node("auditor")
    assert "auditor has no key in the current epoch of channel telemetry" in caplog.text
    caplog.clear()
    world.node("dashboard")
    assert "no key in the current epoch" not in caplog.text


def test_a_channel_whose_keys_are_of_another_kind_is_refused(world_factory):
    """A pubsub channel turned into a bus without rotating: the old audience secret, held
    by the former subscribers, must not become the bus group key."""
    world = world_factory(BODY, NAMES)
    first = world.node("dashboard").channel_keys["telemetry"].current.epoch
    text = world.policy_path.read_text()
    start = text.index("channels:")
    world.policy_path.write_text(
        text[:start]
        + "channels:\n  telemetry:\n    pattern: bus\n    members: [sensor-1, dashboard]\n"
    )
    with pytest.raises(PolicyError, match="has audience keys") as caught:
        world.node("dashboard")
    assert "nngsec rotate" in caught.value.hint
    rotate(world.policy_path)  # the fix; and the epoch keeps growing across the change
    node = world.node("dashboard")
    assert node.channel_keys["telemetry"].kind == "group"
    assert node.channel_keys["telemetry"].current.epoch > first


def test_not_before_closes_replays_across_a_restart(setup):
    """Without persisted replay state (state_dir=False) a restarted receiver would accept a
    recorded frame once more. With not_before set to its start, it refuses anything older."""
    world, clock = setup
    frame = world.node("sensor-1", clock=clock).seal("telemetry", b"once", topic="t")
    first = world.node("dashboard", clock=clock, state_dir=False)
    assert first.open("telemetry", frame).payload == b"once"
    clock.advance(5)
    restarted = world.node("dashboard", clock=clock, state_dir=False)  # the frame passes again
    assert restarted.open("telemetry", frame).payload == b"once"
    strict = world.node("dashboard", clock=clock, not_before=clock.now, state_dir=False)
    assert reason(strict, frame) == "stale"
    later = world.node("sensor-1", clock=clock).seal("telemetry", b"new", topic="t")
    assert strict.open("telemetry", later).payload == b"new"
