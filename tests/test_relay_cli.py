"""``nngsec relay``: relays real traffic, stops cleanly on SIGINT/SIGTERM, refuses bad input.

A running relay is a real ``python -m nngsec relay`` process (marked ``subprocess``): it
installs signal handlers, which only a main thread can, and is stopped by a real signal.
Bad input goes through ``nngsec._cli.main`` in this process (the ``cli`` fixture).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pynng
import pytest

from nngsec import Node, relay
from tests.net import TIMEOUT
from tests.relay_support import BODY, NAMES, TIMEOUT_MS, publish_until_received
from tests.support import build_world

LINE = re.compile(r"front (\S+) \((listening|dialing), for (\w+)\) (->|<->) back (\S+) ")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    world = build_world(tmp_path_factory.mktemp("relay-cli"), BODY, NAMES)
    opened = {name: world.node(name) for name in NAMES}
    yield opened
    for node in opened.values():
        node.close()


@pytest.fixture
def running() -> Iterator[list[subprocess.Popen[str]]]:
    """Relay processes started by a test; killed at the end if the test left one running."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def start(
    running: list[subprocess.Popen[str]], *arguments: str
) -> tuple[subprocess.Popen[str], str]:
    """Start ``nngsec relay ARGUMENTS`` and return it with its first line (once it runs)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "nngsec", "relay", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    running.append(process)
    assert process.stdout is not None
    line = process.stdout.readline()  # printed only after both sides listen
    if not line:
        process.wait(TIMEOUT)
        assert process.stderr is not None
        pytest.fail(f"relay exited with {process.returncode}: {process.stderr.read()}")
    return process, line


@pytest.mark.subprocess
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_relay_command_forwards_and_stops_cleanly_on_a_signal(signum, running, nodes):
    process, line = start(
        running, "pubsub", "--front", "tcp://127.0.0.1:0", "--back", "tcp://127.0.0.1:0"
    )
    match = LINE.search(line)
    assert match is not None, line
    front, mode, faces, arrow, back = match.groups()
    assert (mode, faces, arrow) == ("listening", "publishers", "->")
    assert "key-less" in line and not front.endswith(":0") and front != back

    frame = nodes["alice"].seal("telemetry", b"21.5", topic="temp.line1")
    with (
        pynng.Pub0(dial=front) as pub,
        pynng.Sub0(dial=back, topics=b"temp.", recv_timeout=100) as sub,
    ):
        # Publish until the first frame arrives: both connections are then up.
        got = publish_until_received(pub, sub, frame, "the relay process")
    assert got == frame
    assert nodes["carol"].open("telemetry", got).payload == b"21.5"

    started = time.monotonic()
    process.send_signal(signum)
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    assert time.monotonic() - started < 3.0
    assert f"stopped on {signal.Signals(signum).name}" in err
    assert "Traceback" not in err + out


@pytest.mark.subprocess
def test_relay_command_dials_when_told(running, tmp_path):
    """--dial-front/--dial-back: the endpoints listen and the relay connects to them."""
    front, back = f"ipc://{tmp_path}/f", f"ipc://{tmp_path}/b"
    with (
        pynng.Req0(listen=front, recv_timeout=TIMEOUT_MS) as client,
        pynng.Rep0(listen=back, recv_timeout=TIMEOUT_MS) as server,
    ):
        process, line = start(
            running, "reqrep", "--front", front, "--back", back, "--dial-front", "--dial-back"
        )
        match = LINE.search(line)
        assert match is not None and match.group(2) == "dialing" and match.group(4) == "<->"
        client.send(b"ping")  # Req0 resends on reconnect, so no readiness wait is needed
        assert server.recv() == b"ping"
        server.send(b"pong")
        assert client.recv() == b"pong"
        process.terminate()
        process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0


def test_address_in_use_is_one_line_with_a_hint_and_exit_2(cli):
    with relay("pubsub", front="tcp://127.0.0.1:0", back="inproc://cli-taken") as taken:
        result = cli("relay", "pipeline", "--front", taken.front_url, "--back", "tcp://127.0.0.1:0")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("nngsec: error: front: cannot listen on tcp://127.0.0.1:")
    assert "address already in use" in lines[0] and "(hint:" in lines[0]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["bus", "--front", "nope://x", "--back", "inproc://b"], "unsupported transport"),
        (["pair", "--front", "inproc://a", "--back", "inproc://b"], "invalid choice: 'pair'"),
        (["pubsub", "--front", "inproc://a"], "--back"),
        (
            ["pubsub", "--front", "inproc://a", "--back", "inproc://b", "--max-message-size", "9"],
            "unit",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(arguments, words, cli):
    result = cli("relay", *arguments)
    assert result.code == 2
    err = result.err
    assert len(err.strip().splitlines()) == 1, err
    assert words in err and "hint" in err and "Traceback" not in err


def test_help_says_which_side_faces_whom(cli):
    result = cli("relay", "--help")
    assert result.code == 0
    out = result.out
    assert "--dial-front" in out and "publishers" in out and "SIGTERM" in out


def test_max_message_size_option_takes_a_size_or_none():
    from nngsec._cli._relay_command import _size

    assert _size("64MiB") == 64 << 20
    assert _size("none") is None
    for bad in ("0B", "64", "lots"):
        with pytest.raises(argparse.ArgumentTypeError):
            _size(bad)
