"""Deterministic generator of the wire-format test vectors in this folder.

Run ``python -m tests.vectors.generate`` from the repository root to rewrite them. Every
input is fixed: identity seeds, the random stream of each node and of ``nngsec rotate``
(BLAKE2b in counter mode over a label), and the clock. The same code (:func:`run`) replays
a vector in the tests, so a vector checks the encoder (frames are rebuilt byte for byte)
and the decoder (each delivery must end as recorded).

Provenance: produced by nngsec's own implementation, then cross-checked with an
independent implementation (``independent.py``: pyca/cryptography for Ed25519, X25519 and
ChaCha20-Poly1305, CPython's hashlib for BLAKE2b, and HChaCha20 written from
draft-irtf-cfrg-xchacha-03) by ``tests/test_vectors.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nngsec import Keystore, Node, Received, Rejected, load_policy
from nngsec._formats._text import b64url_encode
from nngsec._keys._channel_keys import ChannelKeyFile
from nngsec._keys._files import write_identity_files
from nngsec._keys._identity import IdentityKey
from nngsec._policy._admin import rotate

HERE = Path(__file__).parent
CLOCK = 1_800_000_000.0
NAMES = ("alice", "bob", "carol", "dave")
CHANNELS = """
channels:
  link: {pattern: pair, members: [alice, bob]}
  bus: {pattern: bus, members: [alice, bob, carol]}
  bus-group: {pattern: bus, members: [alice, bob, carol], origin: group}
  telemetry:
    pattern: pubsub
    publishers: [alice, bob]
    subscribers: [carol, dave]
    topics: ["temp."]
  jobs: {pattern: pipeline, pushers: [alice], pullers: [carol, dave]}
  control: {pattern: reqrep, clients: [alice, bob], servers: [carol, dave]}
  single: {pattern: reqrep, clients: [alice], servers: [carol]}
  health: {pattern: survey, surveyors: [alice], respondents: [carol, dave]}
  audit: {pattern: pubsub, publishers: [alice], subscribers: [carol], scheme: signed}
  debug: {pattern: pipeline, pushers: [alice], pullers: [carol], scheme: plaintext}
  telemetry-mac:
    pattern: pubsub
    publishers: [alice, bob]
    subscribers: [carol, dave]
    topics: ["temp."]
    origin: mac
  jobs-mac: {pattern: pipeline, pushers: [alice], pullers: [carol, dave], origin: mac}
  health-mac: {pattern: survey, surveyors: [alice], respondents: [carol, dave], origin: mac}
"""


class DeterministicRandom:
    """``n -> n bytes`` from BLAKE2b(label, counter): reproducible, for vectors only."""

    def __init__(self, label: str) -> None:
        self.label = label.encode()
        self.counter = 0

    def __call__(self, size: int) -> bytes:
        out = b""
        while len(out) < size:
            out += hashlib.blake2b(
                self.counter.to_bytes(8, "big"), key=self.label[:64], digest_size=64
            ).digest()
            self.counter += 1
        return out[:size]


def seed_of(name: str) -> bytes:
    return hashlib.blake2b(f"nngsec test vectors/identity/{name}".encode(), digest_size=32).digest()


def deployment_of(label: str) -> str:
    raw = hashlib.blake2b(f"nngsec test vectors/deployment/{label}".encode(), digest_size=16)
    return b64url_encode(raw.digest())


DEPLOYMENT = deployment_of("one")
OTHER_DEPLOYMENT = deployment_of("two")  # a second deployment of the same policy


def policy_text(deployment: str = DEPLOYMENT) -> str:
    lines = ["nngsec: 1", "name: vectors", f"deployment: {deployment}", "identities:"]
    lines += [f"  {n}: {IdentityKey(seed_of(n)).public.to_text()}" for n in NAMES]
    return "\n".join(lines) + "\n" + CHANNELS.lstrip("\n")


# A sealed pubsub frame from alice to the subscribers, made by nngsec 0.1 (wire format 1:
# 8-byte session, 24-byte nonce key_id || session || seq), from that release's vectors.
V1_FRAME = (
    "74656d702e6c696e6531000104000974656c656d65747279d33ee68ee1c5df27000000018ba1ebc9bb17f78e"
    "0000000000000000000001a3185c50001c17b486f8f71d98232ed37b60fc54e8cfb2ff92054b8bc38e6be40f"
    "69aa0240fbafde4a9d488a1ad76910d226a825291111eed20d26b7852f6a2beb5c1582d01cf5722831e5f824"
    "76ba5c670b304d60ec74f0a711b5d3bf2ab03bfdacb85bf51482136c991f248b16ad1692899b52e707429163"
    "dea08d878a7c9f994e18d5e5864a0099d9046e22888f9d1704a39e8d95b3d941c0c5c2261ce0b4cd5d12f8fb"
    "83fc599cfed835e8cf1de9d7c8fa252901"
)


@dataclass
class Case:
    name: str
    description: str
    steps: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]


@dataclass
class Run:
    frames: list[str] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    channel_keys: dict[str, Any] = field(default_factory=dict)
    channel_secrets: dict[str, dict[str, str]] = field(default_factory=dict)


def _mutate(frame: bytes, mutation: dict[str, Any] | None) -> bytes:
    if not mutation:
        return frame
    data = bytearray(frame)
    if "xor" in mutation:
        offset, value = mutation["xor"]
        data[offset] ^= value
    if "replace" in mutation:
        offset, text = mutation["replace"]
        raw = bytes.fromhex(text)
        data[offset : offset + len(raw)] = raw
    if "truncate" in mutation:
        data = data[: mutation["truncate"]]
    return bytes(data)


def _outcome(receiver: Node, channel: str, frame: bytes) -> dict[str, Any]:
    try:
        message: Received = receiver.open(channel, frame)
    except Rejected as rejected:
        return {"reject": rejected.reason}
    return {
        "accept": {
            "payload": message.payload.hex(),
            "sender": message.sender,
            "topic": message.topic,
        }
    }


def _deployment(root: Path, keystore: Keystore, policy: str, rotate_random: str) -> Path:
    """A policy file in ``root`` with its channel keys, made by ``nngsec rotate``."""
    root.mkdir()
    policy_path = root / "vectors.yaml"
    policy_path.write_text(policy)
    rotate(policy_path, now=CLOCK, random=DeterministicRandom(rotate_random))
    return policy_path


def run(vector: dict[str, Any], root: Path) -> Run:
    """Replay a vector's inputs in ``root``; returns the frames and delivery outcomes."""
    keystore = Keystore(root / "keys")
    keystore.directory.mkdir()
    for name, seed in vector["seeds"].items():
        write_identity_files(keystore.directory, name, IdentityKey(bytes.fromhex(seed)))
    policy_path = _deployment(root / "one", keystore, vector["policy"], vector["rotate_random"])
    result = Run()
    clock = [vector["clock"]]

    def node(identity: str, label: str, policy_path: Path = policy_path) -> Node:
        return Node(
            load_policy(policy_path),
            identity=identity,
            keystore=keystore,
            clock=lambda: clock[0],
            random=DeterministicRandom(label),
            state_dir=False,  # a vector's outcome depends on its steps alone
        )

    senders: dict[str, Node] = {}
    for step in vector["steps"]:
        if "sender" not in step:  # a frame given as it is (another version, another tool)
            result.frames.append(step["frame"])
            continue
        who = step["sender"]
        sender = senders.setdefault(who, node(who, f"{vector['name']}/{who}"))
        payload = bytes.fromhex(step["payload"])
        if "reply_to_step" in step:
            request = sender.open(
                vector["steps"][step["reply_to_step"]]["channel"],
                bytes.fromhex(result.frames[step["reply_to_step"]]),
            )
            frame = sender.reply(request, payload)
        else:
            frame = sender.seal(step["channel"], payload, topic=step.get("topic"))
        result.frames.append(frame.hex())
    receivers: dict[tuple[str, str | None], Node] = {}
    for delivery in vector["deliveries"]:
        who, other = delivery["receiver"], delivery.get("deployment")
        receiver = receivers.get((who, other))
        if receiver is None:
            where = policy_path
            if other is not None:  # the same policy and keys in another deployment
                where = _deployment(
                    root / "two",
                    keystore,
                    vector["policy"].replace(f"deployment: {DEPLOYMENT}", f"deployment: {other}"),
                    vector["rotate_random"],
                )
            receiver = receivers[(who, other)] = node(
                who, f"{vector['name']}/{who}/receiver", where
            )
        clock[0] = vector["clock"] + delivery.get("clock_offset", 0.0)
        frame = _mutate(bytes.fromhex(result.frames[delivery["step"]]), delivery.get("mutation"))
        result.outcomes.append(_outcome(receiver, delivery["channel"], frame))
    # The channel-key file, and the secrets in it (opened by one holder of each), so that
    # an implementation can check both its reading of the file and its frames.
    keys_path = policy_path.with_name("vectors.keys.json")
    result.channel_keys = json.loads(keys_path.read_text())
    keys_file = ChannelKeyFile.load(keys_path)
    assert keys_file is not None
    for channel, spec in keys_file.model.channels.items():
        holder = sorted(spec.epochs[0].sealed)[0]
        opened = keys_file.open_channel(channel, holder, keystore.identity(holder))
        assert opened is not None and opened.current.secret is not None
        result.channel_secrets[channel] = {str(opened.current.epoch): opened.current.secret.hex()}
    return result


def _accept(payload: bytes, sender: str, topic: str | None = None) -> dict[str, Any]:
    return {"accept": {"payload": payload.hex(), "sender": sender, "topic": topic}}


def _reject(reason: str) -> dict[str, Any]:
    return {"reject": reason}


def cases() -> list[tuple[Case, list[dict[str, Any]]]]:
    """Every case with its expected outcomes (what the spec says must happen)."""
    hello = b"hello, world"
    reading = b'{"celsius": 21.5}'
    out: list[tuple[Case, list[dict[str, Any]]]] = []

    def add(
        name: str,
        description: str,
        steps: list[dict[str, Any]],
        deliveries: list[dict[str, Any]],
        expected: list[dict[str, Any]],
    ) -> None:
        for step in steps:
            if "payload" in step:
                step["payload"] = step["payload"].hex()
        out.append((Case(name, description, steps, deliveries), expected))

    def step(sender: str, channel: str, payload: bytes, topic: str | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"sender": sender, "channel": channel, "payload": payload}
        if topic is not None:
            entry["topic"] = topic
        return entry

    def to(receiver: str, channel: str, index: int = 0, **extra: Any) -> dict[str, Any]:
        return {"step": index, "receiver": receiver, "channel": channel, **extra}

    add(
        "secretbox_pair",
        "pair channel, alice to bob",
        [step("alice", "link", hello)],
        [to("bob", "link")],
        [_accept(hello, "alice")],
    )
    add(
        "secretbox_pair_reflected",
        "a pair frame sent back to its own sender",
        [step("alice", "link", hello)],
        [to("alice", "link")],
        [_reject("unauthorized")],
    )
    add(
        "secretbox_bus",
        "bus with signed origin, alice to carol",
        [step("alice", "bus", hello)],
        [to("carol", "bus")],
        [_accept(hello, "alice")],
    )
    add(
        "secretbox_bus_group",
        "bus with origin: group (no signature)",
        [step("alice", "bus-group", hello)],
        [to("carol", "bus-group")],
        [_accept(hello, "alice")],
    )
    # The sender key id follows the 4-byte prefix and the channel name (no topic on a bus).
    bus_id = 4 + len("bus")
    add(
        "secretbox_bus_impersonation",
        "alice's bus frame relabelled as bob's",
        [step("alice", "bus", hello)],
        [
            to(
                "carol",
                "bus",
                mutation={"replace": [bus_id, IdentityKey(seed_of("bob")).key_id.hex()]},
            )
        ],
        [_reject("forged")],
    )
    topic = "temp.line1"
    t0 = len(topic) + 1
    add(
        "sealed_pubsub",
        "signed sealed box from a publisher to the subscribers",
        [step("alice", "telemetry", reading, topic)],
        [to("carol", "telemetry"), to("dave", "telemetry")],
        [_accept(reading, "alice", topic), _accept(reading, "alice", topic)],
    )
    add(
        "sealed_pubsub_replay",
        "the same frame delivered twice",
        [step("alice", "telemetry", reading, topic)],
        [to("carol", "telemetry"), to("carol", "telemetry")],
        [_accept(reading, "alice", topic), _reject("replay")],
    )
    add(
        "sealed_pubsub_topic_rewrite",
        "a relay rewrites temp.line1 to temp.line2",
        [step("alice", "telemetry", reading, topic)],
        [to("carol", "telemetry", mutation={"replace": [len("temp.line"), b"2".hex()]})],
        [_reject("forged")],
    )
    add(
        "sealed_pubsub_bitflip",
        "one bit of the ciphertext flipped",
        [step("alice", "telemetry", reading, topic)],
        [to("carol", "telemetry", mutation={"xor": [-70, 1]})],
        [_reject("forged")],
    )
    add(
        "sealed_pubsub_not_recipient",
        "another publisher cannot read it",
        [step("alice", "telemetry", reading, topic)],
        [to("bob", "telemetry")],
        [_reject("no-key")],
    )
    add(
        "sealed_pubsub_stale",
        "delivered 30.001 s after it was sent (max_age 30s)",
        [step("alice", "telemetry", reading, topic)],
        [to("carol", "telemetry", clock_offset=30.001)],
        [_reject("stale")],
    )
    add(
        "sealed_pubsub_future",
        "stamped 2.5 s ahead of the receiver's clock (skew 2 s)",
        [step("alice", "telemetry", reading, topic)],
        [to("carol", "telemetry", clock_offset=-2.5)],
        [_reject("stale")],
    )
    add(
        "sealed_pubsub_downgrade",
        "kind byte changed to plaintext",
        [step("alice", "telemetry", reading, topic)],
        [to("carol", "telemetry", mutation={"replace": [t0 + 1, "01"]})],
        [_reject("forged")],
    )
    add(
        "sealed_mac_pubsub",
        "origin: mac, one MAC per subscriber (carol's, then dave's: their names in order)",
        [step("alice", "telemetry-mac", reading, topic)],
        [to("carol", "telemetry-mac"), to("dave", "telemetry-mac")],
        [_accept(reading, "alice", topic), _accept(reading, "alice", topic)],
    )
    add(
        "sealed_mac_other_receivers_mac_changed",
        "origin: mac, one bit of dave's MAC (the last) flipped: only dave refuses",
        [step("alice", "telemetry-mac", reading, topic)],
        [
            to("carol", "telemetry-mac", mutation={"xor": [-1, 1]}),
            to("dave", "telemetry-mac", mutation={"xor": [-1, 1]}),
        ],
        [_accept(reading, "alice", topic), _reject("forged")],
    )
    add(
        "sealed_mac_stripped",
        "origin: mac, dave's MAC removed: every receiver refuses (the ciphertext would end "
        "elsewhere)",
        [step("alice", "telemetry-mac", reading, topic)],
        [
            to("carol", "telemetry-mac", mutation={"truncate": -16}),
            to("dave", "telemetry-mac", mutation={"truncate": -16}),
        ],
        [_reject("forged"), _reject("forged")],
    )
    add(
        "sealed_mac_pipeline",
        "origin: mac, a job to one of two pullers",
        [step("alice", "jobs-mac", hello)],
        [to("dave", "jobs-mac")],
        [_accept(hello, "alice")],
    )
    add(
        "sealed_mac_survey",
        "origin: mac, a survey to the respondents, and carol's response (peerbox)",
        [
            step("alice", "health-mac", b"status?"),
            {"sender": "carol", "reply_to_step": 0, "payload": b"ok"},
        ],
        [to("dave", "health-mac"), to("alice", "health-mac", 1)],
        [_accept(b"status?", "alice"), _accept(b"ok", "carol")],
    )
    add(
        "sealed_pipeline",
        "a job to one of two pullers",
        [step("alice", "jobs", hello)],
        [to("dave", "jobs")],
        [_accept(hello, "alice")],
    )
    add(
        "sealed_survey",
        "a survey to the respondents",
        [step("alice", "health", b"status?")],
        [to("carol", "health")],
        [_accept(b"status?", "alice")],
    )
    add(
        "peerbox_survey_response",
        "carol answers alice's survey",
        [
            step("alice", "health", b"status?"),
            {"sender": "carol", "reply_to_step": 0, "payload": b"ok"},
        ],
        [to("alice", "health", 1)],
        [_accept(b"ok", "carol")],
    )
    add(
        "peerbox_request",
        "a request to a two-server service",
        [step("alice", "control", b"open valve 3")],
        [to("dave", "control")],
        [_accept(b"open valve 3", "alice")],
    )
    add(
        "peerbox_reply",
        "a server's reply to its client; reply_to is the request's key_id (8), session (16) "
        "and seq (8)",
        [
            step("alice", "control", b"open valve 3"),
            {"sender": "carol", "reply_to_step": 0, "payload": b"open"},
        ],
        [to("alice", "control", 1)],
        [_accept(b"open", "carol")],
    )
    add(
        "peerbox_reply_other_client",
        "a reply delivered to another client",
        [
            step("alice", "control", b"open valve 3"),
            {"sender": "carol", "reply_to_step": 0, "payload": b"open"},
        ],
        [to("bob", "control", 1)],
        [_reject("no-key")],
    )
    # The reply's header: version..chan_len (4), "control", key_id (8), epoch (4),
    # session (16), seq (8), time (8), then reply_to: key_id (8), session (16), seq (8).
    reply_to_session = 4 + len("control") + 44 + 8
    add(
        "peerbox_reply_rebound",
        "a reply whose reply_to session was changed (to pass it off as another request's)",
        [
            step("alice", "control", b"open valve 3"),
            {"sender": "carol", "reply_to_step": 0, "payload": b"open"},
        ],
        [to("alice", "control", 1, mutation={"xor": [reply_to_session, 1]})],
        [_reject("forged")],
    )
    add(
        "peerbox_single_request",
        "a request to a single-server service (identity key)",
        [step("alice", "single", b"ping")],
        [to("carol", "single")],
        [_accept(b"ping", "alice")],
    )
    add(
        "peerbox_wrong_channel",
        "a control frame delivered on another channel",
        [step("alice", "control", b"ping")],
        [to("carol", "single")],
        [_reject("wrong-channel")],
    )
    add(
        "signed_pubsub",
        "clear payload, signed",
        [step("alice", "audit", hello, "temp.x")],
        [to("carol", "audit")],
        [_accept(hello, "alice", "temp.x")],
    )
    add(
        "signed_unknown_sender",
        "key id of nobody in the policy",
        [step("alice", "audit", hello, "temp.x")],
        [
            to(
                "carol",
                "audit",
                mutation={"replace": [len("temp.x") + 1 + 4 + len("audit"), "ee" * 8]},
            )
        ],
        [_reject("unknown-sender")],
    )
    add(
        "plaintext_pipeline",
        "no protection, framed",
        [step("alice", "debug", hello)],
        [to("carol", "debug")],
        [_accept(hello, "alice")],
    )
    add(
        "wire_truncated",
        "cut inside the header",
        [step("alice", "telemetry", reading, topic)],
        [to("carol", "telemetry", mutation={"truncate": t0 + 10})],
        [_reject("malformed")],
    )
    add(
        "wire_bad_version",
        "version byte 3",
        [step("alice", "telemetry", reading, topic)],
        [to("carol", "telemetry", mutation={"replace": [t0, "03"]})],
        [_reject("malformed")],
    )
    add(
        "wire_v1_refused",
        "a frame of nngsec 0.1 (wire format 1), as that release sealed it",
        [{"frame": V1_FRAME, "note": "wire format 1, from nngsec 0.1"}],
        [to("carol", "telemetry")],
        [_reject("malformed")],
    )
    # The same policy (name, identities, channels) and the same private keys, set up as a
    # second deployment (its own deployment id, its own nngsec rotate): nothing crosses.
    for name, channel, receiver, payload, frame_topic in (
        ("secretbox_pair", "link", "bob", hello, None),
        ("sealed_pubsub", "telemetry", "carol", reading, topic),
        ("peerbox_single_request", "single", "carol", b"ping", None),
        ("signed_pubsub", "audit", "carol", hello, "temp.x"),
    ):
        add(
            f"{name}_other_deployment",
            f"a {channel} frame delivered in another deployment of the same policy and keys",
            [step("alice", channel, payload, frame_topic)],
            [to(receiver, channel), to(receiver, channel, deployment=OTHER_DEPLOYMENT)],
            [_accept(payload, "alice", frame_topic), _reject("forged")],
        )
    return out


def build(case: Case, expected: list[dict[str, Any]]) -> dict[str, Any]:
    vector: dict[str, Any] = {
        "name": case.name,
        "description": case.description,
        "generator": "tests/vectors/generate.py",
        "policy": policy_text(),
        "seeds": {n: seed_of(n).hex() for n in NAMES},
        "rotate_random": "nngsec test vectors/rotate",
        "clock": CLOCK,
        "steps": case.steps,
        "deliveries": case.deliveries,
    }
    with tempfile.TemporaryDirectory() as root:
        result = run(vector, Path(root))
    if result.outcomes != expected:
        raise SystemExit(f"{case.name}: got {result.outcomes}, expected {expected}")
    for step, frame in zip(vector["steps"], result.frames, strict=True):
        step["frame"] = frame
    for delivery, outcome in zip(vector["deliveries"], result.outcomes, strict=True):
        delivery["expect"] = outcome
    vector["channel_keys"] = result.channel_keys
    vector["channel_secrets"] = result.channel_secrets
    return vector


def main() -> int:
    logging.getLogger("nngsec").setLevel(logging.ERROR)  # (unsigned, as vectors are)
    for old in HERE.glob("*.json"):
        old.unlink()
    for case, expected in cases():
        vector = build(case, expected)
        (HERE / f"{case.name}.json").write_text(json.dumps(vector, indent=2) + "\n")
    print(f"wrote {len(cases())} vectors to {HERE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
