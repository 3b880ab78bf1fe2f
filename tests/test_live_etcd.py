"""etcd as the store for fleets, against a real etcd on a free loopback port: publish in
one transaction with compare-and-swap, nodes that follow a prefix and verify everything
as from files, and a store outage survived."""

from __future__ import annotations

import itertools
import json
import logging
import time

import pynng
import pytest

from nngsec import Node, PolicyError, Rejected
from nngsec._policy._admin import revoke, rotate
from nngsec._runtime._etcd import EtcdClient
from nngsec._runtime._store import StoreAddress, publish
from tests.etcd_support import Etcd
from tests.live_support import applied, signed_world, watching
from tests.net import address, connected, wait_for

BODY = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor]
    subscribers: [dashboard, archiver]
"""
NAMES = ("sensor", "dashboard", "archiver")
_prefixes = itertools.count()


pytestmark = pytest.mark.usefixtures("no_thread_left_behind")  # see tests/conftest.py


@pytest.fixture
def signed(world_factory):
    return signed_world(world_factory(BODY, NAMES))


def _url(etcd: Etcd) -> str:
    return etcd.url(f"fleet-{next(_prefixes)}")


def test_publish_is_one_transaction_and_a_node_follows_it(signed, etcd, cli, tmp_path):
    url = _url(etcd)
    result = cli("publish", signed.policy_path, url, "--format", "json")
    assert result.code == 0, result.err
    published = json.loads(result.out)
    first = json.loads(signed.policy_path.with_name("policy.keys.json").read_text())
    assert (published["version"], published["epochs"], published["changed"]) == (
        1,
        {"telemetry": first["channels"]["telemetry"]["epochs"][0]["epoch"]},
        True,
    )
    address_ = StoreAddress.parse(url)
    _, kvs = address_.client().range_prefix(address_.range)
    assert {kv.key.decode().rsplit("/", 1)[1] for kv in kvs} == {
        "policy",
        "policy.sig",
        "keys.json",
        "serial",
    }
    assert {kv.mod_revision for kv in kvs} == {published["revision"]}  # one transaction
    assert cli("publish", signed.policy_path, url).out.endswith(
        "already holds this set (version 1)\n"
    )
    keystore = signed.world.keystore
    sensor = watching(url, "sensor", keystore)
    dashboard = watching(url, "dashboard", keystore)
    assert dashboard.source == url and dashboard.policy.version == 1
    pub_url = address("ipc", tmp_path)
    pub = sensor.attach(pynng.Pub0(listen=pub_url), "telemetry")
    sub = dashboard.attach(pynng.Sub0(dial=pub_url, recv_timeout=5000), "telemetry")
    sub.subscribe("")
    connected(pub, sub)
    new = rotate(signed.policy_path, ["telemetry"], activate_in=1.0).rotated["telemetry"]
    signed.sign()
    started = time.monotonic()
    assert cli("publish", signed.policy_path, url).code == 0
    applied([sensor, dashboard], "telemetry", new)
    assert time.monotonic() - started < 3
    time.sleep(2.1)  # past the activation (whole seconds, rounded up)
    pub.send(b"under the new epoch", topic="t")
    message = sub.recv()
    assert (message.payload, message.epoch, sub.stats.rejected) == (
        b"under the new epoch",
        new,
        {},
    )
    pub.close()
    sub.close()


def test_publish_refuses_to_replace_a_newer_set(signed, etcd, cli):
    url = _url(etcd)
    old_policy = signed.policy_path.read_bytes()
    old_sig = signed.policy_path.with_name("policy.yaml.sig").read_bytes()
    old_keys = signed.policy_path.with_name("policy.keys.json").read_bytes()
    revoke(signed.policy_path, "archiver")
    signed.sign()
    assert cli("publish", signed.policy_path, url).code == 0
    signed.policy_path.write_bytes(old_policy)
    signed.policy_path.with_name("policy.yaml.sig").write_bytes(old_sig)
    signed.policy_path.with_name("policy.keys.json").write_bytes(old_keys)
    refused = cli("publish", signed.policy_path, url)
    assert refused.code == 2
    assert "holds policy version 2, newer than version 1" in refused.err
    assert "Traceback" not in refused.err
    # same version, older channel keys: refused too
    revoke_free = signed.world
    rotate(revoke_free.policy_path, ["telemetry"])  # a new epoch locally, version 1
    signed.sign()
    with pytest.raises(PolicyError, match="newer than version 1"):
        publish(signed.policy_path, url)


def test_a_tampered_set_in_the_store_is_refused_like_a_tampered_file(signed, etcd, caplog):
    """The store is untrusted: a set changed in etcd without the admin's signature is
    refused by the node, which keeps its verified set."""
    url = _url(etcd)
    publish(signed.policy_path, url)
    node = watching(url, "dashboard", signed.world.keystore)
    address_ = StoreAddress.parse(url)
    client = address_.client()
    forged = signed.policy_path.read_bytes().replace(b"name: factory", b"name: factory\nversion: 9")
    with caplog.at_level(logging.ERROR, logger="nngsec"):
        assert client.txn([], [EtcdClient.put(address_.key("policy"), forged)])[0]
        wait_for(
            lambda: any("modified after signing" in r.getMessage() for r in caplog.records),
            "the refusal",
        )
    assert node.policy.version == 1


def test_a_node_rides_out_a_store_outage_and_catches_up(signed, etcd_server, tmp_path):
    """Stop etcd, change the policy, start etcd: the node keeps running on its verified set
    meanwhile (sealing and opening), then applies what was published."""
    url = etcd_server.url("outage")
    publish(signed.policy_path, url)
    keystore = signed.world.keystore
    dashboard = watching(url, "dashboard", keystore)
    sensor = Node(signed.policy_path, identity="sensor", keystore=keystore, watch=False)
    etcd_server.stop()
    time.sleep(0.3)
    assert dashboard.watching  # still following, not crashed
    frame = sensor.seal("telemetry", b"during the outage", topic="t")
    assert dashboard.open("telemetry", frame).payload == b"during the outage"
    new = revoke(signed.policy_path, "archiver").rotation.rotated["telemetry"]
    signed.sign()
    etcd_server.start()
    publish(signed.policy_path, url)
    wait_for(lambda: dashboard.policy.version == 2, "the node to catch up", timeout=15)
    assert dashboard.channel_keys["telemetry"].current.epoch == new


def test_a_node_cannot_start_without_its_store(signed, tmp_path):
    from tests.net import free_port

    with pytest.raises(PolicyError, match="unreachable"):
        Node(
            f"etcd://127.0.0.1:{free_port()}/none",
            identity="dashboard",
            keystore=signed.world.keystore,
        )


def test_a_node_refuses_an_empty_prefix(signed, etcd):
    with pytest.raises(PolicyError, match="nothing is published"):
        Node(_url(etcd), identity="dashboard", keystore=signed.world.keystore)


@pytest.mark.parametrize(
    "url",
    ["http://h:1/p", "etcd://h/p", "etcd://h:1", "etcd://h:1/", "etcd://h:99999/p", "etcd://:1/p"],
)
def test_store_urls_are_checked(url):
    from nngsec import UsageError

    with pytest.raises(UsageError):
        StoreAddress.parse(url)


def test_a_revoked_reader_reads_nothing_published_after_the_revocation(signed, etcd):
    url = _url(etcd)
    publish(signed.policy_path, url)
    keystore = signed.world.keystore
    sensor = watching(url, "sensor", keystore)
    archiver = watching(url, "archiver", keystore)
    revoke(signed.policy_path, "archiver")
    signed.sign()
    publish(signed.policy_path, url)
    wait_for(lambda: sensor.policy.version == 2, "the sensor to apply the revocation")
    frame = sensor.seal("telemetry", b"secret", topic="t")
    with pytest.raises(Rejected) as caught:
        archiver.open("telemetry", frame)
    assert caught.value.reason == "no-key"
    assert archiver.policy.version == 1  # its own node refused: it is revoked
