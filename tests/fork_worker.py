"""The forking half of ``tests/test_fork.py``, run as ``python -m tests.fork_worker`` in a
fresh interpreter that has one thread only (see ``_libc_fork`` for why it must).

It reads one JSON object on stdin::

    {"policy": PATH, "keystore": DIR, "now": SECONDS, "child_deadline": SECONDS,
     "cases": [{"id": ..., "fork": "os.fork" | "libc fork", "channel": ..., "identity": ...,
                "topic": ... | null, "requests": [HEX, ...]}, ...]}

and runs the cases in order. A case with ``requests`` is a server: it opens the requests,
answers the first one before the fork, then parent and child each answer one of their own;
a case without them seals on ``channel`` before the fork, then parent and child each seal
one frame. For each case it writes one JSON line on stdout as soon as the case is done:
``{"id": ..., "frames": [BEFORE, PARENT, CHILD]}`` (hex) or ``{"id": ..., "error": TEXT}``.
The test process checks the frames (it holds the receivers and the clients).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from nngsec import Keystore, Node, Policy, load_policy

Seal = Callable[[bytes], bytes]


class CaseFailed(Exception):
    """A case could not run to the end (the message says why)."""


def _libc_fork() -> int:
    """fork(2) without Python's at-fork handlers (as a C extension forking would).

    Through ``PyDLL``, which keeps the GIL during the call, as C code called from Python
    holds it. The child then still inherits the GIL's synchronisation state as it was at
    the fork, and only ``PyOS_AfterFork_Child()`` (which this fork skips) rebuilds it: if
    another thread was waiting for the GIL then, the child's first release of the GIL
    blocks forever, in ``drop_gil`` signalling ``gil->cond`` (glibc waits for the waiters
    of the parent's threads to leave the condition variable) or waiting on ``switch_cond``
    under an inherited ``gil_drop_request`` (for a thread to take the GIL). So this fork is
    only ever made in a process that has no other thread: ``_check_one_thread``."""
    fork = ctypes.PyDLL(None, use_errno=True).fork
    fork.restype = ctypes.c_int
    pid = int(fork())
    if pid < 0:
        raise OSError(ctypes.get_errno(), "fork(2) failed")
    return pid


FORKS: dict[str, Callable[[], int]] = {"os.fork": os.fork, "libc fork": _libc_fork}


def _check_one_thread() -> None:
    """Fail the case, rather than hang its child, when this process has another thread
    (one of Python's, or one of C code's that could take the GIL) at the fork."""
    if threading.active_count() != 1:
        names = [thread.name for thread in threading.enumerate()]
        raise CaseFailed(f"{threading.active_count()} Python threads before the fork: {names}")
    if os.path.isdir("/proc/self/task") and len(os.listdir("/proc/self/task")) != 1:
        raise CaseFailed(f"{len(os.listdir('/proc/self/task'))} threads before the fork")


def _reap(pid: int, deadline: float) -> int | None:
    """The child's exit code, or ``None`` if it has not ended by ``deadline``."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.001)


def _read_to_end(fd: int, deadline: float) -> bytes | None:
    """Everything written to the pipe until the child closed it, or ``None`` if it has not
    by ``deadline``."""
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def in_parent_and_child(seal: Seal, fork: str, child_deadline: float) -> tuple[bytes, bytes]:
    """Fork; parent and child each seal one frame; returns (parent's, child's). A child
    that has not finished within ``child_deadline`` seconds is killed, and the case fails."""
    _check_one_thread()
    read_end, write_end = os.pipe()
    pid = FORKS[fork]()
    if pid == 0:  # the child: seal, hand the frame over, leave without running any exit code
        status = 1
        try:
            os.close(read_end)
            try:
                sent = seal(b"from the child")
                status = 0
            except BaseException:
                sent = traceback.format_exc().encode()
            os.write(write_end, sent)
        finally:
            os._exit(status)
    os.close(write_end)
    reaped: int | None = None
    try:
        parent_frame = seal(b"from the parent")
        deadline = time.monotonic() + child_deadline
        report = _read_to_end(read_end, deadline)
        reaped = _reap(pid, deadline) if report is not None else None
    finally:
        os.close(read_end)
        if reaped is None:  # hung (or the parent's seal failed): never leave it behind
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    if report is None or reaped is None:
        raise CaseFailed(
            f"the forked child ({fork}) did not finish within {child_deadline:g} s (killed)"
        )
    if reaped != 0:
        raise CaseFailed(f"the child could not seal (exit {reaped}):\n{report.decode()}")
    return parent_frame, report


def run_case(case: dict[str, Any], node: Node, child_deadline: float) -> tuple[bytes, ...]:
    """(before, parent's, child's): the frames of one case."""
    channel = case["channel"]
    if case.get("requests") is None:
        topic = case.get("topic")

        def seal(payload: bytes) -> bytes:
            return node.seal(channel, payload, topic=topic)

        before = seal(b"before the fork")  # the session and its cache in use
    else:
        requests = [node.open(channel, bytes.fromhex(frame)) for frame in case["requests"]]
        # Parent and child each answer a request of their own (a second answer to one
        # request is refused as a replay: tests/test_sockets_hostile.py).
        answers = {b"from the parent": requests[1], b"from the child": requests[2]}

        def seal(payload: bytes) -> bytes:
            return node.reply(answers[payload], payload)

        before = node.reply(requests[0], b"before the fork")
    return (before, *in_parent_and_child(seal, case["fork"], child_deadline))


def main() -> None:
    job = json.load(sys.stdin)
    policy: Policy = load_policy(job["policy"])
    keystore = Keystore(job["keystore"])
    now = float(job["now"])

    def clock() -> float:  # the test process's receivers run on the same fixed clock
        return now

    # One node per identity and kind of fork (each case seals on a channel of its own, so
    # under a session of its own); memory-only replay state and no watcher: no thread.
    nodes: dict[tuple[str, str], Node] = {}
    for case in job["cases"]:
        try:
            node = nodes.get((case["fork"], case["identity"]))
            if node is None:
                node = nodes[case["fork"], case["identity"]] = Node(
                    policy,
                    identity=case["identity"],
                    keystore=keystore,
                    clock=clock,
                    state_dir=False,
                    watch=False,
                )
            frames = run_case(case, node, float(job["child_deadline"]))
            result: dict[str, Any] = {"id": case["id"], "frames": [f.hex() for f in frames]}
        except CaseFailed as failure:
            result = {"id": case["id"], "error": str(failure)}
        except Exception:
            result = {"id": case["id"], "error": traceback.format_exc()}
        print(json.dumps(result), flush=True)
    for node in nodes.values():
        node.close()


if __name__ == "__main__":
    main()
