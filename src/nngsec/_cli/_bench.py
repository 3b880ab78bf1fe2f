"""``nngsec bench``: secured against plain pynng, same run, same sockets, same buffers.

For each case (a pattern, and on sealed patterns an ``origin:``), payload size and mode
(two threads of one process, or two worker processes started with ``spawn``), the same
traffic runs three ways, alternating so that drift on a shared machine affects all alike:

- **plain**: pynng sockets and nothing else;
- **secured**: the same sockets attached to a policy (``nngsec``);
- **floor**: plain sockets, plus the libsodium calls the scheme makes for each message
  (the AEAD, the signature or the MACs, through ``_crypto``) with nothing around them:
  the most a scheme can deliver in Python with pynng, so that ``secured / floor`` says how
  close to that limit nngsec is.

Each row reports min, median and max over the repeats; ratios are of medians.

How it measures:

- **Throughput** (messages/s): the sender streams; the receiver acknowledges every
  ``ACK_EVERY`` messages on a side channel and the sender keeps at most ``WINDOW``
  unacknowledged. Without this credit, pub/sub and bus (no backpressure) would drop what a
  slower receiver cannot take, and we would measure the sender. The side channel has the
  same buffers as the sockets under test. Reqrep and survey run one exchange at a time,
  so their throughput is 1 / round trip.
- **Latency** (µs, p50/p99): one message at a time, each acknowledged (reqrep and survey:
  the answer), measured by the sender as the round trip.

Every socket has a timeout, every thread is a daemon and every worker process ignores
SIGINT: on Ctrl-C the main thread (which only waits) closes the sockets of the run or
terminates the workers, and the command exits at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import signal
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pynng

from .._errors import NngsecError, Problem
from . import _logs

__all__ = [
    "CASES",
    "HEADER",
    "PATTERNS",
    "BenchResult",
    "Case",
    "format_row",
    "main_table",
    "run_bench",
    "to_json",
]

Case = tuple[str, str | None]  # (pattern, origin); origin None where a pattern has no choice
CASES: tuple[Case, ...] = (
    ("pair", None),
    ("pubsub", "signed"),
    ("pubsub", "mac"),
    ("pipeline", "signed"),
    ("pipeline", "mac"),
    ("reqrep", None),
    ("bus", "signed"),
    ("survey", "signed"),
    ("survey", "mac"),
)
PATTERNS = tuple(dict.fromkeys(pattern for pattern, _ in CASES))
ORIGINS = ("signed", "mac")
VARIANTS = ("plain", "secured", "floor")
WINDOW = 100
ACK_EVERY = 50
BUFFERS = 128  # every socket gets these buffers: the sockets under test and the side channel
TIMEOUT_MS = 20_000  # every send and receive: a lost peer ends a run, it does not hang it
STOP_WAIT = 5.0  # seconds an interrupted run waits for each end to leave NNG
TOPIC = "bench.x"
ASKING = ("reqrep", "survey")  # one exchange at a time
SOCKETS: dict[str, tuple[type[pynng.Socket], type[pynng.Socket]]] = {
    "pair": (pynng.Pair0, pynng.Pair0),
    "bus": (pynng.Bus0, pynng.Bus0),
    "pubsub": (pynng.Pub0, pynng.Sub0),
    "pipeline": (pynng.Push0, pynng.Pull0),
    "reqrep": (pynng.Req0, pynng.Rep0),
    "survey": (pynng.Surveyor0, pynng.Respondent0),
}
_ROLES = {
    "pair": ("members", "members"),
    "bus": ("members", "members"),
    "pubsub": ("publishers", "subscribers"),
    "pipeline": ("pushers", "pullers"),
    "reqrep": ("clients", "servers"),
    "survey": ("surveyors", "respondents"),
}


def _signed_in(case: Case) -> bool:
    """Whether a case's receiver verifies a signature per frame and only takes frames in
    (the rows ``--verify-threads`` applies to)."""
    return case[0] in ("pubsub", "pipeline", "bus") and case[1] == "signed"


def channel_of(case: Case) -> str:
    pattern, origin = case
    return f"bench-{pattern}" + ("-mac" if origin == "mac" else "")


def _policy_channels() -> str:
    lines = ["channels:"]
    for case in CASES:
        pattern, origin = case
        sending, receiving = _ROLES[pattern]
        roles = (
            f"{sending}: [sender, receiver]"
            if sending == receiving
            else f"{sending}: [sender], {receiving}: [receiver]"
        )
        extra = ", origin: mac" if origin == "mac" else ""
        lines.append(
            f"  {channel_of(case)}: {{pattern: {pattern}, {roles}, max_message_size: 1MiB{extra}}}"
        )
    return "\n".join(lines) + "\n"


def make_world(root: Path) -> tuple[str, str]:
    """A policy with a sender and a receiver on one channel per case, keys and all."""
    from .._keys._keystore import Keystore
    from .._policy._admin import rotate

    keystore = Keystore(root / "keys")
    lines = ["nngsec: 1", "name: bench", "identities:"]
    for name in ("sender", "receiver"):
        key, _, _ = keystore.generate(name)
        lines.append(f"  {name}: {key.public.to_text()}")
    policy = root / "bench.yaml"
    policy.write_text("\n".join(lines) + "\n" + _policy_channels())
    rotate(policy)
    return str(policy), str(keystore.directory)


# -- the floor: the libsodium calls of a scheme, and nothing else ---------------------
class FloorCodec:
    """What a scheme does per message in libsodium, around a header of the real size.

    pair and reqrep: one AEAD each way; bus: AEAD and a signature; sealed (pubsub,
    pipeline, survey): AEAD and a signature, or AEAD and one MAC per receiver (one
    here) over one digest; survey responses and reqrep replies: one AEAD. The nonce is a
    session and a counter, as on the wire.
    """

    def __init__(self, case: Case, seed: bytes) -> None:
        from .._keys._identity import IdentityKey
        from .._runtime._schemes import _crypto

        self._crypto = _crypto
        pattern, origin = case
        self.pattern = pattern
        self.proof = "none" if pattern in ("pair", "reqrep") else origin or "signed"
        self.key = hashlib.blake2b(b"floor/key", key=seed, digest_size=32).digest()
        self.reply_key = hashlib.blake2b(b"floor/reply", key=seed, digest_size=32).digest()
        self.mac_key = hashlib.blake2b(b"floor/mac", key=seed, digest_size=32).digest()
        identity = IdentityKey(seed)
        self.secret, self.public = identity.signing_secret, identity.public.sign_key
        topic = TOPIC.encode() + b"\x00" if pattern == "pubsub" else b""
        sealed = pattern in ("pubsub", "pipeline", "survey")
        # topic, version..chan_len, channel, then the 44 fixed bytes (session and seq last
        # here: they are the nonce); sealed frames also carry e_pk || wrapped (80 bytes)
        self.head = topic + bytes(4 + len(channel_of(case)) + 20) + bytes(range(16))
        self.prefix = bytes(80) if sealed else b""
        self.proof_size = {"none": 0, "signed": 64, "mac": 16}[self.proof]
        self.seq = 0

    def _header(self) -> bytes:
        self.seq += 1
        return self.head + struct.pack(">Q", self.seq) + self.prefix

    def seal(self, payload: bytes, reply: bool = False) -> bytes:
        crypto = self._crypto
        header = self._header()
        nonce = header[len(self.head) - 16 : len(self.head) + 8]
        key = self.reply_key if reply else self.key
        ciphertext: bytes = crypto.aead_seal(key, nonce, payload, b"floor\x00" + header)
        proof = b""
        if not reply and self.proof == "signed":
            proof = crypto.sign_frame(self.secret, b"floor\x00", header, ciphertext)
        elif not reply and self.proof == "mac":
            proof = crypto.mac(self.mac_key, crypto.digest(b"floor", header, ciphertext))
        return header + ciphertext + proof

    def open(self, frame: bytes, reply: bool = False) -> bytes:
        crypto = self._crypto
        view = memoryview(frame)
        size = len(self.head) + 8 + len(self.prefix)
        end = len(frame) - (0 if reply else self.proof_size)
        nonce = view[len(self.head) - 16 : len(self.head) + 8].tobytes()
        if not reply and self.proof == "signed":
            if not crypto.verify_frame(self.public, view[end:], b"floor\x00", view[:end]):
                raise RuntimeError("floor: bad signature")
        elif not reply and self.proof == "mac":
            digest = crypto.digest(b"floor", view[:end])
            if not crypto.mac_matches(self.mac_key, digest, view[end:]):
                raise RuntimeError("floor: bad MAC")
        key = self.reply_key if reply else self.key
        payload: bytes | None = crypto.aead_open(
            key, nonce, view[size:end], b"floor\x00" + view[:size]
        )
        if payload is None:
            raise RuntimeError("floor: AEAD does not open")
        return payload


# -- one end of a run -----------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One run: what both ends need to know."""

    case: Case
    variant: str
    size: int
    url: str
    ack_url: str
    plan: tuple[int, int]  # (streamed, latency) messages
    world: tuple[str, str]  # policy file, keystore directory
    seed: bytes  # keys of the floor codec, the same at both ends
    verify_threads: int = 0  # the secured receiver's, on rows whose frames are signed


@dataclass
class Measure:
    """One run: seconds for ``count`` messages, and round trips in seconds."""

    count: int
    seconds: float
    round_trips: list[float]


class Sockets:
    """The sockets of a run, so that an interrupted run can close them all (a socket
    closed under a blocked send or receive makes it return with ``pynng.Closed``)."""

    def __init__(self) -> None:
        self._open: list[pynng.Socket] = []
        self._nodes: list[Any] = []  # secured ends' nodes, closed after the sockets
        self._lock = threading.Lock()
        self.closed = False

    def add(self, sock: pynng.Socket) -> pynng.Socket:
        with self._lock:
            if self.closed:
                sock.close()
                raise pynng.Closed
            self._open.append(sock)
        return sock

    def add_node(self, node: Any) -> None:
        with self._lock:
            self._nodes.append(node)

    def close_all(self) -> None:
        """Close every socket, then every node: a node's replay-state checkpoints stop
        before the bench's directory goes away."""
        with self._lock:
            self.closed = True
            for sock in self._open:
                sock.close()
            for node in self._nodes:
                node.close()


def _tune(sock: pynng.Socket, *, receives: bool, sends: bool) -> None:
    sock.recv_timeout = sock.send_timeout = TIMEOUT_MS
    if receives:
        sock.recv_buffer_size = BUFFERS
        sock.recv_max_size = 0
    if sends:
        sock.send_buffer_size = BUFFERS


class Endpoint:
    """One end of the traffic, the same calls for plain, secured and floor."""

    def __init__(self, task: Task, sending: bool, sockets: Sockets) -> None:
        pattern = task.case[0]
        self.pattern, self.variant = pattern, task.variant
        cls = SOCKETS[pattern][0 if sending else 1]
        sock = sockets.add(cls())
        receives = sock.protocol not in (32, 80)  # Pub0 and Push0 cannot receive
        sends = sock.protocol not in (33, 81)  # Sub0 and Pull0 cannot send
        _tune(sock, receives=receives, sends=sends)
        if pattern == "survey":
            sock.survey_time = TIMEOUT_MS
        self.floor = FloorCodec(task.case, task.seed) if task.variant == "floor" else None
        self.io: Any = sock
        if task.variant == "secured":
            from .._runtime._node import Node

            policy, keys = task.world
            with _logs.quieted():  # the bench's policy is unsigned on purpose: no warning
                node = Node(policy, identity="sender" if sending else "receiver", keystore=keys)
            sockets.add_node(node)
            threads = task.verify_threads if not sending and _signed_in(task.case) else 0
            self.io = node.attach(
                sock, channel_of(task.case), buffers=BUFFERS, verify_threads=threads
            )
            if pattern == "pubsub" and not sending:
                self.io.subscribe("bench.")
        elif pattern == "pubsub" and not sending:
            sock.subscribe(b"bench.")
        if sending:
            sock.dial(task.url, block=False)
        else:
            sock.listen(task.url)

    def send(self, payload: bytes, reply: bool = False) -> None:
        if self.variant == "secured":
            topic = TOPIC if self.pattern == "pubsub" and not reply else None
            self.io.send(payload, topic=topic)
        elif self.floor is not None:
            self.io.send(self.floor.seal(payload, reply))
        elif self.pattern == "pubsub":
            self.io.send(TOPIC.encode() + b"\x00" + payload)  # the same clear topic as secured
        else:
            self.io.send(payload)

    def recv(self, reply: bool = False) -> bytes:
        received = self.io.recv()
        if self.variant == "secured":
            payload: bytes = received.payload
            return payload
        if self.floor is not None:
            return self.floor.open(received, reply)
        return bytes(received)


def _ack_socket(sockets: Sockets) -> pynng.Socket:
    ack = sockets.add(pynng.Pair0())
    _tune(ack, receives=True, sends=True)
    return ack


def receiver_side(task: Task, sockets: Sockets) -> None:
    """Receive the traffic of ``task``, acknowledging as the sender expects."""
    streamed, latency = task.plan
    end = Endpoint(task, False, sockets)
    ack = _ack_socket(sockets)
    ack.listen(task.ack_url)
    if task.case[0] in ASKING:
        # Answer until the sender says it is done (a survey resent during warm-up has
        # more exchanges than planned).
        end.io.recv_timeout = 50
        ack.recv_timeout = 0
        while True:
            try:
                end.send(end.recv(), reply=True)
            except pynng.Timeout:
                try:
                    ack.recv(block=False)
                    return
                except pynng.TryAgain:
                    continue
    end.recv()  # warm-up: acknowledge the first message that makes it through
    ack.send(b"ready")
    count = 0
    while count < streamed:
        end.recv()
        count += 1
        if count % ACK_EVERY == 0 or count == streamed:
            ack.send(struct.pack(">Q", count))
    for _ in range(latency):
        end.recv()
        ack.send(b"k")
    ack.recv()  # hold the sockets open until the sender is done


def _exchange(end: Endpoint, payload: bytes) -> None:
    end.send(payload)
    end.recv(reply=True)


def sender_side(task: Task, sockets: Sockets) -> Measure:
    streamed, latency = task.plan
    payload = bytes(task.size)
    end = Endpoint(task, True, sockets)
    ack = _ack_socket(sockets)
    ack.dial(task.ack_url, block=False)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    if task.case[0] in ASKING:
        end.io.recv_timeout = 200  # warm-up: ask until the first answer comes back
        while True:
            try:
                _exchange(end, payload)
                break
            except pynng.Timeout:
                if time.monotonic() > deadline:
                    raise
        end.io.recv_timeout = TIMEOUT_MS
        start = time.perf_counter()
        for _ in range(streamed):
            _exchange(end, payload)
        seconds = time.perf_counter() - start
        trips = []
        for _ in range(latency):
            began = time.perf_counter()
            _exchange(end, payload)
            trips.append(time.perf_counter() - began)
        ack.send(b"done")
        return Measure(streamed, seconds, trips)
    # warm-up: pub/sub, pipes and buses need a moment; resend until the receiver has one
    ack.recv_timeout = 20
    while True:
        end.send(payload)
        try:
            ack.recv()
            break
        except pynng.Timeout:
            if time.monotonic() > deadline:
                raise
    ack.recv_timeout = TIMEOUT_MS
    acked = 0
    start = time.perf_counter()
    for sent in range(1, streamed + 1):
        end.send(payload)
        while sent - acked >= WINDOW:
            (acked,) = struct.unpack(">Q", ack.recv())
    while acked < streamed:
        (acked,) = struct.unpack(">Q", ack.recv())
    seconds = time.perf_counter() - start
    trips = []
    for _ in range(latency):
        began = time.perf_counter()
        end.send(payload)
        ack.recv()
        trips.append(time.perf_counter() - began)
    ack.send(b"done")
    return Measure(streamed, seconds, trips)


# -- running a task: two threads, or two worker processes -----------------------------
def _failed(task: Task, error: BaseException) -> NngsecError:
    return NngsecError(
        Problem(
            f"the {task.variant} {task.case[0]} run with {task.size}-byte messages failed: "
            f"{type(error).__name__}: {error}",
            hint="rerun it alone (--patterns, --sizes, --modes) to see whether it repeats",
        )
    )


def run_in_threads(task: Task) -> Measure:
    """Both ends as daemon threads; this thread only waits, so Ctrl-C reaches it at once,
    and then closes the run's sockets (which ends both threads)."""
    sockets = Sockets()
    outcome: dict[str, Any] = {}
    # Set by each end as it returns. Not Thread.join: on Python 3.11, a KeyboardInterrupt
    # that lands inside join() marks a thread that is still running as stopped (its
    # tstate lock is released from the outside), and every later join() returns at once
    # (CPython issue 90882).
    ended = {"receiver": threading.Event(), "sender": threading.Event()}

    def guarded(name: str, side: Callable[[Task, Sockets], Any]) -> None:
        try:
            outcome[name] = side(task, sockets)
        except pynng.Closed:
            pass  # interrupted: the sockets were closed under it
        except Exception as error:  # reported by the waiting thread
            outcome[f"{name} error"] = error
        finally:
            ended[name].set()

    threads = [
        threading.Thread(target=guarded, args=("receiver", receiver_side), daemon=True),
        threading.Thread(target=guarded, args=("sender", sender_side), daemon=True),
    ]
    try:
        for thread in threads:
            thread.start()
        for event in ended.values():
            while not event.wait(0.1):
                pass
    finally:
        sockets.close_all()
        # Interrupted: wait until both ends are out of NNG (a closed socket returns them at
        # once). The command exits next, and at exit pynng calls nng_fini, which destroys
        # the locks a thread still inside nng_recv takes on its way out: NNG panics
        # ("pthread_mutex_lock: Invalid argument") and the process aborts. A Ctrl-C can
        # come before a thread was started (no ident yet): that one never entered NNG.
        for thread, event in zip(threads, ended.values(), strict=True):
            if thread.ident is not None:
                event.wait(STOP_WAIT)
    for name in ("sender error", "receiver error"):
        if name in outcome:
            raise _failed(task, outcome[name])
    measure: Measure = outcome["sender"]
    return measure


def _worker(connection: Any) -> None:
    """A worker process: runs one side of each task it is sent, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    previous = Sockets()
    while True:
        order = connection.recv()
        # The previous task's sockets (and nodes) close only now that both ends reported:
        # closed at once, a socket would drop the last message NNG has not written yet
        # (the sender's "done"), and the other end would wait for it until its deadline.
        previous.close_all()
        if order is None:
            return
        side, task = order
        previous = sockets = Sockets()
        try:
            result = (receiver_side if side == "receiver" else sender_side)(task, sockets)
            connection.send(("ok", asdict(result) if isinstance(result, Measure) else None))
        except Exception as error:
            connection.send(("error", f"{type(error).__name__}: {error}"))


class Workers:
    """Two worker processes (``spawn``: nng is not fork-safe), started once for the
    whole bench: a sender and a receiver."""

    def __init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._ends: dict[str, tuple[Any, Any]] = {}
        for side in ("receiver", "sender"):
            here, there = spawn.Pipe()
            process = spawn.Process(target=_worker, args=(there,), daemon=True)
            process.start()
            there.close()
            self._ends[side] = (process, here)

    def run(self, task: Task) -> Measure:
        for side in ("receiver", "sender"):
            self._ends[side][1].send((side, task))
        results = {side: self._wait(side, task) for side in ("sender", "receiver")}
        return Measure(**results["sender"])

    def _wait(self, side: str, task: Task) -> Any:
        process, connection = self._ends[side]
        deadline = time.monotonic() + 3 * TIMEOUT_MS / 1000
        while not connection.poll(0.1):  # short waits: Ctrl-C reaches this thread at once
            if not process.is_alive() or time.monotonic() > deadline:
                raise _failed(task, RuntimeError(f"the {side} process stopped answering"))
        status, value = connection.recv()
        if status != "ok":
            raise _failed(task, RuntimeError(value))
        return value

    def close(self) -> None:
        for process, connection in self._ends.values():
            if process.is_alive():
                with contextlib.suppress(OSError):  # a worker that died closed its end
                    connection.send(None)
        for process, _ in self._ends.values():
            process.join(2)
            self.kill_one(process)

    @staticmethod
    def kill_one(process: Any) -> None:
        if process.is_alive():
            process.terminate()
            process.join(2)

    def kill(self) -> None:
        for process, _ in self._ends.values():
            self.kill_one(process)


# -- the bench ------------------------------------------------------------------------
@dataclass
class BenchResult:
    pattern: str
    origin: str | None
    size: int
    mode: str
    transport: str
    repeats: int
    plain: dict[str, float] = field(default_factory=dict)
    secured: dict[str, float] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)
    verify_threads: int = 0  # the secured receiver verified on this many threads

    @property
    def ratio(self) -> float:
        """Secured throughput as a fraction of plain throughput (medians)."""
        return self.secured["msgs_per_s"] / self.plain["msgs_per_s"]

    @property
    def floor_ratio(self) -> float:
        """The floor's throughput as a fraction of plain: the best a scheme can do here."""
        return self.floor["msgs_per_s"] / self.plain["msgs_per_s"]

    @property
    def of_floor(self) -> float:
        """Secured throughput as a fraction of the floor's: how close to the limit."""
        return self.secured["msgs_per_s"] / self.floor["msgs_per_s"]


def summary(measures: list[Measure], size: int) -> dict[str, float]:
    rates = [m.count / m.seconds for m in measures]
    trips = sorted(t for m in measures for t in m.round_trips)
    rate = statistics.median(rates)
    nan = float("nan")
    return {
        "msgs_per_s": rate,
        "msgs_per_s_min": min(rates),
        "msgs_per_s_max": max(rates),
        "mb_per_s": rate * size / 1e6,
        "p50_us": trips[len(trips) // 2] * 1e6 if trips else nan,
        "p99_us": trips[min(len(trips) - 1, int(len(trips) * 0.99))] * 1e6 if trips else nan,
    }


def plan_for(size: int, quick: bool) -> tuple[int, int]:
    streamed = 4000 if size <= 1024 else 400
    latency = 300 if size <= 1024 else 100
    if quick:
        return streamed // 10, latency // 6
    return streamed, latency


class Progress:
    """Progress and an estimate of the time left, on stderr: one line rewritten in place
    on a terminal, else a line per finished row."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total, self.done = total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def _line(self, what: str) -> str:
        elapsed = time.monotonic() - self.started
        eta = "estimating"
        if self.done:
            eta = f"{elapsed / self.done * (self.total - self.done):.0f} s left"
        return f"bench [{self.done}/{self.total}] {what}, {elapsed:.0f} s, {eta}"

    def step(self, what: str) -> None:
        self.done += 1
        if self.tty:
            self.stream.write("\r\x1b[K" + self._line(what))
            self.stream.flush()

    def row(self, what: str) -> None:
        if not self.tty:
            print(self._line(what), file=self.stream, flush=True)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _label(case: Case) -> str:
    pattern, origin = case
    return pattern + (f"/{origin}" if origin else "")


def run_bench(
    *,
    cases: tuple[Case, ...] = CASES,
    sizes: tuple[int, ...] = (64, 1024, 65536),
    modes: tuple[str, ...] = ("threads", "processes"),
    repeats: int = 3,
    transport: str = "ipc",
    quick: bool = False,
    verify_threads: int = 0,
    on_row: Callable[[BenchResult], None] | None = None,
    progress_stream: Any = None,
) -> list[BenchResult]:
    """The rows of the bench, in order; ``on_row`` is called as each one is done, and
    progress goes to ``progress_stream`` (stderr by default)."""
    results = []
    progress = Progress(len(modes) * len(cases) * len(sizes) * repeats * len(VARIANTS))
    if progress_stream is not None:
        progress = Progress(progress.total, progress_stream)
    with tempfile.TemporaryDirectory(prefix="nngsec-bench-") as root:
        world = make_world(Path(root))
        addresses = _addresses(root, transport)
        for mode in modes:
            workers = Workers() if mode == "processes" else None
            try:
                for case in cases:
                    for size in sizes:
                        result = BenchResult(case[0], case[1], size, mode, transport, repeats)
                        threads = verify_threads if _signed_in(case) else 0
                        result.verify_threads = threads
                        measures: dict[str, list[Measure]] = {v: [] for v in VARIANTS}
                        for repeat in range(repeats):  # alternate, so drift affects all alike
                            for variant in VARIANTS:
                                url, ack_url = next(addresses)
                                task = Task(
                                    case,
                                    variant,
                                    size,
                                    url,
                                    ack_url,
                                    plan_for(size, quick),
                                    world,
                                    hashlib.blake2b(b"%d" % repeat, digest_size=32).digest(),
                                    threads,
                                )
                                run = workers.run if workers is not None else run_in_threads
                                measures[variant].append(run(task))
                                progress.step(f"{mode} {_label(case)} {size} B {variant}")
                        for variant in VARIANTS:
                            setattr(result, variant, summary(measures[variant], size))
                        results.append(result)
                        progress.row(f"{mode} {_label(case)} {size} B")
                        if on_row is not None:
                            on_row(result)
            except BaseException:
                if workers is not None:
                    workers.kill()  # Ctrl-C or a failure: no waiting on a busy worker
                    workers = None
                raise
            finally:
                if workers is not None:
                    workers.close()
    progress.finish()
    return results


def _addresses(root: str, transport: str) -> Iterator[tuple[str, str]]:
    number = 0
    while True:
        number += 1
        if transport == "tcp":
            from socket import socket

            ports = []
            for _ in range(2):
                with socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    ports.append(probe.getsockname()[1])
            yield f"tcp://127.0.0.1:{ports[0]}", f"tcp://127.0.0.1:{ports[1]}"
        elif transport == "inproc":
            yield f"inproc://bench-{number}", f"inproc://ack-{number}"
        else:
            yield f"ipc://{root}/data-{number}", f"ipc://{root}/ack-{number}"


HEADER = (
    f"{'pattern':9} {'origin':6} {'size':>6} {'mode':9} "
    f"{'plain msg/s':>21} {'secured msg/s':>21} {'floor msg/s':>21} "
    f"{'ratio':>6} {'floor':>6} {'of fl.':>6} {'p50 µs plain/sec.':>18}"
)


def _rate(summary: dict[str, float]) -> str:
    """``median [min-max]`` in thousands of messages per second."""
    return (
        f"{summary['msgs_per_s'] / 1e3:7.1f}k "
        f"[{summary['msgs_per_s_min'] / 1e3:.1f}-{summary['msgs_per_s_max'] / 1e3:.1f}]"
    )


def format_row(result: BenchResult) -> str:
    plain, secured = result.plain, result.secured
    latency = f"{plain['p50_us']:.0f}/{secured['p50_us']:.0f}"
    origin = result.origin or "-"
    if result.verify_threads:
        origin = f"sig/{result.verify_threads}"  # signed, verified on that many threads
    return (
        f"{result.pattern:9} {origin:6} {result.size:>6} {result.mode:9} "
        f"{_rate(plain):>21} {_rate(secured):>21} {_rate(result.floor):>21} "
        f"{result.ratio:>6.2f} {result.floor_ratio:>6.2f} {result.of_floor:>6.2f} {latency:>18}"
    )


def to_json(results: list[BenchResult]) -> str:
    """One object per row: pattern, size, mode, origin, plain, secured, ratio, and the
    floor with its ratios."""
    rows = [
        {**asdict(r), "ratio": r.ratio, "floor_ratio": r.floor_ratio, "of_floor": r.of_floor}
        for r in results
    ]
    return json.dumps(rows, indent=2)


def main_table(results: list[BenchResult]) -> str:
    return "\n".join([HEADER, *(format_row(r) for r in results)])


def selected_cases(patterns: tuple[str, ...], origins: tuple[str, ...]) -> tuple[Case, ...]:
    """The cases of ``patterns``; on patterns with a choice, those of ``origins``."""
    return tuple(
        (pattern, origin)
        for pattern, origin in CASES
        if pattern in patterns and (origin is None or pattern == "bus" or origin in origins)
    )
