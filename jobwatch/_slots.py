"""``Slots``: a bound on requests in flight that costs nothing when a slot is free.

``anyio.CapacityLimiter`` yields to the event loop on every acquisition, even an
uncontended one (a shielded checkpoint: one more turn of the loop per request,
a tenth of a bare aiohttp GET's CPU).  A request is a checkpoint of its own, so
the client's bound does not need another: taking a free slot here does not
yield, and waiting for one is FIFO, a released slot passing straight to the
longest waiter.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType

from jobwatch._wakeup import Wakeup, wakeup

__all__ = ["Slots"]


class Slots:
    """At most ``total`` holders at once (``async with slots:``)."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("total must be at least 1")
        self._free = total
        self._waiters: deque[Wakeup] = deque()

    @property
    def free(self) -> int:
        """Slots nobody holds (0 while anyone waits)."""
        return self._free

    async def __aenter__(self) -> None:
        if not self.take():
            await self.wait()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def take(self) -> bool:
        """Take a slot if one is free now, without waiting (True when taken)."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def wait(self) -> None:
        """Wait for a slot, behind the earlier waiters, and take it (``release`` it)."""
        handed = wakeup()
        self._waiters.append(handed)
        try:
            await handed.wait()
        except BaseException:
            if handed.is_set():  # handed a slot as it was cancelled: pass it on
                self.release()
            else:
                self._waiters.remove(handed)
            raise

    def release(self) -> None:
        """Give back a slot taken by ``take`` or ``wait``."""
        if self._waiters:
            self._waiters.popleft().set()  # the slot goes to the longest waiter
        else:
            self._free += 1
