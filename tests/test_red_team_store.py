"""Red team, second round (after issue 9): rolling a node back through etcd, against a
real etcd. The store is trusted for availability only; whoever can write it (not the
admin) puts the admin's own older signed set back, before and after a revocation, or the
newer policy without its signature."""

from __future__ import annotations

import itertools
import logging

import pytest

from nngsec import Node, PolicyError
from nngsec._policy._admin import revoke
from nngsec._policy._policy import channel_keys_path, signature_path
from nngsec._runtime._store import publish
from tests.live_support import overwrite_store, signed_world, watching
from tests.net import wait_for

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


def _set_bytes(policy_path) -> dict[str, bytes]:
    return {
        "policy": policy_path.read_bytes(),
        "policy.sig": signature_path(policy_path).read_bytes(),
        "keys.json": channel_keys_path(policy_path).read_bytes(),
    }


def test_the_store_cannot_roll_a_node_back_to_the_set_before_a_revocation(
    world_factory, etcd, caplog
):
    signed = signed_world(world_factory(BODY, NAMES))
    url = etcd.url(f"red-rollback-{next(_prefixes)}")
    before = _set_bytes(signed.policy_path)  # version 1: archiver still reads
    publish(signed.policy_path, url)
    node = watching(url, "dashboard", signed.world.keystore, state_dir=False)
    revoke(signed.policy_path, "archiver")
    signed.sign()
    after = _set_bytes(signed.policy_path)
    publish(signed.policy_path, url)
    wait_for(lambda: node.policy.version == 2, "the node to apply the revocation")
    with caplog.at_level(logging.ERROR, logger="nngsec"):
        overwrite_store(url, before)  # the admin's own signed version 1
        wait_for(lambda: "rollback refused" in caplog.text, "the refusal of version 1")
        overwrite_store(url, {**after, "policy.sig": None})  # version 2, signature removed
        wait_for(lambda: "not signed" in caplog.text, "the refusal of the unsigned version 2")
    assert node.policy.version == 2
    assert "archiver" in node.policy.revoked
    # A node of that keystore started on the store now refuses it too.
    overwrite_store(url, before)
    with pytest.raises(PolicyError, match="rollback refused"):
        Node(url, identity="dashboard", keystore=signed.world.keystore, state_dir=False)
