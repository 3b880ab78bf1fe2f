"""``nngsec demo``: a small secured factory in one process, under attack.

Everything is real: fresh identity keys, a policy signed by an admin whose key the nodes
pin, channel keys sealed per identity, pynng sockets over ipc, and key-less relays between
the sensors and their readers, the scheduler and its workers, the dashboard and its two
controllers, and the dashboard and the workers it surveys; a wire the attacker owns joins
the pair of the dashboard and the archiver.

The relays are the attacker: they record every frame they forward, and an attacker
process on the same wires injects what it can make of them (replays, forgeries, tampered
topics, reflections, answers to the wrong survey) plus frames signed with a stolen,
revoked key and frames from a foreign policy. Each attack is injected on its own while the
receivers run, so the demo sees, and says, which check rejected it (the reason each
receiver counted). The demo passes (exit 0) only if every receiver got exactly the honest
messages meant for it (by sender and payload, each once), every attack was rejected by
every receiver it reached, for the reason the design says, and no relay saw an honest
payload in the clear.

A live phase follows (``_demo_live.py``): nodes that watch their own copies of the files,
a key rotation under traffic with zero loss, then a revoked subscriber that stops reading
within seconds while the other subscriber loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import pynng

from .._keys._channel_keys import ChannelKeyFile
from .._keys._keystore import Keystore
from .._policy._admin import rotate, sign
from .._policy._load import load_policy
from .._policy._policy import channel_keys_path
from .._relay import Relay
from .._runtime._codec import ChannelCodec
from .._runtime._node import Node
from .._runtime._wire import encode_header, parse_frame
from . import _logs
from ._demo_live import LIVE_ROWS, run_live

__all__ = ["DemoReport", "run_demo"]

IDENTITIES = (
    "sensor-1", "sensor-2", "sensor-9", "dashboard", "archiver", "scheduler",
    "worker-1", "worker-2", "controller-a", "controller-b", "cell-1", "cell-2", "cell-3",
)  # fmt: skip
CHANNELS = """
groups:
  sensors: [sensor-1, sensor-2, sensor-9]
  workers: [worker-1, worker-2]
  controllers: [controller-a, controller-b]
  cells: [cell-1, cell-2, cell-3]
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensors]
    subscribers: [dashboard, archiver]
    topics: ["temp.", "hum."]
  jobs:
    pattern: pipeline
    pushers: [scheduler]
    pullers: [workers]
  control:
    pattern: reqrep
    clients: [dashboard]
    servers: [controllers]
  cells:
    pattern: bus
    members: [cells]
  sync:
    pattern: pair
    members: [dashboard, archiver]
  health:
    pattern: survey
    surveyors: [dashboard]
    respondents: [workers]
revoked: [sensor-9]   # its key was stolen; the attacker still has it
"""
FOREIGN_CHANNELS = """
channels:
  telemetry: {pattern: pubsub, publishers: [intruder], subscribers: [intruder]}
  jobs: {pattern: pipeline, pushers: [intruder], pullers: [intruder]}
  control: {pattern: reqrep, clients: [intruder], servers: [intruder]}
  cells: {pattern: bus, members: [intruder]}
  health: {pattern: survey, surveyors: [intruder], respondents: [intruder]}
"""
READINGS = 10  # per sensor, alternating temp. and hum.
JOBS = 20
REQUESTS = 6
CHATTER = 5  # bus messages per cell
SYNC = 4  # pair messages each way
SURVEY_MS = 300  # how long a survey collects responses
ATTACKED_SURVEY_MS = 1500  # ... the one the rogue respondents answer: time to see each rejected
TIMEOUT_MS = 5000
SCENES = ("telemetry", "jobs", "control", "cells", "sync", "health")

# What each reason says about the check that refused a frame (the spec's order of checks).
CHECKS: dict[str, str] = {
    "malformed": "the header does not parse",
    "wrong-channel": "the header names another channel",
    "unknown-sender": "no identity of the policy has its key id",
    "unauthorized": "the sender holds no sending role for it, or is the receiver itself",
    "revoked": "the sender is listed under revoked",
    "too-large": "over the channel's max_message_size",
    "stale": "older than max_age, or from the future",
    "replay": "the replay window had seen it, or it answers another request",
    "no-key": "the receiver holds no key for it",
    "forged": "the signature or the AEAD tag does not verify",
}


Delivery = tuple[str, str, bytes]
"""(who received it, who sent it, payload). Load-balanced receivers are named by group."""


@dataclass
class Tally:
    """What one receiving socket did: messages delivered, frames rejected by reason."""

    delivered: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "rejected": dict(sorted(self.rejected.items()))}


@dataclass
class Attack:
    """One forged, replayed or tampered frame, injected on its own; ``rejected_as`` is what
    the receivers it reached counted for it."""

    channel: str
    name: str
    expected: str
    copies: int  # how many receivers it reaches
    rejected_as: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.rejected_as == Counter({self.expected: self.copies})

    @property
    def outcome(self) -> str:
        if not self.rejected_as:
            return "NOT REJECTED"
        return ", ".join(
            reason if count == 1 else f"{reason} x{count}"
            for reason, count in sorted(self.rejected_as.items())
        )

    @property
    def check(self) -> str:
        """The check that rejected it, in words (several when receivers disagreed)."""
        return "; ".join(CHECKS.get(reason, reason) for reason in sorted(self.rejected_as))

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "attack": self.name,
            "expected": self.expected,
            "receivers": self.copies,
            "rejected_as": dict(sorted(self.rejected_as.items())),
            "check": self.check,
            "ok": self.ok,
        }


@dataclass
class ChannelRow:
    sent: int = 0
    expected: Counter[Delivery] = field(default_factory=Counter)
    delivered: Counter[Delivery] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    expected_rejected: Counter[str] = field(default_factory=Counter)
    leaked: int = 0  # honest payloads a relay saw in the clear
    receivers: dict[str, Tally] = field(default_factory=dict)  # by receiving identity

    def tally(self, who: str, delivered: int, rejected: Counter[str]) -> None:
        """Count one receiving socket's deliveries and rejections under ``who``."""
        self.receivers[who] = Tally(delivered, Counter(rejected))

    @property
    def ok(self) -> bool:
        return (
            self.delivered == self.expected
            and self.rejected == self.expected_rejected
            and not self.leaked
        )

    @property
    def missing(self) -> int:
        return sum((self.expected - self.delivered).values())

    @property
    def unexpected(self) -> int:
        return sum((self.delivered - self.expected).values())


@dataclass
class DemoReport:
    channels: dict[str, ChannelRow]
    seconds: float
    attacks: list[Attack] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.channels.values()) and all(
            attack.ok for attack in self.attacks
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "ok": self.ok,
                "seconds": round(self.seconds, 3),
                "channels": {
                    name: {
                        "sent": row.sent,
                        "delivered": sum(row.delivered.values()),
                        "expected": sum(row.expected.values()),
                        "missing": row.missing,
                        "unexpected": row.unexpected,
                        "leaked": row.leaked,
                        "rejected": dict(row.rejected),
                        "expected_rejected": dict(row.expected_rejected),
                        "receivers": {who: t.to_json() for who, t in row.receivers.items()},
                        "ok": row.ok,
                    }
                    for name, row in self.channels.items()
                },
                "attacks": [attack.to_json() for attack in self.attacks],
            },
            indent=2,
        )

    def table(self) -> str:
        reasons = sorted(
            {r for row in self.channels.values() for r in row.expected_rejected | row.rejected}
        )
        head = f"{'channel':10} {'sent':>5} {'delivered':>10} " + " ".join(
            f"{r:>14}" for r in reasons
        )
        lines = [head, "-" * len(head)]
        for name, row in self.channels.items():
            cells = " ".join(f"{row.rejected[r]:>14}" for r in reasons)
            mark = "ok" if row.ok else "FAILED"
            if row.missing or row.unexpected or row.leaked:
                mark += (
                    f" (missing {row.missing}, unexpected {row.unexpected}, leaked {row.leaked})"
                )
            delivered, expected = sum(row.delivered.values()), sum(row.expected.values())
            lines.append(f"{name:10} {row.sent:>5} {delivered:>6}/{expected:<3} {cells}  {mark}")
        lines += ["", *self._receiver_lines(), "", *self._attack_lines(), ""]
        lines.append(
            "every honest message arrived and every attack was rejected"
            if self.ok
            else "FAILED: see the rows marked FAILED"
        )
        return "\n".join(lines)

    def _receiver_lines(self) -> list[str]:
        head = f"{'receiver':26} {'delivered':>9}  rejected"
        lines = [head, "-" * len(head)]
        for name, row in self.channels.items():
            for who, tally in row.receivers.items():
                rejected = ", ".join(f"{r} {n}" for r, n in sorted(tally.rejected.items()))
                lines.append(f"{name + ' ' + who:26} {tally.delivered:>9}  {rejected or '-'}")
        return lines

    def _attack_lines(self) -> list[str]:
        width = max((len(a.channel) + len(a.name) + 2 for a in self.attacks), default=6)
        head = f"{'attack':{width}} {'rejected as':18} by the check"
        lines = [head, "-" * len(head)]
        for attack in self.attacks:
            mark = "" if attack.ok else f"  FAILED (expected {attack.expected})"
            what = f"{attack.channel}: {attack.name}"
            lines.append(f"{what:{width}} {attack.outcome:18} {attack.check}{mark}")
        return lines


class _Setup:
    """Keys, a signed policy, channel keys, a keystore that pins the admin."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.keystore = Keystore(root / "keys")
        lines = ["nngsec: 1", "name: factory", "version: 1", "identities:"]
        for name in IDENTITIES:
            key, _, _ = self.keystore.generate(name)
            lines.append(f"  {name}: {key.public.to_text()}")
        self.policy_path = root / "factory.yaml"
        self.policy_path.write_text("\n".join(lines) + CHANNELS)
        rotate(self.policy_path)
        admin = Keystore(root / "admin")
        admin.generate("admin")
        sign(self.policy_path, root / "admin" / "admin.key")
        self.keystore.trust(root / "admin" / "admin.pub")
        self.policy = load_policy(self.policy_path)
        self.nodes = {
            n: Node(self.policy, identity=n, keystore=self.keystore)
            for n in IDENTITIES
            if n != "sensor-9"
        }
        # A foreign deployment: the same channel names, keys nobody here knows.
        foreign = Keystore(root / "foreign-keys")
        intruder, _, _ = foreign.generate("intruder")
        foreign_path = root / "foreign.yaml"
        foreign_path.write_text(
            f"nngsec: 1\nname: factory\nidentities:\n  intruder: {intruder.public.to_text()}\n"
            + FOREIGN_CHANNELS
        )
        rotate(foreign_path)
        self.foreign = Node(load_policy(foreign_path), identity="intruder", keystore=foreign)

    def stolen(self, channel: str) -> ChannelCodec:
        """A codec for the revoked sensor-9, built from its stolen key (no Node would run it)."""
        key = self.keystore.identity("sensor-9")
        keys_file = ChannelKeyFile.load(channel_keys_path(self.policy_path))
        if keys_file is None:  # written by rotate() at set-up
            raise RuntimeError("the demo's channel-key file is missing")
        return ChannelCodec(
            self.policy, channel, identity="sensor-9", identity_key=key,
            channel_keys=keys_file.open_channel(channel, "sensor-9", key),
            clock=time.time, random=os.urandom, clock_skew=2.0,
        )  # fmt: skip


def _with_seq(frame: bytes, seq: int, *, has_topic: bool = False) -> bytes:
    """The frame with another sequence number: what a forger must do to dodge the replay
    check (and what then breaks the frame's authentication)."""
    header, start = parse_frame(frame, has_topic=has_topic)
    return encode_header(replace(header, seq=seq)) + frame[start:]


def _readdressed(response: bytes, survey: bytes) -> bytes:
    """A recorded response made to claim it answers ``survey``, under a new sequence number
    (or the replay window would catch it first): what an attacker must do to pass an old
    answer off as an answer to a new question (the binding is authenticated)."""
    header, start = parse_frame(response, has_topic=False)
    asked, _ = parse_frame(survey, has_topic=False)
    return encode_header(replace(header, reply_to=asked.ref, seq=1 << 40)) + response[start:]


def _flip(frame: bytes, index: int) -> bytes:
    """One bit of ``frame`` flipped: what a relay tampering with a frame in flight sends."""
    tampered = bytearray(frame)
    tampered[index] ^= 0x01
    return bytes(tampered)


def _wait(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the demo's sockets did not connect in time")
        time.sleep(0.005)


def _settle(condition: Callable[[], object], timeout: float) -> bool:
    """Poll ``condition`` for at most ``timeout`` seconds; whether it came true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def _rejections(sockets: Sequence[Any]) -> Counter[str]:
    """What ``sockets`` rejected so far, by reason. (``dict.copy`` copies in one step, while
    the receiving threads go on counting.)"""
    total: Counter[str] = Counter()
    for sock in sockets:
        total.update(dict.copy(sock.stats.rejected))
    return total


def _rejected_since(sockets: Sequence[Any], before: Counter[str], count: int) -> bool:
    """Whether ``sockets`` rejected at least ``count`` frames since ``before``."""
    return (_rejections(sockets) - before).total() >= count


class _Collector:
    """One receiving socket, receiving in a thread of its own as an application would, so
    that attacks are rejected while they are injected."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.got: list[Any] = []
        self._stop = threading.Event()
        sock.recv_timeout = 50
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.got.append(self.sock.recv())
            except pynng.Timeout:
                continue

    @staticmethod
    def finish(
        collectors: dict[str, _Collector],
        row: ChannelRow,
        *,
        as_one: str | None = None,
        settle: float = 0.3,
    ) -> None:
        """Wait for the messages ``row`` expects (up to the demo's timeout), then ``settle``
        seconds more to see any extra; stop, and count what arrived. ``as_one``: the
        collectors are load-balanced receivers, counted as one (a job reaches one worker,
        whichever)."""
        wanted = Counter(receiver for receiver, _, _ in row.expected.elements())

        def arrived() -> bool:
            if as_one is not None:
                return sum(len(c.got) for c in collectors.values()) >= wanted[as_one]
            return all(len(c.got) >= wanted[who] for who, c in collectors.items())

        _settle(arrived, TIMEOUT_MS / 1000)
        time.sleep(settle)
        for collector in collectors.values():
            collector._stop.set()
        for who, collector in collectors.items():
            collector._thread.join()
            row.delivered.update((as_one or who, m.sender, m.payload) for m in collector.got)


def run_demo(say: Callable[[str], None] = print) -> DemoReport:
    with _logs.quieted():  # the demo shows every rejection itself, in its table
        return _run_demo(say)


def _run_demo(say: Callable[[str], None]) -> DemoReport:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nngsec-demo-") as root_name:
        root = Path(root_name)
        say(
            f"setting up: {len(IDENTITIES)} identities, a policy signed by an admin the nodes "
            "pin, channel keys sealed per identity"
        )
        setup = _Setup(root)
        report = DemoReport({name: ChannelRow() for name in SCENES}, 0.0)
        try:
            with _Factory(setup, root, report.attacks, say) as factory:
                say("factory running: sensors -> relay -> dashboard, archiver")
                say("                 scheduler -> relay -> worker-1, worker-2")
                say("                 dashboard -> relay -> controller-a, controller-b")
                say("                 cell-1, cell-2, cell-3 on a bus")
                say("                 dashboard <-> the attacker's wire <-> archiver (a pair)")
                say("                 dashboard -> relay -> worker-1, worker-2 (a survey)")
                say("each attack is injected on its own; -> names the reason each receiver gave")
                scenes = {
                    "telemetry": factory.telemetry, "jobs": factory.jobs,
                    "control": factory.control, "cells": factory.cells,
                    "sync": factory.sync, "health": factory.health,
                }  # fmt: skip
                for name in SCENES:
                    scenes[name](report.channels[name])
            for name in LIVE_ROWS:
                report.channels[name] = ChannelRow()
            # The revoked subscriber's node refuses the update that revokes it, with an error
            # record: expected here, and shown by the demo's own table.
            with _logs.quieted(logging.CRITICAL):
                run_live(
                    root, setup.policy_path, root / "admin" / "admin.key", setup.keystore,
                    report.channels, say,
                )  # fmt: skip
        finally:
            for node in (*setup.nodes.values(), setup.foreign):
                node.close()  # their replay checkpoints end before the directory goes
        report.seconds = time.monotonic() - started
        return report


class _PairWire:
    """The wire between the two members of a pair, owned by the attacker: it forwards each
    frame (a pair has one peer per socket, so it sits in the middle), records them, and
    sends its own to the back member."""

    def __init__(self, front: str, back: str) -> None:
        self.front = pynng.Pair0(listen=front, recv_timeout=50)
        self.back = pynng.Pair0(listen=back, recv_timeout=50)
        self.to_back: list[bytes] = []
        self.to_front: list[bytes] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._forward, args=ends, daemon=True)
            for ends in (
                (self.front, self.back, self.to_back),
                (self.back, self.front, self.to_front),
            )
        ]
        for thread in self._threads:
            thread.start()

    def _forward(self, source: Any, target: Any, record: list[bytes]) -> None:
        while not self._stop.is_set():
            try:
                frame = source.recv()
            except pynng.Timeout:
                continue
            except pynng.Closed:
                return
            record.append(frame)
            target.send(frame)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.front.close()
        self.back.close()


class _Factory:
    """The running factory: sockets, relays and an attacker, one scenario per channel."""

    def __init__(
        self, setup: _Setup, root: Path, attacks: list[Attack], say: Callable[[str], None]
    ) -> None:
        self.setup = setup
        self.root = root
        self.attacks = attacks
        self.say = say
        self.closers: list[Any] = []
        self.recorded: dict[str, list[bytes]] = {}  # what initiators sent, per channel
        self.answers: dict[str, list[bytes]] = {}  # what came back: replies, responses
        self.relays: dict[str, Relay] = {}
        self.secrets: list[bytes] = []  # every honest payload, to look for in recordings

    def ipc(self, name: str) -> str:
        return f"ipc://{self.root}/{name}.ipc"

    def __enter__(self) -> _Factory:
        return self

    def __exit__(self, *exc: object) -> None:
        for closer in reversed(self.closers):
            try:
                closer.close()
            except Exception:  # noqa: S112 - best effort while tearing down
                continue

    def _own(self, thing: Any) -> Any:
        self.closers.append(thing)
        return thing

    def _relay(self, pattern: str, channel: str) -> tuple[str, str]:
        front, back = self.ipc(f"{channel}-front"), self.ipc(f"{channel}-back")
        record = self.recorded.setdefault(channel, [])
        answers = self.answers.setdefault(channel, [])

        def tap(direction: str, body: bytes) -> None:
            # To the back: what initiators sent (readings, jobs, requests, surveys); to the
            # front: replies and survey responses.
            (record if direction == "to-back" else answers).append(body)

        self.relays[channel] = self._own(Relay(pattern, front=front, back=back, tap=tap).start())
        return front, back

    def _attach(self, identity: str, socket: Any, channel: str) -> Any:
        return self._own(self.setup.nodes[identity].attach(socket, channel))

    def _payload(self, text: str) -> bytes:
        payload = text.encode()
        self.secrets.append(payload)
        return payload

    def _inject(
        self,
        row: ChannelRow,
        channel: str,
        attacks: dict[str, tuple[bytes, str]],
        send: Callable[[bytes], None],
        receivers: Sequence[Any],
        copies: int,
    ) -> None:
        """Send each attack alone and wait until the ``copies`` receivers it reaches have
        rejected it: what they counted is the reason it was rejected for."""
        for name, (frame, expected) in attacks.items():
            before = _rejections(receivers)
            send(frame)
            row.expected_rejected[expected] += copies
            _settle(partial(_rejected_since, receivers, before, copies), 2.0)
            attack = Attack(channel, name, expected, copies, _rejections(receivers) - before)
            self.attacks.append(attack)
            self.say(f"  {channel:9} {name:48} -> {attack.outcome} ({attack.check})")

    def _report(self, row: ChannelRow, name: str, sockets: dict[str, Any]) -> None:
        for who, sock in sockets.items():
            row.rejected.update(sock.stats.rejected)
            row.tally(who, sock.stats.received, sock.stats.rejected)
            rejected = (
                ", ".join(f"{r} {n}" for r, n in sorted(sock.stats.rejected.items())) or "none"
            )
            self.say(
                f"  {name:9} {who:12} delivered {sock.stats.received:>3}   rejected: {rejected}"
            )
        frames = [*self.recorded.get(name, []), *self.answers.get(name, [])]
        leaked = [s for s in self.secrets for f in frames if s in f]
        if name in self.recorded:
            state = "none in the clear" if not leaked else f"{len(leaked)} IN THE CLEAR"
            self.say(f"  {name:9} the attacker saw {len(frames)} frames and read {state}")
            row.leaked += len(leaked)

    # -- telemetry: pubsub through a relay ----------------------------------------------
    def telemetry(self, row: ChannelRow) -> None:
        front, back = self._relay("pubsub", "telemetry")
        pubs = {
            n: self._attach(n, pynng.Pub0(dial=front), "telemetry")
            for n in ("sensor-1", "sensor-2")
        }
        dashboard = self._attach("dashboard", pynng.Sub0(dial=back), "telemetry")
        archiver = self._attach("archiver", pynng.Sub0(dial=back), "telemetry")
        dashboard.subscribe("temp.")  # the dashboard only wants temperatures
        archiver.subscribe("")
        attacker = self._own(pynng.Pub0(dial=front))
        # Pub/sub drops what a not-yet-connected pipe would get: wait for both ends of
        # every connection (ours, and the relay's view of them).
        relay = self.relays["telemetry"]
        _wait(
            lambda: (
                all(s.pipes for s in (*pubs.values(), dashboard, archiver, attacker))
                and relay.peers.front >= len(pubs) + 1
                and relay.peers.back >= 2
            )
        )
        subs = {"dashboard": dashboard, "archiver": archiver}
        collectors = {who: _Collector(sock) for who, sock in subs.items()}

        def publish(rounds: range) -> None:
            for index in rounds:
                for name, pub in pubs.items():
                    topic = f"temp.line{index % 3}" if index % 2 == 0 else f"hum.line{index % 3}"
                    payload = self._payload(f'{{"sensor": "{name}", "reading": {20 + index}}}')
                    pub.send(payload, topic=topic)
                    row.sent += 1
                    row.expected[("archiver", name, payload)] += 1
                    if topic.startswith("temp."):
                        row.expected[("dashboard", name, payload)] += 1

        publish(range(READINGS // 2))
        _wait(lambda: any(f.startswith(b"temp.") for f in self.recorded["telemetry"]))
        recorded = next(f for f in self.recorded["telemetry"] if f.startswith(b"temp."))
        # Delivered before the replay, so that the replay is one: a recorded frame that has
        # not reached the subscribers yet would be accepted once, as the original.
        _wait(lambda: len(collectors["archiver"].got) >= len(pubs))
        # Frames in flight that the relay alters before anyone saw them: sealed by sensor-1
        # and never delivered, so only the alteration can make them fail.
        sensor = self.setup.nodes["sensor-1"]
        in_flight = sensor.seal("telemetry", b'{"reading": 99}', topic="temp.line0")
        topic_end = len(b"temp.line0") - 1
        attacks = {
            "a recorded reading, replayed": (recorded, "replay"),
            "topic rewritten (line0 -> line1)": (_flip(in_flight, topic_end), "forged"),
            "payload bit flipped": (
                _flip(sensor.seal("telemetry", b'{"reading": 98}', topic="temp.line0"), -70),
                "forged",
            ),
            "replayed under a new sequence number": (
                _with_seq(recorded, 1 << 40, has_topic=True),
                "forged",
            ),
            "signed with revoked sensor-9's key": (
                self.setup.stolen("telemetry").sender().seal(b"fake", "temp.x"),
                "revoked",
            ),
            "from a foreign deployment": (
                self.setup.foreign.seal("telemetry", b"fake", topic="temp.x"),
                "unknown-sender",
            ),
        }
        # Both subscribers see every attack.
        self._inject(row, "telemetry", attacks, attacker.send, list(subs.values()), 2)
        publish(range(READINGS // 2, READINGS))
        _Collector.finish(collectors, row)
        self._report(row, "telemetry", subs)

    # -- jobs: pipeline fan-out through a relay -------------------------------------------
    def jobs(self, row: ChannelRow) -> None:
        front, back = self._relay("pipeline", "jobs")
        scheduler = self._attach("scheduler", pynng.Push0(dial=front), "jobs")
        workers = {
            n: self._attach(n, pynng.Pull0(dial=back), "jobs") for n in ("worker-1", "worker-2")
        }
        attacker = self._own(pynng.Push0(dial=front))
        _wait(lambda: scheduler.pipes and attacker.pipes and all(w.pipes for w in workers.values()))
        collectors = {who: _Collector(sock) for who, sock in workers.items()}
        for index in range(JOBS):
            payload = self._payload(f'{{"job": {index}, "part": "bracket-{index}"}}')
            scheduler.send(payload)
            row.sent += 1
            row.expected[("workers", "scheduler", payload)] += 1  # whichever worker takes it
        _wait(lambda: self.recorded["jobs"])
        in_flight = self.setup.nodes["scheduler"].seal("jobs", b'{"job": "rogue"}')
        attacks = {
            "payload bit flipped": (_flip(in_flight, -70), "forged"),
            "replayed under a new sequence number": (
                _with_seq(self.recorded["jobs"][0], 1 << 40),
                "forged",
            ),
            "from a foreign deployment": (
                self.setup.foreign.seal("jobs", b"rm -rf /"),
                "unknown-sender",
            ),
        }
        # Each goes to one worker, whichever NNG picks.
        self._inject(row, "jobs", attacks, attacker.send, list(workers.values()), 1)
        _Collector.finish(collectors, row, as_one="workers")
        self._report(row, "jobs", workers)

    # -- control: reqrep with two servers behind a relay ------------------------------------
    def control(self, row: ChannelRow) -> None:
        front, back = self._relay("reqrep", "control")
        client = self._attach(
            "dashboard", pynng.Req0(dial=front, recv_timeout=TIMEOUT_MS), "control"
        )
        servers = {
            n: self._attach(n, pynng.Rep0(dial=back, recv_timeout=50), "control")
            for n in ("controller-a", "controller-b")
        }
        attacker = self._own(pynng.Req0(dial=front))
        _wait(lambda: client.pipes and attacker.pipes and all(s.pipes for s in servers.values()))
        stop = threading.Event()

        def serve(name: str, sock: Any) -> None:
            while not stop.is_set():
                try:
                    request = sock.recv()
                except pynng.Timeout:
                    continue
                row.delivered[("controllers", request.sender, request.payload)] += 1
                sock.send(b"done: " + request.payload)

        threads = [threading.Thread(target=serve, args=item) for item in servers.items()]
        for thread in threads:
            thread.start()
        try:
            for index in range(REQUESTS):
                payload = self._payload(f'{{"command": "set-speed", "line": {index}}}')
                client.send(payload)
                row.sent += 1
                row.expected[("controllers", "dashboard", payload)] += 1
                row.expected[("dashboard", "controllers", b"done: " + payload)] += 1
                reply = client.recv()
                if reply.sender in servers:  # either controller may answer
                    row.delivered[("dashboard", "controllers", reply.payload)] += 1
                if index == 1:
                    self._attack_control(row, attacker, list(servers.values()))
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        self._report(row, "control", {"dashboard": client, **servers})

    def _attack_control(self, row: ChannelRow, attacker: Any, servers: list[Any]) -> None:
        _wait(lambda: self.recorded["control"])
        in_flight = self.setup.nodes["dashboard"].seal("control", b'{"command": "stop"}')

        def send(frame: bytes) -> None:
            with attacker.new_context() as context:
                context.send(frame)

        attacks = {
            "a request replayed under a new number": (
                _with_seq(self.recorded["control"][0], 1 << 40),
                "forged",
            ),
            "payload bit flipped": (_flip(in_flight, -5), "forged"),
            "from a foreign deployment": (
                self.setup.foreign.seal("control", b"shutdown"),
                "unknown-sender",
            ),
        }
        self._inject(row, "control", attacks, send, servers, 1)  # to one controller each

    # -- cells: a bus of three peers ------------------------------------------------------
    def cells(self, row: ChannelRow) -> None:
        names = ("cell-1", "cell-2", "cell-3")
        urls = {n: self.ipc(n) for n in names}
        cells = {n: self._attach(n, pynng.Bus0(listen=urls[n]), "cells") for n in names}
        cells["cell-1"].dial(urls["cell-2"])
        cells["cell-1"].dial(urls["cell-3"])
        cells["cell-2"].dial(urls["cell-3"])
        listener = self._own(
            pynng.Bus0(dial=urls["cell-2"], recv_timeout=TIMEOUT_MS)
        )  # eavesdrops on cell-2
        injector = self._own(
            pynng.Bus0(dial=urls["cell-1"], recv_timeout=TIMEOUT_MS)
        )  # talks to cell-1
        # A bus drops what a not-yet-connected pipe would get: wait until cell-1 and cell-2
        # also see the eavesdroppers (both ends of every connection are up).
        _wait(
            lambda: (
                len(cells["cell-1"].pipes) >= 3
                and len(cells["cell-2"].pipes) >= 3
                and len(cells["cell-3"].pipes) >= 2
                and listener.pipes
                and injector.pipes
            )
        )
        collectors = {who: _Collector(sock) for who, sock in cells.items()}
        for index in range(CHATTER):
            for name, sock in cells.items():
                payload = self._payload(f'{{"cell": "{name}", "tick": {index}}}')
                sock.send(payload)
                row.sent += 1
                for other in names:
                    if other != name:
                        row.expected[(other, name, payload)] += 1
        overheard = listener.recv()  # a frame cell-2 sent
        own = injector.recv()  # a frame cell-1 sent
        _wait(lambda: len(collectors["cell-1"].got) >= CHATTER * 2)  # the originals arrived
        in_flight = self.setup.nodes["cell-2"].seal("cells", b'{"tick": "rogue"}')
        attacks = {
            "cell-2's frame, replayed": (overheard, "replay"),
            "payload bit flipped": (_flip(in_flight, -70), "forged"),
            "replayed under a new sequence number": (_with_seq(overheard, 1 << 40), "forged"),
            "cell-1's own frame, reflected to it": (own, "unauthorized"),
            "from a foreign deployment": (
                self.setup.foreign.seal("cells", b"halt"),
                "unknown-sender",
            ),
        }
        self._inject(row, "cells", attacks, injector.send, [cells["cell-1"]], 1)
        _Collector.finish(collectors, row)
        self._report(row, "cells", cells)

    # -- sync: a pair, on a wire the attacker owns ---------------------------------------------
    def sync(self, row: ChannelRow) -> None:
        front, back = self.ipc("sync-front"), self.ipc("sync-back")
        wire = self._own(_PairWire(front, back))
        self.recorded["sync"], self.answers["sync"] = wire.to_back, wire.to_front
        members = {
            "dashboard": self._attach("dashboard", pynng.Pair0(dial=front), "sync"),
            "archiver": self._attach("archiver", pynng.Pair0(dial=back), "sync"),
        }
        _wait(lambda: all(m.pipes for m in members.values()) and wire.front.pipes)
        _wait(lambda: wire.back.pipes)
        collectors = {who: _Collector(sock) for who, sock in members.items()}
        for index in range(SYNC):
            for sender, receiver in (("dashboard", "archiver"), ("archiver", "dashboard")):
                payload = self._payload(f'{{"{sender}": "state", "serial": {index}}}')
                members[sender].send(payload)
                row.sent += 1
                row.expected[(receiver, sender, payload)] += 1
        _wait(lambda: len(collectors["archiver"].got) >= SYNC and wire.to_front)
        in_flight = self.setup.nodes["dashboard"].seal("sync", b'{"dashboard": "rogue"}')
        attacks = {
            "the dashboard's frame, replayed": (wire.to_back[0], "replay"),
            "payload bit flipped": (_flip(in_flight, -5), "forged"),
            "replayed under a new sequence number": (
                _with_seq(wire.to_back[0], 1 << 40),
                "forged",
            ),
            "archiver's own frame, reflected to it": (wire.to_front[0], "unauthorized"),
            "a recorded job, sent to the pair": (self.recorded["jobs"][0], "wrong-channel"),
        }
        self._inject(row, "sync", attacks, wire.back.send, [members["archiver"]], 1)
        _Collector.finish(collectors, row)
        self._report(row, "sync", members)

    # -- health: a survey through a relay --------------------------------------------------
    def health(self, row: ChannelRow) -> None:
        front, back = self._relay("survey", "health")
        asking_socket = pynng.Surveyor0(dial=front, survey_time=SURVEY_MS)
        surveyor = self._attach("dashboard", asking_socket, "health")
        names = ("worker-1", "worker-2")
        respondents = {n: self._attach(n, pynng.Respondent0(dial=back), "health") for n in names}
        rogue_surveyor = self._own(pynng.Surveyor0(dial=front))
        rogues = [self._own(pynng.Respondent0(dial=back, recv_timeout=50)) for _ in range(2)]
        relay = self.relays["health"]
        _wait(
            lambda: (
                surveyor.pipes
                and rogue_surveyor.pipes
                and all(s.pipes for s in (*respondents.values(), *rogues))
                and relay.peers.front >= 2
                and relay.peers.back >= 4
            )
        )
        stop = threading.Event()

        def answer(name: str, sock: Any) -> None:
            sock.recv_timeout = 50
            while not stop.is_set():
                try:
                    survey = sock.recv()
                except pynng.Timeout:
                    continue
                row.delivered[(name, survey.sender, survey.payload)] += 1
                sock.send(self._payload(f'{{"{name}": "healthy"}} to ') + survey.payload)

        def survey(number: int, into: list[Any]) -> None:
            payload = self._payload(f'{{"survey": {number}}}')
            row.sent += 1
            for name in names:
                row.expected[(name, "dashboard", payload)] += 1
                response = f'{{"{name}": "healthy"}} to '.encode() + payload
                row.expected[("dashboard", name, response)] += 1
            into.extend(surveyor.survey(payload))

        threads = [threading.Thread(target=answer, args=item) for item in respondents.items()]
        for thread in threads:
            thread.start()
        try:
            first: list[Any] = []
            survey(1, first)
            asked = self.recorded["health"][0]
            in_flight = self.setup.nodes["dashboard"].seal("health", b'{"survey": "rogue"}')
            attacks = {
                "the dashboard's survey, replayed": (asked, "replay"),
                "survey bit flipped": (_flip(in_flight, -70), "forged"),
                "a survey from a foreign deployment": (
                    self.setup.foreign.seal("health", b'{"survey": "rogue"}'),
                    "unknown-sender",
                ),
            }
            # Both respondents get every survey the rogue surveyor sends.
            self._inject(row, "health", attacks, rogue_surveyor.send, list(respondents.values()), 2)
            for rogue in rogues:  # what the rogue respondents heard so far
                with contextlib.suppress(pynng.Timeout):
                    while True:
                        rogue.recv()
            second: list[Any] = []
            asking_socket.survey_time = ATTACKED_SURVEY_MS
            for rogue in rogues:
                rogue.recv_timeout = TIMEOUT_MS
            asking = threading.Thread(target=survey, args=(2, second))
            asking.start()
            surveys = [rogue.recv() for rogue in rogues]  # the second survey, to answer
            old = self.answers["health"]
            answers = {
                "a response to survey 1, replayed to survey 2": (rogues[0], old[0], "replay"),
                "a response to survey 1, readdressed to survey 2": (
                    rogues[1],
                    _readdressed(old[1], surveys[1]),
                    "forged",
                ),
            }
            for name, (rogue, frame, expected) in answers.items():
                self._inject(row, "health", {name: (frame, expected)}, rogue.send, [surveyor], 1)
            asking.join()
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        row.delivered.update(("dashboard", m.sender, m.payload) for m in first + second)
        self._report(row, "health", {"dashboard": surveyor, **respondents})


def main(as_json: bool = False) -> int:
    say: Callable[[str], None] = (
        (lambda _line: None) if as_json else (lambda line: print(line, flush=True))
    )
    try:
        report = run_demo(say)
    except (pynng.NNGException, TimeoutError) as error:
        print(
            f"nngsec demo: FAILED: a socket did not deliver in time ({error}) (hint: the machine "
            "may be overloaded; run it again)",
            file=sys.stderr,
        )
        return 1
    if as_json:
        print(report.to_json())
    else:
        print()
        print(report.table())
        print(f"({report.seconds:.1f}s)")
    return 0 if report.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main("--json" in sys.argv))
