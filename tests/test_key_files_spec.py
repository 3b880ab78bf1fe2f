"""docs/spec/key-files.md is complete and true: code written from it alone (the first half of
this file imports nothing of nngsec: hashlib, base64 and pyca/cryptography) makes identities
and signatures nngsec accepts, and verifies the ones nngsec makes; the spec's examples are
what nngsec computes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

SPEC = Path(__file__).resolve().parents[1] / "docs" / "spec" / "key-files.md"

# -- written from the spec alone ----------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(raw) != text:
        raise ValueError("not canonical")
    return raw


def checksum(prefix: str, raw: bytes) -> bytes:
    return hashlib.blake2b(
        prefix.encode() + raw, digest_size=4, key=b"nngsec/v1/text-checksum"
    ).digest()


def encode(prefix: str, raw: bytes) -> str:
    return prefix + b64url(raw + checksum(prefix, raw))


def decode(text: str, prefix: str, size: int) -> bytes:
    if not text.startswith(prefix):
        raise ValueError("wrong prefix")
    body = text[len(prefix) :]
    if len(body) != ((size + 4) * 8 + 5) // 6:
        raise ValueError("wrong length")
    raw = unb64url(body)
    if not hmac.compare_digest(raw[size:], checksum(prefix, raw[:size])):
        raise ValueError("checksum")
    return raw[:size]


@dataclass
class Identity:
    seed: bytes

    @property
    def signing(self) -> Ed25519PrivateKey:
        seed = hashlib.blake2b(b"nngsec/v1/identity/ed25519", digest_size=32, key=self.seed)
        return Ed25519PrivateKey.from_private_bytes(seed.digest())

    @property
    def sign_pk(self) -> bytes:
        return self.signing.public_key().public_bytes_raw()

    @property
    def box_pk(self) -> bytes:
        box = hashlib.blake2b(b"nngsec/v1/identity/x25519", digest_size=32, key=self.seed)
        return X25519PrivateKey.from_private_bytes(box.digest()).public_key().public_bytes_raw()

    @property
    def key_id(self) -> bytes:
        return hashlib.blake2b(
            self.sign_pk + self.box_pk, digest_size=8, key=b"nngsec/v1/key-id"
        ).digest()

    @property
    def public_text(self) -> str:
        return encode("nngsec-id-v1:", self.sign_pk + self.box_pk)

    @property
    def secret_text(self) -> str:
        return encode("nngsec-secret-v1:", self.seed)


BODY = struct.Struct(">8sQ32sB32s64s")


def message(version: int, policy_digest: bytes, keys_digest: bytes | None) -> bytes:
    flag, keys = (b"\x00", bytes(32)) if keys_digest is None else (b"\x01", keys_digest)
    return (
        b"nngsec/v2/policy-signature\x00" + struct.pack(">Q", version) + policy_digest + flag + keys
    )


def sign_text(signer: Identity, version: int, policy: bytes, keys: bytes | None) -> str:
    policy_digest = hashlib.blake2b(policy, digest_size=32).digest()
    keys_digest = hashlib.blake2b(keys, digest_size=32).digest() if keys is not None else None
    signature = signer.signing.sign(message(version, policy_digest, keys_digest))
    body = BODY.pack(
        signer.key_id,
        version,
        policy_digest,
        0 if keys_digest is None else 1,
        keys_digest or bytes(32),
        signature,
    )
    return encode("nngsec-sig-v2:", body)


def verify(
    sig_file: str, signers: dict[bytes, bytes], version: int, policy: bytes, keys: bytes | None
) -> None:
    """Raise unless the signature file verifies (the spec's steps 1 to 5)."""
    lines = [
        ln.strip() for ln in sig_file.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    if len(lines) != 1:
        raise ValueError("one signature line")
    key_id, signed_version, policy_digest, flag, keys_digest, signature = BODY.unpack(
        decode(lines[0], "nngsec-sig-v2:", BODY.size)
    )
    if flag not in (0, 1) or (flag == 0 and keys_digest != bytes(32)) or signed_version == 0:
        raise ValueError("malformed")
    Ed25519PublicKey.from_public_bytes(signers[key_id]).verify(
        signature, message(signed_version, policy_digest, keys_digest if flag else None)
    )
    if policy_digest != hashlib.blake2b(policy, digest_size=32).digest():
        raise ValueError("the policy changed")
    want = hashlib.blake2b(keys, digest_size=32).digest() if keys is not None else None
    if (keys_digest if flag else None) != want:
        raise ValueError("the channel keys changed")
    if signed_version != version:
        raise ValueError("another version")


# -- checked against nngsec ------------------------------------------------------------------

from nngsec import IdentityKey, Keystore, Node, PolicyError, load_policy  # noqa: E402
from nngsec._keys._channel_keys import ChannelKeyFile  # noqa: E402
from nngsec._policy._admin import rotate, sign  # noqa: E402
from nngsec._policy._signing import sign_files  # noqa: E402
from tests.support import NOW, TELEMETRY, build_world  # noqa: E402


def example(label: str) -> str:
    """The value after ``label:`` in the spec's examples."""
    found = re.findall(rf"^{re.escape(label)}:\s+(\S+)$", SPEC.read_text(), re.MULTILINE)
    assert len(found) == 1, label
    value: str = found[0]
    return value


def test_the_example_identity_is_what_both_implementations_compute():
    seed = bytes(range(32))
    assert example("seed") == seed.hex()
    ours, theirs = IdentityKey(seed), Identity(seed)
    assert example("sign_pk") == theirs.sign_pk.hex() == ours.public.sign_key.hex()
    assert example("box_pk") == theirs.box_pk.hex() == ours.public.box_key.hex()
    assert example("key id") == theirs.key_id.hex() == ours.key_id.hex()
    assert example("public") == theirs.public_text == ours.public.to_text()
    assert example("secret") == theirs.secret_text == ours.to_text()


def test_the_example_signature_is_what_both_implementations_make(tmp_path):
    policy = b"nngsec: 1\nname: example\nversion: 3\n"
    assert f"these {len(policy)} bytes" in SPEC.read_text()
    signer = Identity(bytes(range(32, 64)))
    assert example("signer public") == signer.public_text
    assert example("signer key id") == signer.key_id.hex()
    assert example("policy digest") == hashlib.blake2b(policy, digest_size=32).hexdigest()
    assert example("signature") == sign_text(signer, 3, policy, None)
    path = tmp_path / "example.yaml.sig"
    sign_files(
        path,
        version=3,
        policy_bytes=policy,
        keys_bytes=None,
        key=IdentityKey(signer.seed),
        comment="x",
    )
    assert path.read_text().splitlines()[-1] == example("signature")
    verify(path.read_text(), {signer.key_id: signer.sign_pk}, 3, policy, None)


def test_an_identity_and_a_signature_made_from_the_spec_are_accepted_by_nngsec(tmp_path):
    """An admin and a node identity made without nngsec; nngsec runs the signed policy."""
    admin, dashboard, sensor = (Identity(bytes([n]) * 32) for n in (1, 2, 3))
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / "dashboard.key").write_text(f"# made from the spec\n{dashboard.secret_text}\n")
    (keys / "dashboard.key").chmod(0o600)
    (tmp_path / "admin.pub").write_text(f"admin: {admin.public_text}\n")
    Keystore(keys).trust(tmp_path / "admin.pub")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "nngsec: 1\nname: plant\nversion: 4\nidentities:\n"
        f"  sensor: {sensor.public_text}\n  dashboard: {dashboard.public_text}\n"
        "channels:\n  sync:\n    pattern: pair\n    members: [sensor, dashboard]\n"
    )
    signature = tmp_path / "policy.yaml.sig"
    signature.write_text(f"# by hand\n{sign_text(admin, 4, policy.read_bytes(), None)}\n")
    node = Node(load_policy(policy), identity="dashboard", keystore=keys)
    assert node.policy.version == 4
    signature.write_text(f"{sign_text(admin, 5, policy.read_bytes(), None)}\n")  # wrong version
    with pytest.raises(PolicyError, match="is for version 5"):
        Node(load_policy(policy), identity="dashboard", keystore=keys)


def test_a_signature_nngsec_makes_verifies_from_the_spec_and_breaks_on_any_change(tmp_path):
    world = build_world(tmp_path, TELEMETRY, ["sensor", "dashboard"])
    admin = Keystore(tmp_path / "admin")
    key, _, _ = admin.generate("admin")
    sign(world.policy_path, admin.key_path("admin"))
    sig = world.policy_path.with_name("policy.yaml.sig").read_text()
    policy = world.policy_path.read_bytes()
    keys = world.policy_path.with_name("policy.keys.json").read_bytes()
    signers = {key.key_id: key.public.sign_key}
    verify(sig, signers, 1, policy, keys)
    for args in (
        (2, policy, keys),
        (1, policy + b"\n", keys),
        (1, policy, None),
        (1, policy, keys + b" "),
    ):
        with pytest.raises(ValueError):
            verify(sig, signers, *args)
    flipped = sig[:-10] + ("A" if sig[-10] != "A" else "B") + sig[-9:]
    with pytest.raises((ValueError, InvalidSignature)):
        verify(flipped, signers, 1, policy, keys)


def test_the_epoch_fingerprint_is_as_specified(tmp_path):
    world = build_world(tmp_path, TELEMETRY, ["sensor", "dashboard"])
    path = world.policy_path.with_name("policy.keys.json")
    keys = ChannelKeyFile.load(path)
    assert keys is not None
    data = json.loads(path.read_text())  # the file as the spec describes it
    assert data["nngsec-channel-keys"] == 2

    def fingerprint(epoch: dict[str, Any], deployment: str = data["deployment"]) -> str:
        parts = [deployment.encode(), b"a", struct.pack(">I", epoch["epoch"])]
        parts += [(epoch[field] or "").encode() for field in ("activate_at", "expires", "public")]
        parts += [f"{name}\x00{box}".encode() for name, box in sorted(epoch["sealed"].items())]
        digest = hashlib.blake2b(digest_size=32, key=b"nngsec/v1/epoch-fingerprint")
        for part in parts:
            digest.update(struct.pack(">I", len(part)) + part)
        return digest.hexdigest()

    [first] = data["channels"]["telemetry"]["epochs"]
    assert keys.fingerprint("telemetry") == fingerprint(first)
    # A rotation with a lead and a lifetime: the new epoch's times are covered; the one it
    # replaces keeps its fingerprint although its retire_at is now set.
    rotate(world.policy_path, ["telemetry"], now=NOW + 5, activate_in=60, lifetime=86400)
    data = json.loads(path.read_text())
    newest, previous = data["channels"]["telemetry"]["epochs"]
    assert newest["activate_at"] and newest["expires"] and previous["retire_at"]
    rotated = ChannelKeyFile.load(path)
    assert rotated is not None
    assert rotated.fingerprint("telemetry") == fingerprint(newest)
    assert rotated.fingerprint("telemetry", 1) == fingerprint(previous) == fingerprint(first)
    for field, value in (("activate_at", None), ("expires", None), ("public", "x")):
        assert fingerprint({**newest, field: value}) != fingerprint(newest), field
    assert fingerprint(newest, "A" * 22) != fingerprint(newest)
