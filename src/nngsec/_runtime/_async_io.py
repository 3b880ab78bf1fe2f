"""Waiting under asyncio or trio (whichever is running, as sniffio tells) without hanging and
without losing protocol state.

A secured socket waits in two ways, each with its tool here:

- :class:`Readiness`: NNG gives a socket two notification descriptors that poll readable
  when a message can be received (``recv_fd``) or sent (``send_fd``) without blocking.
  Waiting on them with the event loop, then operating without blocking, avoids pynng's
  per-message aio round trip (``benchmarks/async_recv.py``). Three things need care:
  NNG closes the descriptors with the socket, and a loop waiting on a closed descriptor
  never wakes, so :meth:`Readiness.close` wakes every waiting task first, from any
  thread; a wait ends at a deadline (``recv_timeout``, the end of a survey); and trio
  lets only one task wait on a descriptor and asyncio keeps one reader per descriptor, so
  concurrent waiters share one registration.
- :class:`Detached`: an NNG aio operation that must not be cancelled half-way. A
  cancelled receive on a Req0 context abandons the request and on a Surveyor0 context the
  survey; a cancelled reply on Rep0 or Respondent0 loses it (NNG has already taken the
  request's backtrace). A detached operation runs to completion whatever happens to the
  task awaiting it; whoever awaits it next gets its outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Literal, TypeVar

import pynng
import sniffio

__all__ = ["Detached", "Readiness", "readable_now"]

T = TypeVar("T")
_Wake = Literal["ready", "timeout"]
CLOSE_GRACE = 1.0  # seconds close() waits for another thread's event loop to let go of a descriptor


def readable_now(fd: int) -> bool:
    """Whether ``fd`` polls readable at this instant (a closed descriptor counts: the next
    operation on the socket then raises ``pynng.Closed``)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # pragma: no cover - platforms without poll


def _in_loop_thread(
    thread: int, call_soon: Callable[[Callable[[], None]], object]
) -> Callable[[Callable[[], None]], None]:
    """Run a callback on an event loop's thread: at once when already there, else scheduled
    there and waited for (briefly: a loop that is gone or stuck must not block close())."""

    def run(callback: Callable[[], None]) -> None:
        if threading.get_ident() == thread:
            callback()
            return
        done = threading.Event()

        def then() -> None:
            try:
                callback()
            finally:
                done.set()

        try:
            call_soon(then)
        except Exception:  # the loop has finished: nothing waits on it any more
            return
        done.wait(CLOSE_GRACE)

    return run


class _AsyncioWatch:
    """One asyncio reader on one descriptor, shared by every task of that loop waiting on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.loop = loop
        self.fd = fd
        self.closed = False
        self.users = 0  # tasks inside Readiness.wait on this watch
        self.waiters: set[asyncio.Future[_Wake]] = set()
        self.on_thread = _in_loop_thread(threading.get_ident(), loop.call_soon_threadsafe)
        loop.add_reader(fd, self._wake)

    def _wake(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result("ready")

    def _shut(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.fd)
            self._wake()

    def close(self) -> None:
        self.on_thread(self._shut)

    def release(self) -> None:
        """The last waiting task left (on the loop's thread)."""
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.fd)

    async def wait(self, deadline: float | None) -> bool:
        if self.closed:
            return True
        waiter: asyncio.Future[_Wake] = self.loop.create_future()
        timer = None
        if deadline is not None:

            def expire() -> None:
                if not waiter.done():
                    waiter.set_result("timeout")

            timer = self.loop.call_later(max(0.0, deadline - time.monotonic()), expire)
        self.waiters.add(waiter)
        try:
            return await waiter == "ready"
        finally:
            self.waiters.discard(waiter)
            if timer is not None:
                timer.cancel()


class _TrioWatch:
    """One trio task at a time waits on the descriptor (trio allows no more); the others
    park until it saw the descriptor readable, or gave up (then one of them takes over)."""

    def __init__(self, token: Any, fd: int) -> None:
        import trio

        self.trio = trio
        self.fd = fd
        self.closed = False
        self.users = 0  # tasks inside Readiness.wait on this watch
        self.waiting = False
        self.seen = 0  # how many times the waiting task saw the descriptor readable
        self.lot = trio.lowlevel.ParkingLot()
        self.on_thread = _in_loop_thread(threading.get_ident(), token.run_sync_soon)

    def _shut(self) -> None:
        if not self.closed:
            self.closed = True
            self.trio.lowlevel.notify_closing(self.fd)  # the waiting task wakes
            self.lot.unpark_all()

    def close(self) -> None:
        self.on_thread(self._shut)

    def release(self) -> None:
        """The last waiting task left: nothing is registered with trio between waits."""

    async def wait(self, deadline: float | None) -> bool:
        trio = self.trio
        seen = self.seen
        delay = float("inf") if deadline is None else deadline - time.monotonic()
        with trio.move_on_after(max(0.0, delay)):
            while self.seen == seen and not self.closed:
                if self.waiting:
                    await self.lot.park()
                    continue
                self.waiting = True
                try:
                    with contextlib.suppress(trio.ClosedResourceError):
                        await trio.lowlevel.wait_readable(self.fd)
                    self.seen += 1
                finally:
                    self.waiting = False
                    self.lot.unpark_all()
            return True
        return False


class Readiness:
    """The tasks waiting on one socket's notification descriptors, in any event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._watches: dict[tuple[int, int], _AsyncioWatch | _TrioWatch] = {}

    async def wait(self, fd: int, deadline: float | None = None) -> bool:
        """Wait until ``fd`` polls readable or the socket is closed (``True``: try the
        operation again; on a closed socket it raises ``pynng.Closed``), or until
        ``deadline`` (``time.monotonic()``) passes (``False``)."""
        if sniffio.current_async_library() == "trio":
            import trio

            loop: object = trio.lowlevel.current_trio_token()
        else:
            loop = asyncio.get_running_loop()
        key = (id(loop), fd)
        with self._lock:
            if self._closed:
                return True
            watch = self._watches.get(key)
            if watch is None:
                if isinstance(loop, asyncio.AbstractEventLoop):
                    watch = _AsyncioWatch(loop, fd)
                else:
                    watch = _TrioWatch(loop, fd)
                self._watches[key] = watch
            watch.users += 1
        try:
            return await watch.wait(deadline)
        finally:
            with self._lock:
                watch.users -= 1
                idle = watch.users == 0 and self._watches.get(key) is watch
                if idle:
                    del self._watches[key]
            if idle:
                watch.release()

    def close(self) -> None:
        """Wake every waiting task (call before closing the socket: NNG closes the
        descriptors with it). Later waits return at once."""
        with self._lock:
            self._closed = True
            watches = list(self._watches.values())
            self._watches.clear()
        for watch in watches:
            watch.close()


class Detached(Generic[T]):
    """An awaitable operation that runs to completion in its event loop even when the task
    awaiting it is cancelled; the next :meth:`result` gets its outcome."""

    def __init__(self, operation: Callable[[], Awaitable[T]]) -> None:
        self._value: T | None = None
        self._error: Exception | None = None
        self._finished = False
        self._trio = sniffio.current_async_library() == "trio"
        if self._trio:
            import trio

            self._loop: object = trio.lowlevel.current_trio_token()
            self._event = trio.Event()
            trio.lowlevel.spawn_system_task(self._run_trio, operation)
        else:
            loop = asyncio.get_running_loop()
            self._loop = loop
            self._task = loop.create_task(self._run_asyncio(operation))

    async def _run_trio(self, operation: Callable[[], Awaitable[T]]) -> None:
        try:
            self._value = await operation()
        except Exception as error:  # kept for whoever awaits next; never lost, never raised here
            self._error = error
        finally:
            self._finished = True
            self._event.set()

    async def _run_asyncio(self, operation: Callable[[], Awaitable[T]]) -> None:
        try:
            self._value = await operation()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the loop is shutting down
            # pynng turns NNG's own cancellation (a newer operation on the same context
            # superseded this one) into CancelledError; it is an outcome, not ours.
            self._error = _superseded()
        except Exception as error:
            self._error = error
        finally:
            self._finished = True

    @property
    def done(self) -> bool:
        return self._finished

    def runs_here(self) -> bool:
        """Whether the operation belongs to the running event loop and is not dead with a
        loop that ended before it completed."""
        try:
            if self._trio:
                import trio

                return bool(trio.lowlevel.current_trio_token() is self._loop)
            if asyncio.get_running_loop() is not self._loop:
                return False
        except (RuntimeError, sniffio.AsyncLibraryNotFoundError):
            return False
        return self._finished or not self._task.done()

    def outcome(self) -> T:
        """The value, or the operation's error raised (once it is done)."""
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    async def result(self) -> T:
        """Wait for the operation (the wait is cancellable; the operation is not)."""
        if not self._finished:
            if self._trio:
                await self._event.wait()
            else:
                await asyncio.shield(self._task)
        return self.outcome()


def _superseded() -> Exception:
    error: Exception = pynng.Canceled("superseded by a newer operation", pynng.lib.NNG_ECANCELED)
    return error
