"""The demo's live phase: keys rotated under traffic with zero loss, then a subscriber
revoked while the others go on, with nodes that follow their own copies of the files.

Each node watches a directory of its own (as each machine of a fleet has its files); the
admin rotates or revokes, signs, and the files reach the nodes one after the other.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pynng

from .._keys._keystore import Keystore
from .._policy._admin import revoke, rotate, sign
from .._policy._policy import channel_keys_path, signature_path
from .._runtime._node import Node

__all__ = ["LIVE_ROWS", "run_live"]

LIVE_ROWS = ("rotation", "revocation")
WATCH = 0.1  # seconds between two looks at the files
LEAD = 1.5  # seconds between distributing a new epoch and its use
NAMES = ("sensor-1", "dashboard", "archiver")
DEADLINE = 10.0


def _wait(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the live phase timed out waiting for {what}")
        time.sleep(0.01)


class _Traffic:
    """sensor-1 publishes numbered readings; the subscribers record (payload, epoch)."""

    def __init__(self, pub: Any, subs: dict[str, Any]) -> None:
        self.pub, self.subs = pub, subs
        self.sent: list[bytes] = []
        self.got: dict[str, list[tuple[bytes, int]]] = {n: [] for n in subs}
        self.stop_sending = threading.Event()
        self.stop_receiving = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True)] + [
            threading.Thread(target=self._receive, args=(n, s), daemon=True)
            for n, s in subs.items()
        ]

    def __enter__(self) -> _Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def _send(self) -> None:
        index = 0
        while not self.stop_sending.is_set():
            payload = b'{"reading": %d}' % index
            self.pub.send(payload, topic="temp.live")
            self.sent.append(payload)
            index += 1
            time.sleep(0.01)

    def _receive(self, name: str, sock: Any) -> None:
        sock.recv_timeout = 100
        while not self.stop_receiving.is_set():
            try:
                message = sock.recv()
            except pynng.Timeout:
                continue
            self.got[name].append((message.payload, message.epoch))

    def __exit__(self, *exc: object) -> None:
        self.stop_sending.set()
        self.threads[0].join(5)
        settle = time.monotonic() + 2
        while time.monotonic() < settle and len(self.got["dashboard"]) < len(self.sent):
            time.sleep(0.02)
        time.sleep(0.2)
        self.stop_receiving.set()
        for thread in self.threads[1:]:
            thread.join(5)


def _copy(policy: Path, directory: Path) -> None:
    directory.mkdir(exist_ok=True)
    for source in (channel_keys_path(policy), signature_path(policy), policy):
        if source.exists():
            shutil.copyfile(source, directory / source.name)


def run_live(
    root: Path, policy_path: Path, admin_key: Path, keystore: Keystore, rows: dict[str, Any],
    say: Callable[[str], None],
) -> None:  # fmt: skip
    """Run both scenes, filling ``rows['rotation']`` and ``rows['revocation']``."""
    dirs = {name: root / "live" / name for name in NAMES}
    (root / "live").mkdir()
    for directory in dirs.values():
        _copy(policy_path, directory)
    nodes = {
        n: Node(dirs[n] / policy_path.name, identity=n, keystore=keystore, watch_interval=WATCH)
        for n in NAMES
    }
    url = f"ipc://{root}/live.ipc"
    closers: list[Any] = []
    try:
        pub = nodes["sensor-1"].attach(pynng.Pub0(listen=url), "telemetry")
        closers.append(pub)
        subs = {}
        for name in ("dashboard", "archiver"):
            sub = nodes[name].attach(pynng.Sub0(dial=url), "telemetry")
            sub.subscribe("temp.")
            closers.append(sub)
            subs[name] = sub
        _wait(lambda: len(pub.pipes) == 2 and all(s.pipes for s in subs.values()), "connections")
        say("live: each node follows its own copy of the policy files (watch=True)")
        _rotation(policy_path, admin_key, nodes, dirs, pub, subs, rows["rotation"], say)
        _revocation(policy_path, admin_key, nodes, dirs, pub, subs, rows["revocation"], say)
    finally:
        for closer in (*closers, *nodes.values()):
            closer.close()


def _epoch(node: Node) -> int:
    return node.channel_keys["telemetry"].current.epoch


def _all_at(nodes: list[Node], epoch: int) -> bool:
    return all(_epoch(node) == epoch for node in nodes)


def _rotation(
    policy: Path, admin_key: Path, nodes: dict[str, Node], dirs: dict[str, Path],
    pub: Any, subs: dict[str, Any], row: Any, say: Callable[[str], None],
) -> None:  # fmt: skip
    before = {n: Counter(s.stats.rejected) for n, s in subs.items()}
    with _Traffic(pub, subs) as traffic:
        time.sleep(0.3)
        epoch = rotate(policy, ["telemetry"], activate_in=LEAD).rotated["telemetry"]
        sign(policy, admin_key)
        say(
            f"live: rotated telemetry with --activate-in {LEAD}s and signed; the sensor gets "
            "the files first, the subscribers half a second later"
        )
        for group in (("sensor-1",), ("dashboard", "archiver")):
            for name in group:
                _copy(policy, dirs[name])
            _wait(partial(_all_at, [nodes[n] for n in group], epoch), "the rotation")
            time.sleep(0.5)
        _wait(lambda: any(e == epoch for _, e in traffic.got["dashboard"]), "the new epoch in use")
        time.sleep(0.3)
    for name, sock in subs.items():
        rejected = Counter(sock.stats.rejected) - before[name]
        row.rejected.update(rejected)
        row.expected.update((name, "sensor-1", p) for p in traffic.sent)
        row.delivered.update((name, "sensor-1", p) for p, _ in traffic.got[name])
        epochs = sorted({e for _, e in traffic.got[name]})
        say(
            f"  rotation   {name:10} delivered {len(traffic.got[name]):>4}/{len(traffic.sent)} "
            f"under epochs {epochs}, rejected {sum(rejected.values())}"
        )
    row.sent += len(traffic.sent)


def _revocation(
    policy: Path, admin_key: Path, nodes: dict[str, Node], dirs: dict[str, Path],
    pub: Any, subs: dict[str, Any], row: Any, say: Callable[[str], None],
) -> None:  # fmt: skip
    before = {n: Counter(s.stats.rejected) for n, s in subs.items()}
    with _Traffic(pub, subs) as traffic:
        time.sleep(0.3)
        epoch = revoke(policy, "archiver").rotation.rotated["telemetry"]
        sign(policy, admin_key)
        started = time.monotonic()
        say("live: revoked archiver and signed (no lead: senders switch as soon as they see it)")
        for name in ("dashboard", "archiver"):
            _copy(policy, dirs[name])
        _wait(lambda: nodes["dashboard"].policy.version == 2, "the dashboard to apply it")
        _copy(policy, dirs["sensor-1"])
        _wait(lambda: nodes["sensor-1"].policy.version == 2, "the sensor to apply it")
        cut_off = time.monotonic() - started
        time.sleep(0.5)
    sealed_after = {p for p, e in traffic.got["dashboard"] if e >= epoch}
    say(
        f"  revocation the sensor sealed to the new epoch {cut_off:.1f}s after signing; "
        f"archiver's own node refused the update (version {nodes['archiver'].policy.version}: "
        "it is revoked)"
    )
    for name, sock in subs.items():
        rejected = Counter(sock.stats.rejected) - before[name]
        row.rejected.update(rejected)
        for payload in traffic.sent:
            if name == "dashboard" or payload not in sealed_after:
                row.expected[(name, "sensor-1", payload)] += 1
        row.delivered.update((name, "sensor-1", p) for p, _ in traffic.got[name])
        read_after = len({p for p, _ in traffic.got[name]} & sealed_after)
        say(
            f"  revocation {name:10} delivered {len(traffic.got[name]):>4}/{len(traffic.sent)}, "
            f"of them sealed after the switch: {read_after}, rejected: "
            + (", ".join(f"{r} {n}" for r, n in sorted(rejected.items())) or "none")
        )
    # The revoked subscriber refuses exactly what was sealed after the switch (no-key).
    row.expected_rejected["no-key"] += len(sealed_after)
    row.sent += len(traffic.sent)
