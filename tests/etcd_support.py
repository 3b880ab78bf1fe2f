"""A real etcd for tests: its own free loopback ports and a temporary data directory,
started and stopped cleanly (``etcd-server``, installed by ``.ci/run``).

Where etcd is not installed, tests that need it fail in CI (``CI`` set, as ``.ci/run``
runs) and are skipped locally with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.net import free_port

START_TIMEOUT = 20.0


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if found is None:
        message = "etcd is not installed (Debian: apt-get install etcd-server; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class Etcd:
    """One etcd member on 127.0.0.1; ``stop()`` and ``start()`` again keep its data."""

    def __init__(self, data_dir: Path, *flags: str) -> None:
        """``flags`` are added to etcd's command line (``--max-request-bytes=...``)."""
        self.binary = etcd_binary()
        self.data_dir = data_dir
        self.flags = flags
        self.port = free_port()
        self.peer_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, prefix: str) -> str:
        return f"etcd://127.0.0.1:{self.port}/{prefix}"

    def start(self) -> None:
        client = f"http://127.0.0.1:{self.port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        log = (self.data_dir.parent / f"{self.data_dir.name}.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--name=test",
                f"--data-dir={self.data_dir}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=test={peer}",
                "--log-level=error",
                "--logger=zap",
                *self.flags,
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=1) as answer:
                    if b'"true"' in answer.read():
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("etcd did not become healthy in time")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
