"""Rate limiting on anyio primitives (so it works on asyncio and trio)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import anyio

__all__ = ["RateLimit"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` requests in any ``per`` seconds (a sliding window)."""

    requests: int
    per: float = 1.0

    def __post_init__(self) -> None:
        if self.requests < 1:
            raise ValueError("requests must be at least 1")
        if self.per <= 0:
            raise ValueError("per must be positive")


class SlidingWindowLimiter:
    """Admits callers so that no window of ``per`` seconds holds more than ``requests``.

    Waiters are admitted in arrival order; memory is one timestamp per admitted
    request of the current window.
    """

    def __init__(self, limit: RateLimit) -> None:
        self._limit = limit
        self._times: deque[float] = deque()
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        async with self._lock:
            per, times = self._limit.per, self._times
            while True:
                now = anyio.current_time()
                while times and now - times[0] >= per:
                    times.popleft()
                if len(times) < self._limit.requests:
                    times.append(now)
                    return
                await anyio.sleep(times[0] + per - now)
