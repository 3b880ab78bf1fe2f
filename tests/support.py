"""Test support, one home for each helper: a fixed time and a clock the test moves, key and
policy text, worlds of fresh identities, and the command line run in process or as a user
runs it (a real child process).

Fixtures that wrap these live in ``tests/conftest.py``; sockets, addresses and polling in
``tests/net.py``; relay scenarios in ``tests/relay_support.py``.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nngsec import Keystore, Node, Problem, Received, Rejected, load_policy
from nngsec._cli import _admin_commands, main
from nngsec._keys._keystore import record_key
from nngsec._policy._admin import rotate

if TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"

NOW = 1_800_000_000.0  # a fixed "now" (seconds since the epoch) for code that takes one
FIRST_EPOCH = int(NOW)  # a channel's first key epoch when rotated at NOW (epochs start at the time)

ALICE, BOB, CAROL, DAVE, ERIN = "alice", "bob", "carol", "dave", "erin"
NAMES = (ALICE, BOB, CAROL, DAVE, ERIN)

# Public keys of the example policy (policies/factory.yaml); private halves are not needed.
K1 = (
    "nngsec-id-v1:4-MzAzl7_f67o0wbg15I396FhlEiYIpurfATwFxZZpGnwDDF9CcW9knd8BOzKRqp4p8X_uevuVDJ"
    "-LK_oLR6ayB-nB0"
)
K2 = (
    "nngsec-id-v1:UsoZL_w4igBKFpmo2-8BVKru023ueO5Xcm6w3eUoBhwWwbz-SkBVAA0uyhvbnnQiCwZr4_5DslfP05q"
    "-iSGLCCqN4yA"
)

# The smallest useful policy body: one sealed pubsub channel from a sensor to a dashboard.
TELEMETRY = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor]
    subscribers: [dashboard]
"""


def examples(count: int) -> int:
    """``count`` hypothesis examples scaled by the active profile (``ci`` keeps ``count``;
    see ``HYPOTHESIS_PROFILE`` in ``tests/conftest.py``)."""
    from hypothesis import settings

    active = settings.default
    assert active is not None
    return max(1, count * active.max_examples // 100)


@dataclass
class FakeClock:
    """A clock the test moves by hand (seconds since the epoch)."""

    now: float = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def at(text: str, problem: Problem) -> str:
    """The rest of the line of ``text`` from the problem's line and column."""
    assert problem.line is not None, f"no line in {problem}"
    assert problem.column is not None, f"no column in {problem}"
    return text.splitlines()[problem.line - 1][problem.column - 1 :]


# -- worlds: a policy with fresh identities ---------------------------------------------


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


def recorded_as(policy_path: Path) -> str:
    """The key a keystore records the policy at ``policy_path`` under: its name and its
    deployment id (the name alone without one)."""
    policy = load_policy(policy_path)
    return record_key(policy.name, policy.model.deployment)


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


def _channels() -> str:
    lines = ["channels:"]

    def add(name: str, pattern: str, roles: dict[str, list[str]], **extra: str) -> None:
        lines.append(f"  {name}:")
        lines.append(f"    pattern: {pattern}")
        for role, members in roles.items():
            lines.append(f"    {role}: [{', '.join(members)}]")
        for key, value in extra.items():
            lines.append(f"    {key}: {value}")

    for scheme in ("secretbox", "signed", "plaintext"):
        add(f"pair-{scheme}", "pair", {"members": [ALICE, BOB]}, scheme=scheme)
    add("bus-secretbox", "bus", {"members": [ALICE, BOB, CAROL]})
    add("bus-group", "bus", {"members": [ALICE, BOB, CAROL]}, origin="group")
    for scheme in ("signed", "plaintext"):
        add(f"bus-{scheme}", "bus", {"members": [ALICE, BOB, CAROL]}, scheme=scheme)
    for scheme in ("sealed", "signed", "plaintext"):
        add(
            f"pubsub-{scheme}",
            "pubsub",
            {"publishers": [ALICE, BOB], "subscribers": [CAROL, DAVE]},
            scheme=scheme,
            topics='["t.", "u."]',
        )
        add(
            f"pipeline-{scheme}",
            "pipeline",
            {"pushers": [ALICE, BOB], "pullers": [CAROL, DAVE]},
            scheme=scheme,
        )
        add(
            f"survey-{scheme}",
            "survey",
            {"surveyors": [ALICE, BOB], "respondents": [CAROL, DAVE]},
            scheme=scheme,
        )
    # origin: mac, on the sealed patterns: one MAC per receiving identity
    add(
        "pubsub-mac",
        "pubsub",
        {"publishers": [ALICE, BOB], "subscribers": [CAROL, DAVE]},
        origin="mac",
        topics='["t.", "u."]',
    )
    add(
        "pipeline-mac",
        "pipeline",
        {"pushers": [ALICE, BOB], "pullers": [CAROL, DAVE]},
        origin="mac",
    )
    add(
        "survey-mac",
        "survey",
        {"surveyors": [ALICE, BOB], "respondents": [CAROL, DAVE]},
        origin="mac",
    )
    add("reqrep-single", "reqrep", {"clients": [ALICE, BOB], "servers": [CAROL]})
    for scheme in ("peerbox", "signed", "plaintext"):
        add(
            f"reqrep-{scheme}",
            "reqrep",
            {"clients": [ALICE, BOB], "servers": [CAROL, DAVE]},
            scheme=scheme,
        )
    return "\n".join(lines) + "\n"


ALL_CHANNELS = _channels()  # every pattern and scheme, for NAMES


# -- the command line -------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """What one run of the command line did: exit status, stdout, stderr."""

    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return self.err.splitlines()


def _exit_status(code: object) -> int:
    """The status a process exiting with ``sys.exit(code)`` would have."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"): printed, status 1
    return 1


class InProcessCli:
    """``nngsec ARGS`` through ``nngsec._cli.main`` in this process, as a user would run it:
    in directory ``cwd``, with ``NNGSEC_KEYSTORE=keys`` plus ``env``, without
    ``NNGSEC_DEBUG``, stdout and stderr captured (not a terminal), argparse's exits
    (``--help``, usage errors) turned into the exit status, and the log records main()
    configures written to the captured stderr. Everything is put back after each run.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cwd: Path) -> None:
        self._monkeypatch = monkeypatch
        self._cwd = cwd

    def __call__(
        self, *args: str | Path, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> Result:
        environment = {"NNGSEC_KEYSTORE": "keys", **(env or {})}
        out, err = io.StringIO(), io.StringIO()
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        with self._monkeypatch.context() as patch:
            patch.chdir(cwd or self._cwd)
            patch.delenv("NNGSEC_DEBUG", raising=False)
            for name, value in environment.items():
                patch.setenv(name, value)
            # The command line reads NNGSEC_KEYSTORE once, when it is imported (a fresh
            # process per run); apply it as that process would have read it.
            patch.setattr(_admin_commands, "DEFAULT_KEYSTORE", environment["NNGSEC_KEYSTORE"])
            patch.setattr(sys, "stdout", out)
            patch.setattr(sys, "stderr", err)
            # With no handler on the root logger, main()'s logging.basicConfig installs its
            # own, bound to the captured stderr; it is closed and removed after the run.
            root.handlers = []
            try:
                code = main([str(arg) for arg in args])
            except SystemExit as exited:
                code = _exit_status(exited.code)
            finally:
                for handler in root.handlers:
                    handler.close()
                root.handlers = handlers
                root.setLevel(level)  # main()'s basicConfig sets the root logger's level
                # The nngsec loggers are not put back: no command may change them (the demo
                # and the bench quiet their records at the handlers instead).
        return Result(code, out.getvalue(), err.getvalue())


def run_subprocess(
    *args: str | Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Result:
    """``python -m nngsec ARGS`` in a real child process (for what only a process shows:
    the entry point, the environment read at start-up, exit statuses, signals)."""
    environment = {**os.environ, "NNGSEC_KEYSTORE": "keys", **(env or {})}
    environment.pop("NNGSEC_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-m", "nngsec", *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def outcomes_in_two_threads(open_one: Callable[[], Received]) -> list[str]:
    """Run ``open_one`` in two threads at once and return, sorted, what each got: its
    payload (as ``str``) or the reason it was rejected. Replay tests give both threads one
    frame and expect ``[str(payload), "replay"]``."""
    import threading

    results: list[str] = []

    def worker() -> None:
        try:
            results.append(str(open_one().payload))
        except Rejected as rejected:
            results.append(str(rejected.reason))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)
