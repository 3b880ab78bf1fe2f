"""Key-less relays: forward NNG messages between two sides without reading them.

A relay is the "untrusted intermediate device" of the design: it holds no identity, no
policy and no key, so it cannot read an encrypted payload nor forge a secured frame, and
it does not need to. It opens one *raw* socket per side and moves each ``nng_msg``
across unchanged, as ``nng_device`` does: the body byte for byte, and the raw protocol
header (request ids and the backtrace of pipes) too, which is what routes a reply back to
the client that asked.

==========  ======================================  ======================================
pattern     front (faces the initiating side)        back (faces the other side)
==========  ======================================  ======================================
pubsub      raw Sub0, from publishers                raw Pub0, to subscribers
pipeline    raw Pull0, from pushers                  raw Push0, to pullers
reqrep      raw Rep0, from clients                   raw Req0, to servers
survey      raw Respondent0, from surveyors          raw Surveyor0, to respondents
bus         one raw Bus0 socket on both URLs, run as a reflector (every member hears
            every other member, never its own message back)
==========  ======================================  ======================================

A raw Sub0 socket cannot subscribe and does not filter: it receives everything, and the
subscribers behind the relay filter by prefix themselves. That works for secured traffic
because a pubsub frame starts with its clear ``topic || 0x00`` (wire format, binding).

Why not ``nng_device`` itself: with the NNG 1.11.0 that pynng 0.9.0 ships, a running
device could not be stopped reliably in stress loops (see ``docs/relay.md``). Closing its
sockets while messages flow blocked ``nng_close`` for good (NNG's close waits for every
reference to the socket, and the device holds one on both), as did closing the receiving
socket of a pipeline device blocked sending to the other one; and cancelling
``nng_device_aio`` first was sometimes lost (seemingly when it lands between the device's
receive and its send). So each direction is a thread doing what the device does,
``nng_recvmsg`` then ``nng_sendmsg`` of the same message, with a short timeout on both so
that the thread looks at a stop flag in between. :meth:`Relay.close` sets the flag, joins
the threads and only then closes the sockets: no NNG call is ever in flight on a socket
being closed, so shutdown cannot hang.

``tap=`` hands every forwarded body to a callback just before the message is sent on,
from the same loop: what a test observes is what the relay forwards, byte for byte.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import pynng
from pynng import ffi, lib

from ._errors import NngsecError, Problem, UsageError
from ._patterns import PATTERNS as PATTERNS_BY_NAME
from ._patterns import RELAY_PATTERN_NAMES, Pattern, PatternSpec, pattern_of

__all__ = [
    "DEFAULT_BUFFER",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "PATTERNS",
    "Direction",
    "Peers",
    "Relay",
    "RelayPattern",
    "Tap",
    "relay",
]

logger = logging.getLogger(__name__)  # under "nngsec", like every logger of nngsec

RelayPattern = Pattern
PATTERNS: tuple[str, ...] = RELAY_PATTERN_NAMES

Direction = Literal["to-back", "to-front", "reflected"]
"""Which way a tapped message went: front to back, back to front, or round a bus."""

Tap = Callable[[Direction, bytes], None]

DEFAULT_MAX_MESSAGE_SIZE = 16 << 20
"""Largest message (bytes) the relay accepts from a peer.

The relay cannot know the channels' ``max_message_size`` (it has no policy), so the
bound is generous: 16 times the policy default of 1 MiB. It still has to exist: with no
bound, one peer could make the relay allocate whatever length it announces. A larger
message is dropped by NNG, which also closes that connection (the peer redials).
"""

DEFAULT_BUFFER = 128
"""Messages queued per socket and direction; small queues cost throughput in bursts."""

_POLL_MS = 100  # how long a forwarding thread may block before looking at the stop flag

_RECONNECT_MIN_MS = 100
_RECONNECT_MAX_MS = 5000  # back off to 5 s while the far side of a dialled URL is down
_TCP_SCHEMES = ("tcp", "tcp4", "tcp6", "tls+tcp", "tls+tcp4", "tls+tcp6", "ws", "wss")


@dataclass(frozen=True, slots=True)
class _Spec:
    front: Callable[[Any], int]  # the pynng.lib opener of the raw front socket
    back: Callable[[Any], int] | None  # None: the front socket serves both URLs (reflector)
    front_faces: str
    back_faces: str
    two_way: bool  # whether replies (or bus traffic) also travel back to the front


def _opener(socket_class: str) -> Callable[[Any], int]:
    """NNG's raw opener for a pynng socket class: ``Sub0`` -> ``nng_sub0_open_raw``."""
    opener: Callable[[Any], int] = getattr(lib, f"nng_{socket_class.lower()}_open_raw")
    return opener


def _spec(pattern: PatternSpec) -> _Spec:
    front, back = pattern.relay_sockets()
    return _Spec(
        _opener(front),
        _opener(back) if back is not None else None,
        pattern.initiator.field,
        pattern.receiver.field,
        pattern.has_replies or pattern.symmetric,
    )


_SPECS: dict[str, _Spec] = {name: _spec(PATTERNS_BY_NAME[name]) for name in RELAY_PATTERN_NAMES}


class Peers(NamedTuple):
    """Connections a relay currently has on each side."""

    front: int
    back: int


def _strerror(code: int) -> str:
    return str(ffi.string(lib.nng_strerror(code)).decode(errors="replace"))


def _check(code: int, what: str) -> None:
    if code != 0:
        raise NngsecError(
            Problem(
                f"{what}: {_strerror(code)}",
                hint="NNG refused a relay socket setting; please report it",
            )
        )


class Relay:
    """A key-less forwarding device for one messaging pattern; see the module docstring.

    ``front`` and ``back`` are NNG URLs; the relay listens on both unless ``dial_front``
    or ``dial_back`` says to dial that one instead (dialling retries in the background
    until the far side is up). A TCP URL with port 0 (or none) listens on a free port;
    :attr:`front_url` and :attr:`back_url` then name the port actually bound.

    ``max_message_size`` bounds what a peer may send (``None``: no bound, see
    :data:`DEFAULT_MAX_MESSAGE_SIZE`). ``tap`` is called as ``tap(direction, body)`` with
    every body the relay forwards, from the relay's threads; an exception in it is logged
    and the message is forwarded anyway. An empty message is never forwarded (no nngsec
    frame is empty, and an empty message stalls some NNG transports and pynng 0.9
    receivers): it is dropped and counted in :attr:`dropped_empty`.

    Nothing opens until :meth:`start` (or ``with``); :func:`relay` does both.
    """

    def __init__(
        self,
        pattern: RelayPattern | str,
        *,
        front: str,
        back: str,
        dial_front: bool = False,
        dial_back: bool = False,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        buffer: int = DEFAULT_BUFFER,
        tap: Tap | None = None,
    ) -> None:
        problems = _check_arguments(pattern, front, back, dial_front, dial_back, max_message_size)
        if not 1 <= buffer <= 8192:
            problems.append(
                Problem(f"buffer is {buffer}, expected 1 to 8192 messages", field="buffer")
            )
        if problems:
            raise UsageError(problems)
        self.pattern = pattern
        self.front = front
        self.back = back
        self.dial_front = dial_front
        self.dial_back = dial_back
        self.max_message_size = max_message_size
        self.buffer = buffer
        self.tap = tap
        self._spec = _SPECS[pattern]
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._started = False
        self._sockets: list[Any] = []  # pynng.Socket: [front] or [front, back]
        self._threads: list[threading.Thread] = []
        self._stopping = False  # read by the forwarding threads between two NNG calls
        self._running = 0
        self._dropped_empty = 0
        self._error: NngsecError | None = None
        self._front_url = front
        self._back_url = back
        # Which endpoint (listener or dialer id) is on which side, and which endpoint each
        # live pipe came through; resolved only when asked, because a peer can connect
        # before listen() has returned the endpoint's id to us.
        self._endpoints: dict[tuple[str, int], str] = {}
        self._pipes: dict[int, tuple[str, int]] = {}

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> Relay:
        """Open the raw sockets, listen or dial, and start forwarding in the background."""
        with self._lock:
            if self._started:
                raise UsageError(Problem("the relay is already started", hint="start() it once"))
            self._started = True
        try:
            front = self._open(self._spec.front)
            back = front if self._spec.back is None else self._open(self._spec.back)
            self._front_url = self._attach(front, "front", self.front, self.dial_front)
            self._back_url = self._attach(back, "back", self.back, self.dial_back)
        except BaseException:
            self._close_sockets()
            self._done.set()
            raise
        self._launch(front, back)
        logger.info("%s", self.describe(), extra={"pattern": self.pattern})
        return self

    def close(self) -> None:
        """Stop forwarding and close both sides; returns once everything is closed.

        Takes at most about 0.1 s (the forwarding threads' poll interval). Idempotent.
        Messages still queued inside the relay are dropped, as when any NNG socket closes.
        """
        with self._lock:
            self._stopping = True
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join()
        if all(not thread.is_alive() for thread in self._threads):
            self._close_sockets()  # only now: no NNG call is in flight on them any more
        self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the relay stopped (closed, or failed); ``False`` on timeout."""
        return self._done.wait(timeout)

    def serve_forever(self) -> None:
        """Block until the relay stops; raise :attr:`error` if it stopped by failing."""
        self.wait()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> Relay:
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- what it is doing -----------------------------------------------------------------
    @property
    def front_url(self) -> str:
        """The front URL, with the bound port when it listens on TCP port 0."""
        return self._front_url

    @property
    def back_url(self) -> str:
        """The back URL, with the bound port when it listens on TCP port 0."""
        return self._back_url

    @property
    def running(self) -> bool:
        return self._started and not self._done.is_set()

    @property
    def error(self) -> NngsecError | None:
        """Why the relay stopped on its own, if it did (``None`` after a clean close)."""
        return self._error

    @property
    def dropped_empty(self) -> int:
        """How many empty messages the relay dropped instead of forwarding."""
        with self._lock:
            return self._dropped_empty

    @property
    def peers(self) -> Peers:
        """How many peers are connected on the front and on the back right now."""
        with self._lock:
            sides = [self._endpoints.get(endpoint) for endpoint in self._pipes.values()]
        return Peers(sides.count("front"), sides.count("back"))

    def describe(self) -> str:
        """One line: the pattern, both URLs, how each is reached and whom it faces."""
        spec = self._spec
        arrow = "<->" if spec.two_way else "->"
        front = "dialing" if self.dial_front else "listening"
        back = "dialing" if self.dial_back else "listening"
        return (
            f"{self.pattern} relay: front {self._front_url} ({front}, for {spec.front_faces}) "
            f"{arrow} back {self._back_url} ({back}, for {spec.back_faces}); key-less, "
            "bodies forwarded unchanged"
        )

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._started else "not started")
        return f"<Relay {self.pattern} {self._front_url} -> {self._back_url} {state}>"

    # -- internals ------------------------------------------------------------------------
    def _open(self, opener: Callable[[Any], int]) -> Any:
        sock = pynng.Socket(opener=opener)
        self._sockets.append(sock)
        handle = sock.socket
        # pynng's setters for size options ignore NNG's answer, so set them directly.
        limit = 0 if self.max_message_size is None else self.max_message_size
        _check(lib.nng_socket_set_size(handle, b"recv-size-max", limit), "recv-size-max")
        for option in (b"recv-buffer", b"send-buffer"):
            code = lib.nng_socket_set_int(handle, option, self.buffer)
            if code not in (0, lib.NNG_ENOTSUP):
                _check(code, option.decode())
        # Keepalive finds peers that vanished behind a NAT or a dead host; not every
        # transport has it, and the socket passes the setting on to TCP endpoints only.
        code = lib.nng_socket_set_bool(handle, b"tcp-keepalive", True)
        if code not in (0, lib.NNG_ENOTSUP):
            _check(code, "tcp-keepalive")
        for option in (b"recv-timeout", b"send-timeout"):
            _check(lib.nng_socket_set_ms(handle, option, _POLL_MS), option.decode())
        _check(lib.nng_socket_set_ms(handle, b"reconnect-time-min", _RECONNECT_MIN_MS), "reconnect")
        _check(lib.nng_socket_set_ms(handle, b"reconnect-time-max", _RECONNECT_MAX_MS), "reconnect")
        sock.add_post_pipe_connect_cb(self._pipe_added)
        sock.add_post_pipe_remove_cb(self._pipe_removed)
        return sock

    def _attach(self, sock: Any, side: str, url: str, dial: bool) -> str:
        verb = "dial" if dial else "listen on"
        try:
            if dial:
                # Non-blocking: a relay may start before what it dials, and pynng's
                # default (block, then log a traceback and retry) is noisy.
                endpoint = sock.dial(url, block=False)
                kind, ident = "dialer", int(lib.nng_dialer_id(endpoint.dialer))
            else:
                endpoint = sock.listen(url)
                kind, ident = "listener", int(lib.nng_listener_id(endpoint.listener))
        except pynng.NNGException as error:
            raise NngsecError(_endpoint_problem(side, verb, url, error)) from None
        with self._lock:
            self._endpoints[(kind, ident)] = side
        return url if dial else _bound_url(url, endpoint.listener)

    def _pipe_added(self, pipe: Any) -> None:
        listener = int(lib.nng_listener_id(lib.nng_pipe_listener(pipe.pipe)))
        if listener > 0:
            endpoint = ("listener", listener)
        else:
            endpoint = ("dialer", int(lib.nng_dialer_id(lib.nng_pipe_dialer(pipe.pipe))))
        with self._lock:
            self._pipes[int(pipe.id)] = endpoint

    def _pipe_removed(self, pipe: Any) -> None:
        with self._lock:
            self._pipes.pop(int(pipe.id), None)

    def _launch(self, front: Any, back: Any) -> None:
        name = f"nngsec-relay-{self.pattern}"
        if back is front:
            # A bus "reflector": raw Bus0 sends a message to every pipe except the one
            # named in its header, which is the pipe it was received from.
            jobs = [(front.socket, front.socket, "reflected")]
        else:
            # Messages enter at the front (raw Sub0 and Pull0 only receive); replies and
            # survey responses also come back.
            jobs = [(front.socket, back.socket, "to-back")]
            if self._spec.two_way:
                jobs.append((back.socket, front.socket, "to-front"))
        with self._lock:
            self._running = len(jobs)
        for source, target, direction in jobs:
            thread = threading.Thread(
                target=self._forward, args=(source, target, direction), name=name, daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _forward(self, source: Any, target: Any, direction: Direction) -> None:
        """``nng_device``'s loop for one direction, stoppable between any two NNG calls."""
        tap = self.tap
        timeout = lib.NNG_ETIMEDOUT
        holder = ffi.new("nng_msg **")
        code = 0
        try:
            while not self._stopping:
                code = int(lib.nng_recvmsg(source, holder, 0))
                if code == timeout:
                    code = 0
                    continue
                if code != 0:
                    break
                message = holder[0]
                if lib.nng_msg_len(message) == 0:  # not a frame: cheapest drop there is
                    lib.nng_msg_free(message)
                    with self._lock:
                        self._dropped_empty += 1
                    continue
                if tap is not None:
                    body = ffi.buffer(lib.nng_msg_body(message), lib.nng_msg_len(message))[:]
                    try:
                        tap(direction, body)
                    except Exception:  # an observer must not stop the traffic it observes
                        logger.exception(
                            "relay tap raised; the message is forwarded anyway",
                            extra={"pattern": self.pattern},
                        )
                # The nng_msg itself goes on, header included, exactly as nng_device does.
                # A send that times out (a Push0 with no puller) keeps the message: retry.
                code = int(lib.nng_sendmsg(target, message, 0))
                while code == timeout and not self._stopping:
                    code = int(lib.nng_sendmsg(target, message, 0))
                if code != 0:
                    lib.nng_msg_free(message)  # a failed send leaves the message ours
                    if code != timeout:
                        break
                    code = 0
        finally:
            self._finished(code)

    def _finished(self, code: int) -> None:
        with self._lock:
            self._running -= 1
            last = self._running <= 0
            failed = code != 0 and self._error is None
            if failed:
                self._error = NngsecError(
                    Problem(
                        f"{self.pattern} relay stopped forwarding: {_strerror(code)}",
                        hint="restart the relay; if it happens again, report it",
                    )
                )
            self._stopping = True  # one direction failing stops the other, as in nng_device
        if failed:
            logger.error("%s", self._error, extra={"pattern": self.pattern})
        if last:
            # Every forwarding thread has returned, so closing cannot race with them.
            self._close_sockets()
            self._done.set()

    def _close_sockets(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
            self._pipes.clear()
        for sock in sockets:
            sock.close()


def relay(
    pattern: RelayPattern | str,
    *,
    front: str,
    back: str,
    dial_front: bool = False,
    dial_back: bool = False,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    buffer: int = DEFAULT_BUFFER,
    tap: Tap | None = None,
) -> Relay:
    """Start a key-less relay for ``pattern`` between ``front`` and ``back``; see :class:`Relay`.

    The relay runs in background threads until closed: use it as a context manager or
    call :meth:`Relay.close`. Raises :class:`nngsec.NngsecError` (nothing left open) when a
    URL is invalid or already in use.
    """
    return Relay(
        pattern,
        front=front,
        back=back,
        dial_front=dial_front,
        dial_back=dial_back,
        max_message_size=max_message_size,
        buffer=buffer,
        tap=tap,
    ).start()


def _check_arguments(
    pattern: str,
    front: str,
    back: str,
    dial_front: bool,
    dial_back: bool,
    max_message_size: int | None,
) -> list[Problem]:
    problems: list[Problem] = []
    if pattern not in _SPECS:
        hint = f"relay patterns are {', '.join(PATTERNS)}"
        known = pattern_of(pattern)
        if known is not None and known.no_relay is not None:
            hint += f"; {known.no_relay}"
        problems.append(Problem(f"no relay for pattern {pattern!r}", field="pattern", hint=hint))
    for side, url in (("front", front), ("back", back)):
        if not isinstance(url, str) or not url:
            problems.append(
                Problem(
                    f"got {url!r}, expected an NNG URL",
                    field=side,
                    hint="e.g. tcp://0.0.0.0:5555, ipc:///run/app.sock or inproc://name",
                )
            )
    if front == back and not dial_front and not dial_back and not _any_port(front):
        problems.append(
            Problem(
                f"front and back are both {front!r}",
                field="back",
                hint="a relay sits between two addresses; give the back another one",
            )
        )
    if max_message_size is not None and (
        isinstance(max_message_size, bool)
        or not isinstance(max_message_size, int)
        or max_message_size <= 0
    ):
        problems.append(
            Problem(
                f"got {max_message_size!r}, expected a positive number of bytes or None",
                field="max_message_size",
                hint="None removes the bound",
            )
        )
    return problems


# What NNG's refusal to listen or dial means, and what to do about it.
_ENDPOINT_ERRORS: tuple[tuple[type[Exception], str, str], ...] = (
    (
        pynng.AddressInUse,
        "address already in use",
        "another process (perhaps another relay) is listening there; stop it or pick another port",
    ),
    (
        pynng.NotSupported,
        "unknown or unsupported transport",
        "URLs look like tcp://HOST:PORT, ipc:///PATH, inproc://NAME or ws://HOST:PORT/PATH",
    ),
    (
        pynng.AddressInvalid,
        "not a valid address here",
        "check the host is an address of this machine (or 0.0.0.0) and the port is 0-65535",
    ),
    (pynng.NoEntry, "no such directory", "an ipc:// path must be in an existing directory"),
    (
        pynng.PermissionDenied,
        "permission denied",
        "ports below 1024 need privileges; an ipc:// path needs a writable directory",
    ),
)


def _endpoint_problem(side: str, verb: str, url: str, error: Exception) -> Problem:
    for kind, meaning, hint in _ENDPOINT_ERRORS:
        if isinstance(error, kind):
            return Problem(f"cannot {verb} {url}: {meaning}", field=side, hint=hint)
    return Problem(f"cannot {verb} {url}: {error}", field=side, hint="check the URL")


def _any_port(url: str) -> bool:
    """Whether ``url`` asks for a free TCP port (port 0 or none), so two uses differ."""
    parts = urlsplit(url)
    try:
        return parts.scheme in _TCP_SCHEMES and not parts.port
    except ValueError:
        return False


def _bound_url(url: str, listener: Any) -> str:
    """``url`` with the port the listener really bound, when it asked for port 0."""
    if not _any_port(url):
        return url
    parts = urlsplit(url)
    port = ffi.new("int *")
    if lib.nng_listener_get_int(listener, b"tcp-bound-port", port) != 0:
        return url
    host = parts.netloc
    if parts.port is not None or host.endswith(":"):
        host = host.rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{host}:{port[0]}"))
