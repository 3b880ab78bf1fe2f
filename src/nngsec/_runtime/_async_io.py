"""Waiting for a file descriptor to become readable, under asyncio or trio.

NNG exposes a notification descriptor per socket that polls readable when a message can
be received (or sent) without blocking; waiting on it with the event loop and then doing
a non-blocking operation avoids pynng's per-message aio round trip.
"""

from __future__ import annotations

import asyncio

import sniffio

__all__ = ["wait_readable"]


async def wait_readable(fd: int) -> None:
    """Return once ``fd`` polls readable (asyncio or trio, whichever is running)."""
    if sniffio.current_async_library() == "trio":
        import trio

        await trio.lowlevel.wait_readable(fd)
        return
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
