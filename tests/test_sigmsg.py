"""Every frame signature nngsec makes is the spec's ``SIG(SIGMSG(label, frame))``, checked
with the independent implementation (``tests/vectors/independent.py``: pyca/cryptography's
Ed25519) on every signing scheme and kind, requests and replies alike (the vectors cover
no signed reply); and no signature verifies under the ``SIGMSG`` of another label,
channel, policy name or deployment: what it was made for is all it proves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature

from nngsec import load_policy
from nngsec._formats._deployment import decode_deployment_id
from tests.vectors.independent import binding, parse, sigmsg, verify_signature

PAYLOAD = b"0123456789abcdef"
LABELS = (b"nngsec/v2/signed", b"nngsec/v2/bus", b"nngsec/v2/sealed")
# (channel, label, sender, answerer): answerer None for a channel with no signed replies
SIGNING = [
    ("pair-signed", b"nngsec/v2/signed", "alice", None),
    ("bus-signed", b"nngsec/v2/signed", "alice", None),
    ("pubsub-signed", b"nngsec/v2/signed", "alice", None),
    ("pipeline-signed", b"nngsec/v2/signed", "alice", None),
    ("survey-signed", b"nngsec/v2/signed", "alice", "carol"),
    ("reqrep-signed", b"nngsec/v2/signed", "alice", "carol"),
    ("bus-secretbox", b"nngsec/v2/bus", "alice", None),
    ("pubsub-sealed", b"nngsec/v2/sealed", "alice", None),
    ("pipeline-sealed", b"nngsec/v2/sealed", "alice", None),
    ("survey-sealed", b"nngsec/v2/sealed", "alice", None),
]


def _frames(
    nodes: dict[str, Any], channel: str, sender: str, answerer: str | None
) -> Iterator[tuple[str, bytes]]:
    """(signer, frame): a request (or message) and, where signed, its reply."""
    topic = "t.x" if channel.startswith("pubsub") else None
    request = nodes[sender].sender(channel).seal(PAYLOAD, topic)
    yield sender, request
    if answerer is not None:
        received = nodes[answerer].receiver(channel, "forward").open(request)
        yield answerer, nodes[answerer].sender(channel).reply(received, b"answer")


def _verifies(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        verify_signature(public, message, signature)
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize(("channel", "label", "sender", "answerer"), SIGNING)
def test_a_frame_signature_is_sigmsg_of_its_label_binding_and_frame_and_nothing_else(
    codec_world, channel, label, sender, answerer
):
    policy = load_policy(codec_world.world.policy_path)
    assert policy.model.deployment is not None  # so changing it means something
    deployment = decode_deployment_id(policy.model.deployment)
    name = policy.name
    kinds = set()
    for signer, frame in _frames(codec_world.nodes, channel, sender, answerer):
        parsed = parse(frame, pubsub=channel.startswith("pubsub"))
        kinds.add(parsed.kind)
        public = policy.identities[signer].sign_key
        signed, signature = frame[:-64], frame[-64:]
        bind = binding(deployment, name, channel.encode())
        assert _verifies(public, sigmsg(label, bind, signed), signature), hex(parsed.kind)
        others = [
            *(sigmsg(other, bind, signed) for other in LABELS if other != label),
            *(
                sigmsg(label, binding(deployment, name, other.encode()), signed)
                for other in ("pair-signed", "bus-signed", "pubsub-sealed")
                if other != channel
            ),
            sigmsg(label, binding(deployment, name + "x", channel.encode()), signed),
            sigmsg(label, binding(bytes(16), name, channel.encode()), signed),
            label + b"\x00" + bind + signed,  # the frame itself, not its digest (as before)
        ]
        assert not any(_verifies(public, other, signature) for other in others)
    if answerer is not None:
        assert any(kind & 0x80 for kind in kinds)  # a reply kind was checked too
