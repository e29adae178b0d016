"""Rate limiting on anyio primitives (so it works on asyncio and trio)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import anyio

__all__ = ["RateLimit"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` requests in any ``per`` seconds (a sliding window).

    A client with its adaptive budget (the default) also spaces its requests
    evenly at ``requests / per`` a second from the first one: the budget's ceiling,
    in force from the start (``AdaptiveRate.limit_to``), which a ``Watcher``
    schedules by.  The window stays the hard bound behind it."""

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
                while times and times[0] + per <= now:
                    times.popleft()
                if len(times) < self._limit.requests:
                    times.append(now)
                    return
                # Until the very time the window frees (``sleep`` of the difference
                # may wake a rounding short of it, and then spin at one instant).
                await anyio.sleep_until(times[0] + per)


class ThrottleGate:
    """Holds every request back while the server asked for a pause, then lets them out
    spread over time, not all at once.

    ``close(seconds, spacing)`` shuts the gate for ``seconds`` from now (a longer
    pause replaces a shorter one; a shorter one never cuts a longer one).  When it
    opens, the requests waiting pass one every ``spacing`` seconds, for one more
    pause's length; after that the gate costs one clock read per request.  A pause
    extended while requests waited is waited out too: each re-checks before it goes.
    """

    def __init__(self) -> None:
        self._until = 0.0
        self._spread_until = 0.0
        self._spacing = 0.0
        self._next = 0.0

    @property
    def until(self) -> float:
        """The event-loop time the current pause ends at (0.0 for none yet)."""
        return self._until

    @property
    def may_hold(self) -> bool:
        """False while ``wait`` cannot hold a request back (the gate never closed)."""
        return bool(self._spread_until)

    def close(self, seconds: float, spacing: float) -> None:
        """Hold requests for ``seconds``; release them ``spacing`` seconds apart."""
        until = anyio.current_time() + seconds
        if until > self._until:
            self._until = until
            self._next = until
            self._spacing = spacing
            self._spread_until = until + seconds

    async def wait(self) -> bool:
        """Return when this request may go: True when it was held back."""
        if not self._spread_until:
            return False  # never closed: not even a clock read
        held = False
        while True:
            now = anyio.current_time()
            if now >= self._spread_until:
                return held
            if now < self._until:
                await anyio.sleep_until(self._until)
                held = True
                continue
            slot = max(self._next, now)
            self._next = slot + self._spacing
            if slot > now:
                await anyio.sleep_until(slot)
                held = True
            if anyio.current_time() >= self._until:
                return held
