"""Shared fixtures (worlds of fresh identities, the command line in process, asyncio and
trio) and the hypothesis profiles.

Hypothesis profiles, chosen with ``HYPOTHESIS_PROFILE`` (default ``ci``): ``ci`` runs each
property with hypothesis's usual 100 examples (tests that ask for more get what they ask
for), ``dev`` a fifth of that for quick local loops, ``thorough`` ten times as many. Tests
scale their own counts with ``tests.support.examples``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from nngsec import Node
from tests.aio import LIBRARIES, AsyncLibrary
from tests.etcd_support import Etcd
from tests.live_support import close_opened, no_watchers_left
from tests.support import ALL_CHANNELS, NAMES, FakeClock, InProcessCli, World, build_world

settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
    clock: FakeClock
    nodes: dict[str, Node]


@pytest.fixture(scope="module")
def codec_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodecWorld]:
    clock = FakeClock()
    world = build_world(tmp_path_factory.mktemp("codec"), ALL_CHANNELS, NAMES)
    nodes = {name: world.node(name, clock=clock) for name in NAMES}
    yield CodecWorld(world, clock, nodes)
    for node in nodes.values():
        node.close()


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    """A real etcd for the tests of one module (each test uses its own prefix)."""
    server = Etcd(tmp_path_factory.mktemp("etcd") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def etcd_server(tmp_path: Path) -> Iterator[Etcd]:
    """A real etcd of this test alone (to stop and start it)."""
    server = Etcd(tmp_path / "etcd-data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> InProcessCli:
    """``cli(*args, cwd=tmp_path, env={}) -> Result(code, out, err)``: the command line
    through ``nngsec._cli.main`` in this process (see ``tests.support.InProcessCli``)."""
    return InProcessCli(monkeypatch, tmp_path)


@pytest.fixture(scope="session", autouse=True)
def no_checkpoint_thread_outlives_the_tests():
    """Every node's replay-state thread ends once its receivers are closed or collected
    (the thread then closes their slots): none may be left when the tests are done."""
    yield
    import gc
    import threading

    from tests.net import wait_for

    gc.collect()  # receivers in reference cycles: their slots are flagged for the thread

    def ended() -> bool:
        return not [t for t in threading.enumerate() if t.name == "nngsec-replay-checkpoint"]

    try:  # (a collected receiver's slot is given back within ABANDONED_POLL seconds)
        wait_for(ended, "the checkpoint threads to end", timeout=15)
    except AssertionError:
        from nngsec._runtime._replay_state import _STATES

        held = [f"{slot.directory.name}/{slot.channel}" for s in _STATES for slot in s._slots]
        raise AssertionError(f"receivers never closed nor collected: {held}") from None


@pytest.fixture(params=LIBRARIES, ids=repr)
def aio(request: pytest.FixtureRequest) -> AsyncLibrary:
    """asyncio, then trio: ``aio.run(main)`` with a time limit (see ``tests/aio.py``)."""
    library: AsyncLibrary = request.param
    return library


@pytest.fixture
def no_thread_left_behind() -> Iterator[None]:
    """After the test: close every node it opened, a failed test's too, and check that no
    watcher thread is left (a leftover one would fail the next test). For modules whose
    nodes watch files or a store: ``pytestmark = pytest.mark.usefixtures(...)``."""
    yield
    close_opened()
    no_watchers_left()
