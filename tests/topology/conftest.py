"""Fixtures for checker tests: a small policy with real keys, and topology text to check."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support import World

from nngsec._topology._check import CheckOptions, CheckResult, run_check
from nngsec._topology._findings import Finding

# Every identity of the test policy, and the policy body (channels) most tests use.
NAMES = (
    "sensor-1",
    "sensor-2",
    "dashboard",
    "scheduler",
    "worker",
    "ctl-a",
    "ctl-b",
    "cell-1",
    "cell-2",
    "cell-3",
    "old-1",
)
BODY = """\
groups:
  sensors: [sensor-1, sensor-2]
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensors]
    subscribers: [dashboard]
    topics: ["temp."]
  jobs:
    pattern: pipeline
    pushers: [scheduler]
    pullers: [worker]
  control:
    pattern: reqrep
    clients: [dashboard]
    servers: [ctl-a, ctl-b]
  cells:
    pattern: bus
    members: [cell-1, cell-2, cell-3]
  health:
    pattern: survey
    surveyors: [dashboard]
    respondents: [sensors]
  sync:
    pattern: pair
    members: [dashboard, scheduler]
revoked: []
"""

MARK = "# <-"


def marked_line(text: str, mark: str = MARK) -> int:
    """1-based number of the (only) line of ``text`` carrying ``mark``."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if mark in line]
    assert len(lines) == 1, f"expected one line marked {mark!r}, found {lines}"
    return lines[0]


@dataclass
class Deployment:
    """A policy (``policy.yaml`` + channel keys + keystore) and a topology file beside it."""

    root: Path
    policy_path: Path
    keystore: Path

    @property
    def topology_path(self) -> Path:
        return self.root / "topology.yaml"

    def policy_text(self) -> str:
        return self.policy_path.read_text()

    def edit_policy(self, old: str, new: str) -> None:
        text = self.policy_text()
        assert old in text, f"{old!r} not in the policy"
        self.policy_path.write_text(text.replace(old, new, 1))

    @staticmethod
    def topology_text(body: str) -> str:
        """The topology file for ``body`` (dedented): a two-line header, then the body."""
        return "nngsec: 1\npolicy: policy.yaml\n" + textwrap.dedent(body).lstrip("\n")

    def line(self, body: str, mark: str = MARK) -> int:
        """Line number of the marked line of ``body`` in the written topology file."""
        return marked_line(self.topology_text(body), mark)

    def write_topology(self, body: str) -> Path:
        self.topology_path.write_text(self.topology_text(body))
        return self.topology_path

    def result(self, topology: str | None = None, **options: object) -> CheckResult:
        paths = [self.policy_path]
        if topology is not None:
            self.write_topology(topology)
            paths.append(self.topology_path)
        return run_check(paths, CheckOptions(**options))  # type: ignore[arg-type]

    def check(self, topology: str | None = None, **options: object) -> list[Finding]:
        return list(self.result(topology, **options).findings)


@pytest.fixture
def deployment(world_factory: Callable[..., World]) -> Deployment:
    world = world_factory(BODY, NAMES)
    return Deployment(world.root, world.policy_path, world.keystore.directory)
