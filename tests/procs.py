"""Functions run in child processes (spawn start method: importable, top level)."""

from __future__ import annotations

from typing import Any

import pynng

from nngsec import Keystore, Node


def push_jobs(policy: str, keystore: str, identity: str, url: str, count: int, done: Any) -> None:
    """Push ``count`` jobs, then keep the socket open until ``done`` is set: nng discards
    messages still queued when a socket closes (there is no linger)."""
    node = Node(policy, identity=identity, keystore=Keystore(keystore))
    with node.attach(pynng.Push0(dial=url, send_timeout=20_000), "jobs") as push:
        for index in range(count):
            push.send(b"job %d" % index)
        done.wait(20)


def receive_forever(
    policy: str,
    keystore: str,
    identity: str,
    channel: str,
    url: str,
    log: str,
    checkpoint_interval: float,
) -> None:
    """A receiver of ``channel`` that runs until it is killed: a Rep0 server (listens,
    executes and answers requests), a Pull0 worker (listens) or a Sub0 subscriber (dials,
    all topics). Every delivered message is appended to ``log`` with one ``os.write``
    (it survives kill -9), after a ``ready`` line once the socket is up."""
    import os

    node = Node(
        policy,
        identity=identity,
        keystore=Keystore(keystore),
        checkpoint_interval=checkpoint_interval,
    )
    pattern = node.policy.channels[channel].pattern_name
    sockets = {"reqrep": pynng.Rep0, "pipeline": pynng.Pull0, "pubsub": pynng.Sub0}
    secure = node.attach(sockets[pattern](), channel)
    if pattern == "pubsub":
        secure.subscribe("")
        secure.dial(url, block=False)
    else:
        secure.listen(url)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, b"ready\n")
    while True:
        message = secure.recv()
        os.write(fd, message.payload + b"\n")  # for a server: executed
        if pattern == "reqrep":
            secure.send(b"done: " + message.payload)


def keygen_until_killed(root: str, named: bool, rounds: int, seed: int) -> None:
    """``rounds`` times: fork a process that runs ``nngsec keygen k0``, ``k1``, ... into
    ``root/runN`` without end, and ``kill -9`` it at a random moment after its first key.

    Run as ``python -c`` by the test (forking the test process itself would fork pytest);
    ``named`` makes writes fall back to named temporaries, as without ``O_TMPFILE``.
    """
    import os
    import random
    import signal
    import time
    from pathlib import Path

    from nngsec._cli import main
    from nngsec._formats import _atomic

    if named:
        _atomic.UNNAMED_FILES = False
    chance = random.Random(seed)
    quiet = os.open(os.devnull, os.O_WRONLY)
    for run in range(rounds):
        keys = Path(root) / f"run{run}"
        pid = os.fork()
        if pid == 0:  # the child: keygen after keygen, until killed
            os.dup2(quiet, 1)
            os.dup2(quiet, 2)
            index = 0
            while True:
                main(["keygen", f"k{index}", "--keystore", str(keys)])
                index += 1
        deadline = time.monotonic() + 10
        while not (keys / "k0.key").exists() and time.monotonic() < deadline:
            time.sleep(0.0005)
        time.sleep(chance.uniform(0, 0.04))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
