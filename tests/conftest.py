"""Shared fixtures: build a policy with fresh identities in a temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nngsec import Keystore, Node, load_policy
from nngsec._policy._admin import rotate


@dataclass
class World:
    """A policy file, its channel keys and one keystore holding every identity's key."""

    root: Path
    policy_path: Path
    keystore: Keystore
    names: tuple[str, ...]
    nodes: dict[str, Node] = field(default_factory=dict)

    def node(self, identity: str, **options: Any) -> Node:
        policy = load_policy(self.policy_path)
        return Node(policy, identity=identity, keystore=self.keystore, **options)

    def rotate(self, *channels: str, now: float | None = None, grace: float = 3600.0) -> None:
        rotate(self.policy_path, channels, now=now, grace=grace)


def build_world(
    root: Path,
    body: str,
    names: Iterable[str],
    *,
    with_keys: bool = True,
    policy_name: str = "factory",
) -> World:
    """Write ``root/policy.yaml``: a header, ``identities:`` for ``names``, then ``body``."""
    keystore = Keystore(root / "keys")
    names = tuple(names)
    lines = ["nngsec: 1", f"name: {policy_name}", "identities:"]
    for name in names:
        key, _, _ = keystore.generate(name)
        lines.append(f"  {name}: {key.public.to_text()}")
    policy_path = root / "policy.yaml"
    policy_path.write_text("\n".join(lines) + "\n" + body)
    world = World(root, policy_path, keystore, names)
    if with_keys:
        world.rotate()
    return world


@pytest.fixture
def world_factory(tmp_path: Path) -> Callable[..., World]:
    counter = iter(range(1000))

    def make(body: str, names: Iterable[str], **options: Any) -> World:
        root = tmp_path / f"world{next(counter)}"
        root.mkdir()
        return build_world(root, body, names, **options)

    return make


@dataclass
class CodecWorld:
    """Every pattern and scheme, with one Node per identity on a shared fake clock."""

    world: World
    clock: object
    nodes: dict[str, Node]


@pytest.fixture(scope="module")
def codec_world(tmp_path_factory: pytest.TempPathFactory) -> CodecWorld:
    from tests.support import ALL_CHANNELS, NAMES, FakeClock

    clock = FakeClock()
    world = build_world(tmp_path_factory.mktemp("codec"), ALL_CHANNELS, NAMES)
    nodes = {name: world.node(name, clock=clock) for name in NAMES}
    return CodecWorld(world, clock, nodes)
