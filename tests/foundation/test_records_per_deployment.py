"""Anti-rollback records are kept per deployment (``NAME@DEPLOYMENT``; ``NAME`` alone for a
policy without a ``deployment:`` id): two deployments that share a policy name and a
keystore do not mix their records, and a copy of a policy from before its id was added
cannot slip past the records its deployment has since."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from nngsec import Keystore, Node, PolicyError, load_policy
from nngsec._policy._admin import revoke, rotate, sign
from nngsec._policy._edit import set_version
from nngsec._policy._signing import sign_files
from tests.support import TELEMETRY, recorded_as

SIGNED = """
channels:
  status:
    pattern: pubsub
    scheme: signed
    publishers: [a]
    subscribers: [b, c]
"""


def _version(path: Path, version: int) -> None:
    path.write_text(set_version(path.read_text(), str(path), version))


def _second_deployment(policy_path: Path, root: Path) -> Path:
    """The same policy (name, identities, channels) made into another deployment: its own
    deployment id and channel keys."""
    root.mkdir()
    text = re.sub(r"^deployment: .*\n", "", policy_path.read_text(), flags=re.MULTILINE)
    path = root / "policy.yaml"
    path.write_text(text)
    rotate(path)
    return path


def test_two_deployments_sharing_a_name_and_a_keystore_keep_their_own_records(
    world_factory, tmp_path
):
    one = world_factory(TELEMETRY, ["sensor", "dashboard"])
    other = _second_deployment(one.policy_path, tmp_path / "other")
    assert load_policy(other).model.deployment != load_policy(one.policy_path).model.deployment
    # The first deployment moves to version 5, and to a key epoch far above the other's.
    _version(one.policy_path, 5)
    rotate(one.policy_path, ["telemetry"], now=time.time() + 10**6)
    one.node("dashboard")

    def other_node() -> Node:
        return Node(load_policy(other), identity="dashboard", keystore=one.keystore)

    # With one record per policy name, version 1 (and its epochs) would be refused here.
    assert other_node().policy.version == 1
    assert one.keystore.accepted_versions() == {
        recorded_as(one.policy_path): 5,
        recorded_as(other): 1,
    }
    # Each keeps its own protection.
    _version(other, 3)
    other_node()
    _version(other, 2)
    with pytest.raises(PolicyError, match="version 2 is older than version 3"):
        other_node()
    assert one.node("dashboard").policy.version == 5


def test_a_copy_from_before_the_deployment_id_is_refused_unsigned(world_factory):
    """revoke gives a policy without an id its id; the copy from before the revocation
    (no id, the revoked identity still in it) must not run under its old name-only record."""
    world = world_factory(SIGNED, ["a", "b", "c"], with_keys=False)
    before = world.policy_path.read_bytes()
    assert world.node("c").policy.model.deployment is None
    revoke(world.policy_path, "c")
    assert world.node("a").policy.version == 2
    deployment = world.node("a").policy.model.deployment
    assert deployment is not None
    world.policy_path.write_bytes(before)
    with pytest.raises(PolicyError) as caught:
        world.node("c")
    [problem] = caught.value.problems
    assert problem.message == (
        "policy 'factory' has no deployment: id, and this keystore accepted policy 'factory' "
        f"of deployment {deployment} before: a copy without the id is refused (it would "
        "bypass that deployment's anti-rollback records)"
    )
    assert (problem.field, problem.hint) == (
        "deployment",
        "deploy the current policy, with its deployment: line",
    )


def test_a_signed_copy_from_before_the_deployment_id_is_refused(world_factory, tmp_path):
    """A policy signed (format 2) before it had an id; nngsec sign then adds the id and
    raises the version (--bump): the old signed set is refused, not matched against the
    name-only record it was verified under."""
    world = world_factory(SIGNED, ["a", "b", "c"], with_keys=False)
    admin = Keystore(tmp_path / "admin")
    key, _, _ = admin.generate("admin")
    world.keystore.trust(admin.directory / "admin.pub")
    old_policy = world.policy_path.read_bytes()
    old_sig = world.policy_path.with_name("policy.yaml.sig")
    sign_files(
        old_sig,
        version=1,
        policy_bytes=old_policy,
        keys_bytes=None,
        key=key,
        comment="signed before deployment ids",
    )
    old_signature = old_sig.read_bytes()
    assert world.node("a").policy.model.deployment is None
    with pytest.raises(PolicyError, match="changed since it was signed at version 1"):
        sign(world.policy_path, admin.key_path("admin"))  # adding the id is a change
    assert world.policy_path.read_bytes() == old_policy  # and nothing was written
    result = sign(world.policy_path, admin.key_path("admin"), bump=True)
    assert (result.bumped_from, result.version) == (1, 2)
    assert result.deployment_added == world.node("a").policy.model.deployment
    world.policy_path.write_bytes(old_policy)
    old_sig.write_bytes(old_signature)
    with pytest.raises(PolicyError, match="has no deployment: id, and this keystore accepted"):
        world.node("a")
