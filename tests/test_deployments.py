"""Two deployments with the same policy name and the same identities (one key in both: a
copied keystore, or one admin running two plants) do not accept each other's frames, on
any scheme that has cryptography (issue 9, finding 9); and a deployment's own frames are
still accepted across a policy edit and a revocation, which keep its id.

``plaintext`` channels are left out: they have no cryptography to bind anything to.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nngsec import Rejected, load_policy
from nngsec._policy._admin import revoke, rotate
from tests.support import ALL_CHANNELS, NAMES, FakeClock, World, build_world

# channel -> (sender, receiver) of its forward frames
FORWARD = {
    "pair-secretbox": ("alice", "bob"),
    "pair-signed": ("alice", "bob"),
    "bus-secretbox": ("alice", "bob"),
    "bus-group": ("alice", "bob"),
    "bus-signed": ("alice", "bob"),
    "pubsub-sealed": ("alice", "carol"),
    "pubsub-signed": ("alice", "carol"),
    "pipeline-sealed": ("alice", "carol"),
    "pipeline-signed": ("alice", "carol"),
    "survey-sealed": ("alice", "carol"),
    "survey-signed": ("alice", "carol"),
    "pubsub-mac": ("alice", "carol"),
    "pipeline-mac": ("alice", "carol"),
    "survey-mac": ("alice", "carol"),
    "reqrep-single": ("alice", "carol"),
    "reqrep-peerbox": ("alice", "carol"),
    "reqrep-signed": ("alice", "carol"),
}
REPLIES = {
    "survey-sealed": ("alice", "carol"),
    "survey-mac": ("alice", "carol"),
    "survey-signed": ("alice", "carol"),
    "reqrep-single": ("alice", "carol"),
    "reqrep-peerbox": ("alice", "carol"),
    "reqrep-signed": ("alice", "carol"),
}


def _topic(world: World, channel: str) -> str | None:
    return (
        "t.x" if load_policy(world.policy_path).channels[channel].pattern_name == "pubsub" else None
    )


def _twin(world: World, root: Path) -> World:
    """A second deployment of the same policy: the same file (name, identities, channels)
    and the same private keys, set up on its own (its own ``nngsec rotate``), at the same
    epoch numbers (epochs are the rotation time in seconds: two rotations a second apart
    would make the other plant refuse a frame as no-key before its binding is tested)."""
    root.mkdir()
    shutil.copytree(world.keystore.directory, root / "keys")
    text = world.policy_path.read_text()
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("deployment:")]
    policy_path = root / "policy.yaml"
    policy_path.write_text("".join(lines))
    keys = json.loads(world.policy_path.with_name("policy.keys.json").read_text())
    [epoch] = {spec["epochs"][0]["epoch"] for spec in keys["channels"].values()}
    rotate(policy_path, now=float(epoch))
    twin = World(root, policy_path, type(world.keystore)(root / "keys"), world.names)
    assert load_policy(policy_path).name == load_policy(world.policy_path).name
    return twin


@pytest.fixture(scope="module")
def plants(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, World, FakeClock]:
    root = tmp_path_factory.mktemp("plants")
    (root / "one").mkdir()
    one = build_world(root / "one", ALL_CHANNELS, NAMES)
    return one, _twin(one, root / "two"), FakeClock()


def test_the_channel_lists_cover_every_protected_channel(plants):
    one, _, _ = plants
    channels = load_policy(one.policy_path).channels
    assert sorted(FORWARD) == sorted(c for c in channels if not c.endswith("plaintext"))
    assert sorted(REPLIES) == sorted(
        c for c in FORWARD if channels[c].pattern_name in ("reqrep", "survey")
    )


@pytest.mark.parametrize("channel", sorted(FORWARD))
def test_a_frame_of_one_deployment_is_refused_by_the_other(plants, channel):
    one, two, clock = plants
    sender, receiver = FORWARD[channel]
    frame = one.node(sender, clock=clock).seal(channel, b"plant one", topic=_topic(one, channel))
    assert one.node(receiver, clock=clock).open(channel, frame).payload == b"plant one"
    with pytest.raises(Rejected) as caught:
        two.node(receiver, clock=clock).open(channel, frame)
    assert caught.value.reason == "forged"


@pytest.mark.parametrize("channel", sorted(REPLIES))
def test_a_reply_of_one_deployment_is_refused_by_the_other(plants, channel):
    one, two, clock = plants
    asker, answerer = REPLIES[channel]
    client, server = one.node(asker, clock=clock), one.node(answerer, clock=clock)
    answer = server.reply(server.open(channel, client.seal(channel, b"status?")), b"ok")
    assert client.open(channel, answer).payload == b"ok"
    # The same client identity in the other plant: the reply names it, and still fails.
    with pytest.raises(Rejected) as caught:
        two.node(asker, clock=clock).open(channel, answer)
    assert caught.value.reason == "forged"


def test_frames_are_accepted_across_an_edit_and_a_revocation(tmp_path):
    clock = FakeClock()
    world = build_world(tmp_path, ALL_CHANNELS, NAMES)
    deployment = load_policy(world.policy_path).model.deployment
    before = {name: world.node(name, clock=clock) for name in ("alice", "bob", "carol")}
    # An edit by hand (a new description) and a revocation (erin holds nothing here).
    text = world.policy_path.read_text()
    world.policy_path.write_text(text.replace("identities:", "description: edited\nidentities:"))
    revoke(world.policy_path, "erin")
    after = load_policy(world.policy_path)
    assert after.model.deployment == deployment
    assert after.version == 2
    for channel, (sender, receiver) in sorted(FORWARD.items()):
        frame = before[sender].seal(channel, b"sent before", topic=_topic(world, channel))
        reader = world.node(receiver, clock=clock)
        assert reader.open(channel, frame).payload == b"sent before", channel
