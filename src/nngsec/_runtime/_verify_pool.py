"""Opening frames on a small thread pool, delivered in the order they came (see
:class:`VerifyPool`).

An Ed25519 verification (``origin: signed``: pubsub, pipelines, surveys, signed bus
frames, the ``signed`` scheme) costs ~56 µs, and libsodium runs it without the GIL
(PyNaCl's cffi calls release it), so a receiver that hands frames to two threads
verifies on two cores. The rest of a frame's checks hold the GIL and stay short.
"""

from __future__ import annotations

import queue
import threading
from collections import deque

from .._errors import Rejected
from ._codec import Received, Receiver

__all__ = ["MAX_VERIFY_THREADS", "VerifyPool"]

MAX_VERIFY_THREADS = 16
_AHEAD_PER_THREAD = 8  # frames taken from NNG ahead of the one delivered, per thread

Outcome = Received | Rejected | BaseException
Jobs = queue.SimpleQueue[list[bytes] | None]
Answers = queue.SimpleQueue[tuple[bytes, Outcome]]


class VerifyPool:
    """Frames opened by ``threads`` threads, the outcomes handed back in the order the
    frames were submitted: what one sender sent is delivered in the order it was sent
    (and so is everything else). The receiver's checks are thread-safe (its replay
    windows are updated under its lock), so opening frames side by side changes nothing
    of what is accepted: a frame overtaken by a later one of its session is checked
    against the window's bitmap, as a reordered frame is. (Only the reason of a frame
    that fails twice over can differ: a damaged copy of a frame opened at the same
    moment is ``forged`` if it is checked before the frame is recorded, ``replay`` after,
    as with any receiver that several threads use.)

    Frames go to the workers in runs (:meth:`submit` takes all that NNG holds, split in
    one contiguous run per worker), through one queue per worker, and their outcomes
    come back one by one through one answer queue per worker; the order is kept by
    reading the answer queues in the order the runs were given out. No futures, and a
    worker is woken once per run, not per frame: waking a sleeping thread (and its
    core) costs more than the Python of a frame's checks.

    Frames taken ahead are held here until delivered; closing the pool drops them (as
    closing the socket drops what NNG still holds)."""

    def __init__(self, receiver: Receiver, threads: int) -> None:
        self._receiver = receiver
        self._jobs: list[Jobs] = [queue.SimpleQueue() for _ in range(threads)]
        self._answers: list[Answers] = [queue.SimpleQueue() for _ in range(threads)]
        self._threads = [
            threading.Thread(
                target=self._work, args=(jobs, answers), name=f"nngsec-verify-{n}", daemon=True
            )
            for n, (jobs, answers) in enumerate(zip(self._jobs, self._answers, strict=True))
        ]
        for thread in self._threads:
            thread.start()
        self._order: deque[Answers] = deque()  # whose answer comes next, frame by frame
        self._next_worker = 0
        self.depth = threads * _AHEAD_PER_THREAD

    def _work(self, jobs: Jobs, answers: Answers) -> None:
        receiver = self._receiver
        while True:
            frames = jobs.get()
            if frames is None:  # close()
                return
            for frame in frames:
                try:
                    outcome: Outcome = receiver.open(frame)
                except Rejected as rejected:  # handed back, counted in the socket's thread
                    outcome = rejected
                except BaseException as error:  # handed back, raised in the socket's thread
                    outcome = error
                answers.put((frame, outcome))

    def __len__(self) -> int:
        return len(self._order)

    @property
    def hungry(self) -> bool:
        """Whether half the frames taken ahead are delivered: time to take more."""
        return 2 * len(self._order) <= self.depth

    @property
    def room(self) -> int:
        """How many more frames may be taken ahead."""
        return self.depth - len(self._order)

    def submit(self, frames: list[bytes]) -> None:
        """Give ``frames`` (in their order) to the workers: one run each, the first run to
        the worker after the one that had the last."""
        count = len(self._jobs)
        runs = min(count, len(frames))
        at = 0
        for index in range(runs):
            size = (len(frames) - at) // (runs - index)
            worker = (self._next_worker + index) % count
            self._jobs[worker].put(frames[at : at + size])
            self._order.extend([self._answers[worker]] * size)
            at += size
        self._next_worker = (self._next_worker + runs) % count

    def next(self) -> tuple[bytes, Received | Rejected]:
        """The oldest frame submitted and its outcome (waits for it)."""
        frame, outcome = self._order.popleft().get()
        if isinstance(outcome, Received | Rejected):
            return frame, outcome
        raise outcome

    def close(self) -> None:
        """End the threads (each finishes the run it is opening) and drop what was taken
        ahead."""
        for jobs in self._jobs:
            jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._order.clear()
