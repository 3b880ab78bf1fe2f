"""Epoch numbers and fingerprints under live rotation: time-based numbers (issue 9, 8c) next
to activation times and lifetimes (issue 10) and the format-1 replacement (finding 9).

A keystore records, per channel, the current epoch of the channel-key file (format 2) and
a fingerprint of it. The fingerprint covers what an epoch is given when it is made (its
deployment, keys, entries, ``activate_at`` and ``expires``), not the ``retire_at`` that a
later rotation sets on it; a pending epoch that a new rotation replaces never gives its
number away.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nngsec import PolicyError
from nngsec._keys._channel_keys import ChannelKeyFile
from nngsec._policy._admin import rotate
from tests.support import NOW, TELEMETRY, FakeClock


def _keys_path(world: Any) -> Path:
    return Path(world.policy_path).with_name("policy.keys.json")


def _edit_current_epoch(world: Any, **fields: object) -> None:
    """Change fields of the current telemetry epoch in the file (as a signed set from the
    admin could: the world is unsigned, so nothing else needs to change)."""
    path = _keys_path(world)
    data = json.loads(path.read_text())
    data["channels"]["telemetry"]["epochs"][0].update(fields)
    path.write_text(json.dumps(data, indent=2) + "\n")


@pytest.fixture
def world(world_factory):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"], with_keys=False)
    rotate(world.policy_path, now=NOW)
    return world


def test_a_retire_time_on_an_epoch_is_not_other_keys(world):
    clock = FakeClock()
    epoch = world.node("dashboard", clock=clock).channel_keys["telemetry"].current.epoch
    _edit_current_epoch(world, retire_at="2027-06-30T00:00:00Z")
    node = world.node("dashboard", clock=clock)  # accepted: the same keys under the number
    assert node.channel_keys["telemetry"].current.epoch == epoch


@pytest.mark.parametrize(
    ("field", "value"),
    [("expires", "2027-06-30T00:00:00Z"), ("activate_at", "2027-01-15T08:00:10Z")],
)
def test_another_activation_or_expiry_under_an_epoch_seen_is_refused(world, field, value):
    """Those are part of the epoch: a set that moves them under the same number is not the
    epoch this keystore accepted (a fingerprint of the keys and entries alone let it pass)."""
    clock = FakeClock()
    world.node("dashboard", clock=clock)
    _edit_current_epoch(world, **{field: value})
    with pytest.raises(PolicyError, match="has other keys under epoch"):
        world.node("dashboard", clock=clock)


def test_the_previous_epoch_keeps_its_fingerprint_when_a_rotation_retires_it(world):
    before = ChannelKeyFile.load(_keys_path(world))
    assert before is not None
    rotate(world.policy_path, ["telemetry"], now=NOW + 5, activate_in=30, grace=60)
    after = ChannelKeyFile.load(_keys_path(world))
    assert after is not None
    previous = after.model.channels["telemetry"].epochs[1]
    assert previous.retire_at is not None  # the rotation set it
    assert after.fingerprint("telemetry", 1) == before.fingerprint("telemetry")
    assert after.fingerprint("telemetry") != before.fingerprint("telemetry")


def test_a_pending_epoch_replaced_in_the_same_second_gives_its_number_away_to_nobody(world):
    """rotate --activate-in, then rotate again before the activation (here in the same
    second): the pending epoch is dropped, and the new one takes the next number, which a
    node that held the pending one accepts (the same number with other keys it refuses)."""
    clock = FakeClock(NOW + 1)
    pending = rotate(world.policy_path, ["telemetry"], now=clock.now, activate_in=30)
    node = world.node("dashboard", clock=clock)
    held = node.channel_keys["telemetry"]
    assert held.current.epoch == pending.rotated["telemetry"]  # held before its activation
    replacing = rotate(world.policy_path, ["telemetry"], now=clock.now, activate_in=30)
    assert replacing.rotated["telemetry"] == pending.rotated["telemetry"] + 1
    epochs = world.node("dashboard", clock=clock).channel_keys["telemetry"].epochs
    assert [e.epoch for e in epochs] == [replacing.rotated["telemetry"], int(NOW)]


def test_replacing_a_format_1_file_starts_at_the_time_unless_its_epochs_ran_ahead(world):
    path = _keys_path(world)
    legacy = json.loads(path.read_text())
    legacy["nngsec-channel-keys"] = 1
    del legacy["deployment"]
    path.write_text(json.dumps(legacy))
    assert rotate(world.policy_path, now=NOW + 100).rotated == {"telemetry": int(NOW) + 100}
    legacy["channels"]["telemetry"]["epochs"][0]["epoch"] = int(NOW) + 10**6
    path.write_text(json.dumps(legacy))
    assert rotate(world.policy_path, now=NOW + 200).rotated == {"telemetry": int(NOW) + 10**6 + 1}
