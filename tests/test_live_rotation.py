"""Zero-loss rotation over real sockets: senders and receivers pick up the new files at
different moments, in both orders, with traffic flowing; no honest frame is rejected."""

from __future__ import annotations

import time

import pynng
import pytest

from nngsec import SecureSocket
from nngsec._policy._admin import rotate
from tests.live_support import (
    Flow,
    applied,
    epoch_of,
    signed_world,
    watching,
)
from tests.net import address, connected, wait_for

BODY = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor]
    subscribers: [dashboard, archiver]
"""
NAMES = ("sensor", "dashboard", "archiver")
LEAD = 2.0  # seconds: longer than both groups take to apply their copies


pytestmark = pytest.mark.usefixtures("no_thread_left_behind")  # see tests/conftest.py


def _run(
    world_factory, tmp_path, first: tuple[str, ...], lead: float
) -> tuple[Flow, dict[str, SecureSocket], set[int]]:
    """Traffic flows while a rotation with ``lead`` reaches the ``first`` nodes, then (half
    a second after they applied it) the others; returns the flow, the sockets and the two
    epochs (before and after)."""
    signed = signed_world(world_factory(BODY, NAMES))
    nodes = {n: watching(signed.copy_to(tmp_path / n), n, signed.world.keystore) for n in NAMES}
    url = address("ipc", tmp_path)
    pub = nodes["sensor"].attach(pynng.Pub0(listen=url), "telemetry")
    subs = {n: nodes[n].attach(pynng.Sub0(dial=url), "telemetry") for n in NAMES[1:]}
    for sub in subs.values():
        sub.subscribe("t.")
    connected(pub, *subs.values())
    wait_for(lambda: len(pub.pipes) == 2, "the publisher to see both subscribers")
    flow = Flow(pub, subs).start()
    time.sleep(0.3)
    old = epoch_of(nodes["sensor"], "telemetry")
    new = rotate(signed.policy_path, ["telemetry"], activate_in=lead).rotated["telemetry"]
    signed.sign()
    later = tuple(n for n in NAMES if n not in first)
    for group in (first, later):
        for name in group:
            signed.copy_to(tmp_path / name)
        applied([nodes[n] for n in group], "telemetry", new)
        time.sleep(0.5)
    wait_for(lambda: new in flow.epochs("dashboard"), "frames under the new epoch", timeout=8)
    time.sleep(0.3)
    return flow, subs, {old, new}


@pytest.mark.slow
@pytest.mark.parametrize(
    "first", [("dashboard", "archiver"), ("sensor",)], ids=["receivers-first", "senders-first"]
)
def test_rotation_with_a_lead_loses_no_frame_in_any_order(world_factory, tmp_path, first):
    flow, subs, epochs = _run(world_factory, tmp_path, first, LEAD)
    flow.stop(expect_all=tuple(subs))
    assert not flow.errors
    for name, sub in subs.items():
        assert sub.stats.rejected == {}, name  # not one no-key
        assert flow.payloads(name) == {p: 1 for p in flow.sent}, name
        assert flow.epochs(name) == epochs, name


@pytest.mark.slow
def test_without_a_lead_senders_first_drop_frames_as_no_key(world_factory, tmp_path):
    """The same run with --activate-in 0s (what rotate did before): the sender switches at
    once and receivers that have not applied the files yet reject its frames as no-key.
    This is the failure the lead prevents, so the test above can fail."""
    flow, subs, _ = _run(world_factory, tmp_path, ("sensor",), 0.0)
    flow.stop()
    assert sum(sub.stats.rejected["no-key"] for sub in subs.values()) > 0


def test_a_pending_epoch_is_held_by_receivers_and_unused_by_senders(world_factory):
    """Before its activation a new epoch opens at receivers, and senders keep the old one."""
    from tests.support import FakeClock

    clock = FakeClock()
    world = world_factory(BODY, NAMES, with_keys=False)
    first = rotate(world.policy_path, now=clock.now).rotated["telemetry"]
    second = rotate(world.policy_path, ["telemetry"], now=clock.now, activate_in=30).rotated[
        "telemetry"
    ]
    sensor, dashboard = world.node("sensor", clock=clock), world.node("dashboard", clock=clock)
    assert epoch_of(dashboard, "telemetry") == second  # held at once
    assert dashboard.open("telemetry", sensor.seal("telemetry", b"a", topic="t.")).epoch == first
    clock.advance(31)
    assert dashboard.open("telemetry", sensor.seal("telemetry", b"b", topic="t.")).epoch == second
    # a rotation while an epoch is pending replaces it; the epoch in use stays readable
    pending = rotate(world.policy_path, ["telemetry"], now=clock.now, activate_in=30)
    replacing = rotate(world.policy_path, ["telemetry"], now=clock.now + 1, activate_in=30)
    keys = world.node("dashboard", clock=clock).channel_keys["telemetry"]
    assert [k.epoch for k in keys.epochs] == [replacing.rotated["telemetry"], second]
    assert replacing.rotated["telemetry"] > pending.rotated["telemetry"] > second
