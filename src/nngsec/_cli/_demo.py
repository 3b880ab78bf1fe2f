"""``nngsec demo``: a small secured factory in one process, under attack.

Everything is real: fresh identity keys, a policy signed by an admin whose key the nodes
pin, channel keys sealed per identity, pynng sockets over ipc, and key-less relays between
the sensors and their readers, the scheduler and its workers, and the dashboard and its
two controllers.

The relays are the attacker: they record every frame they forward, and an attacker
process on the same wires injects what it can make of them (replays, forgeries, tampered
topics) plus frames signed with a stolen, revoked key and frames from a foreign policy.
The demo passes (exit 0) only if every receiver got exactly the honest messages meant for
it (by sender and payload, each once) and every attack was rejected, for the reason the
design says, and no relay saw an honest payload in the clear.

A live phase follows (``_demo_live.py``): nodes that watch their own copies of the files,
a key rotation under traffic with zero loss, then a revoked subscriber that stops reading
within seconds while the other subscriber loses nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
revoked: [sensor-9]   # its key was stolen; the attacker still has it
"""
FOREIGN_CHANNELS = """
channels:
  telemetry: {pattern: pubsub, publishers: [intruder], subscribers: [intruder]}
  jobs: {pattern: pipeline, pushers: [intruder], pullers: [intruder]}
  control: {pattern: reqrep, clients: [intruder], servers: [intruder]}
  cells: {pattern: bus, members: [intruder]}
"""
READINGS = 10  # per sensor, alternating temp. and hum.
JOBS = 20
REQUESTS = 6
CHATTER = 5  # bus messages per cell
TIMEOUT_MS = 5000


Delivery = tuple[str, str, bytes]
"""(who received it, who sent it, payload). Load-balanced receivers are named by group."""


@dataclass
class ChannelRow:
    sent: int = 0
    expected: Counter[Delivery] = field(default_factory=Counter)
    delivered: Counter[Delivery] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    expected_rejected: Counter[str] = field(default_factory=Counter)
    leaked: int = 0  # honest payloads a relay saw in the clear

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

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.channels.values())

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
                        "ok": row.ok,
                    }
                    for name, row in self.channels.items()
                },
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
        lines.append("")
        lines.append(
            "every honest message arrived and every attack was rejected"
            if self.ok
            else "FAILED: see the rows marked FAILED"
        )
        return "\n".join(lines)


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


def _drain(sock: Any, expected: int, into: list[Any], settle: float = 0.3) -> None:
    """Receive until ``expected`` messages came, then briefly more (to see any extra)."""
    sock.recv_timeout = TIMEOUT_MS
    while len(into) < expected:
        try:
            into.append(sock.recv())
        except pynng.Timeout:
            return
    sock.recv_timeout = int(settle * 1000)
    try:
        while True:
            into.append(sock.recv())
    except pynng.Timeout:
        return


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
        report = DemoReport(
            {name: ChannelRow() for name in ("telemetry", "jobs", "control", "cells")}, 0.0
        )
        try:
            with _Factory(setup, root) as factory:
                say("factory running: sensors -> relay -> dashboard, archiver")
                say("                 scheduler -> relay -> worker-1, worker-2")
                say("                 dashboard -> relay -> controller-a, controller-b")
                say("                 cell-1, cell-2, cell-3 on a bus")
                factory.telemetry(report.channels["telemetry"], say)
                factory.jobs(report.channels["jobs"], say)
                factory.control(report.channels["control"], say)
                factory.cells(report.channels["cells"], say)
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


class _Factory:
    """The running factory: sockets, relays and an attacker, one scenario per channel."""

    def __init__(self, setup: _Setup, root: Path) -> None:
        self.setup = setup
        self.root = root
        self.closers: list[Any] = []
        self.recorded: dict[str, list[bytes]] = {}
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

        def tap(direction: str, body: bytes) -> None:
            if direction == "to-back":  # what initiators sent: readings, jobs, requests
                record.append(body)

        self.relays[channel] = self._own(Relay(pattern, front=front, back=back, tap=tap).start())
        return front, back

    def _attach(self, identity: str, socket: Any, channel: str) -> Any:
        return self._own(self.setup.nodes[identity].attach(socket, channel))

    def _payload(self, text: str) -> bytes:
        payload = text.encode()
        self.secrets.append(payload)
        return payload

    def _report(
        self, row: ChannelRow, name: str, sockets: dict[str, Any], say: Callable[[str], None]
    ) -> None:
        for who, sock in sockets.items():
            row.rejected.update(sock.stats.rejected)
            rejected = (
                ", ".join(f"{r} {n}" for r, n in sorted(sock.stats.rejected.items())) or "none"
            )
            say(f"  {name:9} {who:12} delivered {sock.stats.received:>3}   rejected: {rejected}")
        leaked = [s for s in self.secrets for f in self.recorded.get(name, []) if s in f]
        frames = len(self.recorded.get(name, []))
        if name in self.recorded:
            state = "none in the clear" if not leaked else f"{len(leaked)} IN THE CLEAR"
            say(f"  {name:9} the relay forwarded {frames} frames and read {state}")
            row.leaked += len(leaked)

    # -- telemetry: pubsub through a relay ----------------------------------------------
    def telemetry(self, row: ChannelRow, say: Callable[[str], None]) -> None:
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
        # Frames in flight that the relay alters before anyone saw them: sealed by sensor-1
        # and never delivered, so only the alteration can make them fail.
        sensor = self.setup.nodes["sensor-1"]
        in_flight = sensor.seal("telemetry", b'{"reading": 99}', topic="temp.line0")
        topic_end = len(b"temp.line0") - 1
        attacks = {
            "replayed": (recorded, "replay"),
            "tampered topic": (_flip(in_flight, topic_end), "forged"),  # temp.line0 -> line1
            "tampered payload": (
                _flip(sensor.seal("telemetry", b'{"reading": 98}', topic="temp.line0"), -70),
                "forged",
            ),
            "re-sequenced": (_with_seq(recorded, 1 << 40, has_topic=True), "forged"),
            "revoked sensor-9": (
                self.setup.stolen("telemetry").sender().seal(b"fake", "temp.x"),
                "revoked",
            ),
            "foreign": (
                self.setup.foreign.seal("telemetry", b"fake", topic="temp.x"),
                "unknown-sender",
            ),
        }
        say(f"telemetry: the relay injects {', '.join(attacks)} frames")
        for frame, reason in attacks.values():
            attacker.send(frame)
            row.expected_rejected[reason] += 2  # both subscribers see every attack
        publish(range(READINGS // 2, READINGS))
        for who, sock in (("dashboard", dashboard), ("archiver", archiver)):
            got: list[Any] = []
            _drain(sock, sum(n for (r, _, _), n in row.expected.items() if r == who), got)
            row.delivered.update((who, m.sender, m.payload) for m in got)
        self._report(row, "telemetry", {"dashboard": dashboard, "archiver": archiver}, say)

    # -- jobs: pipeline fan-out through a relay -------------------------------------------
    def jobs(self, row: ChannelRow, say: Callable[[str], None]) -> None:
        front, back = self._relay("pipeline", "jobs")
        scheduler = self._attach("scheduler", pynng.Push0(dial=front), "jobs")
        workers = {
            n: self._attach(n, pynng.Pull0(dial=back), "jobs") for n in ("worker-1", "worker-2")
        }
        attacker = self._own(pynng.Push0(dial=front))
        _wait(lambda: scheduler.pipes and attacker.pipes and all(w.pipes for w in workers.values()))
        for index in range(JOBS):
            payload = self._payload(f'{{"job": {index}, "part": "bracket-{index}"}}')
            scheduler.send(payload)
            row.sent += 1
            row.expected[("workers", "scheduler", payload)] += 1  # whichever worker takes it
        _wait(lambda: self.recorded["jobs"])
        in_flight = self.setup.nodes["scheduler"].seal("jobs", b'{"job": "rogue"}')
        attacks = {
            "tampered payload": (_flip(in_flight, -70), "forged"),
            "re-sequenced": (_with_seq(self.recorded["jobs"][0], 1 << 40), "forged"),
            "foreign": (self.setup.foreign.seal("jobs", b"rm -rf /"), "unknown-sender"),
        }
        say(f"jobs: the relay injects {', '.join(attacks)} frames")
        for frame, reason in attacks.values():
            attacker.send(frame)
            row.expected_rejected[reason] += 1  # each goes to one worker
        got: dict[str, list[Any]] = {n: [] for n in workers}
        threads = [
            threading.Thread(target=_drain, args=(w, JOBS, got[n], 0.5)) for n, w in workers.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for messages in got.values():
            row.delivered.update(("workers", m.sender, m.payload) for m in messages)
        self._report(row, "jobs", workers, say)

    # -- control: reqrep with two servers behind a relay ------------------------------------
    def control(self, row: ChannelRow, say: Callable[[str], None]) -> None:
        front, back = self._relay("reqrep", "control")
        client = self._attach(
            "dashboard", pynng.Req0(dial=front, recv_timeout=TIMEOUT_MS), "control"
        )
        servers = {
            n: self._attach(n, pynng.Rep0(dial=back, recv_timeout=300), "control")
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
                    self._attack_control(row, attacker, say)
            _wait(
                lambda: sum(sum(s.stats.rejected.values()) for s in servers.values()) >= 3,
                timeout=5,
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        self._report(row, "control", {"dashboard": client, **servers}, say)

    def _attack_control(self, row: ChannelRow, attacker: Any, say: Callable[[str], None]) -> None:
        _wait(lambda: self.recorded["control"])
        in_flight = self.setup.nodes["dashboard"].seal("control", b'{"command": "stop"}')
        attacks = {
            "re-sequenced": (_with_seq(self.recorded["control"][0], 1 << 40), "forged"),
            "tampered payload": (_flip(in_flight, -5), "forged"),
            "foreign": (self.setup.foreign.seal("control", b"shutdown"), "unknown-sender"),
        }
        say(f"control: the relay injects {', '.join(attacks)} requests")
        for frame, reason in attacks.values():
            with attacker.new_context() as context:
                context.send(frame)
            row.expected_rejected[reason] += 1

    # -- cells: a bus of three peers ------------------------------------------------------
    def cells(self, row: ChannelRow, say: Callable[[str], None]) -> None:
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
        in_flight = self.setup.nodes["cell-2"].seal("cells", b'{"tick": "rogue"}')
        attacks = {
            "replayed": (overheard, "replay"),
            "tampered payload": (_flip(in_flight, -70), "forged"),
            "re-sequenced": (_with_seq(overheard, 1 << 40), "forged"),
            "reflected": (own, "unauthorized"),
            "foreign": (self.setup.foreign.seal("cells", b"halt"), "unknown-sender"),
        }
        say(f"cells: an eavesdropper on the bus injects {', '.join(attacks)} frames into cell-1")
        for frame, reason in attacks.values():
            injector.send(frame)
            row.expected_rejected[reason] += 1
        got: dict[str, list[Any]] = {n: [] for n in names}
        threads = [
            threading.Thread(target=_drain, args=(c, CHATTER * 2, got[n])) for n, c in cells.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name, messages in got.items():
            row.delivered.update((name, m.sender, m.payload) for m in messages)
        self._report(row, "cells", cells, say)


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
