"""``nngsec.Keystore``: identity keys created and loaded on demand, pinned signers."""

from __future__ import annotations

import stat

import pytest
from pydantic import TypeAdapter, ValidationError

from nngsec import IdentityKey, Keystore, KeystoreError
from nngsec._formats._names import is_name
from nngsec._keys._files import read_public_file
from nngsec._policy._model import Name


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_writes_a_private_and_a_public_file(tmp_path):
    keystore = Keystore(tmp_path / "keys")
    key, secret_path, public_path = keystore.generate("sensor-1")
    assert (secret_path, public_path) == (
        tmp_path / "keys" / "sensor-1.key",
        tmp_path / "keys" / "sensor-1.pub",
    )
    assert mode(secret_path) == 0o600
    assert mode(public_path) == 0o644
    assert mode(tmp_path / "keys") == 0o700
    assert read_public_file(public_path) == ("sensor-1", key.public)
    assert keystore.identity("sensor-1").public == key.public
    # The private file names its public half in a comment, and never the reverse.
    assert key.public.to_text() in secret_path.read_text()
    assert key.to_text() not in public_path.read_text()
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["sensor-1.key", "sensor-1.pub"]


def test_generate_never_overwrites_a_key(tmp_path):
    keystore = Keystore(tmp_path)
    keystore.generate("sensor-1")
    before = (tmp_path / "sensor-1.key").read_bytes(), (tmp_path / "sensor-1.pub").read_bytes()
    with pytest.raises(KeystoreError) as caught:
        keystore.generate("sensor-1")
    assert caught.value.path == str(tmp_path / "sensor-1.key")
    assert "refusing to overwrite" in caught.value.problems[0].message
    after = (tmp_path / "sensor-1.key").read_bytes(), (tmp_path / "sensor-1.pub").read_bytes()
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_generate_uses_the_injected_randomness(tmp_path):
    key, _, _ = Keystore(tmp_path).generate("a", random=bytes)
    assert key.public == IdentityKey(bytes(32)).public


@pytest.mark.parametrize(
    "name", ["Sensor", "../escape", "", "-x", "a b", "a/b", "a" * 65, ".a", "sensor\n", "a\nb"]
)
def test_names_are_checked_before_any_file_is_touched(tmp_path, name):
    keystore = Keystore(tmp_path / "keys")
    with pytest.raises(KeystoreError) as caught:
        keystore.generate(name)
    assert caught.value.problems[0].message == f"invalid identity name {name!r}"
    assert caught.value.field == "name"
    assert "lowercase" in caught.value.hint
    assert not (tmp_path / "keys").exists()


def test_private_keys_are_loaded_on_demand(tmp_path):
    keystore = Keystore(tmp_path)
    keystore.generate("a")
    keystore.generate("b")
    (tmp_path / "b.key").chmod(0o644)  # b is unsafe, but nobody asks for it
    fresh = Keystore(tmp_path)
    assert fresh.identity("a").public == keystore.identity("a").public
    assert fresh.has_identity("b")
    assert not fresh.has_identity("c")
    with pytest.raises(KeystoreError):
        fresh.identity("b")


def test_a_missing_identity_says_how_to_create_it(tmp_path):
    with pytest.raises(KeystoreError) as caught:
        Keystore(tmp_path).identity("sensor-1")
    assert caught.value.hint == f"create it with: nngsec keygen sensor-1 --keystore {tmp_path}"


def test_trust_pins_a_signer(tmp_path):
    admin = Keystore(tmp_path / "admin")
    key, _, public_path = admin.generate("admin")
    node = Keystore(tmp_path / "node")
    assert node.trusted_signers() == {}
    assert node.trust(public_path) == ("admin", key.public, True)
    assert node.trusted_signers() == {"admin": key.public}
    assert node.trust(public_path) == ("admin", key.public, False)
    pinned = tmp_path / "node" / "trusted" / "admin.pub"
    assert read_public_file(pinned) == ("admin", key.public)
    assert mode(tmp_path / "node" / "trusted") == 0o700


def test_trust_refuses_a_different_key_under_a_pinned_name(tmp_path):
    node = Keystore(tmp_path / "node")
    node.trust(Keystore(tmp_path / "one").generate("admin")[2])
    impostor = Keystore(tmp_path / "two").generate("admin")[2]
    pinned = (tmp_path / "node" / "trusted" / "admin.pub").read_bytes()
    with pytest.raises(KeystoreError) as caught:
        node.trust(impostor)
    assert "already trusts a different key named 'admin'" in caught.value.problems[0].message
    assert (tmp_path / "node" / "trusted" / "admin.pub").read_bytes() == pinned


def test_trust_refuses_a_private_key(tmp_path):
    admin = Keystore(tmp_path / "admin")
    _, secret_path, _ = admin.generate("admin")
    node = Keystore(tmp_path / "node")
    with pytest.raises(KeystoreError) as caught:
        node.trust(secret_path)
    assert caught.value.problems[0].message.startswith("a private key is written here")
    assert caught.value.line == 4
    assert not (tmp_path / "node").exists()


def test_a_damaged_pinned_signer_is_reported(tmp_path):
    node = Keystore(tmp_path)
    node.trust(Keystore(tmp_path / "admin").generate("admin")[2])
    pinned = tmp_path / "trusted" / "admin.pub"
    pinned.write_text(pinned.read_text()[:-5] + "\n")
    with pytest.raises(KeystoreError) as caught:
        node.trusted_signers()
    assert caught.value.path == str(pinned)
    assert "truncated" in caught.value.problems[0].message


@pytest.mark.parametrize("verified", [True, False])
def test_accept_version_keeps_the_highest(tmp_path, verified):
    keystore = Keystore(tmp_path / "keys")
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    assert keystore.accepted_versions(verified=verified) == {}
    assert keystore.accept_version("factory", 3, a, verified=verified) == (0, None)
    assert keystore.accept_version("factory", 2, b, verified=verified) == (3, a)
    assert keystore.accept_version("factory", 5, c, verified=verified) == (3, a)
    assert keystore.accepted_versions(verified=verified) == {"factory": 5}
    assert keystore.accepted_versions(verified=not verified) == {}  # two separate records
    # At the recorded version another digest replaces it only where nothing is verified.
    assert keystore.accept_version("factory", 5, a, verified=verified) == (5, c)
    record = keystore.policy_record("factory", verified=verified)
    assert record is not None
    assert (record.version, record.digest) == (5, c if verified else a)


def test_repr_shows_no_key_material(tmp_path):
    key, _, _ = Keystore(tmp_path).generate("a")
    assert key.to_text() not in repr(key)
    assert repr(key) == f"IdentityKey(key_id={key.key_id.hex()})"


@pytest.mark.parametrize(
    "name", ["sensor", "a" * 64, "sensor\n", "a\nb", "\nsensor", "a" * 64 + "\n"]
)
def test_the_name_rule_is_the_same_for_key_files_and_policies(name):
    """A name the policy refuses is refused everywhere else too (Python's ``$`` also
    matches before a final newline; the policy's validator does not)."""
    try:
        TypeAdapter(Name).validate_python(name)
    except ValidationError:
        in_policy = False
    else:
        in_policy = True
    assert is_name(name) == in_policy
