"""The wire-format test vectors (tests/vectors/*.json), checked in both directions and
against an independent implementation. See docs/spec/wire-format.md, "Test vectors"."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.vectors import generate
from tests.vectors.independent import (
    Identity,
    binding,
    kdf,
    parse,
    verify_signature,
    x25519,
    x25519_public,
    xchacha_decrypt,
)

VECTORS = sorted(generate.HERE.glob("*.json"))
PUBSUB = {"telemetry", "audit"}


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
    assert result.channel_secrets == vector["channel_secrets"]


def independently_open(vector, delivery) -> tuple[bytes, str]:
    """Open an accepted delivery with independent code; raise if anything does not verify."""
    people = {
        name: Identity.from_seed(bytes.fromhex(seed)) for name, seed in vector["seeds"].items()
    }
    by_id = {person.key_id: name for name, person in people.items()}
    channel = delivery["channel"]
    frame = bytes.fromhex(vector["steps"][delivery["step"]]["frame"])
    f = parse(frame, channel in PUBSUB)
    assert f.channel.decode() == channel
    sender_name = by_id[f.key_id]
    sender, me = people[sender_name], people[delivery["receiver"]]
    bind = binding("vectors", f.channel)
    epoch = struct.pack(">I", f.epoch)
    secret = bytes.fromhex(vector["channel_secrets"].get(channel, {}).get(str(f.epoch), "00" * 32))

    def peer_key(shared_secret, x_pk, y_pk):
        return kdf(shared_secret, b"nngsec/v1/peer-key", x_pk, y_pk, bind, epoch)

    if channel == "link":
        low, high = sorted((sender.box_pk, me.box_pk))
        key = kdf(x25519(me.box, sender.box_pk), b"nngsec/v1/pair-key", bind, low, high)
        return xchacha_decrypt(
            key, f.nonce, f.body, b"nngsec/v1/secretbox\x00" + f.header
        ), sender_name
    if channel in ("bus", "bus-group"):
        ciphertext = f.body[:-64] if channel == "bus" else f.body
        if channel == "bus":
            verify_signature(
                sender.sign_pk, b"nngsec/v1/bus\x00" + bind + f.header + ciphertext, f.body[-64:]
            )
        return xchacha_decrypt(
            secret, f.nonce, ciphertext, b"nngsec/v1/bus\x00" + f.header
        ), sender_name
    if f.kind == 0x04:  # sealed
        verify_signature(
            sender.sign_pk, b"nngsec/v1/sealed\x00" + bind + f.header + f.body[:-64], f.body[-64:]
        )
        ephemeral, wrapped = f.body[:32], f.body[32:80]
        audience = x25519_public(secret)
        wrap_key = kdf(
            x25519(secret, ephemeral),
            b"nngsec/v1/sealed/wrap",
            ephemeral,
            audience,
            bind,
            epoch,
            f.key_id,
            f.session,
        )
        content_key = xchacha_decrypt(wrap_key, bytes(24), wrapped, b"")
        ad = b"nngsec/v1/sealed\x00" + f.header + f.body[:80]
        return xchacha_decrypt(content_key, f.nonce, f.body[80:-64], ad), sender_name
    if f.kind in (0x05, 0x85):
        if channel in ("health", "single"):  # response to me the surveyor; request to me the server
            key = peer_key(x25519(me.box, sender.box_pk), sender.box_pk, me.box_pk)
        elif f.kind == 0x05:  # request to the two-server service
            service = x25519_public(secret)
            key = peer_key(x25519(secret, sender.box_pk), sender.box_pk, service)
        else:  # reply to me, the client
            service = x25519_public(secret)
            key = peer_key(x25519(me.box, service), me.box_pk, service)
        return xchacha_decrypt(
            key, f.nonce, f.body, b"nngsec/v1/peerbox\x00" + f.header
        ), sender_name
    if f.kind == 0x02:
        verify_signature(sender.sign_pk, b"nngsec/v1/signed\x00" + bind + frame[:-64], frame[-64:])
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


def test_identities_match_the_policy():
    vector = load(VECTORS[0])
    for name, seed in vector["seeds"].items():
        person = Identity.from_seed(bytes.fromhex(seed))
        from nngsec import PublicIdentity

        line = next(
            line for line in vector["policy"].splitlines() if line.strip().startswith(f"{name}:")
        )
        public = PublicIdentity.from_text(line.split(":", 1)[1].strip())
        assert (public.sign_key, public.box_key) == (person.sign_pk, person.box_pk)
