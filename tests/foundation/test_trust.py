"""What a node checks before it uses a policy: signature, anti-rollback, its identity.

``nngsec.Node(policy, identity=..., keystore=...)`` is the entry point throughout.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from nngsec import Keystore, KeystoreError, Node, PolicyError, load_policy
from nngsec._policy._admin import revoke, rotate, sign
from nngsec._policy._load import parse_policy
from nngsec._policy._signing import verify_signature_bytes
from tests.support import NOW, TELEMETRY, recorded_as


@pytest.fixture
def admins(tmp_path) -> Keystore:
    keystore = Keystore(tmp_path / "admins")
    keystore.generate("admin")
    keystore.generate("mallory")
    return keystore


@pytest.fixture
def world(world_factory):
    return world_factory(TELEMETRY, ["sensor", "dashboard"])


@pytest.fixture
def pinned(world, admins):
    """The world's keystore pins ``admin``; the policy is signed by ``admin``."""
    world.keystore.trust(admins.directory / "admin.pub")
    sign(world.policy_path, admins.key_path("admin"))
    return world


def refusal(world, identity: str = "dashboard") -> str:
    with pytest.raises(PolicyError) as caught:
        world.node(identity)
    [problem] = caught.value.problems
    assert problem.hint
    return problem.message


def test_a_signed_policy_is_accepted(pinned):
    node = pinned.node("dashboard")
    assert node.channel_keys["telemetry"].current.secret is not None


def test_an_unsigned_policy_is_refused(pinned):
    pinned.policy_path.with_name("policy.yaml.sig").unlink()
    assert refusal(pinned) == (
        "the policy is not signed, and this keystore requires a trusted signature"
    )


def test_a_policy_signed_by_someone_else_is_refused(pinned, admins):
    sign(pinned.policy_path, admins.key_path("mallory"))
    mallory = admins.identity("mallory").key_id.hex()
    assert refusal(pinned) == (
        f"the policy is signed by key {mallory}, which this keystore does not trust"
    )


def test_a_policy_modified_after_signing_is_refused(pinned):
    text = pinned.policy_path.read_text().replace(
        "subscribers: [dashboard]", "subscribers: [sensor]"
    )
    pinned.policy_path.write_text(text)
    assert refusal(pinned, "sensor") == (
        "the signature by 'admin' does not match the policy (modified after signing)"
    )


def test_a_one_byte_change_is_enough(pinned):
    pinned.policy_path.write_bytes(pinned.policy_path.read_bytes() + b"\n")
    assert "modified after signing" in refusal(pinned)


def test_channel_keys_modified_after_signing_are_refused(pinned):
    rotate(pinned.policy_path, now=NOW)  # a new epoch the admin has not signed
    assert "modified after signing" in refusal(pinned)


def test_channel_keys_removed_after_signing_are_refused(pinned):
    pinned.policy_path.with_name("policy.keys.json").unlink()
    assert "modified after signing" in refusal(pinned)


def test_channel_keys_added_after_signing_are_refused(world_factory, admins):
    body = "channels:\n  sync:\n    pattern: pair\n    members: [a, b]\n"
    world = world_factory(body, ["a", "b"])
    world.keystore.trust(admins.directory / "admin.pub")
    sign(world.policy_path, admins.key_path("admin"))
    world.node("a")  # no channel keys, none signed
    world.policy_path.with_name("policy.keys.json").write_text(
        json.dumps(
            {
                "nngsec-channel-keys": 2,
                "policy": "factory",
                "deployment": world.node("a").policy.model.deployment,
                "channels": {},
            }
        )
    )
    assert "modified after signing" in refusal(world, "a")


def test_signing_again_after_a_change_is_accepted(pinned, admins):
    before = pinned.node("dashboard").channel_keys["telemetry"].current.epoch
    rotate(pinned.policy_path, now=NOW)
    sign(pinned.policy_path, admins.key_path("admin"))  # the same version: keys only changed
    assert pinned.node("dashboard").channel_keys["telemetry"].current.epoch > before


def test_any_pinned_signer_will_do(pinned, admins):
    pinned.keystore.trust(admins.directory / "mallory.pub")
    sign(pinned.policy_path, admins.key_path("mallory"))
    pinned.node("dashboard")


def test_a_policy_read_from_text_cannot_be_verified(pinned):
    policy = parse_policy(pinned.policy_path.read_text(), "inline")
    with pytest.raises(PolicyError) as caught:
        Node(policy, identity="dashboard", keystore=pinned.keystore)
    assert "a policy read from text has no signature file" in caught.value.problems[0].message


# -- the signature file -----------------------------------------------------------------


def test_the_signature_file_says_what_it_covers(pinned, admins):
    text = pinned.policy_path.with_name("policy.yaml.sig").read_text()
    lines = text.splitlines()
    assert lines[0] == "# nngsec policy signature"
    assert "# policy: factory (version 1); channel keys: policy.keys.json" in lines
    assert f"# signer key id: {admins.identity('admin').key_id.hex()}" in lines
    assert lines[-1].startswith("nngsec-sig-v2:")


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (lambda t: t.replace("nngsec-sig-v2:", "nngsec-sig-v3:"), 4, "malformed signature"),
        (lambda t: t.replace("nngsec-sig-v2:", "nngsec-sig-v1:"), 4, "a signature of format 1"),
        (lambda t: t.rstrip("\n")[:-10] + "\n", 4, "malformed signature: truncated"),
        (lambda t: t + t.splitlines()[-1] + "\n", None, "expected one signature line, found 2"),
        (lambda t: "# only comments\n", None, "expected one signature line, found 0"),
        (lambda t: t.rstrip("\n")[:-4] + "AAAA\n", 4, "checksum mismatch"),
    ],
)
def test_a_damaged_signature_file_is_refused_with_its_place(pinned, change, line, message):
    path = pinned.policy_path.with_name("policy.yaml.sig")
    path.write_text(change(path.read_text()))
    with pytest.raises(PolicyError) as caught:
        pinned.node("dashboard")
    [problem] = caught.value.problems
    assert problem.path == str(path)
    assert problem.line == line
    assert message in problem.message
    assert problem.hint


def test_an_indented_comment_in_the_signature_file_is_a_comment(pinned):
    path = pinned.policy_path.with_name("policy.yaml.sig")
    path.write_text("  # reviewed by the security team\n" + path.read_text())
    pinned.node("dashboard")


# -- no pinned signer -------------------------------------------------------------------


def test_without_a_pinned_signer_the_node_warns_once(world, caplog):
    with caplog.at_level(logging.WARNING, logger="nngsec"):
        world.node("dashboard")
        world.node("sensor")
        world.node("dashboard")
    warnings = [r for r in caplog.records if r.name.startswith("nngsec.")]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "without signature verification" in warnings[0].getMessage()
    assert str(world.policy_path) in warnings[0].getMessage()


def test_without_a_pinned_signer_a_signature_is_not_needed(world):
    assert not world.policy_path.with_name("policy.yaml.sig").exists()
    world.node("dashboard")


# -- anti-rollback ----------------------------------------------------------------------


def set_version(world, version: int) -> None:
    text = world.policy_path.read_text()
    lines = [line for line in text.splitlines() if not line.startswith("version:")]
    lines.insert(2, f"version: {version}")
    world.policy_path.write_text("\n".join(lines) + "\n")


def test_a_lower_version_than_one_accepted_is_refused(world):
    set_version(world, 5)
    world.node("dashboard")
    set_version(world, 4)
    with pytest.raises(PolicyError) as caught:
        world.node("dashboard")
    [problem] = caught.value.problems
    assert problem.message == (
        "policy 'factory' version 4 is older than version 5 already accepted by this keystore "
        "(rollback refused)"
    )
    assert problem.field == "version"
    set_version(world, 5)
    world.node("dashboard")  # the same version again is fine
    set_version(world, 9)
    world.node("dashboard")
    assert world.keystore.accepted_versions() == {recorded_as(world.policy_path): 9}


def test_the_record_survives_a_restart(world):
    set_version(world, 3)
    world.node("dashboard")
    fresh = Keystore(world.keystore.directory)
    set_version(world, 2)
    with pytest.raises(PolicyError):
        Node(load_policy(world.policy_path), identity="dashboard", keystore=fresh)
    record = world.keystore.directory / "unverified-policies.json"
    assert json.loads(record.read_text())[recorded_as(world.policy_path)]["version"] == 3
    assert record.stat().st_mode & 0o777 == 0o600


def test_versions_are_recorded_per_policy_name(world_factory, tmp_path):
    one = world_factory(TELEMETRY, ["sensor", "dashboard"], policy_name="alpha")
    set_version(one, 7)
    one.node("dashboard")
    other = Keystore(one.keystore.directory)
    assert other.accept_version("beta", 1, "0" * 64, verified=False) == (0, None)
    assert other.accepted_versions() == {recorded_as(one.policy_path): 7, "beta": 1}


def test_revoke_then_replaying_the_old_policy_is_refused(pinned, admins):
    old_policy = pinned.policy_path.read_bytes()
    old_keys = pinned.policy_path.with_name("policy.keys.json").read_bytes()
    old_signature = pinned.policy_path.with_name("policy.yaml.sig").read_bytes()
    pinned.node("dashboard")
    revoke(pinned.policy_path, "sensor", now=NOW)
    sign(pinned.policy_path, admins.key_path("admin"))
    pinned.node("dashboard")
    # An attacker puts back the old, validly signed policy: its version is lower.
    pinned.policy_path.write_bytes(old_policy)
    pinned.policy_path.with_name("policy.keys.json").write_bytes(old_keys)
    pinned.policy_path.with_name("policy.yaml.sig").write_bytes(old_signature)
    assert "rollback refused" in refusal(pinned)


def test_an_unsigned_policy_cannot_poison_the_rollback_record(pinned):
    set_version(pinned, 1_000_000)  # the signature no longer matches
    assert "modified after signing" in refusal(pinned)
    for verified in (True, False):
        versions = pinned.keystore.accepted_versions(verified=verified)
        assert versions.get(recorded_as(pinned.policy_path), 0) < 1_000_000


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[1, 2]",
        '{"factory": "7"}',
        '{"a": true}',
        '{"factory": {"version": 7, "digest": "x", "epochs": {}}}',
        '{"factory": {"version": 7, "digest": "' + "0" * 64 + '", "epochs": {"t": 3}}}',
    ],
)
def test_a_damaged_rollback_record_is_refused(world, content):
    world.keystore.directory.joinpath("unverified-policies.json").write_text(content)
    with pytest.raises(KeystoreError) as caught:
        world.node("dashboard")
    assert "unverified-policies record" in caught.value.problems[0].message
    assert caught.value.hint


# -- the identity -----------------------------------------------------------------------


def test_an_identity_the_policy_does_not_define_is_refused(world):
    assert refusal(world, "printer") == "identity 'printer' is not defined in policy 'factory'"


def test_an_identity_without_its_private_key_is_refused(world):
    world.keystore.key_path("dashboard").unlink()
    with pytest.raises(KeystoreError) as caught:
        world.node("dashboard")
    assert caught.value.problems[0].message == (
        "no private key for identity 'dashboard' in this keystore"
    )
    assert "nngsec keygen dashboard" in caught.value.hint


def test_a_private_key_that_does_not_match_the_policy_is_refused(world, tmp_path):
    elsewhere = Keystore(tmp_path / "elsewhere")
    elsewhere.generate("dashboard")
    world.keystore.key_path("dashboard").write_bytes(elsewhere.key_path("dashboard").read_bytes())
    message = refusal(world)
    assert "does not match its public key in the policy" in message


def test_a_world_readable_private_key_is_refused_by_the_node(world):
    world.keystore.key_path("dashboard").chmod(0o644)
    with pytest.raises(KeystoreError) as caught:
        world.node("dashboard")
    assert caught.value.hint == f"chmod 600 {world.keystore.key_path('dashboard')}"


def test_the_keys_of_another_policy_are_refused(world):
    keys_path = world.policy_path.with_name("policy.keys.json")
    data = json.loads(keys_path.read_text())
    data["policy"] = "elsewhere"
    keys_path.write_text(json.dumps(data))
    assert "belongs to policy 'elsewhere', not 'factory'" in refusal(world)


def test_node_accepts_paths_as_well_as_objects(world):
    node = Node(world.policy_path, identity="dashboard", keystore=Path(world.keystore.directory))
    assert node.policy.name == "factory"
    assert node.public_key == node.policy.identities["dashboard"]


def test_a_keystore_that_cannot_keep_the_rollback_record_is_a_keystore_error(world, monkeypatch):
    import errno
    import os

    real_open = os.open

    def read_only_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("nngsec._keys._keystore.os.open", read_only_open)
    with pytest.raises(KeystoreError) as caught:
        world.node("dashboard")
    [problem] = caught.value.problems
    assert problem.message == (
        "cannot record in the unverified-policies record: Read-only file system"
    )
    assert problem.path == str(world.keystore.directory / "unverified-policies.json")
    assert "anti-rollback" in problem.hint


def test_signature_bytes_from_a_store_are_checked_like_a_signature_file(pinned):
    """verify_signature_bytes (what a node reading etcd verifies) applies format 2 and the
    signed version, and refuses what a signature file is refused for, placed at ``where``."""
    where = "etcd://127.0.0.1:2379/plant/policy.sig"
    signature = pinned.policy_path.with_name("policy.yaml.sig").read_bytes()

    def verify(data: bytes, version: int = 1) -> str:
        return verify_signature_bytes(
            data,
            where,
            version=version,
            policy_bytes=pinned.policy_path.read_bytes(),
            keys_bytes=pinned.policy_path.with_name("policy.keys.json").read_bytes(),
            trusted=pinned.keystore.trusted_signers(),
        )

    assert verify(signature) == "admin"
    secret = Keystore(pinned.root / "keys").identity("sensor").to_text()
    for data, version, message in (
        (signature, 2, "is for version 1, but the policy says version 2"),
        (signature.replace(b"nngsec-sig-v2:", b"nngsec-sig-v1:"), 1, "a signature of format 1"),
        (signature + secret.encode() + b"\n", 1, "a private key is written here"),
        (b"\xff" + signature, 1, "is not valid UTF-8"),
    ):
        with pytest.raises(PolicyError) as caught:
            verify(data, version)
        [problem] = caught.value.problems
        assert message in problem.message
        assert problem.path == where
        assert secret[20:] not in str(caught.value)
