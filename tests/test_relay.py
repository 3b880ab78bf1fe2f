"""End to end through key-less relays, over real pynng sockets on inproc, ipc and tcp.

What these prove: bodies cross a relay byte for byte and still open; subscribers behind a
relay filter by topic; replies and survey responses reach the socket (and context) that
asked; a bus relay reaches every other member and never echoes; what a relay forwards
contains no payload bytes of sealed channels (and does contain them for a ``signed``
channel, which shows the capture sees the bodies); a relay closes promptly even while
blocked, frees its addresses, and refuses bad input with a one-line error and a hint.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pynng
import pytest

from nngsec import NngsecError, Node, Relay, relay
from nngsec._relay import DEFAULT_MAX_MESSAGE_SIZE
from tests.net import TIMEOUT, TRANSPORTS, wait_for
from tests.relay_support import (
    BODY,
    NAMES,
    SCENARIOS,
    Link,
    Sockets,
    connected,
    leaks,
    publish_until_received,
    pubsub,
)
from tests.support import build_world

PATTERNS = list(SCENARIOS)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    world = build_world(tmp_path_factory.mktemp("relay"), BODY, NAMES)
    opened = {name: world.node(name) for name in NAMES}
    yield opened
    for node in opened.values():
        node.close()


@pytest.fixture
def sockets() -> Iterator[Sockets]:
    opened = Sockets()
    yield opened
    opened.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory for ipc:// sockets with a short path (Unix socket paths are limited)."""
    path = Path(tempfile.mkdtemp(prefix="nngsec-relay-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def addresses(short_dir: Path) -> Callable[[str], tuple[str, str]]:
    """Front and back URLs on a transport; TCP listens on free ports (port 0)."""

    def make(transport: str) -> tuple[str, str]:
        if transport == "inproc":
            name = uuid.uuid4().hex
            return f"inproc://{name}-front", f"inproc://{name}-back"
        if transport == "ipc":
            name = uuid.uuid4().hex[:8]
            return f"ipc://{short_dir}/{name}-f", f"ipc://{short_dir}/{name}-b"
        return "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"

    return make


def relay_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("nngsec-relay")]


# -- every pattern over every transport ------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_pattern_through_relay(pattern, transport, nodes, sockets, addresses):
    scenario, channel = SCENARIOS[pattern]
    front, back = addresses(transport)
    with relay(pattern, front=front, back=back) as device:
        if transport == "tcp":
            assert device.front_url.startswith("tcp://127.0.0.1:")
            assert not device.front_url.endswith(":0") and device.front_url != device.back_url
        traffic = scenario(device, nodes, sockets, channel)
        assert traffic.to_back
        assert device.running and device.error is None
    assert not device.running and device.error is None


# -- what a relay forwards ------------------------------------------------------------------


def tapped(pattern: str, captured: list[tuple[str, bytes]], **options: object) -> Relay:
    return relay(
        pattern,
        front="tcp://127.0.0.1:0",
        back="tcp://127.0.0.1:0",
        tap=lambda direction, body: captured.append((direction, body)),
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("pattern", PATTERNS)
def test_capture_of_what_a_relay_forwards_holds_no_payload(pattern, nodes, sockets):
    scenario, channel = SCENARIOS[pattern]
    captured: list[tuple[str, bytes]] = []
    with tapped(pattern, captured) as device:
        traffic = scenario(device, nodes, sockets, channel)
    bodies = [body for _, body in captured]
    # The capture is exactly what the endpoints sent and received (the relay forwarded
    # these very bytes; the scenario checked they arrived and opened).
    assert sorted(bodies) == sorted(traffic.to_back + traffic.to_front)
    if pattern != "bus":
        assert sorted(b for d, b in captured if d == "to-back") == sorted(traffic.to_back)
        assert sorted(b for d, b in captured if d == "to-front") == sorted(traffic.to_front)
    assert len(traffic.payloads) >= 3
    for body in bodies:
        assert b"SECRET" not in body
        for payload in traffic.payloads:
            assert not leaks(payload, body), f"{pattern}: payload bytes visible to the relay"


def test_capture_shows_payloads_of_a_signed_channel(nodes, sockets):
    """The control: ``signed`` keeps payloads readable, and the capture does see them."""
    captured: list[tuple[str, bytes]] = []
    with tapped("pubsub", captured) as device:
        traffic = pubsub(device, nodes, sockets, "telemetry-signed")
    assert [body for _, body in captured] == traffic.to_back
    assert all(direction == "to-back" for direction, _ in captured)
    for payload, body in zip(traffic.payloads, traffic.to_back, strict=True):
        assert payload in body


def test_pubsub_capture_shows_the_clear_topic_only(nodes, sockets):
    """Metadata a relay does see by design: the topic prefix, so subscribers can filter."""
    captured: list[tuple[str, bytes]] = []
    with tapped("pubsub", captured) as device:
        pubsub(device, nodes, sockets, "telemetry")
    for _, body in captured:
        topic, separator, rest = body.partition(b"\x00")
        assert separator and topic.startswith((b"temp.", b"hum."))
        assert b"SECRET" not in rest


def test_a_raising_tap_does_not_stop_forwarding(nodes, sockets, caplog):
    def tap(direction: str, body: bytes) -> None:
        raise RuntimeError("observer failed")

    with relay("pubsub", front="tcp://127.0.0.1:0", back="tcp://127.0.0.1:0", tap=tap) as device:
        pubsub(device, nodes, sockets, "telemetry")
    assert "relay tap raised" in caplog.text


# -- dialling instead of listening ----------------------------------------------------------


def test_relay_can_dial_both_sides(nodes, short_dir):
    """Endpoints listen, the relay dials out to both (e.g. from inside a firewall)."""
    front, back = f"ipc://{short_dir}/pub", f"ipc://{short_dir}/sub"
    with (
        pynng.Pub0(listen=front) as pub,
        pynng.Sub0(listen=back, topics=b"temp.", recv_timeout=200) as sub,
        relay("pubsub", front=front, back=back, dial_front=True, dial_back=True) as device,
    ):
        assert "dialing" in device.describe()
        wait_for(lambda: device.peers == (1, 1), "the relay's two dialers to connect")
        frame = nodes["alice"].seal("telemetry", b"21.5", topic="temp.line1")
        # The relay's outgoing pipe may be up a moment before the publisher's side of the
        # other one; publishing until the first frame arrives makes no timing assumption.
        got = publish_until_received(pub, sub, frame, "the dialling relay")
        assert got == frame
        assert nodes["carol"].open("telemetry", got).payload == b"21.5"


# -- message size -----------------------------------------------------------------------------


def test_default_bound_passes_frames_larger_than_nng_defaults(sockets):
    big = b"\x5a" * (4 << 20)  # four times the policy default max_message_size
    with relay("pipeline", front="tcp://127.0.0.1:0", back="tcp://127.0.0.1:0") as device:
        push = sockets.dial(pynng.Push0, device.front_url)
        pull = sockets.dial(pynng.Pull0, device.back_url)
        connected(device, [push, pull], front=1, back=1)
        push.sock.send(big)
        assert pull.sock.recv() == big
    assert device.max_message_size == DEFAULT_MAX_MESSAGE_SIZE


def test_max_message_size_is_enforced(sockets):
    """pynng's own setter ignores errors; this shows the bound really reaches NNG.

    The small message goes from a second pusher: sending on a Push0 that NNG (1.11, in
    pynng 0.9) is reconnecting after the peer cut it off sometimes loses the message and
    sometimes crashes the process (a use-after-free in push0), whatever the relay does.
    """
    with relay(
        "pipeline", front="tcp://127.0.0.1:0", back="tcp://127.0.0.1:0", max_message_size=4096
    ) as device:
        never = {"reconnect_time_min": 60_000, "reconnect_time_max": 60_000}
        push = sockets.dial(pynng.Push0, device.front_url, **never)
        pull = sockets.dial(pynng.Pull0, device.back_url)
        connected(device, [push, pull], front=1, back=1)
        push.sock.send(b"L" * 8192)  # NNG drops it and closes that connection
        wait_for(lambda: push.up == 0, "the pusher to be cut off")
        assert push.connects == 1
        push.close()
        fresh = sockets.dial(pynng.Push0, device.front_url)
        connected(device, [fresh, pull], front=1, back=1)
        fresh.sock.send(b"small")
        assert pull.sock.recv() == b"small"  # the first thing through: the large one was not


# -- shutdown ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tapped", [False, True])
def test_close_is_prompt_while_forwarding_is_blocked(tapped, sockets):
    """A pipeline relay with no puller blocks inside its send; close() still returns.

    (With nng_device, closing the receiving socket here hangs nng_close for good.)
    """
    before = len(relay_threads())
    tap = (lambda direction, body: None) if tapped else None
    device = relay("pipeline", front="tcp://127.0.0.1:0", back="tcp://127.0.0.1:0", tap=tap)
    push = sockets.dial(pynng.Push0, device.front_url, send_timeout=20)
    connected(device, [push], front=1, back=0)
    sent = 0
    try:
        while sent < 2000:  # until the relay's queues and the pusher's are full
            push.sock.send(b"job %d" % sent)
            sent += 1
    except pynng.Timeout:
        pass
    assert sent > 100  # the relay took messages it cannot deliver: it is blocked
    started = time.monotonic()
    device.close()
    assert time.monotonic() - started < 2.0
    assert device.wait(0) and not device.running and device.error is None
    assert len(relay_threads()) == before
    device.close()  # idempotent


class Load:
    """Keeps messages flowing through a relay from a thread until stopped."""

    def __init__(self, link: Link, *, answer: bool, await_reply: bool) -> None:
        self.link, self.answer, self.await_reply = link, answer, await_reply
        self.received = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                if self.answer:
                    message = self.link.sock.recv()
                    self.received += 1
                    self.link.sock.send(message)
                else:
                    self.link.sock.send(b"load")
                    if self.await_reply:
                        self.link.sock.recv()
            except pynng.NNGException:  # timeouts while the relay closes
                pass

    def has_echoed(self, count: int) -> bool:
        return self.received >= count

    def end(self) -> None:
        self.stop.set()
        self.thread.join(TIMEOUT)


@pytest.mark.parametrize(
    ("pattern", "sender", "receiver"),
    [("pubsub", pynng.Pub0, pynng.Sub0), ("reqrep", pynng.Req0, pynng.Rep0)],
)
def test_close_is_prompt_while_traffic_flows(pattern, sender, receiver):
    """Regression: with nng_device, closing under traffic hung nng_close within a few tries."""
    for attempt in range(5):
        device = relay(pattern, front="tcp://127.0.0.1:0", back="tcp://127.0.0.1:0")
        near = Link(sender, device.front_url, send_timeout=5, recv_timeout=5)
        far = Link(receiver, device.back_url, send_timeout=5, recv_timeout=5)
        if pattern == "pubsub":
            far.sock.subscribe(b"")
        connected(device, [near, far], front=1, back=1)
        reqrep = pattern == "reqrep"
        echo = Load(far, answer=True, await_reply=False)
        loads = [Load(near, answer=False, await_reply=reqrep), echo]
        wait_for(functools.partial(echo.has_echoed, 20), "traffic through the relay")
        closer = threading.Thread(target=device.close, daemon=True)
        started = time.monotonic()
        closer.start()
        closer.join(TIMEOUT)
        assert not closer.is_alive(), f"close() hung on attempt {attempt}"
        assert time.monotonic() - started < 2.0
        assert device.error is None
        for load in loads:
            load.end()
        near.close()
        far.close()


def test_closing_frees_the_addresses(short_dir):
    front, back = f"ipc://{short_dir}/f", f"ipc://{short_dir}/b"
    for _ in range(2):
        with relay("reqrep", front=front, back=back) as device:
            assert device.running
        assert not device.running


def test_relay_object_is_inert_until_started():
    device = Relay("bus", front="inproc://inert-f", back="inproc://inert-b")
    assert not device.running and "not started" in repr(device)
    with device:
        assert device.running and device.peers == (0, 0)
    with pytest.raises(NngsecError, match="already started"):
        device.start()


def test_a_relay_whose_socket_dies_stops_and_says_why():
    """White box: close one raw socket under the running relay, as a failure would."""
    device = relay("reqrep", front="inproc://dies-f", back="inproc://dies-b")
    device._sockets[1].close()
    assert device.wait(TIMEOUT)
    assert device.error is not None
    assert "reqrep relay stopped forwarding" in str(device.error)
    with pytest.raises(NngsecError, match="stopped forwarding"):
        device.serve_forever()
    device.close()


# -- bad input --------------------------------------------------------------------------------


def test_address_in_use_is_one_problem_with_a_hint_and_leaves_nothing_open(short_dir):
    with relay("pubsub", front="tcp://127.0.0.1:0", back=f"ipc://{short_dir}/a") as first:
        taken = first.front_url
        free = f"ipc://{short_dir}/b"
        with pytest.raises(NngsecError) as caught:
            relay("pubsub", front=free, back=taken)
        (problem,) = caught.value.problems
        assert problem.field == "back"
        assert "address already in use" in problem.message and taken in problem.message
        assert "another port" in problem.hint
        # The failed relay had already listened on its front; it must have let go.
        with relay("pubsub", front=free, back="tcp://127.0.0.1:0"):
            pass


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"front": "foo://x"}, "front", "unsupported transport"),
        ({"back": "tcp://256.1.1.1:5"}, "back", "not a valid address"),
        ({"back": "ipc:///nonexistent-dir-nngsec/x"}, "back", "no such directory"),
        ({"front": ""}, "front", "expected an NNG URL"),
        ({"front": "ipc:///tmp/same", "back": "ipc:///tmp/same"}, "back", "both"),
        ({"max_message_size": 0}, "max_message_size", "positive"),
        ({"pattern": "pair"}, "pattern", "no relay for pattern 'pair'"),
    ],
)
def test_bad_input_is_refused_with_a_hint(options, field, words):
    arguments: dict[str, object] = {
        "pattern": "pubsub",
        "front": "inproc://bad-f",
        "back": "inproc://bad-b",
    }
    arguments.update(options)
    pattern = arguments.pop("pattern")
    with pytest.raises(NngsecError) as caught:
        relay(pattern, **arguments)  # type: ignore[arg-type]
    (problem,) = caught.value.problems
    assert problem.field == field
    assert words in problem.message
    assert problem.hint


def test_link_helper_counts_connections_honestly():
    """The tests' own readiness signal must not be true before a connection exists."""
    link = Link(pynng.Pull0, "inproc://nobody-listens-here")
    try:
        time.sleep(0.05)
        assert link.up == 0
    finally:
        link.close()


def test_an_empty_message_is_dropped_and_counted_not_forwarded(short_dir):
    """No nngsec frame is empty (finding 13 of issue 9): the relay never passes one on.
    Over ipc: NNG's inproc transport stalls after a zero-byte message."""
    front, back = f"ipc://{short_dir}/f", f"ipc://{short_dir}/b"
    with (
        relay("pipeline", front=front, back=back) as device,
        pynng.Push0(dial=front) as push,
        pynng.Pull0(dial=back, recv_timeout=int(TIMEOUT * 1000)) as pull,
    ):
        wait_for(lambda: device.peers == (1, 1), "both peers to connect")
        push.send(b"")
        push.send(b"a frame")
        assert pull.recv() == b"a frame"
        assert device.dropped_empty == 1
