"""The running event loop's clock, read without asking which library runs it.

``anyio.current_time()`` asks sniffio which async library runs before it reads
the clock (about 2 µs a read); the watcher reads it a few times per poll.
``loop_clock()``, called inside the loop, returns a reader of the very clock
``anyio.current_time()`` reads there: asyncio's running loop's ``time()``, or
trio's ``current_time()`` (which honours a trio ``MockClock``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import sniffio

__all__ = ["Clock", "asyncio_time", "loop_clock"]

Clock = Callable[[], float]


def asyncio_time() -> float:
    """asyncio's running loop's ``time()``: ``anyio.current_time()`` on asyncio."""
    # The running loop is looked up at every read, as anyio does (a test may patch
    # its ``time``).
    return asyncio.get_running_loop().time()


def loop_clock() -> Clock:
    """A reader of ``anyio.current_time()``'s clock for the library running now."""
    library = sniffio.current_async_library()
    if library == "asyncio":
        return asyncio_time
    if library == "trio":
        import trio

        return trio.current_time
    return anyio.current_time
