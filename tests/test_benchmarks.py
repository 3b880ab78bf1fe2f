"""The benchmarks still run (a smoke run each; figures are measured, not asserted).

In this process: ``nngsec bench`` through the ``cli`` fixture, the modules of
``benchmarks/`` as ``python -m`` would run them (``runpy``, ``--quick`` in ``sys.argv``).
Ctrl-C in a real child process (signals are a process's business).
"""

from __future__ import annotations

import _thread
import contextlib
import json
import logging
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pynng
import pytest

from nngsec._cli import _bench
from tests.net import wait_for


@pytest.fixture
def run_module(monkeypatch, capsys):
    """``python -m MODULE --quick`` in this process: its exit status 0, and its stdout."""

    def run(module: str) -> str:
        monkeypatch.setattr(sys, "argv", [module, "--quick"])
        monkeypatch.setattr(sys, "path", list(sys.path))  # main() puts the repository first
        ours = logging.getLogger("nngsec")
        level = ours.level
        try:
            with pytest.raises(SystemExit) as exited:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
        finally:
            ours.setLevel(level)  # main() quietens the nngsec logger
        captured = capsys.readouterr()
        assert exited.value.code == 0, captured.err
        out: str = captured.out
        return out

    return run


def test_codec_benchmark_runs(run_module):
    assert "sealed (cached content key)" in run_module("benchmarks.codec")


@pytest.mark.slow
def test_bench_command_runs_every_case(cli):
    run = cli("bench", "--quick", "--sizes", "64", "--modes", "threads", "--format", "json")
    assert run.code == 0, run.err
    rows = json.loads(run.out)
    assert {(r["pattern"], r["origin"]) for r in rows} == set(_bench.CASES)
    assert {r["pattern"] for r in rows} == {"pair", "bus", "pubsub", "pipeline", "reqrep", "survey"}
    for row in rows:
        for variant in ("plain", "secured", "floor"):
            assert row[variant]["msgs_per_s"] > 0, (row["pattern"], variant)


def test_bench_json_has_one_object_per_row(cli):
    """pattern, size, mode, origin, plain, secured, ratio, and the floor with its ratios;
    min, median and max of each variant's rate; progress on stderr, JSON alone on stdout."""
    run = cli(
        "bench", "--quick", "--patterns", "pair,pipeline", "--origins", "mac", "--sizes", "64",
        "--modes", "threads", "--repeats", "2", "--format", "json",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "WARNING" not in run.err
    assert logging.getLogger("nngsec").level == logging.NOTSET  # quieted at the handlers only
    rows = json.loads(run.out)
    assert [(r["pattern"], r["origin"], r["size"], r["mode"]) for r in rows] == [
        ("pair", None, 64, "threads"),
        ("pipeline", "mac", 64, "threads"),
    ]
    for row in rows:
        assert {"pattern", "size", "mode", "origin", "plain", "secured", "ratio"} <= set(row)
        assert {"floor", "floor_ratio", "of_floor", "transport", "repeats"} <= set(row)
        assert row["repeats"] == 2 and row["transport"] == "ipc"
        for variant in ("plain", "secured", "floor"):
            rates = row[variant]
            assert rates["msgs_per_s_min"] <= rates["msgs_per_s"] <= rates["msgs_per_s_max"]
            assert {"mb_per_s", "p50_us", "p99_us"} <= set(rates)
        assert row["ratio"] == pytest.approx(
            row["secured"]["msgs_per_s"] / row["plain"]["msgs_per_s"]
        )
        assert row["of_floor"] == pytest.approx(
            row["secured"]["msgs_per_s"] / row["floor"]["msgs_per_s"]
        )
    progress = run.err.splitlines()
    assert progress and all(line.startswith("bench [") for line in progress), run.err
    assert progress[-1].startswith("bench [12/12] threads pipeline/mac 64 B")
    assert progress[-1].endswith("0 s left")


def test_bench_text_table_has_a_row_per_case(cli):
    run = cli("bench", "--quick", "--patterns", "bus", "--sizes", "64", "--modes", "threads")
    assert run.code == 0, run.err
    header, row = run.out.splitlines()
    assert header == _bench.HEADER
    assert row.split()[:4] == ["bus", "signed", "64", "threads"]


@pytest.mark.parametrize("case", _bench.CASES, ids=lambda c: "/".join(filter(None, c)))
def test_the_floor_makes_the_schemes_checks(case):
    """The floor is not a no-op: it opens what it sealed and refuses a changed frame."""
    floor = _bench.FloorCodec(case, bytes(32))
    frame = floor.seal(b"payload")
    assert floor.open(frame) == b"payload"
    changed = bytearray(frame)
    changed[-1] ^= 1
    with pytest.raises(RuntimeError, match="floor"):
        floor.open(bytes(changed))
    reply = floor.seal(b"answer", reply=True)
    assert floor.open(reply, reply=True) == b"answer"


def test_the_side_channel_has_the_buffers_of_the_sockets_under_test():
    sockets = _bench.Sockets()
    try:
        ack = _bench._ack_socket(sockets)
        assert (ack.recv_buffer_size, ack.send_buffer_size) == (_bench.BUFFERS, _bench.BUFFERS)
        assert ack.recv_timeout == ack.send_timeout == _bench.TIMEOUT_MS
    finally:
        sockets.close_all()


class _Orders:
    """The pipe from the bench's parent to a worker: two tasks, then the end. It notes,
    when the worker reports and when it asks for the next order, whether the sockets of
    the task it ran are still open."""

    def __init__(self, seen: list[_bench.Sockets]) -> None:
        self.orders: list[object] = [("sender", "task 1"), ("receiver", "task 2"), None]
        self.seen = seen
        self.open_when_reported: list[bool] = []
        self.open_when_asked: list[bool] = []

    def recv(self) -> object:
        if self.seen:
            self.open_when_asked.append(not self.seen[-1].closed)
        return self.orders.pop(0)

    def send(self, report: object) -> None:
        assert report == ("ok", None)
        self.open_when_reported.append(not self.seen[-1].closed)


def test_a_worker_closes_a_tasks_sockets_when_the_next_order_comes(monkeypatch):
    """Closed right after its task, a sender's socket could drop the last message NNG had
    not written yet, and the other end waited for it until the run's deadline (a reqrep
    64 KiB run hung): a worker keeps them open until both ends reported, i.e. until its
    next order (or the end) arrives, then closes them."""
    seen: list[_bench.Sockets] = []

    def side(task: object, sockets: _bench.Sockets) -> None:
        seen.append(sockets)

    monkeypatch.setattr(_bench, "sender_side", side)
    monkeypatch.setattr(_bench, "receiver_side", side)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # not this process's SIGINT
    orders = _Orders(seen)
    _bench._worker(orders)
    assert len(seen) == 2
    assert orders.open_when_reported == [True, True]
    assert orders.open_when_asked == [True, True]  # the next order, then the end
    assert all(sockets.closed for sockets in seen)


def test_an_interrupted_run_in_threads_returns_only_once_both_ends_left_nng(monkeypatch):
    """Ctrl-C during a run in threads: the run's sockets are closed, and it returns only
    when both ends are out of their NNG calls. The command exits right after, and at exit
    pynng's nng_fini destroys the locks that a thread still inside nng_recv takes on its
    way out: NNG panicked and the process aborted (SIGABRT) instead of exiting with 130.
    Each end here takes a while to leave after its socket is closed, as a thread that is
    not scheduled at once does."""
    out_of_nng: list[str] = []

    def side(name: str) -> object:
        def run(task: object, sockets: _bench.Sockets) -> None:
            sock = sockets.add(pynng.Pair0(recv_timeout=20_000))
            sock.listen(f"inproc://interrupted-{name}-{os.getpid()}")
            try:
                sock.recv()  # until the interrupted run closes the socket
            finally:
                time.sleep(0.3)  # still on its way out
                out_of_nng.append(name)

        return run

    monkeypatch.setattr(_bench, "receiver_side", side("receiver"))
    monkeypatch.setattr(_bench, "sender_side", side("sender"))
    interrupt = threading.Timer(0.3, _thread.interrupt_main)
    interrupt.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _bench.run_in_threads(object())  # type: ignore[arg-type]
    finally:
        interrupt.cancel()
    assert sorted(out_of_nng) == ["receiver", "sender"]


def test_a_ctrl_c_before_the_second_end_started_is_still_an_interrupt(monkeypatch):
    """Ctrl-C while the run starts its threads (one started, one not): the run ends with
    KeyboardInterrupt, waiting for the started end only; the other never entered NNG.
    (Waiting for every thread made it an internal error, "cannot join thread before it
    is started".)"""
    left: list[str] = []
    receiving = threading.Event()

    def receiver(task: object, sockets: _bench.Sockets) -> None:
        sock = sockets.add(pynng.Pair0(recv_timeout=20_000))
        sock.listen(f"inproc://half-started-{os.getpid()}")
        try:
            receiving.set()
            sock.recv()  # until the interrupted run closes the socket
        finally:
            time.sleep(0.3)  # still on its way out
            left.append("receiver")

    class Interrupted(threading.Thread):
        def start(self) -> None:
            if self._args[:1] == ("sender",):  # type: ignore[attr-defined]
                assert receiving.wait(10)
                raise KeyboardInterrupt  # as if Ctrl-C came just before this start
            super().start()

    monkeypatch.setattr(_bench, "receiver_side", receiver)
    monkeypatch.setattr(threading, "Thread", Interrupted)  # _bench's threading: this module
    with pytest.raises(KeyboardInterrupt):
        _bench.run_in_threads(object())  # type: ignore[arg-type]
    assert left == ["receiver"]


def test_bad_bench_options_are_one_line_errors(cli):
    for args, text in (
        (("--repeats", "0"), "--repeats must be at least 1"),
        (("--transport", "inproc"), "inproc cannot cross processes"),
        (("--origins", "group"), "unknown group"),
    ):
        run = cli("bench", *args)
        assert run.code == 2 and text in run.err, run.err
        assert "Traceback" not in run.err


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_ctrl_c_stops_the_bench_at_once(mode):
    """A real ``nngsec bench`` and a real SIGINT while it measures: it exits promptly with
    status 130, without a traceback, and leaves no worker process behind. (It used to hang
    for ever in threading._shutdown, a thread blocked in the side channel's send.)"""
    bench = subprocess.Popen(
        [sys.executable, "-m", "nngsec", "bench", "--quick", "--modes", mode, "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert bench.stderr is not None
        first = bench.stderr.readline()  # a row is done: it is measuring the next one
        assert first.startswith("bench ["), first
        workers = _children(bench.pid) if mode == "processes" else set()
        assert mode == "threads" or len(workers) >= 2, workers
        interrupted = time.monotonic()
        bench.send_signal(signal.SIGINT)
        out, err = bench.communicate(timeout=30)
        stopped = time.monotonic() - interrupted
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.communicate()
    assert bench.returncode == 130, err
    assert stopped < 10, f"took {stopped:.1f} s to stop"
    assert "bench interrupted" in err
    assert "Traceback" not in err + out
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), what="workers")


def test_rep_server_benchmark_runs(run_module):
    assert "reply cache" in run_module("benchmarks.rep_server")


def test_async_receive_benchmark_runs(run_module):
    assert "SecureSocket.arecv" in run_module("benchmarks.async_recv")


@pytest.mark.slow
def test_policy_limits_benchmark_runs(run_module):
    out = run_module("benchmarks.policy_limits")
    assert "| pins the admin |" in out and "(modified after sig" in out
    assert "| keys, 2 epochs |" in out
