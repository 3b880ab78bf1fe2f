"""Fail closed when asked, and when the deployment is signed (issue 9, finding 10).

``Node(..., require_signed=True)`` refuses an unsigned policy. The keystore's setting for
every node using it is pinning a signer (``nngsec trust``): from then on an unsigned or
badly signed policy is refused. And a node whose keystore pins no signer refuses a policy
with a signature beside it: the deployment is signed, the node was set up without trust.
"""

from __future__ import annotations

import logging

import pytest

from nngsec import Keystore, Node, PolicyError, load_policy
from nngsec._policy._admin import rotate, sign
from nngsec._policy._load import parse_policy
from tests.support import NOW, TELEMETRY


@pytest.fixture
def admin(tmp_path) -> Keystore:
    keystore = Keystore(tmp_path / "admin")
    keystore.generate("admin")
    return keystore


@pytest.fixture
def world(world_factory):
    return world_factory(TELEMETRY, ["sensor", "dashboard"])


def refusal(world, **options) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        world.node("dashboard", **options)
    return caught.value


def test_require_signed_refuses_an_unsigned_policy(world):
    error = refusal(world, require_signed=True)
    [problem] = error.problems
    assert problem.message == (
        f"this node requires a signed policy (require_signed=True), and keystore "
        f"{world.keystore.directory} pins no signer to verify one with"
    )
    assert problem.path == str(world.policy_path)
    assert problem.hint == (
        f"pin the admin's key: nngsec trust ADMIN.pub --keystore {world.keystore.directory}"
    )
    world.node("dashboard")  # the default still runs it (with a warning)


def test_require_signed_refuses_a_policy_read_from_text(world):
    policy = parse_policy(world.policy_path.read_text(), "inline")
    with pytest.raises(PolicyError, match="requires a signed policy"):
        Node(policy, identity="dashboard", keystore=world.keystore, require_signed=True)


def test_require_signed_runs_a_signed_policy_and_keeps_to_it_on_reload(world, admin):
    world.keystore.trust(admin.directory / "admin.pub")
    sign(world.policy_path, admin.key_path("admin"))
    node = world.node("dashboard", require_signed=True)
    assert node.require_signed
    rotate(world.policy_path, now=NOW)  # not signed again
    with pytest.raises(PolicyError, match="modified after signing"):
        node.reload_keys()


def test_pinning_a_signer_is_the_keystore_setting(world, admin):
    """Every node using a keystore that pins a signer refuses unsigned policies."""
    world.node("dashboard")
    world.keystore.trust(admin.directory / "admin.pub")
    error = refusal(world)
    assert error.problems[0].message == (
        "the policy is not signed, and this keystore requires a trusted signature"
    )


def test_a_signed_policy_on_a_node_that_pins_no_signer_is_refused(world, admin, caplog):
    """Moved without nngsec trust: it must not run the policy unverified."""
    sign(world.policy_path, admin.key_path("admin"))
    with caplog.at_level(logging.WARNING, logger="nngsec"):
        error = refusal(world)
    [problem] = error.problems
    assert problem.message == (
        f"the policy is signed (policy.yaml.sig), but keystore {world.keystore.directory} "
        "pins no signer, so this node cannot verify it (refused rather than run unverified)"
    )
    assert problem.hint.startswith("pin the admin's key: nngsec trust ADMIN.pub --keystore")
    assert "without signature verification" not in caplog.text
    world.keystore.trust(admin.directory / "admin.pub")  # the fix the hint gives
    assert world.node("dashboard").policy.version == 1


def test_a_damaged_signature_on_a_node_that_pins_no_signer_is_refused_too(world, admin):
    sign(world.policy_path, admin.key_path("admin"))
    world.policy_path.with_name("policy.yaml.sig").write_text("junk\n")
    assert "pins no signer" in refusal(world).problems[0].message


def test_the_node_keeps_its_setting(world):
    node = Node(load_policy(world.policy_path), identity="dashboard", keystore=world.keystore)
    assert node.require_signed is False
