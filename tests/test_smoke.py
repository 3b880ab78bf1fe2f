from nngsec._policy._admin import rotate
from tests.support import TELEMETRY


def test_world_builds_and_node_opens_its_keys(world_factory):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    node = world.node("dashboard")
    assert node.channel_keys["telemetry"].current.secret is not None
    sender = world.node("sensor")
    assert sender.channel_keys["telemetry"].current.secret is None
    assert sender.channel_keys["telemetry"].current.public is not None
    first = node.channel_keys["telemetry"].current.epoch
    assert rotate(world.policy_path).rotated["telemetry"] > first
