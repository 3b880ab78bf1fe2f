"""Helpers for tests over real sockets: addresses per transport, and polling (the one
``wait_for`` of the suite: tests poll for a condition instead of sleeping)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

TRANSPORTS = ("inproc", "ipc", "tcp")
TIMEOUT = 5.0  # seconds an expected event may take on a loaded two-core machine
_counter = iter(range(1_000_000))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def address(transport: str, tmp_path: Path) -> str:
    """A fresh address on ``transport`` (tcp on 127.0.0.1)."""
    number = next(_counter)
    if transport == "inproc":
        return f"inproc://nngsec-test-{number}-{id(tmp_path)}"
    if transport == "ipc":
        return f"ipc://{tmp_path}/sock-{number}.ipc"
    return f"tcp://127.0.0.1:{free_port()}"


def wait_for(
    condition: Callable[[], object], what: str = "condition", timeout: float = TIMEOUT
) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def connected(*sockets: object, count: int = 1) -> None:
    """Wait until every socket has at least ``count`` pipes."""
    wait_for(lambda: all(len(s.pipes) >= count for s in sockets), what="connections")  # type: ignore[attr-defined]
