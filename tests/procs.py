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
