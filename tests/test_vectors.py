"""The wire-format test vectors (tests/vectors/*.json), checked in both directions and
against an independent implementation. See docs/spec/wire-format.md, "Test vectors"."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path

import pytest

from tests.vectors import generate
from tests.vectors.independent import (
    Identity,
    binding,
    hchacha20,
    hsalsa20,
    kdf,
    open_channel_key_entry,
    parse,
    sigmsg,
    unb64url,
    verify_signature,
    x25519,
    x25519_public,
    xchacha_decrypt,
)

VECTORS = sorted(generate.HERE.glob("*.json"))
PUBSUB = {"telemetry", "audit", "telemetry-mac"}
MAC_CHANNELS = {"telemetry-mac", "jobs-mac", "health-mac"}  # origin: mac


def load(path: Path):
    return json.loads(path.read_text())


def test_every_case_has_a_vector_file_and_no_other():
    assert {p.stem for p in VECTORS} == {case.name for case, _ in generate.cases()}
    assert len(VECTORS) >= 20


def test_the_spec_references_the_vectors():
    spec = (Path(__file__).parents[1] / "docs/spec/wire-format.md").read_text()
    assert "tests/vectors/" in spec


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_encoder_and_decoder_reproduce_the_vector(path, tmp_path):
    vector = load(path)
    result = generate.run(vector, tmp_path)
    assert result.frames == [step["frame"] for step in vector["steps"]]  # encoder, byte for byte
    assert result.outcomes == [d["expect"] for d in vector["deliveries"]]  # decoder
    assert result.channel_keys == vector["channel_keys"]  # nngsec rotate, byte for byte
    assert result.channel_secrets == vector["channel_secrets"]


def _policy_field(vector, field: str) -> str:
    """A top-level scalar of the vector's policy, read without nngsec."""
    [line] = [line for line in vector["policy"].splitlines() if line.startswith(f"{field}:")]
    return str(line.split(":", 1)[1].strip())


def independent_secret(vector, channel: str, epoch: int, name: str) -> bytes | None:
    """``name``'s secret of ``channel`` in ``epoch``, from the vector's channel-key file."""
    spec = vector["channel_keys"]["channels"].get(channel)
    entry = next((e for e in spec["epochs"] if e["epoch"] == epoch), None) if spec else None
    if entry is None or name not in entry["sealed"]:
        return None
    me = Identity.from_seed(bytes.fromhex(vector["seeds"][name]))
    deployment = unb64url(vector["channel_keys"]["deployment"])
    policy = vector["channel_keys"]["policy"]
    kind = spec["kind"]
    return open_channel_key_entry(
        entry["sealed"][name], me, deployment, policy, channel, epoch, kind
    )


def _epoch_entry(vector, channel: str, epoch: int):
    """The channel-key file's entry of ``channel`` in ``epoch``."""
    [entry] = [
        e for e in vector["channel_keys"]["channels"][channel]["epochs"] if e["epoch"] == epoch
    ]
    return entry


def independent_public(vector, channel: str, epoch: int) -> bytes:
    spec = vector["channel_keys"]["channels"][channel]
    [entry] = [e for e in spec["epochs"] if e["epoch"] == epoch]
    return unb64url(entry["public"])


def independently_open(vector, delivery) -> tuple[bytes, str]:
    """Open an accepted delivery with independent code; raise if anything does not verify.

    Identities come from their seeds, channel secrets from the receiver's own entry in the
    channel-key file (and public keys from its public fields), all as the spec says.
    """
    people = {
        name: Identity.from_seed(bytes.fromhex(seed)) for name, seed in vector["seeds"].items()
    }
    by_id = {person.key_id: name for name, person in people.items()}
    channel = delivery["channel"]
    frame = bytes.fromhex(vector["steps"][delivery["step"]]["frame"])
    f = parse(frame, channel in PUBSUB)
    assert f.channel.decode() == channel
    sender_name, receiver = by_id[f.key_id], delivery["receiver"]
    sender, me = people[sender_name], people[receiver]
    deployment = unb64url(_policy_field(vector, "deployment"))
    bind = binding(deployment, _policy_field(vector, "name"), f.channel)
    epoch = struct.pack(">I", f.epoch)
    secret = independent_secret(vector, channel, f.epoch, receiver)

    def peer_key(shared_secret, x_pk, y_pk):
        return kdf(shared_secret, b"nngsec/v2/peer-key", x_pk, y_pk, bind, epoch)

    if channel == "link":
        low, high = sorted((sender.box_pk, me.box_pk))
        key = kdf(x25519(me.box, sender.box_pk), b"nngsec/v2/pair-key", bind, low, high)
        return xchacha_decrypt(
            key, f.nonce, f.body, b"nngsec/v2/secretbox\x00" + f.header
        ), sender_name
    if channel in ("bus", "bus-group"):
        assert secret is not None
        ciphertext = f.body[:-64] if channel == "bus" else f.body
        if channel == "bus":
            verify_signature(
                sender.sign_pk, sigmsg(b"nngsec/v2/bus", bind, f.header + ciphertext), f.body[-64:]
            )
        return xchacha_decrypt(
            secret, f.nonce, ciphertext, b"nngsec/v2/bus\x00" + f.header
        ), sender_name
    if f.kind == 0x04:  # sealed
        assert secret is not None
        if channel in MAC_CHANNELS:
            # origin: mac: one 16-byte MAC per holder of the epoch, holders sorted by name;
            # this receiver checks its own, keyed from X25519(receiver, sender).
            holders = sorted(_epoch_entry(vector, channel, f.epoch)["sealed"])
            tags, body = f.body[-16 * len(holders) :], f.body[: -16 * len(holders)]
            mac_key = kdf(
                x25519(me.box, sender.box_pk),
                b"nngsec/v2/sealed/mac-key",
                sender.box_pk,
                me.box_pk,
                bind,
            )
            digest = hashlib.blake2b(
                b"nngsec/v2/sealed/mac\x00" + f.header + body, digest_size=32
            ).digest()
            at = 16 * holders.index(receiver)
            expected = hashlib.blake2b(digest, digest_size=16, key=mac_key).digest()
            assert hmac.compare_digest(expected, tags[at : at + 16])
        else:
            verify_signature(
                sender.sign_pk,
                sigmsg(b"nngsec/v2/sealed", bind, f.header + f.body[:-64]),
                f.body[-64:],
            )
            body = f.body[:-64]
        ephemeral, wrapped = body[:32], body[32:80]
        audience = independent_public(vector, channel, f.epoch)
        assert audience == x25519_public(secret)
        wrap_key = kdf(
            x25519(secret, ephemeral),
            b"nngsec/v2/sealed/wrap",
            ephemeral,
            audience,
            bind,
            epoch,
            f.key_id,
            f.session,
        )
        content_key = xchacha_decrypt(wrap_key, bytes(24), wrapped, b"")
        ad = b"nngsec/v2/sealed\x00" + f.header + body[:80]
        return xchacha_decrypt(content_key, f.nonce, body[80:], ad), sender_name
    if f.kind in (0x05, 0x85):
        if channel in ("health", "health-mac", "single"):  # responses to me; requests to me alone
            key = peer_key(x25519(me.box, sender.box_pk), sender.box_pk, me.box_pk)
        elif f.kind == 0x05:  # request to the two-server service: I hold its secret
            assert secret is not None
            service = independent_public(vector, channel, f.epoch)
            key = peer_key(x25519(secret, sender.box_pk), sender.box_pk, service)
        else:  # reply to me, the client: I know the service's public key only
            service = independent_public(vector, channel, f.epoch)
            key = peer_key(x25519(me.box, service), me.box_pk, service)
        return xchacha_decrypt(
            key, f.nonce, f.body, b"nngsec/v2/peerbox\x00" + f.header
        ), sender_name
    if f.kind == 0x02:
        verify_signature(
            sender.sign_pk, sigmsg(b"nngsec/v2/signed", bind, frame[:-64]), frame[-64:]
        )
        return f.body[:-64], sender_name
    assert f.kind == 0x01
    return f.body, sender_name


ACCEPTED = [
    (path, index)
    for path in VECTORS
    for index, delivery in enumerate(load(path)["deliveries"])
    if "accept" in delivery["expect"] and not delivery.get("mutation")
]


@pytest.mark.parametrize(
    ("path", "index"), ACCEPTED, ids=lambda v: v.stem if isinstance(v, Path) else str(v)
)
def test_independent_implementation_agrees(path, index):
    vector = load(path)
    delivery = vector["deliveries"][index]
    payload, sender = independently_open(vector, delivery)
    assert payload.hex() == delivery["expect"]["accept"]["payload"]
    assert sender == delivery["expect"]["accept"]["sender"]


def test_identities_come_from_their_seeds_as_the_policy_says():
    """Key pairs, key ids and the identity text (with its checksum), from the seeds alone."""
    vector = load(VECTORS[0])
    for name, seed in vector["seeds"].items():
        person = Identity.from_seed(bytes.fromhex(seed))
        assert _policy_field_indented(vector, name) == person.text


def _policy_field_indented(vector, name: str) -> str:
    [line] = [line for line in vector["policy"].splitlines() if line.startswith(f"  {name}:")]
    return str(line.split(":", 1)[1].strip())


ENTRIES = [
    (channel, holder)
    for channel, spec in load(VECTORS[0])["channel_keys"]["channels"].items()
    for holder in spec["epochs"][0]["sealed"]
]


@pytest.mark.parametrize(("channel", "holder"), ENTRIES, ids=str)
def test_every_channel_key_entry_opens_independently(channel, holder):
    """Each entry of the vectors' channel-key file, opened with the holder's X25519 secret
    (crypto_box_seal written out here), binds deployment, policy, channel, epoch and kind,
    and holds the channel secret (whose public key is the entry's public field)."""
    vector = load(VECTORS[0])
    spec = vector["channel_keys"]["channels"][channel]
    epoch = spec["epochs"][0]["epoch"]
    secret = independent_secret(vector, channel, epoch, holder)
    assert secret is not None
    assert secret.hex() == vector["channel_secrets"][channel][str(epoch)]
    if spec["kind"] != "group":
        assert independent_public(vector, channel, epoch) == x25519_public(secret)


def test_every_vector_carries_the_same_inputs():
    first = load(VECTORS[0])
    for path in VECTORS[1:]:
        vector = load(path)
        assert (vector["policy"], vector["seeds"], vector["channel_keys"]) == (
            first["policy"],
            first["seeds"],
            first["channel_keys"],
        ), path.name


def test_the_independent_primitives_match_their_published_values():
    # draft-irtf-cfrg-xchacha-03, 2.2.1
    key = bytes(range(32))
    assert hchacha20(key, bytes.fromhex("000000090000004a0000000031415927")).hex() == (
        "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
    )
    # NaCl's crypto_box test: HSalsa20 of the X25519 secret of Alice and Bob ("firstkey")
    shared = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert hsalsa20(shared, bytes(16)).hex() == (
        "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389"
    )
