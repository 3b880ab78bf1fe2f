"""Keystore ownership and modes, checked as ssh does (issue 9, finding 11).

Whoever can write a keystore directory, its ``trusted/`` folder, a pinned signer or a
record chooses what the node trusts (any local user could pin a signer). Those, and key
files, owned by another user (root excepted) are refused too. Real ``chmod`` and
``chown`` (the chown tests need root, as the test machine runs).
"""

from __future__ import annotations

import os
import pwd
import stat

import pytest

from nngsec import Keystore, KeystoreError, Node, load_policy
from nngsec._policy._admin import sign
from tests.support import TELEMETRY

OTHER_UID = 4242
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)


@pytest.fixture
def world(world_factory, tmp_path):
    world = world_factory(TELEMETRY, ["sensor", "dashboard"])
    admin = Keystore(tmp_path / "admin")
    admin.generate("admin")
    world.keystore.trust(admin.directory / "admin.pub")
    sign(world.policy_path, admin.key_path("admin"))
    world.node("dashboard")  # writes the verified record
    return world


def start(world) -> Node:
    """A node as a fresh process starts it (a keystore object caches the keys it loaded)."""
    return Node(
        load_policy(world.policy_path),
        identity="dashboard",
        keystore=Keystore(world.keystore.directory),
    )


def refusal(world) -> KeystoreError:
    with pytest.raises(KeystoreError) as caught:
        start(world)
    [problem] = caught.value.problems
    assert problem.hint
    return caught.value


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("bits", [0o020, 0o002, 0o777, 0o1777])
def test_a_keystore_directory_others_can_write_is_refused(world, bits):
    directory = world.keystore.directory
    directory.chmod(0o700 | bits)
    error = refusal(world)
    assert error.problems[0].message == (
        f"the keystore directory can be written by group or others (mode {0o700 | bits:04o})"
    )
    assert error.path == str(directory)
    assert error.hint == f"chmod go-w {directory}"
    directory.chmod(0o755)  # readable by others is fine: nothing secret is in the directory
    start(world)


@pytest.mark.parametrize(
    ("target", "what"),
    [
        ("trusted", "the keystore's trusted/ folder"),
        ("trusted/admin.pub", "a pinned signer's file"),
        ("verified-policies.json", "the verified-policies record"),
    ],
)
def test_what_decides_trust_must_not_be_writable_by_others(world, target, what):
    path = world.keystore.directory / target
    path.chmod(mode(path) | 0o022)
    error = refusal(world)
    assert error.problems[0].message.startswith(f"{what} can be written by group or others")
    assert error.hint == f"chmod go-w {path}"


def test_trust_refuses_to_pin_into_a_keystore_others_can_write(world, tmp_path):
    world.keystore.directory.chmod(0o777)
    other = Keystore(tmp_path / "other-admin")
    other.generate("mallory")
    with pytest.raises(KeystoreError, match="can be written by group or others"):
        Keystore(world.keystore.directory).trust(other.directory / "mallory.pub")
    assert not (world.keystore.directory / "trusted" / "mallory.pub").exists()


@pytest.mark.parametrize("bits", [0o040, 0o004, 0o020, 0o640])
def test_a_key_file_group_or_others_can_access_is_refused(world, bits):
    key = world.keystore.key_path("dashboard")
    key.chmod(0o600 | bits)
    error = refusal(world)
    assert "private key file is accessible by others" in error.problems[0].message
    assert error.hint == f"chmod 600 {key}"


@as_root
@pytest.mark.parametrize(
    ("target", "what"),
    [
        ("", "the keystore directory"),
        ("trusted", "the keystore's trusted/ folder"),
        ("trusted/admin.pub", "a pinned signer's file"),
        ("verified-policies.json", "the verified-policies record"),
        ("dashboard.key", "private key file"),
    ],
)
def test_what_another_user_owns_is_refused(world, target, what):
    path = world.keystore.directory / target if target else world.keystore.directory
    os.chown(path, OTHER_UID, -1)
    error = refusal(world)
    assert error.problems[0].message == (
        f"{what} is owned by another user (uid {OTHER_UID}), who could change it"
    )
    assert error.path == str(path)
    assert error.hint.startswith(f"chown {pwd.getpwuid(os.getuid()).pw_name} {path}")
    os.chown(path, 0, -1)  # root-owned is accepted, as ssh accepts it
    start(world)
