"""A fleet of node processes on loopback that follow their source while keys rotate and an
identity is revoked, from files and from etcd.

    python -m benchmarks.fleet [--nodes 50] [--sources files,etcd] [--watchers 500]

Half the nodes are on a pubsub channel (one publisher, subscribers), half on a pipeline
(one pusher, pullers); the policy is signed and every node pins the admin. For each source
it rotates both channels (``--activate-in``) and then revokes one subscriber, and reports:
the time from ``sign`` (files) or ``publish`` (etcd) until each node applied the change
(p50, p99, max), honest frames lost (rejections at receivers that are not revoked), and
frames the revoked subscriber could still read after the publisher switched. Revocations
are distributed to receivers first, then to senders (docs/deployment.md). It also times
``--watchers`` store watchers on one etcd seeing one publish.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

CHANNELS = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [pub]
    subscribers: [{subs}]
  jobs:
    pattern: pipeline
    pushers: [push]
    pullers: [{pulls}]
"""
WATCH = 1.0  # the nodes' watch interval (the default)
LEAD = 4.0  # --activate-in of the rotation: longer than the watch interval and a spread
RATE = 20.0  # frames per second from each sender


def node_main(
    identity: str, role: str, source: str, keystore: str, url: str, reports: Any, stop: Any
) -> None:
    """One node process: follow ``source``, send or receive, report each switch."""
    import pynng

    from nngsec import Node

    node = Node(source, identity=identity, keystore=keystore, watch_interval=WATCH)
    channel = "telemetry" if role in ("pub", "sub") else "jobs"
    received: list[tuple[int, int]] = []
    sent = [0]
    switches: list[tuple[float, int, int, int]] = []  # (time, version, epoch, sent so far)
    if role in ("pub", "push"):
        sock = node.attach(
            (pynng.Pub0 if role == "pub" else pynng.Push0)(listen=url, send_timeout=200), channel
        )

        def send() -> None:
            while not stop.is_set():
                try:
                    sock.send(b"%d" % sent[0], **({"topic": "t"} if role == "pub" else {}))
                    sent[0] += 1
                except pynng.Timeout:
                    pass
                time.sleep(1 / RATE)

        worker = threading.Thread(target=send, daemon=True)
    else:
        sock = node.attach(
            (pynng.Sub0 if role == "sub" else pynng.Pull0)(dial=url, recv_timeout=200), channel
        )
        if role == "sub":
            sock.subscribe("")

        def receive() -> None:
            while not stop.is_set():
                try:
                    message = sock.recv()
                except pynng.Timeout:
                    continue
                received.append((int(message.payload), message.epoch))

        worker = threading.Thread(target=receive, daemon=True)
    worker.start()
    reports.put(("ready", identity))
    state = (node.policy.version, node.channel_keys[channel].current.epoch)
    while not stop.wait(0.01):
        now = (node.policy.version, node.channel_keys[channel].current.epoch)
        if now != state:
            state = now
            # The sending thread may be sealing frame sent[0] under the previous set right
            # now (it counts a frame once sent): the first frame surely sealed after the
            # switch is the next one. Counting from sent[0] made the bench report, now and
            # then, one frame "read after the switch" that was sealed before it.
            switches.append((time.time(), *now, sent[0] + 1))
            reports.put(("applied", identity, time.time(), *now))
    worker.join(2)
    reports.put(("done", identity, role, received, dict(sock.stats.rejected), switches, sent[0]))
    sock.close()
    node.close()


class Fleet:
    """The keys, the policy, and the node processes of one source."""

    def __init__(self, root: Path, nodes: int) -> None:
        from nngsec import Keystore
        from nngsec._policy._admin import rotate, sign

        self.root = root
        per_channel = nodes // 2 - 1
        self.subs = [f"sub-{i}" for i in range(per_channel)]
        self.pulls = [f"pull-{i}" for i in range(per_channel)]
        self.revoked = self.subs[-1]
        self.keystore = Keystore(root / "keys")
        names = ["pub", "push", *self.subs, *self.pulls]
        lines = ["nngsec: 1", "name: fleet", "version: 1", "identities:"]
        for name in names:
            key, _, _ = self.keystore.generate(name)
            lines.append(f"  {name}: {key.public.to_text()}")
        self.policy = root / "admin" / "fleet.yaml"
        self.policy.parent.mkdir()
        body = CHANNELS.format(subs=", ".join(self.subs), pulls=", ".join(self.pulls))
        self.policy.write_text("\n".join(lines) + body)
        rotate(self.policy)
        admin = Keystore(root / "admin-keys")
        admin.generate("admin")
        self.admin_key = root / "admin-keys" / "admin.key"
        sign(self.policy, self.admin_key)
        self.keystore.trust(root / "admin-keys" / "admin.pub")
        self.roles = {"pub": "pub", "push": "push", **dict.fromkeys(self.subs, "sub")}
        self.roles.update(dict.fromkeys(self.pulls, "pull"))

    def sign(self) -> None:
        from nngsec._policy._admin import sign

        sign(self.policy, self.admin_key)

    def receivers(self) -> list[str]:
        return [n for n, r in self.roles.items() if r in ("sub", "pull")]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_source(kind: str, nodes: int, etcd: Any) -> dict[str, Any]:
    """Start the fleet on ``kind`` (files or etcd), rotate, revoke; the measurements."""
    from nngsec._policy._admin import revoke, rotate
    from nngsec._runtime._store import publish

    root = Path(tempfile.mkdtemp(prefix=f"nngsec-fleet-{kind}-"))
    fleet = Fleet(root, nodes)
    groups = {"receivers": fleet.receivers(), "senders": ["pub", "push"]}
    sources: dict[str, str] = {}
    for group in groups:
        if kind == "files":
            directory = root / group
            directory.mkdir()
            sources[group] = str(directory / "fleet.yaml")
        else:
            sources[group] = f"etcd://127.0.0.1:{etcd.port}/fleet-{group}-{os.getpid()}"

    def distribute(group: str) -> float:
        """Put the admin's current set in the group's source; the time it was done."""
        if kind == "files":
            target = Path(sources[group]).parent
            for suffix in (".keys.json", ".yaml.sig", ".yaml"):
                source = fleet.policy.with_name("fleet" + suffix)
                shutil.copyfile(source, target / source.name)
        else:
            publish(fleet.policy, sources[group])
        return time.time()

    for group in groups:
        distribute(group)
    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    stop = context.Event()
    urls = {"pub": f"ipc://{root}/telemetry.ipc", "push": f"ipc://{root}/jobs.ipc"}
    processes = []
    for name, role in fleet.roles.items():
        group = "senders" if role in ("pub", "push") else "receivers"
        url = urls["pub" if role in ("pub", "sub") else "push"]
        process = context.Process(
            target=node_main,
            args=(name, role, sources[group], str(fleet.keystore.directory), url, reports, stop),
        )
        process.start()
        processes.append(process)
    ready = 0
    while ready < len(processes):
        if reports.get(timeout=120)[0] == "ready":
            ready += 1
    time.sleep(2)  # connections up, traffic flowing
    applied: dict[str, list[tuple[str, float, int, int]]] = {}

    def collect(what: str, expect: set[str], since: float, done: Any) -> list[float]:
        latencies = []
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        while seen < expect and time.monotonic() < deadline:
            try:
                message = reports.get(timeout=1)
            except queue.Empty:  # keep waiting until the deadline
                continue
            if message[0] == "applied" and done(message) and message[1] not in seen:
                seen.add(message[1])
                latencies.append(message[2] - since)
                applied.setdefault(what, []).append(message[1:])
        return latencies

    # -- rotation: both channels, with a lead; every node gets it at once ---------------
    rotate(fleet.policy, activate_in=LEAD)
    fleet.sign()
    signed_at = time.time()
    for group in groups:
        distribute(group)
    everyone = set(fleet.roles)
    rotation = collect("rotation", everyone, signed_at, lambda m: m[4] >= 2)
    time.sleep(LEAD + 2)  # past the activation, traffic under the new epoch
    # -- revocation: receivers first, then senders -----------------------------------------
    revoke(fleet.policy, fleet.revoked)
    fleet.sign()
    signed_at = time.time()
    distribute("receivers")
    honest = set(fleet.receivers()) - {fleet.revoked}
    revocation = collect("revocation-receivers", honest, signed_at, lambda m: m[3] >= 2)
    distribute("senders")
    revocation += collect("revocation-senders", {"pub", "push"}, signed_at, lambda m: m[3] >= 2)
    time.sleep(3)
    stop.set()
    results: dict[str, Any] = {}
    while len(results) < len(processes):
        message = reports.get(timeout=60)
        if message[0] == "done":
            results[message[1]] = message[2:]
    for process in processes:
        process.join(10)
    lost = Counter[str]()
    for name, (role, _received, rejected, _switches, _sent) in results.items():
        if role in ("sub", "pull") and name != fleet.revoked:
            lost.update(rejected)
    # what the revoked subscriber read of frames sealed after the publisher's revocation
    pub_switches = results["pub"][3]
    switch_index = next(sent for (_, version, _, sent) in pub_switches if version >= 2)
    revoked_read = [i for i, _ in results[fleet.revoked][1] if i >= switch_index]
    shutil.rmtree(root, ignore_errors=True)
    return {
        "source": kind,
        "nodes": len(processes),
        "rotation": _summary(rotation, len(everyone)),
        "revocation": _summary(revocation, len(honest) + 2),
        "honest_lost": sum(lost.values()),
        "honest_lost_by_reason": dict(lost),
        "revoked_read_after_switch": len(revoked_read),
        "revoked_rejected": dict(results[fleet.revoked][2]),
    }


def _summary(latencies: list[float], expected: int) -> dict[str, Any]:
    if not latencies:
        return {"applied": 0, "of": expected}
    return {
        "applied": len(latencies),
        "of": expected,
        "p50": round(statistics.median(latencies), 3),
        "p99": round(_percentile(latencies, 0.99), 3),
        "max": round(max(latencies), 3),
    }


def time_watchers(etcd: Any, count: int) -> dict[str, Any]:
    """``count`` store watchers (threads, one HTTP stream each) on one etcd: the time from
    one publish until every one of them read the new set."""
    from nngsec import Keystore
    from nngsec._policy._admin import rotate
    from nngsec._runtime._source import StoreSource
    from nngsec._runtime._store import StoreAddress, publish

    root = Path(tempfile.mkdtemp(prefix="nngsec-watchers-"))
    keystore = Keystore(root / "keys")
    key, _, _ = keystore.generate("a")
    policy = root / "w.yaml"
    policy.write_text(
        f"nngsec: 1\nname: w\nidentities:\n  a: {key.public.to_text()}\n"
        "channels:\n  t: {pattern: pubsub, publishers: [a], subscribers: [a]}\n"
    )
    rotate(policy)
    url = f"etcd://127.0.0.1:{etcd.port}/watchers-{os.getpid()}"
    publish(policy, url)
    stop = threading.Event()
    seen: list[float] = []
    lock = threading.Lock()
    started = threading.Barrier(count + 1, timeout=120)
    sources = [StoreSource(StoreAddress.parse(url)) for _ in range(count)]

    def watch(source: StoreSource) -> None:
        source.read()
        changes = source.changes(stop, 1.0)
        started.wait()
        for _ in changes:
            with lock:
                seen.append(time.time())
            break

    threads = [threading.Thread(target=watch, args=(s,), daemon=True) for s in sources]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(2)  # every watch stream open
    rotate(policy)
    published = time.time()
    publish(policy, url)
    deadline = time.monotonic() + 60
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for source in sources:
        source.interrupt()
    for thread in threads:
        thread.join(5)
    shutil.rmtree(root, ignore_errors=True)
    latencies = [t - published for t in seen]
    return {"watchers": count, **_summary(latencies, count)}


class LocalEtcd:
    """etcd on free loopback ports in a temporary directory (the tests' way)."""

    def __init__(self) -> None:
        import socket

        def free() -> int:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port: int = probe.getsockname()[1]
                return port

        self.port, peer = free(), free()
        self.dir = Path(tempfile.mkdtemp(prefix="nngsec-fleet-etcd-"))
        client, peer_url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{peer}"
        binary = shutil.which("etcd")
        if binary is None:
            raise SystemExit("etcd is not installed (apt-get install etcd-server)")
        self.process = subprocess.Popen(
            [
                binary, "--name=fleet", f"--data-dir={self.dir / 'data'}",
                f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=fleet={peer_url}", "--log-level=error", "--logger=zap",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import urllib.request

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=1) as answer:
                    if b"true" in answer.read():
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("etcd did not start")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def table(results: list[dict[str, Any]], watchers: dict[str, Any] | None) -> str:
    lines = [
        "| source | nodes | change | applied | p50 s | p99 s | max s | honest lost | "
        "revoked read after switch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for change in ("rotation", "revocation"):
            row = result[change]
            lost = result["honest_lost"] if change == "revocation" else "-"
            read = result["revoked_read_after_switch"] if change == "revocation" else "-"
            lines.append(
                f"| {result['source']} | {result['nodes']} | {change} | "
                f"{row['applied']}/{row['of']} | {row.get('p50', '-')} | {row.get('p99', '-')} "
                f"| {row.get('max', '-')} | {lost} | {read} |"
            )
    if watchers is not None:
        lines += [
            "",
            "| watchers on one etcd | saw the publish | p50 s | p99 s | max s |",
            "|---|---|---|---|---|",
            f"| {watchers['watchers']} | {watchers['applied']}/{watchers['of']} | "
            f"{watchers.get('p50', '-')} | {watchers.get('p99', '-')} | "
            f"{watchers.get('max', '-')} |",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--sources", default="files,etcd")
    parser.add_argument("--watchers", type=int, default=500)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    sources = [s for s in args.sources.split(",") if s]
    etcd = LocalEtcd() if "etcd" in sources or args.watchers else None
    try:
        results = [run_source(kind, args.nodes, etcd) for kind in sources]
        watchers = time_watchers(etcd, args.watchers) if etcd and args.watchers else None
    finally:
        if etcd is not None:
            etcd.close()
    if args.format == "json":
        print(json.dumps({"fleet": results, "watchers": watchers}, indent=2))
    else:
        print(table(results, watchers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
