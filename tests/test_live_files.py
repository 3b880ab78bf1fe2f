"""A node follows its policy files: it verifies every change as at start-up and switches
atomically under attached sockets (real pynng sockets over ipc, traffic flowing)."""

from __future__ import annotations

import json
import logging
import time

import pynng
import pytest

from nngsec import Node, PolicyError, Rejected, SecureSocket
from nngsec._policy._admin import revoke, rotate
from nngsec._policy._policy import channel_keys_path
from tests.live_support import (
    WATCH,
    Flow,
    applied,
    epoch_of,
    no_watchers_left,
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


pytestmark = pytest.mark.usefixtures("no_thread_left_behind")  # see tests/conftest.py


@pytest.fixture
def signed(world_factory):
    return signed_world(world_factory(BODY, NAMES))


def _pubsub(nodes: dict[str, Node], tmp_path) -> tuple[SecureSocket, dict[str, SecureSocket]]:
    url = address("ipc", tmp_path)
    pub = nodes["sensor"].attach(pynng.Pub0(listen=url), "telemetry")
    subs: dict[str, SecureSocket] = {}
    for name in ("dashboard", "archiver"):
        if name in nodes:
            sub = nodes[name].attach(pynng.Sub0(dial=url), "telemetry")
            sub.subscribe("t.")
            subs[name] = sub
    connected(pub, *subs.values())
    wait_for(lambda: len(pub.pipes) == len(subs), "the publisher to see every subscriber")
    return pub, subs


def _session(socket: SecureSocket) -> bytes:
    sender = socket._shared.sender
    assert sender is not None
    return sender.state.session


def _close(*things) -> None:
    for thing in things:
        thing.close()


def test_a_watching_node_switches_under_attached_sockets(signed, tmp_path):
    """Rotate and sign while frames flow: both nodes move to the new epoch without
    re-attaching, no frame is lost or rejected, and each socket keeps its sending session."""
    world = signed.world
    nodes = {n: watching(signed.policy_path, n, world.keystore) for n in NAMES}
    pub, subs = _pubsub(nodes, tmp_path)
    session = _session(pub)
    old = epoch_of(nodes["sensor"], "telemetry")
    flow = Flow(pub, subs).start()
    time.sleep(0.2)
    new = rotate(signed.policy_path, ["telemetry"], activate_in=1.0).rotated["telemetry"]
    signed.sign()
    applied(list(nodes.values()), "telemetry", new)
    wait_for(lambda: new in flow.epochs("dashboard"), "frames under the new epoch", timeout=5)
    flow.stop(expect_all=("dashboard", "archiver"))
    assert not flow.errors
    for name, sub in subs.items():
        assert sub.stats.rejected == {}, name
        assert flow.payloads(name) == {p: 1 for p in flow.sent}, name
        assert flow.epochs(name) == {old, new}, name
    assert _session(pub) == session  # the same sending session
    assert all(node.watching for node in nodes.values())
    _close(pub, *subs.values(), *nodes.values())
    assert not any(node.watching for node in nodes.values())


def test_a_revocation_reaches_running_nodes_and_cuts_the_revoked_reader_off(signed, tmp_path):
    """revoke + sign while frames flow: the publisher switches to the new policy (version
    2) and the new epoch at once, the revoked subscriber reads nothing sealed after that
    (its own node refuses the update: it is revoked), the other loses nothing (with the
    old code the publisher kept sealing to the revoked subscriber's epoch)."""
    world = signed.world
    nodes = {n: watching(signed.copy_to(tmp_path / n), n, world.keystore) for n in NAMES}
    pub, subs = _pubsub(nodes, tmp_path)
    old = epoch_of(nodes["sensor"], "telemetry")
    flow = Flow(pub, subs).start()
    time.sleep(0.2)
    new = revoke(signed.policy_path, "archiver").rotation.rotated["telemetry"]
    signed.sign()
    # A revocation has no lead (senders switch as soon as they see it), so a receiver that
    # applies it after a sender drops that sender's new frames as no-key until it does:
    # here the receivers get the files first.
    for name in ("dashboard", "archiver"):
        signed.copy_to(tmp_path / name)
    wait_for(lambda: nodes["dashboard"].policy.version == 2, "the dashboard to apply it")
    signed.copy_to(tmp_path / "sensor")
    wait_for(lambda: nodes["sensor"].policy.version == 2, "the publisher to apply version 2")
    time.sleep(0.3)  # frames after the switch
    flow.stop(expect_all=("dashboard",))
    assert nodes["archiver"].policy.version == 1  # it refused: it is revoked
    assert subs["dashboard"].stats.rejected == {}
    assert flow.payloads("dashboard") == {p: 1 for p in flow.sent}
    after_switch = {p for p, epoch in flow.received["dashboard"] if epoch == new}
    assert after_switch  # the publisher sealed under the new epoch
    assert not after_switch & set(flow.payloads("archiver"))  # none readable by archiver
    assert flow.epochs("archiver") == {old}
    assert subs["archiver"].stats.rejected["no-key"] >= len(after_switch) - 5
    _close(pub, *subs.values(), *nodes.values())


def test_an_update_that_fails_a_check_is_refused_in_one_line_and_retried(signed, tmp_path, caplog):
    """A changed policy whose signature no longer matches (the admin has not signed yet)
    is refused once, in one log line without traceback; the node keeps version 1. When
    the signature lands, the same update is retried and applied."""
    world = signed.world
    node = watching(signed.policy_path, "dashboard", world.keystore)
    text = signed.policy_path.read_text()
    with caplog.at_level(logging.INFO, logger="nngsec"):
        signed.policy_path.write_text(text.replace("name: factory", "name: factory\nversion: 2"))
        wait_for(
            lambda: any("refused an update" in r.getMessage() for r in caplog.records),
            "the refusal",
        )
        time.sleep(WATCH * 6)  # more polls: still one line
        refusals = [r for r in caplog.records if "refused an update" in r.getMessage()]
        assert len(refusals) == 1
        assert "modified after signing" in refusals[0].getMessage()
        assert refusals[0].exc_info is None and "\n" not in refusals[0].getMessage()
        assert node.policy.version == 1
        signed.sign()
        wait_for(lambda: node.policy.version == 2, "the signed update")
    node.close()


def test_an_update_to_an_older_version_is_refused(signed, tmp_path):
    world = signed.world
    old = signed.policy_path.read_bytes(), signed.policy_path.with_suffix(".yaml.sig")
    old_policy, old_sig = old[0], old[1].read_bytes()
    node = watching(signed.policy_path, "dashboard", world.keystore)
    revoke(signed.policy_path, "archiver")
    signed.sign()
    wait_for(lambda: node.policy.version == 2, "version 2")
    old[1].write_bytes(old_sig)
    signed.policy_path.write_bytes(old_policy)
    time.sleep(WATCH * 8)
    assert node.policy.version == 2
    node.close()


def test_replay_windows_survive_a_switch(signed):
    """A frame accepted before the switch is still refused as a replay after it."""
    world = signed.world
    sensor = Node(signed.policy_path, identity="sensor", keystore=world.keystore, watch=False)
    with watching(signed.policy_path, "dashboard", world.keystore) as dashboard:
        frame = sensor.seal("telemetry", b"once", topic="t.x")
        assert dashboard.open("telemetry", frame).payload == b"once"
        new = rotate(signed.policy_path, ["telemetry"]).rotated["telemetry"]
        signed.sign()
        applied([dashboard], "telemetry", new)
        with pytest.raises(Rejected) as caught:
            dashboard.open("telemetry", frame)
        assert caught.value.reason == "replay"


def test_a_socket_whose_role_is_gone_refuses_to_send_and_drops_as_unauthorized(signed, tmp_path):
    """Decided: when the policy in force no longer lists the identity in a socket's role,
    the socket stays attached but drops every frame as unauthorized (counted), and a
    sending socket refuses to send (PolicyError); the node runs on."""
    world = signed.world
    nodes = {n: watching(signed.policy_path, n, world.keystore) for n in NAMES}
    pub, subs = _pubsub(nodes, tmp_path)
    text = signed.policy_path.read_text()

    def publish_version(version: int, old: str, new: str) -> None:
        nonlocal text
        text = text.replace(f"version: {version - 1}\n", "").replace(old, new)
        text = text.replace("name: factory", f"name: factory\nversion: {version}")
        signed.policy_path.write_text(text)
        signed.sign()
        wait_for(
            lambda: all(n.policy.version == version for n in nodes.values()),
            f"version {version} everywhere",
        )

    publish_version(2, "subscribers: [dashboard, archiver]", "subscribers: [dashboard]")
    flow = Flow(pub, subs, rate=100).start()
    wait_for(lambda: subs["archiver"].stats.rejected["unauthorized"] >= 5, "drops")
    flow.stop(expect_all=("dashboard",))
    assert flow.received["archiver"] == []
    assert set(subs["archiver"].stats.rejected) == {"unauthorized"}
    assert subs["dashboard"].stats.rejected == {}
    publish_version(3, "publishers: [sensor]", "publishers: [dashboard]")
    with pytest.raises(PolicyError, match=r"no role on channel .telemetry. any more"):
        pub.send(b"x", topic="t.x")
    _close(pub, *subs.values(), *nodes.values())


def test_reload_keys_after_revoke_and_sign_applies_the_new_policy(signed):
    """The issue's session: revoke, sign, then reload_keys() on a running node. It failed
    with a hint to sign again (the admin had); now the new policy is in force and the node
    no longer seals to the revoked identity's keys."""
    world = signed.world
    sensor = Node(signed.policy_path, identity="sensor", keystore=world.keystore, watch=False)
    archiver = Node(signed.policy_path, identity="archiver", keystore=world.keystore, watch=False)
    revoke(signed.policy_path, "archiver")
    signed.sign()
    sensor.reload_keys()
    assert sensor.policy.version == 2
    frame = sensor.seal("telemetry", b"after", topic="t.x")
    with pytest.raises(Rejected) as caught:
        archiver.open("telemetry", frame)
    assert caught.value.reason == "no-key"


def test_a_node_dropped_without_close_stops_its_thread(signed):
    import gc

    node = Node(
        signed.policy_path,
        identity="dashboard",
        keystore=signed.world.keystore,
        watch_interval=WATCH,
    )
    assert node.watching
    del node
    gc.collect()
    no_watchers_left()


def test_watch_defaults(signed):
    keystore = signed.world.keystore
    from nngsec import load_policy

    with Node(load_policy(signed.policy_path), identity="dashboard", keystore=keystore) as fixed:
        assert not fixed.watching  # a loaded policy is followed only when asked
    with Node(signed.policy_path, identity="dashboard", keystore=keystore) as follows:
        assert follows.watching and follows.source == str(signed.policy_path)
    with pytest.raises(ValueError, match="watch_interval"):
        Node(signed.policy_path, identity="dashboard", keystore=keystore, watch_interval=0)


def test_epoch_of_helper(signed):
    with Node(signed.policy_path, identity="dashboard", keystore=signed.world.keystore) as node:
        keys = json.loads(channel_keys_path(signed.policy_path).read_text())
        assert epoch_of(node, "telemetry") == keys["channels"]["telemetry"]["epochs"][0]["epoch"]
