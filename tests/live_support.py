"""Helpers for live-operation tests: a signed world whose nodes follow copies of its files,
and traffic that flows over real sockets while the files change."""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pynng
import pytest

from nngsec import Keystore, Node
from nngsec._policy._admin import sign
from nngsec._policy._policy import channel_keys_path, signature_path
from nngsec._runtime._etcd import EtcdClient
from nngsec._runtime._store import StoreAddress
from tests.net import wait_for
from tests.support import World

WATCH = 0.05  # seconds: watching nodes in tests look at their files this often


@dataclass
class Signed:
    """A world whose policy is signed by an admin that its keystore pins."""

    world: World
    admin_key: Path

    @property
    def policy_path(self) -> Path:
        return self.world.policy_path

    def sign(self) -> None:
        sign(self.policy_path, self.admin_key)

    def copy_to(self, directory: Path) -> Path:
        """Copy policy, signature and channel keys into ``directory`` (as a node's own
        files); returns the policy path there. Channel keys and signature first, the
        policy last, as an admin's copy would land in any order."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / self.policy_path.name
        for source in (
            channel_keys_path(self.policy_path),
            signature_path(self.policy_path),
            self.policy_path,
        ):
            if source.exists():
                shutil.copyfile(source, directory / source.name)
        return target


def signed_world(world: World) -> Signed:
    admin = Keystore(world.root / "admin")
    admin.generate("admin")
    signed = Signed(world, world.root / "admin" / "admin.key")
    signed.sign()
    world.keystore.trust(world.root / "admin" / "admin.pub")
    return signed


OPENED: list[Node] = []  # closed after each test by the tests' fixture, even on failure


def watching(path: Path | str, identity: str, keystore: Keystore, **options: Any) -> Node:
    node = Node(path, identity=identity, keystore=keystore, watch_interval=WATCH, **options)
    OPENED.append(node)
    return node


def close_opened() -> None:
    while OPENED:
        OPENED.pop().close()


def epoch_of(node: Node, channel: str) -> int:
    return node.channel_keys[channel].current.epoch


def applied(nodes: list[Node], channel: str, epoch: int, what: str = "") -> None:
    wait_for(
        lambda: all(epoch_of(n, channel) >= epoch for n in nodes),
        what or f"every node to hold epoch {epoch} of {channel}",
    )


@dataclass
class Flow:
    """A publisher sending numbered payloads at ``rate`` per second to subscribers that
    record what they accept (payload and epoch), until stopped."""

    pub: Any
    subs: dict[str, Any]
    rate: float = 200.0
    topic: str = "t.flow"
    sent: list[bytes] = field(default_factory=list)
    received: dict[str, list[tuple[bytes, int]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _stop_sending: threading.Event = field(default_factory=threading.Event)
    _stop_receiving: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Flow:
        for name, sub in self.subs.items():
            self.received[name] = []
            sub.recv_timeout = 100
            thread = threading.Thread(target=self._receive, args=(name, sub), daemon=True)
            self._threads.append(thread)
            thread.start()
        sender = threading.Thread(target=self._send, daemon=True)
        self._threads.append(sender)
        sender.start()
        return self

    def _send(self) -> None:
        index = 0
        while not self._stop_sending.is_set():
            payload = b"%d" % index
            try:
                self.pub.send(payload, topic=self.topic)
            except Exception as error:
                self.errors.append(f"send: {type(error).__name__}: {error}")
                return
            self.sent.append(payload)
            index += 1
            time.sleep(1 / self.rate)

    def _receive(self, name: str, sub: Any) -> None:
        while not self._stop_receiving.is_set():
            try:
                message = sub.recv()
            except pynng.Timeout:
                continue
            except pynng.Closed:
                return
            self.received[name].append((message.payload, message.epoch))

    def stop(self, expect_all: tuple[str, ...] = ()) -> None:
        """Stop sending; wait until every subscriber in ``expect_all`` got everything."""
        self._stop_sending.set()
        self._threads[-1].join(5)
        for name in expect_all:
            wait_for(partial(self._complete, name), f"{name} to receive every frame sent")
        time.sleep(0.2)  # anything extra would arrive now
        self._stop_receiving.set()
        for thread in self._threads[:-1]:
            thread.join(5)

    def _complete(self, name: str) -> bool:
        return len(self.received[name]) >= len(self.sent)

    def payloads(self, name: str) -> Counter[bytes]:
        return Counter(payload for payload, _ in self.received[name])

    def epochs(self, name: str) -> set[int]:
        return {epoch for _, epoch in self.received[name]}


def no_watchers_left() -> None:
    """No nngsec watcher thread outlives its test."""
    wait_for(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("nngsec-watch")],
        "watcher threads to end",
    )


def refused_update(node: Node, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    """A watching node logs that it refused an update for ``reason`` (``caplog`` captures
    ``nngsec`` at INFO), as for every refused update, and keeps its set."""
    version = node.policy.version
    wait_for(
        lambda: any(
            "refused an update" in r.getMessage() and reason in r.getMessage()
            for r in caplog.records
        ),
        f"a refused update ({reason})",
    )
    assert node.policy.version == version


def overwrite_store(url: str, parts: Mapping[str, bytes | None]) -> None:
    """What anyone with write access to the store can do: put bytes under the keys of the
    policy set at ``url`` (``None`` deletes one), in one transaction."""
    address = StoreAddress.parse(url)
    operations = [
        EtcdClient.put(address.key(part), value)
        if value is not None
        else EtcdClient.delete(address.key(part))
        for part, value in parts.items()
    ]
    assert address.client(timeout=20).txn([], operations)[0]
