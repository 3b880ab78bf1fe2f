"""Running a test's coroutine under asyncio or trio with the same code: a time limit on the
whole run (a hang fails the test), cancellation after a delay, and background tasks.

Use the ``aio`` fixture of ``tests/conftest.py`` (parametrized over both libraries).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

LIMIT = 15.0  # seconds a whole scenario may take before it counts as hung


class Tasks(Protocol):
    def start_soon(self, function: Callable[..., Awaitable[Any]], *args: Any) -> None: ...


class AsyncLibrary:
    """asyncio or trio behind one small interface."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def run(self, main: Callable[[], Awaitable[Any]], limit: float = LIMIT) -> Any:
        """``main()`` to completion; ``TimeoutError`` (asyncio) or ``trio.TooSlowError``
        after ``limit`` seconds."""
        if self.name == "trio":
            import trio

            async def bounded() -> Any:
                with trio.fail_after(limit):
                    return await main()

            return trio.run(bounded)
        return asyncio.run(asyncio.wait_for(main(), limit))

    async def sleep(self, seconds: float) -> None:
        if self.name == "trio":
            import trio

            await trio.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    async def cancelled_after(self, seconds: float, awaitable: Awaitable[Any]) -> bool:
        """Await ``awaitable`` for at most ``seconds``: ``True`` if it was cancelled then."""
        if self.name == "trio":
            import trio

            with trio.move_on_after(seconds) as scope:
                await awaitable
            return bool(scope.cancelled_caught)
        try:
            await asyncio.wait_for(awaitable, seconds)
        except TimeoutError:
            return True
        return False

    async def cancelled_once_waiting(self, awaitable: Awaitable[Any]) -> bool:
        """Start ``awaitable`` and cancel it at its first wait: ``True`` if it was cancelled
        (``False``: it completed without waiting)."""
        if self.name == "trio":
            import trio

            with trio.CancelScope() as scope:
                scope.cancel()  # delivered at the first checkpoint
                await awaitable
            return bool(scope.cancelled_caught)
        task = asyncio.ensure_future(awaitable)
        await asyncio.sleep(0)  # the task runs up to its first wait
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    @asynccontextmanager
    async def tasks(self) -> AsyncIterator[Tasks]:
        """A nursery (trio) or task group (asyncio): ``start_soon(function, *args)``."""
        if self.name == "trio":
            import trio

            async with trio.open_nursery() as nursery:
                yield nursery
            return
        async with asyncio.TaskGroup() as group:

            class _Group:
                def start_soon(self, function: Callable[..., Awaitable[Any]], *args: Any) -> None:
                    group.create_task(function(*args))  # type: ignore[arg-type]

            yield _Group()


LIBRARIES = (AsyncLibrary("asyncio"), AsyncLibrary("trio"))
